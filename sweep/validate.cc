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
#include "sweep/tuning.h"

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
      Add(CheckValues(key, dimension.name(), dimension.values(), true));
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
        Add(CheckSetting(absl::StrCat(key, ".set.", name), name, value));
      }
    }
    if (spec_.max_attempts() > kMaxAttempts) {
      Add(Fail("max_attempts", "", absl::StrCat("at most ", kMaxAttempts)));
    }
    Add(CheckShape());
    Add(CheckRepeats(cells));
    Add(CheckDerived());
    if (spec_.has_tuning()) Add(CheckTuning(cells));
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
      if (!grid_.contains(condition.dimension())) return NotADimension(condition_key);
      if (auto issue =
              CheckValues(condition_key, condition.dimension(), condition.values(), false)) {
        return issue;
      }
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

  std::optional<SpecIssue> CheckDerived() {
    if (spec_.tokens_per_step() > 0) {
      if (grid_.contains("batch_size")) {
        return Fail("grid.batch_size", "", "derived.tokens_per_step sets it; keep one of them");
      }
      if (spec_.fixed().contains("batch_size")) {
        return Fail("fixed.batch_size", "", "derived.tokens_per_step sets it; keep one of them");
      }
    }
    absl::flat_hash_set<std::string> fields;
    for (const v1::OptimizerSetting& setting : spec_.by_optimizer()) {
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
    }
    return std::nullopt;
  }

  // One problem of the tuning section at most (sweep/tuning.h says what it means).
  std::optional<SpecIssue> CheckTuning(uint64_t cells) const {
    const v1::Tuning& tuning = spec_.tuning();
    if (!tuning.method().empty() && tuning.method() != kTuningMethod) {
      return Fail("tuning.method", "[0]",
                  absl::StrCat("unknown method '", tuning.method(), "' (known: ", kTuningMethod,
                               ", synchronous successive halving)"));
    }
    if (!tuning.metric().empty() && tuning.metric() != kTuningMetric) {
      return Fail("tuning.metric", "[0]",
                  absl::StrCat("unknown metric '", tuning.metric(), "' (known: ", kTuningMetric,
                               ", the evaluation at a rung's end)"));
    }
    if (tuning.parameters().empty()) {
      return Fail("tuning.parameters", "", "needs learning_rate, weight_decay or both");
    }
    absl::flat_hash_set<std::string> seen;
    for (const v1::TunedParameter& parameter : tuning.parameters()) {
      if (auto issue = CheckTunedParameter(parameter, tuning.samples() > 0)) return issue;
      const std::string key = absl::StrCat("tuning.parameters.", parameter.name());
      if (!seen.insert(parameter.name()).second) return Fail(key, "", "listed twice");
    }
    if (tuning.samples() > kMaxTrials) {
      return Fail("tuning.samples", "[0]", absl::StrCat("at most ", kMaxTrials));
    }
    // Counted before the points are made, so a huge grid is refused without being built.
    uint64_t count = tuning.samples();
    for (const v1::TunedParameter& parameter : tuning.parameters()) {
      if (tuning.samples() > 0) break;
      const uint64_t size = parameter.values().empty()
                                ? parameter.points()
                                : static_cast<uint64_t>(parameter.values_size());
      count = std::max<uint64_t>(count, 1) * std::min<uint64_t>(size, kMaxTrials + 1);
    }
    if (count > kMaxTrials) {
      return Fail("tuning.parameters", "",
                  absl::StrCat("the search has ", count, " points; the limit is ", kMaxTrials));
    }
    const std::vector<v1::SearchPoint> points = SearchPoints(tuning);
    if (points.size() < 2) {
      return Fail("tuning.parameters", "", "the search needs at least two points");
    }
    absl::flat_hash_set<std::string> drawn;
    for (const v1::SearchPoint& point : points) {
      std::string values;
      for (const v1::CellValue& value : point.values()) {
        absl::StrAppend(&values, value.dimension(), "=",
                        ValueKey(value.dimension(), value.value()).value_or(value.value()), " ");
      }
      if (!drawn.insert(values).second) {
        return Fail("tuning.samples", "[0]",
                    absl::StrCat("draws ", values, "twice; draw fewer points or widen the ranges"));
      }
    }
    if (cells > kMaxCells / points.size()) {
      return Fail("tuning.parameters", "",
                  absl::StrCat("the grid's cells times the search's ", points.size(),
                               " points exceed the limit of ", kMaxCells, " jobs"));
    }
    if (tuning.min_steps() == 0) return Fail("tuning.min_steps", "", "must be at least 1");
    if (tuning.reduction_factor() == 1) {
      return Fail("tuning.reduction_factor", "[0]", "must be at least 2 (3 when left out)");
    }
    return std::nullopt;
  }

  std::optional<SpecIssue> CheckTunedParameter(const v1::TunedParameter& parameter,
                                               bool sampled) const {
    const std::string key = absl::StrCat("tuning.parameters.", parameter.name());
    if (parameter.name() != "learning_rate" && parameter.name() != "weight_decay") {
      return Fail(key, "", "only learning_rate and weight_decay are tuned");
    }
    if (grid_.contains(parameter.name())) {
      return Fail(key, "", "also a grid dimension; tune it or sweep it");
    }
    if (!parameter.values().empty()) {
      if (parameter.low() != 0 || parameter.high() != 0 || parameter.points() != 0) {
        return Fail(key, "", "give values or a range, not both");
      }
      return CheckValues(key + ".values", parameter.name(), parameter.values(), true);
    }
    const std::string range = key + (sampled ? ".log_uniform" : ".log_grid");
    if (!(parameter.low() > 0) || !(parameter.high() > parameter.low()) ||
        std::isinf(parameter.high())) {
      return Fail(range, "", "a log range needs 0 < low < high");
    }
    if (sampled && parameter.points() > 0) {
      return Fail(key + ".points", "",
                  "with tuning.samples a range is drawn from (log_uniform), not a grid");
    }
    if (!sampled && parameter.points() < 2) {
      return Fail(key + (parameter.points() == 0 ? "" : ".points"), "",
                  "a log grid needs points (at least 2), or tuning.samples to draw from it");
    }
    if (parameter.points() > kMaxTrials) {
      return Fail(key + ".points", "", absl::StrCat("at most ", kMaxTrials));
    }
    if (!sampled) {
      v1::Tuning alone;
      *alone.add_parameters() = parameter;
      const std::vector<v1::SearchPoint> grid = SearchPoints(alone);
      for (size_t i = 1; i < grid.size(); ++i) {
        if (grid[i].values(0).value() == grid[i - 1].values(0).value()) {
          return Fail(key + ".points", "",
                      absl::StrCat("too many points for the range: ", grid[i].values(0).value(),
                                   " twice at 3 significant digits"));
        }
      }
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
    return Fail(key, "",
                absl::StrCat("not a grid dimension (grid: ", absl::StrJoin(names, ", "), ")"));
  }

  const v1::SweepSpec& spec_;
  absl::flat_hash_set<std::string> grid_;  // dimension names seen so far
  std::vector<SpecIssue> issues_;
};

}  // namespace

std::vector<SpecIssue> FindSpecIssues(const v1::SweepSpec& spec) { return SpecChecker(spec).Run(); }

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
