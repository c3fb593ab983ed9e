#include "coordinator/scheduler/start_backoff.h"

#include "common/clock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

// Places one attempt of id `attempt_id`, as the scheduler does.
void Place(StartBackoff& backoff, uint64_t attempt_id) {
  backoff.Placing();
  backoff.Placed(attempt_id);
}

TEST(StartBackoffTest, RestsDoubleFromOneSecondToAMinuteWithOneProbeAfterEach) {
  StartBackoff backoff;
  EXPECT_TRUE(backoff.MayPlace(kStart));
  EXPECT_FALSE(backoff.backing_off());
  absl::Time now = kStart;
  uint64_t attempt = 1;
  const absl::Duration expected[] = {absl::Seconds(1),  absl::Seconds(2),  absl::Seconds(4),
                                     absl::Seconds(8),  absl::Seconds(16), absl::Seconds(32),
                                     absl::Seconds(60), absl::Seconds(60)};
  for (const absl::Duration rest : expected) {
    Place(backoff, attempt);
    backoff.Failed(now, attempt, "cannot run t: Permission denied");
    EXPECT_EQ(backoff.rest(), rest);
    EXPECT_FALSE(backoff.MayPlace(now + rest - absl::Milliseconds(1)));
    now += rest;
    ASSERT_TRUE(backoff.MayPlace(now));
    ++attempt;
  }
  const v1::WorkerBackoff shown = backoff.ToProto();
  EXPECT_EQ(shown.reason(), "cannot run t: Permission denied");
  EXPECT_EQ(shown.failures(), 8u);
  EXPECT_EQ(FromProto(shown.retry_at()), now);

  // The probe: one attempt, and no other while it is out.
  Place(backoff, attempt);
  EXPECT_FALSE(backoff.MayPlace(now));
  // Its trainer started: the worker takes work as before.
  EXPECT_TRUE(backoff.Started(attempt));
  EXPECT_FALSE(backoff.backing_off());
  EXPECT_TRUE(backoff.MayPlace(now));
  // A failure after that rests a second again.
  backoff.Failed(now, attempt + 1, "cannot run t: Permission denied");
  EXPECT_EQ(backoff.rest(), absl::Seconds(1));
}

TEST(StartBackoffTest, FailuresDuringARestCountOnce) {
  StartBackoff backoff;
  // Three slots placed before the trainer broke: their three failures are one incident.
  for (uint64_t attempt = 1; attempt <= 3; ++attempt) Place(backoff, attempt);
  backoff.Failed(kStart, 1, "cannot run t: Permission denied");
  backoff.Failed(kStart + absl::Milliseconds(10), 2, "cannot run t: Permission denied");
  backoff.Failed(kStart + absl::Milliseconds(20), 3, "no free slot: slot 2 is busy");
  EXPECT_EQ(backoff.failures(), 1u);
  EXPECT_EQ(backoff.rest(), absl::Seconds(1));
  EXPECT_EQ(backoff.ToProto().reason(), "no free slot: slot 2 is busy");
  // A trainer of an attempt placed before the last failure proves nothing of the trainer now.
  EXPECT_FALSE(backoff.Started(2));
  EXPECT_TRUE(backoff.backing_off());
}

TEST(StartBackoffTest, AProbeThatEndsOtherwiseLetsTheNextAttemptProbeAtOnce) {
  StartBackoff backoff;
  Place(backoff, 1);
  backoff.Failed(kStart, 1, "cannot run t: Permission denied");
  const absl::Time later = kStart + absl::Seconds(1);
  Place(backoff, 2);
  EXPECT_FALSE(backoff.MayPlace(later));
  // Another attempt's end leaves the probe out.
  backoff.Ended(1);
  EXPECT_FALSE(backoff.MayPlace(later));
  // Cancelled before its trainer said it started.
  backoff.Ended(2);
  EXPECT_TRUE(backoff.MayPlace(later));
  EXPECT_TRUE(backoff.backing_off());

  // A probe the store did not start frees the place too.
  Place(backoff, 0);
  EXPECT_TRUE(backoff.MayPlace(later));
}

TEST(StartBackoffTest, AReconnectEndsTheRestButKeepsTheCount) {
  StartBackoff backoff;
  Place(backoff, 1);
  backoff.Failed(kStart, 1, "cannot run t: Permission denied");
  Place(backoff, 2);
  backoff.Failed(kStart + absl::Seconds(1), 2, "cannot run t: Permission denied");
  EXPECT_FALSE(backoff.MayPlace(kStart + absl::Seconds(2)));
  backoff.Reconnected();
  EXPECT_TRUE(backoff.MayPlace(kStart + absl::Seconds(2)));
  EXPECT_FALSE(backoff.ToProto().has_retry_at());
  Place(backoff, 3);
  backoff.Failed(kStart + absl::Seconds(2), 3, "cannot run t: Permission denied");
  EXPECT_EQ(backoff.rest(), absl::Seconds(4));
}

TEST(StartBackoffTest, OptionsSetTheFirstRestAndTheCap) {
  StartBackoff backoff({.min_rest = absl::Milliseconds(100), .max_rest = absl::Milliseconds(300)});
  absl::Time now = kStart;
  for (uint64_t attempt = 1; attempt <= 3; ++attempt) {
    Place(backoff, attempt);
    backoff.Failed(now, attempt, "x");
    now += backoff.rest();
  }
  EXPECT_EQ(backoff.rest(), absl::Milliseconds(300));
  EXPECT_EQ(now - kStart, absl::Milliseconds(100 + 200 + 300));
}

}  // namespace
}  // namespace ablate::coordinator
