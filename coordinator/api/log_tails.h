// LogTails keeps the latest tail of each job's log, as its worker sent it (worker.proto's
// LogTail), for SweepApi::GetJobLog and the dashboard's Job view. Workers resend a running
// attempt's tail whenever it changes, so the coordinator keeps tails in memory only: after a
// restart a job's log is empty until its worker sends it again (a running attempt's within
// seconds; an ended attempt's when its worker next connects, if it still holds the attempt).
//
// Invariants:
//  1. A job holds the tail of the newest attempt that sent one: a tail of an older attempt is
//     ignored.
//  2. The lines of all tails together hold at most `max_bytes`; past that, the tails updated
//     longest ago are dropped first. A worker bounds each tail (64 KiB by default), so the
//     default 128 MiB keeps at least the 2,048 most recently updated jobs' tails.
//
// Thread safety: every method may be called from any thread.
#ifndef ABLATE_COORDINATOR_API_LOG_TAILS_H_
#define ABLATE_COORDINATOR_API_LOG_TAILS_H_

#include <cstddef>
#include <list>
#include <string>

#include "ablate/v1/sweep_service.pb.h"
#include "ablate/v1/worker.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace ablate::coordinator {

class LogTails {
 public:
  // `clock` must outlive the LogTails; it stamps each tail's updated_at.
  explicit LogTails(Clock& clock, size_t max_bytes = size_t{128} << 20);
  LogTails(const LogTails&) = delete;
  LogTails& operator=(const LogTails&) = delete;

  // Keeps `tail` as its job's (invariant 1). The caller has checked that its worker holds
  // the attempt.
  void Put(const v1::LogTail& tail);
  // The job's tail; attempt_id 0 and no lines when none arrived.
  v1::JobLog Get(const std::string& job_id) const;

 private:
  struct Entry {
    v1::JobLog log;
    size_t bytes = 0;
    std::list<std::string>::iterator age;  // its place in by_age_
  };

  Clock& clock_;
  const size_t max_bytes_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> tails_ ABSL_GUARDED_BY(mu_);  // by job id
  std::list<std::string> by_age_ ABSL_GUARDED_BY(mu_);  // job ids, updated longest ago first
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_API_LOG_TAILS_H_
