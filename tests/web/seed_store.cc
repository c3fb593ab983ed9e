// Writes a coordinator database for the dashboard's end-to-end tests, through the store's own
// interface, so the coordinator started on it afterwards serves known values:
//   seed_store --db FILE --scenario grid   "ablation": model x optimizer x attention, 2 seeds,
//                                          every job ended, with curves and costs (below)
//   seed_store --db FILE --scenario big    "big": 10,000 succeeded jobs over four dimensions
//   seed_store --db FILE --scenario updated
//                                          "updated": a sweep an update changed, some of its
//                                          jobs dropped (below)
// Attempts run on a clock that starts 30 hours ago and moves one job's duration at a time, so
// elapsed times and GPU-hours are those the formulas below give.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/store/store.h"

ABSL_FLAG(std::string, db, "", "database file to create");
ABSL_FLAG(std::string, scenario, "grid", "grid, big or updated");

namespace ablate::coordinator {
namespace {

// Moves only when told; starts 30 hours before the real now.
class SteppedClock : public Clock {
 public:
  absl::Time Now() const override { return now_; }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_ = absl::Now() - absl::Hours(30);
};

struct Cell {
  std::vector<std::pair<std::string, std::string>> values;  // in grid order
};

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    (void)std::fprintf(stderr, "seed_store: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

v1::Sweep SweepOf(const std::string& id,
                  const std::vector<std::pair<std::string, std::vector<std::string>>>& grid,
                  absl::Time created) {
  v1::Sweep sweep;
  sweep.set_id(id);
  sweep.mutable_spec()->set_name(id);
  sweep.mutable_spec()->set_description(absl::StrCat("seeded for the dashboard's tests: ", id));
  for (const auto& [name, values] : grid) {
    v1::Dimension& d = *sweep.mutable_spec()->add_grid();
    d.set_name(name);
    for (const std::string& v : values) d.add_values(v);
  }
  sweep.mutable_created_at()->set_seconds(absl::ToUnixSeconds(created));
  return sweep;
}

// The cross product of `grid`, first dimension slowest, as the sweep's expansion orders it.
std::vector<Cell> Expand(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& grid) {
  std::vector<Cell> cells(1);
  for (const auto& [name, values] : grid) {
    std::vector<Cell> next;
    for (const Cell& c : cells) {
      for (const std::string& v : values) {
        Cell n = c;
        n.values.emplace_back(name, v);
        next.push_back(std::move(n));
      }
    }
    cells = std::move(next);
  }
  return cells;
}

// The jobs of `cells`, numbered from `first` on.
std::vector<v1::JobSpec> SpecsOf(const std::string& sweep_id, const std::vector<Cell>& cells,
                                 size_t first = 0) {
  std::vector<v1::JobSpec> specs;
  for (size_t i = 0; i < cells.size(); ++i) {
    v1::JobSpec& spec = specs.emplace_back();
    spec.set_job_id(absl::StrFormat("%s-%05d", sweep_id, first + i));
    spec.set_sweep_id(sweep_id);
    spec.set_index(static_cast<uint32_t>(first + i));
    for (const auto& [d, v] : cells[i].values) {
      v1::CellValue& value = *spec.add_cell();
      value.set_dimension(d);
      value.set_value(v);
    }
  }
  return specs;
}

std::string ValueOf(const Cell& cell, const std::string& dimension) {
  for (const auto& [d, v] : cell.values) {
    if (d == dimension) return v;
  }
  return "";
}

v1::MetricPoint Point(const std::string& name, int64_t step, double value, absl::Time t) {
  v1::MetricPoint p;
  p.set_name(name);
  p.set_step(step);
  p.set_value(value);
  p.set_wall_time(static_cast<double>(absl::ToUnixMicros(t)) / 1e6);
  return p;
}

// The "ablation" sweep. Final eval loss = 3.0 - 0.4 [small] - 0.15 [muon] + 0.05 [nsa]
// + 0.01 * (seed - 1.5); one job (small, muon, nsa, seed 2) failed. A job lasts 0.5 h (tiny)
// or 1.5 h (small); it trains 1000 (tiny) or 400 (small) tokens/s and peaks at 2 GiB (tiny) or
// 6 GiB (small), plus 1 GiB with muon. Each runs on one GPU, whose health its worker sampled
// every 10 steps: utilization 90% + step / 10 (tiny) or 80% + step / 10 (small), memory used
// 2 GiB + step MiB, 50 + step / 5 degrees; steps of 4 sequences of 64 tokens, at 1e6 (tiny) or
// 5e6 (small) training FLOPs per token.
void SeedGrid(Store& store, SteppedClock& clock) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> grid = {
      {"model", {"tiny", "small"}},
      {"optimizer", {"adamw", "muon"}},
      {"attention", {"dense", "nsa"}},
      {"seed", {"1", "2"}}};
  const std::vector<Cell> cells = Expand(grid);
  std::vector<v1::JobSpec> specs = SpecsOf("ablation", cells);
  for (size_t i = 0; i < cells.size(); ++i) {
    const bool small = ValueOf(cells[i], "model") == "small";
    v1::TrainConfig& config = *specs[i].mutable_config();
    config.set_model(ValueOf(cells[i], "model"));
    config.set_gpus(1);
    config.set_batch_size(4);
    config.set_context_length(64);
    config.set_steps(100);
    specs[i].set_train_flops_per_token(small ? 5e6 : 1e6);
  }
  Check(store.CreateSweep(SweepOf("ablation", grid, clock.Now()), specs, 3), "CreateSweep");
  for (size_t i = 0; i < cells.size(); ++i) {
    const Cell& cell = cells[i];
    const bool small = ValueOf(cell, "model") == "small";
    const bool muon = ValueOf(cell, "optimizer") == "muon";
    const bool nsa = ValueOf(cell, "attention") == "nsa";
    const int seed = ValueOf(cell, "seed") == "2" ? 2 : 1;
    const double final_loss =
        3.0 - (small ? 0.4 : 0) - (muon ? 0.15 : 0) + (nsa ? 0.05 : 0) + 0.01 * (seed - 1.5);
    const bool fails = small && muon && nsa && seed == 2;
    absl::StatusOr<v1::Attempt> attempt =
        store.StartAttempt(specs[i].job_id(), i % 2 == 0 ? "gpu-node-1" : "gpu-node-2");
    Check(attempt.status(), "StartAttempt");
    Check(store.MarkRunning(specs[i].job_id(), attempt->id()), "MarkRunning");
    const absl::Duration duration = absl::Minutes(small ? 90 : 30);
    const int steps = fails ? 50 : 100;
    std::vector<v1::MetricPoint> points;
    for (int step = 1; step <= steps; ++step) {
      const absl::Time t = clock.Now() + duration * step / 100;
      const double progress = step / 100.0;
      points.push_back(
          Point("train/loss", step, final_loss + 8.0 * (1 - progress) * (1 - progress) + 0.02, t));
      points.push_back(Point("train/lr", step, 1e-3 * std::min(1.0, step / 10.0), t));
      points.push_back(Point("train/tokens_per_sec", step, small ? 400 : 1000, t));
      if (step % 25 == 0) {
        points.push_back(
            Point("eval/loss", step, final_loss + 8.0 * (1 - progress) * (1 - progress), t));
      }
      if (step % 10 == 0) {
        points.push_back(
            Point("gpu/0/utilization_percent", step, (small ? 80 : 90) + step / 10.0, t));
        points.push_back(Point("gpu/0/memory_used_bytes", step, (2048.0 + step) * (1 << 20), t));
        points.push_back(Point("gpu/0/temperature_celsius", step, 50 + step / 5.0, t));
      }
    }
    const double gib = 1024.0 * 1024 * 1024;
    points.push_back(Point("memory/peak_allocated_bytes", steps,
                           ((small ? 6 : 2) + (muon ? 1 : 0)) * gib, clock.Now() + duration));
    Check(store.AppendMetrics(specs[i].job_id(), attempt->id(), points), "AppendMetrics");
    clock.Advance(duration);
    v1::ExitStatus exit;
    exit.set_exit_code(fails ? 1 : 0);
    if (fails) exit.set_reason("loss became NaN at step 51");
    Check(store.EndAttempt(specs[i].job_id(), attempt->id(),
                           fails ? v1::ATTEMPT_STATE_FAILED : v1::ATTEMPT_STATE_SUCCEEDED, exit,
                           fails ? v1::JOB_STATE_FAILED : v1::JOB_STATE_SUCCEEDED,
                           fails ? "loss became NaN at step 51" : "",
                           fails ? std::nullopt : std::optional<double>(final_loss)),
          "EndAttempt");
  }
  // Last seen now (the clock's end), so the workers stay within the store's retention.
  for (const char* id : {"gpu-node-1", "gpu-node-2"}) {
    v1::WorkerInfo info;
    info.set_worker_id(id);
    info.set_hostname(id);
    v1::Slot& slot = *info.add_slots();
    slot.set_kind(v1::DEVICE_KIND_CUDA);
    slot.set_name("NVIDIA H200");
    slot.set_memory_bytes(141ull << 30);
    Check(store.UpsertWorker(info, false), "UpsertWorker");
  }
}

// "big": a (25) x b (20) x c (4) x d (5) = 10,000 jobs, each succeeded with final eval loss
// 2 + a / 25 + b / 100: no attempts' curves, only the jobs the grid draws.
void SeedBig(Store& store, SteppedClock& clock) {
  auto values = [](const std::string& prefix, int n) {
    std::vector<std::string> v;
    v.reserve(n);
    for (int i = 0; i < n; ++i) v.push_back(absl::StrCat(prefix, i));
    return v;
  };
  const std::vector<std::pair<std::string, std::vector<std::string>>> grid = {
      {"a", values("a", 25)}, {"b", values("b", 20)}, {"c", values("c", 4)}, {"d", values("d", 5)}};
  const std::vector<Cell> cells = Expand(grid);
  const std::vector<v1::JobSpec> specs = SpecsOf("big", cells);
  Check(store.CreateSweep(SweepOf("big", grid, clock.Now()), specs, 3), "CreateSweep");
  std::vector<AttemptStart> starts;
  starts.reserve(specs.size());
  for (const v1::JobSpec& spec : specs) starts.push_back({spec.job_id(), "gpu-node-1"});
  absl::StatusOr<std::vector<v1::Attempt>> attempts = store.StartAttempts(starts);
  Check(attempts.status(), "StartAttempts");
  absl::Mutex mu;
  int pending = 0;
  absl::Status failed;
  for (size_t i = 0; i < specs.size(); ++i) {
    const int a = static_cast<int>(i / 400), b = static_cast<int>(i / 20 % 20);
    AttemptEnd end;
    end.attempt_state = v1::ATTEMPT_STATE_SUCCEEDED;
    end.job_state = v1::JOB_STATE_SUCCEEDED;
    end.final_eval_loss = 2.0 + a / 25.0 + b / 100.0;
    {
      absl::MutexLock lock(&mu);
      ++pending;
    }
    store.EndAttemptAsync({specs[i].job_id(), (*attempts)[i].id(), 1}, std::move(end),
                          [&](const absl::Status& s) {
                            absl::MutexLock lock(&mu);
                            if (!s.ok()) failed = s;
                            --pending;
                          });
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &pending));
  Check(failed, "EndAttemptAsync");
}

// Runs `job_id` to success on gpu-node-1, in ten minutes, with `final_eval_loss`.
void Succeed(Store& store, SteppedClock& clock, const std::string& job_id, double final_eval_loss) {
  absl::StatusOr<v1::Attempt> attempt = store.StartAttempt(job_id, "gpu-node-1");
  Check(attempt.status(), "StartAttempt");
  Check(store.MarkRunning(job_id, attempt->id()), "MarkRunning");
  clock.Advance(absl::Minutes(10));
  Check(store.EndAttempt(job_id, attempt->id(), v1::ATTEMPT_STATE_SUCCEEDED, v1::ExitStatus(),
                         v1::JOB_STATE_SUCCEEDED, "", final_eval_loss),
        "EndAttempt");
}

// "updated": optimizer [adamw, muon, soap] x seed [1, 2] (jobs 0-5), every job but soap's
// seed 2 succeeded; then updated (SubmitSweepRequest.update) by a file without soap and with
// muon's settings changed: muon's cells are new jobs (6, 7), which succeeded, and the update
// dropped the old muon jobs and soap's (its seed 2 had not run: the update cancelled it). Final
// eval loss 3.0 (adamw), 2.9 (muon before the change), 2.7 (muon after), 2.5 (soap), each
// + 0.01 (seed - 1.5).
void SeedUpdated(Store& store, SteppedClock& clock) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> grid = {
      {"optimizer", {"adamw", "muon", "soap"}}, {"seed", {"1", "2"}}};
  const std::vector<Cell> cells = Expand(grid);
  const std::vector<v1::JobSpec> specs = SpecsOf("updated", cells);
  Check(store.CreateSweep(SweepOf("updated", grid, clock.Now()), specs, 3), "CreateSweep");
  const auto loss = [](const Cell& cell, double base) {
    return base + 0.01 * (ValueOf(cell, "seed") == "2" ? 0.5 : -0.5);
  };
  for (size_t i = 0; i + 1 < cells.size(); ++i) {
    const std::string optimizer = ValueOf(cells[i], "optimizer");
    const double base = optimizer == "adamw" ? 3.0 : optimizer == "muon" ? 2.9 : 2.5;
    Succeed(store, clock, specs[i].job_id(), loss(cells[i], base));
  }
  const std::vector<v1::JobSpec> rerun = SpecsOf("updated", {cells[2], cells[3]}, cells.size());
  std::vector<std::string> dropped;
  for (size_t i = 2; i < cells.size(); ++i) dropped.push_back(specs[i].job_id());
  const std::vector<std::pair<std::string, std::vector<std::string>>> without_soap = {
      {"optimizer", {"adamw", "muon"}}, grid[1]};
  Check(store.AddJobs(SweepOf("updated", without_soap, clock.Now()), rerun, dropped, 3), "AddJobs");
  for (size_t i = 0; i < rerun.size(); ++i) {
    Succeed(store, clock, rerun[i].job_id(), loss(cells[2 + i], 2.7));
  }
}

}  // namespace
}  // namespace ablate::coordinator

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace ablate::coordinator;
  SteppedClock clock;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(absl::GetFlag(FLAGS_db), clock);
  Check(store.status(), "Open");
  const std::string scenario = absl::GetFlag(FLAGS_scenario);
  if (scenario == "grid") {
    SeedGrid(**store, clock);
  } else if (scenario == "big") {
    SeedBig(**store, clock);
  } else if (scenario == "updated") {
    SeedUpdated(**store, clock);
  } else {
    (void)std::fprintf(stderr, "seed_store: unknown --scenario %s\n", scenario.c_str());
    return 2;
  }
  return 0;
}
