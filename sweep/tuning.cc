#include "sweep/tuning.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/ids.h"
#include "common/job_state.h"
#include "common/train_config.h"
#include "sweep/job_ids.h"

namespace ablate::sweep {
namespace {

using CellValues = google::protobuf::RepeatedPtrField<v1::CellValue>;

// 3 significant digits, as SearchPoints promises.
std::string Rounded(double value) { return absl::StrFormat("%.3g", value); }

// `points` values from low to high, evenly spaced in log.
std::vector<std::string> LogGrid(const v1::TunedParameter& parameter) {
  std::vector<std::string> out;
  const double ratio = std::log(parameter.high() / parameter.low());
  for (uint32_t i = 0; i < parameter.points(); ++i) {
    const double t = static_cast<double>(i) / (parameter.points() - 1);  // points >= 2
    out.push_back(Rounded(parameter.low() * std::exp(ratio * t)));
  }
  return out;
}

// A uniform draw in [0, 1) from the generator's top 53 bits, which the standard fixes (a
// std::uniform_real_distribution's output is not).
double Uniform(std::mt19937_64& generator) {
  return static_cast<double>(generator() >> 11) * 0x1.0p-53;
}

bool Succeeded(const v1::Job& job) {
  return job.state() == v1::JOB_STATE_SUCCEEDED && job.has_final_eval_loss() &&
         std::isfinite(job.final_eval_loss());
}

// A trial's point by its values, which stay what they are when an update re-indexes the search.
using Point = std::pair<double, double>;  // learning rate, weight decay
using Rung = std::map<Point, const v1::Job*>;

Point PointOf(const v1::JobSpec& trial) {
  return {trial.config().learning_rate(), trial.config().weight_decay()};
}

// A rung's trials, best first: those that succeeded by eval/loss, ties by the lower learning
// rate, then weight decay. Failed and unfinished trials are left out: they rank below every
// other.
std::vector<const v1::Job*> Ranked(const Rung& rung) {
  std::vector<const v1::Job*> out;
  for (const auto& [point, job] : rung) {
    if (Succeeded(*job)) out.push_back(job);
  }
  std::stable_sort(out.begin(), out.end(), [](const v1::Job* a, const v1::Job* b) {
    return a->final_eval_loss() < b->final_eval_loss();
  });
  return out;
}

// One cell's jobs as tuning sees them.
struct CellJobs {
  std::vector<Rung> rungs;             // rung -> point -> trial
  std::vector<const v1::Job*> finals;  // its final jobs
  std::vector<const v1::Job*> plain;   // jobs neither trial nor final (not made by tuning)
};

v1::JobSpec Promoted(const v1::JobSpec& trial, uint32_t rung, uint32_t steps) {
  v1::JobSpec out = trial;
  out.clear_job_id();
  out.clear_checkpoint_dir();
  out.mutable_config()->set_steps(steps);
  out.mutable_trial()->set_rung(rung);
  out.set_config_hash(TrialHash(out));
  return out;
}

// The cell's final jobs: the chosen trial's config for the cell's steps, once per seed.
std::vector<v1::JobSpec> Finals(const v1::SweepSpec& spec, const v1::Job& chosen) {
  v1::JobSpec base = chosen.spec();
  base.clear_job_id();
  base.clear_checkpoint_dir();
  base.clear_trial();
  base.mutable_config()->set_steps(chosen.spec().trial().cell_steps());
  v1::TuningChoice& tuned = *base.mutable_tuned();
  tuned.set_point(chosen.spec().trial().point());
  tuned.set_learning_rate(chosen.spec().config().learning_rate());
  tuned.set_weight_decay(chosen.spec().config().weight_decay());
  tuned.set_trial_job_id(chosen.spec().job_id());
  tuned.set_rung(chosen.spec().trial().rung());
  tuned.set_trial_eval_loss(chosen.final_eval_loss());
  std::vector<v1::JobSpec> out;
  for (uint32_t seed = spec.repeats() > 0 ? 1 : 0; seed <= spec.repeats(); ++seed) {
    v1::JobSpec& job = out.emplace_back(base);
    if (seed > 0) {
      job.mutable_config()->set_seed(seed);
      job.mutable_config()->set_data_seed(seed);
      v1::CellValue& value = *job.add_cell();
      value.set_dimension("seed");
      value.set_value(absl::StrCat(seed));
    }
    job.set_config_hash(MessageHash(job.config()));
  }
  return out;
}

// The best trial of the highest rung that has one, among points that never failed; null when
// every point failed.
const v1::Job* Choose(const CellJobs& cell, size_t top) {
  std::set<Point> failed;
  for (const Rung& rung : cell.rungs) {
    for (const auto& [point, job] : rung) {
      if (JobStateHasEnded(job->state()) && !Succeeded(*job)) failed.insert(point);
    }
  }
  for (size_t k = top + 1; k-- > 0;) {
    for (const v1::Job* job : Ranked(cell.rungs[k])) {
      if (!failed.contains(PointOf(job->spec()))) return job;
    }
  }
  return nullptr;
}

// What one cell needs next; true when it is done (has or gets its final jobs, or never will).
bool StepCell(const v1::SweepSpec& spec, size_t points, const CellJobs& cell,
              std::vector<v1::JobSpec>& add) {
  if (!cell.finals.empty()) return true;
  if (cell.rungs.empty() || cell.rungs[0].empty()) return true;
  const v1::JobSpec& any = cell.rungs[0].begin()->second->spec();
  const std::vector<v1::RungPlan> rungs = RungsOf(spec.tuning(), points, any.trial().cell_steps());
  for (size_t k = 0; k < rungs.size() && k < cell.rungs.size(); ++k) {
    const auto& rung = cell.rungs[k];
    const bool running = std::any_of(rung.begin(), rung.end(), [](const auto& entry) {
      return !JobStateHasEnded(entry.second->state());
    });
    if (rung.empty() || running) return false;
    // A cancelled trial stops its cell's tuning until it is retried: cancelling a sweep ends
    // the trials it is running, and ranking them last would promote the rest and train on.
    if (std::any_of(rung.begin(), rung.end(), [](const auto& entry) {
          return entry.second->state() == v1::JOB_STATE_CANCELLED;
        })) {
      return true;
    }
    const std::vector<const v1::Job*> ranked = Ranked(rung);
    if (k + 1 < rungs.size() && !ranked.empty()) {
      const size_t keep = std::min<size_t>(rungs[k + 1].trials(), ranked.size());
      bool promoted = false;
      for (size_t i = 0; i < keep; ++i) {
        const Point point = PointOf(ranked[i]->spec());
        if (k + 1 < cell.rungs.size() && cell.rungs[k + 1].contains(point)) continue;
        add.push_back(
            Promoted(ranked[i]->spec(), static_cast<uint32_t>(k + 1), rungs[k + 1].steps()));
        promoted = true;
      }
      if (promoted) return false;
      continue;
    }
    if (const v1::Job* chosen = Choose(cell, k)) {
      for (v1::JobSpec& job : Finals(spec, *chosen)) add.push_back(std::move(job));
    }
    return true;
  }
  return false;
}

// A sweep's jobs by cell, as NextTuningJobs and TuningOutcomes read them.
struct SweepCells {
  std::vector<std::string> order;  // cells in the order of their first job
  std::map<std::string, CellJobs> cells;
  // Every stored job's config hash, dropped ones included (job_ids.h names new jobs apart).
  std::vector<std::pair<uint64_t, size_t>> by_hash;
  uint32_t next_index = 0;
  std::string sweep_id;
  // Dropped jobs that succeeded, by config hash: TuningStep::revive's candidates.
  absl::flat_hash_map<std::string, const v1::Job*> dropped_succeeded;

  static SweepCells Of(const v1::SweepSpec& spec, const std::vector<v1::Job>& jobs) {
    SweepCells out;
    for (const v1::Job& job : jobs) {
      out.by_hash.emplace_back(internal::HashNumber(job.spec().config_hash()),
                               internal::kStoredJob);
      out.next_index = std::max(out.next_index, job.spec().index() + 1);
      out.sweep_id = job.spec().sweep_id();
      if (job.dropped()) {
        if (Succeeded(job)) out.dropped_succeeded.try_emplace(job.spec().config_hash(), &job);
        continue;
      }
      const std::string key = TuningCellKey(spec, job.spec());
      auto [it, inserted] = out.cells.try_emplace(key);
      if (inserted) out.order.push_back(key);
      if (job.spec().has_tuned()) {
        it->second.finals.push_back(&job);
      } else if (job.spec().has_trial()) {
        const uint32_t rung = job.spec().trial().rung();
        if (it->second.rungs.size() <= rung) it->second.rungs.resize(rung + 1);
        it->second.rungs[rung].try_emplace(PointOf(job.spec()), &job);
      } else {
        it->second.plain.push_back(&job);
      }
    }
    return out;
  }
};

// The value a trial of a cell whose config is `cell` trains with: the point's value, or for a
// relative one ("x0.25") that multiple of the cell's own value.
absl::StatusOr<std::string> TrialValue(const v1::CellValue& value, const v1::TrainConfig& cell) {
  if (!absl::StartsWith(value.value(), kRelativeMark)) return value.value();
  double multiple = 0;
  if (!absl::SimpleAtod(absl::string_view(value.value()).substr(1), &multiple)) {
    return absl::InvalidArgumentError(absl::StrCat("tuning.parameters.", value.dimension(), ": '",
                                                   value.value(), "' is not a multiple"));
  }
  const double own =
      value.dimension() == "learning_rate" ? cell.learning_rate() : cell.weight_decay();
  if (!(own > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tuning.parameters.", value.dimension(), ": relative, and the cell's own ",
                     value.dimension(), " is ", own, ": set one (fixed, derived or overrides)"));
  }
  return Rounded(own * multiple);
}

// SearchPoints before relative values are marked.
std::vector<v1::SearchPoint> PointsAsWritten(const v1::Tuning& tuning) {
  std::vector<v1::SearchPoint> out;
  if (tuning.samples() > 0) {
    std::mt19937_64 generator(tuning.seed());
    for (uint32_t i = 0; i < tuning.samples(); ++i) {
      v1::SearchPoint& point = out.emplace_back();
      for (const v1::TunedParameter& parameter : tuning.parameters()) {
        v1::CellValue& value = *point.add_values();
        value.set_dimension(parameter.name());
        if (parameter.values().empty()) {
          const double log_low = std::log(parameter.low());
          const double log_high = std::log(parameter.high());
          value.set_value(Rounded(std::exp(log_low + Uniform(generator) * (log_high - log_low))));
        } else {
          value.set_value(parameter.values(
              static_cast<int>(generator() % static_cast<uint64_t>(parameter.values_size()))));
        }
      }
    }
    return out;
  }
  // The grid's combinations, the last parameter fastest.
  std::vector<std::vector<std::string>> values;
  for (const v1::TunedParameter& parameter : tuning.parameters()) {
    values.push_back(
        parameter.values().empty()
            ? LogGrid(parameter)
            : std::vector<std::string>(parameter.values().begin(), parameter.values().end()));
  }
  std::vector<size_t> at(values.size(), 0);
  while (true) {
    v1::SearchPoint& point = out.emplace_back();
    for (size_t p = 0; p < values.size(); ++p) {
      v1::CellValue& value = *point.add_values();
      value.set_dimension(tuning.parameters(static_cast<int>(p)).name());
      value.set_value(values[p][at[p]]);
    }
    size_t p = values.size();
    while (p > 0 && ++at[p - 1] == values[p - 1].size()) at[--p] = 0;
    if (p == 0) return out;
  }
}

}  // namespace

std::vector<v1::SearchPoint> SearchPoints(const v1::Tuning& tuning) {
  std::vector<v1::SearchPoint> out = PointsAsWritten(tuning);
  for (v1::SearchPoint& point : out) {
    for (int p = 0; p < point.values_size(); ++p) {
      if (tuning.parameters(p).relative()) {
        point.mutable_values(p)->set_value(absl::StrCat(kRelativeMark, point.values(p).value()));
      }
    }
  }
  return out;
}

int EdgeOfSearch(const std::vector<v1::SearchPoint>& points, uint32_t chosen,
                 const std::string& parameter) {
  auto value_of = [&](const v1::SearchPoint& point) -> std::optional<double> {
    for (const v1::CellValue& value : point.values()) {
      double number = 0;
      if (value.dimension() == parameter &&
          absl::SimpleAtod(absl::StripPrefix(value.value(), kRelativeMark), &number)) {
        return number;
      }
    }
    return std::nullopt;
  };
  if (chosen >= points.size()) return 0;
  const std::optional<double> mine = value_of(points[chosen]);
  if (!mine.has_value()) return 0;
  bool below = false, above = false;
  for (const v1::SearchPoint& point : points) {
    const std::optional<double> other = value_of(point);
    below = below || (other.has_value() && *other < *mine);
    above = above || (other.has_value() && *other > *mine);
  }
  if (below == above) return 0;
  return below ? 1 : -1;
}

std::vector<v1::RungPlan> RungsOf(const v1::Tuning& tuning, size_t points, uint32_t cell_steps) {
  const uint64_t eta =
      tuning.reduction_factor() == 0 ? kDefaultReductionFactor : tuning.reduction_factor();
  std::vector<v1::RungPlan> out;
  uint64_t steps = tuning.min_steps();
  uint64_t trials = points;
  while (steps < cell_steps && (out.empty() ? trials >= 1 : trials >= 2)) {
    v1::RungPlan& rung = out.emplace_back();
    rung.set_steps(static_cast<uint32_t>(steps));
    rung.set_trials(static_cast<uint32_t>(trials));
    steps *= eta;
    trials /= eta;
  }
  return out;
}

absl::StatusOr<std::vector<v1::JobSpec>> TrialsOfCell(const v1::Tuning& tuning,
                                                      const std::vector<v1::SearchPoint>& points,
                                                      const v1::TrainConfig& cell,
                                                      const CellValues& values) {
  const std::vector<v1::RungPlan> rungs = RungsOf(tuning, points.size(), cell.steps());
  if (rungs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tuning.min_steps: ", tuning.min_steps(), " steps is not below the cell's ", cell.steps(),
        ": a trial must train fewer steps than its cell (lower min_steps, or raise the cell's "
        "steps)"));
  }
  std::vector<v1::JobSpec> out;
  for (size_t i = 0; i < points.size(); ++i) {
    v1::JobSpec& job = out.emplace_back();
    *job.mutable_cell() = values;
    v1::TrainConfig& config = *job.mutable_config();
    config = cell;
    for (const v1::CellValue& value : points[i].values()) {
      absl::StatusOr<std::string> text = TrialValue(value, cell);
      if (!text.ok()) return text.status();
      if (absl::Status set = SetTrainField(config, value.dimension(), *text); !set.ok()) {
        return set;
      }
    }
    config.set_steps(rungs[0].steps());
    if (absl::Status valid = ValidateTrainConfig(config); !valid.ok()) {
      // Each problem named by the tuning setting that made the trial's config: a tuned value,
      // or the first rung's budget.
      std::vector<std::string> lines;
      for (absl::string_view problem : absl::StrSplit(valid.message(), '\n')) {
        const auto tuned = std::find_if(
            points[i].values().begin(), points[i].values().end(), [&](const v1::CellValue& v) {
              return absl::StartsWith(problem, absl::StrCat(v.dimension(), ":"));
            });
        lines.push_back(tuned != points[i].values().end()
                            ? absl::StrCat("tuning.parameters.", tuned->dimension(), ": point ", i,
                                           ": ", problem)
                            : absl::StrCat("tuning.min_steps: the first rung's ", rungs[0].steps(),
                                           " steps: ", problem));
      }
      return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
    }
    job.mutable_trial()->set_point(static_cast<uint32_t>(i));
    job.mutable_trial()->set_cell_steps(cell.steps());
    job.set_config_hash(TrialHash(job));
  }
  return out;
}

std::string TrialHash(const v1::JobSpec& trial) {
  v1::JobSpec identity;
  *identity.mutable_config() = trial.config();
  *identity.mutable_trial() = trial.trial();
  identity.mutable_trial()->clear_point();  // the config holds the point's values
  return MessageHash(identity);
}

std::string TuningCellKey(const v1::SweepSpec& spec, const v1::JobSpec& job) {
  std::string key;
  for (int d = 0; d < spec.grid_size() && d < job.cell_size(); ++d) {
    absl::StrAppend(&key, job.cell(d).dimension(), "=", job.cell(d).value(), "\n");
  }
  return key;
}

TuningStep NextTuningJobs(const v1::SweepSpec& spec, const std::vector<v1::Job>& jobs) {
  const size_t points = SearchPoints(spec.tuning()).size();
  SweepCells sweep = SweepCells::Of(spec, jobs);
  TuningStep step;
  step.done = true;
  for (const std::string& key : sweep.order) {
    step.done = StepCell(spec, points, sweep.cells[key], step.add) && step.done;
  }
  std::erase_if(step.add, [&](const v1::JobSpec& job) {
    auto it = sweep.dropped_succeeded.find(job.config_hash());
    if (it == sweep.dropped_succeeded.end()) return false;
    step.revive.push_back(it->second->spec().job_id());
    return true;
  });
  uint32_t next_index = sweep.next_index;
  for (v1::JobSpec& job : step.add) {
    job.set_index(next_index++);
    sweep.by_hash.emplace_back(internal::HashNumber(job.config_hash()),
                               static_cast<size_t>(&job - step.add.data()));
  }
  internal::AssignJobIds(sweep.sweep_id, internal::CheckpointRootOf(spec), std::move(sweep.by_hash),
                         step.add);
  return step;
}

std::vector<v1::JobState> TuningOutcomes(const v1::SweepSpec& spec,
                                         const std::vector<v1::Job>& jobs) {
  const size_t points = SearchPoints(spec.tuning()).size();
  SweepCells sweep = SweepCells::Of(spec, jobs);
  std::vector<v1::JobState> out;
  bool adding = false;
  for (const std::string& key : sweep.order) {
    const CellJobs& cell = sweep.cells[key];
    for (const v1::Job* job : cell.plain) out.push_back(job->state());
    for (const v1::Job* final : cell.finals) out.push_back(final->state());
    if (!cell.finals.empty() || cell.rungs.empty()) continue;
    std::vector<v1::JobSpec> add;
    if (!StepCell(spec, points, cell, add) || !add.empty()) {
      adding = true;
      continue;
    }
    // Every point failed: the cell has no result.
    bool cancelled = false;
    for (const Rung& rung : cell.rungs) {
      for (const auto& [point, trial] : rung) {
        cancelled = cancelled || trial->state() == v1::JOB_STATE_CANCELLED;
      }
    }
    out.push_back(cancelled ? v1::JOB_STATE_CANCELLED : v1::JOB_STATE_FAILED);
  }
  if (adding) out.push_back(v1::JOB_STATE_PENDING);
  return out;
}

}  // namespace ablate::sweep
