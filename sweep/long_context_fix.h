// The cure of one refusal of a sweep's cells that the sweep file can state itself: dense
// attention at a context longer than it takes (kLongestDenseContext). A grid of attention kinds
// by context lengths meets it as soon as its contexts pass 128K, and the fix is a rule the
// reader would otherwise look up, so ExpandSweep's refusal ends with that rule in the file's
// own syntax. Internal to sweep/; pure, safe from any thread.
#ifndef ABLATE_SWEEP_LONG_CONTEXT_FIX_H_
#define ABLATE_SWEEP_LONG_CONTEXT_FIX_H_

#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "absl/status/status.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace ablate::sweep::internal {

using CellValueList = google::protobuf::RepeatedPtrField<v1::CellValue>;

// `problems` (the cells' refusal, CellProblems') followed by the fix, when context_length is a
// grid dimension and one of `failed` (the grid values of each cell with a problem) has a value
// of it above kLongestDenseContext with an attention other than nsa: with attention a grid
// dimension, the constraint that leaves those cells out,
//   constraints:
//     - when: {context_length: [512K, 1M]}
//       require: {attention: [nsa]}
// and without, the override that trains them with NSA (set: {attention: nsa}); the section's
// name only when the file has none yet. `problems` unchanged otherwise.
absl::Status WithLongContextFix(const v1::SweepSpec& spec, const absl::Status& problems,
                                const std::vector<const CellValueList*>& failed);

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_LONG_CONTEXT_FIX_H_
