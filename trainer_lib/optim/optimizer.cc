#include "trainer_lib/optim/optimizer.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "trainer_lib/state/archive_file.h"

namespace ablate::train {
namespace {

double Arg(const v1::TrainConfig& config, const std::string& key, double fallback) {
  auto it = config.optimizer_args().find(key);
  return it == config.optimizer_args().end() ? fallback : it->second;
}

std::unique_ptr<torch::optim::Optimizer> MakeAdamW(const v1::TrainConfig& config,
                                                   torch::nn::Module& model) {
  std::vector<torch::Tensor> decayed, undecayed;
  for (const torch::Tensor& p : model.parameters()) {
    (p.dim() >= 2 ? decayed : undecayed).push_back(p);
  }
  auto options = [&](double weight_decay) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(config.learning_rate());
    o->betas({Arg(config, "beta1", 0.9), Arg(config, "beta2", 0.95)});
    o->eps(Arg(config, "eps", 1e-8));
    o->weight_decay(weight_decay);
    return o;
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::move(decayed), options(config.weight_decay()));
  groups.emplace_back(std::move(undecayed), options(0.0));
  return std::make_unique<torch::optim::AdamW>(std::move(groups));
}

class TorchOptimizerState : public Stateful {
 public:
  TorchOptimizerState(torch::optim::Optimizer& optimizer, const torch::Device& device)
      : optimizer_(optimizer), device_(device) {}

  std::string Name() const override { return "optimizer"; }

  absl::Status Save(const std::filesystem::path& dir) override {
    torch::serialize::OutputArchive archive;
    optimizer_.save(archive);
    return WriteArchive(archive, dir / "optimizer.pt");
  }

  absl::Status Load(const std::filesystem::path& dir) override {
    const std::filesystem::path path = dir / "optimizer.pt";
    torch::serialize::InputArchive archive;
    if (absl::Status s = ReadArchive(path, device_, archive); !s.ok()) return s;
    try {
      optimizer_.load(archive);
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      return absl::DataLossError(absl::StrCat(path.string(), " does not fit this optimizer: ",
                                              what.substr(0, what.find('\n'))));
    }
    return absl::OkStatus();
  }

 private:
  torch::optim::Optimizer& optimizer_;
  const torch::Device device_;
};

}  // namespace

std::unique_ptr<Stateful> OptimizerState(torch::optim::Optimizer& optimizer,
                                         const torch::Device& device) {
  return std::make_unique<TorchOptimizerState>(optimizer, device);
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(
    const v1::TrainConfig& config, torch::nn::Module& model) {
  const std::string& name = config.optimizer();
  if (name == "adamw") {
    return MakeAdamW(config, model);
  }
  const auto& known = OptimizerNames();
  if (std::find(known.begin(), known.end(), name) != known.end()) {
    return absl::UnimplementedError(absl::StrCat("optimizer ", name, " is not implemented yet"));
  }
  return absl::InvalidArgumentError(absl::StrCat("optimizer: unknown optimizer \"", name, "\""));
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (torch::optim::OptimizerParamGroup& group : optimizer.param_groups()) {
    group.options().set_lr(lr);
  }
}

}  // namespace ablate::train
