// The JSON API's query parameters over real HTTP on loopback: list filters given as repeats or
// commas, single-valued parameters given twice, and a metric name the job never logged.
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/strings/str_cat.h"
#include "coordinator/http/http_test_fixture.h"
#include "coordinator/http/loopback_coordinator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ablate::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::HttpMetricsTest;
using testing::HttpTest;
using testing::Parse;
using ::testing::StartsWith;
using testing::TinySweepSpec;
using testing::ToJson;

std::vector<std::string> JobIds(const v1::ListJobsResponse& response) {
  std::vector<std::string> ids;
  for (const v1::Job& job : response.jobs()) ids.push_back(job.spec().job_id());
  return ids;
}

// A sweep of five pending jobs, the second and fourth then cancelled.
class HttpQueryTest : public HttpTest {
 protected:
  void SetUp() override {
    HttpTest::SetUp();
    if (HasFatalFailure()) return;
    v1::SubmitSweepRequest submit;
    *submit.mutable_spec() = TinySweepSpec("lists", 5);
    const std::string sweep_id =
        Parse<v1::SubmitSweepResponse>(Post("/api/v1/sweeps", ToJson(submit))).sweep().id();
    jobs_ = "/api/v1/sweeps/" + sweep_id + "/jobs";
    all_ = JobIds(Parse<v1::ListJobsResponse>(Get(jobs_)));
    ASSERT_EQ(all_.size(), 5u);
    for (const int i : {1, 3}) {
      v1::CancelRequest cancel;
      cancel.set_id(all_[i]);
      Post("/api/v1/cancel", ToJson(cancel));
    }
  }

  std::vector<std::string> Listed(const std::string& query) {
    return JobIds(Parse<v1::ListJobsResponse>(Get(jobs_ + query)));
  }

  std::string jobs_;  // the sweep's /jobs path
  std::vector<std::string> all_;
};

// The report this answers: ?state=FAILED&state=cancelled answered the failed jobs alone, and
// ?state=failed,cancelled was a 400.
TEST_F(HttpQueryTest, StatesAreAListOfRepeatsOrCommas) {
  const std::vector<std::string> cancelled = {all_[1], all_[3]};
  EXPECT_EQ(Listed("?state=FAILED&state=cancelled"), cancelled);
  EXPECT_EQ(Listed("?state=failed,cancelled"), cancelled);
  EXPECT_EQ(Listed("?state=cancelled,JOB_STATE_CANCELLED&state=Cancelled"), cancelled);
  // Several states come in expansion order, as one state's jobs do.
  EXPECT_EQ(Listed("?state=cancelled&state=pending"), all_);
  EXPECT_EQ(Listed("?state=pending,failed&state=cancelled"), all_);
  EXPECT_THAT(Get(jobs_ + "?state=failed,done", 400),
              HasSubstr("state: 'done' is not a job state"));
}

// Pages of several states follow each other as one state's do: page_size jobs at most, in
// expansion order, each once, the token from the page before.
TEST_F(HttpQueryTest, PagesOfSeveralStatesCoverEachJobOnce) {
  for (const int page_size : {1, 2, 3, 5, 6}) {
    std::vector<std::string> paged;
    std::string token;
    int pages = 0;
    do {
      const v1::ListJobsResponse page = Parse<v1::ListJobsResponse>(Get(absl::StrCat(
          jobs_, "?state=cancelled,pending&page_size=", page_size, "&page_token=", token)));
      EXPECT_LE(page.jobs_size(), page_size);
      for (const v1::Job& job : page.jobs()) paged.push_back(job.spec().job_id());
      token = page.next_page_token();
      ASSERT_LT(++pages, 10) << "the pages never end";
    } while (!token.empty());
    EXPECT_EQ(paged, all_) << "page_size " << page_size;
  }
}

// Two values of one that takes one: which was meant is not for the server to guess. (The same
// value twice is one value: httplib reads a repeated name=value pair once.)
TEST_F(HttpQueryTest, ASingleValuedParameterGivenTwiceIsRefusedByName) {
  const auto refused = [&](const std::string& path, const std::string& what) {
    const nlohmann::json error = nlohmann::json::parse(Get(path, 400));
    EXPECT_EQ(error["code"], "INVALID_ARGUMENT") << path;
    EXPECT_EQ(error["error"], absl::StrCat("query parameter ", what, "; it takes one")) << path;
  };
  refused(jobs_ + "?page_size=1&page_size=2", "'page_size' has 2 values (1, 2)");
  refused(jobs_ + "?state=pending&page_token=1&page_token=", "'page_token' has 2 values (1, )");
  refused("/api/v1/jobs/" + all_[0] + "?max_points=10&metrics=a&max_points=20",
          "'max_points' has 2 values (10, 20)");
  const std::string events = jobs_.substr(0, jobs_.size() - 4) + "events";
  refused(events + "?last_event_id=1&last_event_id=2&last_event_id=3",
          "'last_event_id' has 3 values (1, 2, 3)");
  EXPECT_EQ(Listed("?page_size=2&page_size=2").size(), 2u);
  // The event stream refuses what it does not take, as the other endpoints do.
  EXPECT_THAT(Get(events + "?state=failed", 400),
              HasSubstr("unknown query parameter 'state' (" + events + " takes last_event_id)"));
}

// The 400 of a POST without a JSON content type says what the request sent instead.
TEST_F(HttpQueryTest, APostNamesTheContentTypeItNeeds) {
  httplib::Result form =
      client_->Post("/api/v1/cancel", R"({"id": "x"})", "application/x-www-form-urlencoded");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 400);
  EXPECT_THAT(form->body, HasSubstr("POST /api/v1/cancel needs the header Content-Type: "
                                    "application/json (the body is JSON); this request says "
                                    "'application/x-www-form-urlencoded'"));
  // httplib's client always sends a type: a request without one goes on a plain socket.
  const int fd = testing::ConnectLoopback(server_->http_port());
  ASSERT_GE(fd, 0);
  const std::string request =
      "POST /api/v1/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n"
      "Connection: close\r\n\r\n{\"id\": \"x\"}";
  ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string reply;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) reply.append(buffer, n);
  close(fd);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(reply, HasSubstr("application/json (the body is JSON); this request has none"));
}

TEST_F(HttpMetricsTest, MetricsAreAListOfRepeatsOrCommas) {
  for (const std::string query :
       {"?metrics=train/loss&metrics=eval/loss", "?metrics=eval/loss,train/loss&metrics=eval/loss",
        "?metrics=train/loss,&metrics=,eval/loss"}) {
    const v1::GetJobResponse both = GetJob(query);
    ASSERT_EQ(both.metrics_size(), 2) << query;
    EXPECT_EQ(both.metrics(0).name(), "eval/loss");
    EXPECT_EQ(both.metrics(1).name(), "train/loss");
  }
}

// The report this answers: ?metrics=train/los (a typo) answered "metrics": [] and nothing else.
// The answer is still a 200, since a series may simply have no point yet, but it names what the
// job has no series of and what it has.
TEST_F(HttpMetricsTest, AMetricTheJobNeverLoggedIsNamedWithTheSeriesItHas) {
  const nlohmann::json typo = nlohmann::json::parse(Get("/api/v1/jobs/m-000001?metrics=train/los"));
  EXPECT_EQ(typo["metrics"], nlohmann::json::array());
  EXPECT_EQ(typo["unknownMetricNames"], nlohmann::json({"train/los"}));
  EXPECT_EQ(typo["loggedMetricNames"], nlohmann::json({"eval/loss", "train/loss"}));
  EXPECT_EQ(typo["job"]["spec"]["jobId"], "m-000001");

  const v1::GetJobResponse some =
      GetJob("?metrics=no/such,train/loss&metrics=b/c&metrics=no/such,eval/los");
  ASSERT_EQ(some.metrics_size(), 1);
  EXPECT_EQ(some.metrics(0).name(), "train/loss");
  EXPECT_EQ(some.metrics(0).steps_size(), 1000);
  EXPECT_THAT(some.unknown_metric_names(), ElementsAre("no/such", "b/c", "eval/los"));
  EXPECT_THAT(some.logged_metric_names(), ElementsAre("eval/loss", "train/loss"));

  // A name the job has, or none at all: no name is unknown, and the job's are named as ever.
  for (const std::string query : {"?metrics=eval/loss", ""}) {
    const nlohmann::json found = nlohmann::json::parse(Get("/api/v1/jobs/m-000001" + query));
    EXPECT_EQ(found["unknownMetricNames"], nlohmann::json::array()) << query;
    EXPECT_EQ(found["loggedMetricNames"], nlohmann::json({"eval/loss", "train/loss"})) << query;
  }
}

}  // namespace
}  // namespace ablate::coordinator
