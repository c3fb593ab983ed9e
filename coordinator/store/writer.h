// GroupWriter owns the store's writer thread: it takes writes from a queue in arrival order and
// runs them in groups, one SQLite transaction per group (group commit), then publishes what the
// group changed to the change feed and calls each write's WriteDone.
//
// A group closes when the queue is empty or the next write would take it past max_rows (a
// single larger write, a 100,000-job sweep, is a group of its own). So under load groups grow
// (the writes queued while one group commits form the next), and an idle store commits a lone
// write at once: a write waits for at most the group in progress and its own.
//
// After a group's WriteDone calls, the writer copies the write-ahead log back into the
// database once it holds `checkpoint_pages` (Db::DeferCheckpoints): a write is answered when
// its commit is in the log, and the copy delays the next group, not this one's writers.
//
// Each write is a Body run inside the group's transaction. A Body that refuses (returns
// FailedPrecondition, NotFound, InvalidArgument, AlreadyExists or OutOfRange) must have changed
// nothing (it checks before it writes, or undoes its own writes with a Savepoint), and the
// others of its group commit. Any other error (a full disk, an I/O error) rolls back the whole
// group and every write in it fails with that error.
//
// Thread safety: Submit may be called from any thread. Bodies and WriteDone callbacks run on
// the writer thread; a WriteDone must not wait for another write (Wait would never return).
#ifndef ABLATE_COORDINATOR_STORE_WRITER_H_
#define ABLATE_COORDINATOR_STORE_WRITER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/feed/change_feed.h"
#include "coordinator/store/changes.h"
#include "coordinator/store/sqlite_db.h"
#include "coordinator/store/store.h"

namespace ablate::coordinator::internal {

// A connection and the mutex that serializes its use.
struct Connection {
  absl::Mutex mu;
  std::unique_ptr<Db> db ABSL_PT_GUARDED_BY(mu);
};

class GroupWriter {
 public:
  // One write: statements run in the group's transaction, recording what they changed.
  using Body = std::function<absl::Status(Db& db, Changes& changes)>;

  // `connection` holds the schema's `meta` row and defers its checkpoints to the writer; `feed`
  // may be null. Both, and `clock` (which stamps a group's deferred updates), must outlive the
  // writer. Starts the thread.
  GroupWriter(Connection& connection, ChangeFeed* feed, Clock& clock, int max_rows,
              int checkpoint_pages);
  // Runs what is queued, then joins the thread.
  ~GroupWriter();
  GroupWriter(const GroupWriter&) = delete;
  GroupWriter& operator=(const GroupWriter&) = delete;

  // Reads the version the database's last commit left; call once before the first Submit.
  absl::Status LoadVersion();

  // Queues `body` (weighing `rows` toward the group's bound); `done` is called after its group.
  void Submit(Body body, int64_t rows, WriteDone done);
  // Submits, runs `meanwhile` on the calling thread (work the body may wait for, which must
  // not itself wait for the write), then waits for the outcome. FailedPrecondition when called
  // on the writer thread (from a WriteDone), where waiting would never end.
  absl::Status Run(
      Body body, int64_t rows, absl::FunctionRef<void()> meanwhile = [] {});

  int64_t version() ABSL_LOCKS_EXCLUDED(version_mu_);
  StoreStats stats() ABSL_LOCKS_EXCLUDED(version_mu_);
  // Blocks until version() > `seen` or `timeout` passes; returns the version.
  int64_t WaitForChange(int64_t seen, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(version_mu_);

 private:
  struct Write {
    Body body;
    int64_t rows = 0;
    WriteDone done;
  };

  void Loop();
  // Runs one group in one transaction, publishes it to the feed, calls each WriteDone, then
  // checkpoints when the log has grown to checkpoint_pages_.
  void RunGroup(std::vector<Write>& group);

  // Constant after construction.
  Connection& connection_;
  ChangeFeed* const feed_;
  Clock& clock_;
  const int64_t max_rows_;
  const int checkpoint_pages_;

  internal::ReportCache cache_;  // used by the writer thread only

  absl::Mutex queue_mu_;
  std::deque<Write> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;

  absl::Mutex version_mu_;
  int64_t version_ ABSL_GUARDED_BY(version_mu_) = 0;
  StoreStats stats_ ABSL_GUARDED_BY(version_mu_);

  std::thread thread_;  // last: starts once everything above is built
};

// SAVEPOINT on construction, released by Release(); rolled back to (undoing what ran since)
// when destroyed unreleased. For a write that may refuse after it has started writing.
class Savepoint {
 public:
  static absl::StatusOr<Savepoint> Begin(Db& db);
  ~Savepoint();
  Savepoint(Savepoint&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  Savepoint& operator=(Savepoint&&) = delete;

  absl::Status Release();

 private:
  explicit Savepoint(Db* db) : db_(db) {}
  Db* db_;
};

}  // namespace ablate::coordinator::internal

#endif  // ABLATE_COORDINATOR_STORE_WRITER_H_
