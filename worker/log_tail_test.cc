#include "worker/log_tail.h"

#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ablate::worker {
namespace {

TEST(ToValidUtf8Test, KeepsValidTextAndReplacesEachBadByte) {
  EXPECT_EQ(ToValidUtf8("plain ascii"), "plain ascii");
  EXPECT_EQ(ToValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(ToValidUtf8("a\xff\xfe b"), "a?? b");
  EXPECT_EQ(ToValidUtf8("cut \xe2\x82"), "cut ??");    // a character split at the end
  EXPECT_EQ(ToValidUtf8("\xc0\xaf"), "??");            // overlong '/'
  EXPECT_EQ(ToValidUtf8("\xed\xa0\x80"), "???");       // a surrogate
  EXPECT_EQ(ToValidUtf8("\xf4\x90\x80\x80"), "????");  // above U+10FFFF
}

class LogTailTest : public ::testing::Test {
 protected:
  std::filesystem::path Write(const std::string& text) {
    std::filesystem::path path = Path(files_++);
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  void TearDown() override {
    for (int i = 0; i < files_; ++i) std::filesystem::remove(Path(i));
  }
  std::filesystem::path Path(int i) {
    return std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("log_tail_test-", getpid(), "-", i);
  }
  int files_ = 0;
};

TEST_F(LogTailTest, JoinsTheLastNonEmptyLines) {
  EXPECT_EQ(LogTail(Write("one\ntwo\n\n  three  \r\nfour\n\n"), 3, 100), "two | three | four");
  EXPECT_EQ(LogTail(Write("only"), 3, 100), "only");
}

TEST_F(LogTailTest, KeepsTheEndOfALongTail) {
  EXPECT_EQ(LogTail(Write("abcdefghij\n"), 3, 4), "...ghij");
}

TEST_F(LogTailTest, ReadsOnlyTheEndOfABigFile) {
  std::string text(100000, 'x');
  text += "\nlast line\n";
  EXPECT_EQ(LogTail(Write(text), 1, 100), "last line");
}

TEST_F(LogTailTest, MissingOrBlankIsEmpty) {
  EXPECT_EQ(LogTail(Write("\n \n"), 3, 100), "");
  EXPECT_EQ(LogTail(std::filesystem::path(::testing::TempDir()) / "missing.log", 3, 100), "");
}

TEST_F(LogTailTest, ReadsTheLastLinesWhole) {
  const LogLines tail = ReadLogLines(Write("one\ntwo\r\n\nthree\n"), 3, 1000);
  EXPECT_EQ(tail.lines, (std::vector<std::string>{"two", "", "three"}));
  EXPECT_TRUE(tail.truncated);  // "one" was left out by the line bound
  const LogLines all = ReadLogLines(Write("one\ntwo\n"), 3, 1000);
  EXPECT_EQ(all.lines, (std::vector<std::string>{"one", "two"}));
  EXPECT_FALSE(all.truncated);
}

TEST_F(LogTailTest, KeepsALastLineStillBeingWritten) {
  EXPECT_EQ(ReadLogLines(Write("step 1\nstep 2 loss="), 5, 1000).lines,
            (std::vector<std::string>{"step 1", "step 2 loss="}));
}

TEST_F(LogTailTest, LeavesOutALineCutByTheByteBound) {
  // The last 13 bytes are "llo\nworld\nend": "llo" began before the window.
  const LogLines tail = ReadLogLines(Write("say hello\nworld\nend"), 10, 13);
  EXPECT_EQ(tail.lines, (std::vector<std::string>{"world", "end"}));
  EXPECT_TRUE(tail.truncated);
  // A window that starts just after a newline cuts nothing.
  EXPECT_EQ(ReadLogLines(Write("say hello\nworld\nend"), 10, 9).lines,
            (std::vector<std::string>{"world", "end"}));
}

TEST_F(LogTailTest, KeepsTheEndOfOneLineLongerThanTheWindow) {
  const LogLines tail = ReadLogLines(Write(std::string(100, 'x') + "yz"), 10, 4);
  EXPECT_EQ(tail.lines, (std::vector<std::string>{"xxyz"}));
  EXPECT_TRUE(tail.truncated);
}

TEST_F(LogTailTest, ReadsAtMostTheWindowOfABigFile) {
  std::string text;
  for (int i = 0; i < 100000; ++i) absl::StrAppend(&text, "line ", i, "\n");
  const LogLines tail = ReadLogLines(Write(text), 200, 64 << 10);
  ASSERT_EQ(tail.lines.size(), 200u);
  EXPECT_EQ(tail.lines.front(), "line 99800");
  EXPECT_EQ(tail.lines.back(), "line 99999");
  size_t bytes = 0;
  for (const std::string& line : ReadLogLines(Write(text), 100000, 1000).lines) {
    bytes += line.size() + 1;
  }
  EXPECT_LE(bytes, 1000u);
  EXPECT_GT(bytes, 900u);
}

TEST_F(LogTailTest, LinesAreValidUtf8AndAMissingFileHasNone) {
  // The window starts inside the two bytes of 'é' of the only line.
  EXPECT_EQ(ReadLogLines(Write("caf\xc3\xa9!"), 5, 2).lines, (std::vector<std::string>{"?!"}));
  const LogLines missing =
      ReadLogLines(std::filesystem::path(::testing::TempDir()) / "missing.log", 5, 100);
  EXPECT_TRUE(missing.lines.empty());
  EXPECT_FALSE(missing.truncated);
  EXPECT_TRUE(ReadLogLines(Write(""), 5, 100).lines.empty());
}

}  // namespace
}  // namespace ablate::worker
