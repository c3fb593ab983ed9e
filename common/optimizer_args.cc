#include "common/optimizer_args.h"

#include <cmath>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"

namespace ablate {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Adam's moment arguments, shared by adamw and adamw8bit; `prefix` names Muon's copies for
// the parameters it leaves to AdamW ("adam_beta1").
std::vector<OptimizerArg> AdamArgs(const std::string& prefix) {
  return {
      {prefix + "beta1", ArgType::kFloat, 0.9, 0, true, 1, false, "torch.optim.AdamW"},
      // Not torch's 0.999: 0.95 is what LLM pretraining uses (GPT-3, Llama 2, Qwen reports)
      // and what this project defaulted to before arguments were typed, so existing sweeps
      // keep their meaning. `beta2: 0.999` gives torch's.
      {prefix + "beta2", ArgType::kFloat, 0.95, 0, true, 1, false,
       "LLM pretraining practice (GPT-3, Llama 2); torch.optim.AdamW has 0.999"},
      {prefix + "eps", ArgType::kFloat, 1e-8, 0, true, kInf, false, "torch.optim.AdamW"},
  };
}

std::vector<OptimizerArg> MuonArgs() {
  std::vector<OptimizerArg> args = {
      {"momentum", ArgType::kFloat, 0.95, 0, true, 1, false, "torch.optim.Muon"},
      {"nesterov", ArgType::kBool, 1, 0, true, 1, true, "torch.optim.Muon"},
      {"ns_steps", ArgType::kInt, 5, 1, true, 100, false,
       "torch.optim.Muon (it refuses 100 or more)"},
      {"ns_a", ArgType::kFloat, 3.4445, -kInf, false, kInf, false,
       "torch.optim.Muon, from Keller Jordan's quintic"},
      {"ns_b", ArgType::kFloat, -4.7750, -kInf, false, kInf, false,
       "torch.optim.Muon, from Keller Jordan's quintic"},
      {"ns_c", ArgType::kFloat, 2.0315, -kInf, false, kInf, false,
       "torch.optim.Muon, from Keller Jordan's quintic"},
      {"ns_eps", ArgType::kFloat, 1e-7, 0, true, kInf, false, "torch.optim.Muon's eps"},
      // torch.optim.Muon's adjust_lr_fn: "original" scales the lr by sqrt(max(1, rows/cols));
      // "match_rms_adamw" by 0.2 * sqrt(max(rows, cols)) (Liu et al. 2025, "Muon is scalable
      // for LLM training"), which lets the AdamW part share the learning rate.
      {"match_rms_adamw", ArgType::kBool, 0, 0, true, 1, true,
       "torch.optim.Muon (adjust_lr_fn None means \"original\")"},
      // The AdamW part's learning rate as a multiple of the schedule's (ours: torch.optim.Muon
      // leaves the other parameters to a second optimizer with its own lr).
      {"adam_lr_ratio", ArgType::kFloat, 1, 0, false, kInf, false, "ours: one schedule"},
  };
  for (OptimizerArg& arg : AdamArgs("adam_")) args.push_back(arg);
  return args;
}

// SOAP's, shared by soap and soap4bit; defaults of pytorch-optimizer 4.1.0's SOAP (a port of
// the paper's code).
std::vector<OptimizerArg> SoapArgs() {
  const std::string source = "pytorch_optimizer.SOAP";
  return {
      {"beta1", ArgType::kFloat, 0.95, 0, true, 1, false, source},
      {"beta2", ArgType::kFloat, 0.95, 0, true, 1, false, source},
      // Negative means "beta2", the reference's None.
      {"shampoo_beta", ArgType::kFloat, -1, -1, true, 1, false, source + " (None: beta2)"},
      {"eps", ArgType::kFloat, 1e-8, 0, true, kInf, false, source},
      {"precondition_frequency", ArgType::kInt, 10, 1, true, kInf, false, source},
      {"max_precond_dim", ArgType::kInt, 10000, 1, true, kInf, false,
       source + "'s max_precondition_dim"},
      {"precondition_1d", ArgType::kBool, 0, 0, true, 1, true, source},
      {"normalize_grads", ArgType::kBool, 0, 0, true, 1, true, source + "'s normalize_gradient"},
      {"correct_bias", ArgType::kBool, 1, 0, true, 1, true, source},
  };
}

// Shampoo with an RMSprop graft; defaults of pytorch-optimizer 4.1.0's ScalableShampoo, but
// for max_precond_dim (its no_preconditioning_for_layers_with_dim_gt) and use_svd.
std::vector<OptimizerArg> ShampooArgs() {
  const std::string source = "pytorch_optimizer.ScalableShampoo";
  return {
      {"beta1", ArgType::kFloat, 0.9, 0, true, 1, false, source},
      {"beta2", ArgType::kFloat, 0.999, 0, true, 1, true, source},
      {"start_preconditioning_step", ArgType::kInt, 25, 1, true, kInf, false, source},
      {"precondition_frequency", ArgType::kInt, 1000, 1, true, kInf, false,
       source + "'s preconditioning_compute_steps"},
      {"max_precond_dim", ArgType::kInt, 8192, 1, true, kInf, false,
       source + "'s no_preconditioning_for_layers_with_dim_gt"},
      {"nesterov", ArgType::kBool, 1, 0, true, 1, true, source},
      {"diagonal_eps", ArgType::kFloat, 1e-10, 0, true, kInf, false, source},
      {"matrix_eps", ArgType::kFloat, 1e-6, 0, true, kInf, false, source},
      {"moving_average_for_momentum", ArgType::kBool, 0, 0, true, 1, true, source},
      // Off as the reference has it; on is Adam's bias-corrected denominator, as Meta's
      // DistributedShampoo grafts (trainer_lib/optim/shampoo.h says why it matters).
      {"graft_bias_correction", ArgType::kBool, 0, 0, true, 1, true,
       "ours; on as DistributedShampoo's AdamGraftingConfig"},
      // On: inverse roots by eigh, as Ablate always took them; off: the reference's default,
      // its coupled Newton iteration (trainer_lib/optim/shampoo.h says why ours is on).
      {"use_svd", ArgType::kBool, 1, 0, true, 1, true, source + " (default false there)"},
  };
}

const std::map<std::string, std::vector<OptimizerArg>, std::less<>>& Table() {
  static const auto* table = new std::map<std::string, std::vector<OptimizerArg>, std::less<>>{
      {"adamw", AdamArgs("")}, {"adamw8bit", AdamArgs("")}, {"muon", MuonArgs()},
      {"soap", SoapArgs()},    {"soap4bit", SoapArgs()},    {"shampoo", ShampooArgs()},
  };
  return *table;
}

}  // namespace

const std::vector<OptimizerArg>* OptimizerArgs(absl::string_view optimizer) {
  auto it = Table().find(optimizer);
  return it == Table().end() ? nullptr : &it->second;
}

absl::Status ValidateOptimizerArgs(const v1::TrainConfig& config) {
  const std::vector<OptimizerArg>* declared = OptimizerArgs(config.optimizer());
  if (declared == nullptr) return absl::OkStatus();
  return CheckTypedArgs("optimizer_args", config.optimizer(), *declared, config.optimizer_args());
}

double OptimizerArgOr(const v1::TrainConfig& config, absl::string_view name) {
  return TypedArgOr(absl::StrCat("optimizer ", config.optimizer()),
                    OptimizerArgs(config.optimizer()), config.optimizer_args(), name);
}

}  // namespace ablate
