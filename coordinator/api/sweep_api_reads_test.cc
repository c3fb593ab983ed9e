// SweepApi's reads over a real store: ListJobs filtered by several states (and by the singular
// state of older clients) as one union paged by expansion index, RetryJobs of several states,
// and GetJob naming the series asked for that the job has none of beside those it has.
#include <string>
#include <vector>

#include "coordinator/api/api_test_fixture.h"
#include "coordinator/api/sweep_api.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using ::testing::ElementsAre;
using testing::MakeJobs;
using testing::MakeSweep;
using testing::Point;

// Sweep "r" of eight jobs, r-j0 .. r-j7: j1 and j5 cancelled, j2 and j6 failed, j3 assigned
// (with metric points), the others pending.
class SweepApiReadsTest : public testing::ApiTest {
 protected:
  void SetUp() override {
    testing::ApiTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(store_->CreateSweep(MakeSweep("r"), MakeJobs("r", 8), 3).ok());
    ASSERT_TRUE(store_->CancelJobs({"r-j1", "r-j5"}, "by user").ok());
    for (const char* id : {"r-j2", "r-j6"}) {
      absl::StatusOr<v1::Attempt> attempt = store_->StartAttempt(id, "w1");
      ASSERT_TRUE(attempt.ok()) << attempt.status();
      ASSERT_TRUE(store_
                      ->EndAttempt(id, attempt->id(), v1::ATTEMPT_STATE_FAILED, v1::ExitStatus(),
                                   v1::JOB_STATE_FAILED, "exit 1", std::nullopt)
                      .ok());
    }
    absl::StatusOr<v1::Attempt> running = store_->StartAttempt("r-j3", "w1");
    ASSERT_TRUE(running.ok()) << running.status();
    ASSERT_TRUE(store_
                    ->AppendMetrics("r-j3", running->id(),
                                    {Point("train/loss", 1, 3.0), Point("train/loss", 2, 2.5),
                                     Point("eval/loss", 2, 2.7)})
                    .ok());
  }

  // Every page of `request` from its first, each page's job ids as one list.
  std::vector<std::vector<std::string>> Pages(v1::ListJobsRequest request) {
    request.set_sweep_id("r");
    std::vector<std::vector<std::string>> pages;
    do {
      absl::StatusOr<v1::ListJobsResponse> page = api_->ListJobs(request);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok() || pages.size() > 10) break;
      std::vector<std::string>& ids = pages.emplace_back();
      for (const v1::Job& job : page->jobs()) ids.push_back(job.spec().job_id());
      request.set_page_token(page->next_page_token());
    } while (!request.page_token().empty());
    return pages;
  }
};

// A page of several states is the first page_size jobs of their union in expansion order, and
// its token (the next expansion index) continues the union, as one state's pages do.
TEST_F(SweepApiReadsTest, SeveralStatesAreOneUnionPagedByExpansionIndex) {
  v1::ListJobsRequest request;
  request.add_states(v1::JOB_STATE_FAILED);
  request.add_states(v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(Pages(request), ElementsAre(ElementsAre("r-j1", "r-j2", "r-j5", "r-j6")));
  request.set_page_size(3);
  EXPECT_THAT(Pages(request),
              ElementsAre(ElementsAre("r-j1", "r-j2", "r-j5"), ElementsAre("r-j6")));
  request.set_page_size(2);
  EXPECT_THAT(Pages(request),
              ElementsAre(ElementsAre("r-j1", "r-j2"), ElementsAre("r-j5", "r-j6")));
  // A page from the token of one that ended at r-j2.
  request.set_sweep_id("r");
  request.set_page_size(1);
  request.set_page_token("3");
  absl::StatusOr<v1::ListJobsResponse> page = api_->ListJobs(request);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->jobs_size(), 1);
  EXPECT_EQ(page->jobs(0).spec().job_id(), "r-j5");
  EXPECT_EQ(page->next_page_token(), "6");
}

// An older client's singular state is one more state of the union; JOB_STATE_UNSPECIFIED and
// a state asked twice change nothing; a number no JobState has is refused by its field.
TEST_F(SweepApiReadsTest, TheSingularStateIsOneMoreState) {
  v1::ListJobsRequest legacy;
  legacy.set_state(v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(Pages(legacy), ElementsAre(ElementsAre("r-j1", "r-j5")));
  legacy.add_states(v1::JOB_STATE_ASSIGNED);
  legacy.add_states(v1::JOB_STATE_CANCELLED);
  legacy.add_states(v1::JOB_STATE_UNSPECIFIED);
  legacy.set_page_size(2);
  EXPECT_THAT(Pages(legacy), ElementsAre(ElementsAre("r-j1", "r-j3"), ElementsAre("r-j5")));

  v1::ListJobsRequest every;
  every.add_states(v1::JOB_STATE_UNSPECIFIED);
  EXPECT_EQ(Pages(every).at(0).size(), 8u);

  v1::ListJobsRequest bad;
  bad.set_sweep_id("r");
  bad.add_states(static_cast<v1::JobState>(42));
  absl::Status refused = api_->ListJobs(bad).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.message(), "states: 42 is not a job state");
  bad.clear_states();
  bad.set_state(static_cast<v1::JobState>(42));
  EXPECT_EQ(api_->ListJobs(bad).status().message(), "state: 42 is not a job state");
}

// Retrying by states requeues the jobs of each, once each, in expansion order.
TEST_F(SweepApiReadsTest, RetryOfSeveralStatesRequeuesTheirJobsOnce) {
  v1::RetryJobsRequest request;
  request.set_sweep("r");
  request.add_states(v1::JOB_STATE_CANCELLED);
  request.add_states(v1::JOB_STATE_FAILED);
  request.add_states(v1::JOB_STATE_CANCELLED);
  absl::StatusOr<v1::RetryJobsResponse> retried = api_->RetryJobs(request);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_THAT(retried->requeued_job_ids(), ElementsAre("r-j1", "r-j2", "r-j5", "r-j6"));
  EXPECT_EQ(retried->refused_size(), 0);
}

// Names asked that the job has no point of come back once each in the order asked, with every
// series the job has; a read that asks for none, or only names it has, still names those.
TEST_F(SweepApiReadsTest, GetJobNamesUnknownSeriesBesideTheLoggedOnes) {
  v1::GetJobRequest request;
  request.set_job_id("r-j3");
  for (const char* name : {"train/los", "train/loss", "gpu/util", "train/los"}) {
    request.add_metric_names(name);
  }
  absl::StatusOr<v1::GetJobResponse> typo = api_->GetJob(request);
  ASSERT_TRUE(typo.ok()) << typo.status();
  ASSERT_EQ(typo->metrics_size(), 1);
  EXPECT_EQ(typo->metrics(0).name(), "train/loss");
  EXPECT_THAT(typo->unknown_metric_names(), ElementsAre("train/los", "gpu/util"));
  EXPECT_THAT(typo->logged_metric_names(), ElementsAre("eval/loss", "train/loss"));

  request.clear_metric_names();
  for (const std::vector<std::string>& names :
       std::vector<std::vector<std::string>>{{}, {"eval/loss"}}) {
    request.mutable_metric_names()->Assign(names.begin(), names.end());
    absl::StatusOr<v1::GetJobResponse> found = api_->GetJob(request);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_TRUE(found->unknown_metric_names().empty());
    EXPECT_THAT(found->logged_metric_names(), ElementsAre("eval/loss", "train/loss"));
  }

  request.set_job_id("r-j0");  // no point yet: every name asked is unknown, none logged
  request.clear_metric_names();
  request.add_metric_names("train/loss");
  request.add_metric_names("eval/loss");
  absl::StatusOr<v1::GetJobResponse> pending = api_->GetJob(request);
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_THAT(pending->unknown_metric_names(), ElementsAre("train/loss", "eval/loss"));
  EXPECT_TRUE(pending->logged_metric_names().empty());
}

}  // namespace
}  // namespace ablate::coordinator
