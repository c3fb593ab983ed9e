// The HTTP endpoints of a whole CoordinatorServer on loopback, read with httplib's client.
#include <httplib.h>

#include <memory>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "coordinator/http/http_test_fixture.h"
#include "coordinator/http/loopback_coordinator.h"
#include "coordinator/server.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using ::testing::HasSubstr;
using testing::HttpMetricsTest;
using testing::HttpTest;
using ::testing::Not;
using testing::Parse;
using testing::TempDir;
using testing::TinySweepSpec;
using testing::ToJson;

TEST_F(HttpTest, HealthzIsOk) { EXPECT_EQ(Get("/healthz"), "ok"); }

TEST_F(HttpTest, MetricsExposeJobsAndWorkers) {
  SubmitTinySweep();
  std::string text = Get("/metrics");
  EXPECT_THAT(text, HasSubstr("ablate_jobs{state=\"pending\"} 2"));
  EXPECT_THAT(text, HasSubstr("ablate_workers_connected 0"));
  EXPECT_THAT(text, HasSubstr("ablate_sweeps_submitted_total 1"));
  EXPECT_THAT(text, HasSubstr("ablate_rpcs_total{method=\"SubmitSweep\"} 1"));
}

// Every response is counted by route and code, the API's refusals too; an id in a path is not
// a label (a client could otherwise add a series per made-up id).
TEST_F(HttpTest, MetricsCountResponsesByRouteAndCode) {
  Get("/api/v1/sweeps");
  Get("/api/v1/sweeps");
  Get("/api/v1/sweeps/no-such-sweep", 404);
  Get("/api/v1/jobs/no-such-job-either", 404);
  Get("/healthz");
  // A response is counted once written, so the client may read it first: poll, bounded.
  const std::vector<std::string> counted = {
      "ablate_http_responses_total{code=\"200\",route=\"api\"} 2",
      "ablate_http_responses_total{code=\"404\",route=\"api\"} 2",
      "ablate_http_responses_total{code=\"200\",route=\"healthz\"} 1"};
  const auto all_in = [&](const std::string& text) {
    return absl::c_all_of(counted,
                          [&](const std::string& s) { return absl::StrContains(text, s); });
  };
  std::string text = Get("/metrics");
  for (int i = 0; i < 100 && !all_in(text); ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    text = Get("/metrics");
  }
  for (const std::string& series : counted) EXPECT_THAT(text, HasSubstr(series));
  EXPECT_THAT(text, Not(HasSubstr("no-such")));
}

TEST_F(HttpTest, JsonApiAnswersWithTheServiceMessages) {
  std::string sweep_id = SubmitTinySweep();

  std::string listed = Get("/api/v1/sweeps");
  EXPECT_THAT(listed, HasSubstr("\"createdAt\""));
  v1::ListSweepsResponse sweeps = Parse<v1::ListSweepsResponse>(listed);
  ASSERT_EQ(sweeps.sweeps_size(), 1);
  EXPECT_EQ(sweeps.sweeps(0).id(), sweep_id);

  EXPECT_EQ(Parse<v1::Sweep>(Get("/api/v1/sweeps/" + sweep_id)).counts().pending(), 2u);
  v1::ListJobsResponse jobs =
      Parse<v1::ListJobsResponse>(Get("/api/v1/sweeps/" + sweep_id + "/jobs"));
  ASSERT_EQ(jobs.jobs_size(), 2);

  const std::string job_id = jobs.jobs(0).spec().job_id();
  v1::GetJobResponse job =
      Parse<v1::GetJobResponse>(Get("/api/v1/jobs/" + job_id + "?max_points=200"));
  EXPECT_EQ(job.job().spec().job_id(), job_id);
  EXPECT_EQ(job.job().state(), v1::JOB_STATE_PENDING);

  v1::ListWorkersResponse workers = Parse<v1::ListWorkersResponse>(Get("/api/v1/workers"));
  EXPECT_EQ(workers.workers_size(), 0);

  v1::CancelRequest cancel;
  cancel.set_id(job_id);
  v1::CancelResponse cancelled = Parse<v1::CancelResponse>(Post("/api/v1/cancel", ToJson(cancel)));
  ASSERT_EQ(cancelled.cancelled_job_ids_size(), 1);
  EXPECT_EQ(cancelled.cancelled_job_ids(0), job_id);
}

// POST /api/v1/sweeps takes a sweep file's text (sweepFile), checked as `ablate submit` checks
// it, each problem placed in the file by the name sweepFileName gives it.
TEST_F(HttpTest, ASweepFilesTextIsSubmittedWithItsProblemsPlaced) {
  const std::string grid = "name: from-text\ngrid:\n  seed: [1, 2]\n";
  const std::string good = R"({"sweepFile": ")" + absl::StrReplaceAll(grid, {{"\n", "\\n"}}) +
                           R"(", "sweepFileName": "text.yaml"})";
  EXPECT_EQ(Parse<v1::SubmitSweepResponse>(Post("/api/v1/sweeps", good)).sweep().counts().total(),
            2u);
  v1::SubmitSweepRequest bad;
  bad.set_sweep_file(grid + "  optimizer: [adamx]\n");
  bad.set_sweep_file_name("text.yaml");
  google::protobuf::Struct refused =
      Parse<google::protobuf::Struct>(Post("/api/v1/sweeps", ToJson(bad), 400));
  EXPECT_THAT(refused.fields().at("error").string_value(),
              HasSubstr("text.yaml:4:15: grid.optimizer: unknown optimizer 'adamx'"));
}

TEST_F(HttpTest, JobsComeInPages) {
  v1::SubmitSweepRequest submit;
  *submit.mutable_spec() = TinySweepSpec("paged", 5);
  const std::string sweep_id =
      Parse<v1::SubmitSweepResponse>(Post("/api/v1/sweeps", ToJson(submit))).sweep().id();
  const std::string jobs = "/api/v1/sweeps/" + sweep_id + "/jobs";
  const v1::ListJobsResponse all = Parse<v1::ListJobsResponse>(Get(jobs));
  ASSERT_EQ(all.jobs_size(), 5);
  EXPECT_EQ(all.next_page_token(), "");

  std::vector<std::string> paged;
  std::string token;
  int pages = 0;
  do {
    v1::ListJobsResponse page =
        Parse<v1::ListJobsResponse>(Get(jobs + "?page_size=2&page_token=" + token));
    EXPECT_LE(page.jobs_size(), 2);
    for (const v1::Job& job : page.jobs()) paged.push_back(job.spec().job_id());
    token = page.next_page_token();
    ASSERT_LT(++pages, 10) << "the pages never end";
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(paged.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(paged[i], all.jobs(i).spec().job_id());

  // An error's body: its message, then its code, the keys always in that order (HttpError).
  const std::string bad = Get(jobs + "?page_token=not-a-token", 400);
  EXPECT_EQ(bad.rfind("{\"error\":\"page_token 'not-a-token' is not one ListJobs gave", 0), 0u)
      << bad;
  EXPECT_NE(bad.find("\",\"code\":\"INVALID_ARGUMENT\"}"), std::string::npos) << bad;
}

// ?state= keeps the jobs in one state, named as the enum or its short form in any case; a
// parameter the endpoint does not take is refused by name rather than answered unfiltered.
TEST_F(HttpTest, JobsFilterByState) {
  v1::SubmitSweepRequest submit;
  *submit.mutable_spec() = TinySweepSpec("filtered", 3);
  const std::string sweep_id =
      Parse<v1::SubmitSweepResponse>(Post("/api/v1/sweeps", ToJson(submit))).sweep().id();
  const std::string jobs = "/api/v1/sweeps/" + sweep_id + "/jobs";
  const v1::ListJobsResponse all = Parse<v1::ListJobsResponse>(Get(jobs));
  ASSERT_EQ(all.jobs_size(), 3);
  v1::CancelRequest cancel;
  cancel.set_id(all.jobs(1).spec().job_id());
  Post("/api/v1/cancel", ToJson(cancel));

  for (const std::string state : {"cancelled", "JOB_STATE_CANCELLED", "Cancelled"}) {
    const v1::ListJobsResponse cancelled =
        Parse<v1::ListJobsResponse>(Get(absl::StrCat(jobs, "?state=", state)));
    ASSERT_EQ(cancelled.jobs_size(), 1) << state;
    EXPECT_EQ(cancelled.jobs(0).spec().job_id(), all.jobs(1).spec().job_id());
  }
  EXPECT_EQ(Parse<v1::ListJobsResponse>(Get(jobs + "?state=pending&page_size=1")).jobs_size(), 1);
  EXPECT_EQ(Parse<v1::ListJobsResponse>(Get(jobs + "?state=failed")).jobs_size(), 0);

  EXPECT_THAT(Get(jobs + "?state=done", 400), HasSubstr("'done' is not a job state"));
  EXPECT_THAT(Get(jobs + "?stat=failed", 400), HasSubstr("unknown query parameter 'stat'"));
  EXPECT_THAT(Get("/api/v1/jobs/" + all.jobs(0).spec().job_id() + "?metric=train/loss", 400),
              HasSubstr("takes metrics, max_points"));
  const std::string log = "/api/v1/jobs/" + all.jobs(0).spec().job_id() + "/log";
  EXPECT_THAT(Get(log + "?page_size=1", 400),
              HasSubstr("unknown query parameter 'page_size' (" + log + " takes attempt_id)"));
  EXPECT_THAT(Get(log + "?attempt_id=first", 400),
              HasSubstr("attempt_id: expected a non-negative integer"));
  EXPECT_THAT(Get(log + "?attempt_id=99999", 404),
              HasSubstr("has no attempt of id 99999 (it has none yet)"));
  // Endpoints that take none refuse any: /sweeps has no paging, though /sweeps/ID/jobs does.
  for (const std::string& path : {std::string("/api/v1/sweeps"), "/api/v1/sweeps/" + sweep_id,
                                  std::string("/api/v1/workers"), std::string("/api/v1/whoami")}) {
    EXPECT_THAT(Get(path + "?page_size=1", 400),
                HasSubstr("unknown query parameter 'page_size' (" + path + " takes none)"));
  }
}

TEST_F(HttpMetricsTest, MetricsNamesTheSeriesReturned) {
  v1::GetJobResponse one = GetJob("?metrics=eval/loss");
  ASSERT_EQ(one.metrics_size(), 1);
  EXPECT_EQ(one.metrics(0).name(), "eval/loss");
  EXPECT_EQ(one.metrics(0).steps_size(), 20);

  v1::GetJobResponse both = GetJob("?metrics=train/loss,eval/loss");
  ASSERT_EQ(both.metrics_size(), 2);
  EXPECT_EQ(both.metrics(0).name(), "eval/loss");
  EXPECT_EQ(both.metrics(1).name(), "train/loss");

  EXPECT_EQ(GetJob("").metrics_size(), 2);  // none named: every series
}

TEST_F(HttpMetricsTest, MaxPointsThinsEachSeriesKeepingItsEnds) {
  v1::GetJobResponse thin = GetJob("?metrics=train/loss&max_points=50");
  ASSERT_EQ(thin.metrics_size(), 1);
  const v1::MetricSeries& loss = thin.metrics(0);
  ASSERT_EQ(loss.steps_size(), 50);
  ASSERT_EQ(loss.values_size(), 50);
  EXPECT_EQ(loss.steps(0), 0);
  EXPECT_EQ(loss.steps(49), 1999);
  for (int i = 0; i < 50; ++i) {
    if (i > 0) {
      EXPECT_GT(loss.steps(i), loss.steps(i - 1));
    }
    // Thinning picks stored points; it never averages them into new values.
    EXPECT_DOUBLE_EQ(loss.values(i), 1000.0 / (loss.steps(i) + 1)) << "step " << loss.steps(i);
  }
  // Without max_points a series holds at most the API's default of 1,000.
  EXPECT_EQ(GetJob("?metrics=train/loss").metrics(0).steps_size(), 1000);
  // More than the series holds returns every point.
  EXPECT_EQ(GetJob("?metrics=eval/loss&max_points=500").metrics(0).steps_size(), 20);

  google::protobuf::Struct bad =
      Parse<google::protobuf::Struct>(Get("/api/v1/jobs/m-000001?max_points=many", 400));
  EXPECT_EQ(bad.fields().at("code").string_value(), "INVALID_ARGUMENT");
}

// A URL is bounded like a body: httplib refuses a request line past 8 KiB with 414 before any
// route runs, and the server goes on serving.
TEST_F(HttpTest, AnOverlongUrlIsRefusedWith414) {
  google::protobuf::Struct refused =
      Parse<google::protobuf::Struct>(Get("/api/v1/sweeps/" + std::string(9000, 'x'), 414));
  EXPECT_EQ(refused.fields().at("code").string_value(), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(refused.fields().at("error").string_value(),
            "the URL is longer than 8 KiB, the most this coordinator reads");
  EXPECT_EQ(Get("/healthz"), "ok");
}

TEST_F(HttpTest, ErrorsAreJson) {
  google::protobuf::Struct missing =
      Parse<google::protobuf::Struct>(Get("/api/v1/sweeps/no-such-sweep", 404));
  EXPECT_EQ(missing.fields().at("code").string_value(), "NOT_FOUND");
  EXPECT_THAT(missing.fields().at("error").string_value(), HasSubstr("no-such-sweep"));

  google::protobuf::Struct malformed =
      Parse<google::protobuf::Struct>(Post("/api/v1/sweeps", "{not json", 400));
  EXPECT_EQ(malformed.fields().at("code").string_value(), "INVALID_ARGUMENT");
  EXPECT_THAT(
      malformed.fields().at("error").string_value(),
      HasSubstr("the request body is not JSON of the message ablate.v1.SubmitSweepRequest"));

  google::protobuf::Struct unknown =
      Parse<google::protobuf::Struct>(Get("/api/v1/nothing-here", 404));
  EXPECT_EQ(unknown.fields().at("code").string_value(), "NOT_FOUND");

  // An action asked for with GET names the method it takes.
  for (const std::string action : {"/api/v1/cancel", "/api/v1/sweeps/some-sweep/retry"}) {
    httplib::Result result = client_->Get(action);
    ASSERT_TRUE(result) << action;
    EXPECT_EQ(result->status, 405) << action;
    EXPECT_EQ(result->get_header_value("Allow"), "POST");
    EXPECT_THAT(result->body, HasSubstr("with POST only"));
  }
}

TEST_F(HttpTest, ServesTheWebDirectory) {
  httplib::Result index = client_->Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_THAT(index->body, HasSubstr("<title>ablate</title>"));
  EXPECT_THAT(index->get_header_value("Content-Type"), HasSubstr("text/html"));

  httplib::Result script = client_->Get("/static/app.js");
  ASSERT_TRUE(script);
  EXPECT_EQ(script->status, 200);
  EXPECT_THAT(script->get_header_value("Content-Type"), HasSubstr("javascript"));
}

// A web directory without a built dashboard: the API still answers, and / says how to build.
TEST(HttpWithoutDashboardTest, RootSaysHowToBuildTheDashboard) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server =
      testing::StartLoopbackCoordinator(dir, dir.File("no-such-dist"));
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->http_port());
  httplib::Result index = client.Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 503);
  EXPECT_THAT(index->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(index->body, HasSubstr("The dashboard is not built"));
  EXPECT_THAT(index->body, HasSubstr("npm ci"));
  httplib::Result sweeps = client.Get("/api/v1/sweeps");
  ASSERT_TRUE(sweeps);
  EXPECT_EQ(sweeps->status, 200);
  (*server)->Shutdown();
}

}  // namespace
}  // namespace ablate::coordinator
