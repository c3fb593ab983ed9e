// TuningDriver runs the per-cell tuning of sweeps that have one (SweepSpec.tuning,
// sweep/tuning.h): when trials of a tuned sweep end, it adds the trials their rung promotes
// and, once a cell has chosen, the cell's final jobs, and hands them to the scheduler.
//
// It keeps no state of its own beyond which sweeps it watches: every decision is
// sweep::NextTuningJobs over the sweep's stored jobs, so a coordinator that restarts picks up
// each tuning where the database left it (Start() watches every stored sweep with tuning).
// The sweep's state never depends on how soon the driver acts: the store reads a tuned sweep
// whose tuning has jobs to add as ACTIVE (sweep::TuningOutcomes), so a rung's barrier never
// shows as an ended sweep.
//
// It learns of ended jobs from the change feed, as WatchSweep does: one subscription per
// watched sweep, whose deltas carry the job rows each commit changed; a sweep is stepped (its
// jobs read in full) after a commit in which one of its jobs ended, or when its subscription
// fell behind. A sweep is no longer watched once every cell has its final jobs (or every point
// of it failed); RetryJobs and updates watch it again.
//
// Thread safety: Watch may be called from any thread and never blocks on the store.
#ifndef ABLATE_COORDINATOR_API_TUNING_DRIVER_H_
#define ABLATE_COORDINATOR_API_TUNING_DRIVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/feed/change_feed.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"

namespace ablate::coordinator {

struct TuningDriverOptions {
  // After a step the store refused (a read or a write failed), the sweep is stepped again this
  // much later.
  absl::Duration retry = absl::Seconds(1);
};

class TuningDriver {
 public:
  // `store`, `scheduler` and `feed` (the one the store publishes to) must outlive the driver.
  TuningDriver(Store& store, Scheduler& scheduler, ChangeFeed& feed,
               TuningDriverOptions options = {});
  ~TuningDriver();  // Stop()s
  TuningDriver(const TuningDriver&) = delete;
  TuningDriver& operator=(const TuningDriver&) = delete;

  // Watches every stored sweep with tuning, then starts the thread. The store's error when the
  // sweeps cannot be read; the thread is then not started.
  absl::Status Start();
  // Joins the thread and ends the subscriptions. Idempotent.
  void Stop();

  // The sweep (with tuning) was stored, updated or had jobs queued again: watch it, and step it
  // once whatever the feed says.
  void Watch(const std::string& sweep_id);

 private:
  // What the subscriptions' callbacks touch. Shared with them: the feed may run a callback it
  // took before a subscription ended, after the driver is gone.
  struct Wake {
    absl::Mutex mu;
    absl::flat_hash_set<std::string> changed ABSL_GUARDED_BY(mu);  // deltas are waiting
    absl::flat_hash_set<std::string> forced ABSL_GUARDED_BY(mu);   // step whatever they say
    bool stopping ABSL_GUARDED_BY(mu) = false;
  };

  void Run();
  // Drains the subscription; true when a delta showed a job that ended, or deltas were lost.
  static bool JobEnded(ChangeFeed::Subscription& subscription);
  // Adds what the sweep's tuning needs now; true when its tuning is done.
  absl::StatusOr<bool> Step(const std::string& sweep_id);

  // Constant after construction.
  Store& store_;
  Scheduler& scheduler_;
  ChangeFeed& feed_;
  const TuningDriverOptions options_;
  const std::shared_ptr<Wake> wake_;

  struct Watched {
    std::unique_ptr<ChangeFeed::Subscription> subscription;
    uint64_t watches = 0;  // Watch calls, so a step that ends it keeps a Watch made meanwhile
  };

  absl::Mutex mu_;
  // Watched sweeps. Watch adds; only the thread removes, and Stop.
  absl::flat_hash_map<std::string, Watched> watched_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;  // started by Start(), joined by Stop()
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_API_TUNING_DRIVER_H_
