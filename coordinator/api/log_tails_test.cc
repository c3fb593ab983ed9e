#include "coordinator/api/log_tails.h"

#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using testing::MakeJobs;
using testing::MakeSweep;

v1::LogTail Tail(const std::string& job_id, uint64_t attempt_id, std::string line) {
  v1::LogTail tail;
  tail.set_job_id(job_id);
  tail.set_attempt_id(attempt_id);
  tail.add_lines(std::move(line));
  return tail;
}

// Without a store, Get reads memory whatever the job's current attempt.
v1::JobLog Memory(const LogTails& tails, const std::string& job_id) {
  return tails.Get(job_id, /*current_attempt_id=*/0).value();
}

TEST(LogTailsTest, KeepsTheNewestAttemptsTail) {
  LogTails tails(RealClock(), /*store=*/nullptr);
  EXPECT_EQ(Memory(tails, "a").attempt_id(), 0u);
  EXPECT_EQ(Memory(tails, "a").lines_size(), 0);
  tails.Put(Tail("a", 2, "second"));
  tails.Put(Tail("a", 1, "first, late"));
  EXPECT_EQ(Memory(tails, "a").attempt_id(), 2u);
  EXPECT_EQ(Memory(tails, "a").lines(0), "second");
  EXPECT_TRUE(Memory(tails, "a").has_updated_at());
  tails.Put(Tail("a", 3, "third"));
  EXPECT_EQ(Memory(tails, "a").lines(0), "third");
}

TEST(LogTailsTest, DropsTheTailsUpdatedLongestAgoPastTheBound) {
  LogTails tails(RealClock(), /*store=*/nullptr, /*max_bytes=*/25);
  tails.Put(Tail("a", 1, std::string(10, 'a')));
  tails.Put(Tail("b", 1, std::string(10, 'b')));
  tails.Put(Tail("a", 1, std::string(10, 'A')));  // a is now the newer
  tails.Put(Tail("c", 1, std::string(10, 'c')));  // 30 bytes: b goes
  EXPECT_EQ(Memory(tails, "b").lines_size(), 0);
  EXPECT_EQ(Memory(tails, "a").lines(0), std::string(10, 'A'));
  EXPECT_EQ(Memory(tails, "c").lines(0), std::string(10, 'c'));
  tails.Put(Tail("d", 1, std::string(40, 'd')));  // alone over the bound: it stays
  EXPECT_EQ(Memory(tails, "d").lines_size(), 1);
  EXPECT_EQ(Memory(tails, "a").lines_size(), 0);
  EXPECT_EQ(Memory(tails, "c").lines_size(), 0);
}

// With a store: an ended attempt's tail is stored and served by the LogTails of a restarted
// coordinator (a new one over the same store), a running attempt's is not.
class StoredLogTailsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = Store::Open(dir_.File("ablate.db"), RealClock()).value();
    ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 1), 3).ok());
  }

  uint64_t Start() { return store_->StartAttempt("s-j0", "w1").value().id(); }

  // Ends `attempt` as its worker would report it, and waits for the tail's write.
  void End(LogTails& tails, uint64_t attempt) {
    ASSERT_TRUE(store_
                    ->EndAttempt("s-j0", attempt, v1::ATTEMPT_STATE_FAILED, {},
                                 v1::JOB_STATE_PENDING, "", std::nullopt)
                    .ok());
    const int64_t ended = store_->Version();
    tails.Ended("s-j0", attempt);
    EXPECT_GT(store_->WaitForChange(ended, absl::Seconds(10)), ended);
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoredLogTailsTest, AnEndedAttemptsTailOutlivesMemory) {
  const uint64_t first = Start();
  {
    LogTails tails(RealClock(), store_.get());
    tails.Put(Tail("s-j0", first, "first's last words"));
    ASSERT_NO_FATAL_FAILURE(End(tails, first));
  }
  LogTails restarted(RealClock(), store_.get());
  v1::JobLog log = restarted.Get("s-j0", first).value();
  EXPECT_EQ(log.attempt_id(), first);
  ASSERT_EQ(log.lines_size(), 1);
  EXPECT_EQ(log.lines(0), "first's last words");
  EXPECT_TRUE(log.has_updated_at());

  // A running attempt's tail comes from memory, and is not stored.
  const uint64_t second = Start();
  restarted.Put(Tail("s-j0", second, "running"));
  EXPECT_EQ(restarted.Get("s-j0", second).value().lines(0), "running");
  EXPECT_EQ(store_->ReadJobLog("s-j0").value().attempt_id(), first);
  ASSERT_NO_FATAL_FAILURE(End(restarted, second));

  // Memory holding an older attempt's tail (its worker resent it) than the stored one.
  const uint64_t third = Start();
  restarted.Put(Tail("s-j0", third, "third's last words"));
  ASSERT_NO_FATAL_FAILURE(End(restarted, third));
  LogTails again(RealClock(), store_.get());
  again.Put(Tail("s-j0", first, "first's, resent"));
  log = again.Get("s-j0", third).value();
  EXPECT_EQ(log.attempt_id(), third);
  EXPECT_EQ(log.lines(0), "third's last words");
}

TEST_F(StoredLogTailsTest, AnAttemptThatSentNoTailStoresNothing) {
  const uint64_t attempt = Start();
  LogTails tails(RealClock(), store_.get());
  tails.Ended("s-j0", attempt);
  EXPECT_EQ(store_->ReadJobLog("s-j0").value().attempt_id(), 0u);
  EXPECT_EQ(tails.Get("s-j0", attempt).value().lines_size(), 0);
}

}  // namespace
}  // namespace ablate::coordinator
