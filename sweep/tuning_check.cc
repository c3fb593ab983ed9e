#include "sweep/tuning_check.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sweep/tuning.h"

namespace ablate::sweep::internal {
namespace {

const std::vector<std::string>& TunedNames() {
  static const auto* names = new std::vector<std::string>{"learning_rate", "weight_decay"};
  return *names;
}

// The range a value of the parameter must lie in, as a problem when `value` is outside it;
// empty when it is inside. A relative value is a multiple of the cell's own.
std::string OutOfRange(const v1::TunedParameter& parameter, double value, absl::string_view what) {
  if (parameter.relative()) {
    return value > 0 && std::isfinite(value)
               ? ""
               : absl::StrCat(what, " is a multiple of the cell's own ", parameter.name(),
                              " and must be above 0");
  }
  if (parameter.name() == "learning_rate" && !(value > 0 && value <= 1)) {
    return absl::StrCat(what, " is outside (0, 1], the learning rates a trainer accepts");
  }
  if (parameter.name() == "weight_decay" && !(value >= 0 && std::isfinite(value))) {
    return absl::StrCat(what, " must not be negative");
  }
  return "";
}

class TuningChecker {
 public:
  TuningChecker(const v1::SweepSpec& spec, uint64_t cells)
      : spec_(spec), tuning_(spec.tuning()), cells_(cells) {}

  std::vector<SpecIssue> Run() {
    if (!tuning_.method().empty() && tuning_.method() != kTuningMethod) {
      Fail("tuning.method", "[0]",
           absl::StrCat("unknown method '", tuning_.method(), "' (known: ", kTuningMethod,
                        ", run synchronously: each rung ends before its best go on)"));
    }
    if (!tuning_.metric().empty() && tuning_.metric() != kTuningMetric) {
      Fail("tuning.metric", "[0]",
           absl::StrCat("unknown metric '", tuning_.metric(), "' (known: ", kTuningMetric,
                        ", the evaluation at a rung's end)"));
    }
    if (tuning_.parameters().empty()) {
      Fail("tuning.parameters", "", "needs learning_rate, weight_decay or both");
    }
    absl::flat_hash_set<std::string> seen;
    bool parameters_valid = !tuning_.parameters().empty();
    for (const v1::TunedParameter& parameter : tuning_.parameters()) {
      const size_t before = issues_.size();
      if (!seen.insert(parameter.name()).second) {
        Fail(absl::StrCat("tuning.parameters.", parameter.name()), "", "listed twice");
      } else {
        CheckParameter(parameter);
      }
      parameters_valid = parameters_valid && issues_.size() == before;
    }
    const bool samples_valid = CheckCounts();
    if (parameters_valid && samples_valid) CheckSearch();
    return std::move(issues_);
  }

 private:
  void Fail(const std::string& key, absl::string_view item, std::string problem) {
    issues_.push_back({key, absl::StrCat(key, item), std::move(problem)});
  }

  // Whether the file asks for random draws; a samples of 0 is its own problem (CheckCounts).
  bool sampled() const { return tuning_.has_samples(); }

  void CheckParameter(const v1::TunedParameter& parameter) {
    const std::string key = absl::StrCat("tuning.parameters.", parameter.name());
    if (std::find(TunedNames().begin(), TunedNames().end(), parameter.name()) ==
        TunedNames().end()) {
      return Fail(key, "",
                  absl::StrCat("only learning_rate and weight_decay are tuned",
                               DidYouMean(parameter.name(), TunedNames())));
    }
    if (std::any_of(spec_.grid().begin(), spec_.grid().end(),
                    [&](const v1::Dimension& d) { return d.name() == parameter.name(); })) {
      return Fail(key, "", "also a grid dimension; tune it or sweep it");
    }
    if (!parameter.values().empty()) {
      if (parameter.low() != 0 || parameter.high() != 0 || parameter.points() != 0) {
        return Fail(key, "", "give values or a range, not both");
      }
      return CheckValues(parameter, key + ".values");
    }
    CheckRange(parameter, key);
  }

  // Each value parses, none repeats, each lies in the parameter's range.
  void CheckValues(const v1::TunedParameter& parameter, const std::string& key) {
    const std::vector<SpecIssue> parsed =
        ValueIssues(key, parameter.name(), parameter.values(), /*distinct=*/true);
    if (parameter.values().empty()) {
      issues_.insert(issues_.end(), parsed.begin(), parsed.end());
      return;
    }
    for (int i = 0; i < parameter.values_size(); ++i) {
      const std::string at = absl::StrCat(key, "[", i, "]");
      const auto issue = std::find_if(parsed.begin(), parsed.end(),
                                      [&](const SpecIssue& issue) { return issue.at == at; });
      if (issue != parsed.end()) {
        issues_.push_back(*issue);
        continue;
      }
      double value = 0;
      if (!absl::SimpleAtod(parameter.values(i), &value)) continue;
      std::string problem =
          OutOfRange(parameter, value, absl::StrCat("'", parameter.values(i), "'"));
      if (!problem.empty()) issues_.push_back({key, at, std::move(problem)});
    }
  }

  // A log range: [low, high] with 0 < low < high, in the parameter's range; a log grid's points.
  void CheckRange(const v1::TunedParameter& parameter, const std::string& key) {
    // A bound's problem is named by the parameter, and placed at the bound as written
    // (log_grid or log_uniform: the spec keeps no spelling, so the file reader remembers each
    // bound as "<key>.range[i]" too).
    const double low = parameter.low();
    const double high = parameter.high();
    if (low == 0 && high == 0 && parameter.points() == 0) {
      return Fail(key, "",
                  "needs values, or a range: {log_grid: [low, high], points: N} or, with "
                  "tuning.samples, {log_uniform: [low, high]}");
    }
    if (!(low > 0) || !std::isfinite(low)) {
      return Fail(key, ".range[0]",
                  absl::StrCat("low is ", low, ": a log range needs 0 < low < high"));
    }
    if (!(high > low) || !std::isfinite(high)) {
      return Fail(key, ".range[1]",
                  absl::StrCat("high is ", high, ", not above low ", low,
                               ": a log range needs 0 < low < high"));
    }
    if (std::string problem = OutOfRange(parameter, high, absl::StrCat("high ", high));
        !problem.empty()) {
      return Fail(key, ".range[1]", std::move(problem));
    }
    if (tuning_.samples() > 0 && parameter.points() > 0) {
      return Fail(key + ".points", "[0]",
                  "with tuning.samples a range is drawn from (log_uniform), not a grid");
    }
    if (!sampled() && parameter.points() < 2) {
      return Fail(key + (parameter.points() == 0 ? "" : ".points"),
                  parameter.points() == 0 ? "" : "[0]",
                  "a range needs points (at least 2, for a log_grid) or tuning.samples (to draw a "
                  "log_uniform)");
    }
    if (parameter.points() > kMaxTrials) {
      return Fail(key + ".points", "[0]", absl::StrCat("at most ", kMaxTrials));
    }
    if (!sampled()) {
      v1::Tuning alone;
      *alone.add_parameters() = parameter;
      const std::vector<v1::SearchPoint> grid = SearchPoints(alone);
      for (size_t i = 1; i < grid.size(); ++i) {
        if (grid[i].values(0).value() == grid[i - 1].values(0).value()) {
          return Fail(key + ".points", "[0]",
                      absl::StrCat("too many points for the range: ", grid[i].values(0).value(),
                                   " twice at 3 significant digits"));
        }
      }
    }
  }

  // samples, min_steps and reduction_factor; true when samples is fit to count the search.
  bool CheckCounts() {
    bool samples_valid = true;
    if (tuning_.has_samples() && tuning_.samples() == 0) {
      Fail("tuning.samples", "[0]",
           "must be at least 1: the number of points drawn at random (leave samples out to "
           "search every combination of the parameters' values)");
      samples_valid = false;
    } else if (tuning_.samples() > kMaxTrials) {
      Fail("tuning.samples", "[0]", absl::StrCat("at most ", kMaxTrials));
      samples_valid = false;
    }
    if (!tuning_.has_min_steps()) {
      Fail("tuning", "", "needs min_steps (the first rung's budget in optimizer steps)");
    } else if (tuning_.min_steps() == 0) {
      Fail("tuning.min_steps", "[0]",
           "must be at least 1: the first rung's budget in optimizer steps");
    }
    if (tuning_.has_reduction_factor() &&
        (tuning_.reduction_factor() < 2 || tuning_.reduction_factor() > kMaxTrials)) {
      Fail("tuning.reduction_factor", "[0]",
           absl::StrCat("must be 2 to ", kMaxTrials, " (", kDefaultReductionFactor,
                        " when left out): each rung keeps the best 1/reduction_factor of its "
                        "trials, for reduction_factor times the steps"));
    }
    return samples_valid;
  }

  // The search as a whole: its size, its points distinct, the jobs it makes over the grid.
  void CheckSearch() {
    // Counted before the points are made, so a huge grid is refused without being built.
    uint64_t count = tuning_.samples();
    for (const v1::TunedParameter& parameter : tuning_.parameters()) {
      if (sampled()) break;
      const uint64_t size = parameter.values().empty()
                                ? parameter.points()
                                : static_cast<uint64_t>(parameter.values_size());
      count = std::max<uint64_t>(count, 1) * std::min<uint64_t>(size, kMaxTrials + 1);
    }
    if (count > kMaxTrials) {
      return Fail("tuning.parameters", "",
                  absl::StrCat("the search has ", count, " points; the limit is ", kMaxTrials));
    }
    const std::vector<v1::SearchPoint> points = SearchPoints(tuning_);
    if (points.size() < 2) {
      return Fail(sampled() ? "tuning.samples" : "tuning.parameters", sampled() ? "[0]" : "",
                  "the search needs at least two points");
    }
    absl::flat_hash_set<std::string> drawn;
    for (const v1::SearchPoint& point : points) {
      std::string key;
      std::vector<std::string> shown;  // as SearchPoints wrote them: 3 significant digits
      for (const v1::CellValue& value : point.values()) {
        absl::StrAppend(&key, ValueKey(value.dimension(), value.value()).value_or(value.value()),
                        " ");
        shown.push_back(absl::StrCat(value.dimension(), "=", value.value()));
      }
      if (!drawn.insert(key).second) {
        return Fail("tuning.samples", "[0]",
                    absl::StrCat("draws ", absl::StrJoin(shown, " "),
                                 " twice (a drawn value keeps 3 significant digits); widen the "
                                 "range, draw fewer samples or try another tuning.seed"));
      }
    }
    if (cells_ > kMaxCells / points.size()) {
      Fail("tuning.parameters", "",
           absl::StrCat("the grid's cells times the search's ", points.size(),
                        " points exceed the limit of ", kMaxCells, " jobs"));
    }
  }

  const v1::SweepSpec& spec_;
  const v1::Tuning& tuning_;
  const uint64_t cells_;
  std::vector<SpecIssue> issues_;
};

}  // namespace

std::vector<SpecIssue> FindTuningIssues(const v1::SweepSpec& spec, uint64_t cells) {
  return TuningChecker(spec, cells).Run();
}

}  // namespace ablate::sweep::internal
