#include "worker/health_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <string>

#include "absl/synchronization/mutex.h"

namespace ablate::worker {
namespace {

TEST(HealthServerTest, LivenessAlwaysReadinessWhenReady) {
  absl::Mutex mu;
  absl::Status ready = absl::UnavailableError("not connected to the coordinator");
  absl::StatusOr<std::unique_ptr<HealthServer>> health = HealthServer::Start("127.0.0.1:0", [&] {
    absl::MutexLock lock(&mu);
    return ready;
  });
  ASSERT_TRUE(health.ok()) << health.status();
  httplib::Client client("127.0.0.1", (*health)->port());
  httplib::Result live = client.Get("/healthz");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  httplib::Result not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->body, "not connected to the coordinator");
  {
    absl::MutexLock lock(&mu);
    ready = absl::UnavailableError("cannot start trainers: cannot run t: Permission denied");
  }
  not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->body, "cannot start trainers: cannot run t: Permission denied");
  {
    absl::MutexLock lock(&mu);
    ready = absl::OkStatus();
  }
  httplib::Result now_ready = client.Get("/readyz");
  ASSERT_TRUE(now_ready);
  EXPECT_EQ(now_ready->status, 200);
  EXPECT_EQ(client.Get("/nothing")->status, 404);
}

TEST(HealthServerTest, BadAddressIsRefusedNamingTheFlag) {
  absl::StatusOr<std::unique_ptr<HealthServer>> health =
      HealthServer::Start("localhost", [] { return absl::OkStatus(); });
  ASSERT_FALSE(health.ok());
  EXPECT_EQ(health.status().message(), "--health-http localhost: expected HOST:PORT");
}

}  // namespace
}  // namespace ablate::worker
