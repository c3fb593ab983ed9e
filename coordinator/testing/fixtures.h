// What the coordinator's tests share: a temporary directory, a clock the test moves by hand, a
// small valid sweep spec, and a wait that always ends. For tests only.
#ifndef ABLATE_COORDINATOR_TESTING_FIXTURES_H_
#define ABLATE_COORDINATOR_TESTING_FIXTURES_H_

#include <functional>
#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/metrics.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace ablate::coordinator::testing {

// A fresh directory under the system's temporary folder, removed with everything in it when
// the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Starts at a fixed instant and moves only when told. Thread-safe.
class FakeClock : public Clock {
 public:
  absl::Time Now() const override;
  void Advance(absl::Duration d);

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1'800'000'000);
};

// A sweep record with that id and name and an empty spec, as the store takes it.
v1::Sweep MakeSweep(const std::string& id);

// `n` job specs of sweep `sweep_id`: ids "<sweep_id>-j<i>", index i, config.steps 100 + i.
std::vector<v1::JobSpec> MakeJobs(const std::string& sweep_id, int n);

// A sweep of `cells` CPU jobs of the tiny model, one per learning rate, in that order.
v1::SweepSpec TinySweepSpec(const std::string& name, int cells);

// A sweep of `cells` CPU jobs of the tiny model that differ only in their seed (0, 1, ...), for
// sweeps larger than learning rates in (0, 1] can spell.
v1::SweepSpec SeedSweepSpec(const std::string& name, int cells);

// A metric point without a wall time.
v1::MetricPoint Point(const std::string& name, int64_t step, double value);

// Polls `done` until it holds or `timeout` passes; returns its last value.
bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(5));

// The resident memory of process `pid` (VmRSS) in MiB, or 0 when it cannot be read. For the
// benchmarks' memory columns.
double ResidentMiB(int pid);

}  // namespace ablate::coordinator::testing

#endif  // ABLATE_COORDINATOR_TESTING_FIXTURES_H_
