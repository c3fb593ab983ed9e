// optimizer_replay: runs one of our optimizers, built by MakeOptimizer, over recorded
// gradients, so a test in another language can compare it step by step with a reference
// implementation (tests/oracle/optim_harness.py drives it).
//
//   optimizer_replay --in CASE.safetensors --out DIR --optimizer muon --lr 0.02
//                    --weight_decay 0.1 [--arg beta2=0.99 --arg nesterov=true ...]
//                    [--reload_after K]
//
// CASE holds `param.<name>` (the initial fp32 parameters, named as the model names them, which
// decides each one's role) and `grad.<step>.<name>` for steps 0, 1, ... (every parameter has a
// gradient at every step). Each --arg is set as the sweep field optimizer_args.<key>, parsed
// as a sweep file's value is. DIR/model.safetensors receives `param.<name>` after the last
// step. With --reload_after K the optimizer's checkpoint piece is saved after step K, and a
// fresh optimizer over copies of the parameters loads it and runs the remaining steps, so the
// result must equal an uninterrupted run bit for bit. Exit status 0 on success, 1 with the
// reason on stderr otherwise.
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/train_config.h"
#include "trainer_lib/hf/safetensors.h"
#include "trainer_lib/optim/optimizer.h"

namespace ablate::train {
namespace {

struct Flags {
  std::string in;
  std::string out;
  std::string optimizer;
  double lr = 0;
  double weight_decay = 0;
  std::vector<std::string> args;
  int reload_after = -1;
};

absl::StatusOr<v1::TrainConfig> ConfigOf(const Flags& flags) {
  v1::TrainConfig config;
  config.set_optimizer(flags.optimizer);
  config.set_learning_rate(flags.lr);
  config.set_weight_decay(flags.weight_decay);
  for (const std::string& arg : flags.args) {
    std::pair<std::string, std::string> kv = absl::StrSplit(arg, absl::MaxSplits('=', 1));
    if (absl::Status s = SetTrainField(config, absl::StrCat("optimizer_args.", kv.first),
                                       kv.second);
        !s.ok()) {
      return s;
    }
  }
  return config;
}

// The gradients of step `step`, by parameter name, or an empty map past the last step.
absl::StatusOr<std::map<std::string, torch::Tensor>> Gradients(const SafetensorsReader& reader,
                                                               int step) {
  std::map<std::string, torch::Tensor> out;
  const std::string prefix = absl::StrCat("grad.", step, ".");
  for (const std::string& name : reader.Names()) {
    if (!absl::StartsWith(name, prefix)) continue;
    absl::StatusOr<at::Tensor> grad = reader.Read(name);
    if (!grad.ok()) return grad.status();
    out.emplace(name.substr(prefix.size()), *grad);
  }
  return out;
}

absl::Status Replay(const Flags& flags) {
  absl::StatusOr<v1::TrainConfig> config = ConfigOf(flags);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<SafetensorsReader>> reader = SafetensorsReader::Open(flags.in);
  if (!reader.ok()) return reader.status();

  std::vector<NamedParameter> parameters;
  for (const std::string& name : (*reader)->Names()) {
    if (!absl::StartsWith(name, "param.")) continue;
    absl::StatusOr<at::Tensor> value = (*reader)->Read(name);
    if (!value.ok()) return value.status();
    parameters.push_back({name.substr(6), value->set_requires_grad(true)});
  }
  absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> optimizer =
      MakeOptimizer(*config, parameters);
  if (!optimizer.ok()) return optimizer.status();

  const std::filesystem::path state_dir = std::filesystem::path(flags.out) / "state";
  for (int step = 0;; ++step) {
    absl::StatusOr<std::map<std::string, torch::Tensor>> grads = Gradients(**reader, step);
    if (!grads.ok()) return grads.status();
    if (grads->empty()) break;
    for (NamedParameter& p : parameters) {
      auto it = grads->find(p.name);
      if (it == grads->end()) {
        return absl::InvalidArgumentError(absl::StrCat("grad.", step, ".", p.name, " missing"));
      }
      p.tensor.mutable_grad() = it->second;
    }
    (*optimizer)->step();
    if (step + 1 == flags.reload_after) {
      std::filesystem::create_directories(state_dir);
      if (absl::Status s = OptimizerState(**optimizer, torch::kCPU)->Save(state_dir); !s.ok()) {
        return s;
      }
      // A fresh optimizer over fresh tensors: nothing but the saved files carries over.
      for (NamedParameter& p : parameters) {
        p.tensor = p.tensor.detach().clone().set_requires_grad(true);
      }
      optimizer = MakeOptimizer(*config, parameters);
      if (!optimizer.ok()) return optimizer.status();
      if (absl::Status s = OptimizerState(**optimizer, torch::kCPU)->Load(state_dir); !s.ok()) {
        return s;
      }
    }
  }
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const NamedParameter& p : parameters) {
    out.emplace_back(absl::StrCat("param.", p.name), p.tensor.detach());
  }
  return WriteSafetensors(flags.out, out);
}

}  // namespace
}  // namespace ablate::train

int main(int argc, char** argv) {
  ablate::train::Flags flags;
  CLI::App app{"Runs an optimizer over recorded gradients."};
  app.add_option("--in", flags.in, "safetensors file of param.* and grad.<step>.*")->required();
  app.add_option("--out", flags.out, "folder for model.safetensors")->required();
  app.add_option("--optimizer", flags.optimizer, "optimizer name")->required();
  app.add_option("--lr", flags.lr, "learning rate")->required();
  app.add_option("--weight_decay", flags.weight_decay, "weight decay");
  app.add_option("--arg", flags.args, "optimizer_args KEY=VALUE, repeatable");
  app.add_option("--reload_after", flags.reload_after, "save and reload the state after step K");
  CLI11_PARSE(app, argc, argv);
  torch::NoGradGuard no_grad;
  if (absl::Status s = ablate::train::Replay(flags); !s.ok()) {
    std::fprintf(stderr, "optimizer_replay: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
