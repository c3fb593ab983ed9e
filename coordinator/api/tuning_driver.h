// TuningDriver runs the per-cell tuning of sweeps that have one (SweepSpec.tuning,
// sweep/tuning.h): when trials of a tuned sweep end, it adds the trials their rung promotes
// and, once a cell has chosen, the cell's final jobs, and hands them to the scheduler.
//
// It keeps no state of its own beyond which sweeps it watches: every decision is
// sweep::NextTuningJobs over the sweep's stored jobs, so a coordinator that restarts picks up
// each tuning where the database left it (Start() watches every stored sweep with tuning).
//
// Its thread looks at each watched sweep's job counts (a few rows) every `interval`; only a
// sweep whose ended or total counts changed is read in full and stepped. Trials run for
// minutes, so a promotion up to one interval late costs nothing worth a subscription to every
// commit. A sweep is no longer watched once
// every cell has its final jobs (or every point of it failed); RetryJobs and updates watch it
// again.
//
// Thread safety: Watch may be called from any thread and never blocks on the store.
#ifndef ABLATE_COORDINATOR_API_TUNING_DRIVER_H_
#define ABLATE_COORDINATOR_API_TUNING_DRIVER_H_

#include <optional>
#include <string>
#include <thread>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"

namespace ablate::coordinator {

struct TuningDriverOptions {
  absl::Duration interval = absl::Milliseconds(500);  // between two looks at the sweeps
};

class TuningDriver {
 public:
  // `store` and `scheduler` must outlive the driver.
  TuningDriver(Store& store, Scheduler& scheduler, TuningDriverOptions options = {});
  ~TuningDriver();  // Stop()s
  TuningDriver(const TuningDriver&) = delete;
  TuningDriver& operator=(const TuningDriver&) = delete;

  // Watches every stored sweep with tuning, then starts the thread. The store's error when the
  // sweeps cannot be read; the thread is then not started.
  absl::Status Start();
  // Joins the thread. Idempotent.
  void Stop();

  // The sweep (with tuning) was stored, updated or had jobs queued again: watch it.
  void Watch(const std::string& sweep_id);

 private:
  // Ended and total job counts: what a step depends on.
  using Seen = std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>;

  void Run();
  // Adds what the sweep's tuning needs now; true when its tuning is done.
  absl::StatusOr<bool> Step(const v1::Sweep& sweep);

  // Constant after construction.
  Store& store_;
  Scheduler& scheduler_;
  const TuningDriverOptions options_;

  absl::Mutex mu_;
  // Watched sweeps -> the counts their last step saw (unset: never stepped).
  absl::flat_hash_map<std::string, std::optional<Seen>> watched_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;  // started by Start(), joined by Stop()
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_API_TUNING_DRIVER_H_
