#include "cli/live_sweep.h"

namespace ablate::cli {

void LiveSweep::Apply(const v1::SweepSnapshot& message) {
  if (!message.delta()) {
    known_ = true;
    snapshot_ = message;
    snapshot_.clear_metrics();
    position_.clear();
    for (int i = 0; i < snapshot_.jobs_size(); ++i) {
      position_[snapshot_.jobs(i).spec().job_id()] = i;
    }
    return;
  }
  if (!known_) return;  // a delta means nothing without the sweep it changes
  // A delta's sweep leaves out the spec, which never changes; counts are replaced whole, since
  // merging would keep a count that dropped to zero.
  v1::Sweep& sweep = *snapshot_.mutable_sweep();
  sweep.set_state(message.sweep().state());
  *sweep.mutable_counts() = message.sweep().counts();
  for (const v1::Job& job : message.jobs()) {
    auto [it, inserted] = position_.try_emplace(job.spec().job_id(), snapshot_.jobs_size());
    if (inserted) {
      *snapshot_.add_jobs() = job;
    } else {
      *snapshot_.mutable_jobs(it->second) = job;
    }
  }
  snapshot_.set_version(message.version());
}

}  // namespace ablate::cli
