// The Store on SQLite. One writer connection, guarded by its own mutex, runs every change as
// one IMMEDIATE transaction; a second, query-only connection serves reads beside it, which
// WAL mode allows. A ":memory:" database cannot be shared between connections, so there the
// reader is the writer.
//
// The file runs with journal_mode=WAL, synchronous=NORMAL (a commit survives a crash of the
// process; a power cut may lose the last commits, never corrupt the file), foreign_keys=ON and
// a busy timeout, for the rare moment another process holds the file.
#ifndef ABLATE_COORDINATOR_STORE_SQLITE_STORE_H_
#define ABLATE_COORDINATOR_STORE_SQLITE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store/sqlite_db.h"
#include "coordinator/store/store.h"

namespace ablate::coordinator {

class SqliteStore final : public Store {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path, Clock& clock);

  absl::Status CreateSweep(const v1::Sweep& sweep, const std::vector<v1::JobSpec>& jobs,
                           uint32_t max_attempts) override;
  absl::StatusOr<v1::Sweep> GetSweep(const std::string& sweep_id) override;
  absl::StatusOr<std::vector<v1::Sweep>> ListSweeps() override;
  absl::StatusOr<std::vector<v1::Job>> ListJobs(const std::string& sweep_id) override;
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) override;
  absl::StatusOr<std::vector<v1::Attempt>> ListAttempts(const std::string& job_id) override;
  absl::StatusOr<std::vector<v1::Job>> PendingJobs(int limit) override;

  absl::StatusOr<v1::Attempt> StartAttempt(const std::string& job_id,
                                           const std::string& worker_id) override;
  absl::StatusOr<std::vector<v1::Attempt>> StartAttempts(
      const std::vector<AttemptStart>& starts) override;
  absl::Status SetPendingMessages(const std::vector<std::string>& job_ids,
                                  const std::string& message) override;
  absl::Status MarkRunning(const std::string& job_id, uint64_t attempt_id) override;
  absl::Status AppendMetrics(const std::string& job_id, uint64_t attempt_id,
                             const std::vector<v1::MetricPoint>& points) override;
  absl::Status EndAttempt(const std::string& job_id, uint64_t attempt_id,
                          v1::AttemptState attempt_state, const v1::ExitStatus& exit,
                          v1::JobState job_state, const std::string& message,
                          std::optional<double> final_eval_loss) override;
  absl::StatusOr<std::vector<v1::Job>> CancelJobs(const std::vector<std::string>& job_ids,
                                                  const std::string& message) override;

  absl::StatusOr<std::vector<v1::MetricSeries>> ReadMetrics(const std::string& job_id,
                                                            const std::vector<std::string>& names,
                                                            int max_points) override;

  absl::Status UpsertWorker(const v1::WorkerInfo& info, bool connected) override;
  absl::StatusOr<std::vector<v1::Worker>> ListWorkers() override;

  int64_t Version() override;
  int64_t WaitForChange(int64_t seen, absl::Duration timeout) override;

 private:
  // One connection and the mutex that serializes its use.
  struct Connection {
    absl::Mutex mu;
    std::unique_ptr<internal::Db> db ABSL_PT_GUARDED_BY(mu);
  };

  SqliteStore(Clock& clock, std::unique_ptr<Connection> writer, std::unique_ptr<Connection> reader);

  // Runs `body` in one write transaction; commits and bumps the version when it succeeds,
  // rolls back when it fails.
  absl::Status Write(absl::FunctionRef<absl::Status(internal::Db&)> body);
  // Runs `body` in one read transaction, so that its queries see one snapshot.
  absl::Status Read(absl::FunctionRef<absl::Status(internal::Db&)> body);

  int64_t NowMicros() const;

  // Constant after construction.
  Clock& clock_;
  const std::unique_ptr<Connection> writer_;
  const std::unique_ptr<Connection> owned_reader_;  // null for ":memory:"
  Connection* const reader_;                        // owned_reader_, or writer_ for ":memory:"

  absl::Mutex version_mu_;
  int64_t version_ ABSL_GUARDED_BY(version_mu_) = 0;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_STORE_SQLITE_STORE_H_
