// The worker's side of its lease (lease.h, session.h): a coordinator that stops answering gets
// the worker's trainers stopped before its lease could run out, and a worker that hears from it
// again goes on taking work.
#include <algorithm>
#include <optional>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/session.h"
#include "worker/session_test_fixture.h"
#include "worker/testing/fake_coordinator.h"

namespace ablate::worker {
namespace {

using session_testing::SessionTest;
using testing::Assign;
using ::testing::HasSubstr;
using testing::IsEnded;
using testing::IsHello;
using testing::IsStarted;
using ::testing::StartsWith;
using testing::TestServer;

constexpr absl::Duration kLease = absl::Seconds(2);

int Heartbeats(const std::vector<v1::WorkerMessage>& received) {
  return static_cast<int>(std::count_if(received.begin(), received.end(),
                                        [](const auto& m) { return m.has_heartbeat(); }));
}

// Waits until the coordinator has received `more` heartbeats beyond those it has now: the
// replies to all but the last of them are then written.
bool MoreHeartbeats(TestServer& server, int more) {
  const int seen = Heartbeats(server.coordinator().Received());
  return server.coordinator().WaitUntil(
      [&](const std::vector<v1::WorkerMessage>& m) { return Heartbeats(m) >= seen + more; });
}

TEST_F(SessionTest, ASilentCoordinatorGetsTheTrainersStoppedWithinItsLease) {
  TestServer server(0);
  server.coordinator().SetLease(kLease);
  auto session = MakeSession(server.port(), 2);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  ASSERT_TRUE(server.coordinator().Send(Assign(1, "sleep", {0})));
  // It ignores SIGTERM: SIGKILL must come within the lease, though stop_grace is as long.
  ASSERT_TRUE(server.coordinator().Send(Assign(2, "ignore-term", {1})));
  ASSERT_TRUE(server.coordinator().WaitFor(IsStarted(1)));
  ASSERT_TRUE(server.coordinator().WaitFor(IsStarted(2)));
  ASSERT_TRUE(MoreHeartbeats(server, 2));  // running under a lease renewed just now

  server.coordinator().SetAnswerHeartbeats(false);
  const absl::Time silent = absl::Now();
  std::optional<v1::WorkerMessage> first = server.coordinator().WaitFor(IsEnded(1));
  std::optional<v1::WorkerMessage> second = server.coordinator().WaitFor(IsEnded(2));
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_LT(absl::Now() - silent, kLease);
  for (const v1::AttemptEnded& ended : {first->attempt_ended(), second->attempt_ended()}) {
    // Interrupted by the worker: the job is requeued uncounted, unless its lease ended first.
    EXPECT_TRUE(ended.interrupted());
    EXPECT_FALSE(ended.cancelled());
    EXPECT_FALSE(ended.succeeded());
    EXPECT_FALSE(ended.never_started());
    EXPECT_THAT(ended.exit().reason(), StartsWith("fenced: the coordinator answered nothing for "));
  }
  EXPECT_THAT(second->attempt_ended().exit().reason(), HasSubstr("killed by SIGKILL after"));

  // Cut off still: an assignment now would start a trainer its lease does not cover.
  ASSERT_TRUE(server.coordinator().Send(Assign(3, "succeed", {0})));
  std::optional<v1::WorkerMessage> refused = server.coordinator().WaitFor(IsEnded(3));
  ASSERT_TRUE(refused.has_value());
  EXPECT_TRUE(refused->attempt_ended().interrupted());
  EXPECT_TRUE(refused->attempt_ended().never_started());
  EXPECT_THAT(refused->attempt_ended().exit().reason(),
              StartsWith("not started: the coordinator answered nothing for "));

  // Answered again: the same stream, never closed, takes work as before.
  server.coordinator().SetAnswerHeartbeats(true);
  ASSERT_TRUE(MoreHeartbeats(server, 2));
  EXPECT_TRUE(session->Ready());
  ASSERT_TRUE(server.coordinator().Send(Assign(4, "succeed", {0})));
  std::optional<v1::WorkerMessage> ended = server.coordinator().WaitFor(IsEnded(4));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->attempt_ended().succeeded());
  int hellos = 0;
  for (const auto& m : server.coordinator().Received()) hellos += m.has_hello() ? 1 : 0;
  EXPECT_EQ(hellos, 1);
}

// An older coordinator states no lease and answers no heartbeat: its silence means nothing.
TEST_F(SessionTest, WithoutALeaseInTheWelcomeNoTrainerIsFenced) {
  TestServer server(0);
  auto session = MakeSession(server.port(), 1);
  ASSERT_TRUE(server.coordinator().WaitFor(IsHello()));
  ASSERT_TRUE(server.coordinator().Send(Assign(1, "slow", {0}, /*delay_ms=*/1500)));
  std::optional<v1::WorkerMessage> ended = server.coordinator().WaitFor(IsEnded(1));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->attempt_ended().succeeded());
}

}  // namespace
}  // namespace ablate::worker
