// SweepService over real gRPC on loopback: submit, list, cancel and watch, against a whole
// CoordinatorServer with its database in a temporary directory.
#include "coordinator/service/service_test_fixture.h"

namespace ablate::coordinator::service_test {
namespace {

TEST_F(ServiceTest, SubmitListGetAndResubmit) {
  v1::SubmitSweepResponse first = Submit(TinySweepSpec("grid", 3));
  EXPECT_FALSE(first.already_existed());
  EXPECT_EQ(first.sweep().counts().total(), 3u);
  EXPECT_EQ(first.sweep().state(), v1::SWEEP_STATE_ACTIVE);

  v1::SubmitSweepResponse again = Submit(TinySweepSpec("grid", 3));
  EXPECT_TRUE(again.already_existed());
  EXPECT_EQ(again.sweep().id(), first.sweep().id());

  grpc::ClientContext list_context;
  SetDeadline(list_context);
  v1::ListSweepsResponse list;
  ASSERT_TRUE(sweeps_->ListSweeps(&list_context, {}, &list).ok());
  ASSERT_EQ(list.sweeps_size(), 1);
  EXPECT_EQ(list.sweeps(0).id(), first.sweep().id());

  grpc::ClientContext get_context;
  SetDeadline(get_context);
  v1::GetSweepRequest get;
  get.set_sweep_id(first.sweep().id());
  v1::Sweep sweep;
  ASSERT_TRUE(sweeps_->GetSweep(&get_context, get, &sweep).ok());
  EXPECT_EQ(sweep.spec().name(), "grid");

  v1::ListJobsResponse jobs = ListJobs(first.sweep().id());
  ASSERT_EQ(jobs.jobs_size(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(jobs.jobs(i).spec().index(), static_cast<uint32_t>(i));

  grpc::ClientContext missing_context;
  SetDeadline(missing_context);
  get.set_sweep_id("no-such-sweep");
  EXPECT_EQ(sweeps_->GetSweep(&missing_context, get, &sweep).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// A coordinator that checks no tokens lets every call through, so it says every caller may act.
TEST_F(ServiceTest, WhoAmIIsAUserWhereNoTokensAreChecked) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::WhoAmIResponse response;
  grpc::Status status = sweeps_->WhoAmI(&context, v1::WhoAmIRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.role(), "user");
}

TEST_F(ServiceTest, InvalidSpecIsInvalidArgument) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::SubmitSweepRequest request;
  request.mutable_spec()->set_name("empty");
  v1::SubmitSweepResponse response;
  grpc::Status status = sweeps_->SubmitSweep(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(status.error_message().empty());
}

TEST_F(ServiceTest, CancelEndsPendingJobs) {
  std::string sweep_id = Submit(TinySweepSpec("cancel-me", 2)).sweep().id();
  grpc::ClientContext context;
  SetDeadline(context);
  v1::CancelRequest request;
  request.set_id(sweep_id);
  v1::CancelResponse response;
  ASSERT_TRUE(sweeps_->Cancel(&context, request, &response).ok());
  EXPECT_EQ(response.cancelled_job_ids_size(), 2);
  v1::ListJobsResponse jobs = ListJobs(sweep_id);
  for (const v1::Job& job : jobs.jobs()) EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);

  grpc::ClientContext unknown_context;
  SetDeadline(unknown_context);
  request.set_id("nothing-by-this-name");
  EXPECT_EQ(sweeps_->Cancel(&unknown_context, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServiceTest, WatchSweepSendsSnapshotsUntilEveryJobEnded) {
  std::string sweep_id = Submit(TinySweepSpec("watched", 2)).sweep().id();
  grpc::ClientContext context;
  SetDeadline(context);
  v1::WatchSweepRequest request;
  request.set_sweep_id(sweep_id);
  auto reader = sweeps_->WatchSweep(&context, request);
  v1::SweepSnapshot snapshot;
  ASSERT_TRUE(reader->Read(&snapshot));
  EXPECT_EQ(snapshot.sweep().id(), sweep_id);
  EXPECT_EQ(snapshot.jobs_size(), 2);

  grpc::ClientContext cancel_context;
  SetDeadline(cancel_context);
  v1::CancelRequest cancel;
  cancel.set_id(sweep_id);
  v1::CancelResponse cancelled;
  ASSERT_TRUE(sweeps_->Cancel(&cancel_context, cancel, &cancelled).ok());
  while (reader->Read(&snapshot)) {
  }
  EXPECT_EQ(snapshot.sweep().state(), v1::SWEEP_STATE_CANCELLED);
  EXPECT_TRUE(reader->Finish().ok());
}

}  // namespace
}  // namespace ablate::coordinator::service_test
