// optimizer_benchmark: the time of one optimizer step of each optimizer over a catalog
// model's real parameter shapes, fp32, on CUDA when present (else CPU).
//
//   optimizer_benchmark [--model qwen3-0.6b] [--optimizers adamw,muon,soap]
//                       [--precondition_frequency 10] [--device cuda|cpu] [--tf32]
//                       [--optimizer_args use_svd=0,matrix_eps=1e-6]
//
// Prints one line per optimizer:
//   optimizer=soap model=qwen3-0.6b device=cuda tf32=0 params=751632384 steps=10 ms_per_step=41.2
//     plain_ms=12.0 slowest_ms=304.0
// --tf32 lets cuBLAS run float32 matmuls in TF32 (SOAP's and Shampoo's projections and factor
// products; Muon's Newton-Schulz is bf16 either way). Off by default, as in the trainer and in
// torch: the references are timed in the same mode by optimizers_reference.py --tf32.
// --optimizer_args sets sweep-file optimizer_args (name=value, bools as 0/1) for every optimizer
// named, checked as a submitted sweep's are; the line then ends in args="...".
// A preconditioned optimizer refreshes its bases once every precondition_frequency steps, so
// the steps timed are that many (after one untimed step that builds the state), and
// ms_per_step is amortized over exactly one refresh. Each step is also timed alone (the device
// synchronized after it): plain_ms is the median step, slowest_ms the slowest, which for SOAP and
// Shampoo is the step that refreshes, so the two say how much of the amortized time is the
// refresh. scripts/bench/optimizers_reference.py prints the same format (amortized only) for the
// reference implementations.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/catalog.h"
#include "common/optimizer_args.h"
#include "trainer_lib/model/qwen3.h"
#include "trainer_lib/optim/optimizer.h"

namespace ablate::train {
namespace {

void Synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Adds "name=value,..." to config's optimizer_args and validates them as a submitted sweep's
// (InvalidArgument for a malformed, undeclared or out-of-range one).
absl::Status SetArgs(const std::string& args, v1::TrainConfig& config) {
  for (absl::string_view pair : absl::StrSplit(args, ',', absl::SkipEmpty())) {
    const std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    double value = 0;
    if (!absl::SimpleAtod(kv.second, &value)) {
      return absl::InvalidArgumentError(absl::StrCat("--optimizer_args: not a number: ", pair));
    }
    (*config.mutable_optimizer_args())[kv.first] = value;
  }
  return ValidateOptimizerArgs(config);
}

// One optimizer's line, or its error: a failure to build or to step (out of memory on a large
// model) is reported and the next optimizer still runs.
void Bench(const std::string& name, const std::string& model_name, int frequency, bool tf32,
           const std::string& args, Qwen3& model, const torch::Device& device) {
  v1::TrainConfig config;
  config.set_optimizer(name);
  config.set_learning_rate(1e-4);
  config.set_weight_decay(0.1);
  if (name == "soap" || name == "shampoo" || name == "soap4bit") {
    (*config.mutable_optimizer_args())["precondition_frequency"] = frequency;
  }
  const absl::Status args_status = SetArgs(args, config);
  absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> optimizer =
      args_status.ok() ? MakeOptimizer(config, *model) : args_status;
  if (!optimizer.ok()) {
    std::printf("optimizer=%s model=%s error=\"%s\"\n", name.c_str(), model_name.c_str(),
                std::string(optimizer.status().message()).c_str());
    return;
  }
  try {
    (*optimizer)->step();  // builds the state (SOAP: the first eigendecompositions)
    Synchronize(device);
    std::vector<double> step_ms;
    for (int i = 0; i < frequency; ++i) {
      const auto start = std::chrono::steady_clock::now();
      (*optimizer)->step();
      Synchronize(device);
      step_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
    }
    double total = 0;
    for (double ms : step_ms) total += ms;
    std::sort(step_ms.begin(), step_ms.end());
    int64_t params = 0;
    for (const torch::Tensor& p : model->parameters()) params += p.numel();
    std::printf(
        "optimizer=%s model=%s device=%s tf32=%d params=%lld steps=%d ms_per_step=%.3f "
        "plain_ms=%.3f slowest_ms=%.3f%s\n",
        name.c_str(), model_name.c_str(), device.str().c_str(), tf32 ? 1 : 0,
        static_cast<long long>(params), frequency, total / frequency, step_ms[step_ms.size() / 2],
        step_ms.back(), args.empty() ? "" : absl::StrCat(" args=\"", args, "\"").c_str());
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    std::printf("optimizer=%s model=%s error=\"%s\"\n", name.c_str(), model_name.c_str(),
                what.substr(0, what.find('\n')).c_str());
  }
  std::fflush(stdout);
}

int Run(int argc, char** argv) {
  CLI::App app{"Times one optimizer step over a model's parameter shapes."};
  std::string model_name = "qwen3-0.6b";
  std::string names = "adamw,adamw8bit,muon,soap,shampoo,soap4bit";
  int frequency = 10;
  std::string device_name = torch::cuda::is_available() ? "cuda" : "cpu";
  app.add_option("--model", model_name, "catalog model whose shapes to use");
  app.add_option("--optimizers", names, "comma-separated optimizer names");
  app.add_option("--precondition_frequency", frequency, "steps timed; SOAP/Shampoo refresh once")
      ->check(CLI::PositiveNumber);
  app.add_option("--device", device_name, "cuda or cpu");
  bool tf32 = false;
  app.add_flag("--tf32", tf32, "float32 matmuls in TF32 on CUDA");
  std::string args;
  app.add_option("--optimizer_args", args, "name=value,... optimizer_args for each optimizer");
  CLI11_PARSE(app, argc, argv);
  if (tf32) at::globalContext().setAllowTF32CuBLAS(true);

  const auto config = ModelByName(model_name);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  const torch::Device device(device_name);
  torch::NoGradGuard no_grad;
  auto model = BuildQwen3(*config, "dense");
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  (*model)->to(device);
  for (torch::Tensor& p : (*model)->parameters()) {
    p.mutable_grad() = torch::randn_like(p).mul_(1e-3);
  }
  for (const std::string& name :
       std::vector<std::string>(absl::StrSplit(names, ',', absl::SkipEmpty()))) {
    Bench(name, model_name, frequency, tf32, args, *model, device);
  }
  return 0;
}

}  // namespace
}  // namespace ablate::train

int main(int argc, char** argv) { return ablate::train::Run(argc, argv); }
