#include "sweep/derived.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/optimizer_args.h"
#include "common/train_config.h"
#include "sweep/validate.h"

namespace ablate::sweep::internal {
namespace {

// Whether `field` is "optimizer_args.KEY" for a KEY that `optimizer` declares; true for any
// other field, which every optimizer has.
bool TakesOptimizerArg(const std::string& optimizer, absl::string_view field) {
  absl::string_view key = field;
  if (!absl::ConsumePrefix(&key, "optimizer_args.")) return true;
  const std::vector<OptimizerArg>* args = OptimizerArgs(optimizer);
  return args != nullptr && std::any_of(args->begin(), args->end(),
                                        [key](const OptimizerArg& arg) { return arg.name == key; });
}

}  // namespace

Derived DerivedOf(const v1::SweepSpec& spec) {
  Derived out;
  out.tokens_per_step = spec.tokens_per_step();
  for (const v1::OptimizerSetting& setting : spec.by_optimizer()) {
    absl::flat_hash_map<std::string, std::string> values;
    for (const auto& [optimizer, value] : setting.values()) {
      values.emplace(*ValueKey("optimizer", optimizer), value);
    }
    out.by_optimizer.emplace_back(setting.field(), std::move(values));
  }
  return out;
}

absl::Status ApplyDerived(const Derived& derived, v1::TrainConfig& config) {
  std::vector<std::string> problems;
  if (derived.tokens_per_step > 0) {
    const uint64_t context = config.context_length();
    if (context == 0 || derived.tokens_per_step % context != 0) {
      problems.push_back(absl::StrCat("derived.tokens_per_step: ", derived.tokens_per_step,
                                      " tokens is not a whole number of ", context,
                                      "-token sequences"));
    } else if (derived.tokens_per_step / context > kMaxBatch) {
      problems.push_back(
          absl::StrCat("derived.tokens_per_step: ", derived.tokens_per_step / context,
                       " sequences of ", context, " tokens per step; the limit is ", kMaxBatch));
    } else {
      config.set_batch_size(static_cast<uint32_t>(derived.tokens_per_step / context));
    }
  }
  for (const auto& [field, values] : derived.by_optimizer) {
    const auto it = values.find(config.optimizer());
    if (it == values.end()) {
      // An argument of some optimizers: those without it take none (a value for one would be
      // refused as an argument it does not have).
      if (TakesOptimizerArg(config.optimizer(), field)) {
        problems.push_back(
            absl::StrCat("derived.", field, ": no value for optimizer ", config.optimizer()));
      }
      continue;
    }
    if (absl::Status set = SetTrainField(config, field, it->second); !set.ok()) {
      problems.emplace_back(set.message());
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
}

}  // namespace ablate::sweep::internal
