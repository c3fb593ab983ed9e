#include "sweep/tuning_file.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ablate::sweep::internal {
namespace {

// A tuned parameter's list of values; an empty one is a problem of its own, as a list that
// reads as no values would otherwise pass for a missing range.
absl::Status ReadList(YamlReader& reader, const YAML::Node& node, const std::string& key,
                      v1::TunedParameter& out) {
  if (node.size() == 0) {
    return reader.Error(node, key, "needs at least one value (or a range instead of values)");
  }
  return reader.ReadValues(node, key, *out.mutable_values());
}

// A count the rules on content range-check (sweep/tuning_check.h): a negative one reads as 0,
// which every count's rule refuses with the range it needs, at the value's position.
absl::StatusOr<uint32_t> Count(YamlReader& reader, const YAML::Node& node, const std::string& key) {
  absl::StatusOr<int64_t> number = reader.WholeNumber<int64_t>(node, key);
  if (!number.ok()) return number.status();
  if (*number > int64_t{UINT32_MAX}) return reader.Error(node, key, "too large");
  return static_cast<uint32_t>(std::max<int64_t>(*number, 0));
}

// A tuned parameter: [values], {values: [...]}, {log_grid: [low, high], points: N} or
// {log_uniform: [low, high]}; a map may add `relative: true`.
absl::Status ReadSearch(YamlReader& reader, const YAML::Node& node, const std::string& key,
                        v1::TunedParameter& out) {
  if (node.IsSequence()) return ReadList(reader, node, key + ".values", out);
  if (!node.IsMap()) {
    return reader.Error(node, key,
                        "expected [values], {values: [...]}, {log_grid: [low, high], points: N} "
                        "or {log_uniform: [low, high]}, each map with relative: true if wanted");
  }
  return reader.ForEachEntry(
      node, key,
      [&](const std::string& name, const std::string& entry_key,
          const YAML::Node& value) -> absl::Status {
        if (name == "values") {
          if (!value.IsSequence()) {
            return reader.Error(value, entry_key, "expected a list of values");
          }
          return ReadList(reader, value, entry_key, out);
        }
        if (name == "points") {
          absl::StatusOr<uint32_t> points = Count(reader, value, entry_key);
          if (!points.ok()) return points.status();
          // Here, as 0 would read as "no points given" to the rules on content.
          if (*points < 2) {
            return reader.Error(value, entry_key,
                                "must be at least 2: a log grid's values, both ends included");
          }
          out.set_points(*points);
          return absl::OkStatus();
        }
        if (name == "relative") {
          absl::StatusOr<std::string> text = reader.Scalar(value, entry_key);
          if (!text.ok()) return text.status();
          if (*text != "true" && *text != "false") {
            return reader.Error(value, entry_key,
                                absl::StrCat("'", *text, "' is not true or false"));
          }
          reader.Remember(entry_key + "[0]", value);
          out.set_relative(*text == "true");
          return absl::OkStatus();
        }
        if (name != "log_grid" && name != "log_uniform") {
          return reader.UnknownKey(entry_key, name,
                                   {"values", "log_grid", "points", "log_uniform", "relative"});
        }
        if (!value.IsSequence() || value.size() != 2) {
          return reader.Error(value, entry_key, "expected [low, high]");
        }
        double bounds[2] = {0, 0};
        for (size_t i = 0; i < 2; ++i) {
          const std::string bound_key = absl::StrCat(entry_key, "[", i, "]");
          absl::StatusOr<double> bound = reader.Number(value[i], bound_key);
          if (!bound.ok()) return bound.status();
          bounds[i] = *bound;
          // Where a rule on low or high points, under either spelling (FindTuningIssues).
          reader.Remember(bound_key, value[i]);
          reader.Remember(absl::StrCat(key, ".range[", i, "]"), value[i]);
        }
        out.set_low(bounds[0]);
        out.set_high(bounds[1]);
        return absl::OkStatus();
      });
}

}  // namespace

absl::Status ReadTuning(YamlReader& reader, const YAML::Node& node, const std::string& key,
                        v1::Tuning& tuning) {
  static const auto* keys = new std::vector<std::string>{
      "method", "parameters", "samples", "seed", "min_steps", "reduction_factor", "metric"};
  if (!node.IsMap()) return reader.Error(node, key, "expected a map with parameters and min_steps");
  // A missing parameters or min_steps, and every range, is a rule on content
  // (FindTuningIssues), reported beside the other problems of the section.
  return reader.ForEachEntry(
      node, key,
      [&](const std::string& name, const std::string& entry_key,
          const YAML::Node& value) -> absl::Status {
        if (name == "parameters") {
          if (!value.IsMap()) {
            return reader.Error(value, entry_key,
                                "expected a map of learning_rate and weight_decay");
          }
          return reader.ForEachEntry(
              value, entry_key,
              [&](const std::string& parameter, const std::string& parameter_key,
                  const YAML::Node& search) {
                v1::TunedParameter& out = *tuning.add_parameters();
                out.set_name(parameter);
                return ReadSearch(reader, search, parameter_key, out);
              });
        }
        if (name == "method" || name == "metric") {
          absl::StatusOr<std::string> text = reader.Scalar(value, entry_key);
          if (!text.ok()) return text.status();
          reader.Remember(entry_key + "[0]", value);
          if (name == "method") {
            tuning.set_method(*text);
          } else {
            tuning.set_metric(*text);
          }
          return absl::OkStatus();
        }
        if (std::find(keys->begin(), keys->end(), name) == keys->end()) {
          return reader.UnknownKey(entry_key, name, *keys);
        }
        if (name == "seed") {
          absl::StatusOr<uint64_t> seed = reader.WholeNumber<uint64_t>(value, entry_key);
          if (!seed.ok()) return seed.status();
          tuning.set_seed(*seed);
          return absl::OkStatus();
        }
        absl::StatusOr<uint32_t> count = Count(reader, value, entry_key);
        if (!count.ok()) return count.status();
        if (name == "samples") tuning.set_samples(*count);
        if (name == "min_steps") tuning.set_min_steps(*count);
        if (name == "reduction_factor") tuning.set_reduction_factor(*count);
        return absl::OkStatus();
      });
}

}  // namespace ablate::sweep::internal
