// The Store on SQLite. Every write goes through one GroupWriter (writer.h): one thread, one
// connection, group commits. A second, query-only connection serves reads beside it, which WAL
// mode allows. A ":memory:" database cannot be shared between connections, so there the reader
// is the writer's connection, taken in turns.
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

#include "absl/functional/function_ref.h"
#include "coordinator/store/sqlite_db.h"
#include "coordinator/store/store.h"
#include "coordinator/store/writer.h"

namespace ablate::coordinator {

class SqliteStore final : public Store {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path, Clock& clock,
                                                           StoreOptions options);
  ~SqliteStore() override;

  using Store::CreateSweep;
  absl::Status CreateSweep(const v1::Sweep& sweep, const std::vector<v1::JobSpec>& jobs,
                           uint32_t max_attempts, absl::FunctionRef<void()> meanwhile) override;
  absl::Status AddJobs(const v1::Sweep& sweep, const std::vector<v1::JobSpec>& jobs,
                       const std::vector<std::string>& dropped, uint32_t max_attempts) override;
  absl::StatusOr<std::vector<std::string>> SweepIdsNamed(const std::string& name) override;
  absl::StatusOr<std::vector<std::string>> JobIdsEndingWith(const std::string& short_id,
                                                            int limit) override;
  absl::StatusOr<v1::Sweep> GetSweep(const std::string& sweep_id) override;
  absl::StatusOr<std::vector<v1::Sweep>> ListSweeps() override;
  absl::StatusOr<std::vector<v1::Job>> ListJobs(const std::string& sweep_id) override;
  absl::StatusOr<std::vector<v1::Job>> ListJobs(const std::string& sweep_id,
                                                const JobQuery& query) override;
  absl::StatusOr<v1::SweepSnapshot> Snapshot(const std::string& sweep_id,
                                             const JobQuery& jobs) override;
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id) override;
  absl::StatusOr<std::vector<v1::Attempt>> ListAttempts(const std::string& job_id) override;
  absl::StatusOr<std::vector<v1::Job>> PendingJobs(int limit) override;

  absl::StatusOr<v1::Attempt> StartAttempt(const std::string& job_id,
                                           const std::string& worker_id) override;
  absl::StatusOr<std::vector<v1::Attempt>> StartAttempts(
      const std::vector<AttemptStart>& starts) override;
  absl::Status SetPendingMessages(const std::vector<std::string>& job_ids,
                                  const std::string& message) override;
  absl::Status SetAttemptMessages(const std::vector<std::pair<std::string, uint64_t>>& attempts,
                                  const std::string& message) override;
  absl::Status MarkRunning(const std::string& job_id, uint64_t attempt_id) override;
  void MarkRunningAsync(const ReportKey& report, std::optional<v1::Provenance> provenance,
                        WriteDone done) override;
  absl::Status AppendMetrics(const std::string& job_id, uint64_t attempt_id,
                             const std::vector<v1::MetricPoint>& points) override;
  void AppendMetricsAsync(const ReportKey& report, v1::MetricBatch batch, WriteDone done) override;
  void AppendMetricsAsync(const ReportKey& report, std::vector<v1::MetricPoint> points,
                          WriteDone done) override;
  absl::Status EndAttempt(const std::string& job_id, uint64_t attempt_id,
                          v1::AttemptState attempt_state, const v1::ExitStatus& exit,
                          v1::JobState job_state, const std::string& message,
                          std::optional<double> final_eval_loss) override;
  void EndAttemptAsync(const ReportKey& report, AttemptEnd end, WriteDone done) override;
  absl::StatusOr<uint64_t> CommittedSequence(uint64_t attempt_id) override;
  absl::StatusOr<std::vector<v1::Job>> CancelJobs(const std::vector<std::string>& job_ids,
                                                  const std::string& message) override;
  absl::StatusOr<RequeueResult> RequeueJobs(const std::string& sweep_id,
                                            const std::vector<std::string>& job_ids,
                                            uint32_t more_attempts) override;

  using Store::ReadMetrics;
  absl::StatusOr<std::vector<v1::MetricSeries>> ReadMetrics(
      const std::string& job_id, const std::vector<std::string>& names, int max_points,
      std::vector<std::string>* logged) override;

  void SaveJobLogAsync(v1::JobLog log, WriteDone done) override;
  absl::StatusOr<v1::JobLog> ReadJobLog(const std::string& job_id, uint64_t attempt_id) override;

  absl::Status UpsertWorker(const v1::WorkerInfo& info, bool connected) override;
  void UpsertWorkerAsync(const v1::WorkerInfo& info, bool connected, WriteDone done) override;
  void TouchWorkerAsync(const std::string& worker_id, WriteDone done) override;
  absl::StatusOr<std::vector<v1::Worker>> ListWorkers() override;

  int64_t Version() override;
  int64_t WaitForChange(int64_t seen, absl::Duration timeout) override;
  StoreStats Stats() override { return writer_.stats(); }

 private:
  using Connection = internal::Connection;
  using Body = internal::GroupWriter::Body;

  SqliteStore(Clock& clock, StoreOptions options, std::unique_ptr<Connection> writer,
              std::unique_ptr<Connection> reader);

  // Runs `body` as one write of a group and waits for its commit, running `meanwhile` on this
  // thread first (GroupWriter::Run).
  absl::Status Write(
      Body body, int64_t rows = 1, absl::FunctionRef<void()> meanwhile = [] {}) {
    return writer_.Run(std::move(body), rows, meanwhile);
  }
  // Runs `body` in one read transaction, so that its queries see one snapshot.
  absl::Status Read(absl::FunctionRef<absl::Status(internal::Db&)> body);

  // The bodies of the report writes, shared by the synchronous and asynchronous methods.
  Body MarkRunningBody(ReportKey report, std::optional<v1::Provenance> provenance);
  Body AppendMetricsBody(ReportKey report, v1::MetricBatch batch);
  Body EndAttemptBody(ReportKey report, AttemptEnd end);
  Body UpsertWorkerBody(const v1::WorkerInfo& info, bool connected);

  int64_t NowMicros() const;

  // Constant after construction.
  Clock& clock_;
  const StoreOptions options_;
  const std::unique_ptr<Connection> writer_connection_;
  const std::unique_ptr<Connection> owned_reader_;  // null for ":memory:"
  Connection* const reader_;                        // owned_reader_, or the writer's

  internal::GroupWriter writer_;  // last: its thread stops first
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_STORE_SQLITE_STORE_H_
