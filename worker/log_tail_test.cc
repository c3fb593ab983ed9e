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

}  // namespace
}  // namespace ablate::worker
