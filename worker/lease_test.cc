#include "worker/lease.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace ablate::worker {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

TEST(LeaseTest, NeverLapsesWithoutALeaseOrAnAnswer) {
  Lease lease;
  EXPECT_EQ(lease.FenceAt(), absl::InfiniteFuture());
  lease.Renew(kStart);  // a welcome of an older coordinator, which states no lease
  EXPECT_EQ(lease.FenceAt(), absl::InfiniteFuture());
  EXPECT_EQ(lease.KillBy(), absl::InfiniteFuture());

  Lease unanswered;
  unanswered.SetDuration(absl::Seconds(8));
  unanswered.Sent(1, kStart);
  EXPECT_EQ(unanswered.FenceAt(), absl::InfiniteFuture());
}

TEST(LeaseTest, RunsFromWhenTheAnsweredMessageWasSent) {
  Lease lease;
  lease.SetDuration(absl::Seconds(8));
  lease.Renew(kStart);  // the hello, answered by the welcome
  EXPECT_EQ(lease.FenceAt(), kStart + absl::Seconds(4));
  EXPECT_EQ(lease.KillBy(), kStart + absl::Seconds(6));

  lease.Sent(1, kStart + absl::Seconds(1));
  lease.Sent(2, kStart + absl::Seconds(2));
  lease.Sent(3, kStart + absl::Seconds(3));
  // Heartbeat 2's answer: the coordinator read it no earlier than it was sent, whenever the
  // answer came.
  lease.Answered(2);
  EXPECT_EQ(lease.renewed(), kStart + absl::Seconds(2));
  EXPECT_EQ(lease.FenceAt(), kStart + absl::Seconds(6));
  // Heartbeat 1 is forgotten with 2's answer: a late answer to it changes nothing.
  lease.Answered(1);
  EXPECT_EQ(lease.renewed(), kStart + absl::Seconds(2));
  lease.Answered(3);
  EXPECT_EQ(lease.renewed(), kStart + absl::Seconds(3));
}

TEST(LeaseTest, NeverRunsBackwards) {
  Lease lease;
  lease.SetDuration(absl::Seconds(8));
  lease.Sent(1, kStart + absl::Seconds(5));
  lease.Answered(1);
  // A welcome answering a hello sent before: the lease keeps its later start.
  lease.Renew(kStart);
  EXPECT_EQ(lease.renewed(), kStart + absl::Seconds(5));
  // Numbers never sent, or from a stream long gone, are ignored.
  lease.Answered(42);
  EXPECT_EQ(lease.renewed(), kStart + absl::Seconds(5));
}

TEST(LeaseTest, RemembersABoundedNumberOfUnansweredHeartbeats) {
  Lease lease;
  lease.SetDuration(absl::Seconds(8));
  for (uint64_t n = 1; n <= 1000; ++n) lease.Sent(n, kStart + absl::Milliseconds(n));
  lease.Answered(1);  // forgotten long ago
  EXPECT_EQ(lease.renewed(), absl::InfinitePast());
  lease.Answered(1000);
  EXPECT_EQ(lease.renewed(), kStart + absl::Milliseconds(1000));
}

}  // namespace
}  // namespace ablate::worker
