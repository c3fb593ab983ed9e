// The whole CoordinatorServer over real gRPC on loopback and a real database file: what only
// the parts wired together show, restarts on the same database above all.
#include <map>
#include <string>
#include <vector>

#include "coordinator/service/service_test_fixture.h"
#include "tests/support/tokens.h"

namespace ablate::coordinator::service_test {
namespace {

using ::testing::HasSubstr;

v1::WorkerMessage LogTail(const v1::Assignment& assignment, const std::vector<std::string>& lines) {
  v1::WorkerMessage message;
  message.mutable_log_tail()->set_job_id(assignment.job().job_id());
  message.mutable_log_tail()->set_attempt_id(assignment.attempt_id());
  for (const std::string& line : lines) message.mutable_log_tail()->add_lines(line);
  return message;
}

v1::WorkerMessage Succeeded(const v1::Assignment& assignment) {
  v1::WorkerMessage message;
  message.mutable_attempt_ended()->set_job_id(assignment.job().job_id());
  message.mutable_attempt_ended()->set_attempt_id(assignment.attempt_id());
  message.mutable_attempt_ended()->set_succeeded(true);
  return message;
}

class ServerTest : public ServiceTest {
 protected:
  // The lines GetJobLog returns for the job.
  std::vector<std::string> JobLog(const std::string& job_id) {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::GetJobLogRequest request;
    request.set_job_id(job_id);
    v1::JobLog log;
    EXPECT_TRUE(sweeps_->GetJobLog(&context, request, &log).ok());
    return {log.lines().begin(), log.lines().end()};
  }
};

// Lines a worker sends after it reported its attempt ended are served after the coordinator
// restarts, from its database, as the lines that came before the end are.
TEST_F(ServerTest, LateLinesOfAnEndedAttemptOutliveARestart) {
  Submit(TinySweepSpec("late", 1));
  FakeWorker worker(channel_, "w1");
  ASSERT_TRUE(worker.SendHello());
  v1::Assignment assignment;
  ASSERT_TRUE(ReadAssignment(worker, assignment));
  const std::string job_id = assignment.job().job_id();

  ASSERT_TRUE(worker.Send(LogTail(assignment, {"step 1", "done"})));
  ASSERT_TRUE(worker.Send(Succeeded(assignment)));
  const std::vector<std::string> late = {"step 1", "done", "a line written after the end"};
  ASSERT_TRUE(worker.Send(LogTail(assignment, late)));

  ASSERT_TRUE(WaitUntil([&] { return JobState(job_id) == v1::JOB_STATE_SUCCEEDED; }));
  ASSERT_TRUE(WaitUntil([&] { return JobLog(job_id) == late; }));
  EXPECT_TRUE(worker.Close().ok());

  StartServer(CoordinatorOptions());  // the same database file
  EXPECT_EQ(JobLog(job_id), late);
}

// The failure this fixes: a late tail of an attempt that ended before the coordinator started
// was taken for a running attempt's and kept in memory only, so the next restart lost it.
TEST_F(ServerTest, LateLinesOfAnAttemptThatEndedBeforeARestartOutliveTheNext) {
  Submit(TinySweepSpec("late", 1));
  v1::Assignment assignment;
  {
    FakeWorker worker(channel_, "w1");
    ASSERT_TRUE(worker.SendHello());
    ASSERT_TRUE(ReadAssignment(worker, assignment));
    ASSERT_TRUE(worker.Send(LogTail(assignment, {"step 1"})));
    ASSERT_TRUE(worker.Send(Succeeded(assignment)));
    ASSERT_TRUE(
        WaitUntil([&] { return JobState(assignment.job().job_id()) == v1::JOB_STATE_SUCCEEDED; }));
    EXPECT_TRUE(worker.Close().ok());
  }
  const std::string job_id = assignment.job().job_id();
  ASSERT_EQ(JobLog(job_id), std::vector<std::string>{"step 1"});

  StartServer(CoordinatorOptions());  // the same database file
  const std::vector<std::string> late = {"step 1", "a line written after the end"};
  {
    FakeWorker worker(channel_, "w1");
    ASSERT_TRUE(worker.SendHello());
    ASSERT_TRUE(worker.Send(LogTail(assignment, late)));
    EXPECT_TRUE(worker.Close().ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return JobLog(job_id) == late; }));

  StartServer(CoordinatorOptions());  // and again: only the stored tail is left
  EXPECT_EQ(JobLog(job_id), late);
}

// Far beyond any wait of these tests, so a job that comes back within one did not come back
// because a lease ran out.
constexpr absl::Duration kLease = absl::Seconds(60);

// A coordinator that checks tokens: w-a and w-b hold worker tokens; the fixture's stub carries
// the user token.
class TokenServerTest : public ServerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(test::WriteTokenFile(dir_.File("tokens"), {"w-a", "w-b"}).ok());
    StartWithTokens(kLease);
  }
};

// The failure this fixes: a restarted coordinator knows no stream of a worker that disconnected
// before it started, so a reload revoking that worker's token left its job to wait out the
// lease, although the worker could not come back. A worker whose token stays keeps its job.
TEST_F(TokenServerTest, AWorkerRevokedAfterARestartLosesItsJobAtTheReload) {
  Submit(TinySweepSpec("held", 2));
  std::map<std::string, v1::Assignment> held;  // by worker id
  for (const char* id : {"w-a", "w-b"}) {
    FakeWorker worker(Channel(test::WorkerToken(id)), id);
    ASSERT_TRUE(worker.SendHello());
    ASSERT_TRUE(ReadAssignment(worker, held[id]));
    const std::string job_id = held[id].job().job_id();
    v1::TrainerEvent started;
    started.mutable_started()->set_device("cpu");
    ASSERT_TRUE(worker.SendEvent(job_id, held[id].attempt_id(), started));
    ASSERT_TRUE(WaitUntil([&] { return JobState(job_id) == v1::JOB_STATE_RUNNING; }));
    EXPECT_TRUE(worker.Close().ok());
  }

  StartWithTokens(kLease);  // the same database: both workers are restored as disconnected
  ASSERT_TRUE(test::WriteTokenFile(dir_.File("tokens"), {"w-a"}).ok());
  const absl::Time revoked_at = absl::Now();
  ASSERT_TRUE(server_->ReloadTokens().ok());

  // Taken back before the reload returned, a lease (kLease) early, with no worker to run it.
  v1::GetJobResponse after;
  ASSERT_TRUE(GetJob(held["w-b"].job().job_id(), after).ok());
  EXPECT_EQ(after.job().state(), v1::JOB_STATE_PENDING) << v1::JobState_Name(after.job().state());
  ASSERT_EQ(after.attempts_size(), 1);
  EXPECT_EQ(after.attempts(0).id(), held["w-b"].attempt_id());
  EXPECT_EQ(after.attempts(0).state(), v1::ATTEMPT_STATE_LOST);
  EXPECT_THAT(after.attempts(0).exit().reason(),
              HasSubstr("worker w-b lost: its token was revoked"));
  EXPECT_LT(absl::Now() - revoked_at, kLease / 4);

  const v1::Job kept = Job(held["w-a"].job().job_id());
  EXPECT_EQ(kept.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(kept.current_attempt_id(), held["w-a"].attempt_id());
  EXPECT_EQ(kept.worker_id(), "w-a");
}

}  // namespace
}  // namespace ablate::coordinator::service_test
