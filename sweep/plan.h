// A sweep's plan: what each of its jobs will cost before anything runs, from the expansion and
// common/model_math alone (no coordinator, no LibTorch), for `ablate plan` and `ablate submit`.
//
// Per job: trainable parameters; tokens = steps * batch_size * context_length; FLOPs = tokens *
// TrainingFlopsPerToken (6 per matrix parameter plus the attention products of its kind and
// context length); the planned peak memory of one rank; GPUs; the derived batch, micro-batch
// and accumulation steps; the learning rate; and, where the sweep's throughput table has an
// entry for the cell, hours = tokens / (tokens_per_second * max(1, gpus)) / 3600 and GPU-hours
// = hours * max(1, gpus). A job no entry matches has no estimate and is counted as such, so a
// total is never silently short.
//
// With tuning (sweep/tuning.h), the jobs listed are the cells' final jobs, each seed's config at
// the cell's steps with learning rate and weight decay left to the tuning (CellPlan.tuned, no
// job id yet, learning_rate 0 and the search space in CellPlan.tuned_parameters rather than a
// value no job will train with); the first job of each cell carries its rungs and their cost
// over its trials (CellPlan.tuning), and the totals count the trials too.
//
// Pure and deterministic; safe from any thread.
#ifndef ABLATE_SWEEP_PLAN_H_
#define ABLATE_SWEEP_PLAN_H_

#include "ablate/v1/plan.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "sweep/grid.h"

namespace ablate::sweep {

// The plan of `expansion`, which must be ExpandSweep(spec)'s. A job whose model cannot be read
// (an hf: path gone since it was validated) gets parameters and FLOPs 0.
v1::SweepPlan PlanOf(const v1::SweepSpec& spec, const Expansion& expansion);

// How many jobs the sweep makes, the one count `ablate validate`, `plan` and `submit` print
// (plan.proto's JobCountPlan): finals = cells * max(1, repeats); with tuning, rung k's trials
// summed over the cells (RungsOf each cell's steps), total = finals + trials as an upper bound,
// and submitted = the expansion's jobs (rung 0's trials). `expansion` must be
// ExpandSweep(spec)'s. PlanOf's job_count and trials are this.
v1::JobCountPlan JobCountOf(const v1::SweepSpec& spec, const Expansion& expansion);

// "grid", "baseline", "cells" or "sample": the shape that picks the spec's cells.
const char* ShapeName(const v1::SweepSpec& spec);

}  // namespace ablate::sweep

#endif  // ABLATE_SWEEP_PLAN_H_
