// WorkerService over real gRPC on loopback: streams, acknowledgements, leases, bounds and
// placement messages, against a whole CoordinatorServer.
#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "coordinator/service/service_test_fixture.h"

namespace ablate::coordinator::service_test {
namespace {

// A job that moves to a worker that does not see its checkpoints runs again from the start;
// the job says so, naming the attempt, worker and step it fell behind, rather than silently.
TEST_F(ServiceTest, AnAttemptThatStartsBehindAnEarlierCheckpointSaysSo) {
  Submit(TinySweepSpec("moved", 1));
  const auto assignment_of = [](FakeWorker& worker) {
    v1::CoordinatorMessage message;
    while (worker.Read(message) && !message.has_assign()) {
    }
    return message.assign();
  };
  v1::TrainerEvent started;
  started.mutable_started()->set_device("cpu");
  FakeWorker a(channel_, "a");
  ASSERT_TRUE(a.SendHello());
  const v1::Assignment first = assignment_of(a);
  const std::string job_id = first.job().job_id();
  ASSERT_FALSE(job_id.empty());
  ASSERT_TRUE(a.SendEvent(job_id, first.attempt_id(), started));
  v1::TrainerEvent checkpoint;
  checkpoint.mutable_checkpoint()->set_step(200);
  ASSERT_TRUE(a.SendEvent(job_id, first.attempt_id(), checkpoint));
  // Its worker stops, as on SIGTERM: a drain (so it is offered nothing more), then the attempt
  // ended as interrupted, back to the queue.
  v1::WorkerMessage drain;
  drain.mutable_drain()->set_reason("shutting down");
  ASSERT_TRUE(a.Send(drain));
  v1::WorkerMessage drained;
  drained.mutable_attempt_ended()->set_job_id(job_id);
  drained.mutable_attempt_ended()->set_attempt_id(first.attempt_id());
  drained.mutable_attempt_ended()->set_interrupted(true);
  ASSERT_TRUE(a.Send(drained));
  EXPECT_TRUE(a.Close().ok());

  FakeWorker b(channel_, "b");
  ASSERT_TRUE(b.SendHello());
  const v1::Assignment second = assignment_of(b);
  ASSERT_EQ(second.job().job_id(), job_id);
  ASSERT_TRUE(b.SendEvent(job_id, second.attempt_id(), started));  // resumed_from_step 0
  ASSERT_TRUE(WaitUntil([&] { return !Job(job_id).message().empty(); }));
  EXPECT_EQ(Job(job_id).message(),
            absl::StrCat("started from step 0, though attempt ", first.attempt_id(),
                         " on worker a saved a checkpoint at step 200: worker b does not see "
                         "that checkpoint_dir (a relative checkpoint_root is taken from each "
                         "worker's own folder; give one on storage every worker mounts)"));
}

// A worker that refuses an assignment before starting its trainer, for a reason of its own:
// the job is queued again, its budget untouched and the attempt counted apart, and the attempt
// is stored as never started, which `ablate log` reads rather than its reason's words.
TEST_F(ServiceTest, ARefusedAttemptIsStoredAsNeverStartedAndUncounted) {
  Submit(TinySweepSpec("refused", 1));
  FakeWorker worker(channel_, "w1");
  ASSERT_TRUE(worker.SendHello());
  v1::CoordinatorMessage message;
  while (worker.Read(message) && !message.has_assign()) {
  }
  const v1::Assignment assignment = message.assign();
  const std::string job_id = assignment.job().job_id();
  ASSERT_FALSE(job_id.empty());
  // Draining, so that the job is not offered to it again.
  v1::WorkerMessage drain;
  drain.mutable_drain()->set_reason("shutting down");
  ASSERT_TRUE(worker.Send(drain));
  v1::WorkerMessage refused;
  v1::AttemptEnded& ended = *refused.mutable_attempt_ended();
  ended.set_job_id(job_id);
  ended.set_attempt_id(assignment.attempt_id());
  ended.set_interrupted(true);
  ended.set_never_started(true);
  ended.mutable_exit()->set_reason("not started: the worker is shutting down");
  ASSERT_TRUE(worker.Send(refused));

  ASSERT_TRUE(WaitUntil([&] { return JobState(job_id) == v1::JOB_STATE_PENDING; }));
  v1::GetJobResponse response;
  ASSERT_TRUE(GetJob(job_id, response).ok());
  EXPECT_EQ(response.job().attempts(), 1u);
  EXPECT_EQ(response.job().uncounted_attempts(), 1u);
  EXPECT_EQ(response.job().max_attempts(), 2u);
  ASSERT_EQ(response.attempts_size(), 1);
  EXPECT_TRUE(response.attempts(0).never_started());
  EXPECT_EQ(response.attempts(0).state(), v1::ATTEMPT_STATE_LOST);
  EXPECT_TRUE(worker.Close().ok());
}

TEST_F(ServiceTest, WorkerRunsAJobToSuccess) {
  std::string sweep_id = Submit(TinySweepSpec("run", 1)).sweep().id();
  FakeWorker worker(channel_, "w1");
  ASSERT_TRUE(worker.SendHello());
  v1::CoordinatorMessage message;
  ASSERT_TRUE(worker.Read(message));
  ASSERT_TRUE(message.has_welcome());
  ASSERT_TRUE(worker.Read(message));
  ASSERT_TRUE(message.has_assign());
  const v1::Assignment assignment = message.assign();
  const std::string job_id = assignment.job().job_id();
  EXPECT_EQ(assignment.job().sweep_id(), sweep_id);
  EXPECT_EQ(assignment.slot_indices_size(), 1);

  // A report for an attempt that is not the current one changes nothing.
  v1::WorkerMessage stale;
  stale.mutable_attempt_ended()->set_job_id(job_id);
  stale.mutable_attempt_ended()->set_attempt_id(assignment.attempt_id() + 100);
  stale.mutable_attempt_ended()->mutable_exit()->set_exit_code(1);
  ASSERT_TRUE(worker.Send(stale));

  v1::TrainerEvent started;
  started.mutable_started()->set_device("cpu");
  ASSERT_TRUE(worker.SendEvent(job_id, assignment.attempt_id(), started));
  ASSERT_TRUE(WaitUntil([&] { return JobState(job_id) == v1::JOB_STATE_RUNNING; }));

  v1::TrainerEvent metrics;
  for (int step = 1; step <= 3; ++step) {
    v1::MetricPoint* point = metrics.mutable_metrics()->add_points();
    point->set_name("train/loss");
    point->set_step(step);
    point->set_value(5.0 - step);
  }
  ASSERT_TRUE(worker.SendEvent(job_id, assignment.attempt_id(), metrics));
  v1::TrainerEvent finished;
  finished.mutable_finished()->set_ok(true);
  finished.mutable_finished()->set_steps(3);
  finished.mutable_finished()->set_final_eval_loss(1.75);
  ASSERT_TRUE(worker.SendEvent(job_id, assignment.attempt_id(), finished));
  v1::WorkerMessage ended;
  ended.mutable_attempt_ended()->set_job_id(job_id);
  ended.mutable_attempt_ended()->set_attempt_id(assignment.attempt_id());
  ended.mutable_attempt_ended()->set_succeeded(true);
  ASSERT_TRUE(worker.Send(ended));

  ASSERT_TRUE(WaitUntil([&] { return JobState(job_id) == v1::JOB_STATE_SUCCEEDED; }));
  // Counted once committed (the stale report above ended nothing).
  httplib::Client http("127.0.0.1", server_->http_port());
  EXPECT_TRUE(WaitUntil([&] {
    httplib::Result scraped = http.Get("/metrics");
    return scraped &&
           absl::StrContains(scraped->body, "ablate_attempts_ended_total{state=\"succeeded\"} 1");
  }));
  EXPECT_FALSE(absl::StrContains(http.Get("/metrics")->body, "state=\"lost\""));
  v1::GetJobResponse job;
  ASSERT_TRUE(GetJob(job_id, job).ok());
  EXPECT_EQ(job.job().final_eval_loss(), 1.75);
  EXPECT_EQ(job.job().attempts(), 1u);
  ASSERT_EQ(job.attempts_size(), 1);
  EXPECT_EQ(job.attempts(0).state(), v1::ATTEMPT_STATE_SUCCEEDED);
  ASSERT_EQ(job.metrics_size(), 1);
  EXPECT_EQ(job.metrics(0).name(), "train/loss");
  EXPECT_EQ(job.metrics(0).steps_size(), 3);

  // The job's state is stored before the scheduler frees its slot: wait for the slot back.
  v1::ListWorkersResponse workers;
  EXPECT_TRUE(WaitUntil([&] {
    grpc::ClientContext context;
    SetDeadline(context);
    return sweeps_->ListWorkers(&context, {}, &workers).ok() && workers.workers_size() == 1 &&
           workers.workers(0).free_slots() == 1;
  })) << workers.DebugString();
  ASSERT_EQ(workers.workers_size(), 1);
  EXPECT_TRUE(workers.workers(0).connected());
  EXPECT_TRUE(worker.Close().ok());
}

TEST_F(ServiceTest, DrainingWorkerGetsNoAssignment) {
  FakeWorker worker(channel_, "w1");
  ASSERT_TRUE(worker.SendHello());
  v1::CoordinatorMessage message;
  ASSERT_TRUE(worker.Read(message));
  ASSERT_TRUE(message.has_welcome());
  v1::WorkerMessage drain;
  drain.mutable_drain()->set_reason("shutting down");
  ASSERT_TRUE(worker.Send(drain));
  // The drain has reached the scheduler once the worker offers no free slot.
  ASSERT_TRUE(WaitUntil([&] {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::ListWorkersResponse workers;
    return sweeps_->ListWorkers(&context, {}, &workers).ok() && workers.workers_size() == 1 &&
           workers.workers(0).free_slots() == 0;
  }));

  std::string sweep_id = Submit(TinySweepSpec("drain", 1)).sweep().id();
  absl::SleepFor(absl::Seconds(1));
  v1::ListJobsResponse jobs = ListJobs(sweep_id);
  ASSERT_EQ(jobs.jobs_size(), 1);
  // An assignment is sent only after its attempt started, so none was sent.
  EXPECT_EQ(jobs.jobs(0).state(), v1::JOB_STATE_PENDING);
  EXPECT_TRUE(worker.Close().ok());
}

TEST_F(ServiceTest, FirstWorkerMessageMustBeHello) {
  FakeWorker worker(channel_, "w1");
  v1::WorkerMessage heartbeat;
  heartbeat.mutable_heartbeat();
  ASSERT_TRUE(worker.Send(heartbeat));
  EXPECT_EQ(worker.Close().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ServiceTest, ShutdownEndsOpenWorkerStreams) {
  FakeWorker worker(channel_, "w1");
  ASSERT_TRUE(worker.SendHello());
  v1::CoordinatorMessage welcome;
  ASSERT_TRUE(worker.Read(welcome));
  absl::Time start = absl::Now();
  server_->Shutdown();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  v1::CoordinatorMessage more;
  EXPECT_FALSE(worker.Read(more));
  EXPECT_FALSE(worker.Close().ok());
}

// Reads until a message that `wanted` accepts; false when the stream ends first.
bool ReadUntil(FakeWorker& worker, const std::function<bool(const v1::CoordinatorMessage&)>& wanted,
               v1::CoordinatorMessage& message) {
  while (worker.Read(message)) {
    if (wanted(message)) return true;
  }
  return false;
}

TEST_F(ServiceTest, ReportsAreAcknowledgedOnceCommitted) {
  Submit(TinySweepSpec("acks", 1));
  FakeWorker worker(channel_, "w1");
  ASSERT_TRUE(worker.SendHello());
  v1::CoordinatorMessage message;
  ASSERT_TRUE(ReadUntil(
      worker, [](const auto& m) { return m.has_assign(); }, message));
  const v1::Assignment assignment = message.assign();

  v1::WorkerMessage report;
  v1::JobEvent* event = report.mutable_job_event();
  event->set_job_id(assignment.job().job_id());
  event->set_attempt_id(assignment.attempt_id());
  event->set_sequence(1);
  event->mutable_event()->mutable_started()->set_device("cpu");
  ASSERT_TRUE(worker.Send(report));
  event->set_sequence(2);
  *event->mutable_event()->mutable_metrics()->add_points() = testing::Point("train/loss", 1, 3.5);
  ASSERT_TRUE(worker.Send(report));

  for (uint64_t sequence : {1u, 2u}) {
    ASSERT_TRUE(ReadUntil(
        worker, [](const auto& m) { return m.has_ack(); }, message));
    EXPECT_EQ(message.ack().job_id(), assignment.job().job_id());
    EXPECT_EQ(message.ack().attempt_id(), assignment.attempt_id());
    EXPECT_EQ(message.ack().sequence(), sequence);
  }
  // Acked means stored.
  v1::GetJobResponse job;
  ASSERT_TRUE(GetJob(assignment.job().job_id(), job).ok());
  EXPECT_EQ(job.job().state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job.job().step(), 1);
  EXPECT_TRUE(worker.Close().ok());
}

TEST_F(ServiceTest, AReconnectedWorkerLearnsWhatIsCommittedAndEndsWithTheFinalEvalLoss) {
  Submit(TinySweepSpec("final", 1));
  v1::Assignment assignment;
  {
    FakeWorker worker(channel_, "w1");
    ASSERT_TRUE(worker.SendHello());
    v1::CoordinatorMessage message;
    ASSERT_TRUE(ReadUntil(
        worker, [](const auto& m) { return m.has_assign(); }, message));
    assignment = message.assign();
    v1::WorkerMessage started;
    started.mutable_job_event()->set_job_id(assignment.job().job_id());
    started.mutable_job_event()->set_attempt_id(assignment.attempt_id());
    started.mutable_job_event()->set_sequence(1);
    started.mutable_job_event()->mutable_event()->mutable_started()->set_device("cpu");
    started.mutable_job_event()
        ->mutable_event()
        ->mutable_started()
        ->mutable_provenance()
        ->set_code_version("0.1.0+test");
    ASSERT_TRUE(worker.Send(started));
    ASSERT_TRUE(
        WaitUntil([&] { return JobState(assignment.job().job_id()) == v1::JOB_STATE_RUNNING; }));
    EXPECT_EQ(Job(assignment.job().job_id()).provenance().code_version(), "0.1.0+test");
    EXPECT_TRUE(worker.Close().ok());
  }
  // The worker reconnects still holding the attempt, and reports its end with the trainer's
  // last word, which the first stream never carried. Until the coordinator has seen the first
  // stream end, a hello under the same id is refused as a duplicate, and the worker tries
  // again, as the real one does after its backoff.
  std::unique_ptr<FakeWorker> again;
  v1::CoordinatorMessage welcome;
  for (int tries = 0; tries < 100; ++tries) {
    again = std::make_unique<FakeWorker>(channel_, "w1");
    v1::RunningAttempt* running = again->hello().add_running();
    running->set_job_id(assignment.job().job_id());
    running->set_attempt_id(assignment.attempt_id());
    running->add_slot_indices(0);
    ASSERT_TRUE(again->SendHello());
    if (again->Read(welcome)) break;
    EXPECT_EQ(again->Close().error_code(), grpc::StatusCode::ALREADY_EXISTS);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // The welcome says what is already committed of the attempt: report 1, its start.
  ASSERT_TRUE(welcome.has_welcome());
  ASSERT_EQ(welcome.welcome().acks_size(), 1);
  EXPECT_EQ(welcome.welcome().acks(0).attempt_id(), assignment.attempt_id());
  EXPECT_EQ(welcome.welcome().acks(0).sequence(), 1u);
  // Listed, it runs the job (job_ids); what its hello held is not repeated beside that.
  v1::ListWorkersResponse workers;
  ASSERT_TRUE(WaitUntil([&] {
    grpc::ClientContext context;
    SetDeadline(context);
    return sweeps_->ListWorkers(&context, {}, &workers).ok() && workers.workers_size() == 1 &&
           workers.workers(0).job_ids_size() == 1;
  })) << workers.DebugString();
  EXPECT_EQ(workers.workers(0).info().running_size(), 0);
  v1::WorkerMessage ended;
  ended.mutable_attempt_ended()->set_job_id(assignment.job().job_id());
  ended.mutable_attempt_ended()->set_attempt_id(assignment.attempt_id());
  ended.mutable_attempt_ended()->set_succeeded(true);
  ended.mutable_attempt_ended()->mutable_finished()->set_ok(true);
  ended.mutable_attempt_ended()->mutable_finished()->set_final_eval_loss(2.25);
  ended.mutable_attempt_ended()->set_sequence(2);
  ASSERT_TRUE(again->Send(ended));

  ASSERT_TRUE(
      WaitUntil([&] { return JobState(assignment.job().job_id()) == v1::JOB_STATE_SUCCEEDED; }));
  EXPECT_EQ(Job(assignment.job().job_id()).final_eval_loss(), 2.25);
  EXPECT_TRUE(again->Close().ok());
}

TEST_F(ServiceTest, StreamsBeyondTheBoundAreRefused) {
  CoordinatorOptions options;
  options.max_worker_streams = 2;
  StartServer(options);
  FakeWorker first(channel_, "w1");
  FakeWorker second(channel_, "w2");
  v1::CoordinatorMessage welcome;
  for (FakeWorker* worker : {&first, &second}) {
    ASSERT_TRUE(worker->SendHello());
    ASSERT_TRUE(worker->Read(welcome));
    ASSERT_TRUE(welcome.has_welcome());
  }
  FakeWorker third(channel_, "w3");
  third.SendHello();
  grpc::Status refused = third.Close();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("limit of 2 worker streams"));

  // A stream that ends makes room.
  EXPECT_TRUE(first.Close().ok());
  ASSERT_TRUE(WaitUntil([&] {
    FakeWorker fourth(channel_, "w4");
    v1::CoordinatorMessage reply;
    bool welcomed = fourth.SendHello() && fourth.Read(reply) && reply.has_welcome();
    fourth.Close();
    return welcomed;
  }));
  EXPECT_TRUE(second.Close().ok());
}

TEST_F(ServiceTest, AWorkerThatNeverReadsDoesNotStallOthers) {
  constexpr int kStalledSlots = 5000;  // about 1 MB of assignments, far beyond HTTP/2 windows
  std::string sweep_id = Submit(testing::SeedSweepSpec("stall", kStalledSlots + 1)).sweep().id();
  FakeWorker stalled(channel_, "stalled", kStalledSlots, std::chrono::seconds(40));
  ASSERT_TRUE(stalled.SendHello());
  // Its assignments are decided (and queued to its stream, which it never reads).
  ASSERT_TRUE(WaitUntil(
      [&] {
        grpc::ClientContext context;
        SetDeadline(context);
        v1::GetSweepRequest request;
        request.set_sweep_id(sweep_id);
        v1::Sweep sweep;
        return sweeps_->GetSweep(&context, request, &sweep).ok() &&
               sweep.counts().assigned() == static_cast<uint32_t>(kStalledSlots);
      },
      absl::Seconds(30)));

  FakeWorker other(channel_, "other");
  ASSERT_TRUE(other.SendHello());
  v1::CoordinatorMessage message;
  ASSERT_TRUE(ReadUntil(
      other, [](const auto& m) { return m.has_assign(); }, message));
  EXPECT_EQ(message.assign().job().sweep_id(), sweep_id);
  EXPECT_TRUE(other.Close().ok());
}

TEST_F(ServiceTest, ASilentOpenStreamLosesItsJobAfterOneLease) {
  CoordinatorOptions options;
  options.lease_timeout = absl::Seconds(1);
  StartServer(options);
  Submit(TinySweepSpec("silent", 1));
  FakeWorker silent(channel_, "silent");
  ASSERT_TRUE(silent.SendHello());
  v1::CoordinatorMessage message;
  ASSERT_TRUE(ReadUntil(
      silent, [](const auto& m) { return m.has_assign(); }, message));
  const std::string job_id = message.assign().job().job_id();
  // It sends nothing more: its stream is closed and its job queued again.
  ASSERT_TRUE(WaitUntil([&] { return JobState(job_id) == v1::JOB_STATE_PENDING; }));
  EXPECT_FALSE(silent.Read(message));
  grpc::Status closed = silent.Close();
  EXPECT_EQ(closed.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(closed.error_message(), ::testing::HasSubstr("no message from worker silent"));
  v1::GetJobResponse job;
  ASSERT_TRUE(GetJob(job_id, job).ok());
  ASSERT_EQ(job.attempts_size(), 1);
  EXPECT_EQ(job.attempts(0).state(), v1::ATTEMPT_STATE_LOST);
  // Ended by the scheduler, not by a report: counted all the same (once committed).
  httplib::Client http("127.0.0.1", server_->http_port());
  EXPECT_TRUE(WaitUntil([&] {
    httplib::Result scraped = http.Get("/metrics");
    return scraped &&
           absl::StrContains(scraped->body, "ablate_attempts_ended_total{state=\"lost\"} 1");
  }));
}

TEST_F(ServiceTest, AJobNoWorkerCanTakeSaysWhyInItsMessage) {
  v1::SweepSpec spec = TinySweepSpec("gpu", 1);
  (*spec.mutable_fixed())["gpus"] = "1";
  std::string job_id = ListJobs(Submit(spec).sweep().id()).jobs(0).spec().job_id();
  FakeWorker worker(channel_, "cpu-only", 2);
  ASSERT_TRUE(worker.SendHello());
  ASSERT_TRUE(WaitUntil([&] {
    // The tiny model's planned memory (common/model_math) is part of the need.
    const std::string message = Job(job_id).message();
    return absl::StartsWith(message, "waiting: needs 1 CUDA slot with ") &&
           absl::EndsWith(message, "iB; connected workers have 2 CPU slots");
  }));
  EXPECT_EQ(Job(job_id).state(), v1::JOB_STATE_PENDING);
  EXPECT_TRUE(worker.Close().ok());
}

// The worker's side of the lease (worker/lease.h): the welcome states it, with heartbeats at
// least six times a lease, and every heartbeat is answered with its number as it is read.
TEST_F(ServiceTest, TheWelcomeStatesTheLeaseAndEveryHeartbeatIsAnswered) {
  CoordinatorOptions options;
  options.lease_timeout = absl::Seconds(3);
  StartServer(options);
  FakeWorker worker(channel_, "w1");
  ASSERT_TRUE(worker.SendHello());
  v1::CoordinatorMessage message;
  ASSERT_TRUE(worker.Read(message));
  ASSERT_TRUE(message.has_welcome());
  EXPECT_EQ(message.welcome().lease_timeout_ms(), 3000u);
  EXPECT_EQ(message.welcome().heartbeat_interval_ms(), 500u);
  for (uint64_t number : {7, 8}) {
    v1::WorkerMessage heartbeat;
    heartbeat.mutable_heartbeat()->set_number(number);
    ASSERT_TRUE(worker.Send(heartbeat));
    ASSERT_TRUE(ReadUntil(
        worker, [](const auto& m) { return m.has_heartbeat_reply(); }, message));
    EXPECT_EQ(message.heartbeat_reply().number(), number);
  }
  EXPECT_TRUE(worker.Close().ok());
}

TEST_F(ServiceTest, HeartbeatCountersAreExported) {
  FakeWorker worker(channel_, "w1");
  ASSERT_TRUE(worker.SendHello());
  v1::CoordinatorMessage welcome;
  ASSERT_TRUE(worker.Read(welcome));
  v1::WorkerMessage heartbeat;
  heartbeat.mutable_heartbeat()->set_events_spilled(7);
  heartbeat.mutable_heartbeat()->set_events_dropped(2);
  heartbeat.mutable_heartbeat()->set_events_unacked(40);
  ASSERT_TRUE(worker.Send(heartbeat));
  httplib::Client http("127.0.0.1", server_->http_port());
  ASSERT_TRUE(WaitUntil([&] {
    httplib::Result scraped = http.Get("/metrics");
    return scraped &&
           scraped->body.find("ablate_worker_events_spilled{worker=\"w1\"} 7") != std::string::npos;
  }));
  std::string body = http.Get("/metrics")->body;
  EXPECT_THAT(body, ::testing::HasSubstr("ablate_worker_events_dropped{worker=\"w1\"} 2"));
  EXPECT_THAT(body, ::testing::HasSubstr("ablate_worker_events_unacked{worker=\"w1\"} 40"));
  EXPECT_TRUE(worker.Close().ok());
}

}  // namespace
}  // namespace ablate::coordinator::service_test
