// How a sweep's expansion (grid.h) reports the cells that could not be resolved: problems
// grouped so that a file with several mistakes is fixed in one round. Pure; safe from any
// thread.
#ifndef ABLATE_SWEEP_CELL_PROBLEMS_H_
#define ABLATE_SWEEP_CELL_PROBLEMS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ablate::sweep::internal {

// For `cells` cells in run order, problem(i) the problems of cell i, a line each (null: it
// resolved), and label(i) its label ("optimizer=adamw context_length=1M"), asked only for the
// cells named: InvalidArgument with a line for each of the first five distinct problems, in the
// order of the first cell with each, "cell LABEL: PROBLEM", with up to three more cells it
// breaks ("(so do cells A, B, C and 4 more)", or "(so do all 7 other cells)" when every cell
// has it), then "and N more cells with other problems"; OK when no cell has one.
absl::Status CellProblems(size_t cells, absl::FunctionRef<const std::string*(size_t)> problem,
                          absl::FunctionRef<std::string(size_t)> label);

// The same grouping, as lines, for what is said of cells without refusing them (an expansion
// note): `others` names the last line's kind ("and 2 more cells with other notes"). Empty when
// no cell has one.
std::vector<std::string> GroupedCellLines(size_t cells,
                                          absl::FunctionRef<const std::string*(size_t)> problem,
                                          absl::FunctionRef<std::string(size_t)> label,
                                          absl::string_view others);

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_CELL_PROBLEMS_H_
