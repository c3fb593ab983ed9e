#include "coordinator/api/log_tails.h"

#include <string>

#include "common/clock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

v1::LogTail Tail(const std::string& job_id, uint64_t attempt_id, std::string line) {
  v1::LogTail tail;
  tail.set_job_id(job_id);
  tail.set_attempt_id(attempt_id);
  tail.add_lines(std::move(line));
  return tail;
}

TEST(LogTailsTest, KeepsTheNewestAttemptsTail) {
  LogTails tails(RealClock());
  EXPECT_EQ(tails.Get("a").attempt_id(), 0u);
  EXPECT_EQ(tails.Get("a").lines_size(), 0);
  tails.Put(Tail("a", 2, "second"));
  tails.Put(Tail("a", 1, "first, late"));
  EXPECT_EQ(tails.Get("a").attempt_id(), 2u);
  EXPECT_EQ(tails.Get("a").lines(0), "second");
  EXPECT_TRUE(tails.Get("a").has_updated_at());
  tails.Put(Tail("a", 3, "third"));
  EXPECT_EQ(tails.Get("a").lines(0), "third");
}

TEST(LogTailsTest, DropsTheTailsUpdatedLongestAgoPastTheBound) {
  LogTails tails(RealClock(), /*max_bytes=*/25);
  tails.Put(Tail("a", 1, std::string(10, 'a')));
  tails.Put(Tail("b", 1, std::string(10, 'b')));
  tails.Put(Tail("a", 1, std::string(10, 'A')));  // a is now the newer
  tails.Put(Tail("c", 1, std::string(10, 'c')));  // 30 bytes: b goes
  EXPECT_EQ(tails.Get("b").lines_size(), 0);
  EXPECT_EQ(tails.Get("a").lines(0), std::string(10, 'A'));
  EXPECT_EQ(tails.Get("c").lines(0), std::string(10, 'c'));
  tails.Put(Tail("d", 1, std::string(40, 'd')));  // alone over the bound: it stays
  EXPECT_EQ(tails.Get("d").lines_size(), 1);
  EXPECT_EQ(tails.Get("a").lines_size(), 0);
  EXPECT_EQ(tails.Get("c").lines_size(), 0);
}

}  // namespace
}  // namespace ablate::coordinator
