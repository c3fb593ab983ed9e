// Expansion of a sweep into its jobs. The sweep's shape picks the cells: the grid's cross
// product (first dimension slowest, the default); a baseline and every cell that changes
// exactly one dimension from it; an explicit list; or a seeded random sample of the grid's
// allowed cells. Cells a constraint excludes are reported with the rule, never altered. Each
// kept cell resolves to a TrainConfig (defaults, then `fixed`, then the cell's values, then the
// derived settings, then the repeat's seed, then matching overrides in order), once per repeat,
// and is validated. With tuning, a cell's jobs are instead its first rung's trials, from its
// first seed's config (sweep/tuning.h); its later trials and final jobs are added as they run.
// Pure and deterministic: the same spec gives the same sweep id, the same jobs in the same
// order and the same job ids on every machine.
#ifndef ABLATE_SWEEP_GRID_H_
#define ABLATE_SWEEP_GRID_H_

#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/plan.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ablate::sweep {

struct Expansion {
  std::string sweep_id;  // SweepId(spec)
  // job_id = <sweep_id>-<first 6 hex digits of config_hash>, more digits where two jobs of
  // the sweep share those 6 (as git lengthens short ids); index = position in this list.
  std::vector<v1::JobSpec> jobs;
  // Cells left out by constraints, every dimension in grid order with the value as written,
  // and the first constraint each breaks.
  std::vector<v1::ExcludedCell> dropped;
  // The overrides (indices into spec.overrides) whose conditions no kept cell meets: they
  // change nothing. Legal (a file may keep a rule for cells it leaves out for now), but more
  // often a value mistyped or a cell excluded, so `validate`, `plan` and `submit` note them.
  std::vector<int> idle_overrides;
  // Cells the constraints keep (jobs count each one's repeats and trials): with a sample, fewer
  // than sample.count when the constraints allow fewer, which `validate` notes.
  uint64_t kept_cells = 0;
  // Kept cells that run as an earlier cell's jobs: they differ from it only in attention_args
  // dimensions, which their attention (dense) takes none of, so they resolve to its configs.
  // One run serves both; `validate`, `plan` and `submit` note each.
  struct SharedCell {
    std::string label;      // the cell's ("attention=dense attention_args.window=128")
    std::string runs_as;    // the label of the cell whose jobs it shares
    std::string dimension;  // the first dimension they differ in ("attention_args.window")
    std::string attention;  // the attention that takes no arguments ("dense")
  };
  std::vector<SharedCell> shared_cells;
};

// With `repeats`, each job's cell ends with this dimension, the repeat's seed (1..repeats).
inline constexpr char kRepeatDimension[] = "seed";

// "model=tiny attention=dense context_length=512K: <reason>", as a submission reports it.
std::string ExcludedLine(const v1::ExcludedCell& excluded);

// "model=tiny attention=nsa context_length=256": a job's cell, as the sweep's messages name it.
std::string CellLabel(const v1::JobSpec& job);

// Checks a spec that did not come through ParseSweepYaml (a gRPC or JSON submission): a
// name, at least one dimension, each naming a TrainConfig field, non-empty and without
// repeated values (compared once parsed: "32K" repeats "32768"), at most 1,000,000 cells;
// conditions naming grid dimensions; fixed and override keys naming fields, fixed ones not
// grid dimensions; every value parsing as its field's type and every model, attention and
// optimizer name in the catalog. InvalidArgument names the key: "grid.optimzer: unknown
// setting (did you mean optimizer?)", one line per problem, every problem found. ParseSweepYaml
// applies the same rules.
absl::Status ValidateSweepSpec(const v1::SweepSpec& spec);

// <slug of name>-<16 hex digits: the 64-bit hash of the spec's deterministic serialization>.
// The id ExpandSweep gives the spec's sweep, without expanding it (a resubmission is recognised
// from this alone).
std::string SweepId(const v1::SweepSpec& spec);

// Validates, then expands. Conditions compare parsed values, so `when: {context_length:
// 512K}` matches a grid value of 524288. InvalidArgument when a kept cell's config is invalid
// or a derived setting cannot be derived for it (the message names the cell and the field:
// "cell context_length=384: derived.tokens_per_step: 4096 tokens is not a whole number of
// 384-token sequences"; a line for each of the first three such problems, with up to three
// more cells each breaks, and a count of the rest; cells of dense attention past 128K tokens
// end it with the rule that fixes them, long_context_fix.h), when the baseline is excluded,
// when two cells resolve to the same config (naming both) other than through attention_args
// their attention ignores (Expansion::shared_cells), or when no cell is left.
absl::StatusOr<Expansion> ExpandSweep(const v1::SweepSpec& spec);

}  // namespace ablate::sweep

#endif  // ABLATE_SWEEP_GRID_H_
