#include "sweep/sweep_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/train_config.h"
#include "sweep/expansion_notes.h"
#include "sweep/tuning_file.h"
#include "sweep/validate.h"
#include "sweep/yaml_limits.h"
#include "sweep/yaml_reader.h"
#include "yaml-cpp/yaml.h"

namespace ablate::sweep {
namespace {

using google::protobuf::RepeatedPtrField;
using internal::SpecIssue;

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
// the spec and placed where YamlReader remembers their keys and values stood.
class SweepFileReader : public internal::YamlReader {
 public:
  explicit SweepFileReader(absl::string_view source) : YamlReader(source) {}

  absl::StatusOr<v1::SweepSpec> Read(absl::string_view yaml) {
    if (absl::Status limits = CheckYamlLimits(yaml, source()); !limits.ok()) return limits;
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s:%d:%d: invalid YAML: %s%s", source(), e.mark.line + 1,
                          e.mark.column + 1, e.msg, internal::TabIndentNote(yaml, e.mark.line)));
    }
    if (!root.IsMap()) {
      return Error(
          root.Mark(), "sweep",
          absl::StrCat(internal::HoldsOnlyComments(yaml)
                           ? "the file is empty (no settings, at most comments); "
                           : "",
                       "expected a map of settings (", absl::StrJoin(TopLevelKeys(), ", "), ")"));
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
    std::vector<SpecIssue> issues = internal::FindSpecIssues(spec);
    issues.erase(std::remove_if(issues.begin(), issues.end(),
                                [&](const SpecIssue& issue) { return Explains(issue.key); }),
                 issues.end());
    for (const SpecIssue& issue : issues) Locate(issue);
    if (absl::Status problems = Report(); !problems.ok()) return problems;
    return spec;
  }

  // "file:line:col: text" at the node of key `at`, or at the file alone where it has none.
  std::string Placed(const std::string& at, absl::string_view text) const {
    const YAML::Mark* mark = MarkOf(at);
    return mark == nullptr
               ? absl::StrCat(source(), ": ", text)
               : absl::StrFormat("%s:%d:%d: %s", source(), mark->line + 1, mark->column + 1, text);
  }

  // `problem`, ExpandSweep's, prefixed by the file's position of the node that gave the value
  // it names (ExpandSweepYaml says which), or by the file's name alone.
  std::string PlaceCellProblem(const v1::SweepSpec& spec, absl::string_view problem) const {
    absl::string_view rest = problem;
    const size_t label_end = rest.find(": ");
    if (!absl::ConsumePrefix(&rest, "cell ") || label_end == absl::string_view::npos) {
      return absl::StrCat(source(), ": ", problem);
    }
    absl::flat_hash_map<std::string, std::string> cell;  // dimension -> value, as labelled
    for (absl::string_view pair : absl::StrSplit(rest.substr(0, label_end - 5), ' ')) {
      const size_t eq = pair.find('=');
      if (eq != absl::string_view::npos) cell.emplace(pair.substr(0, eq), pair.substr(eq + 1));
    }
    rest.remove_prefix(label_end - 3);  // "cell " and the label's ": "
    const std::string key(rest.substr(0, rest.find_first_of(": ")));
    for (const std::string& at : NodesOf(spec, cell, key)) {
      if (MarkOf(at) != nullptr) return Placed(at, problem);
    }
    // No node gave it: when the value named ("warmup_steps: 10 ...") is the default, say so,
    // since the reader did not write it.
    absl::string_view value = rest.substr(std::min(rest.size(), key.size() + 2));
    value = value.substr(0, value.find(' '));
    const bool by_default = !value.empty() && value == GetTrainField(DefaultTrainConfig(), key);
    return absl::StrCat(
        source(), ": ", problem,
        by_default ? absl::StrCat(" (", key, " is not set in the file: ", value, " is its default)")
                   : "");
  }

 private:
  // Where a value named `key` may have come from, nearest first.
  static std::vector<std::string> NodesOf(const v1::SweepSpec& spec,
                                          const absl::flat_hash_map<std::string, std::string>& cell,
                                          const std::string& key) {
    std::vector<std::string> out = {key + "[0]", key};
    if (!IsTrainField(key)) return out;
    // Whether the cell's labelled value of a dimension is one of `values`, once parsed.
    auto holds = [&](const v1::Condition& condition) {
      const auto it = cell.find(condition.dimension());
      if (it == cell.end()) return false;
      const absl::StatusOr<std::string> value = internal::ValueKey(it->first, it->second);
      return value.ok() &&
             std::any_of(condition.values().begin(), condition.values().end(),
                         [&](const std::string& wanted) {
                           return internal::ValueKey(condition.dimension(), wanted).value_or("") ==
                                  *value;
                         });
    };
    for (int i = spec.overrides_size(); i-- > 0;) {
      const v1::Override& override = spec.overrides(i);
      if (override.set().contains(key) &&
          std::all_of(override.when().begin(), override.when().end(), holds)) {
        out.push_back(absl::StrCat("overrides[", i, "].set.", key, "[0]"));
      }
    }
    out.push_back(absl::StrCat("derived.", key));
    for (const v1::Dimension& dimension : spec.grid()) {
      const auto it = cell.find(dimension.name());
      if (dimension.name() != key || it == cell.end()) continue;
      for (int i = 0; i < dimension.values_size(); ++i) {
        if (dimension.values(i) == it->second)
          out.push_back(absl::StrCat("grid.", key, "[", i, "]"));
      }
    }
    out.push_back(absl::StrCat("fixed.", key, "[0]"));
    return out;
  }

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
    if (name == "tuning") return internal::ReadTuning(*this, value, key, *spec.mutable_tuning());
    if (name == "throughput") {
      return ForEachItem(value, key, [&](const std::string& item_key, const YAML::Node& item) {
        return ReadThroughput(item, item_key, *spec.add_throughput());
      });
    }
    if (name == "repeats") {
      absl::StatusOr<uint64_t> repeats = WholeNumber<uint64_t>(value, key);
      if (!repeats.ok()) return repeats.status();
      // 0 is what leaving it out means; written, it is more likely a mistake than a wish.
      if (*repeats == 0) {
        return Error(value, key,
                     "0 is what leaving repeats out means (each cell once, with its configured "
                     "seeds): leave it out, or give 1 or more (seeds 1 to N)");
      }
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
                          absl::StatusOr<double> rate = Number(value, entry_key);
                          if (!rate.ok()) return rate.status();
                          throughput.set_tokens_per_second(*rate);
                          Remember(entry_key + "[0]", value);
                          return absl::OkStatus();
                        });
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
                            return Error(*MarkOf(setting_key), setting_key,
                                         "this setting is given twice");
                          }
                          Remember(setting_key + "[0]", value);
                          return absl::OkStatus();
                        });
  }
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

namespace {

absl::StatusOr<std::string> ReadSweepFile(const std::string& path) {
  // Refused before reading, so a huge file is never held in memory.
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is a directory, not a sweep file (a .yaml file)"));
  }
  const uintmax_t bytes = std::filesystem::file_size(path, error);
  if (!error && bytes > kMaxSweepFileBytes) return TooLarge(path, bytes);
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot read the sweep file: ",
                     error ? error.message() : std::string("permission denied")));
  }
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<v1::SweepSpec> LoadSweepFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSweepFile(path);
  if (!text.ok()) return text.status();
  return ParseSweepYaml(*text, path);
}

absl::StatusOr<ExpandedSweepFile> ExpandSweepYaml(absl::string_view yaml,
                                                  absl::string_view source) {
  if (yaml.size() > kMaxSweepFileBytes) return TooLarge(source, yaml.size());
  SweepFileReader reader(source);
  absl::StatusOr<v1::SweepSpec> spec = reader.Read(yaml);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  if (!expansion.ok()) {
    // A line per problem (ExpandSweep's), each cell's at the setting that gave it.
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(expansion.status().message(), '\n')) {
      lines.push_back(lines.empty() || absl::StartsWith(line, "cell ")
                          ? reader.PlaceCellProblem(*spec, line)
                          : std::string(line));
    }
    return absl::Status(expansion.status().code(), absl::StrJoin(lines, "\n"));
  }
  ExpandedSweepFile out{*std::move(spec), *std::move(expansion), {}};
  for (const internal::ExpansionNote& note : internal::ExpansionNotes(out.spec, out.expansion)) {
    out.notes.push_back(note.at.empty() ? reader.PlaceCellProblem(out.spec, note.text)
                                        : reader.Placed(note.at, note.text));
  }
  return out;
}

absl::StatusOr<ExpandedSweepFile> ExpandSweepFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSweepFile(path);
  if (!text.ok()) return text.status();
  return ExpandSweepYaml(*text, path);
}

}  // namespace ablate::sweep
