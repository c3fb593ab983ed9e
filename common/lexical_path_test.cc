#include "common/lexical_path.h"

#include "gtest/gtest.h"

namespace ablate {
namespace {

TEST(LexicallyWithinTest, APathUnderTheRootOrTheRootItselfIsWithin) {
  EXPECT_TRUE(LexicallyWithin("/data/set/train.bin", "/data"));
  EXPECT_TRUE(LexicallyWithin("/data", "/data"));
  EXPECT_TRUE(LexicallyWithin("runs/a", "runs"));
}

TEST(LexicallyWithinTest, TrailingSlashesAndDotsDoNotMatter) {
  EXPECT_TRUE(LexicallyWithin("/data/set", "/data/"));
  EXPECT_TRUE(LexicallyWithin("/data/set/", "/data"));
  EXPECT_TRUE(LexicallyWithin("/data/", "/data"));
  EXPECT_TRUE(LexicallyWithin("/data", "/data//"));
  EXPECT_TRUE(LexicallyWithin("/data/./a/../set", "/data/."));
  EXPECT_TRUE(LexicallyWithin("/data/set", "/other/../data"));
}

TEST(LexicallyWithinTest, DotDotLeavingTheRootIsOutside) {
  EXPECT_FALSE(LexicallyWithin("/data/../etc/passwd", "/data"));
  EXPECT_FALSE(LexicallyWithin("/data/..", "/data"));
  EXPECT_FALSE(LexicallyWithin("runs/../../x", "runs"));
}

TEST(LexicallyWithinTest, ASiblingSharingTheRootsSpellingIsOutside) {
  EXPECT_FALSE(LexicallyWithin("/data2", "/data"));
  EXPECT_FALSE(LexicallyWithin("/data2/set", "/data"));
  EXPECT_FALSE(LexicallyWithin("/dat", "/data"));
  EXPECT_FALSE(LexicallyWithin("/", "/data"));
}

TEST(LexicallyWithinTest, AbsoluteAndRelativeAndEmptyNeverMatch) {
  EXPECT_FALSE(LexicallyWithin("data/set", "/data"));
  EXPECT_FALSE(LexicallyWithin("/data/set", "data"));
  EXPECT_FALSE(LexicallyWithin("", "/data"));
  EXPECT_FALSE(LexicallyWithin("/data", ""));
  EXPECT_FALSE(LexicallyWithin("data", ""));
}

}  // namespace
}  // namespace ablate
