#include "coordinator/service/worker_manager.h"

#include <optional>
#include <utility>
#include <vector>

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
    ABLATE_LOG(WARNING) << "stale report dropped report=" << report << " job_id=" << job_id
                        << " attempt_id=" << attempt_id << " error=\"" << status.message() << "\"";
  } else {
    ABLATE_LOG(ERROR) << "report not stored report=" << report << " job_id=" << job_id
                      << " attempt_id=" << attempt_id << " error=\"" << status.message() << "\"";
  }
}

}  // namespace

WorkerManager::WorkerManager(Store& store, Scheduler& scheduler, Telemetry& telemetry,
                             uint32_t heartbeat_interval_ms)
    : store_(store),
      scheduler_(scheduler),
      telemetry_(telemetry),
      heartbeat_interval_ms_(heartbeat_interval_ms),
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
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !work_.empty();
      };
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
  Post([this, stream = std::move(stream), message = std::move(message)] {
    Handle(stream, message);
    stream->Processed();
  });
}

void WorkerManager::OnEnded(std::shared_ptr<WorkerStream> stream) {
  Post([this, stream = std::move(stream)] {
    scheduler_.RemoveWorker(stream->worker_id(), stream.get());
  });
}

void WorkerManager::Hello(const std::shared_ptr<WorkerStream>& stream,
                          const v1::WorkerInfo& hello) {
  telemetry_.CountRpc("Connect");
  // The welcome is queued before the scheduler knows the stream, so it is always first.
  v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_coordinator_version(ABLATE_VERSION);
  welcome.mutable_welcome()->set_heartbeat_interval_ms(heartbeat_interval_ms_);
  stream->Send(welcome);
  if (absl::Status added = scheduler_.AddWorker(hello, stream); !added.ok()) {
    ABLATE_LOG(ERROR) << "worker not recorded worker_id=" << hello.worker_id() << " error=\""
                      << added.message() << "\"";
    stream->Finish(ToGrpcStatus(added));
  }
}

void WorkerManager::Handle(const std::shared_ptr<WorkerStream>& stream,
                           const v1::WorkerMessage& message) {
  switch (message.msg_case()) {
    case v1::WorkerMessage::kJobEvent: {
      const v1::JobEvent& event = message.job_event();
      Acknowledge(*stream, event.job_id(), event.attempt_id(), event.sequence(),
                  HandleJobEvent(event));
      break;
    }
    case v1::WorkerMessage::kAttemptEnded: {
      const v1::AttemptEnded& ended = message.attempt_ended();
      Acknowledge(*stream, ended.job_id(), ended.attempt_id(), ended.sequence(),
                  HandleAttemptEnded(stream->worker_id(), ended));
      break;
    }
    case v1::WorkerMessage::kDrain:
      scheduler_.DrainWorker(stream->worker_id(), stream.get(), message.drain().reason());
      break;
    case v1::WorkerMessage::kHeartbeat:
      telemetry_.SetWorkerEvents(stream->worker_id(), message.heartbeat());
      break;
    case v1::WorkerMessage::kHello:
      ABLATE_LOG(WARNING) << "repeated hello ignored worker_id=" << stream->worker_id();
      break;
    case v1::WorkerMessage::MSG_NOT_SET:
      break;
  }
}

void WorkerManager::Acknowledge(WorkerStream& stream, const std::string& job_id,
                                uint64_t attempt_id, uint64_t sequence,
                                const absl::Status& status) {
  if (sequence == 0 || !(status.ok() || IsStale(status))) return;
  v1::CoordinatorMessage message;
  v1::Ack* ack = message.mutable_ack();
  ack->set_job_id(job_id);
  ack->set_attempt_id(attempt_id);
  ack->set_sequence(sequence);
  stream.Send(message);
}

absl::Status WorkerManager::HandleJobEvent(const v1::JobEvent& event) {
  const std::string& job_id = event.job_id();
  const uint64_t attempt_id = event.attempt_id();
  const v1::TrainerEvent& trainer = event.event();
  absl::Status status;
  switch (trainer.event_case()) {
    case v1::TrainerEvent::kStarted:
      status = store_.MarkRunning(job_id, attempt_id);
      LogRefused(status, "started", job_id, attempt_id);
      ABLATE_LOG(INFO) << "trainer started job_id=" << job_id << " attempt_id=" << attempt_id
                       << " device=" << trainer.started().device()
                       << " resumed_from_step=" << trainer.started().resumed_from_step();
      break;
    case v1::TrainerEvent::kMetrics: {
      std::vector<v1::MetricPoint> points(trainer.metrics().points().begin(),
                                          trainer.metrics().points().end());
      status = store_.AppendMetrics(job_id, attempt_id, points);
      if (status.ok()) telemetry_.CountMetricPoints(static_cast<int64_t>(points.size()));
      LogRefused(status, "metrics", job_id, attempt_id);
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
      finished_[attempt_id] = trainer.finished();
      break;
    case v1::TrainerEvent::EVENT_NOT_SET:
      break;
  }
  return status;
}

absl::Status WorkerManager::HandleAttemptEnded(const std::string& worker_id,
                                               const v1::AttemptEnded& ended) {
  const std::string& job_id = ended.job_id();
  const uint64_t attempt_id = ended.attempt_id();
  // The trainer's last word travels in AttemptEnded; a finished event relayed earlier (by a
  // worker that does not fill it in) stands in for it.
  std::optional<v1::TrainerFinished> trainer;
  if (ended.has_finished()) trainer = ended.finished();
  if (auto it = finished_.find(attempt_id); it != finished_.end()) {
    if (!trainer) trainer = it->second;
    finished_.erase(it);
  }

  absl::Status status;
  v1::JobState job_state = v1::JOB_STATE_UNSPECIFIED;
  absl::StatusOr<v1::Job> job = store_.GetJob(job_id);
  if (!job.ok()) {
    status = job.status();
  } else if (job->current_attempt_id() != attempt_id) {
    status = absl::FailedPreconditionError("not the job's current attempt");
  } else {
    std::string trainer_error = trainer && !trainer->ok() ? trainer->error() : "";
    AttemptOutcome outcome = OutcomeOfReport(*job, ended, trainer_error);
    std::optional<double> final_eval_loss;
    if (ended.succeeded() && trainer && trainer->ok()) {
      final_eval_loss = trainer->final_eval_loss();
    }
    status = store_.EndAttempt(job_id, attempt_id, outcome.attempt_state, ended.exit(),
                               outcome.job_state, outcome.message, final_eval_loss);
    if (status.ok()) {
      job_state = outcome.job_state;
      ABLATE_LOG(INFO) << "attempt ended job_id=" << job_id << " attempt_id=" << attempt_id
                       << " job_state=" << v1::JobState_Name(outcome.job_state) << " message=\""
                       << outcome.message << "\"";
    }
  }
  LogRefused(status, "attempt_ended", job_id, attempt_id);
  // The trainer is gone whatever the store made of the report: its slots are free.
  scheduler_.AttemptEnded(worker_id, attempt_id, job_state);
  return status;
}

}  // namespace ablate::coordinator
