// The HTTP face's guard over real sockets: which routes need which token, and that a page of
// another site cannot make a browser change anything.
#include <httplib.h>

#include <fstream>
#include <memory>
#include <string>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/strings/str_cat.h"
#include "coordinator/http/http_server.h"
#include "coordinator/http/http_test_fixture.h"
#include "coordinator/http/loopback_coordinator.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/tokens.h"

namespace ablate::coordinator {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

class HttpAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.File("index.html")) << "<!doctype html><title>ablate</title>";
    ASSERT_TRUE(test::WriteTokenFile(dir_.File("tokens"), {"w-a"}).ok());
    absl::StatusOr<std::unique_ptr<CoordinatorServer>> server =
        testing::StartLoopbackCoordinator(dir_, dir_.path(), dir_.File("tokens"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = testing::ClientOf(*server_);
  }
  void TearDown() override { server_->Shutdown(); }

  static httplib::Headers As(const std::string& token) {
    if (token.empty()) return {};
    return {{"Authorization", absl::StrCat("Bearer ", token)}};
  }

  httplib::Result Get(const std::string& path, const std::string& token) {
    return client_->Get(path, As(token));
  }

  httplib::Result Post(const std::string& path, const std::string& token, const std::string& body,
                       const std::string& type, httplib::Headers extra = {}) {
    httplib::Headers headers = As(token);
    headers.insert(extra.begin(), extra.end());
    return client_->Post(path, headers, body, type);
  }

  // Submits a one-job sweep as the user; its id.
  std::string Submit() {
    v1::SubmitSweepRequest request;
    *request.mutable_spec() = testing::TinySweepSpec("guarded", 1);
    std::string json;
    EXPECT_TRUE(google::protobuf::util::MessageToJsonString(request, &json).ok());
    httplib::Result result = Post("/api/v1/sweeps", test::kUserToken, json, "application/json");
    EXPECT_TRUE(result);
    if (!result) return "";
    EXPECT_EQ(result->status, 200) << result->body;
    size_t at = result->body.find("\"id\":\"");
    if (at == std::string::npos) return "";
    at += 6;
    return result->body.substr(at, result->body.find('"', at) - at);
  }

  int JobsCancelled(const std::string& sweep_id) {
    httplib::Result result = Get(absl::StrCat("/api/v1/sweeps/", sweep_id), test::kViewerToken);
    if (!result || result->status != 200) return -1;
    return result->body.find("\"cancelled\":1") != std::string::npos ? 1 : 0;
  }

  TempDir dir_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpAuthTest, AnonymousGetsOnlyStaticFilesAndHealth) {
  httplib::Result page = Get("/", "");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  httplib::Result health = Get("/healthz", "");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  for (const char* path : {"/api/v1/sweeps", "/api/v1/workers", "/api/v1/jobs/x",
                           "/api/v1/sweeps/x/events", "/api/v1/nothing-here", "/metrics"}) {
    httplib::Result result = Get(path, "");
    ASSERT_TRUE(result) << path;
    EXPECT_EQ(result->status, 401) << path;
    EXPECT_EQ(result->get_header_value("WWW-Authenticate"), "Bearer") << path;
    EXPECT_THAT(result->body, HasSubstr("viewer or user")) << path;
  }
  httplib::Result post = Post("/api/v1/cancel", "", R"({"id": "x"})", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
}

TEST_F(HttpAuthTest, ViewerReadsButCannotCancelAndWorkerReadsNothing) {
  const std::string sweep_id = Submit();
  ASSERT_FALSE(sweep_id.empty());
  httplib::Result read = Get("/api/v1/sweeps", test::kViewerToken);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200);
  httplib::Result metrics = Get("/metrics", test::kViewerToken);
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);

  httplib::Result cancel = Post("/api/v1/cancel", test::kViewerToken,
                                absl::StrCat(R"({"id": ")", sweep_id, R"("})"), "application/json");
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->status, 403);
  EXPECT_THAT(cancel->body, HasSubstr("needs a token of role user"));
  EXPECT_EQ(JobsCancelled(sweep_id), 0);
  // The role is named first, whatever the other headers; the scheme is case-insensitive.
  httplib::Result untyped = client_->Post(
      "/api/v1/cancel", {{"Authorization", absl::StrCat("bearer ", test::kViewerToken)}}, "{}",
      "text/plain");
  ASSERT_TRUE(untyped);
  EXPECT_EQ(untyped->status, 403) << untyped->body;
  // A method the API does not take: 405 in JSON, saying which it takes, for any token.
  for (const char* token : {"", test::kViewerToken}) {
    httplib::Result put = client_->Put(absl::StrCat("/api/v1/sweeps/", sweep_id), As(token), "{}",
                                       "application/json");
    ASSERT_TRUE(put);
    EXPECT_EQ(put->status, 405);
    EXPECT_EQ(put->get_header_value("Allow"), "GET, POST");
    EXPECT_THAT(put->body, HasSubstr("\"code\":\"UNIMPLEMENTED\""));
    httplib::Result del = client_->Delete("/api/v1/sweeps", As(token));
    ASSERT_TRUE(del);
    EXPECT_EQ(del->status, 405);
  }
  EXPECT_EQ(JobsCancelled(sweep_id), 0);

  httplib::Result worker = Get("/api/v1/sweeps", test::WorkerToken("w-a"));
  ASSERT_TRUE(worker);
  EXPECT_EQ(worker->status, 403);
  EXPECT_THAT(worker->body, HasSubstr("role is worker"));
}

// The dashboard's retry: POST /api/v1/sweeps/{sweep}/retry with the request's JSON, as the
// cancel route wants it; a viewer is refused, a user's body of states or job ids is served.
TEST_F(HttpAuthTest, RetryNeedsAUserAndTakesStatesOrJobIds) {
  const std::string sweep_id = Submit();
  ASSERT_FALSE(sweep_id.empty());
  ASSERT_EQ(Post("/api/v1/cancel", test::kUserToken, absl::StrCat(R"({"id": ")", sweep_id, R"("})"),
                 "application/json")
                ->status,
            200);
  ASSERT_EQ(JobsCancelled(sweep_id), 1);
  const std::string path = absl::StrCat("/api/v1/sweeps/", sweep_id, "/retry");
  const std::string states = R"({"states": ["JOB_STATE_CANCELLED"]})";

  httplib::Result viewer = Post(path, test::kViewerToken, states, "application/json");
  ASSERT_TRUE(viewer);
  EXPECT_EQ(viewer->status, 403);
  EXPECT_THAT(viewer->body, HasSubstr("needs a token of role user"));
  httplib::Result plain = Post(path, test::kUserToken, states, "text/plain");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 400);
  EXPECT_EQ(JobsCancelled(sweep_id), 1);

  httplib::Result both =
      Post(path, test::kUserToken, R"({"states": ["JOB_STATE_FAILED"], "jobIds": ["x"]})",
           "application/json");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->status, 400);
  EXPECT_THAT(both->body, HasSubstr("not both"));
  httplib::Result other =
      Post(path, test::kUserToken, R"({"sweep": "another", "states": ["JOB_STATE_FAILED"]})",
           "application/json");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 400);

  httplib::Result user = Post(path, test::kUserToken, states, "application/json");
  ASSERT_TRUE(user);
  EXPECT_EQ(user->status, 200) << user->body;
  v1::RetryJobsResponse response;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(user->body, &response).ok())
      << user->body;
  EXPECT_EQ(response.sweep_id(), sweep_id);
  ASSERT_EQ(response.requeued_job_ids_size(), 1);
  EXPECT_EQ(JobsCancelled(sweep_id), 0);

  // The same job again, by id: it is PENDING now, so refused with why.
  httplib::Result again = Post(
      path, test::kUserToken,
      absl::StrCat(R"({"jobIds": [")", response.requeued_job_ids(0), R"("]})"), "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << again->body;
  EXPECT_THAT(again->body, HasSubstr(R"("reason":"PENDING: it has not ended")"));
}

TEST_F(HttpAuthTest, WhoAmINamesTheRoleOfTheToken) {
  httplib::Result viewer = Get("/api/v1/whoami", test::kViewerToken);
  ASSERT_TRUE(viewer);
  EXPECT_EQ(viewer->status, 200);
  EXPECT_EQ(viewer->body, R"({"role":"viewer"})");
  httplib::Result user = Get("/api/v1/whoami", test::kUserToken);
  ASSERT_TRUE(user);
  EXPECT_EQ(user->body, R"({"role":"user"})");
  httplib::Result anonymous = Get("/api/v1/whoami", "");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  httplib::Result worker = Get("/api/v1/whoami", test::WorkerToken("w-a"));
  ASSERT_TRUE(worker);
  EXPECT_EQ(worker->status, 403);
}

TEST_F(HttpAuthTest, AViewerReadsAJobsLogTail) {
  ASSERT_FALSE(Submit().empty());
  httplib::Result jobs = Get("/api/v1/sweeps", test::kViewerToken);
  ASSERT_TRUE(jobs);
  v1::ListSweepsResponse sweeps;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(jobs->body, &sweeps).ok());
  httplib::Result page =
      Get(absl::StrCat("/api/v1/sweeps/", sweeps.sweeps(0).id(), "/jobs"), test::kViewerToken);
  ASSERT_TRUE(page);
  v1::ListJobsResponse listed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(page->body, &listed).ok());
  const std::string job_id = listed.jobs(0).spec().job_id();
  // No worker has sent a tail: the job's log is empty, not missing.
  httplib::Result log = Get(absl::StrCat("/api/v1/jobs/", job_id, "/log"), test::kViewerToken);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->status, 200) << log->body;
  v1::JobLog tail;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(log->body, &tail).ok()) << log->body;
  EXPECT_EQ(tail.job_id(), job_id);
  EXPECT_EQ(tail.attempt_id(), 0u);
  EXPECT_EQ(tail.lines_size(), 0);
  httplib::Result unknown = Get("/api/v1/jobs/no-such-job/log", test::kViewerToken);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  httplib::Result anonymous = Get(absl::StrCat("/api/v1/jobs/", job_id, "/log"), "");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
}

// The failure this fixes: a text/plain POST from a page of another origin (which a browser
// sends without asking the server first) cancelled a sweep.
TEST_F(HttpAuthTest, APageOfAnotherOriginCannotCancel) {
  const std::string sweep_id = Submit();
  ASSERT_FALSE(sweep_id.empty());
  const std::string body = absl::StrCat(R"({"id": ")", sweep_id, R"("})");
  const httplib::Headers foreign = {{"Origin", "http://evil.example"}};

  httplib::Result plain = Post("/api/v1/cancel", "", body, "text/plain", foreign);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 401);
  // Even with the user's token (which a foreign page cannot read) neither passes.
  httplib::Result plain_token = Post("/api/v1/cancel", test::kUserToken, body, "text/plain");
  ASSERT_TRUE(plain_token);
  EXPECT_EQ(plain_token->status, 400);
  EXPECT_THAT(plain_token->body,
              HasSubstr("POST /api/v1/cancel needs the header Content-Type: application/json (the "
                        "body is JSON); this request says 'text/plain'"));
  httplib::Result cross =
      Post("/api/v1/cancel", test::kUserToken, body, "application/json", foreign);
  ASSERT_TRUE(cross);
  EXPECT_EQ(cross->status, 403);
  EXPECT_THAT(cross->body, HasSubstr("another origin"));
  for (const httplib::Result* result : {&plain, &plain_token, &cross}) {
    EXPECT_FALSE((*result)->has_header("Access-Control-Allow-Origin"));
  }
  EXPECT_EQ(JobsCancelled(sweep_id), 0);

  // The dashboard's own origin, with the token and JSON, may.
  httplib::Result same =
      Post("/api/v1/cancel", test::kUserToken, body, "application/json",
           {{"Origin", absl::StrCat("http://127.0.0.1:", server_->http_port())}});
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 200) << same->body;
  EXPECT_FALSE(same->has_header("Access-Control-Allow-Origin"));
  EXPECT_EQ(JobsCancelled(sweep_id), 1);
}

}  // namespace
}  // namespace ablate::coordinator

namespace ablate::coordinator {
namespace {

// The failure this fixes: any request body was read whole (4 x 50 MB in parallel took the
// coordinator to 1 GB). A body over the limit is refused from its Content-Length.
TEST_F(HttpAuthTest, ABodyOverTheLimitIsRefusedWith413) {
  const std::string body(HttpOptions().max_body_bytes + 1, ' ');
  httplib::Result result = Post("/api/v1/sweeps", test::kUserToken, body, "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 413);
  EXPECT_THAT(result->body, HasSubstr("\"error\":\"the request body is larger than 4096 KiB, "
                                      "the most this coordinator reads\""));
  EXPECT_THAT(result->body, HasSubstr("\"code\":\"RESOURCE_EXHAUSTED\""));
  // Without a token it is refused before any of it is read.
  httplib::Result anonymous = Post("/api/v1/sweeps", "", body, "application/json");
  if (anonymous) {
    EXPECT_EQ(anonymous->status, 401);
  }
}

}  // namespace
}  // namespace ablate::coordinator
