// Throughput of the store's largest writes: queueing a 100,000-job sweep in one CreateSweep,
// and metric points arriving from a live sweep of 500 running jobs, interleaved as their
// workers send them. Runs on a real file in a temporary directory:
//   store_benchmark --benchmark_filter=AppendMetrics
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "common/train_config.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"

namespace ablate::coordinator {
namespace {

constexpr int kLiveJobs = 500;

// A fresh directory per store, removed with it.
class TempStore {
 public:
  TempStore() {
    std::string dir = (std::filesystem::temp_directory_path() / "store_benchmark_XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) abort();
    dir_ = dir;
    store_ = Store::Open(dir_ + "/ablate.db", RealClock()).value();
  }
  ~TempStore() {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  Store& store() { return *store_; }

 private:
  std::string dir_;
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

using testing::MakeSweep;

void BM_CreateSweep(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::vector<v1::JobSpec> jobs = MakeJobs("bench", n);
  for (auto _ : state) {
    state.PauseTiming();
    auto temp = std::make_unique<TempStore>();
    state.ResumeTiming();
    if (absl::Status status = temp->store().CreateSweep(MakeSweep("bench"), jobs, 3);
        !status.ok()) {
      state.SkipWithError(status.ToString().c_str());
    }
    state.PauseTiming();
    temp.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_CreateSweep)->Arg(100'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// One AppendMetrics call per report, as the worker relays them: `points` points of one job,
// the jobs taking turns.
void BM_AppendMetrics(benchmark::State& state) {
  const int points_per_call = static_cast<int>(state.range(0));
  TempStore temp;
  Store& store = temp.store();
  std::vector<v1::JobSpec> jobs = MakeJobs("live", kLiveJobs);
  if (!store.CreateSweep(MakeSweep("live"), jobs, 3).ok()) abort();
  std::vector<uint64_t> attempts;
  for (const v1::JobSpec& job : jobs) {
    attempts.push_back(store.StartAttempt(job.job_id(), "w").value().id());
    if (!store.MarkRunning(job.job_id(), attempts.back()).ok()) abort();
  }
  const char* names[] = {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s"};
  std::vector<v1::MetricPoint> points(points_per_call);
  int64_t call = 0;
  for (auto _ : state) {
    const int job = static_cast<int>(call % kLiveJobs);
    const int64_t step = call / kLiveJobs * points_per_call;
    for (int p = 0; p < points_per_call; ++p) {
      points[p].set_name(names[p % 4]);
      points[p].set_step(step + p / 4);
      points[p].set_value(1.0 / static_cast<double>(1 + step + p));
      points[p].set_wall_time(1.8e9 + static_cast<double>(call));
    }
    if (absl::Status status = store.AppendMetrics(jobs[job].job_id(), attempts[job], points);
        !status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      break;
    }
    ++call;
  }
  state.SetItemsProcessed(state.iterations() * points_per_call);
}
BENCHMARK(BM_AppendMetrics)->Arg(4)->Arg(40)->Arg(400)->UseRealTime();

}  // namespace
}  // namespace ablate::coordinator

BENCHMARK_MAIN();
