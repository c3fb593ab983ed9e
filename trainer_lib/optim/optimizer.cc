#include "trainer_lib/optim/optimizer.h"

#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/optimizer_args.h"
#include "common/optimizer_state.h"
#include "trainer_lib/optim/adamw.h"
#include "trainer_lib/optim/adamw8bit.h"
#include "trainer_lib/optim/muon.h"
#include "trainer_lib/optim/shampoo.h"
#include "trainer_lib/optim/soap.h"
#include "trainer_lib/optim/soap4bit.h"
#include "trainer_lib/state/archive_file.h"

namespace ablate::train {
namespace {

std::unique_ptr<torch::optim::AdamWOptions> AdamWOptionsOf(const v1::TrainConfig& config,
                                                         const std::string& prefix,
                                                         double weight_decay) {
  auto o = std::make_unique<torch::optim::AdamWOptions>(config.learning_rate());
  o->betas({OptimizerArgOr(config, prefix + "beta1"), OptimizerArgOr(config, prefix + "beta2")});
  o->eps(OptimizerArgOr(config, prefix + "eps"));
  o->weight_decay(weight_decay);
  return o;
}

// Matrices decay; norms, gains and biases (1-D) do not.
void AddDecayGroups(std::vector<torch::Tensor> decayed, std::vector<torch::Tensor> undecayed,
                    const v1::TrainConfig& config, const std::string& prefix,
                    std::vector<torch::optim::OptimizerParamGroup>& groups) {
  groups.emplace_back(std::move(decayed), AdamWOptionsOf(config, prefix, config.weight_decay()));
  groups.emplace_back(std::move(undecayed), AdamWOptionsOf(config, prefix, 0.0));
}

// AdamW or AdamW8bit: their groups and options are the same.
template <typename Adam>
std::unique_ptr<torch::optim::Optimizer> MakeAdam(const v1::TrainConfig& config,
                                                  const std::vector<NamedParameter>& parameters) {
  std::vector<torch::Tensor> decayed, undecayed;
  for (const NamedParameter& p : parameters) {
    (p.tensor.dim() >= 2 ? decayed : undecayed).push_back(p.tensor);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  AddDecayGroups(std::move(decayed), std::move(undecayed), config, "", groups);
  return std::make_unique<Adam>(std::move(groups));
}

std::unique_ptr<torch::optim::Optimizer> MakeMuon(const v1::TrainConfig& config,
                                                  const std::vector<NamedParameter>& parameters) {
  std::vector<torch::Tensor> hidden, decayed, undecayed;
  for (const NamedParameter& p : parameters) {
    if (IsHiddenMatrix(p)) {
      hidden.push_back(p.tensor);
    } else {
      (p.tensor.dim() >= 2 ? decayed : undecayed).push_back(p.tensor);
    }
  }
  auto muon = std::make_unique<MuonOptions>();
  muon->lr(config.learning_rate())
      .weight_decay(config.weight_decay())
      .momentum(OptimizerArgOr(config, "momentum"))
      .nesterov(OptimizerArgOr(config, "nesterov") != 0)
      .ns_steps(static_cast<int64_t>(OptimizerArgOr(config, "ns_steps")))
      .ns_a(OptimizerArgOr(config, "ns_a"))
      .ns_b(OptimizerArgOr(config, "ns_b"))
      .ns_c(OptimizerArgOr(config, "ns_c"))
      .ns_eps(OptimizerArgOr(config, "ns_eps"))
      .match_rms_adamw(OptimizerArgOr(config, "match_rms_adamw") != 0);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::move(hidden), std::move(muon));
  AddDecayGroups(std::move(decayed), std::move(undecayed), config, "adam_", groups);
  return std::make_unique<Muon>(std::move(groups), OptimizerArgOr(config, "adam_lr_ratio"));
}

SoapOptions SoapOptionsOf(const v1::TrainConfig& config, double weight_decay) {
  return SoapOptions(config.learning_rate())
      .beta1(OptimizerArgOr(config, "beta1"))
      .beta2(OptimizerArgOr(config, "beta2"))
      .shampoo_beta(OptimizerArgOr(config, "shampoo_beta"))
      .eps(OptimizerArgOr(config, "eps"))
      .weight_decay(weight_decay)
      .precondition_frequency(static_cast<int64_t>(OptimizerArgOr(config, "precondition_frequency")))
      .max_precond_dim(static_cast<int64_t>(OptimizerArgOr(config, "max_precond_dim")))
      .precondition_1d(OptimizerArgOr(config, "precondition_1d") != 0)
      .normalize_grads(OptimizerArgOr(config, "normalize_grads") != 0)
      .correct_bias(OptimizerArgOr(config, "correct_bias") != 0);
}

ShampooOptions ShampooOptionsOf(const v1::TrainConfig& config, double weight_decay) {
  return ShampooOptions(config.learning_rate())
      .beta1(OptimizerArgOr(config, "beta1"))
      .beta2(OptimizerArgOr(config, "beta2"))
      .weight_decay(weight_decay)
      .start_preconditioning_step(
          static_cast<int64_t>(OptimizerArgOr(config, "start_preconditioning_step")))
      .precondition_frequency(static_cast<int64_t>(OptimizerArgOr(config, "precondition_frequency")))
      .max_precond_dim(static_cast<int64_t>(OptimizerArgOr(config, "max_precond_dim")))
      .nesterov(OptimizerArgOr(config, "nesterov") != 0)
      .diagonal_eps(OptimizerArgOr(config, "diagonal_eps"))
      .matrix_eps(OptimizerArgOr(config, "matrix_eps"))
      .moving_average_for_momentum(OptimizerArgOr(config, "moving_average_for_momentum") != 0)
      .graft_bias_correction(OptimizerArgOr(config, "graft_bias_correction") != 0)
      .use_svd(OptimizerArgOr(config, "use_svd") != 0);
}

// Soap, Soap4bit or Shampoo over two groups: matrices decay, 1-D parameters do not.
template <typename Preconditioned, typename Options>
std::unique_ptr<torch::optim::Optimizer> MakePreconditioned(
    const v1::TrainConfig& config, const std::vector<NamedParameter>& parameters,
    Options (*options_of)(const v1::TrainConfig&, double)) {
  std::vector<torch::Tensor> decayed, undecayed;
  for (const NamedParameter& p : parameters) {
    (p.tensor.dim() >= 2 ? decayed : undecayed).push_back(p.tensor);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::move(decayed),
                      std::make_unique<Options>(options_of(config, config.weight_decay())));
  groups.emplace_back(std::move(undecayed), std::make_unique<Options>(options_of(config, 0.0)));
  return std::make_unique<Preconditioned>(groups, options_of(config, config.weight_decay()));
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

std::vector<NamedParameter> NamedParameters(torch::nn::Module& model) {
  std::vector<NamedParameter> out;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    out.push_back({item.key(), item.value()});
  }
  return out;
}

bool IsHiddenMatrix(const NamedParameter& parameter) {
  return parameter.tensor.dim() == 2 &&
         parameter.name.find("embed_tokens") == std::string::npos &&
         parameter.name.find("lm_head") == std::string::npos;
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(
    const v1::TrainConfig& config, torch::nn::Module& model) {
  return MakeOptimizer(config, NamedParameters(model));
}

absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(
    const v1::TrainConfig& config, const std::vector<NamedParameter>& parameters) {
  const std::string& name = config.optimizer();
  if (name == "adamw") return MakeAdam<AdamW>(config, parameters);
  if (name == "adamw8bit") return MakeAdam<AdamW8bit>(config, parameters);
  if (name == "muon") return MakeMuon(config, parameters);
  if (name == "soap") return MakePreconditioned<Soap>(config, parameters, SoapOptionsOf);
  if (name == "soap4bit") return MakePreconditioned<Soap4bit>(config, parameters, SoapOptionsOf);
  if (name == "shampoo") {
    return MakePreconditioned<Shampoo>(config, parameters, ShampooOptionsOf);
  }
  return absl::InvalidArgumentError(absl::StrCat("optimizer: unknown optimizer \"", name, "\""));
}

double StateBytesPerParameter(const torch::optim::Optimizer& optimizer) {
  const bool is_8bit = dynamic_cast<const AdamW8bit*>(&optimizer) != nullptr;
  const bool is_soap4bit = dynamic_cast<const Soap4bit*>(&optimizer) != nullptr;
  double bytes = 0;
  double elements = 0;
  for (const torch::optim::OptimizerParamGroup& group : optimizer.param_groups()) {
    // Each group's layout by its options: Muon's own group holds the hidden matrices, AdamW's
    // groups (Muon's too) the rest.
    absl::string_view layout = is_8bit ? "adamw8bit" : "adamw";
    OptimizerStateArgs args;
    if (dynamic_cast<const MuonOptions*>(&group.options()) != nullptr) {
      layout = "muon";
    } else if (const auto* soap = dynamic_cast<const SoapOptions*>(&group.options())) {
      layout = is_soap4bit ? "soap4bit" : "soap";
      args.max_precond_dim = soap->max_precond_dim();
      args.precondition_1d = soap->precondition_1d();
    } else if (const auto* shampoo = dynamic_cast<const ShampooOptions*>(&group.options())) {
      layout = "shampoo";
      args.max_precond_dim = shampoo->max_precond_dim();
      args.start_preconditioning_step = shampoo->start_preconditioning_step();
    }
    const bool hidden_matrix = layout == "muon";
    for (const torch::Tensor& p : group.params()) {
      elements += static_cast<double>(p.numel());
      bytes += static_cast<double>(*OptimizerStateBytes(layout, p.sizes(), hidden_matrix, args));
    }
  }
  return elements > 0 ? bytes / elements : 0;
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (torch::optim::OptimizerParamGroup& group : optimizer.param_groups()) {
    group.options().set_lr(lr);
  }
}

}  // namespace ablate::train
