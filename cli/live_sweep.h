// LiveSweep is the whole sweep as a watch has described it so far. WatchSweep sends the whole
// sweep first (delta false), then what each commit changed (delta true: the sweep's counts and
// state, and the rows of the jobs that changed); the views want the whole sweep each time.
// A message with delta false (the first, or a new one after the coordinator restarted or the
// watch fell behind) replaces everything. Metric points are not kept: the CLI shows none.
//
// A value; not thread-safe.
#ifndef ABLATE_CLI_LIVE_SWEEP_H_
#define ABLATE_CLI_LIVE_SWEEP_H_

#include <string>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/container/flat_hash_map.h"

namespace ablate::cli {

class LiveSweep {
 public:
  void Apply(const v1::SweepSnapshot& message);

  // False until the first message with delta false arrived.
  bool known() const { return known_; }
  // The sweep (with its spec from the first message) and every job, in expansion order.
  const v1::SweepSnapshot& snapshot() const { return snapshot_; }

 private:
  bool known_ = false;
  v1::SweepSnapshot snapshot_;
  absl::flat_hash_map<std::string, int> position_;  // job id -> index in snapshot_.jobs()
};

}  // namespace ablate::cli

#endif  // ABLATE_CLI_LIVE_SWEEP_H_
