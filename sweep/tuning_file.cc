#include "sweep/tuning_file.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ablate::sweep::internal {
namespace {

// A tuned parameter: [values], {values: [...]}, {log_grid: [low, high], points: N} or
// {log_uniform: [low, high]}; a map may add `relative: true`.
absl::Status ReadSearch(YamlReader& reader, const YAML::Node& node, const std::string& key,
                        v1::TunedParameter& out) {
  if (node.IsSequence()) return reader.ReadValues(node, key + ".values", *out.mutable_values());
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
          return reader.ReadValues(value, entry_key, *out.mutable_values());
        }
        if (name == "points") {
          absl::StatusOr<uint64_t> points = reader.WholeNumber<uint64_t>(value, entry_key);
          if (!points.ok()) return points.status();
          if (*points > UINT32_MAX) return reader.Error(value, entry_key, "too many points");
          out.set_points(static_cast<uint32_t>(*points));
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
          absl::StatusOr<double> bound = reader.Number(value[i], entry_key);
          if (!bound.ok()) return bound.status();
          bounds[i] = *bound;
        }
        reader.Remember(entry_key + "[0]", value);
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
  absl::Status read = reader.ForEachEntry(
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
        absl::StatusOr<uint64_t> number = reader.WholeNumber<uint64_t>(value, entry_key);
        if (!number.ok()) return number.status();
        if (name == "seed") {
          tuning.set_seed(*number);
          return absl::OkStatus();
        }
        if (*number > UINT32_MAX) return reader.Error(value, entry_key, "too large");
        const auto small = static_cast<uint32_t>(*number);
        if (name == "samples") tuning.set_samples(small);
        if (name == "min_steps") tuning.set_min_steps(small);
        if (name == "reduction_factor") tuning.set_reduction_factor(small);
        return absl::OkStatus();
      });
  if (read.ok() && !node["parameters"]) {
    return reader.Error(node, key, "needs parameters (learning_rate, weight_decay or both)");
  }
  if (read.ok() && !node["min_steps"]) {
    return reader.Error(node, key, "needs min_steps (the first rung's budget in steps)");
  }
  return read;
}

}  // namespace ablate::sweep::internal
