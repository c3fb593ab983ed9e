// The rules a SweepSpec's `tuning` section must meet (sweep/tuning.h says what it means): part
// of FindSpecIssues (sweep/validate.h), so the YAML reader places each problem in the file and
// ValidateSweepSpec reports a gRPC submission's. Every field is range-checked:
//  - method and metric: the one known each (successive_halving, eval/loss);
//  - parameters: at least one, each learning_rate or weight_decay (a misspelt name gets a
//    suggestion), not also a grid dimension, given once, as values or as a log range:
//      values: at least one, each parsing, none repeated; a learning rate in (0, 1], a weight
//        decay >= 0, a relative multiple > 0;
//      a log range: 0 < low < high, finite (a learning rate's high at most 1 unless relative);
//        a log grid (no samples) with 2..kMaxTrials points, which stay distinct at 3
//        significant digits; a sampled range (log_uniform) without points;
//  - samples: set, 1..kMaxTrials (leaving it out searches the grid of every combination);
//  - min_steps: required, at least 1;
//  - reduction_factor: set, 2..kMaxTrials (leaving it out means 3);
//  - the search as a whole, once its parameters are valid: 2..kMaxTrials points, no point
//    drawn twice, and the grid's cells times the points within kMaxCells jobs.
// The first problem of each field (each value of a list) is reported, every field checked.
// Rules that depend on a cell (min_steps below its steps, a relative parameter's own value
// above 0) are ExpandSweep's, through TrialsOfCell. Stateless; safe from any thread.
#ifndef ABLATE_SWEEP_TUNING_CHECK_H_
#define ABLATE_SWEEP_TUNING_CHECK_H_

#include <cstdint>
#include <vector>

#include "ablate/v1/sweep.pb.h"
#include "sweep/validate.h"

namespace ablate::sweep::internal {

// Every problem of spec.tuning() in the order above; `cells` is the grid's cell count (the
// product of its dimensions' sizes, saturating). `spec` must have tuning.
std::vector<SpecIssue> FindTuningIssues(const v1::SweepSpec& spec, uint64_t cells);

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_TUNING_CHECK_H_
