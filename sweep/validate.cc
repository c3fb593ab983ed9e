#include "sweep/validate.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/catalog.h"
#include "common/did_you_mean.h"
#include "common/hf_config.h"
#include "common/train_config.h"
#include "sweep/grid.h"

namespace ablate::sweep {
namespace internal {
namespace {

using google::protobuf::FieldDescriptor;


// Catalog names a value of `field` must be one of, or null when any value of its type goes.
const std::vector<std::string>* KnownNames(absl::string_view field) {
  if (field == "model") return &ModelNames();
  if (field == "attention") return &AttentionNames();
  if (field == "optimizer") return &OptimizerNames();
  return nullptr;
}

class SpecChecker {
 public:
  explicit SpecChecker(const v1::SweepSpec& spec) : spec_(spec) {}

  std::optional<SpecIssue> Run() {
    if (spec_.name().empty()) return Fail("name", "", "a sweep needs a name");
    if (spec_.grid().empty()) return Fail("grid", "", "a sweep needs at least one dimension");
    // Counted from the dimensions' sizes before anything is expanded, saturating rather than
    // overflowing, so the refusal can say how many cells the grid asks for.
    uint64_t cells = 1;
    for (const v1::Dimension& dimension : spec_.grid()) {
      const uint64_t size = static_cast<uint64_t>(dimension.values_size());
      cells = size != 0 && cells > UINT64_MAX / size ? UINT64_MAX : cells * size;
    }
    if (cells > kMaxCells) {
      return Fail("grid", "",
                  absl::StrCat("the grid has ", cells == UINT64_MAX ? "over 2^64" : absl::StrCat(cells),
                               " cells (the product of its dimensions' sizes); the limit is ",
                               kMaxCells));
    }
    for (const v1::Dimension& dimension : spec_.grid()) {
      const std::string key = absl::StrCat("grid.", dimension.name());
      if (auto issue = CheckField(key, dimension.name())) return issue;
      if (!grid_.insert(dimension.name()).second) {
        return Fail(key, "", "this dimension is listed twice");
      }
      if (auto issue = CheckValues(key, dimension.name(), dimension.values(), true)) return issue;
    }
    for (int i = 0; i < spec_.constraints_size(); ++i) {
      const v1::Constraint& constraint = spec_.constraints(i);
      const std::string key = absl::StrCat("constraints[", i, "]");
      if (auto issue = CheckConditions(key + ".when", constraint.when())) return issue;
      if (auto issue = CheckConditions(key + ".require", constraint.require())) return issue;
    }
    for (const auto& [name, value] : Sorted(spec_.fixed())) {
      const std::string key = absl::StrCat("fixed.", name);
      if (grid_.contains(name)) {
        return Fail(key, "", "also a grid dimension; set it in one place");
      }
      if (auto issue = CheckSetting(key, name, value)) return issue;
    }
    for (int i = 0; i < spec_.overrides_size(); ++i) {
      const v1::Override& override = spec_.overrides(i);
      const std::string key = absl::StrCat("overrides[", i, "]");
      if (auto issue = CheckConditions(key + ".when", override.when())) return issue;
      if (override.set().empty()) return Fail(key + ".set", "", "an override must set something");
      for (const auto& [name, value] : Sorted(override.set())) {
        if (auto issue = CheckSetting(absl::StrCat(key, ".set.", name), name, value)) {
          return issue;
        }
      }
    }
    if (spec_.max_attempts() > kMaxAttempts) {
      return Fail("max_attempts", "", absl::StrCat("at most ", kMaxAttempts));
    }
    return std::nullopt;
  }

 private:
  static std::optional<SpecIssue> Fail(const std::string& key, absl::string_view item,
                                       std::string problem) {
    return SpecIssue{key, absl::StrCat(key, item), std::move(problem)};
  }

  static std::map<std::string, std::string> Sorted(
      const google::protobuf::Map<std::string, std::string>& map) {
    return {map.begin(), map.end()};
  }

  static std::optional<SpecIssue> CheckField(const std::string& key, const std::string& name) {
    if (IsTrainField(name)) return std::nullopt;
    return Fail(key, "", absl::StrCat("unknown setting", DidYouMean(name, TrainFieldNames())));
  }

  static std::optional<SpecIssue> CheckSetting(const std::string& key, const std::string& name,
                                               const std::string& value) {
    if (auto issue = CheckField(key, name)) return issue;
    if (auto parsed = ValueKey(name, value); !parsed.ok()) {
      return Fail(key, "[0]", std::string(parsed.status().message()));
    }
    return std::nullopt;
  }

  // Each value must parse; a grid's values must also differ once parsed.
  static std::optional<SpecIssue> CheckValues(
      const std::string& key, const std::string& field,
      const google::protobuf::RepeatedPtrField<std::string>& values, bool distinct) {
    if (values.empty()) return Fail(key, "", "needs at least one value");
    absl::flat_hash_map<std::string, int> seen;
    for (int i = 0; i < values.size(); ++i) {
      const std::string item = absl::StrCat("[", i, "]");
      absl::StatusOr<std::string> parsed = ValueKey(field, values[i]);
      if (!parsed.ok()) return Fail(key, item, std::string(parsed.status().message()));
      const auto [it, inserted] = seen.emplace(*parsed, i);
      if (distinct && !inserted) {
        const std::string& first = values[it->second];
        return Fail(key, item,
                    first == values[i] ? absl::StrCat("'", first, "' is listed twice")
                                       : absl::StrCat("'", values[i], "' repeats '", first, "'"));
      }
    }
    return std::nullopt;
  }

  std::optional<SpecIssue> CheckConditions(
      const std::string& key, const google::protobuf::RepeatedPtrField<v1::Condition>& all) {
    if (all.empty()) return Fail(key, "", "needs at least one condition");
    for (const v1::Condition& condition : all) {
      const std::string condition_key = absl::StrCat(key, ".", condition.dimension());
      if (!grid_.contains(condition.dimension())) {
        std::vector<std::string> names;
        for (const v1::Dimension& d : spec_.grid()) names.push_back(d.name());
        return Fail(condition_key, "",
                    absl::StrCat("not a grid dimension (grid: ", absl::StrJoin(names, ", "), ")"));
      }
      if (auto issue =
              CheckValues(condition_key, condition.dimension(), condition.values(), false)) {
        return issue;
      }
    }
    return std::nullopt;
  }

  const v1::SweepSpec& spec_;
  absl::flat_hash_set<std::string> grid_;  // dimension names seen so far
};

}  // namespace

std::optional<SpecIssue> FindSpecIssue(const v1::SweepSpec& spec) {
  return SpecChecker(spec).Run();
}

absl::StatusOr<std::string> ValueKey(absl::string_view field, absl::string_view text) {
  v1::TrainConfig scratch;
  if (absl::Status set = SetTrainField(scratch, field, text); !set.ok()) {
    // SetTrainField names the field; the caller names the key, which says more.
    absl::string_view problem = set.message();
    absl::ConsumePrefix(&problem, absl::StrCat(field, ": "));
    return absl::InvalidArgumentError(problem);
  }
  // A key of a map field (optimizer_args.beta2, attention_args.window): its one entry.
  for (const auto* args : {&scratch.optimizer_args(), &scratch.attention_args()}) {
    if (!args->empty()) return absl::StrFormat("%.17g", args->begin()->second);
  }
  const FieldDescriptor* descriptor =
      v1::TrainConfig::descriptor()->FindFieldByName(std::string(field));
  const auto* reflection = scratch.GetReflection();
  switch (descriptor->cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(reflection->GetUInt32(scratch, descriptor));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(reflection->GetUInt64(scratch, descriptor));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      // 17 digits tell every double apart, unlike the 6 a default conversion keeps.
      return absl::StrFormat("%.17g", reflection->GetDouble(scratch, descriptor));
    default:
      break;
  }
  std::string name = reflection->GetString(scratch, descriptor);
  if (field == "model" && absl::StartsWith(name, kHfModelPrefix)) {
    if (absl::StatusOr<v1::ModelConfig> model = ModelByName(name); !model.ok()) {
      return absl::InvalidArgumentError(model.status().message());
    }
    return name;
  }
  if (const std::vector<std::string>* known = KnownNames(field);
      known != nullptr && std::find(known->begin(), known->end(), name) == known->end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown ", field, " '", name,
                                                   "' (known: ", absl::StrJoin(*known, ", "), ")"));
  }
  return name;
}

const std::vector<std::string>& TrainFieldNames() {
  static const auto* names = [] {
    auto* out = new std::vector<std::string>;
    const auto* descriptor = v1::TrainConfig::descriptor();
    for (int i = 0; i < descriptor->field_count(); ++i) {
      if (IsTrainField(descriptor->field(i)->name())) out->push_back(descriptor->field(i)->name());
    }
    return out;
  }();
  return *names;
}

}  // namespace internal

absl::Status ValidateSweepSpec(const v1::SweepSpec& spec) {
  std::optional<internal::SpecIssue> issue = internal::FindSpecIssue(spec);
  if (!issue) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(issue->key, ": ", issue->problem));
}

}  // namespace ablate::sweep
