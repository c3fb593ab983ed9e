#include "sweep/cell_problems.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ablate::sweep::internal {
namespace {

// CellProblems over `problems`, a cell each (nullopt: it resolved), cells labelled "c0", "c1"...
absl::Status Report(const std::vector<std::optional<std::string>>& problems) {
  return CellProblems(
      problems.size(), [&](size_t i) { return problems[i] ? &*problems[i] : nullptr; },
      [](size_t i) { return absl::StrCat("c", i); });
}

TEST(CellProblemsTest, NoProblemIsOk) { EXPECT_TRUE(Report({std::nullopt, std::nullopt}).ok()); }

// A cell with several problems gives each its line, grouped with the other cells it breaks.
TEST(CellProblemsTest, EachLineOfACellIsItsOwnProblem) {
  const absl::Status status =
      Report({"steps: must be positive\nlearning_rate: 3 is outside (0, 1]", std::nullopt,
              "steps: must be positive", "learning_rate: 3 is outside (0, 1]"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "cell c0: steps: must be positive (so do cells c2)\n"
            "cell c0: learning_rate: 3 is outside (0, 1] (so do cells c3)");
}

// A problem of every cell says so rather than listing some of them.
TEST(CellProblemsTest, AProblemOfEveryCellSaysSo) {
  EXPECT_EQ(Report({"steps: must be positive", "steps: must be positive\nx: y",
                    "steps: must be positive"})
                .message(),
            "cell c0: steps: must be positive (so do all 2 other cells)\ncell c1: x: y");
}

// Five distinct problems are named, three more cells for each, and the rest counted.
TEST(CellProblemsTest, NamesFiveProblemsAndCountsTheRest) {
  std::vector<std::optional<std::string>> problems;
  problems.reserve(12);
  for (int i = 0; i < 7; ++i) problems.push_back(absl::StrCat("p", i));
  for (int i = 0; i < 5; ++i) problems.push_back("p0");
  const std::string message(Report(problems).message());
  EXPECT_EQ(message,
            "cell c0: p0 (so do cells c7, c8, c9 and 2 more)\n"
            "cell c1: p1\ncell c2: p2\ncell c3: p3\ncell c4: p4\n"
            "and 2 more cells with other problems");
}

}  // namespace
}  // namespace ablate::sweep::internal
