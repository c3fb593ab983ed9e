#include "sweep/cell_problems.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace ablate::sweep::internal {

std::vector<std::string> GroupedCellLines(size_t cells,
                                          absl::FunctionRef<const std::string*(size_t)> problem,
                                          absl::FunctionRef<std::string(size_t)> label,
                                          absl::string_view others) {
  constexpr size_t kProblems = 5, kOthers = 3;
  struct Problem {
    size_t first;  // the first cell with it
    absl::string_view text;
    std::vector<std::string> others;  // up to kOthers more cells with it
    size_t more = 0;                  // the rest
  };
  std::vector<Problem> problems;
  size_t beyond = 0;  // cells with a problem not among those named
  for (size_t i = 0; i < cells; ++i) {
    const std::string* text = problem(i);
    if (text == nullptr) continue;
    bool unnamed = false;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      auto same = std::find_if(problems.begin(), problems.end(),
                               [&](const Problem& named) { return named.text == line; });
      if (same == problems.end()) {
        if (problems.size() < kProblems) {
          problems.push_back({i, line, {}, 0});
        } else {
          unnamed = true;
        }
      } else if (same->others.size() < kOthers) {
        same->others.push_back(label(i));
      } else {
        ++same->more;
      }
    }
    beyond += unnamed ? 1 : 0;
  }
  std::vector<std::string> parts;
  for (const Problem& named : problems) {
    std::string part = absl::StrCat("cell ", label(named.first), ": ", named.text);
    if (named.others.size() + named.more + 1 == cells && cells > 2) {
      absl::StrAppend(&part, " (so do all ", cells - 1, " other cells)");
    } else if (!named.others.empty()) {
      absl::StrAppend(&part, " (so do cells ", absl::StrJoin(named.others, ", "),
                      named.more > 0 ? absl::StrCat(" and ", named.more, " more") : "", ")");
    }
    parts.push_back(std::move(part));
  }
  if (beyond > 0) {
    parts.push_back(absl::StrCat("and ", beyond, beyond == 1 ? " more cell" : " more cells",
                                 " with other ", others));
  }
  return parts;
}

absl::Status CellProblems(size_t cells, absl::FunctionRef<const std::string*(size_t)> problem,
                          absl::FunctionRef<std::string(size_t)> label) {
  const std::vector<std::string> lines = GroupedCellLines(cells, problem, label, "problems");
  if (lines.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

}  // namespace ablate::sweep::internal
