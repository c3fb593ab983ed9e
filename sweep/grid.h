// Expansion of a sweep into its jobs: the grid's cross product (first dimension slowest),
// minus the cells constraints drop, each cell resolved to a TrainConfig (defaults, then the
// cell's values, then `fixed`, then matching overrides in order) and validated. Pure and
// deterministic: the same spec gives the same sweep id, the same jobs in the same order and the
// same job ids on every machine.
#ifndef ABLATE_SWEEP_GRID_H_
#define ABLATE_SWEEP_GRID_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ablate/v1/job.pb.h"
#include "ablate/v1/sweep.pb.h"

namespace ablate::sweep {

struct Expansion {
  std::string sweep_id;                // SweepId(spec)
  // job_id = <sweep_id>-<first 6 hex digits of config_hash>, more digits where two jobs of
  // the sweep share those 6 (as git lengthens short ids); index = position in this list.
  std::vector<v1::JobSpec> jobs;
  // Cells left out by constraints, every dimension in grid order with the value as written:
  // "model=tiny attention=dense context_length=512K: <reason>".
  std::vector<std::string> dropped;
};

// Checks a spec that did not come through ParseSweepYaml (a gRPC or JSON submission): a
// name, at least one dimension, each naming a TrainConfig field, non-empty and without
// repeated values (compared once parsed: "32K" repeats "32768"), at most 1,000,000 cells;
// conditions naming grid dimensions; fixed and override keys naming fields, fixed ones not
// grid dimensions; every value parsing as its field's type and every model, attention and
// optimizer name in the catalog. InvalidArgument names the key: "grid.optimzer: unknown
// setting (did you mean optimizer?)". ParseSweepYaml applies the same rules.
absl::Status ValidateSweepSpec(const v1::SweepSpec& spec);

// <slug of name>-<16 hex digits: the 64-bit hash of the spec's deterministic serialization>.
// The id ExpandSweep gives the spec's sweep, without expanding it (a resubmission is recognised
// from this alone).
std::string SweepId(const v1::SweepSpec& spec);

// Validates, then expands. Conditions compare parsed values, so `when: {context_length:
// 512K}` matches a grid value of 524288. InvalidArgument when a kept cell's config is invalid
// (the message names the cell), when two cells resolve to the same config (naming both), or
// when no cell is left.
absl::StatusOr<Expansion> ExpandSweep(const v1::SweepSpec& spec);

}  // namespace ablate::sweep

#endif  // ABLATE_SWEEP_GRID_H_
