// LogTails keeps the latest tail of each job's log, as its worker sent it (worker.proto's
// LogTail), for SweepApi::GetJobLog and the dashboard's Job view. A running attempt's tail
// changes every few seconds, so tails are kept in memory; when an attempt ends (Ended), the
// tail memory holds of it is also written to the store (Store::SaveJobLogAsync), so that the
// log a user most wants, an ended attempt's, outlives a restart of the coordinator. A tail of
// an ended attempt that arrives later (a worker that sends its last lines after the end, or
// that reconnects after its attempt was declared lost) is stored too. Get reads memory first,
// and the store only when memory holds no tail of the job's current attempt.
//
// Invariants:
//  1. A job holds in memory the tail of the newest attempt that sent one: a tail of an older
//     attempt, which has ended, goes to the store alone (invariant 3).
//  2. The lines of all tails in memory together hold at most `max_bytes`; past that, the tails
//     updated longest ago are dropped first. A worker bounds each tail (64 KiB by default), so
//     the default 128 MiB keeps at least the 2,048 most recently updated jobs' tails.
//  3. The store keeps the tail of each ended attempt that memory held at or after its end, or
//     that arrived after a newer attempt's, of a job's kStoredLogsPerJob newest such attempts
//     (see Store::SaveJobLogAsync for its bounds). Tails of running attempts are never written
//     to it.
//  4. A job has at most one store write of its tail queued at a time: tails that arrive while
//     one is queued are written together, the newest, once it is done. So late tails cost one
//     write per group commit at most, not one per tail.
//  5. An attempt that ended before memory held a tail of it is remembered (for at most
//     kMaxUntailedEnds jobs; past that the oldest are forgotten), so that its late tail is
//     stored. An attempt whose tail memory meets first, with no end seen (it may have ended
//     before this process started), is looked up in the store once: ended there, its tail is
//     stored as well. Later tails of the same attempt need no lookup while memory keeps its
//     tail.
//
// Thread safety: every method may be called from any thread. Ended never blocks (the store
// writes are asynchronous); Put waits for one store read when memory first meets an attempt
// (invariant 5), never for a write; Get and GetAttempt may wait for a store read; the destructor
// waits for the writes queued.
#ifndef ABLATE_COORDINATOR_API_LOG_TAILS_H_
#define ABLATE_COORDINATOR_API_LOG_TAILS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <utility>

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
  // Waits until the store has answered every write queued (their WriteDone use this object).
  ~LogTails();
  LogTails(const LogTails&) = delete;
  LogTails& operator=(const LogTails&) = delete;

  // Jobs whose attempt ended with no tail in memory that are remembered (invariant 5): a few
  // megabytes of ids at most.
  static constexpr size_t kMaxUntailedEnds = 65'536;

  // Keeps `tail` as its job's (invariant 1). The caller has checked that its worker holds
  // the attempt. A tail of an attempt that already ended is stored as well (invariants 4, 5):
  // the first tail of an attempt memory knows nothing of costs one store read.
  void Put(const v1::LogTail& tail);
  // Attempt `attempt_id` of `job_id` ended: the tail memory holds of it, if any, is stored,
  // and so is any that arrives later. A store that fails a write logs it; memory still serves
  // the tail until a restart.
  void Ended(const std::string& job_id, uint64_t attempt_id);
  // The job's tail, whose current attempt (Job.current_attempt_id) is `current_attempt_id`:
  // memory's when it is of that attempt, else the newer of memory's and the stored one;
  // attempt_id 0 and no lines when there is neither. The store's error when it cannot be read.
  absl::StatusOr<v1::JobLog> Get(const std::string& job_id, uint64_t current_attempt_id) const;
  // The tail of attempt `attempt_id` of `job_id`, from memory (the newest attempt's) or the
  // store (each ended attempt's, invariant 3); attempt_id 0 and no lines when neither holds it. The
  // store's error when it cannot be read.
  absl::StatusOr<v1::JobLog> GetAttempt(const std::string& job_id, uint64_t attempt_id) const;

 private:
  struct Entry {
    v1::JobLog log;
    size_t bytes = 0;
    std::list<std::string>::iterator age;  // its place in by_age_
    // Whether log's attempt has ended (its tail belongs in the store), a store write of log is
    // queued, and log changed since that write took its copy.
    bool ended = false;
    bool writing = false;
    bool rewrite = false;
  };

  // The tail memory holds of the job; attempt_id 0 and no lines when none.
  v1::JobLog InMemory(const std::string& job_id) const;
  // Whether memory holds a tail of `attempt_id` of `job_id` or of a newer attempt, or Ended saw
  // that attempt or a newer one end with no tail: what memory knows of the attempt's end then
  // needs no word from the store.
  bool Knows(const std::string& job_id, uint64_t attempt_id) const ABSL_LOCKS_EXCLUDED(mu_);
  // Whether the store holds attempt `attempt_id` of `job_id` as ended; false when it does not
  // know the attempt or cannot be read (logged). One store read.
  bool EndedInStore(const std::string& job_id, uint64_t attempt_id) const ABSL_LOCKS_EXCLUDED(mu_);
  // Notes that attempt `attempt_id` of `job_id` ended before memory held a tail of it.
  void RememberUntailedEnd(const std::string& job_id, uint64_t attempt_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether Ended saw attempt `attempt_id` of `job_id` end before any tail of it (forgetting
  // it: the tail now in memory carries the fact).
  bool TakeUntailedEnd(const std::string& job_id, uint64_t attempt_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The copy of `entry`'s tail to write now, or nothing when a write of it is queued already
  // (that write's end then writes the newest, invariant 4).
  std::optional<v1::JobLog> StartWrite(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the write of `log`. Its end writes the job's tail again if it changed meanwhile;
  // for `late`, a tail of an attempt older than memory's (invariant 1) whose place in
  // writes_queued_ the caller took, it only gives that place back.
  void Write(v1::JobLog log, bool late = false) ABSL_LOCKS_EXCLUDED(mu_);
  void WriteDone(const std::string& job_id, uint64_t attempt_id, bool late,
                 const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  Clock& clock_;
  Store* const store_;
  const size_t max_bytes_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> tails_ ABSL_GUARDED_BY(mu_);  // by job id
  std::list<std::string> by_age_ ABSL_GUARDED_BY(mu_);  // job ids, updated longest ago first
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Attempts that ended with no tail of them in memory, by job id (invariant 5), and the same
  // (job id, attempt id) pairs in the order they ended, to forget the oldest first; a pair no
  // longer in the map (its tail arrived, or a newer attempt ended) is skipped then.
  absl::flat_hash_map<std::string, uint64_t> untailed_ends_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<std::string, uint64_t>> untailed_order_ ABSL_GUARDED_BY(mu_);
  int writes_queued_ ABSL_GUARDED_BY(mu_) = 0;  // the destructor waits for 0
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_API_LOG_TAILS_H_
