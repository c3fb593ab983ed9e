#include "sweep/plan.h"

#include <algorithm>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/attention_args.h"
#include "common/catalog.h"
#include "common/model_math.h"
#include "common/train_config.h"
#include "sweep/tuning.h"
#include "sweep/validate.h"

namespace ablate::sweep {
namespace {

// Whether every condition of `when` holds for a job's cell, comparing parsed values.
bool Matches(const google::protobuf::RepeatedPtrField<v1::Condition>& when,
             const google::protobuf::RepeatedPtrField<v1::CellValue>& cell) {
  for (const v1::Condition& condition : when) {
    const auto value = std::find_if(cell.begin(), cell.end(), [&](const v1::CellValue& v) {
      return v.dimension() == condition.dimension();
    });
    if (value == cell.end()) return false;
    const std::string key = internal::ValueKey(value->dimension(), value->value()).value_or("");
    const bool any = std::any_of(
        condition.values().begin(), condition.values().end(), [&](const std::string& wanted) {
          return internal::ValueKey(condition.dimension(), wanted).value_or("") == key;
        });
    if (!any) return false;
  }
  return true;
}

// Models by name, read once: an hf: model is a file read per lookup.
class ModelCache {
 public:
  const v1::ModelConfig* Find(const std::string& name) {
    auto [it, inserted] = models_.try_emplace(name);
    if (inserted) {
      absl::StatusOr<v1::ModelConfig> model = ModelByName(name);
      if (model.ok()) it->second = *std::move(model);
    }
    return it->second.hidden_size() == 0 ? nullptr : &it->second;
  }

 private:
  absl::flat_hash_map<std::string, v1::ModelConfig> models_;
};

// A job the sweep will run. With tuning, the expansion holds each cell's first-rung trials,
// and the jobs are the cells' final ones (each seed's config at the cell's steps, its learning
// rate and weight decay still to be chosen), the first of each cell carrying its trials.
struct PlannedJob {
  v1::JobSpec job;
  const v1::JobSpec* trials = nullptr;  // the cell's first trial, on its cell's first job
  size_t points = 0;                    // the cell's trials, from `trials` on in the expansion
  std::vector<v1::RungPlan> rungs;
};

std::vector<PlannedJob> PlannedJobs(const v1::SweepSpec& spec, const Expansion& expansion) {
  std::vector<PlannedJob> out;
  if (!spec.has_tuning()) {
    for (const v1::JobSpec& job : expansion.jobs) out.emplace_back().job = job;
    return out;
  }
  const size_t points = SearchPoints(spec.tuning()).size();
  for (const v1::JobSpec& trial : expansion.jobs) {
    if (trial.trial().point() != 0) continue;
    for (uint32_t seed = spec.repeats() > 0 ? 1 : 0; seed <= spec.repeats(); ++seed) {
      PlannedJob& planned = out.emplace_back();
      planned.job = trial;
      planned.job.clear_job_id();
      planned.job.clear_trial();
      planned.job.mutable_config()->set_steps(trial.trial().cell_steps());
      if (seed > 0) {
        planned.job.mutable_config()->set_seed(seed);
        planned.job.mutable_config()->set_data_seed(seed);
        v1::CellValue& value = *planned.job.add_cell();
        value.set_dimension(kRepeatDimension);
        value.set_value(absl::StrCat(seed));
      }
      if (seed <= 1) {
        planned.trials = &trial;
        planned.points = points;
        planned.rungs = RungsOf(spec.tuning(), points, trial.trial().cell_steps());
      }
    }
  }
  return out;
}

}  // namespace

v1::JobCountPlan JobCountOf(const v1::SweepSpec& spec, const Expansion& expansion) {
  v1::JobCountPlan out;
  out.set_seeds(std::max<uint32_t>(1, spec.repeats()));
  out.set_excluded(static_cast<uint32_t>(expansion.dropped.size()));
  out.set_submitted(expansion.jobs.size());
  if (!spec.has_tuning()) {
    out.set_finals(expansion.jobs.size());
    out.set_cells(out.finals() / out.seeds());
    out.set_total(out.finals());
    return out;
  }
  const size_t points = SearchPoints(spec.tuning()).size();
  for (const v1::JobSpec& trial : expansion.jobs) {
    if (trial.trial().point() != 0) continue;  // one per cell
    out.set_cells(out.cells() + 1);
    const std::vector<v1::RungPlan> rungs =
        RungsOf(spec.tuning(), points, trial.trial().cell_steps());
    for (size_t k = 0; k < rungs.size(); ++k) {
      if (static_cast<int>(k) == out.rungs_size()) out.add_rungs()->set_steps(rungs[k].steps());
      v1::RungPlan& rung = *out.mutable_rungs(static_cast<int>(k));
      rung.set_trials(rung.trials() + rungs[k].trials());
      out.set_trials(out.trials() + rungs[k].trials());
    }
  }
  out.set_finals(out.cells() * out.seeds());
  out.set_total(out.finals() + out.trials());
  return out;
}

const char* ShapeName(const v1::SweepSpec& spec) {
  if (!spec.baseline().empty()) return "baseline";
  if (!spec.cells().empty()) return "cells";
  if (spec.has_sample()) return "sample";
  return "grid";
}

v1::SweepPlan PlanOf(const v1::SweepSpec& spec, const Expansion& expansion) {
  v1::SweepPlan plan;
  plan.set_sweep_id(expansion.sweep_id);
  plan.set_shape(ShapeName(spec));
  plan.set_repeats(spec.repeats());
  for (const v1::Dimension& dimension : spec.grid()) {
    v1::DimensionPlan& out = *plan.add_dimensions();
    out.set_name(dimension.name());
    *out.mutable_values() = dimension.values();
    out.mutable_jobs()->Resize(dimension.values_size(), 0);
  }
  *plan.mutable_excluded() = {expansion.dropped.begin(), expansion.dropped.end()};

  *plan.mutable_job_count() = JobCountOf(spec, expansion);
  plan.set_trials(static_cast<uint32_t>(plan.job_count().trials()));
  ModelCache models;
  double gpu_hours = 0;
  const bool relative =
      std::any_of(spec.tuning().parameters().begin(), spec.tuning().parameters().end(),
                  [](const v1::TunedParameter& parameter) { return parameter.relative(); });
  for (const PlannedJob& planned : PlannedJobs(spec, expansion)) {
    const v1::JobSpec& job = planned.job;
    const v1::TrainConfig& config = job.config();
    v1::CellPlan& cell = *plan.add_cells();
    cell.set_job_id(job.job_id());
    *cell.mutable_cell() = job.cell();
    cell.set_tuned(spec.has_tuning());
    for (int d = 0; d < spec.grid_size(); ++d) {
      const auto& values = spec.grid(d).values();
      const auto it = std::find(values.begin(), values.end(), job.cell(d).value());
      if (it != values.end()) {
        auto& jobs = *plan.mutable_dimensions(d)->mutable_jobs();
        jobs[static_cast<int>(it - values.begin())] += 1;
      }
    }
    const uint64_t tokens =
        uint64_t{config.steps()} * config.batch_size() * config.context_length();
    cell.set_tokens(tokens);
    const RankWork work = RankWorkOf(config);
    if (const v1::ModelConfig* model = models.Find(config.model())) {
      // The cell's own attention shape: NSA's block, selection and window set its FLOPs, its
      // gates and learned compression its parameters.
      const NsaShape nsa = NsaShapeOf(config);
      cell.set_parameters(ParameterCount(*model, config.attention(), nsa));
      cell.set_flops(static_cast<double>(tokens) * TrainingFlopsPerToken(*model,
                                                                         config.context_length(),
                                                                         config.attention(), nsa));
    }
    cell.set_memory_bytes(job.memory_bytes());
    cell.set_host_memory_bytes(job.host_memory_bytes());
    cell.set_gpus(config.gpus());
    const uint32_t ranks = WorldSize(config);
    cell.set_batch_size(config.batch_size());
    cell.set_micro_batch_size(static_cast<uint32_t>(work.micro_batch_size));
    const uint64_t per_pass = uint64_t{ranks} * static_cast<uint64_t>(work.micro_batch_size);
    cell.set_accumulation_steps(
        static_cast<uint32_t>((config.batch_size() + per_pass - 1) / per_pass));
    if (spec.has_tuning()) {
      // The config holds the first point's values, which this job may never train with.
      *cell.mutable_tuned_parameters() = spec.tuning().parameters();
    } else {
      cell.set_learning_rate(config.learning_rate());
    }
    const auto throughput =
        std::find_if(spec.throughput().begin(), spec.throughput().end(),
                     [&](const v1::Throughput& t) { return Matches(t.when(), job.cell()); });
    // Seconds per token on the job's ranks; 0 when unknown.
    double seconds_per_token = 0;
    if (throughput == spec.throughput().end()) {
      plan.set_cells_without_estimate(plan.cells_without_estimate() + 1);
    } else {
      seconds_per_token = 1.0 / (throughput->tokens_per_second() * ranks);
      const double hours = static_cast<double>(tokens) * seconds_per_token / 3600.0;
      cell.set_hours(hours);
      cell.set_gpu_hours(hours * ranks);
      gpu_hours += hours * ranks;
    }
    plan.set_tokens(plan.tokens() + tokens);
    plan.set_flops(plan.flops() + cell.flops());
    if (planned.trials != nullptr) {
      v1::CellTuning& tuning = *cell.mutable_tuning();
      *tuning.mutable_rungs() = {planned.rungs.begin(), planned.rungs.end()};
      const uint64_t per_step = uint64_t{config.batch_size()} * config.context_length();
      for (const v1::RungPlan& rung : planned.rungs) {
        tuning.set_steps(tuning.steps() + uint64_t{rung.steps()} * rung.trials());
      }
      tuning.set_tokens(tuning.steps() * per_step);
      tuning.set_flops(tokens == 0 ? 0 : cell.flops() / tokens * tuning.tokens());
      if (seconds_per_token > 0) {
        const double hours = static_cast<double>(tuning.tokens()) * seconds_per_token / 3600.0;
        tuning.set_gpu_hours(hours * ranks);
        gpu_hours += hours * ranks;
      }
      plan.set_tokens(plan.tokens() + tuning.tokens());
      plan.set_flops(plan.flops() + tuning.flops());
      if (relative) {
        for (size_t i = 0; i < planned.points; ++i) {
          const v1::TrainConfig& trial = planned.trials[i].config();
          v1::SearchPoint& point = *tuning.add_points();
          for (const v1::TunedParameter& parameter : spec.tuning().parameters()) {
            v1::CellValue& value = *point.add_values();
            value.set_dimension(parameter.name());
            value.set_value(absl::StrFormat("%.3g", parameter.name() == "learning_rate"
                                                        ? trial.learning_rate()
                                                        : trial.weight_decay()));
          }
        }
      }
    }
  }
  plan.set_gpu_hours(gpu_hours);
  if (spec.has_tuning()) {
    for (v1::SearchPoint& point : SearchPoints(spec.tuning()))
      *plan.add_search() = std::move(point);
    plan.set_reduction_factor(spec.tuning().reduction_factor() == 0
                                  ? kDefaultReductionFactor
                                  : spec.tuning().reduction_factor());
  }
  return plan;
}

}  // namespace ablate::sweep
