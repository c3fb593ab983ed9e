// The coordinator's bar for large sweeps: SubmitSweep of a 100,000-cell spec (validate,
// expand, store every job in one transaction) under 1.5 s on a 2-core machine, beside
// SubmitFloor: SQLite alone inserting the same 100,000 job rows into the same tables, in the
// same run (and SubmitFloorAsWriter: the same with the store writer's settings, up to the
// commit). Runs on real SQLite files in temporary directories:
//   build/bin/submit_benchmark
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "coordinator/api/sweep_api.h"
#include "coordinator/feed/change_feed.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/sqlite_floor.h"
#include "coordinator/store/store.h"
#include "coordinator/telemetry/telemetry.h"
#include "coordinator/testing/fixtures.h"
#include "sweep/grid.h"
#include "sweep/large_spec.h"

namespace ablate::coordinator {
namespace {

void BM_SubmitSweep(benchmark::State& state) {
  v1::SubmitSweepRequest request;
  *request.mutable_spec() = sweep::HundredThousandCellSpec();
  for (auto _ : state) {
    state.PauseTiming();
    std::string dir = (std::filesystem::temp_directory_path() / "submit_bench_XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) abort();
    ChangeFeed feed(RealClock());
    StoreOptions options;
    options.feed = &feed;
    std::unique_ptr<Store> store = Store::Open(dir + "/ablate.db", RealClock(), options).value();
    auto scheduler = std::make_unique<Scheduler>(*store, RealClock(), SchedulerOptions{});
    auto telemetry = std::make_unique<Telemetry>(*store);
    auto api = std::make_unique<SweepApi>(*store, feed, *scheduler, *telemetry, RealClock());
    state.ResumeTiming();

    absl::StatusOr<v1::SubmitSweepResponse> response = api->SubmitSweep(request);
    if (!response.ok()) state.SkipWithError(response.status().ToString().c_str());

    state.PauseTiming();
    api.reset();
    telemetry.reset();
    scheduler.reset();
    store.reset();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * 100'000);
}
BENCHMARK(BM_SubmitSweep)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

void BM_SubmitFloor(benchmark::State& state) {
  const sweep::Expansion expansion = sweep::ExpandSweep(sweep::HundredThousandCellSpec()).value();
  for (auto _ : state) {
    state.PauseTiming();
    auto dir = std::make_unique<testing::TempDir>();
    const std::string path = dir->File("ablate.db");
    Store::Open(path, RealClock()).value().reset();  // the schema, then closed
    state.ResumeTiming();
    if (absl::Status s = floor::InsertJobs(path, expansion.sweep_id, expansion.jobs); !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
    }
    state.PauseTiming();
    dir.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * 100'000);
}
BENCHMARK(BM_SubmitFloor)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// The stricter floor for what SubmitSweep now waits for: SQLite alone committing the same rows
// with the store writer's settings, serialized beforehand, the checkpoint after the commit and
// outside the time (floor::CommitJobsAsWriter).
void BM_SubmitFloorAsWriter(benchmark::State& state) {
  const sweep::Expansion expansion = sweep::ExpandSweep(sweep::HundredThousandCellSpec()).value();
  for (auto _ : state) {
    auto dir = std::make_unique<testing::TempDir>();
    const std::string path = dir->File("ablate.db");
    Store::Open(path, RealClock()).value().reset();
    absl::StatusOr<absl::Duration> committed =
        floor::CommitJobsAsWriter(path, expansion.sweep_id, expansion.jobs);
    if (!committed.ok()) {
      state.SkipWithError(committed.status().ToString().c_str());
      break;
    }
    state.SetIterationTime(absl::ToDoubleSeconds(*committed));
  }
  state.SetItemsProcessed(state.iterations() * 100'000);
}
BENCHMARK(BM_SubmitFloorAsWriter)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(3);

}  // namespace
}  // namespace ablate::coordinator

BENCHMARK_MAIN();
