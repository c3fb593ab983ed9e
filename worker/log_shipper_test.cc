#include "worker/log_shipper.h"

#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ablate::worker {
namespace {

class LogShipperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("log_shipper_test-", getpid(), ".log");
    std::filesystem::remove(log_);
  }
  void TearDown() override { std::filesystem::remove(log_); }
  void Append(const std::string& text) { std::ofstream(log_, std::ios::app) << text; }
  std::vector<LogShipper::Target> Targets(bool ended = false) {
    return {{"job-a", 7, log_, ended}};
  }
  // Due() at `at` seconds on stream `generation`, marking each tail written.
  std::vector<v1::WorkerMessage> Ship(double at, uint64_t generation = 1, bool ended = false) {
    std::vector<v1::WorkerMessage> due =
        shipper_.Due(Targets(ended), t0_ + absl::Seconds(at), generation);
    for (const v1::WorkerMessage& m : due) shipper_.Written(m);
    return due;
  }

  std::filesystem::path log_;
  const absl::Time t0_ = absl::FromUnixSeconds(1'000'000);
  LogShipper shipper_{{.interval = absl::Seconds(5), .max_lines = 2, .max_bytes = 1000}};
};

TEST_F(LogShipperTest, SendsATailWhenTheLogChangedAtMostEveryInterval) {
  EXPECT_TRUE(Ship(0).empty());  // no lines yet
  Append("one\n");
  EXPECT_TRUE(Ship(1).empty());  // read at 0: not due before 5
  std::vector<v1::WorkerMessage> due = Ship(5);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].log_tail().job_id(), "job-a");
  EXPECT_EQ(due[0].log_tail().attempt_id(), 7u);
  EXPECT_EQ(due[0].log_tail().lines_size(), 1);
  EXPECT_TRUE(Ship(10).empty());  // unchanged
  Append("two\nthree\n");
  due = Ship(15);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].log_tail().lines(0), "two");
  EXPECT_EQ(due[0].log_tail().lines(1), "three");
  EXPECT_TRUE(due[0].log_tail().truncated());
}

TEST_F(LogShipperTest, AnEndedAttemptIsReadAtOnceThenRestsUntilTheNextStream) {
  Append("one\n");
  ASSERT_EQ(Ship(0).size(), 1u);
  Append("last words\n");
  std::vector<v1::WorkerMessage> due = Ship(1, 1, /*ended=*/true);  // before the interval
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].log_tail().lines(1), "last words");
  EXPECT_EQ(shipper_.NextRead(), absl::InfiniteFuture());
  EXPECT_TRUE(Ship(100, 1, true).empty());
  EXPECT_EQ(Ship(101, 2, true).size(), 1u);  // a new stream
}

TEST_F(LogShipperTest, AnUnwrittenTailIsOfferedAgain) {
  Append("one\n");
  EXPECT_EQ(shipper_.Due(Targets(), t0_, 1).size(), 1u);  // the write failed: no Written()
  EXPECT_EQ(shipper_.Due(Targets(), t0_ + absl::Seconds(5), 1).size(), 1u);
  EXPECT_EQ(shipper_.Due(Targets(true), t0_ + absl::Seconds(6), 1).size(), 1u);
  EXPECT_EQ(shipper_.NextRead(), t0_ + absl::Seconds(11));
}

TEST_F(LogShipperTest, ForgetsAttemptsNoLongerHeld) {
  Append("one\n");
  ASSERT_EQ(Ship(0).size(), 1u);
  EXPECT_TRUE(shipper_.Due({}, t0_ + absl::Seconds(1), 1).empty());
  EXPECT_EQ(shipper_.NextRead(), absl::InfiniteFuture());
}

}  // namespace
}  // namespace ablate::worker
