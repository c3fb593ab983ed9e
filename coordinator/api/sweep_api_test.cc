// SweepApi over a real store publishing to a real change feed: the watch (the whole sweep
// first, then one delta per commit, a resume that sends only what was missed, and the end),
// submitted jobs joining the scheduler's queue, updates of a sweep by name, and retries'
// refusals.
#include "coordinator/api/sweep_api.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/model_math.h"
#include "coordinator/api/api_test_fixture.h"
#include "coordinator/feed/change_feed.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"
#include "coordinator/telemetry/telemetry.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using testing::TinySweepSpec;

class SweepApiWatchTest : public testing::ApiTest {
 protected:
  void SetUp() override {
    testing::ApiTest::SetUp();
    if (HasFatalFailure()) return;
    v1::SubmitSweepRequest submit;
    *submit.mutable_spec() = TinySweepSpec("watch", 2);
    absl::StatusOr<v1::SubmitSweepResponse> submitted = api_->SubmitSweep(submit);
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    request_.set_sweep_id(submitted->sweep().id());
    absl::StatusOr<std::vector<v1::Job>> jobs = store_->ListJobs(request_.sweep_id());
    ASSERT_TRUE(jobs.ok()) << jobs.status();
    for (const v1::Job& job : *jobs) job_ids_.push_back(job.spec().job_id());
  }

  void Cancel(const std::string& id) {
    v1::CancelRequest cancel;
    cancel.set_id(id);
    ASSERT_TRUE(api_->Cancel(cancel).ok());
  }

  // Watches until `keep_going` says stop or the watch ends; returns what was sent.
  std::vector<v1::SweepSnapshot> Watch(
      const SweepApi::WatchOptions& options,
      const std::function<bool(const std::vector<v1::SweepSnapshot>&)>& keep_going,
      absl::Status* status = nullptr) {
    std::vector<v1::SweepSnapshot> sent;
    absl::Status watched = api_->Watch(
        request_,
        [&](const v1::SweepSnapshot& s) {
          sent.push_back(s);
          return keep_going(sent);
        },
        [] { return false; }, options);
    EXPECT_TRUE(watched.ok()) << watched;
    if (status != nullptr) *status = watched;
    return sent;
  }

  v1::WatchSweepRequest request_;
  std::vector<std::string> job_ids_;
};

TEST_F(SweepApiWatchTest, WholeSweepThenOneDeltaPerCommitUntilEveryJobEnded) {
  // The changes happen on another thread while the watch waits for them, as in the server.
  std::atomic<size_t> seen{0};
  std::thread changer([&] {
    for (size_t i = 0; i < job_ids_.size(); ++i) {
      // One change per message received, so each lands in its own commit.
      ASSERT_TRUE(testing::WaitUntil([&] { return seen.load() > i; }));
      Cancel(job_ids_[i]);
    }
  });
  std::vector<v1::SweepSnapshot> sent = Watch({}, [&](const auto& so_far) {
    seen = so_far.size();
    return true;
  });
  changer.join();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_FALSE(sent[0].delta());
  EXPECT_EQ(sent[0].jobs_size(), 2);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_TRUE(sent[i].delta());
    ASSERT_EQ(sent[i].jobs_size(), 1);
    EXPECT_EQ(sent[i].jobs(0).spec().job_id(), job_ids_[i - 1]);
    EXPECT_EQ(sent[i].jobs(0).state(), v1::JOB_STATE_CANCELLED);
    EXPECT_GT(sent[i].version(), sent[i - 1].version());
  }
  EXPECT_EQ(sent[2].sweep().state(), v1::SWEEP_STATE_CANCELLED);
}

TEST_F(SweepApiWatchTest, ResumeSendsOnlyWhatWasMissed) {
  const std::vector<v1::SweepSnapshot> first = Watch({}, [](const auto&) { return false; });
  ASSERT_EQ(first.size(), 1u);
  Cancel(job_ids_[0]);

  SweepApi::WatchOptions resume;
  resume.resume_after = first[0].version();
  const std::vector<v1::SweepSnapshot> resumed = Watch(resume, [](const auto&) { return false; });
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_TRUE(resumed[0].delta());
  ASSERT_EQ(resumed[0].jobs_size(), 1);
  EXPECT_EQ(resumed[0].jobs(0).spec().job_id(), job_ids_[0]);
}

TEST_F(SweepApiWatchTest, ResumingAnEndedSweepSendsTheRestAndEnds) {
  const std::vector<v1::SweepSnapshot> first = Watch({}, [](const auto&) { return false; });
  ASSERT_EQ(first.size(), 1u);
  Cancel(request_.sweep_id());
  SweepApi::WatchOptions resume;
  resume.resume_after = first[0].version();
  // Returns by itself: nothing more can change.
  const std::vector<v1::SweepSnapshot> resumed = Watch(resume, [](const auto&) { return true; });
  ASSERT_FALSE(resumed.empty());
  EXPECT_EQ(resumed.back().sweep().state(), v1::SWEEP_STATE_CANCELLED);
}

TEST_F(SweepApiWatchTest, AVersionTheFeedCannotReplayStartsOver) {
  SweepApi::WatchOptions resume;
  resume.resume_after = 1'000'000'000;
  const std::vector<v1::SweepSnapshot> sent = Watch(resume, [](const auto&) { return false; });
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(sent[0].delta());
  EXPECT_EQ(sent[0].jobs_size(), 2);
}

TEST_F(SweepApiWatchTest, UnknownSweepIsNotFound) {
  v1::WatchSweepRequest unknown;
  unknown.set_sweep_id("no-such-sweep");
  absl::Status status = api_->Watch(
      unknown, [](const v1::SweepSnapshot&) { return true; }, [] { return false; });
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
}

TEST_F(SweepApiWatchTest, JobsPageByToken) {
  v1::ListJobsRequest list;
  list.set_sweep_id(request_.sweep_id());
  list.set_page_size(1);
  absl::StatusOr<v1::ListJobsResponse> first = api_->ListJobs(list);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->jobs_size(), 1);
  EXPECT_EQ(first->jobs(0).spec().job_id(), job_ids_[0]);
  ASSERT_FALSE(first->next_page_token().empty());
  list.set_page_token(first->next_page_token());
  absl::StatusOr<v1::ListJobsResponse> second = api_->ListJobs(list);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->jobs_size(), 1);
  EXPECT_EQ(second->jobs(0).spec().job_id(), job_ids_[1]);
  EXPECT_EQ(second->next_page_token(), "");
}

// A sweep file's text is parsed as `ablate submit` parses it: the same spec, so the same id.
TEST_F(SweepApiWatchTest, SweepFileTextIsParsedLikeASweepFile) {
  v1::SubmitSweepRequest request;
  request.set_sweep_file(
      "{\"name\": \"from-text\", \"grid\": {\"seed\": [1, 2]}, "
      "\"fixed\": {\"model\": \"tiny\", \"steps\": 30}}");
  absl::StatusOr<v1::SubmitSweepResponse> submitted = api_->SubmitSweep(request);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_EQ(submitted->sweep().spec().name(), "from-text");
  ASSERT_EQ(submitted->sweep().spec().grid_size(), 1);
  EXPECT_EQ(submitted->sweep().spec().grid(0).values_size(), 2);
  EXPECT_EQ(submitted->sweep().counts().total(), 2u);

  v1::SubmitSweepRequest bad;
  bad.set_sweep_file("name: bad\ngrid:\n  optimizer: [adamx]\n");
  bad.set_sweep_file_name("bad.yaml");
  absl::StatusOr<v1::SubmitSweepResponse> refused = api_->SubmitSweep(bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("bad.yaml:3"), std::string::npos) << refused.status();

  *bad.mutable_spec() = TinySweepSpec("both", 1);
  EXPECT_EQ(api_->SubmitSweep(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

// Each job carries its training FLOPs per token, from the model math, so a client can draw
// curves against FLOPs: per model and context length, and for NSA per its shape.
TEST_F(SweepApiWatchTest, JobsCarryTheirTrainingFlopsPerToken) {
  v1::SubmitSweepRequest request;
  request.set_sweep_file(
      "{\"name\": \"flops\", \"grid\": {\"model\": [\"tiny\", \"qwen3-0.6b\"], "
      "\"context_length\": [64, 128]}, \"fixed\": {\"steps\": 30}}");
  absl::StatusOr<v1::SubmitSweepResponse> submitted = api_->SubmitSweep(request);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  absl::StatusOr<std::vector<v1::Job>> jobs = store_->ListJobs(submitted->sweep().id());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 4u);
  for (const v1::Job& job : *jobs) {
    const v1::TrainConfig& config = job.spec().config();
    absl::StatusOr<v1::ModelConfig> model = ModelByName(config.model());
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_GT(job.spec().train_flops_per_token(), 6.0 * 1000) << config.model();
    EXPECT_DOUBLE_EQ(job.spec().train_flops_per_token(),
                     TrainingFlopsPerToken(*model, config.context_length(), config.attention()))
        << config.model() << " " << config.context_length();
  }
}

// A submitted sweep's jobs join the running scheduler's queue, staged while the store inserts
// them (CreateSweep's `meanwhile`): with no worker connected, the scheduler says so on each.
using SweepApiSubmitTest = testing::ApiTest;

TEST_F(SweepApiSubmitTest, SubmittedJobsJoinTheSchedulersQueue) {
  ASSERT_TRUE(scheduler_->Start().ok());
  v1::SubmitSweepRequest request;
  *request.mutable_spec() = TinySweepSpec("queued", 3);
  absl::StatusOr<v1::SubmitSweepResponse> submitted = api_->SubmitSweep(request);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_FALSE(submitted->already_existed());
  std::vector<v1::Job> jobs;
  EXPECT_TRUE(testing::WaitUntil([&] {
    absl::StatusOr<std::vector<v1::Job>> listed = store_->ListJobs(submitted->sweep().id());
    if (!listed.ok()) return false;
    jobs = *std::move(listed);
    return jobs.size() == 3 && std::all_of(jobs.begin(), jobs.end(), [](const v1::Job& job) {
             return absl::StrContains(job.message(), "no worker is connected");
           });
  }));
  for (const v1::Job& job : jobs) {
    EXPECT_EQ(job.state(), v1::JOB_STATE_PENDING) << job.spec().job_id();
  }
}

}  // namespace
}  // namespace ablate::coordinator

namespace ablate::coordinator {
namespace {

// An update of a sweep by name: new cells join it, dropped ones are flagged, and a name two
// sweeps share is refused; names stand for ids in GetSweep, ListJobs, Watch and Cancel.
TEST_F(SweepApiWatchTest, UpdatesTheSweepOfTheNameAndFindsSweepsByName) {
  Cancel(job_ids_[1]);  // lr 0.002, which the update keeps
  v1::SubmitSweepRequest update;
  *update.mutable_spec() = TinySweepSpec("watch", 3);  // lr 0.001, 0.002 kept; 0.003 new
  update.mutable_spec()->mutable_grid(0)->mutable_values()->erase(
      update.mutable_spec()->mutable_grid(0)->mutable_values()->begin());  // 0.001 dropped
  update.set_update(true);
  absl::StatusOr<v1::SubmitSweepResponse> updated = api_->SubmitSweep(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_TRUE(updated->updated());
  EXPECT_EQ(updated->sweep().id(), request_.sweep_id());
  EXPECT_EQ(updated->reused_jobs(), 1u);
  // lr 0.002 cancelled: it runs again by a retry of its state, not by the update.
  EXPECT_EQ(updated->reused_unfinished(), 1u);
  EXPECT_EQ(updated->reused_failed(), 0u);
  EXPECT_EQ(updated->reused_cancelled(), 1u);
  EXPECT_EQ(updated->added_jobs(), 1u);
  EXPECT_EQ(updated->dropped_jobs(), 1u);
  EXPECT_EQ(updated->sweep().counts().total(), 2u);  // the dropped job is counted apart
  EXPECT_EQ(updated->sweep().counts().dropped(), 1u);
  EXPECT_EQ(updated->sweep().spec().grid(0).values_size(), 2);
  std::vector<v1::Job> jobs = store_->ListJobs(request_.sweep_id()).value();
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_TRUE(jobs[0].dropped());
  EXPECT_FALSE(jobs[1].dropped());
  EXPECT_FALSE(jobs[2].dropped());
  EXPECT_EQ(jobs[2].spec().index(), 2u);
  EXPECT_EQ(jobs[2].max_attempts(), 2u);

  v1::GetSweepRequest by_name;
  by_name.set_sweep_id("watch");
  absl::StatusOr<v1::Sweep> found = api_->GetSweep(by_name);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->id(), request_.sweep_id());
  v1::ListJobsRequest list_by_name;
  list_by_name.set_sweep_id("watch");
  absl::StatusOr<v1::ListJobsResponse> listed = api_->ListJobs(list_by_name);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->jobs_size(), 3);
  v1::WatchSweepRequest watch_by_name;
  watch_by_name.set_sweep_id("watch");
  std::string watched_id;
  EXPECT_TRUE(api_->Watch(
                      watch_by_name,
                      [&](const v1::SweepSnapshot& s) {
                        watched_id = s.sweep().id();
                        return false;
                      },
                      [] { return false; })
                  .ok());
  EXPECT_EQ(watched_id, request_.sweep_id());

  // Another spec of the name, neither an update nor new_sweep (an edited file): refused,
  // naming the sweep, since the user must choose; with new_sweep, a second sweep of the name,
  // which the name then no longer says.
  v1::SubmitSweepRequest twin;
  *twin.mutable_spec() = TinySweepSpec("watch", 1);
  (*twin.mutable_spec()->mutable_fixed())["steps"] = "30";
  absl::StatusOr<v1::SubmitSweepResponse> refused = api_->SubmitSweep(twin);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(
      refused.status().message(),
      ::testing::HasSubstr(absl::StrCat("sweep ", request_.sweep_id(), " is named 'watch' too")));
  twin.set_update(true);
  twin.set_new_sweep(true);
  EXPECT_EQ(api_->SubmitSweep(twin).status().code(), absl::StatusCode::kInvalidArgument);
  twin.set_update(false);
  ASSERT_TRUE(api_->SubmitSweep(twin).ok());
  // The same spec again is a resubmission, new_sweep or not.
  twin.set_new_sweep(false);
  EXPECT_TRUE(api_->SubmitSweep(twin)->already_existed());
  EXPECT_EQ(api_->GetSweep(by_name).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(api_->ListJobs(list_by_name).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(api_->SubmitSweep(update).status().code(), absl::StatusCode::kFailedPrecondition);
  // ... but an update may name the sweep by its id, which must have the spec's name.
  update.set_update_sweep(request_.sweep_id());
  absl::StatusOr<v1::SubmitSweepResponse> chosen = api_->SubmitSweep(update);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_TRUE(chosen->updated());
  EXPECT_EQ(chosen->sweep().id(), request_.sweep_id());
  update.set_update_sweep("fresh-0000");
  EXPECT_EQ(api_->SubmitSweep(update).status().code(), absl::StatusCode::kInvalidArgument);
  update.clear_update_sweep();
  v1::CancelRequest cancel;
  cancel.set_id("watch");
  EXPECT_EQ(api_->Cancel(cancel).status().code(), absl::StatusCode::kFailedPrecondition);

  // Without a sweep of its name, an update is a plain submit.
  *update.mutable_spec() = TinySweepSpec("fresh", 1);
  absl::StatusOr<v1::SubmitSweepResponse> fresh = api_->SubmitSweep(update);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_FALSE(fresh->updated());
  cancel.set_id("fresh");
  absl::StatusOr<v1::CancelResponse> cancelled = api_->Cancel(cancel);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->cancelled_job_ids_size(), 1);
}

// A job id's part after the sweep's, as `ablate plan` prints it, names the job.
TEST_F(SweepApiWatchTest, RetryTakesTheJobIdsPartAfterTheSweeps) {
  const std::vector<v1::Job> jobs = store_->ListJobs(request_.sweep_id()).value();
  ASSERT_FALSE(jobs.empty());
  const std::string& id = jobs[0].spec().job_id();
  v1::RetryJobsRequest request;
  request.set_sweep(request_.sweep_id());
  request.add_job_ids(id.substr(request_.sweep_id().size() + 1));
  absl::StatusOr<v1::RetryJobsResponse> response = api_->RetryJobs(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->refused_size(), 1);  // found, but PENDING: nothing to run again
  EXPECT_EQ(response->refused(0).job_id(), id);
  EXPECT_TRUE(absl::StartsWith(response->refused(0).reason(), "PENDING"))
      << response->refused(0).reason();
}

// A job's short id (after its sweep's id) finds it wherever a job id is asked for alone; one
// that ends several jobs' ids is refused with them named.
TEST_F(SweepApiWatchTest, AJobIsFoundByItsShortId) {
  const std::string& id = job_ids_[0];
  const std::string short_id = id.substr(request_.sweep_id().size() + 1);
  v1::GetJobRequest get;
  get.set_job_id(short_id);
  absl::StatusOr<v1::GetJobResponse> found = api_->GetJob(get);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->job().spec().job_id(), id);
  v1::GetJobLogRequest log;
  log.set_job_id(short_id);
  ASSERT_TRUE(api_->GetJobLog(log).ok());
  v1::CancelRequest cancel;
  cancel.set_id(short_id);
  absl::StatusOr<v1::CancelResponse> cancelled = api_->Cancel(cancel);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  ASSERT_EQ(cancelled->cancelled_job_ids_size(), 1);
  EXPECT_EQ(cancelled->cancelled_job_ids(0), id);

  ASSERT_TRUE(store_->CreateSweep(testing::MakeSweep("x"), testing::MakeJobs("x", 1), 1).ok());
  ASSERT_TRUE(store_->CreateSweep(testing::MakeSweep("y"), testing::MakeJobs("y", 1), 1).ok());
  get.set_job_id("j0");
  const absl::Status ambiguous = api_->GetJob(get).status();
  EXPECT_EQ(ambiguous.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(ambiguous.message(), "x-j0")) << ambiguous;
  get.set_job_id("f00000");
  EXPECT_EQ(api_->GetJob(get).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SweepApiWatchTest, RetryRefusesMalformedRequests) {
  v1::RetryJobsRequest request;
  EXPECT_EQ(api_->RetryJobs(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.set_sweep(request_.sweep_id());
  EXPECT_EQ(api_->RetryJobs(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.add_states(v1::JOB_STATE_SUCCEEDED);
  absl::Status succeeded = api_->RetryJobs(request).status();
  EXPECT_EQ(succeeded.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(succeeded.message(),
            "states: JOB_STATE_SUCCEEDED cannot be retried; only JOB_STATE_FAILED and "
            "JOB_STATE_CANCELLED can");
  request.clear_states();
  request.add_states(v1::JOB_STATE_FAILED);
  absl::StatusOr<v1::RetryJobsResponse> none = api_->RetryJobs(request);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->requeued_job_ids_size(), 0);
  request.set_sweep("no-such-sweep");
  EXPECT_EQ(api_->RetryJobs(request).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ablate::coordinator
