#include "coordinator/service/worker_service.h"

#include <memory>
#include <optional>
#include <vector>

#include "common/log.h"
#include "coordinator/scheduler/attempt_policy.h"
#include "coordinator/service/grpc_status.h"

namespace ablate::coordinator {
namespace {

// How often a worker should say it is alive; the lease itself runs on stream disconnects.
constexpr uint32_t kHeartbeatIntervalMs = 5000;

// None of these failures ends the stream: a refused report concerns one attempt, not the
// worker.
void LogRefused(const absl::Status& status, const char* report, const std::string& job_id,
                uint64_t attempt_id) {
  if (status.ok()) return;
  if (status.code() == absl::StatusCode::kFailedPrecondition ||
      status.code() == absl::StatusCode::kNotFound) {
    ABLATE_LOG(WARNING) << "stale report dropped report=" << report << " job_id=" << job_id
                        << " attempt_id=" << attempt_id << " error=\"" << status.message() << "\"";
  } else {
    ABLATE_LOG(ERROR) << "report not stored report=" << report << " job_id=" << job_id
                      << " attempt_id=" << attempt_id << " error=\"" << status.message() << "\"";
  }
}

}  // namespace

WorkerServiceImpl::WorkerServiceImpl(Store& store, Scheduler& scheduler, Telemetry& telemetry)
    : store_(store), scheduler_(scheduler), telemetry_(telemetry) {}

void WorkerServiceImpl::Shutdown() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (WorkerSession* session : sessions_) session->Cancel();
}

grpc::Status WorkerServiceImpl::Connect(grpc::ServerContext* context,
                                        WorkerSession::Stream* stream) {
  telemetry_.CountRpc("Connect");
  v1::WorkerMessage first;
  if (!stream->Read(&first)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "stream ended before hello");
  }
  if (!first.has_hello()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the first message on a Connect stream must be hello");
  }
  const v1::WorkerInfo& hello = first.hello();
  if (hello.worker_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello.worker_id is required");
  }

  auto session = std::make_shared<WorkerSession>(hello.worker_id(), *context, *stream);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator is stopping");
    sessions_.insert(session.get());
  }
  // The welcome goes out before the scheduler knows the session, so it is always first.
  v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_coordinator_version(ABLATE_VERSION);
  welcome.mutable_welcome()->set_heartbeat_interval_ms(kHeartbeatIntervalMs);
  grpc::Status result = grpc::Status::OK;
  if (!session->Send(welcome)) {
    result = grpc::Status(grpc::StatusCode::CANCELLED, "stream ended before welcome");
  } else if (absl::Status added = scheduler_.AddWorker(hello, session); !added.ok()) {
    result = ToGrpcStatus(added);
  } else {
    FinishedEvents finished;
    v1::WorkerMessage message;
    while (stream->Read(&message)) {
      switch (message.msg_case()) {
        case v1::WorkerMessage::kJobEvent:
          HandleJobEvent(message.job_event(), finished);
          break;
        case v1::WorkerMessage::kAttemptEnded:
          HandleAttemptEnded(hello.worker_id(), message.attempt_ended(), finished);
          break;
        case v1::WorkerMessage::kDrain:
          scheduler_.DrainWorker(hello.worker_id(), session.get(), message.drain().reason());
          break;
        case v1::WorkerMessage::kHello:
          ABLATE_LOG(WARNING) << "repeated hello ignored worker_id=" << hello.worker_id();
          break;
        case v1::WorkerMessage::kHeartbeat:
        case v1::WorkerMessage::MSG_NOT_SET:
          break;
      }
    }
    scheduler_.RemoveWorker(hello.worker_id(), session.get());
    if (context->IsCancelled()) result = grpc::Status::CANCELLED;
  }
  session->Close();
  absl::MutexLock lock(&mu_);
  sessions_.erase(session.get());
  return result;
}

void WorkerServiceImpl::HandleJobEvent(const v1::JobEvent& event, FinishedEvents& finished) {
  const std::string& job_id = event.job_id();
  const uint64_t attempt_id = event.attempt_id();
  const v1::TrainerEvent& trainer = event.event();
  switch (trainer.event_case()) {
    case v1::TrainerEvent::kStarted:
      LogRefused(store_.MarkRunning(job_id, attempt_id), "started", job_id, attempt_id);
      ABLATE_LOG(INFO) << "trainer started job_id=" << job_id << " attempt_id=" << attempt_id
                       << " device=" << trainer.started().device()
                       << " resumed_from_step=" << trainer.started().resumed_from_step();
      break;
    case v1::TrainerEvent::kMetrics: {
      std::vector<v1::MetricPoint> points(trainer.metrics().points().begin(),
                                          trainer.metrics().points().end());
      absl::Status stored = store_.AppendMetrics(job_id, attempt_id, points);
      if (stored.ok()) telemetry_.CountMetricPoints(static_cast<int64_t>(points.size()));
      LogRefused(stored, "metrics", job_id, attempt_id);
      break;
    }
    case v1::TrainerEvent::kCheckpoint:
      ABLATE_LOG(INFO) << "checkpoint saved job_id=" << job_id << " attempt_id=" << attempt_id
                       << " step=" << trainer.checkpoint().step()
                       << " path=" << trainer.checkpoint().path();
      break;
    case v1::TrainerEvent::kLog:
      ABLATE_LOG(INFO) << "trainer log job_id=" << job_id << " attempt_id=" << attempt_id
                       << " level=" << trainer.log().level() << " text=\"" << trainer.log().text()
                       << "\"";
      break;
    case v1::TrainerEvent::kFinished:
      finished[attempt_id] = trainer.finished();
      break;
    case v1::TrainerEvent::EVENT_NOT_SET:
      break;
  }
}

void WorkerServiceImpl::HandleAttemptEnded(const std::string& worker_id,
                                           const v1::AttemptEnded& ended,
                                           FinishedEvents& finished) {
  const std::string& job_id = ended.job_id();
  const uint64_t attempt_id = ended.attempt_id();
  std::optional<v1::TrainerFinished> trainer;
  if (auto it = finished.find(attempt_id); it != finished.end()) {
    trainer = it->second;
    finished.erase(it);
  }

  absl::StatusOr<v1::Job> job = store_.GetJob(job_id);
  if (!job.ok()) {
    LogRefused(job.status(), "attempt_ended", job_id, attempt_id);
  } else if (job->current_attempt_id() != attempt_id) {
    LogRefused(absl::FailedPreconditionError("not the job's current attempt"), "attempt_ended",
               job_id, attempt_id);
  } else {
    std::string trainer_error = trainer && !trainer->ok() ? trainer->error() : "";
    AttemptOutcome outcome = OutcomeOfReport(*job, ended, trainer_error);
    std::optional<double> final_eval_loss;
    if (ended.succeeded() && trainer && trainer->ok()) {
      final_eval_loss = trainer->final_eval_loss();
    }
    absl::Status status = store_.EndAttempt(job_id, attempt_id, outcome.attempt_state, ended.exit(),
                                            outcome.job_state, outcome.message, final_eval_loss);
    LogRefused(status, "attempt_ended", job_id, attempt_id);
    if (status.ok()) {
      ABLATE_LOG(INFO) << "attempt ended job_id=" << job_id << " attempt_id=" << attempt_id
                       << " job_state=" << v1::JobState_Name(outcome.job_state) << " message=\""
                       << outcome.message << "\"";
    }
  }
  // The trainer is gone whatever the store made of the report: its slots are free.
  scheduler_.AttemptEnded(worker_id, attempt_id);
}

}  // namespace ablate::coordinator
