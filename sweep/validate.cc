#include "sweep/validate.h"

#include <algorithm>
#include <cmath>
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
#include "sweep/tuning_check.h"

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

  // Every problem, one per setting, dimension or section at most: a problem makes the rest of
  // its own piece meaningless, but not the pieces beside it.
  std::vector<SpecIssue> Run() {
    if (spec_.name().empty()) Add(Fail("name", "", "a sweep needs a name"));
    if (spec_.grid().empty()) {
      Add(Fail("grid", "", "a sweep needs at least one dimension"));
      return std::move(issues_);
    }
    // Counted from the dimensions' sizes before anything is expanded, saturating rather than
    // overflowing, so the refusal can say how many cells the grid asks for.
    uint64_t cells = 1;
    for (const v1::Dimension& dimension : spec_.grid()) {
      const uint64_t size = static_cast<uint64_t>(dimension.values_size());
      cells = size != 0 && cells > UINT64_MAX / size ? UINT64_MAX : cells * size;
    }
    if (cells > kMaxCells) {
      Add(Fail(
          "grid", "",
          absl::StrCat("the grid has ", cells == UINT64_MAX ? "over 2^64" : absl::StrCat(cells),
                       " cells (the product of its dimensions' sizes); the limit is ", kMaxCells)));
    }
    for (const v1::Dimension& dimension : spec_.grid()) {
      const std::string key = absl::StrCat("grid.", dimension.name());
      if (!grid_.insert(dimension.name()).second) {
        Add(Fail(key, "", "this dimension is listed twice"));
        continue;
      }
      if (Add(CheckField(key, dimension.name()))) continue;
      AddAll(ValueIssues(key, dimension.name(), dimension.values(), /*distinct=*/true));
    }
    for (int i = 0; i < spec_.constraints_size(); ++i) {
      const v1::Constraint& constraint = spec_.constraints(i);
      const std::string key = absl::StrCat("constraints[", i, "]");
      Add(CheckConditions(key + ".when", constraint.when()));
      Add(CheckConditions(key + ".require", constraint.require()));
    }
    for (const auto& [name, value] : Sorted(spec_.fixed())) {
      const std::string key = absl::StrCat("fixed.", name);
      if (grid_.contains(name)) {
        Add(Fail(key, "", "also a grid dimension; set it in one place"));
        continue;
      }
      Add(CheckSetting(key, name, value));
    }
    for (int i = 0; i < spec_.overrides_size(); ++i) {
      const v1::Override& override = spec_.overrides(i);
      const std::string key = absl::StrCat("overrides[", i, "]");
      Add(CheckConditions(key + ".when", override.when()));
      if (override.set().empty()) Add(Fail(key + ".set", "", "an override must set something"));
      for (const auto& [name, value] : Sorted(override.set())) {
        const std::string set_key = absl::StrCat(key, ".set.", name);
        if (grid_.contains(name)) {
          // Applied after the grid's value, it would run a config its cell's label and id do not
          // name (or two cells' one config).
          Add(Fail(set_key, "",
                   "a grid dimension, which an override may not change (its cells would run what "
                   "their labels do not say); drop cells with constraints, or list them with "
                   "cells"));
          continue;
        }
        Add(CheckSetting(set_key, name, value));
      }
    }
    if (spec_.max_attempts() > kMaxAttempts) {
      Add(Fail("max_attempts", "", absl::StrCat("at most ", kMaxAttempts)));
    }
    Add(CheckShape());
    Add(CheckRepeats(cells));
    CheckDerived();
    if (spec_.has_tuning()) AddAll(FindTuningIssues(spec_, cells));
    for (int i = 0; i < spec_.throughput_size(); ++i) {
      const v1::Throughput& throughput = spec_.throughput(i);
      const std::string key = absl::StrCat("throughput[", i, "]");
      if (!throughput.when().empty()) Add(CheckConditions(key + ".when", throughput.when()));
      if (!(throughput.tokens_per_second() > 0) || std::isinf(throughput.tokens_per_second())) {
        Add(Fail(key + ".tokens_per_second", "[0]",
                 "must be a positive number of tokens one GPU trains per second"));
      }
    }
    return std::move(issues_);
  }

 private:
  // Keeps `issue`; true when there was one.
  bool Add(std::optional<SpecIssue> issue) {
    if (!issue) return false;
    issues_.push_back(*std::move(issue));
    return true;
  }

  void AddAll(std::vector<SpecIssue> issues) {
    for (SpecIssue& issue : issues) issues_.push_back(std::move(issue));
  }

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
    if (IsTrainArgMap(name)) {
      return Fail(key, "",
                  absl::StrCat("takes named settings, not a value (", name, ": {name: value})"));
    }
    if (std::optional<absl::string_view> ours = OursFor(name)) {
      return Fail(key, "", absl::StrCat("unknown setting (did you mean ", *ours, "?)"));
    }
    return Fail(key, "", absl::StrCat("unknown setting", DidYouMean(name, TrainFieldNames())));
  }

  // The setting other trainers' names mean (nanoGPT's, Hugging Face Trainer's, torchtitan's),
  // which no edit distance finds.
  static std::optional<absl::string_view> OursFor(absl::string_view name) {
    static constexpr std::pair<absl::string_view, absl::string_view> kAliases[] = {
        {"lr", "learning_rate"},
        {"max_steps", "steps"},
        {"train_steps", "steps"},
        {"max_iters", "steps"},
        {"warmup", "warmup_steps"},
        {"warmup_iters", "warmup_steps"},
        {"eval_interval", "eval_every"},
        {"eval_steps", "eval_every"},
        {"eval_iters", "eval_batches"},
        {"log_interval", "log_every"},
        {"logging_steps", "log_every"},
        {"save_steps", "checkpoint_every"},
        {"save_interval", "checkpoint_every"},
        {"seq_len", "context_length"},
        {"seq_length", "context_length"},
        {"max_seq_len", "context_length"},
        {"max_grad_norm", "grad_clip"},
        {"gradient_clipping", "grad_clip"},
        {"global_batch_size", "batch_size"},
        {"per_device_train_batch_size", "micro_batch_size"},
        {"gradient_checkpointing", "activation_checkpointing"},
        {"lr_scheduler_type", "lr_schedule"},
        {"min_lr", "min_lr_ratio"},
    };
    for (const auto& [theirs, ours] : kAliases) {
      if (theirs == name) return ours;
    }
    return std::nullopt;
  }

  static std::optional<SpecIssue> CheckSetting(const std::string& key, const std::string& name,
                                               const std::string& value) {
    if (auto issue = CheckField(key, name)) return issue;
    if (auto parsed = ValueKey(name, value); !parsed.ok()) {
      return Fail(key, "[0]", std::string(parsed.status().message()));
    }
    return std::nullopt;
  }

  std::optional<SpecIssue> CheckConditions(
      const std::string& key, const google::protobuf::RepeatedPtrField<v1::Condition>& all) {
    if (all.empty()) return Fail(key, "", "needs at least one condition");
    for (const v1::Condition& condition : all) {
      const std::string condition_key = absl::StrCat(key, ".", condition.dimension());
      if (!grid_.contains(condition.dimension())) return NotADimension(condition_key);
      std::vector<SpecIssue> issues =
          ValueIssues(condition_key, condition.dimension(), condition.values(), false);
      if (!issues.empty()) return issues.front();
    }
    return std::nullopt;
  }

  std::optional<SpecIssue> CheckShape() {
    const bool has_sample = spec_.has_sample();
    const int shapes = int{!spec_.baseline().empty()} + int{!spec_.cells().empty()} + has_sample;
    if (shapes > 1) {
      return Fail(!spec_.baseline().empty() ? "baseline" : "cells", "",
                  "a sweep takes one of baseline, cells and sample");
    }
    if (!spec_.baseline().empty()) {
      if (auto issue = CheckCellChoice("baseline", spec_.baseline())) return issue;
    }
    absl::flat_hash_map<std::string, int> seen;  // cell's value keys -> its index
    for (int i = 0; i < spec_.cells_size(); ++i) {
      const std::string key = absl::StrCat("cells[", i, "]");
      if (auto issue = CheckCellChoice(key, spec_.cells(i).values())) return issue;
      std::string cell;
      for (const v1::Dimension& dimension : spec_.grid()) {
        absl::StrAppend(
            &cell, *ValueKey(dimension.name(), spec_.cells(i).values().at(dimension.name())), "\n");
      }
      if (const auto [it, inserted] = seen.emplace(cell, i); !inserted) {
        return Fail(key, "", absl::StrCat("the same cell as cells[", it->second, "]"));
      }
    }
    if (has_sample && spec_.sample().count() == 0) {
      return Fail("sample.count", "", "must be at least 1");
    }
    return std::nullopt;
  }

  // A value for every grid dimension, each one of that dimension's values.
  std::optional<SpecIssue> CheckCellChoice(
      const std::string& key, const google::protobuf::Map<std::string, std::string>& values) {
    for (const auto& [name, value] : Sorted(values)) {
      const std::string value_key = absl::StrCat(key, ".", name);
      const v1::Dimension* dimension = FindDimension(name);
      if (dimension == nullptr) return NotADimension(value_key);
      absl::StatusOr<std::string> parsed = ValueKey(name, value);
      if (!parsed.ok()) return Fail(value_key, "[0]", std::string(parsed.status().message()));
      // Named apart: clang before 16 cannot capture a structured binding (the fuzz build's).
      const std::string& field = name;
      const bool listed = std::any_of(
          dimension->values().begin(), dimension->values().end(),
          [&](const std::string& v) { return ValueKey(field, v).value_or("") == *parsed; });
      if (!listed) {
        return Fail(value_key, "[0]",
                    absl::StrCat("'", value, "' is not a value of grid.", name, " (",
                                 absl::StrJoin(dimension->values(), ", "), ")"));
      }
    }
    for (const v1::Dimension& dimension : spec_.grid()) {
      if (!values.contains(dimension.name())) {
        return Fail(key, "", absl::StrCat("names no value of grid dimension ", dimension.name()));
      }
    }
    return std::nullopt;
  }

  // Repeats own seed and data_seed: nothing else may set them.
  std::optional<SpecIssue> CheckRepeats(uint64_t cells) {
    if (spec_.repeats() == 0) return std::nullopt;
    if (spec_.repeats() > kMaxRepeats) {
      return Fail("repeats", "", absl::StrCat("at most ", kMaxRepeats));
    }
    if (cells > kMaxCells / spec_.repeats()) {
      return Fail(
          "repeats", "",
          absl::StrCat("the grid's cells times repeats exceed the limit of ", kMaxCells, " jobs"));
    }
    constexpr absl::string_view kWhy = "repeats sets seed and data_seed of every cell";
    for (absl::string_view seed : {"seed", "data_seed"}) {
      if (grid_.contains(seed)) return Fail(absl::StrCat("grid.", seed), "", std::string(kWhy));
      if (spec_.fixed().contains(std::string(seed))) {
        return Fail(absl::StrCat("fixed.", seed), "", std::string(kWhy));
      }
      for (int i = 0; i < spec_.overrides_size(); ++i) {
        if (spec_.overrides(i).set().contains(std::string(seed))) {
          return Fail(absl::StrCat("overrides[", i, "].set.", seed), "", std::string(kWhy));
        }
      }
    }
    return std::nullopt;
  }

  // Every derived setting's first problem, as fixed's are all reported.
  void CheckDerived() {
    if (spec_.tokens_per_step() > 0) {
      for (absl::string_view where : {"grid", "fixed"}) {
        if (where == "grid" ? grid_.contains("batch_size") : spec_.fixed().contains("batch_size")) {
          Add(Fail(absl::StrCat(where, ".batch_size"), "",
                   "derived.tokens_per_step sets it; keep one of them"));
        }
      }
    }
    absl::flat_hash_set<std::string> fields;
    for (const v1::OptimizerSetting& setting : spec_.by_optimizer()) {
      Add(CheckDerivedSetting(setting, fields));
    }
  }

  std::optional<SpecIssue> CheckDerivedSetting(const v1::OptimizerSetting& setting,
                                               absl::flat_hash_set<std::string>& fields) const {
    const std::string key = absl::StrCat("derived.", setting.field());
    if (auto issue = CheckField(key, setting.field())) return issue;
    if (setting.field() == "optimizer" || setting.field() == "batch_size") {
      return Fail(key, "", "cannot depend on the optimizer");
    }
    if (!fields.insert(setting.field()).second) return Fail(key, "", "listed twice");
    if (grid_.contains(setting.field()) || spec_.fixed().contains(setting.field())) {
      return Fail(key, "",
                  absl::StrCat("also set in ", grid_.contains(setting.field()) ? "grid" : "fixed",
                               "; set it in one place"));
    }
    if (setting.values().empty()) return Fail(key, "", "needs a value per optimizer");
    for (const auto& [optimizer, value] : Sorted(setting.values())) {
      const std::string value_key = absl::StrCat(key, ".", optimizer);
      if (auto known = ValueKey("optimizer", optimizer); !known.ok()) {
        return Fail(value_key, "", std::string(known.status().message()));
      }
      if (auto issue = CheckSetting(value_key, setting.field(), value)) return issue;
    }
    return std::nullopt;
  }

  const v1::Dimension* FindDimension(const std::string& name) const {
    for (const v1::Dimension& dimension : spec_.grid()) {
      if (dimension.name() == name) return &dimension;
    }
    return nullptr;
  }

  std::optional<SpecIssue> NotADimension(const std::string& key) const {
    std::vector<std::string> names;
    for (const v1::Dimension& d : spec_.grid()) names.push_back(d.name());
    const std::string name = key.substr(key.rfind('.') + 1);
    return Fail(key, "",
                absl::StrCat("not a grid dimension", DidYouMean(name, names),
                             " (grid: ", absl::StrJoin(names, ", "), ")"));
  }

  const v1::SweepSpec& spec_;
  absl::flat_hash_set<std::string> grid_;  // dimension names seen so far
  std::vector<SpecIssue> issues_;
};

}  // namespace

std::vector<SpecIssue> FindSpecIssues(const v1::SweepSpec& spec) { return SpecChecker(spec).Run(); }

std::vector<SpecIssue> ValueIssues(const std::string& key, absl::string_view field,
                                   const google::protobuf::RepeatedPtrField<std::string>& values,
                                   bool distinct) {
  if (values.empty()) return {{key, key, "needs at least one value"}};
  std::vector<SpecIssue> out;
  absl::flat_hash_map<std::string, int> seen;  // parsed value -> its first index
  for (int i = 0; i < values.size(); ++i) {
    const std::string at = absl::StrCat(key, "[", i, "]");
    absl::StatusOr<std::string> parsed = ValueKey(field, values[i]);
    if (!parsed.ok()) {
      out.push_back({key, at, std::string(parsed.status().message())});
      continue;
    }
    const auto [it, inserted] = seen.emplace(*parsed, i);
    if (distinct && !inserted) {
      const std::string& first = values[it->second];
      out.push_back({key, at,
                     first == values[i] ? absl::StrCat("'", first, "' is listed twice")
                                        : absl::StrCat("'", values[i], "' repeats '", first, "'")});
    }
  }
  return out;
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
    case FieldDescriptor::CPPTYPE_BOOL:
      return reflection->GetBool(scratch, descriptor) ? std::string("true") : std::string("false");
    case FieldDescriptor::CPPTYPE_DOUBLE:
      // 17 digits tell every double apart, unlike the 6 a default conversion keeps.
      return absl::StrFormat("%.17g", reflection->GetDouble(scratch, descriptor));
    default:
      break;
  }
  std::string name = reflection->GetString(scratch, descriptor);
  if (field == "model" && absl::StartsWith(name, kHfModelPrefix)) {
    // A relative path would be read from the CLI's folder by `validate` and from the
    // coordinator's and each trainer's own by the job: maybe three files, or none.
    if (!absl::StartsWith(name.substr(kHfModelPrefix.size()), "/")) {
      return absl::InvalidArgumentError(absl::StrCat(
          name,
          ": give an absolute path (the CLI, the coordinator and each trainer read it, each "
          "from its own working directory)"));
    }
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
  std::vector<internal::SpecIssue> issues = internal::FindSpecIssues(spec);
  if (issues.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrJoin(issues, "\n", [](std::string* out, const internal::SpecIssue& issue) {
        absl::StrAppend(out, issue.key, ": ", issue.problem);
      }));
}

}  // namespace ablate::sweep
