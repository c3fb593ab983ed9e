#include "cli/job_log.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ablate::cli {
namespace {

using Lines = std::vector<std::string>;

TEST(SharedLinesTest, ANewerTailContinuesWhereTheShownLinesEnd) {
  EXPECT_EQ(SharedLines({"a", "b", "c"}, {"b", "c", "d", "e"}), 2u);
  EXPECT_EQ(SharedLines({"a", "b"}, {"a", "b", "c"}), 2u);
  EXPECT_EQ(SharedLines({"a", "b", "c"}, {"a", "b", "c"}), 3u);  // nothing new
}

TEST(SharedLinesTest, NoneSharedWhenTheLogMovedOnByMoreThanATail) {
  EXPECT_EQ(SharedLines({"a", "b"}, {"x", "y"}), 0u);
  EXPECT_EQ(SharedLines({}, {"x"}), 0u);
  EXPECT_EQ(SharedLines({"a"}, {}), 0u);
}

TEST(SharedLinesTest, RepeatedLinesTakeTheLongestRun) {
  // The log "x a a b": shown "x a a", then the tail "a a b". A shortest match would print
  // the second "a" twice.
  EXPECT_EQ(SharedLines({"x", "a", "a"}, {"a", "a", "b"}), 2u);
  // Only the end of the shown lines counts: "b" in the middle is no match.
  EXPECT_EQ(SharedLines({"b", "c"}, {"b", "d"}), 0u);
}

}  // namespace
}  // namespace ablate::cli
