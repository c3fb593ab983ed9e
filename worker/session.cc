#include "worker/session.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/auth/client_token.h"
#include "common/log.h"
#include "worker/trainer_pids.h"

namespace ablate::worker {
namespace {

// How long Shutdown() waits for the coordinator to close the stream after WritesDone.
constexpr absl::Duration kCloseTimeout = absl::Seconds(2);
// Beyond stop_grace, for SIGKILLed trainers to be reaped.
constexpr absl::Duration kReapMargin = absl::Seconds(5);
constexpr absl::Duration kMinHeartbeatInterval = absl::Milliseconds(100);
// How long Start() waits for SIGKILLed leftover trainers to exit.
constexpr absl::Duration kLeftoverTimeout = absl::Seconds(10);

}  // namespace

Session::Session(SessionOptions options)
    : options_(std::move(options)),
      heartbeat_interval_(options_.heartbeat_interval),
      batcher_(options_.batching),
      outbox_(options_.max_buffered, options_.trainer.work_dir / "outbox.spill"),
      log_shipper_(options_.log_tails) {}

Session::~Session() { Shutdown(); }

void Session::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  std::error_code error;
  std::filesystem::create_directories(options_.trainer.work_dir, error);
  if (error) {
    // Trainers will be refused with the same error; reports then stay in memory.
    ABLATE_LOG(ERROR) << "cannot create the work dir path=" << options_.trainer.work_dir.string()
                      << " error=\"" << error.message() << "\"";
  }
  // Before any trainer of ours starts: none of them can be taken for a leftover.
  if (const int killed = StopLeftoverTrainers(options_.trainer.work_dir, kLeftoverTimeout);
      killed > 0) {
    ABLATE_LOG(WARNING) << "stopped trainer processes left by an earlier worker count=" << killed;
  }
  connection_thread_ = std::thread(&Session::RunConnection, this);
  sender_thread_ = std::thread(&Session::RunSender, this);
  lease_thread_ = std::thread(&Session::RunLeaseWatch, this);
}

void Session::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
    // From now on the sender writes a drain first on every stream, so it reaches the
    // coordinator ahead of the stopped trainers' reports.
    ABLATE_LOG(INFO) << "worker shutting down running=" << running_.size();
    for (auto& [attempt_id, running] : running_) {
      running.process->Stop(options_.stop_grace, "worker shutting down");
    }
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&idle), options_.stop_grace + kReapMargin)) {
      ABLATE_LOG(WARNING) << "trainers still running at shutdown count=" << running_.size();
    }
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      // Never welcomed, nothing to say: no coordinator knows this worker, and no trainer ran.
      if (!ever_welcomed_ && batcher_.open() == 0 && !outbox_.HasUnsent() && !writing_) {
        return true;
      }
      // Written on a stream that is still open (one that broke may have lost them), nothing in
      // the sender's hands, and acknowledged when the coordinator acknowledges.
      return connected_ && welcomed_ && drain_sent_ && batcher_.open() == 0 &&
             !outbox_.HasUnsent() && !writing_ && (!acks_seen_ || outbox_.unacked() == 0);
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&drained), options_.drain_timeout)) {
      // Said as it is: with the coordinator away, nothing may be left undelivered.
      ABLATE_LOG(WARNING) << "shutdown not acknowledged by the coordinator connected=" << connected_
                          << " events_unacked=" << outbox_.unacked()
                          << " events_unsent=" << outbox_.HasUnsent();
      // Ends a write the coordinator is not reading, which the sender's join would wait for.
      if (context_ != nullptr) context_->TryCancel();
    }
    closing_ = true;
  }
  sender_thread_.join();
  lease_thread_.join();
  {
    // A clean end of the stream: the coordinator sees the writes end and closes the call.
    absl::MutexLock lock(&stream_mu_);
    if (stream_ != nullptr) stream_->WritesDone();
  }
  {
    absl::MutexLock lock(&mu_);
    auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return context_ == nullptr; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&closed), kCloseTimeout)) context_->TryCancel();
  }
  connection_thread_.join();
  std::vector<std::unique_ptr<TrainerProcess>> ended;
  std::map<uint64_t, Running> running;
  {
    absl::MutexLock lock(&mu_);
    ended.swap(ended_);
    running.swap(running_);
  }
  // Destroyed outside the lock: a trainer's destructor waits for callbacks that take it.
  ended.clear();
  running.clear();
  ABLATE_LOG(INFO) << "worker shut down";
}

void Session::RunConnection() {
  absl::BitGen random;
  absl::Duration backoff = options_.min_backoff;
  for (int attempt = 1;; ++attempt) {
    ABLATE_LOG(INFO) << "connecting coordinator=" << options_.coordinator << " try=" << attempt;
    if (Converse()) {
      backoff = options_.min_backoff;
      attempt = 0;
    }
    if (absl::Status refused = this->refused(); !refused.ok()) {
      ABLATE_LOG(ERROR) << "the coordinator refuses this worker, so it stops connecting: "
                        << refused.message() << " (check --token-file or ABLATE_TOKEN, and "
                        << "--worker-id " << options_.info.worker_id() << ")";
      if (options_.on_refused) options_.on_refused();
      return;
    }
    // Jitter spreads the reconnects of a fleet of workers after a coordinator restart.
    const absl::Duration delay = backoff * absl::Uniform(random, 0.5, 1.0);
    absl::MutexLock lock(&mu_);
    if (closing_) return;
    ABLATE_LOG(INFO) << "reconnecting coordinator=" << options_.coordinator
                     << " in=" << absl::FormatDuration(delay);
    if (mu_.AwaitWithTimeout(absl::Condition(&closing_), delay)) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

bool Session::Converse() {
  grpc::ChannelArguments args;
  // A fresh channel per try with its own subchannels: the session's backoff is then the only
  // one, instead of gRPC's shared reconnect backoff of up to two minutes.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::unique_ptr<v1::WorkerService::Stub> stub =
      v1::WorkerService::NewStub(grpc::CreateCustomChannel(options_.coordinator,
                                                           options_.credentials != nullptr
                                                               ? options_.credentials
                                                               : grpc::InsecureChannelCredentials(),
                                                           args));
  grpc::ClientContext context;
  if (!options_.token.empty()) context.AddMetadata("authorization", auth::BearerOf(options_.token));
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return false;
    context_ = &context;
  }
  std::unique_ptr<Stream> stream = stub->Connect(&context);
  bool heard = false;
  absl::Time opened = absl::InfiniteFuture();
  const absl::Time hello_at = absl::Now();  // before the write: the lease errs early
  if (stream->Write(Hello())) {
    opened = absl::Now();
    uint64_t generation = 0;
    {
      absl::MutexLock lock(&stream_mu_);
      stream_ = stream.get();
      generation = ++stream_generation_;
    }
    {
      absl::MutexLock lock(&mu_);
      connected_ = true;
      generation_ = generation;
      welcomed_ = false;
      drain_sent_ = false;
    }
    ABLATE_LOG(INFO) << "connected coordinator=" << options_.coordinator;
    v1::CoordinatorMessage message;
    while (stream->Read(&message)) {
      heard = true;
      if (message.has_welcome()) {
        HandleWelcome(message.welcome(), hello_at);
      } else if (message.has_heartbeat_reply()) {
        absl::MutexLock lock(&mu_);
        HandleHeartbeatReply(message.heartbeat_reply());
      } else if (message.has_assign()) {
        HandleAssign(message.assign());
      } else if (message.has_cancel()) {
        HandleCancel(message.cancel());
      } else if (message.has_ack()) {
        absl::MutexLock lock(&mu_);
        HandleAck(message.ack());
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    connected_ = false;
    welcomed_ = false;
  }
  {
    // Once reads have ended the call is over, so a write in flight returns soon.
    absl::MutexLock lock(&stream_mu_);
    stream_ = nullptr;
  }
  const grpc::Status status = stream->Finish();
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
  if (!heard && (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                 status.error_code() == grpc::StatusCode::PERMISSION_DENIED)) {
    refused_ =
        absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  if (heard || status.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
    duplicate_since_.reset();
  } else if (!duplicate_since_.has_value()) {
    duplicate_since_ = absl::Now();
    ABLATE_LOG(WARNING) << "another worker is connected as " << options_.info.worker_id()
                        << "; retrying for up to " << absl::FormatDuration(options_.duplicate_for);
  } else if (absl::Now() - *duplicate_since_ >= options_.duplicate_for) {
    refused_ = absl::AlreadyExistsError(absl::StrCat(
        "another worker has been connected as ", options_.info.worker_id(), " for ",
        absl::FormatDuration(absl::Trunc(absl::Now() - *duplicate_since_, absl::Seconds(1))),
        ": each worker needs an id of its own"));
  }
  ABLATE_LOG(INFO) << "disconnected coordinator=" << options_.coordinator
                   << " code=" << status.error_code() << " error=\"" << status.error_message()
                   << "\" events_unacked=" << outbox_.unacked()
                   << " events_spilled=" << outbox_.spilled()
                   << " events_dropped=" << outbox_.dropped();
  return heard || absl::Now() - opened >= options_.max_backoff;
}

void Session::RunSender() {
  absl::Time next_heartbeat = absl::Now();
  absl::Time next_gpu_sample = absl::Now() + options_.gpu_sample_interval;
  while (true) {
    std::vector<std::unique_ptr<TrainerProcess>> ended;
    std::optional<v1::WorkerMessage> message;
    std::vector<GpuTarget> gpu_targets;
    std::vector<LogShipper::Target> log_targets;
    uint64_t generation = 0;
    {
      absl::MutexLock lock(&mu_);
      const bool sampling = options_.gpu_monitor != nullptr;
      const absl::Time deadline =
          std::min({next_heartbeat, sampling ? next_gpu_sample : absl::InfiniteFuture(),
                    connected_ && welcomed_ ? log_shipper_.NextRead() : absl::InfiniteFuture(),
                    batcher_.NextDue()});
      // A batch opened meanwhile comes due before `deadline`: wake to wait for it instead.
      auto ready = [this, deadline]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return closing_ || !ended_.empty() || batcher_.NextDue() < deadline ||
               (connected_ && ((stopping_ && !drain_sent_) || (welcomed_ && outbox_.HasUnsent())));
      };
      mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
      if (closing_) return;
      for (v1::WorkerMessage& due : batcher_.TakeDue(absl::Now())) outbox_.Push(std::move(due));
      ended.swap(ended_);
      gpu_targets = GpuTargets(next_gpu_sample);
      log_targets = LogTargets();
      message = NextMessage(next_heartbeat);
      generation = generation_;
      writing_ = message.has_value();
    }
    ended.clear();  // joins their threads, outside the lock their last callbacks took
    ReportGpus(gpu_targets);
    // Before the message, which may be an attempt's end: its last lines arrive first.
    ShipLogs(log_targets, generation);
    if (!message.has_value()) continue;
    // A failed write needs no undo: the next stream's hello rewinds the outbox.
    const bool written = Write(*message, generation);
    absl::MutexLock lock(&mu_);
    if (written && message->has_drain() && generation == generation_) drain_sent_ = true;
    writing_ = false;
  }
}

std::optional<v1::WorkerMessage> Session::NextMessage(absl::Time& next_heartbeat) {
  const absl::Time now = absl::Now();
  if (!connected_) {
    next_heartbeat = now + heartbeat_interval_;
    return std::nullopt;
  }
  // First, so that a long backlog never delays the heartbeats the leases follow.
  if (now >= next_heartbeat) {
    next_heartbeat = now + heartbeat_interval_;
    return Heartbeat();
  }
  if (stopping_ && !drain_sent_) {
    v1::WorkerMessage drain;
    drain.mutable_drain()->set_reason("worker shutting down");
    return drain;
  }
  // Not before the welcome, whose acks say what need not be sent again.
  if (welcomed_) return outbox_.NextToSend();
  return std::nullopt;
}

v1::WorkerMessage Session::Heartbeat() {
  v1::WorkerMessage message;
  v1::Heartbeat& heartbeat = *message.mutable_heartbeat();
  heartbeat.set_events_spilled(outbox_.spilled());
  heartbeat.set_events_dropped(outbox_.dropped());
  heartbeat.set_events_unacked(outbox_.unacked());
  heartbeat.set_number(++heartbeats_);
  lease_.Sent(heartbeats_, absl::Now());  // before the write, as the hello's
  if (outbox_.spilled() != logged_spilled_ || outbox_.dropped() != logged_dropped_) {
    logged_spilled_ = outbox_.spilled();
    logged_dropped_ = outbox_.dropped();
    ABLATE_LOG(INFO) << "outbox events_unacked=" << outbox_.unacked()
                     << " events_spilled=" << logged_spilled_
                     << " events_dropped=" << logged_dropped_;
  }
  return message;
}

bool Session::Write(const v1::WorkerMessage& message, uint64_t generation) {
  absl::MutexLock lock(&stream_mu_);
  // A message picked for a stream that has since been replaced is not written on the new one:
  // that stream's own pass over the outbox sends it, in its place in the order.
  return stream_ != nullptr && stream_generation_ == generation && stream_->Write(message);
}

void Session::Report(v1::WorkerMessage report) {
  for (v1::WorkerMessage& ready : batcher_.Add(std::move(report), absl::Now())) {
    outbox_.Push(std::move(ready));
  }
}

void Session::HandleWelcome(const v1::Welcome& welcome, absl::Time hello_at) {
  ABLATE_LOG(INFO) << "welcome coordinator_version=" << welcome.coordinator_version()
                   << " heartbeat_interval_ms=" << welcome.heartbeat_interval_ms()
                   << " lease_timeout_ms=" << welcome.lease_timeout_ms()
                   << " acks=" << welcome.acks_size();
  absl::MutexLock lock(&mu_);
  const absl::Time before = lease_.renewed();
  lease_.SetDuration(absl::Milliseconds(welcome.lease_timeout_ms()));
  lease_.Renew(hello_at);
  LeaseRenewed(before);
  if (welcome.heartbeat_interval_ms() > 0) {
    heartbeat_interval_ =
        std::max(kMinHeartbeatInterval, absl::Milliseconds(welcome.heartbeat_interval_ms()));
  }
  for (const v1::Ack& ack : welcome.acks()) HandleAck(ack);
  welcomed_ = true;
  ever_welcomed_ = true;
}

void Session::HandleAck(const v1::Ack& ack) {
  acks_seen_ = true;
  if (!outbox_.Ack(ack.attempt_id(), ack.sequence())) return;
  auto it = reporting_.find(ack.attempt_id());
  if (it != reporting_.end() && it->second.job_id() == ack.job_id()) {
    reporting_.erase(it);
    ended_logs_.erase(ack.attempt_id());
  }
}

absl::Status Session::refused() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

absl::Status Session::Readiness() const {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("shutting down");
  if (!connected_ || !welcomed_) return absl::UnavailableError("not connected to the coordinator");
  if (!start_failure_.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot start trainers: ", start_failure_));
  }
  return absl::OkStatus();
}

}  // namespace ablate::worker
