// The whole CoordinatorServer over real gRPC on loopback and a real database file: what only
// the parts wired together show.
#include <string>
#include <vector>

#include "coordinator/service/service_test_fixture.h"

namespace ablate::coordinator::service_test {
namespace {

v1::WorkerMessage LogTail(const v1::Assignment& assignment, const std::vector<std::string>& lines) {
  v1::WorkerMessage message;
  message.mutable_log_tail()->set_job_id(assignment.job().job_id());
  message.mutable_log_tail()->set_attempt_id(assignment.attempt_id());
  for (const std::string& line : lines) message.mutable_log_tail()->add_lines(line);
  return message;
}

// Lines a worker sends after it reported its attempt ended are served after the coordinator
// restarts, from its database, as the lines that came before the end are.
TEST_F(ServiceTest, LateLinesOfAnEndedAttemptOutliveARestart) {
  Submit(TinySweepSpec("late", 1));
  FakeWorker worker(channel_, "w1");
  ASSERT_TRUE(worker.SendHello());
  v1::CoordinatorMessage message;
  while (worker.Read(message) && !message.has_assign()) {
  }
  const v1::Assignment assignment = message.assign();
  const std::string job_id = assignment.job().job_id();
  ASSERT_FALSE(job_id.empty());

  ASSERT_TRUE(worker.Send(LogTail(assignment, {"step 1", "done"})));
  v1::WorkerMessage ended;
  ended.mutable_attempt_ended()->set_job_id(job_id);
  ended.mutable_attempt_ended()->set_attempt_id(assignment.attempt_id());
  ended.mutable_attempt_ended()->set_succeeded(true);
  ASSERT_TRUE(worker.Send(ended));
  const std::vector<std::string> late = {"step 1", "done", "a line written after the end"};
  ASSERT_TRUE(worker.Send(LogTail(assignment, late)));

  const auto job_log = [&] {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::GetJobLogRequest request;
    request.set_job_id(job_id);
    v1::JobLog log;
    EXPECT_TRUE(sweeps_->GetJobLog(&context, request, &log).ok());
    return std::vector<std::string>(log.lines().begin(), log.lines().end());
  };
  ASSERT_TRUE(WaitUntil([&] { return JobState(job_id) == v1::JOB_STATE_SUCCEEDED; }));
  ASSERT_TRUE(WaitUntil([&] { return job_log() == late; }));
  EXPECT_TRUE(worker.Close().ok());

  StartServer(CoordinatorOptions());  // the same database file
  EXPECT_EQ(job_log(), late);
}

}  // namespace
}  // namespace ablate::coordinator::service_test
