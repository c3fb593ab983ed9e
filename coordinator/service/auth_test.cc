// Roles over real gRPC on loopback: every SweepService and WorkerService method refuses a call
// without a token, each role is held to its methods, WhoAmI names a token's role, a worker
// token speaks only for its own worker id, a worker cannot report for another worker's attempt,
// a second stream cannot take a connected worker's place, and a revoked worker, connected or
// not, loses its job at the reload (a connected one is cut off).
#include <algorithm>
#include <fstream>
#include <map>

#include "coordinator/service/service_test_fixture.h"
#include "google/protobuf/descriptor.h"
#include "tests/support/tokens.h"

namespace ablate::coordinator::service_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Far beyond any wait of these tests, so a job that comes back within one did not come back
// because a lease ran out.
constexpr absl::Duration kLease = absl::Seconds(60);

class AuthTest : public ServiceTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(test::WriteTokenFile(dir_.File("tokens"), {"w-a", "w-b"}).ok());
    StartWithTokens(kLease);
  }

  // Submit and Cancel as `token`'s holder.
  grpc::Status SubmitAs(const std::string& token) {
    auto stub = v1::SweepService::NewStub(Channel(token));
    grpc::ClientContext context;
    SetDeadline(context);
    v1::SubmitSweepRequest request;
    *request.mutable_spec() = TinySweepSpec("as", 1);
    v1::SubmitSweepResponse response;
    return stub->SubmitSweep(&context, request, &response);
  }
  grpc::Status CancelAs(const std::string& token, const std::string& id) {
    auto stub = v1::SweepService::NewStub(Channel(token));
    grpc::ClientContext context;
    SetDeadline(context);
    v1::CancelRequest request;
    request.set_id(id);
    v1::CancelResponse response;
    return stub->Cancel(&context, request, &response);
  }

  // Every SweepService method and WorkerService.Connect, called with `token` (empty: none);
  // the status of each by method name.
  std::map<std::string, grpc::Status> CallEveryMethod(const std::string& token) {
    std::shared_ptr<grpc::Channel> channel = Channel(token);
    auto stub = v1::SweepService::NewStub(channel);
    std::map<std::string, grpc::Status> result;
    auto unary = [&](const char* name, auto call) {
      grpc::ClientContext context;
      SetDeadline(context);
      result[name] = call(context);
    };
    unary("SubmitSweep", [&](grpc::ClientContext& c) {
      v1::SubmitSweepRequest r;
      *r.mutable_spec() = TinySweepSpec("every", 1);
      v1::SubmitSweepResponse out;
      return stub->SubmitSweep(&c, r, &out);
    });
    unary("GetSweep", [&](grpc::ClientContext& c) {
      v1::Sweep out;
      return stub->GetSweep(&c, v1::GetSweepRequest(), &out);
    });
    unary("ListSweeps", [&](grpc::ClientContext& c) {
      v1::ListSweepsResponse out;
      return stub->ListSweeps(&c, v1::ListSweepsRequest(), &out);
    });
    unary("ListJobs", [&](grpc::ClientContext& c) {
      v1::ListJobsResponse out;
      return stub->ListJobs(&c, v1::ListJobsRequest(), &out);
    });
    unary("GetJob", [&](grpc::ClientContext& c) {
      v1::GetJobResponse out;
      return stub->GetJob(&c, v1::GetJobRequest(), &out);
    });
    unary("GetJobLog", [&](grpc::ClientContext& c) {
      v1::JobLog out;
      return stub->GetJobLog(&c, v1::GetJobLogRequest(), &out);
    });
    unary("Cancel", [&](grpc::ClientContext& c) {
      v1::CancelResponse out;
      return stub->Cancel(&c, v1::CancelRequest(), &out);
    });
    unary("RetryJobs", [&](grpc::ClientContext& c) {
      v1::RetryJobsResponse out;
      return stub->RetryJobs(&c, v1::RetryJobsRequest(), &out);
    });
    unary("ListWorkers", [&](grpc::ClientContext& c) {
      v1::ListWorkersResponse out;
      return stub->ListWorkers(&c, v1::ListWorkersRequest(), &out);
    });
    unary("WhoAmI", [&](grpc::ClientContext& c) {
      v1::WhoAmIResponse out;
      return stub->WhoAmI(&c, v1::WhoAmIRequest(), &out);
    });
    unary("WatchSweep", [&](grpc::ClientContext& c) {
      auto reader = stub->WatchSweep(&c, v1::WatchSweepRequest());
      v1::SweepSnapshot snapshot;
      while (reader->Read(&snapshot)) {
      }
      return reader->Finish();
    });
    FakeWorker worker(channel, "w-a");
    worker.SendHello();
    result["Connect"] = worker.Close();
    return result;
  }
};

TEST_F(AuthTest, EveryMethodRefusesACallWithoutAToken) {
  std::map<std::string, grpc::Status> statuses = CallEveryMethod("");
  // A method added to either service must be added here (and checked in its handler).
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const int methods = pool->FindServiceByName("ablate.v1.SweepService")->method_count() +
                      pool->FindServiceByName("ablate.v1.WorkerService")->method_count();
  EXPECT_EQ(statuses.size(), static_cast<size_t>(methods));
  for (const auto& [method, status] : statuses) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << method;
    EXPECT_THAT(status.error_message(), HasSubstr("needs a bearer token of role")) << method;
  }
}

TEST_F(AuthTest, AnUnknownTokenIsUnauthenticated) {
  grpc::Status status = SubmitAs("not-a-token-of-this-coordinator");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("unknown"));
  EXPECT_THAT(status.error_message(), Not(HasSubstr("not-a-token")));
}

TEST_F(AuthTest, AViewerReadsButCannotSubmitCancelOrRetry) {
  const std::string sweep_id = Submit(TinySweepSpec("viewed", 1)).sweep().id();
  std::map<std::string, grpc::Status> statuses = CallEveryMethod(test::kViewerToken);
  for (const char* read : {"GetSweep", "ListSweeps", "ListJobs", "GetJob", "GetJobLog",
                           "ListWorkers", "WatchSweep", "WhoAmI"}) {
    EXPECT_NE(statuses[read].error_code(), grpc::StatusCode::UNAUTHENTICATED) << read;
    EXPECT_NE(statuses[read].error_code(), grpc::StatusCode::PERMISSION_DENIED) << read;
  }
  for (const char* write : {"SubmitSweep", "Cancel", "RetryJobs"}) {
    EXPECT_EQ(statuses[write].error_code(), grpc::StatusCode::PERMISSION_DENIED) << write;
    EXPECT_THAT(statuses[write].error_message(), HasSubstr("needs a token of role user"));
    EXPECT_THAT(statuses[write].error_message(), HasSubstr("role is viewer"));
  }
  EXPECT_EQ(statuses["Connect"].error_code(), grpc::StatusCode::PERMISSION_DENIED);

  grpc::Status cancel = CancelAs(test::kViewerToken, sweep_id);
  EXPECT_EQ(cancel.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ListJobs(sweep_id).jobs(0).state(), v1::JOB_STATE_PENDING);

  // A cancelled job the viewer cannot queue again; the user can.
  ASSERT_TRUE(CancelAs(test::kUserToken, sweep_id).ok());
  auto retry_as = [&](const std::string& token) {
    auto stub = v1::SweepService::NewStub(Channel(token));
    grpc::ClientContext context;
    SetDeadline(context);
    v1::RetryJobsRequest request;
    request.set_sweep(sweep_id);
    request.add_states(v1::JOB_STATE_CANCELLED);
    v1::RetryJobsResponse response;
    return stub->RetryJobs(&context, request, &response);
  };
  EXPECT_EQ(retry_as(test::kViewerToken).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ListJobs(sweep_id).jobs(0).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(retry_as(test::kUserToken).ok());
  EXPECT_EQ(ListJobs(sweep_id).jobs(0).state(), v1::JOB_STATE_PENDING);
}

TEST_F(AuthTest, AWorkerTokenOpensItsStreamOnlyAndCannotSubmit) {
  std::map<std::string, grpc::Status> statuses = CallEveryMethod(test::WorkerToken("w-a"));
  for (const auto& [method, status] : statuses) {
    if (method == "Connect") continue;
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method;
    EXPECT_THAT(status.error_message(), HasSubstr("role is worker")) << method;
  }
  // Its own stream is accepted: ended by the worker, it ends OK.
  EXPECT_TRUE(statuses["Connect"].ok()) << statuses["Connect"].error_message();

  // A user token is not a worker's.
  FakeWorker user(Channel(test::kUserToken), "w-a");
  user.SendHello();
  grpc::Status refused = user.Close();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(refused.error_message(), HasSubstr("needs a token of role worker"));
}

// What a client asks before it acts (`ablate submit` before it prints a plan): the role of its
// token, refused as every read is to a token that may not read.
TEST_F(AuthTest, WhoAmINamesTheRoleOfTheToken) {
  auto who = [&](const std::string& token, v1::WhoAmIResponse& response) {
    auto stub = v1::SweepService::NewStub(Channel(token));
    grpc::ClientContext context;
    SetDeadline(context);
    return stub->WhoAmI(&context, v1::WhoAmIRequest(), &response);
  };
  v1::WhoAmIResponse viewer;
  ASSERT_TRUE(who(test::kViewerToken, viewer).ok());
  EXPECT_EQ(viewer.role(), "viewer");
  v1::WhoAmIResponse user;
  ASSERT_TRUE(who(test::kUserToken, user).ok());
  EXPECT_EQ(user.role(), "user");

  v1::WhoAmIResponse refused;
  grpc::Status worker = who(test::WorkerToken("w-a"), refused);
  EXPECT_EQ(worker.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(worker.error_message(), HasSubstr("WhoAmI needs a token of role viewer or user"));
  EXPECT_THAT(worker.error_message(), HasSubstr("role is worker"));
  EXPECT_EQ(who("", refused).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(who("not-a-token-of-this-coordinator", refused).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(refused.role(), "");
}

TEST_F(AuthTest, AWorkerTokenSpeaksOnlyForItsOwnWorkerId) {
  FakeWorker impostor(Channel(test::WorkerToken("w-a")), "w-b");
  impostor.SendHello();
  v1::CoordinatorMessage message;
  EXPECT_FALSE(impostor.Read(message));
  grpc::Status status = impostor.Close();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("speaks for worker 'w-a', not for 'w-b'"));
}

// The failure this fixes: any client that read a job's and its attempt's ids from the API
// could mark another worker's running job SUCCEEDED with an eval loss of its choosing.
TEST_F(AuthTest, WorkerACannotReportForWorkerBsAttempt) {
  Submit(TinySweepSpec("held", 1));
  FakeWorker b(Channel(test::WorkerToken("w-b")), "w-b");
  ASSERT_TRUE(b.SendHello());
  v1::Assignment assignment;
  ASSERT_TRUE(ReadAssignment(b, assignment));
  const std::string job_id = assignment.job().job_id();

  FakeWorker a(Channel(test::WorkerToken("w-a")), "w-a", /*cpu_slots=*/0);
  ASSERT_TRUE(a.SendHello());
  v1::TrainerEvent started;
  started.mutable_started()->set_device("cpu");
  ASSERT_TRUE(a.SendEvent(job_id, assignment.attempt_id(), started));
  v1::WorkerMessage forged;
  v1::AttemptEnded* ended = forged.mutable_attempt_ended();
  ended->set_job_id(job_id);
  ended->set_attempt_id(assignment.attempt_id());
  ended->set_succeeded(true);
  ended->mutable_finished()->set_ok(true);
  ended->mutable_finished()->set_final_eval_loss(0.001);
  ended->set_sequence(2);
  ASSERT_TRUE(a.Send(forged));
  // Every message of a stream is handed to the coordinator's one report thread before its
  // end is answered, so the forged reports are handled before anything sent after Close().
  EXPECT_TRUE(a.Close().ok());

  // The holder's reports still count: had the forged end been stored, the job would have ended
  // and this report would be refused.
  ASSERT_TRUE(b.SendEvent(job_id, assignment.attempt_id(), started));
  EXPECT_TRUE(WaitUntil([&] { return JobState(job_id) == v1::JOB_STATE_RUNNING; }));
  EXPECT_FALSE(Job(job_id).has_final_eval_loss());
}

// The failure this fixes: a stream that said hello with a connected worker's id took over its
// job.
TEST_F(AuthTest, ASecondStreamDoesNotDisplaceAConnectedWorker) {
  Submit(TinySweepSpec("kept", 1));
  FakeWorker first(Channel(test::WorkerToken("w-b")), "w-b");
  ASSERT_TRUE(first.SendHello());
  v1::Assignment assignment;
  ASSERT_TRUE(ReadAssignment(first, assignment));

  FakeWorker second(Channel(test::WorkerToken("w-b")), "w-b");
  ASSERT_TRUE(second.SendHello());
  v1::CoordinatorMessage message;
  EXPECT_FALSE(second.Read(message));
  grpc::Status refused = second.Close();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(refused.error_message(), HasSubstr("connected on another stream"));

  // The first stream still holds the worker: its report is stored, and a cancel reaches it.
  v1::TrainerEvent started;
  started.mutable_started()->set_device("cpu");
  ASSERT_TRUE(first.SendEvent(assignment.job().job_id(), assignment.attempt_id(), started));
  EXPECT_TRUE(
      WaitUntil([&] { return JobState(assignment.job().job_id()) == v1::JOB_STATE_RUNNING; }));
  ASSERT_TRUE(CancelAs(test::kUserToken, assignment.job().job_id()).ok());
  bool cancelled = false;
  while (!cancelled && first.Read(message)) cancelled = message.has_cancel();
  EXPECT_TRUE(cancelled);
}

TEST_F(AuthTest, ReloadedTokensTakeEffectAndRemovedOnesStopWorking) {
  EXPECT_TRUE(SubmitAs(test::kUserToken).ok());
  {
    std::ofstream out(dir_.File("tokens"), std::ios::trunc);
    out << "user rotated-user-token-0123456789\n";
  }
  ASSERT_TRUE(server_->ReloadTokens().ok());
  EXPECT_EQ(SubmitAs(test::kUserToken).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(SubmitAs("rotated-user-token-0123456789").ok());
}

// The failures this fixes: a worker whose token was removed kept its open stream, and was
// assigned and ran new jobs, until it happened to reconnect; and then the job it ran waited
// out the worker's lease although the worker could not come back.
TEST_F(AuthTest, ARevokedWorkersOpenStreamIsEndedAtTheReload) {
  FakeWorker revoked(Channel(test::WorkerToken("w-b")), "w-b");
  ASSERT_TRUE(revoked.SendHello());
  v1::Assignment held;
  Submit(TinySweepSpec("held", 1));
  ASSERT_TRUE(ReadAssignment(revoked, held));
  const std::string job_id = held.job().job_id();
  v1::TrainerEvent started;
  started.mutable_started()->set_device("cpu");
  ASSERT_TRUE(revoked.SendEvent(job_id, held.attempt_id(), started));
  ASSERT_TRUE(WaitUntil([&] { return JobState(job_id) == v1::JOB_STATE_RUNNING; }));
  // Connected once the job runs on w-b, so that the job was w-b's to lose: two slots, one for
  // the job w-b loses and one for a job submitted after.
  FakeWorker kept(Channel(test::WorkerToken("w-a")), "w-a", /*cpu_slots=*/2);
  ASSERT_TRUE(kept.SendHello());
  v1::CoordinatorMessage message;
  ASSERT_TRUE(kept.Read(message));  // welcomed

  ASSERT_TRUE(test::WriteTokenFile(dir_.File("tokens"), {"w-a"}).ok());
  const absl::Time revoked_at = absl::Now();
  ASSERT_TRUE(server_->ReloadTokens().ok());

  // The reload took the attempt back before it returned, a lease (kLease) early: the job is
  // queued again or already placed on w-a.
  v1::GetJobResponse after;
  ASSERT_TRUE(GetJob(job_id, after).ok());
  EXPECT_TRUE(after.job().state() == v1::JOB_STATE_PENDING ||
              (after.job().state() == v1::JOB_STATE_ASSIGNED && after.job().worker_id() == "w-a"))
      << v1::JobState_Name(after.job().state()) << " on " << after.job().worker_id();
  auto lost = std::find_if(after.attempts().begin(), after.attempts().end(),
                           [&](const v1::Attempt& a) { return a.id() == held.attempt_id(); });
  ASSERT_NE(lost, after.attempts().end());
  EXPECT_EQ(lost->state(), v1::ATTEMPT_STATE_LOST);
  EXPECT_THAT(lost->exit().reason(), HasSubstr("worker w-b lost: its token was revoked"));
  v1::Assignment again_held;
  ASSERT_TRUE(ReadAssignment(kept, again_held));
  EXPECT_EQ(again_held.job().job_id(), job_id);
  EXPECT_NE(again_held.attempt_id(), held.attempt_id());
  EXPECT_LT(absl::Now() - revoked_at, kLease / 4);

  while (revoked.Read(message)) {
  }
  // Ended by the server: with the reason, or cancelled where the close overtakes a write in
  // flight (the stream's writes are cancelled with it). Its reconnect is what must fail.
  grpc::Status ended = revoked.Close();
  if (ended.error_code() != grpc::StatusCode::CANCELLED) {
    EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(ended.error_message(), HasSubstr("this worker's token was revoked"));
  }
  FakeWorker again(Channel(test::WorkerToken("w-b")), "w-b");
  again.SendHello();
  EXPECT_EQ(again.Close().error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // The worker whose token stays keeps its stream: a job submitted now reaches it.
  Submit(TinySweepSpec("after", 1));
  v1::Assignment assignment;
  EXPECT_TRUE(ReadAssignment(kept, assignment));
  EXPECT_NE(assignment.job().job_id(), job_id);
}

// The failure this fixes: a worker already disconnected when its token was revoked kept its job
// until its lease ran out, although it could not reconnect. A disconnected worker whose token
// stays keeps its job for its lease, to come back to.
TEST_F(AuthTest, ARevokedDisconnectedWorkersJobIsTakenBackAtTheReload) {
  Submit(TinySweepSpec("held", 2));
  std::map<std::string, std::string> job_of;  // by worker id
  std::map<std::string, uint64_t> attempt_of;
  for (const char* id : {"w-a", "w-b"}) {
    FakeWorker worker(Channel(test::WorkerToken(id)), id);
    ASSERT_TRUE(worker.SendHello());
    v1::Assignment held;
    ASSERT_TRUE(ReadAssignment(worker, held));
    job_of[id] = held.job().job_id();
    attempt_of[id] = held.attempt_id();
    v1::TrainerEvent started;
    started.mutable_started()->set_device("cpu");
    ASSERT_TRUE(worker.SendEvent(job_of[id], held.attempt_id(), started));
    ASSERT_TRUE(WaitUntil([&] { return JobState(job_of[id]) == v1::JOB_STATE_RUNNING; }));
    EXPECT_TRUE(worker.Close().ok());
    ASSERT_TRUE(WaitUntil([&] {
      return absl::StartsWith(Job(job_of[id]).message(),
                              absl::StrCat("worker ", id, " disconnected at "));
    }));
  }

  ASSERT_TRUE(test::WriteTokenFile(dir_.File("tokens"), {"w-a"}).ok());
  const absl::Time revoked_at = absl::Now();
  ASSERT_TRUE(server_->ReloadTokens().ok());

  // Taken back before the reload returned, a lease (kLease) early, with no worker to run it.
  v1::GetJobResponse after;
  ASSERT_TRUE(GetJob(job_of["w-b"], after).ok());
  EXPECT_EQ(after.job().state(), v1::JOB_STATE_PENDING) << v1::JobState_Name(after.job().state());
  ASSERT_EQ(after.attempts_size(), 1);
  EXPECT_EQ(after.attempts(0).id(), attempt_of["w-b"]);
  EXPECT_EQ(after.attempts(0).state(), v1::ATTEMPT_STATE_LOST);
  EXPECT_THAT(after.attempts(0).exit().reason(),
              HasSubstr("worker w-b lost: its token was revoked"));
  EXPECT_LT(absl::Now() - revoked_at, kLease / 4);
  EXPECT_EQ(JobState(job_of["w-a"]), v1::JOB_STATE_RUNNING);

  // w-a comes back to its own job, and then takes the one w-b lost.
  FakeWorker back(Channel(test::WorkerToken("w-a")), "w-a", /*cpu_slots=*/2);
  v1::RunningAttempt* running = back.hello().add_running();
  running->set_job_id(job_of["w-a"]);
  running->set_attempt_id(attempt_of["w-a"]);
  running->add_slot_indices(0);
  ASSERT_TRUE(back.SendHello());
  v1::Assignment again;
  ASSERT_TRUE(ReadAssignment(back, again));
  EXPECT_EQ(again.job().job_id(), job_of["w-b"]);
  EXPECT_NE(again.attempt_id(), attempt_of["w-b"]);
  EXPECT_EQ(JobState(job_of["w-a"]), v1::JOB_STATE_RUNNING);
}

}  // namespace
}  // namespace ablate::coordinator::service_test
