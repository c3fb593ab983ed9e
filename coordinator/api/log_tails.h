// LogTails keeps the latest tail of each job's log, as its worker sent it (worker.proto's
// LogTail), for SweepApi::GetJobLog and the dashboard's Job view. A running attempt's tail
// changes every few seconds, so tails are kept in memory; when an attempt ends (Ended), the
// tail memory holds of it is also written to the store (Store::SaveJobLogAsync), so that the
// log a user most wants, an ended attempt's, outlives a restart of the coordinator. Get reads
// memory first, and the store only when memory holds no tail of the job's current attempt.
//
// Invariants:
//  1. A job holds the tail of the newest attempt that sent one: a tail of an older attempt is
//     ignored.
//  2. The lines of all tails in memory together hold at most `max_bytes`; past that, the tails
//     updated longest ago are dropped first. A worker bounds each tail (64 KiB by default), so
//     the default 128 MiB keeps at least the 2,048 most recently updated jobs' tails.
//  3. The store keeps one tail per job, of its newest ended attempt whose tail memory held at
//     its end (see Store::SaveJobLogAsync for its bound). Tails of running attempts are never
//     written to it.
//
// Thread safety: every method may be called from any thread. Ended never blocks (the store
// write is asynchronous); Get may wait for a store read.
#ifndef ABLATE_COORDINATOR_API_LOG_TAILS_H_
#define ABLATE_COORDINATOR_API_LOG_TAILS_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>

#include "ablate/v1/sweep_service.pb.h"
#include "ablate/v1/worker.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "coordinator/store/store.h"

namespace ablate::coordinator {

class LogTails {
 public:
  // `clock` must outlive the LogTails; it stamps each tail's updated_at. `store` (may be null:
  // tails in memory only) must too.
  LogTails(Clock& clock, Store* store, size_t max_bytes = size_t{128} << 20);
  LogTails(const LogTails&) = delete;
  LogTails& operator=(const LogTails&) = delete;

  // Keeps `tail` as its job's (invariant 1). The caller has checked that its worker holds
  // the attempt.
  void Put(const v1::LogTail& tail);
  // Attempt `attempt_id` of `job_id` ended: the tail memory holds of it, if any, is stored.
  // A store that fails the write logs it; memory still serves the tail until a restart.
  void Ended(const std::string& job_id, uint64_t attempt_id);
  // The job's tail, whose current attempt (Job.current_attempt_id) is `current_attempt_id`:
  // memory's when it is of that attempt, else the newer of memory's and the stored one;
  // attempt_id 0 and no lines when there is neither. The store's error when it cannot be read.
  absl::StatusOr<v1::JobLog> Get(const std::string& job_id, uint64_t current_attempt_id) const;

 private:
  struct Entry {
    v1::JobLog log;
    size_t bytes = 0;
    std::list<std::string>::iterator age;  // its place in by_age_
  };

  // The tail memory holds of the job; attempt_id 0 and no lines when none.
  v1::JobLog InMemory(const std::string& job_id) const;

  Clock& clock_;
  Store* const store_;
  const size_t max_bytes_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> tails_ ABSL_GUARDED_BY(mu_);  // by job id
  std::list<std::string> by_age_ ABSL_GUARDED_BY(mu_);  // job ids, updated longest ago first
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_API_LOG_TAILS_H_
