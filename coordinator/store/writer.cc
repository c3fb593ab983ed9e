#include "coordinator/store/writer.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/log.h"

namespace ablate::coordinator::internal {
namespace {

// Refusals a Body returns having changed nothing; anything else fails its whole group.
bool IsRefusal(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
      return true;
    default:
      return false;
  }
}

absl::Status BumpVersion(Db& db, int64_t version) {
  absl::StatusOr<Statement> update = db.Prepare("UPDATE meta SET version = ?1 WHERE id = 0");
  if (!update.ok()) return update.status();
  return update->Bind(1, version).Run();
}

}  // namespace

GroupWriter::GroupWriter(Connection& connection, ChangeFeed* feed, Clock& clock, int max_rows,
                         int checkpoint_pages)
    : connection_(connection),
      feed_(feed),
      clock_(clock),
      max_rows_(max_rows),
      checkpoint_pages_(checkpoint_pages),
      thread_([this] { Loop(); }) {}

GroupWriter::~GroupWriter() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  thread_.join();
}

absl::Status GroupWriter::LoadVersion() {
  absl::MutexLock lock(&connection_.mu);
  absl::StatusOr<Statement> query =
      connection_.db->Prepare("SELECT version FROM meta WHERE id = 0");
  if (!query.ok()) return query.status();
  absl::StatusOr<bool> row = query->Step();
  if (!row.ok()) return row.status();
  const int64_t version = *row ? query->Int(0) : 0;
  {
    absl::MutexLock version_lock(&version_mu_);
    version_ = version;
  }
  if (feed_ != nullptr) feed_->StartAt(version);
  return absl::OkStatus();
}

void GroupWriter::Submit(Body body, int64_t rows, WriteDone done) {
  absl::MutexLock lock(&queue_mu_);
  queue_.push_back(Write{std::move(body), rows, std::move(done)});
}

absl::Status GroupWriter::Run(Body body, int64_t rows, absl::FunctionRef<void()> meanwhile) {
  if (std::this_thread::get_id() == thread_.get_id()) {
    return absl::FailedPreconditionError(
        "a synchronous store write from the store's writer thread (a WriteDone) would wait "
        "for itself; use the *Async method");
  }
  absl::Notification done;
  absl::Status outcome;
  Submit(std::move(body), rows, [&](absl::Status status) {
    outcome = std::move(status);
    done.Notify();
  });
  meanwhile();
  done.WaitForNotification();
  return outcome;
}

int64_t GroupWriter::version() {
  absl::MutexLock lock(&version_mu_);
  return version_;
}

StoreStats GroupWriter::stats() {
  absl::MutexLock lock(&version_mu_);
  return stats_;
}

int64_t GroupWriter::WaitForChange(int64_t seen, absl::Duration timeout) {
  absl::MutexLock lock(&version_mu_);
  auto changed = [this, seen]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(version_mu_) { return version_ > seen; };
  version_mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
  return version_;
}

void GroupWriter::Loop() {
  std::vector<Write> group;
  for (;;) {
    {
      absl::MutexLock lock(&queue_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
        return !queue_.empty() || stopping_;
      };
      queue_mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and everything queued has run
      int64_t rows = 0;
      while (!queue_.empty() && (group.empty() || rows + queue_.front().rows <= max_rows_)) {
        rows += queue_.front().rows;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunGroup(group);
    group.clear();
  }
}

void GroupWriter::RunGroup(std::vector<Write>& group) {
  std::vector<absl::Status> outcomes(group.size());
  absl::Status failed;  // what failed the whole group, if anything
  std::optional<Commit> commit;
  int64_t version = 0;
  {
    absl::MutexLock lock(&connection_.mu);
    Db& db = *connection_.db;
    absl::StatusOr<Transaction> transaction = Transaction::Begin(db, /*write=*/true);
    if (!transaction.ok()) failed = transaction.status();
    Changes changes(feed_, cache_);
    bool changed = false;
    for (size_t i = 0; failed.ok() && i < group.size(); ++i) {
      outcomes[i] = group[i].body(db, changes);
      if (outcomes[i].ok()) {
        changed = true;
      } else if (!IsRefusal(outcomes[i])) {
        failed = outcomes[i];
      }
    }
    {
      absl::MutexLock version_lock(&version_mu_);
      version = version_ + 1;
    }
    if (failed.ok() && changed) failed = changes.Flush(db, absl::ToUnixMicros(clock_.Now()));
    if (failed.ok() && changed) failed = BumpVersion(db, version);
    if (failed.ok() && changed && feed_ != nullptr) {
      absl::StatusOr<Commit> built = changes.BuildCommit(db, version);
      if (built.ok()) {
        commit = *std::move(built);
      } else {
        failed = built.status();
      }
    }
    if (failed.ok()) failed = transaction->Commit();  // rolls back on destruction otherwise
    if (!failed.ok()) {
      ABLATE_LOG(ERROR) << "store group failed writes=" << group.size() << " error=\""
                        << failed.message() << "\"";
      for (absl::Status& outcome : outcomes) {
        if (outcome.ok()) outcome = failed;
      }
      commit.reset();
      cache_.Clear();
    } else {
      absl::MutexLock version_lock(&version_mu_);
      if (changed) version_ = version;
      ++stats_.groups;
      stats_.writes += static_cast<int64_t>(group.size());
      for (const Write& write : group) stats_.rows += write.rows;
    }
  }
  if (commit.has_value()) feed_->Publish(*std::move(commit));
  for (size_t i = 0; i < group.size(); ++i) {
    if (group[i].done) group[i].done(std::move(outcomes[i]));
  }
  // Only now, the group answered, is the log copied back: the copy of a 100,000-job sweep's
  // 54 MB of log took a quarter of its store time, and delays the next group instead.
  absl::MutexLock lock(&connection_.mu);
  if (connection_.db->wal_pages() < checkpoint_pages_) return;
  if (absl::Status checkpoint = connection_.db->Checkpoint(); !checkpoint.ok()) {
    ABLATE_LOG(WARNING) << "store checkpoint failed error=\"" << checkpoint.message() << "\"";
    return;
  }
  absl::MutexLock version_lock(&version_mu_);
  ++stats_.checkpoints;
}

// --- Savepoint --------------------------------------------------------------------------------

absl::StatusOr<Savepoint> Savepoint::Begin(Db& db) {
  if (absl::Status begin = db.Exec("SAVEPOINT write"); !begin.ok()) return begin;
  return Savepoint(&db);
}

Savepoint::~Savepoint() {
  if (db_ != nullptr) db_->Exec("ROLLBACK TO write; RELEASE write").IgnoreError();
}

absl::Status Savepoint::Release() {
  absl::Status status = db_->Exec("RELEASE write");
  if (status.ok()) db_ = nullptr;
  return status;
}

}  // namespace ablate::coordinator::internal
