// The text of a sweep's plan (sweep/plan.h), as `ablate plan` and `ablate submit` print it:
//
//   sweep nsa-research-1f0c... (grid): 54 jobs; 18 cells excluded by constraints
//   dimensions:
//     model           qwen3-0.6b 18  qwen3-4b 18  qwen3-8b 18
//   excluded:
//     model=qwen3-0.6b attention=dense ... context_length=512K: constraints[0]: <reason>
//   JOB  model ...  PARAMS  TOKENS  FLOPS  MEMORY  GPUS  BATCH  ACCUM  LR  GPU-H
//   total: 905.97B tokens, 2.76e+22 FLOPs, 3495.3 GPU-hours; 36 jobs unknown (no throughput)
//
// Pure functions of the plan; safe from any thread.
#ifndef ABLATE_CLI_PLAN_VIEW_H_
#define ABLATE_CLI_PLAN_VIEW_H_

#include <cstdint>
#include <limits>
#include <string>

#include "ablate/v1/plan.pb.h"

namespace ablate::cli {

// How many jobs a sweep makes, in the words `ablate validate`, `plan` and `submit` all use:
//   "54 jobs; 18 cells excluded by constraints"
//   "9 jobs (3 cells x 3 seeds); 0 cells excluded by constraints"
//   "48 jobs at most: 9 final (3 cells x 3 seeds) + 39 trials (rung 0: 30 x 25 steps, rung 1:
//    9 x 75 steps); 0 cells excluded by constraints; rung 0's 30 trials run first"
// (one line; "at most": a rung promotes only trials that succeeded, and a cell whose every
// point failed has no final jobs).
std::string JobCountText(const v1::JobCountPlan& count);

// The plan's text, every line ending in '\n'. The job table holds at most `max_jobs` rows;
// beyond that a line says how many were left out and how to see them (`ablate plan`).
std::string PlanText(const v1::SweepPlan& plan,
                     size_t max_jobs = std::numeric_limits<size_t>::max());

// 596.0M, 16.78B, 1.2K: a count with an SI suffix, three significant digits.
std::string SiCount(double value);
// 12.3 GiB: bytes in binary units; "-" for 0 (no plan).
std::string Bytes(uint64_t bytes);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_PLAN_VIEW_H_
