// The fixtures of the HTTP tests (http_test.cc, http_query_test.cc): a whole CoordinatorServer
// on loopback serving a web directory, an httplib client, and a job with stored metrics.
// Test-only; header-only.
#ifndef ABLATE_COORDINATOR_HTTP_HTTP_TEST_FIXTURE_H_
#define ABLATE_COORDINATOR_HTTP_HTTP_TEST_FIXTURE_H_

#include <httplib.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.pb.h"
#include "common/clock.h"
#include "coordinator/http/loopback_coordinator.h"
#include "coordinator/server.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace ablate::coordinator::testing {

// An httplib client of `server`'s HTTP port that gives up on a connect or a read after 5 s.
inline std::unique_ptr<httplib::Client> ClientOf(const CoordinatorServer& server) {
  auto client = std::make_unique<httplib::Client>("127.0.0.1", server.http_port());
  client->set_connection_timeout(5);
  client->set_read_timeout(5);
  return client;
}

// `json` read as a T, every field known to T (a test fails otherwise).
template <typename T>
T Parse(const std::string& json) {
  T message;
  google::protobuf::util::Status parsed =
      google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(parsed.ok()) << parsed.ToString() << " in " << json;
  return message;
}

inline std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(message, &json).ok());
  return json;
}

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.File("index.html")) << "<!doctype html><title>ablate</title>";
    std::ofstream(dir_.File("app.js")) << "console.log('ablate');";
    absl::StatusOr<std::unique_ptr<CoordinatorServer>> server =
        StartLoopbackCoordinator(dir_, dir_.path());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = ClientOf(*server_);
  }
  void TearDown() override { server_->Shutdown(); }

  // GETs `path`, expecting `status`; returns the body.
  std::string Get(const std::string& path, int status = 200) {
    httplib::Result result = client_->Get(path);
    EXPECT_TRUE(result) << path;
    if (!result) return "";
    EXPECT_EQ(result->status, status) << path << ": " << result->body;
    return result->body;
  }

  std::string Post(const std::string& path, const std::string& body, int status = 200) {
    httplib::Result result = client_->Post(path, body, "application/json");
    EXPECT_TRUE(result) << path;
    if (!result) return "";
    EXPECT_EQ(result->status, status) << path << ": " << result->body;
    return result->body;
  }

  std::string SubmitTinySweep() {
    v1::SubmitSweepRequest request;
    *request.mutable_spec() = TinySweepSpec("http", 2);
    return Parse<v1::SubmitSweepResponse>(Post("/api/v1/sweeps", ToJson(request))).sweep().id();
  }

  TempDir dir_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

// A job with 2,000 train/loss points (loss = 1000 / (step + 1)) and 20 eval/loss points,
// stored before the coordinator starts, as a worker's reports would have left them.
class HttpMetricsTest : public HttpTest {
 protected:
  void SetUp() override {
    {
      absl::StatusOr<std::unique_ptr<Store>> store =
          Store::Open(dir_.File("ablate.db"), RealClock());
      ASSERT_TRUE(store.ok()) << store.status();
      v1::JobSpec job;
      job.set_job_id("m-000001");
      job.set_sweep_id("m");
      ASSERT_TRUE((*store)->CreateSweep(MakeSweep("m"), {job}, 3).ok());
      absl::StatusOr<v1::Attempt> attempt = (*store)->StartAttempt("m-000001", "w1");
      ASSERT_TRUE(attempt.ok()) << attempt.status();
      std::vector<v1::MetricPoint> points;
      for (int step = 0; step < 2000; ++step) {
        points.push_back(Point("train/loss", step, 1000.0 / (step + 1)));
        if (step % 100 == 99) points.push_back(Point("eval/loss", step, 3.0));
      }
      ASSERT_TRUE((*store)->AppendMetrics("m-000001", attempt->id(), points).ok());
    }
    HttpTest::SetUp();
  }

  v1::GetJobResponse GetJob(const std::string& query) {
    return Parse<v1::GetJobResponse>(Get("/api/v1/jobs/m-000001" + query));
  }
};

}  // namespace ablate::coordinator::testing

#endif  // ABLATE_COORDINATOR_HTTP_HTTP_TEST_FIXTURE_H_
