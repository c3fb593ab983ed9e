// Runs one training job from start (or from its latest checkpoint) to the end, reporting
// through an EventSink. The loop reads like llm.c's: learning rate, batch, step (TrainStep:
// micro-batches, loss, backward, clip, update), log; evaluation and checkpoints come when due.
// Every stateful piece (configuration record, model, optimizer, progress, data position,
// random generators) saves and loads itself; a checkpoint saves them all (checkpoint.h).
//
// What a run sends, in order:
//   TrainerStarted    parameters, device ("cpu", "cuda:0"), resumed_from_step, total_steps,
//                     provenance (code version, resolved config, seeds, the SHA-256 of the
//                     corpus's tokens, device)
//   log               a warning per newer checkpoint set aside as unreadable, and which one
//                     the run resumed from instead
//   metrics           train/loss, train/lr, train/tokens_per_sec, train/grad_norm (and
//                     train/skipped_steps under nonfinite "skip") every log_every steps and at
//                     the last; eval/loss, eval/perplexity every eval_every steps (when > 0)
//                     and at the end
//   CheckpointSaved   every checkpoint_every steps (when > 0), at the end and when stopped,
//                     when the job names a checkpoint_dir
//   TrainerFinished   last, always: ok with final_eval_loss, or !ok with a one-line error
// A step in an event counts optimizer steps done: "step 40" follows the 40th update.
//
// A non-finite loss or gradient norm is noticed without waiting for the device (NonFiniteWatch)
// when the loop reads the loss to log it, and before any evaluation or checkpoint; under
// nonfinite "fail" the run then fails naming the first such step ("step 2: non-finite loss
// (nan)"), under "skip" such steps were left out and counted.
//
// Data parallelism: with WORLD_SIZE > 1 in the environment (RANK, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT as torchrun sets them; dist/process_group.h), this process is one rank of the
// job. Every rank runs the same loop on its rows of each global batch (batch_size is global:
// N ranks together take exactly the batches one process would), gradients are summed over the
// ranks during backward, so every rank makes the same update; a stop request is agreed at each
// step boundary (the first signal any rank has), and rank 0 writes the checkpoints after the
// ranks check that their parameters agree. Optimizer state is sharded: each rank keeps and
// saves that of the parameters it owns (dist/zero.h), and a checkpoint resumes at any rank
// count. Each rank sends its own events; the launcher gives
// rank 0 the event pipe and the others a log.
//
// Thread-safety: Run blocks its caller; `stop` may be set from any thread or signal handler.
#ifndef ABLATE_TRAINER_LIB_TRAIN_TRAINER_H_
#define ABLATE_TRAINER_LIB_TRAIN_TRAINER_H_

#include <atomic>
#include <cstdint>
#include <filesystem>

#include "ablate/v1/job.pb.h"
#include "absl/status/status.h"
#include "trainer_lib/train/event_sink.h"

namespace ablate::train {

// 0, or the number of the signal that asks the run to stop. Read at every step boundary and
// between evaluation batches; a checkpoint being written is finished first (it is what a stop
// saves anyway), then the run stops.
using StopRequest = std::atomic<int>;
static_assert(StopRequest::is_always_lock_free, "set from signal handlers");

// A window of steps to record with the profiler (step_profiler.h): `steps` steps (0: none)
// starting with the one that follows `first_step` completed steps, written under `dir`.
struct ProfileOptions {
  std::filesystem::path dir;
  int64_t first_step = 0;
  int64_t steps = 0;
};

// What a run does beyond its job: settings for whoever runs ablate-train by hand.
struct RunOptions {
  ProfileOptions profile;
  // With a checkpoint_dir and checkpoint_every 0, a checkpoint at the first step boundary after
  // this much training time since the last one, so that a crash or a lost worker costs at most
  // this much of the run; 0 writes only the final one.
  absl::Duration autosave_interval = absl::Minutes(30);
  // A TrainerProgress event at a step or evaluation batch once this much time has passed since
  // the last event, whatever log_every is: the worker takes a trainer that sends nothing for
  // its --stall-timeout-s as hung. Zero: one at every step and batch.
  absl::Duration progress_every = absl::Minutes(1);
};

// Trains job.config(), which the caller has validated (ValidateTrainConfig). Resumes from the
// newest checkpoint in job.checkpoint_dir() when there is one; an empty checkpoint_dir writes
// none. Returns:
//   OK                   every step ran;
//   Cancelled            "terminated by SIGTERM at step N" after a stop request, step N's
//                        checkpoint saved (given a checkpoint_dir); run_status.h's StopSignalOf names it;
//   InvalidArgument      WORLD_SIZE other than the job's ranks (gpus, or cpu_ranks), or a
//                        batch_size or micro_batch_size that does not split over them;
//   Unimplemented        an attention kind or optimizer not built yet, or data parallelism
//                        on a device whose backend this build lacks;
//   Unavailable          a GPU job on a host without CUDA, or ranks that failed to meet;
//   FailedPrecondition   a dataset too short or with a vocabulary larger than the model's, a
//                        non-finite loss or gradient ("step 2: non-finite loss (nan)"), or a
//                        checkpoint written under another configuration (naming the fields);
//   NotFound             a dataset, or a file of it, that is not there;
//   DataLoss             a dataset whose manifest is malformed or disagrees with its files, or
//                        a checkpoint that does not load into this model (naming the tensor);
//   ResourceExhausted    a full disk: "step N: checkpoint: write PATH: no space left on device";
//   Internal             another disk error naming the path, or a LibTorch exception prefixed
//                        with where it happened: "setup" or "step N" (steps done).
// TrainerFinished carries the same message. With options.profile.steps > 0 the window's files
// are written when it ends and its summary is sent as an "info" log event.
absl::Status Run(const v1::JobSpec& job, EventSink& events, const StopRequest& stop,
                 const RunOptions& options = {});

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_TRAINER_H_
