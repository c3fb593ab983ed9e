#include "coordinator/api/log_tails.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

  // Ends `attempt` in the store as its worker would report it.
  void EndInStore(uint64_t attempt) {
    ASSERT_TRUE(store_
                    ->EndAttempt("s-j0", attempt, v1::ATTEMPT_STATE_FAILED, {},
                                 v1::JOB_STATE_PENDING, "", std::nullopt)
                    .ok());
  }

  // Ends `attempt` as its worker would report it, and waits for the tail's write.
  void End(LogTails& tails, uint64_t attempt) {
    ASSERT_NO_FATAL_FAILURE(EndInStore(attempt));
    const int64_t ended = store_->Version();
    tails.Ended("s-j0", attempt);
    EXPECT_GT(store_->WaitForChange(ended, absl::Seconds(10)), ended);
  }

  // Closes the database (its queued writes done) and opens the same file again, as a
  // restarted coordinator does.
  void Reopen() {
    store_.reset();
    store_ = Store::Open(dir_.File("ablate.db"), RealClock()).value();
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
  EXPECT_EQ(store_->ReadJobLog("s-j0", 0).value().attempt_id(), first);
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

// A retry's first tail replaces its predecessor's in memory; the predecessor's last lines are
// still served by its attempt id, from the store, after newer attempts ended too, and lines of
// it that arrive after the retry's are stored.
TEST_F(StoredLogTailsTest, AnEndedAttemptsTailIsServedByItsIdAfterARetrysTailArrived) {
  LogTails tails(RealClock(), store_.get());
  const uint64_t first = Start();
  EXPECT_EQ(tails.GetAttempt("s-j0", first).value().attempt_id(), 0u);
  tails.Put(Tail("s-j0", first, "first, running"));
  EXPECT_EQ(tails.GetAttempt("s-j0", first).value().lines(0), "first, running");
  tails.Put(Tail("s-j0", first, "first's last words"));
  ASSERT_NO_FATAL_FAILURE(End(tails, first));
  const uint64_t second = Start();
  tails.Put(Tail("s-j0", second, "second, running"));

  v1::JobLog log = tails.GetAttempt("s-j0", first).value();
  EXPECT_EQ(log.job_id(), "s-j0");
  EXPECT_EQ(log.attempt_id(), first);
  ASSERT_EQ(log.lines_size(), 1);
  EXPECT_EQ(log.lines(0), "first's last words");
  EXPECT_EQ(tails.GetAttempt("s-j0", second).value().lines(0), "second, running");
  EXPECT_EQ(tails.Get("s-j0", second).value().lines(0), "second, running");

  // The first's worker sends its lines again, changed, after the second's arrived.
  const int64_t before = store_->Version();
  tails.Put(Tail("s-j0", first, "first's later words"));
  EXPECT_GT(store_->WaitForChange(before, absl::Seconds(10)), before);
  EXPECT_EQ(tails.GetAttempt("s-j0", first).value().lines(0), "first's later words");
  EXPECT_EQ(tails.Get("s-j0", second).value().lines(0), "second, running");

  // Once the second ended, the store keeps its tail as well as the first's.
  ASSERT_NO_FATAL_FAILURE(End(tails, second));
  const uint64_t third = Start();
  tails.Put(Tail("s-j0", third, "third, running"));
  EXPECT_EQ(tails.GetAttempt("s-j0", second).value().lines(0), "second, running");
  log = tails.GetAttempt("s-j0", first).value();
  EXPECT_EQ(log.attempt_id(), first);
  EXPECT_EQ(log.lines(0), "first's later words");
  EXPECT_EQ(tails.GetAttempt("s-j0", third + 1).value().attempt_id(), 0u);
}

TEST_F(StoredLogTailsTest, AnAttemptThatSentNoTailStoresNothing) {
  const uint64_t attempt = Start();
  LogTails tails(RealClock(), store_.get());
  tails.Ended("s-j0", attempt);
  EXPECT_EQ(store_->ReadJobLog("s-j0", 0).value().attempt_id(), 0u);
  EXPECT_EQ(tails.Get("s-j0", attempt).value().lines_size(), 0);
}

// Lines that arrive after their attempt ended (its worker sent them late) reach the stored tail
// too, bounded as every stored tail is, and so outlive a restart.
TEST_F(StoredLogTailsTest, ALateTailOfAnEndedAttemptOutlivesARestart) {
  const uint64_t attempt = Start();
  std::vector<std::string> late;
  {
    LogTails tails(RealClock(), store_.get());
    tails.Put(Tail("s-j0", attempt, "before the end"));
    ASSERT_NO_FATAL_FAILURE(End(tails, attempt));
    ASSERT_EQ(store_->ReadJobLog("s-j0", 0).value().lines(0), "before the end");
    // More than a stored tail holds: its newest lines are kept.
    v1::LogTail tail = Tail("s-j0", attempt, "before the end");
    const size_t n = 2 * kMaxStoredLogBytes / 90;
    for (size_t i = 0; i < n; ++i) {
      late.push_back(absl::StrCat("late ", i, " ", std::string(90, 'x')));
      tail.add_lines(late.back());
    }
    tails.Put(tail);
  }  // the LogTails waits for its writes

  Reopen();
  LogTails restarted(RealClock(), store_.get());
  const v1::JobLog log = restarted.Get("s-j0", attempt).value();
  EXPECT_EQ(log.attempt_id(), attempt);
  ASSERT_GT(log.lines_size(), 0);
  EXPECT_EQ(log.lines(log.lines_size() - 1), late.back());
  EXPECT_NE(log.lines(0), "before the end");
  EXPECT_TRUE(log.truncated());
  size_t bytes = 0;
  for (const std::string& line : log.lines()) bytes += line.size();
  EXPECT_LE(bytes, kMaxStoredLogBytes);
}

// An attempt that ended before any tail of it arrived (its worker lost, then back): the tail
// that comes afterwards is stored.
TEST_F(StoredLogTailsTest, TheTailOfAnAttemptThatEndedWithoutOneIsStoredWhenItComes) {
  const uint64_t attempt = Start();
  {
    LogTails tails(RealClock(), store_.get());
    ASSERT_NO_FATAL_FAILURE(EndInStore(attempt));
    tails.Ended("s-j0", attempt);
    tails.Put(Tail("s-j0", attempt, "sent after a reconnect"));
  }
  Reopen();
  LogTails restarted(RealClock(), store_.get());
  const v1::JobLog log = restarted.Get("s-j0", attempt).value();
  EXPECT_EQ(log.attempt_id(), attempt);
  ASSERT_EQ(log.lines_size(), 1);
  EXPECT_EQ(log.lines(0), "sent after a reconnect");
}

// An attempt that ended before this LogTails existed (a coordinator restarted since): no Ended
// comes for it, yet its late tail is stored, the newest one. A running attempt's is not.
TEST_F(StoredLogTailsTest, TheLateTailOfAnAttemptThatEndedBeforeTheStartIsStored) {
  const uint64_t ended = Start();
  ASSERT_NO_FATAL_FAILURE(EndInStore(ended));
  Reopen();
  {
    LogTails restarted(RealClock(), store_.get());
    restarted.Put(Tail("s-j0", ended, "late"));
    restarted.Put(Tail("s-j0", ended, "later"));
  }  // waits for its writes
  Reopen();
  EXPECT_EQ(store_->ReadJobLog("s-j0", 0).value().lines(0), "later");

  const uint64_t running = Start();
  {
    LogTails restarted(RealClock(), store_.get());
    restarted.Put(Tail("s-j0", running, "running"));
    EXPECT_EQ(restarted.Get("s-j0", running).value().lines(0), "running");
  }
  const v1::JobLog stored = store_->ReadJobLog("s-j0", 0).value();
  EXPECT_EQ(stored.attempt_id(), ended);
  EXPECT_EQ(stored.lines(0), "later");
}

// Late tails that arrive faster than the store commits share writes, and the last one is what
// is stored.
TEST_F(StoredLogTailsTest, LateTailsInABurstShareWrites) {
  const uint64_t attempt = Start();
  auto tails = std::make_unique<LogTails>(RealClock(), store_.get());
  tails->Put(Tail("s-j0", attempt, "last words"));
  ASSERT_NO_FATAL_FAILURE(End(*tails, attempt));
  const int64_t before = store_->Stats().writes;
  // One write per tail would be kTails; the writer commits in far less time than that many
  // Puts take only if this thread is held off the processor hundreds of times meanwhile.
  constexpr int kTails = 1000;
  for (int i = 0; i < kTails; ++i) tails->Put(Tail("s-j0", attempt, absl::StrCat("late ", i)));
  tails.reset();  // waits for its writes
  const int64_t writes = store_->Stats().writes - before;
  EXPECT_GE(writes, 1);
  EXPECT_LT(writes, kTails / 2);
  EXPECT_EQ(store_->ReadJobLog("s-j0", 0).value().lines(0), absl::StrCat("late ", kTails - 1));
}

// A worker resends its tail on every new stream: the same tail of an ended attempt again is
// not written again.
TEST_F(StoredLogTailsTest, AResentTailIsNotWrittenAgain) {
  const uint64_t attempt = Start();
  auto tails = std::make_unique<LogTails>(RealClock(), store_.get());
  tails->Put(Tail("s-j0", attempt, "last words"));
  ASSERT_NO_FATAL_FAILURE(End(*tails, attempt));
  const int64_t before = store_->Stats().writes;
  tails->Put(Tail("s-j0", attempt, "last words"));
  tails.reset();  // waits for its writes
  EXPECT_EQ(store_->Stats().writes, before);
}

}  // namespace
}  // namespace ablate::coordinator
