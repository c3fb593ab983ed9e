// The store's bars, each beside SQLite's own floor for the same rows measured in the same run:
//   CreateSweep/100000 vs CreateSweepFloor: a 100,000-job sweep in one write;
//   Ingest/4, Ingest/400 vs AppendFloor: metric reports of 4 and 400 points from 8 threads
//     through AppendMetricsAsync, numbered as workers number them, 500 running jobs;
//   ReadCurve vs ReadCurveFloor: one job's 100,000-point train/loss (of 400,000 points in four
//     series) read thinned to 1,000 points.
// Runs on real files in temporary directories:
//   build/bin/store_benchmark
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "common/train_config.h"
#include "coordinator/store/sqlite_floor.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"

namespace ablate::coordinator {
namespace {

constexpr int kLiveJobs = 500;
constexpr int kThreads = 8;
constexpr int kInFlightPerThread = 64;  // reports a thread has waiting for their WriteDone
constexpr int kPointsPerIteration = 400'000;
constexpr int kCurveSteps = 100'000;
const char* const kNames[] = {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s"};

// A store on a fresh file, removed with it.
class TempStore {
 public:
  TempStore() : path_(dir_.File("ablate.db")) { Open(); }
  void Open() { store_ = Store::Open(path_, RealClock()).value(); }
  void Close() { store_.reset(); }
  Store& store() { return *store_; }
  const std::string& path() const { return path_; }

 private:
  testing::TempDir dir_;
  const std::string path_;
  std::unique_ptr<Store> store_;
};

// Jobs shaped like an expanded sweep's: a full config and a cell of four dimensions.
std::vector<v1::JobSpec> MakeJobs(const std::string& sweep_id, int n) {
  std::vector<v1::JobSpec> jobs(n);
  for (int i = 0; i < n; ++i) {
    v1::JobSpec& job = jobs[i];
    job.set_sweep_id(sweep_id);
    job.set_job_id(absl::StrCat(sweep_id, "-", absl::Hex(i * 2654435761u, absl::kZeroPad8)));
    job.set_index(i);
    *job.mutable_config() = DefaultTrainConfig();
    job.mutable_config()->set_seed(i);
    for (const char* dimension : {"model", "attention", "optimizer", "seed"}) {
      v1::CellValue& cell = *job.add_cell();
      cell.set_dimension(dimension);
      cell.set_value(GetTrainField(job.config(), dimension));
    }
    job.set_config_hash(absl::StrCat(absl::Hex(i, absl::kZeroPad16)));
    job.set_checkpoint_dir(absl::StrCat("runs/checkpoints/", sweep_id, "/", job.job_id()));
  }
  return jobs;
}

// `n` points as a trainer reports them: the four series in turn, a step per four points.
std::vector<v1::MetricPoint> MakePoints(int n, int64_t first_step) {
  std::vector<v1::MetricPoint> points(n);
  for (int p = 0; p < n; ++p) {
    points[p].set_name(kNames[p % 4]);
    points[p].set_step(first_step + p / 4);
    points[p].set_value(1.0 / static_cast<double>(1 + first_step + p));
    points[p].set_wall_time(1.8e9 + static_cast<double>(first_step));
  }
  return points;
}

void BM_CreateSweep(benchmark::State& state) {
  const std::vector<v1::JobSpec> jobs = MakeJobs("bench", static_cast<int>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    auto temp = std::make_unique<TempStore>();
    state.ResumeTiming();
    if (absl::Status s = temp->store().CreateSweep(testing::MakeSweep("bench"), jobs, 3); !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
    }
    state.PauseTiming();
    temp.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_CreateSweep)->Arg(100'000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CreateSweepFloor(benchmark::State& state) {
  const std::vector<v1::JobSpec> jobs = MakeJobs("bench", static_cast<int>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    auto temp = std::make_unique<TempStore>();
    temp->Close();
    state.ResumeTiming();
    if (absl::Status s = floor::InsertJobs(temp->path(), "bench", jobs); !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
    }
    state.PauseTiming();
    temp.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_CreateSweepFloor)->Arg(100'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Counts reports in flight and lets a thread wait until fewer than a bound are.
class InFlight {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return n_ < kInFlightPerThread; };
    mu_.Await(absl::Condition(&room));
    ++n_;
  }
  void Done() {
    absl::MutexLock lock(&mu_);
    --n_;
  }
  void WaitForNone() {
    absl::MutexLock lock(&mu_);
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return n_ == 0; };
    mu_.Await(absl::Condition(&none));
  }

 private:
  absl::Mutex mu_;
  int n_ ABSL_GUARDED_BY(mu_) = 0;
};

void BM_Ingest(benchmark::State& state) {
  const int points_per_report = static_cast<int>(state.range(0));
  TempStore temp;
  Store& store = temp.store();
  const std::vector<v1::JobSpec> jobs = MakeJobs("live", kLiveJobs);
  if (!store.CreateSweep(testing::MakeSweep("live"), jobs, 3).ok()) abort();
  std::vector<uint64_t> attempts;
  for (const v1::JobSpec& job : jobs) {
    attempts.push_back(store.StartAttempt(job.job_id(), "w").value().id());
    if (!store.MarkRunning(job.job_id(), attempts.back()).ok()) abort();
  }
  std::vector<uint64_t> sequence(kLiveJobs, 0);  // per job, across iterations
  std::atomic<int64_t> refused = 0;
  const int reports_per_thread = kPointsPerIteration / points_per_report / kThreads;
  for (auto _ : state) {
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        InFlight in_flight;
        // Thread t reports for jobs t, t + kThreads, ...: each job's reports from one thread,
        // in order, as one worker stream sends them.
        for (int r = 0; r < reports_per_thread; ++r) {
          const int job = t + kThreads * (r % (kLiveJobs / kThreads));
          const uint64_t seq = ++sequence[job];
          in_flight.Add();
          store.AppendMetricsAsync(
              {jobs[job].job_id(), attempts[job], seq},
              MakePoints(points_per_report, static_cast<int64_t>(seq) * points_per_report),
              [&](const absl::Status& status) {
                if (!status.ok()) ++refused;
                in_flight.Done();
              });
        }
        in_flight.WaitForNone();
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  if (refused > 0) state.SkipWithError("reports were refused");
  const StoreStats stats = store.Stats();
  state.counters["rows_per_group"] =
      static_cast<double>(stats.rows) / static_cast<double>(std::max<int64_t>(1, stats.groups));
  state.SetItemsProcessed(state.iterations() * int64_t{reports_per_thread} * kThreads *
                          points_per_report);
}
BENCHMARK(BM_Ingest)->Arg(4)->Arg(400)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same rows as Ingest/<points per report>, `points` per job in turn over 500 jobs, 5,000
// per commit, from one thread with nothing else to do.
void BM_AppendFloor(benchmark::State& state) {
  const int points_per_report = static_cast<int>(state.range(0));
  TempStore temp;
  temp.Close();
  const std::vector<v1::MetricPoint> points = MakePoints(points_per_report, 0);
  const int rounds = kPointsPerIteration / points_per_report;
  for (auto _ : state) {
    if (absl::Status s = floor::AppendPoints(temp.path(), points, rounds, kLiveJobs, 5000);
        !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
    }
  }
  state.SetItemsProcessed(state.iterations() * kPointsPerIteration);
}
BENCHMARK(BM_AppendFloor)->Arg(4)->Arg(400)->Unit(benchmark::kMillisecond)->UseRealTime();

// One job with kCurveSteps steps of each of the four series.
class CurveStore : public TempStore {
 public:
  CurveStore() {
    const std::vector<v1::JobSpec> jobs = MakeJobs("curve", 1);
    if (!store().CreateSweep(testing::MakeSweep("curve"), jobs, 3).ok()) abort();
    job_id_ = jobs[0].job_id();
    const uint64_t attempt = store().StartAttempt(job_id_, "w").value().id();
    for (int64_t step = 0; step < kCurveSteps; step += 1000) {
      if (!store().AppendMetrics(job_id_, attempt, MakePoints(4000, step)).ok()) abort();
    }
  }
  const std::string& job_id() const { return job_id_; }

 private:
  std::string job_id_;
};

void BM_ReadCurve(benchmark::State& state) {
  CurveStore curve;
  for (auto _ : state) {
    absl::StatusOr<std::vector<v1::MetricSeries>> series =
        curve.store().ReadMetrics(curve.job_id(), {"train/loss"}, 1000);
    if (!series.ok() || series->size() != 1 || (*series)[0].steps_size() != 1000) {
      state.SkipWithError("the curve did not read as 1,000 points");
    }
    benchmark::DoNotOptimize(series);
  }
}
BENCHMARK(BM_ReadCurve)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ReadCurveFloor(benchmark::State& state) {
  CurveStore curve;
  curve.Close();
  for (auto _ : state) {
    absl::StatusOr<int64_t> rows = floor::ReadSeries(curve.path(), 1, "train/loss");
    if (!rows.ok() || *rows != kCurveSteps) state.SkipWithError("the floor read the wrong rows");
  }
}
BENCHMARK(BM_ReadCurveFloor)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace ablate::coordinator

BENCHMARK_MAIN();
