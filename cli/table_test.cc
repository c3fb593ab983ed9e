#include "cli/table.h"

#include "gtest/gtest.h"

namespace ablate::cli {
namespace {

TEST(TableTest, PadsColumnsToTheWidestCell) {
  Table table({"ID", "STATE"});
  table.AddRow({"a", "RUNNING"});
  table.AddRow({"long-id", "PENDING"});
  EXPECT_EQ(table.Render(),
            "ID       STATE\n"
            "a        RUNNING\n"
            "long-id  PENDING\n");
}

TEST(TableTest, RightAlignsNumbers) {
  Table table({"JOB", "STEP", "LOSS"});
  table.SetAlign(1, Table::Align::kRight);
  table.AddRow({"a", "5", "2.3100"});
  table.AddRow({"b", "1200", "-"});
  EXPECT_EQ(table.Render(),
            "JOB  STEP  LOSS\n"
            "a       5  2.3100\n"
            "b    1200  -\n");
}

TEST(TableTest, PagesLineUpWithTheFirst) {
  Table first({"ID", "STATE"});
  first.AddRow({"long-id", "RUNNING"});
  Table second({"ID", "STATE"});
  second.SetMinWidths(first.Widths());
  second.AddRow({"b", "PENDING"});
  EXPECT_EQ(first.Render() + second.Render(/*header=*/false),
            "ID       STATE\n"
            "long-id  RUNNING\n"
            "b        PENDING\n");
}

TEST(TableTest, LeavesNoTrailingWhitespace) {
  Table table({"A", "MESSAGE"});
  table.AddRow({"x", ""});
  table.AddRow({"y", "out of memory"});
  for (const char* line : {"A  MESSAGE\n", "x\n", "y  out of memory\n"}) {
    EXPECT_NE(table.Render().find(line), std::string::npos) << line;
  }
}

TEST(TableTest, PadsShortRowsAndCutsLongOnes) {
  Table table({"A", "B"});
  table.AddRow({"1"});
  table.AddRow({"2", "3", "ignored"});
  EXPECT_EQ(table.rows(), 2u);
  EXPECT_EQ(table.Render(), "A  B\n1\n2  3\n");
}

TEST(TableTest, CountsCodePointsNotBytes) {
  Table table({"X", "Y"});
  table.AddRow({"—", "a"});
  table.AddRow({"ab", "b"});
  EXPECT_EQ(table.Render(),
            "X   Y\n"
            "—   a\n"
            "ab  b\n");
}

TEST(TableTest, IgnoresAlignmentOfMissingColumn) {
  Table table({"A"});
  table.SetAlign(5, Table::Align::kRight);
  table.AddRow({"1"});
  EXPECT_EQ(table.Render(), "A\n1\n");
}

TEST(DisplayWidthTest, CountsUtf8CodePoints) {
  EXPECT_EQ(DisplayWidth(""), 0u);
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("a·b"), 3u);
  EXPECT_EQ(DisplayWidth("…"), 1u);
}

TEST(TruncateToWidthTest, NeverSplitsACodePoint) {
  EXPECT_EQ(TruncateToWidth("abcdef", 3), "abc");
  EXPECT_EQ(TruncateToWidth("a·bc", 2), "a·");
  EXPECT_EQ(TruncateToWidth("a·bc", 1), "a");
  EXPECT_EQ(TruncateToWidth("ab", 5), "ab");
  EXPECT_EQ(TruncateToWidth("ab", 0), "");
}

}  // namespace
}  // namespace ablate::cli
