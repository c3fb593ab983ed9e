// Per-cell tuning (SweepSpec.tuning): every cell of a sweep searches learning rate and weight
// decay on short budgets by successive halving, then trains its best point for the cell's own
// steps. The search, the rungs and every promotion are pure functions of the spec and of the
// sweep's stored jobs, so the coordinator can drive a sweep's tuning from its jobs alone (also
// after a restart) and `ablate plan` can count what it costs before anything runs.
//
// Successive halving (Jamieson and Talwalkar, AISTATS 2016; the rungs and the default
// reduction factor eta = 3 as in Li et al., "A System for Massively Parallel Hyperparameter
// Tuning", MLSys 2020):
//  - the search has n points (SearchPoints); rung k trains min_steps * eta^k optimizer steps;
//    rung 0 holds every point, and rung k + 1 the best floor(n / eta^(k+1)) of rung k;
//  - a rung exists while its budget is below the cell's steps and it would hold at least two
//    trials (one trial left is already the choice; its rung would decide nothing);
//  - promotion is synchronous: rung k's best go on once all of rung k has ended. Li et al.'s
//    asynchronous rule (promote as soon as a trial is in the top 1/eta of the rung's ended
//    trials) pays off when one search owns a large cluster; here every cell of the sweep tunes
//    at once, so workers a rung's barrier leaves idle take other cells' trials and final jobs,
//    and the synchronous rule makes each promotion, the cell's choice and the plan's cost
//    independent of the order in which trials finish;
//  - a trial is judged by its eval/loss at its rung's end (the trainer evaluates at the end of
//    every run), lower is better; a trial that failed, diverged, was cancelled or has no finite
//    eval/loss ranks below every other and is never promoted or chosen; ties go to the lower
//    learning rate, then weight decay;
//  - the choice is the best trial of the highest rung run, among points that never failed;
//    each of the cell's seeds (1..repeats, or its configured seed) then trains the chosen point
//    for the cell's own steps: the cell's final jobs, which carry JobSpec.tuned.
// Trials train from scratch at each rung's budget, since the learning-rate schedule's length is
// part of the config; they use the cell's (first) seed, so every trial of a cell sees the same
// initial weights and batches and they differ only in the tuned values.
//
// Pure and deterministic; safe from any thread.
#ifndef ABLATE_SWEEP_TUNING_H_
#define ABLATE_SWEEP_TUNING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/plan.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "absl/status/statusor.h"

namespace ablate::sweep {

inline constexpr uint32_t kDefaultReductionFactor = 3;  // Li et al.'s default eta
inline constexpr char kTuningMethod[] = "successive_halving";
inline constexpr char kTuningMetric[] = "eval/loss";
// Marks a relative parameter's value in a search point: "x0.25" is a quarter of the cell's own.
inline constexpr char kRelativeMark[] = "x";

// The search's points in order: a grid's combinations (first parameter slowest), or
// `samples` points drawn by mt19937_64 seeded with `seed` (its output is fixed by the C++
// standard, so a seed draws the same points everywhere). Every value is rounded to 3
// significant digits, so configs and plans read as written; a relative parameter's value is a
// multiple of the cell's own, written after kRelativeMark ("x0.25"). `tuning` must be valid.
std::vector<v1::SearchPoint> SearchPoints(const v1::Tuning& tuning);

// Where `points`[chosen] lies in the search for `parameter`: 1 at its largest value, -1 at its
// smallest, 0 inside (or when the search tried one value, or chosen is out of range). A choice
// at the edge may have its best beyond the range. Relative values compare by their multiple,
// as they do for every cell.
int EdgeOfSearch(const std::vector<v1::SearchPoint>& points, uint32_t chosen,
                 const std::string& parameter);

// The rungs of a cell of `cell_steps` steps searching `points` points; empty when even the
// first rung's budget is not below cell_steps.
std::vector<v1::RungPlan> RungsOf(const v1::Tuning& tuning, size_t points, uint32_t cell_steps);

// The trials of a cell whose (first seed's) resolved config is `cell`: one per point, on rung
// 0, its JobSpec holding cell values, config (with the point's values and rung 0's steps; a
// relative value times the cell's own, rounded to 3 significant digits), config_hash and trial
// (ids and index left to the caller). InvalidArgument, its message starting with the tuning key
// at fault so a file reader can place it: the cell is too short for a rung ("tuning.min_steps:
// 50 steps is not below the cell's 40"), a relative parameter's own value in the cell is not
// above 0 ("tuning.parameters.weight_decay: relative, and the cell's own weight_decay is 0:
// ..."), or a trial's config is invalid (named by the tuned value that made it so, else by
// tuning.min_steps).
absl::StatusOr<std::vector<v1::JobSpec>> TrialsOfCell(
    const v1::Tuning& tuning, const std::vector<v1::SearchPoint>& points,
    const v1::TrainConfig& cell, const google::protobuf::RepeatedPtrField<v1::CellValue>& values);

// The identity of a trial: the hash of its config and its rung and cell_steps (two cells that
// differ only in steps may train the same config at some rung, as different trials). Not its
// point index: a search that grows keeps the trials of the values it still has.
std::string TrialHash(const v1::JobSpec& trial);

// A job's cell without the repeat's seed, as one string: the jobs of one cell share it.
std::string TuningCellKey(const v1::SweepSpec& spec, const v1::JobSpec& job);

struct TuningStep {
  // Jobs tuning needs now, ready for Store::AddJobs: the promoted trials of rungs that ended,
  // and the final jobs of cells that chose. Each is the trial it follows (sweep, cell, priority,
  // memory, FLOPs per token) with its own config, config_hash and trial or tuned; indexes
  // follow the sweep's, and ids and checkpoint dirs are named as ExpandSweep names them.
  std::vector<v1::JobSpec> add;
  // Jobs an update of the sweep dropped that tuning needs again as they are: each succeeded
  // with the config of a job tuning would add (its config_hash). They are kept rather than
  // run again, so that widening a search re-trains nothing it already trained: un-drop them
  // (Store::AddJobs's `dropped` less these).
  std::vector<std::string> revive;
  // Every cell has its final jobs, or never will (each of its points failed).
  bool done = false;
};

// What the tuning of `spec`'s sweep needs next, given every job of the sweep (dropped jobs
// take no part in it, except as `revive`). Adding `add`, reviving `revive` and calling it
// again, before anything else ends, gives nothing new.
TuningStep NextTuningJobs(const v1::SweepSpec& spec, const std::vector<v1::Job>& jobs);

// The states a tuned sweep's state is decided from, given every job of the sweep as
// NextTuningJobs takes them; the store counts them as it counts an untuned sweep's jobs
// (sweep.proto's SweepState). They are the cells' final jobs' states; for each cell that will
// never have final jobs (every point failed) FAILED, or CANCELLED when one of its trials was
// cancelled; and one PENDING while a trial of a cell without final jobs is pending, assigned or
// running, or tuning has jobs to add (NextTuningJobs's `add`, as at a rung's barrier), so the
// sweep reads ACTIVE until NextTuningJobs is done. A trial that failed or was cancelled counts
// nowhere: it ranks last and is never chosen, but the sweep's outcome is its cells'.
std::vector<v1::JobState> TuningOutcomes(const v1::SweepSpec& spec,
                                         const std::vector<v1::Job>& jobs);

}  // namespace ablate::sweep

#endif  // ABLATE_SWEEP_TUNING_H_
