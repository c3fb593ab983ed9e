#include "sweep/sweep_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/train_config.h"
#include "sweep/validate.h"
#include "sweep/yaml_limits.h"
#include "yaml-cpp/yaml.h"

namespace ablate::sweep {
namespace {

using google::protobuf::RepeatedPtrField;
using internal::SpecIssue;
using EntryFn = absl::FunctionRef<absl::Status(const std::string& name, const std::string& key,
                                               const YAML::Node& value)>;

const std::vector<std::string>& TopLevelKeys() {
  static const auto* keys = new std::vector<std::string>{
      "name",      "description", "grid",         "constraints",     "fixed",
      "overrides", "priority",    "max_attempts", "checkpoint_root", "baseline",
      "cells",     "sample",      "repeats",      "derived",         "throughput",
      "tuning"};
  return *keys;
}

// Walks the YAML tree into a SweepSpec. Shape problems (a list where a map belongs, an unknown
// key) are found on the way; the rules on content are FindSpecIssues', checked afterwards on
// the spec. To place those, the reader remembers where every key and value stood, under the
// same names SpecIssue::at uses: `key` for a key, `key[i]` for its i-th value.
class SweepFileReader {
 public:
  explicit SweepFileReader(absl::string_view source) : source_(source) {}

  absl::StatusOr<v1::SweepSpec> Read(absl::string_view yaml) {
    if (absl::Status limits = CheckYamlLimits(yaml, source_); !limits.ok()) return limits;
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrFormat("%s:%d:%d: invalid YAML: %s", source_,
                                                        e.mark.line + 1, e.mark.column + 1, e.msg));
    }
    if (!root.IsMap()) {
      return Error(
          root.Mark(), "sweep",
          absl::StrCat("expected a map of settings (", absl::StrJoin(TopLevelKeys(), ", "), ")"));
    }
    v1::SweepSpec spec;
    ForEachEntry(root, "",
                 [&](const std::string& name, const std::string& key, const YAML::Node& value) {
                   return ReadTopLevel(name, key, value, spec);
                 })
        .IgnoreError();  // each problem is in problems_
    // A rule on content is checked even when the file's shape had problems, so one run lists
    // both; a rule about the map or list that held a problem would only repeat it ("an override
    // must set something" after "overrides[0].sett: unknown key").
    const std::vector<Problem> shape = problems_;
    for (const SpecIssue& issue : internal::FindSpecIssues(spec)) {
      const bool repeats = std::any_of(shape.begin(), shape.end(), [&](const Problem& p) {
        return Related(Parent(p.key), issue.key);
      });
      if (!repeats) Locate(issue).IgnoreError();
    }
    if (problems_.empty()) return spec;
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    std::vector<std::string> lines;
    for (const Problem& problem : problems_) lines.push_back(problem.text);
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }

 private:
  absl::Status ReadTopLevel(const std::string& name, const std::string& key,
                            const YAML::Node& value, v1::SweepSpec& spec) {
    if (name == "grid") return ReadGrid(value, key, spec);
    if (name == "constraints") {
      return ForEachItem(value, key, [&](const std::string& item_key, const YAML::Node& item) {
        return ReadConstraint(item, item_key, *spec.add_constraints());
      });
    }
    if (name == "overrides") {
      return ForEachItem(value, key, [&](const std::string& item_key, const YAML::Node& item) {
        return ReadOverride(item, item_key, *spec.add_overrides());
      });
    }
    if (name == "fixed") return ReadSettings(value, key, "", *spec.mutable_fixed());
    if (name == "baseline") return ReadCellChoice(value, key, *spec.mutable_baseline());
    if (name == "cells") {
      return ForEachItem(value, key, [&](const std::string& item_key, const YAML::Node& item) {
        return ReadCellChoice(item, item_key, *spec.add_cells()->mutable_values());
      });
    }
    if (name == "sample") return ReadSample(value, key, *spec.mutable_sample());
    if (name == "derived") return ReadDerived(value, key, spec);
    if (name == "tuning") return ReadTuning(value, key, *spec.mutable_tuning());
    if (name == "throughput") {
      return ForEachItem(value, key, [&](const std::string& item_key, const YAML::Node& item) {
        return ReadThroughput(item, item_key, *spec.add_throughput());
      });
    }
    if (name == "repeats") {
      absl::StatusOr<uint64_t> repeats = WholeNumber<uint64_t>(value, key);
      if (!repeats.ok()) return repeats.status();
      if (*repeats > UINT32_MAX) return Error(value, key, "too many repeats");
      spec.set_repeats(static_cast<uint32_t>(*repeats));
      return absl::OkStatus();
    }
    if (name == "priority") {
      absl::StatusOr<int32_t> priority = WholeNumber<int32_t>(value, key);
      if (!priority.ok()) return priority.status();
      spec.set_priority(*priority);
      return absl::OkStatus();
    }
    if (name == "max_attempts") {
      absl::StatusOr<uint32_t> attempts = WholeNumber<uint32_t>(value, key, /*positive=*/true);
      if (!attempts.ok()) return attempts.status();
      spec.set_max_attempts(*attempts);
      return absl::OkStatus();
    }
    if (name != "name" && name != "description" && name != "checkpoint_root") {
      return UnknownKey(key, name, TopLevelKeys());
    }
    absl::StatusOr<std::string> text = Scalar(value, key);
    if (!text.ok()) return text.status();
    if (name == "name") {
      spec.set_name(*text);
    } else if (name == "description") {
      spec.set_description(*text);
    } else {
      spec.set_checkpoint_root(*text);
    }
    return absl::OkStatus();
  }

  absl::Status ReadGrid(const YAML::Node& node, const std::string& key, v1::SweepSpec& spec) {
    if (!node.IsMap()) return Error(node, key, "expected a map of dimension: [values]");
    return ForEachEntry(
        node, key,
        [&](const std::string& name, const std::string& dimension_key, const YAML::Node& values) {
          if (!values.IsSequence()) {
            return Error(values, dimension_key, "expected a list of values, as [a, b]");
          }
          v1::Dimension& dimension = *spec.add_grid();
          dimension.set_name(name);
          return ReadValues(values, dimension_key, *dimension.mutable_values());
        });
  }

  // A condition's values: a list, or one value alone.
  absl::Status ReadConditions(const YAML::Node& node, const std::string& key,
                              RepeatedPtrField<v1::Condition>& out) {
    if (!node.IsMap()) return Error(node, key, "expected a map of dimension: [values]");
    return ForEachEntry(
        node, key,
        [&](const std::string& name, const std::string& condition_key, const YAML::Node& values) {
          v1::Condition& condition = *out.Add();
          condition.set_dimension(name);
          return ReadValues(values, condition_key, *condition.mutable_values());
        });
  }

  absl::Status ReadConstraint(const YAML::Node& node, const std::string& key,
                              v1::Constraint& constraint) {
    if (!node.IsMap()) return Error(node, key, "expected a map with when, require and reason");
    return ForEachEntry(node, key,
                        [&](const std::string& name, const std::string& entry_key,
                            const YAML::Node& value) -> absl::Status {
                          if (name == "when")
                            return ReadConditions(value, entry_key, *constraint.mutable_when());
                          if (name == "require") {
                            return ReadConditions(value, entry_key, *constraint.mutable_require());
                          }
                          if (name == "reason") {
                            absl::StatusOr<std::string> reason = Scalar(value, entry_key);
                            if (!reason.ok()) return reason.status();
                            constraint.set_reason(*reason);
                            return absl::OkStatus();
                          }
                          return UnknownKey(entry_key, name, {"when", "require", "reason"});
                        });
  }

  absl::Status ReadOverride(const YAML::Node& node, const std::string& key,
                            v1::Override& override) {
    if (!node.IsMap()) return Error(node, key, "expected a map with when and set");
    return ForEachEntry(node, key,
                        [&](const std::string& name, const std::string& entry_key,
                            const YAML::Node& value) -> absl::Status {
                          if (name == "when")
                            return ReadConditions(value, entry_key, *override.mutable_when());
                          if (name == "set")
                            return ReadSettings(value, entry_key, "", *override.mutable_set());
                          return UnknownKey(entry_key, name, {"when", "set"});
                        });
  }

  // dimension: value, one value each (a baseline, or one cell of an explicit list).
  absl::Status ReadCellChoice(const YAML::Node& node, const std::string& key,
                              google::protobuf::Map<std::string, std::string>& out) {
    if (!node.IsMap()) return Error(node, key, "expected a map of dimension: value");
    return ForEachEntry(node, key,
                        [&](const std::string& name, const std::string& value_key,
                            const YAML::Node& value) -> absl::Status {
                          absl::StatusOr<std::string> text = Scalar(value, value_key);
                          if (!text.ok()) return text.status();
                          out[name] = *text;
                          Remember(value_key + "[0]", value);
                          return absl::OkStatus();
                        });
  }

  absl::Status ReadSample(const YAML::Node& node, const std::string& key, v1::Sample& sample) {
    if (!node.IsMap()) return Error(node, key, "expected a map with count and seed");
    return ForEachEntry(node, key,
                        [&](const std::string& name, const std::string& entry_key,
                            const YAML::Node& value) -> absl::Status {
                          if (name != "count" && name != "seed") {
                            return UnknownKey(entry_key, name, {"count", "seed"});
                          }
                          absl::StatusOr<uint64_t> number = WholeNumber<uint64_t>(value, entry_key);
                          if (!number.ok()) return number.status();
                          if (name == "seed") {
                            sample.set_seed(*number);
                          } else if (*number > UINT32_MAX) {
                            return Error(value, entry_key, "more cells than any grid holds");
                          } else {
                            sample.set_count(static_cast<uint32_t>(*number));
                          }
                          return absl::OkStatus();
                        });
  }

  // `tokens_per_step: N`, and `FIELD: {optimizer: value}` for settings that depend on the
  // cell's optimizer.
  absl::Status ReadDerived(const YAML::Node& node, const std::string& key, v1::SweepSpec& spec) {
    if (!node.IsMap()) return Error(node, key, "expected a map of derived settings");
    return ForEachEntry(
        node, key,
        [&](const std::string& name, const std::string& entry_key,
            const YAML::Node& value) -> absl::Status {
          if (name == "tokens_per_step") {
            absl::StatusOr<std::string> text = Scalar(value, entry_key);
            if (!text.ok()) return text.status();
            v1::TrainConfig scratch;  // read as a count, so "512K" works as in the grid
            if (!SetTrainField(scratch, "seed", *text).ok()) {
              return Error(value, entry_key, absl::StrCat("'", *text, "' is not a whole number"));
            }
            spec.set_tokens_per_step(scratch.seed());
            Remember(entry_key + "[0]", value);
            return absl::OkStatus();
          }
          if (!value.IsMap()) {
            return Error(value, entry_key,
                         "expected tokens_per_step, or a setting as a map of optimizer: value");
          }
          v1::OptimizerSetting& setting = *spec.add_by_optimizer();
          setting.set_field(name);
          return ReadCellChoice(value, entry_key, *setting.mutable_values());
        });
  }

  absl::Status ReadThroughput(const YAML::Node& node, const std::string& key,
                              v1::Throughput& throughput) {
    if (!node.IsMap()) return Error(node, key, "expected a map with when and tokens_per_second");
    return ForEachEntry(node, key,
                        [&](const std::string& name, const std::string& entry_key,
                            const YAML::Node& value) -> absl::Status {
                          if (name == "when") {
                            return ReadConditions(value, entry_key, *throughput.mutable_when());
                          }
                          if (name != "tokens_per_second") {
                            return UnknownKey(entry_key, name, {"when", "tokens_per_second"});
                          }
                          absl::StatusOr<std::string> text = Scalar(value, entry_key);
                          if (!text.ok()) return text.status();
                          double rate = 0;
                          if (!absl::SimpleAtod(*text, &rate)) {
                            return Error(value, entry_key,
                                         absl::StrCat("'", *text, "' is not a number"));
                          }
                          throughput.set_tokens_per_second(rate);
                          Remember(entry_key + "[0]", value);
                          return absl::OkStatus();
                        });
  }

  // method, parameters, samples, seed, min_steps, reduction_factor and metric (sweep/tuning.h).
  absl::Status ReadTuning(const YAML::Node& node, const std::string& key, v1::Tuning& tuning) {
    static const auto* keys = new std::vector<std::string>{
        "method", "parameters", "samples", "seed", "min_steps", "reduction_factor", "metric"};
    if (!node.IsMap()) return Error(node, key, "expected a map with parameters and min_steps");
    absl::Status read = ForEachEntry(
        node, key,
        [&](const std::string& name, const std::string& entry_key,
            const YAML::Node& value) -> absl::Status {
          if (name == "parameters") {
            if (!value.IsMap()) {
              return Error(value, entry_key, "expected a map of learning_rate and weight_decay");
            }
            return ForEachEntry(value, entry_key,
                                [&](const std::string& parameter, const std::string& parameter_key,
                                    const YAML::Node& search) {
                                  v1::TunedParameter& out = *tuning.add_parameters();
                                  out.set_name(parameter);
                                  return ReadSearch(search, parameter_key, out);
                                });
          }
          if (name == "method" || name == "metric") {
            absl::StatusOr<std::string> text = Scalar(value, entry_key);
            if (!text.ok()) return text.status();
            Remember(entry_key + "[0]", value);
            if (name == "method") {
              tuning.set_method(*text);
            } else {
              tuning.set_metric(*text);
            }
            return absl::OkStatus();
          }
          if (std::find(keys->begin(), keys->end(), name) == keys->end()) {
            return UnknownKey(entry_key, name, *keys);
          }
          absl::StatusOr<uint64_t> number = WholeNumber<uint64_t>(value, entry_key);
          if (!number.ok()) return number.status();
          if (name == "seed") {
            tuning.set_seed(*number);
            return absl::OkStatus();
          }
          if (*number > UINT32_MAX) return Error(value, entry_key, "too large");
          const auto small = static_cast<uint32_t>(*number);
          if (name == "samples") tuning.set_samples(small);
          if (name == "min_steps") tuning.set_min_steps(small);
          if (name == "reduction_factor") tuning.set_reduction_factor(small);
          return absl::OkStatus();
        });
    if (read.ok() && !node["parameters"]) {
      return Error(node, key, "needs parameters (learning_rate, weight_decay or both)");
    }
    if (read.ok() && !node["min_steps"]) {
      return Error(node, key, "needs min_steps (the first rung's budget in steps)");
    }
    return read;
  }

  // A tuned parameter: [values], {values: [...]}, {log_grid: [low, high], points: N} or
  // {log_uniform: [low, high]}.
  absl::Status ReadSearch(const YAML::Node& node, const std::string& key, v1::TunedParameter& out) {
    if (node.IsSequence()) return ReadValues(node, key + ".values", *out.mutable_values());
    if (!node.IsMap()) {
      return Error(node, key,
                   "expected [values], {log_grid: [low, high], points: N} or "
                   "{log_uniform: [low, high]}");
    }
    return ForEachEntry(
        node, key,
        [&](const std::string& name, const std::string& entry_key,
            const YAML::Node& value) -> absl::Status {
          if (name == "values") {
            if (!value.IsSequence()) return Error(value, entry_key, "expected a list of values");
            return ReadValues(value, entry_key, *out.mutable_values());
          }
          if (name == "points") {
            absl::StatusOr<uint64_t> points = WholeNumber<uint64_t>(value, entry_key);
            if (!points.ok()) return points.status();
            if (*points > UINT32_MAX) return Error(value, entry_key, "too many points");
            out.set_points(static_cast<uint32_t>(*points));
            return absl::OkStatus();
          }
          if (name != "log_grid" && name != "log_uniform") {
            return UnknownKey(entry_key, name, {"values", "log_grid", "points", "log_uniform"});
          }
          if (!value.IsSequence() || value.size() != 2) {
            return Error(value, entry_key, "expected [low, high]");
          }
          double bounds[2] = {0, 0};
          for (size_t i = 0; i < 2; ++i) {
            absl::StatusOr<std::string> text = Scalar(value[i], entry_key);
            if (!text.ok()) return text.status();
            if (!absl::SimpleAtod(*text, &bounds[i])) {
              return Error(value[i], entry_key, absl::StrCat("'", *text, "' is not a number"));
            }
          }
          Remember(entry_key + "[0]", value);
          out.set_low(bounds[0]);
          out.set_high(bounds[1]);
          return absl::OkStatus();
        });
  }

  // A scalar that reads as an Int; with `positive`, above 0 too.
  template <typename Int>
  absl::StatusOr<Int> WholeNumber(const YAML::Node& node, const std::string& key,
                                  bool positive = false) {
    absl::StatusOr<std::string> text = Scalar(node, key);
    if (!text.ok()) return text.status();
    Int number = 0;
    if (!absl::SimpleAtoi(*text, &number) || (positive && number <= 0)) {
      return Error(
          node, key,
          absl::StrCat("'", *text, "' is not a ", positive ? "positive " : "", "whole number"));
    }
    Remember(key + "[0]", node);
    return number;
  }

  // TrainConfig settings; a nested map flattens into dotted names, so `optimizer_args:
  // {beta2: 0.95}` sets optimizer_args.beta2.
  absl::Status ReadSettings(const YAML::Node& node, const std::string& key,
                            const std::string& prefix,
                            google::protobuf::Map<std::string, std::string>& out) {
    if (!node.IsMap()) return Error(node, key, "expected a map of setting: value");
    return ForEachEntry(node, key,
                        [&](const std::string& name, const std::string& setting_key,
                            const YAML::Node& value) -> absl::Status {
                          const std::string setting = prefix + name;
                          if (value.IsMap())
                            return ReadSettings(value, setting_key, setting + ".", out);
                          absl::StatusOr<std::string> text = Scalar(value, setting_key);
                          if (!text.ok()) return text.status();
                          if (!out.insert({setting, *text}).second) {
                            return Error(marks_.at(setting_key), setting_key,
                                         "this setting is given twice");
                          }
                          Remember(setting_key + "[0]", value);
                          return absl::OkStatus();
                        });
  }

  absl::Status ReadValues(const YAML::Node& node, const std::string& key,
                          RepeatedPtrField<std::string>& out) {
    if (node.IsScalar()) {
      *out.Add() = node.Scalar();
      Remember(key + "[0]", node);
      return absl::OkStatus();
    }
    if (!node.IsSequence()) return Error(node, key, "expected a value or a list of values");
    absl::Status first;
    for (size_t i = 0; i < node.size(); ++i) {
      const std::string item_key = absl::StrCat(key, "[", i, "]");
      absl::StatusOr<std::string> text = Scalar(node[i], item_key);
      first.Update(text.status());
      if (!text.ok()) continue;
      *out.Add() = *std::move(text);
      Remember(item_key, node[i]);
    }
    return first;
  }

  // Calls `fn` for each entry of a map in file order; keys must be plain names, each once.
  absl::Status ForEachEntry(const YAML::Node& map, const std::string& key, EntryFn fn) {
    absl::flat_hash_set<std::string> seen;
    absl::Status first;  // entries after a failed one are still read, for their own problems
    for (const auto& entry : map) {
      const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "";
      const std::string entry_key = key.empty() ? name : absl::StrCat(key, ".", name);
      if (name.empty()) {
        first.Update(Error(entry.first, key, "expected a plain name as the key"));
        continue;
      }
      if (!seen.insert(name).second) {
        first.Update(Error(entry.first, entry_key, "repeated key"));
        continue;
      }
      marks_.insert_or_assign(entry_key, entry.first.Mark());
      first.Update(fn(name, entry_key, entry.second));
    }
    return first;
  }

  absl::Status ForEachItem(
      const YAML::Node& list, const std::string& key,
      absl::FunctionRef<absl::Status(const std::string&, const YAML::Node&)> fn) {
    if (!list.IsSequence()) return Error(list, key, "expected a list");
    absl::Status first;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string item_key = absl::StrCat(key, "[", i, "]");
      Remember(item_key, list[i]);
      first.Update(fn(item_key, list[i]));
    }
    return first;
  }

  absl::StatusOr<std::string> Scalar(const YAML::Node& node, const std::string& key) {
    if (node.IsScalar()) return node.Scalar();
    return Error(node, key, node.IsNull() ? "missing value" : "expected a single value");
  }

  absl::Status UnknownKey(const std::string& key, const std::string& name,
                          const std::vector<std::string>& known) {
    return Error(marks_.at(key), key,
                 absl::StrCat("unknown key", internal::DidYouMean(name, known),
                              " (known: ", absl::StrJoin(known, ", "), ")"));
  }

  // A node's own position. An empty value has none of its own (YAML places it at the next
  // token), so a problem with it is placed at its key.
  void Remember(const std::string& at, const YAML::Node& node) {
    if (!node.IsNull()) marks_.insert_or_assign(at, node.Mark());
  }

  absl::Status Error(const YAML::Node& node, const std::string& key, absl::string_view problem) {
    if (node.IsNull()) {
      if (auto it = marks_.find(key); it != marks_.end()) return Error(it->second, key, problem);
    }
    return Error(node.Mark(), key, problem);
  }

  // Records the problem for the final report and returns it, so a caller can stop reading
  // what depends on the value.
  absl::Status Error(const YAML::Mark& mark, const std::string& key, absl::string_view problem) {
    const int line = std::max(mark.line, 0) + 1;
    const int column = std::max(mark.column, 0) + 1;
    std::string text = absl::StrFormat("%s:%d:%d: %s: %s", source_, line, column, key, problem);
    problems_.push_back({line, column, key, text});
    return absl::InvalidArgumentError(text);
  }

  // The key of the map or list holding `key`: "overrides[0]" for "overrides[0].sett".
  static absl::string_view Parent(absl::string_view key) {
    const size_t cut = key.find_last_of(".[");
    return cut == absl::string_view::npos ? key : key.substr(0, cut);
  }

  // Whether one key lies inside the other ("grid.lr" and "grid.lr[1]", "fixed" and
  // "fixed.steps"), so a problem with one explains a problem with the other.
  static bool Related(absl::string_view a, absl::string_view b) {
    if (a.size() > b.size()) std::swap(a, b);
    return absl::StartsWith(b, a) &&
           (b.size() == a.size() || b[a.size()] == '.' || b[a.size()] == '[');
  }

  // Places an issue at the nearest remembered position: its value, else its key, else the
  // key that holds it ("constraints[0].when" missing falls back to "constraints[0]").
  absl::Status Locate(const SpecIssue& issue) {
    std::string at = issue.at;
    while (!at.empty()) {
      if (auto it = marks_.find(at); it != marks_.end()) {
        return Error(it->second, issue.key, issue.problem);
      }
      const size_t cut = at.find_last_of(".[");
      at.resize(cut == std::string::npos ? 0 : cut);
    }
    return Error(YAML::Mark(), issue.key, issue.problem);
  }

  struct Problem {
    int line;
    int column;
    std::string key;
    std::string text;  // the report's line: "file:line:column: key: problem"
  };

  absl::string_view source_;
  absl::flat_hash_map<std::string, YAML::Mark> marks_;
  std::vector<Problem> problems_;  // every problem found, in the order found
};

}  // namespace

absl::Status TooLarge(absl::string_view source, uint64_t bytes) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": the sweep file is ", bytes,
                                                 " bytes; the limit is ", kMaxSweepFileBytes));
}

absl::StatusOr<v1::SweepSpec> ParseSweepYaml(absl::string_view yaml, absl::string_view source) {
  if (yaml.size() > kMaxSweepFileBytes) return TooLarge(source, yaml.size());
  return SweepFileReader(source).Read(yaml);
}

absl::StatusOr<v1::SweepSpec> LoadSweepFile(const std::string& path) {
  // Refused before reading, so a huge file is never held in memory.
  std::error_code error;
  const uintmax_t bytes = std::filesystem::file_size(path, error);
  if (!error && bytes > kMaxSweepFileBytes) return TooLarge(path, bytes);
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot read the sweep file"));
  std::ostringstream text;
  text << file.rdbuf();
  return ParseSweepYaml(text.str(), path);
}

}  // namespace ablate::sweep
