#include "coordinator/service/worker_manager.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "coordinator/scheduler/attempt_policy.h"
#include "coordinator/service/grpc_status.h"

namespace ablate::coordinator {
namespace {

bool IsStale(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition ||
         status.code() == absl::StatusCode::kNotFound;
}

// None of these failures ends the stream: a refused report concerns one attempt, not the
// worker.
void LogRefused(const absl::Status& status, const char* report, const std::string& job_id,
                uint64_t attempt_id) {
  if (status.ok()) return;
  if (IsStale(status)) {
    // Expected, not a fault: the last reports of an attempt that was cancelled, lost or
    // superseded while its worker still spoke.
    ABLATE_LOG(INFO) << "stale report dropped report=" << report << " job_id=" << job_id
                     << " attempt_id=" << attempt_id << " error=\"" << status.message() << "\"";
  } else {
    ABLATE_LOG(ERROR) << "report not stored report=" << report << " job_id=" << job_id
                      << " attempt_id=" << attempt_id << " error=\"" << status.message() << "\"";
  }
}

// Attempts whose holder is remembered; past it the memory starts over (lost attempts are never
// reported ended, so entries would otherwise pile up).
constexpr size_t kMaxHolders = 100'000;

}  // namespace

WorkerManager::WorkerManager(Store& store, Scheduler& scheduler, Telemetry& telemetry,
                             uint32_t heartbeat_interval_ms, LogTails* log_tails)
    : store_(store),
      scheduler_(scheduler),
      telemetry_(telemetry),
      heartbeat_interval_ms_(heartbeat_interval_ms),
      log_tails_(log_tails),
      thread_(&WorkerManager::Run, this) {}

WorkerManager::~WorkerManager() { Stop(); }

void WorkerManager::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void WorkerManager::Post(std::function<void()> work) {
  absl::MutexLock lock(&mu_);
  if (exited_) return;
  work_.push_back(std::move(work));
}

void WorkerManager::Run() {
  while (true) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !work_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (work_.empty()) {  // stopping, and everything queued ran
        exited_ = true;
        return;
      }
      work = std::move(work_.front());
      work_.pop_front();
    }
    work();
  }
}

void WorkerManager::OnHello(std::shared_ptr<WorkerStream> stream, v1::WorkerInfo hello) {
  Post([this, stream = std::move(stream), hello = std::move(hello)] { Hello(stream, hello); });
}

void WorkerManager::OnMessage(std::shared_ptr<WorkerStream> stream, v1::WorkerMessage message) {
  Post([this, stream = std::move(stream), message = std::move(message)]() mutable {
    Handle(stream, message);
  });
}

void WorkerManager::OnEnded(std::shared_ptr<WorkerStream> stream) {
  Post([this, stream = std::move(stream)] {
    const std::string worker_id = stream->worker_id();
    auto it = connected_.find(worker_id);
    if (it != connected_.end() && it->second == stream.get()) connected_.erase(it);
    scheduler_.RemoveWorker(worker_id, stream.get());
  });
}

void WorkerManager::Hello(const std::shared_ptr<WorkerStream>& stream,
                          const v1::WorkerInfo& hello) {
  telemetry_.CountRpc("Connect");
  if (auto it = connected_.find(hello.worker_id()); it != connected_.end()) {
    ABLATE_LOG(WARNING) << "second stream refused worker_id=" << hello.worker_id();
    stream->Finish(grpc::Status(
        grpc::StatusCode::ALREADY_EXISTS,
        absl::StrCat("worker '", hello.worker_id(),
                     "' is connected on another stream; a new stream for it is accepted once "
                     "that one ends")));
    return;
  }
  connected_[hello.worker_id()] = stream.get();
  // The welcome is queued before the scheduler knows the stream, so it is always first. It
  // says what is committed of each attempt the worker still holds, so the worker resends only
  // the rest.
  v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_coordinator_version(ABLATE_VERSION);
  const int64_t lease_ms = absl::ToInt64Milliseconds(scheduler_.lease_timeout());
  welcome.mutable_welcome()->set_lease_timeout_ms(static_cast<uint32_t>(
      std::clamp<int64_t>(lease_ms, 1, std::numeric_limits<uint32_t>::max())));
  // At least six heartbeats a lease, however short it is, so that a few lost ones never cost
  // it (nor make the worker stop its trainers: worker/lease.h).
  welcome.mutable_welcome()->set_heartbeat_interval_ms(static_cast<uint32_t>(
      std::max<int64_t>(1, std::min<int64_t>(lease_ms / 6, heartbeat_interval_ms_))));
  for (const v1::RunningAttempt& running : hello.running()) {
    absl::StatusOr<uint64_t> committed = store_.CommittedSequence(running.attempt_id());
    if (!committed.ok() || *committed == 0) continue;
    v1::Ack* ack = welcome.mutable_welcome()->add_acks();
    ack->set_job_id(running.job_id());
    ack->set_attempt_id(running.attempt_id());
    ack->set_sequence(*committed);
  }
  stream->Send(welcome);
  if (absl::Status added = scheduler_.AddWorker(hello, stream); !added.ok()) {
    ABLATE_LOG(ERROR) << "worker not recorded worker_id=" << hello.worker_id() << " error=\""
                      << added.message() << "\"";
    stream->Finish(ToGrpcStatus(added));
  }
}

void WorkerManager::Handle(const std::shared_ptr<WorkerStream>& stream,
                           v1::WorkerMessage& message) {
  switch (message.msg_case()) {
    case v1::WorkerMessage::kJobEvent:
      HandleJobEvent(stream, *message.mutable_job_event());
      return;  // the report's WriteDone calls Processed()
    case v1::WorkerMessage::kAttemptEnded:
      HandleAttemptEnded(stream, message.attempt_ended());
      return;  // likewise
    case v1::WorkerMessage::kDrain:
      scheduler_.DrainWorker(stream->worker_id(), stream.get(), message.drain().reason());
      break;
    case v1::WorkerMessage::kLogTail: {
      const v1::LogTail& tail = message.log_tail();
      if (log_tails_ != nullptr &&
          MayReport(*stream, tail.job_id(), tail.attempt_id(), "log_tail")) {
        log_tails_->Put(tail);
      }
      break;
    }
    case v1::WorkerMessage::kHeartbeat:
      telemetry_.SetWorkerEvents(stream->worker_id(), message.heartbeat());
      store_.TouchWorkerAsync(stream->worker_id(), [](const absl::Status&) {});
      break;
    case v1::WorkerMessage::kHello:
      ABLATE_LOG(WARNING) << "repeated hello ignored worker_id=" << stream->worker_id();
      break;
    case v1::WorkerMessage::MSG_NOT_SET:
      break;
  }
  stream->Processed();
}

WriteDone WorkerManager::Acknowledge(std::shared_ptr<WorkerStream> stream, ReportKey report,
                                     const char* kind, std::function<void(bool)> then) {
  return [stream = std::move(stream), report = std::move(report), kind,
          then = std::move(then)](const absl::Status& status) {
    LogRefused(status, kind, report.job_id, report.attempt_id);
    // A report refused as stale would be refused again: the worker may forget it too. One the
    // store failed to write is not acked, so the worker resends it after it reconnects.
    if (report.sequence != 0 && (status.ok() || IsStale(status))) {
      v1::CoordinatorMessage message;
      v1::Ack* ack = message.mutable_ack();
      ack->set_job_id(report.job_id);
      ack->set_attempt_id(report.attempt_id);
      ack->set_sequence(report.sequence);
      stream->Send(message);
    }
    if (then) then(status.ok());
    stream->Processed();
  };
}

bool WorkerManager::MayReport(const WorkerStream& stream, const std::string& job_id,
                              uint64_t attempt_id, const char* kind) {
  // Attempts assigned on this very stream need no lookup; others (held across a reconnect)
  // are looked up once.
  if (stream.WasAssigned(attempt_id, job_id)) return true;
  auto it = holders_.find(attempt_id);
  if (it == holders_.end()) {
    absl::StatusOr<v1::Job> job = store_.GetJob(job_id);
    if (!job.ok() || job->current_attempt_id() != attempt_id) return true;
    if (holders_.size() >= kMaxHolders) holders_.clear();
    it = holders_.emplace(attempt_id, Holder{job_id, job->worker_id()}).first;
  }
  const std::string worker_id = stream.worker_id();
  if (it->second.job_id == job_id && it->second.worker_id == worker_id) return true;
  ABLATE_LOG(WARNING) << "report refused, the attempt is another worker's report=" << kind
                      << " job_id=" << job_id << " attempt_id=" << attempt_id
                      << " worker_id=" << worker_id;
  return false;
}

void WorkerManager::HandleJobEvent(const std::shared_ptr<WorkerStream>& stream,
                                   v1::JobEvent& event) {
  ReportKey report{event.job_id(), event.attempt_id(), event.sequence()};
  if (!MayReport(*stream, report.job_id, report.attempt_id, "job_event")) {
    stream->Processed();
    return;
  }
  const v1::TrainerEvent& trainer = event.event();
  switch (trainer.event_case()) {
    case v1::TrainerEvent::kStarted: {
      ABLATE_LOG(INFO) << "trainer started job_id=" << report.job_id
                       << " attempt_id=" << report.attempt_id
                       << " device=" << trainer.started().device()
                       << " resumed_from_step=" << trainer.started().resumed_from_step();
      std::optional<v1::Provenance> provenance;
      if (trainer.started().has_provenance()) provenance = trainer.started().provenance();
      store_.MarkRunningAsync(report, std::move(provenance),
                              Acknowledge(stream, report, "started", nullptr));
      NoteStartBehindCheckpoint(report, stream->worker_id(), trainer.started().resumed_from_step());
      // A worker that backs off from failed starts takes work again once a trainer started.
      scheduler_.AttemptStarted(stream->worker_id(), report.attempt_id);
      return;
    }
    case v1::TrainerEvent::kMetrics: {
      const int64_t count = trainer.metrics().points_size();
      // Moved, not copied: a worker's report holds thousands of points (a copy of each, and
      // the frees of both copies, were most of this thread's time).
      store_.AppendMetricsAsync(report, std::move(*event.mutable_event()->mutable_metrics()),
                                Acknowledge(stream, report, "metrics", [this, count](bool ok) {
                                  if (ok) telemetry_.CountMetricPoints(count);
                                }));
      return;
    }
    case v1::TrainerEvent::kCheckpoint:
      if (checkpoints_.size() >= kMaxHolders) checkpoints_.clear();
      if (trainer.checkpoint().step() > checkpoints_[report.job_id].step) {
        checkpoints_[report.job_id] = {trainer.checkpoint().step(), report.attempt_id,
                                       stream->worker_id()};
      }
      ABLATE_LOG(INFO) << "checkpoint saved job_id=" << report.job_id
                       << " attempt_id=" << report.attempt_id
                       << " step=" << trainer.checkpoint().step()
                       << " path=" << trainer.checkpoint().path();
      break;
    case v1::TrainerEvent::kLog:
      ABLATE_LOG(INFO) << "trainer log job_id=" << report.job_id
                       << " attempt_id=" << report.attempt_id << " level=" << trainer.log().level()
                       << " text=\"" << trainer.log().text() << "\"";
      break;
    case v1::TrainerEvent::kFinished:
      finished_[report.attempt_id] = trainer.finished();
      break;
    case v1::TrainerEvent::kProgress:  // workers keep these to themselves
    case v1::TrainerEvent::EVENT_NOT_SET:
      break;
  }
  // Nothing is stored of it. It is not acked on its own, since an ack covers every earlier
  // report and those may still wait for their commit; the next stored report's ack covers it.
  stream->Processed();
}

void WorkerManager::NoteStartBehindCheckpoint(const ReportKey& report, const std::string& worker_id,
                                              int64_t resumed_from_step) {
  const auto it = checkpoints_.find(report.job_id);
  if (it == checkpoints_.end() || it->second.attempt_id == report.attempt_id ||
      resumed_from_step >= it->second.step) {
    return;
  }
  const Checkpointed& saved = it->second;
  std::string message =
      absl::StrCat("started from step ", resumed_from_step, ", though attempt ", saved.attempt_id,
                   " on worker ", saved.worker_id, " saved a checkpoint at step ", saved.step);
  if (saved.worker_id != worker_id) {
    absl::StrAppend(&message, ": worker ", worker_id,
                    " does not see that checkpoint_dir (a relative checkpoint_root is taken from "
                    "each worker's own folder; give one on storage every worker mounts)");
  }
  ABLATE_LOG(WARNING) << "attempt started behind a checkpoint job_id=" << report.job_id
                      << " attempt_id=" << report.attempt_id << " worker_id=" << worker_id
                      << " resumed_from_step=" << resumed_from_step
                      << " checkpoint_step=" << saved.step << " saved_by=" << saved.worker_id;
  if (absl::Status s = store_.SetAttemptMessages({{report.job_id, report.attempt_id}}, message);
      !s.ok()) {
    ABLATE_LOG(ERROR) << "message not stored job_id=" << report.job_id << " error=\"" << s.message()
                      << "\"";
  }
}

void WorkerManager::HandleAttemptEnded(const std::shared_ptr<WorkerStream>& stream,
                                       const v1::AttemptEnded& ended) {
  ReportKey report{ended.job_id(), ended.attempt_id(), ended.sequence()};
  if (!MayReport(*stream, report.job_id, report.attempt_id, "attempt_ended")) {
    stream->Processed();
    return;
  }
  holders_.erase(report.attempt_id);
  stream->ForgetAssignment(report.attempt_id);
  // Its last lines came before this report (the worker sends them first). Stored whatever the
  // store makes of the end: an attempt cancelled, or lost, before its worker reported it ended
  // there too.
  if (log_tails_ != nullptr) log_tails_->Ended(report.job_id, report.attempt_id);
  const std::string worker_id = stream->worker_id();
  // The trainer's last word travels in AttemptEnded; a finished event relayed earlier (by a
  // worker that does not fill it in) stands in for it.
  std::optional<v1::TrainerFinished> trainer;
  if (ended.has_finished()) trainer = ended.finished();
  if (auto it = finished_.find(report.attempt_id); it != finished_.end()) {
    if (!trainer) trainer = it->second;
    finished_.erase(it);
  }

  AttemptEnd end;
  end.exit = ended.exit();
  // start_failed says it too, from a worker older than never_started.
  end.never_started = ended.never_started() || ended.start_failed();
  v1::JobState job_state = v1::JOB_STATE_UNSPECIFIED;  // what the job becomes when stored
  std::string message;
  absl::StatusOr<v1::Job> job = store_.GetJob(report.job_id);
  if (!job.ok() && !absl::IsNotFound(job.status())) {
    // Unreadable now: not acked, so the worker sends it again after it reconnects.
    LogRefused(job.status(), "attempt_ended", report.job_id, report.attempt_id);
    stream->Processed();
    return;
  }
  if (job.ok() && job->current_attempt_id() == report.attempt_id) {
    std::string trainer_error = trainer && !trainer->ok() ? trainer->error() : "";
    AttemptOutcome outcome = OutcomeOfReport(*job, ended, trainer_error);
    end.attempt_state = outcome.attempt_state;
    end.job_state = job_state = outcome.job_state;
    end.message = message = outcome.message;
    end.uncounted = outcome.uncounted;
    if (ended.succeeded() && trainer && trainer->ok()) {
      end.final_eval_loss = trainer->final_eval_loss();
    }
  } else {
    // Not the job's current attempt (or no such job): the store refuses it whatever it says,
    // or answers a resend of an end it committed. It still goes through the store, so that its
    // ack follows the attempt's earlier reports.
    end.attempt_state = v1::ATTEMPT_STATE_LOST;
    end.job_state = v1::JOB_STATE_PENDING;
  }
  const v1::AttemptState attempt_state = end.attempt_state;
  // The worker's fault, whatever the store makes of the report: the scheduler backs off from it.
  // Its reason opens with "not started: ", which the backoff says in its own words.
  std::optional<std::string> start_failure;
  if (ended.start_failed()) {
    start_failure = std::string(absl::StripPrefix(ended.exit().reason(), "not started: "));
  }
  store_.EndAttemptAsync(
      report, std::move(end),
      Acknowledge(
          stream, report, "attempt_ended",
          [this, worker_id, report, job_state, attempt_state, message, start_failure](bool ok) {
            if (ok && job_state != v1::JOB_STATE_UNSPECIFIED) {
              telemetry_.CountAttemptEnded(attempt_state);
              ABLATE_LOG(INFO) << "attempt ended job_id=" << report.job_id
                               << " attempt_id=" << report.attempt_id
                               << " job_state=" << v1::JobState_Name(job_state) << " message=\""
                               << message << "\"";
            }
            // The trainer is gone whatever the store made of the report: its slots
            // are free. This runs on the store's writer thread, which the scheduler
            // may be waiting for, so the scheduler is told from the manager's.
            v1::JobState now = ok ? job_state : v1::JOB_STATE_UNSPECIFIED;
            Post([this, worker_id, attempt_id = report.attempt_id, now, start_failure] {
              scheduler_.AttemptEnded(worker_id, attempt_id, now, start_failure);
            });
          }));
}

}  // namespace ablate::coordinator
