// Runs one training job from start (or from its latest checkpoint) to the end, reporting
// through an EventSink. The loop reads like llm.c's: batch, zero grad, forward, loss,
// backward, clip, learning rate, optimizer step, log; evaluation and checkpoints come when due.
//
// What a run sends, in order:
//   TrainerStarted    parameters, device ("cpu", "cuda:0"), resumed_from_step, total_steps
//   metrics           train/loss, train/lr, train/tokens_per_sec, train/grad_norm every
//                     log_every steps and at the last; eval/loss, eval/perplexity every
//                     eval_every steps (when > 0) and at the end
//   CheckpointSaved   every checkpoint_every steps (when > 0), at the end and when stopped,
//                     when the job names a checkpoint_dir
//   TrainerFinished   last, always: ok with final_eval_loss, or !ok with a one-line error
// A step in an event counts optimizer steps done: "step 40" follows the 40th update.
//
// Thread-safety: Run blocks its caller; `stop` may be set from any thread or signal handler.
#ifndef ABLATE_TRAINER_LIB_TRAIN_TRAINER_H_
#define ABLATE_TRAINER_LIB_TRAIN_TRAINER_H_

#include <atomic>

#include "ablate/v1/job.pb.h"
#include "absl/status/status.h"
#include "trainer_lib/train/event_sink.h"

namespace ablate::train {

// 0, or the number of the signal that asks the run to stop. Read at every step boundary.
using StopRequest = std::atomic<int>;
static_assert(StopRequest::is_always_lock_free, "set from signal handlers");

// Trains job.config(), which the caller has validated (ValidateTrainConfig). Resumes from the
// newest checkpoint in job.checkpoint_dir() when there is one; an empty checkpoint_dir writes
// none. Returns:
//   OK                   every step ran;
//   Cancelled            "terminated by SIGTERM at step N" after a stop request, step N's
//                        checkpoint saved (given a checkpoint_dir);
//   Unimplemented        an attention kind, optimizer or GPU count not built yet;
//   FailedPrecondition   a GPU job on a host without CUDA, a dataset too short or with a
//                        vocabulary larger than the model's;
//   NotFound             a dataset, or a file of it, that is not there;
//   DataLoss             a dataset whose manifest is malformed or disagrees with its files,
//                        or a checkpoint that does not load into this model;
//   Internal             a disk error naming the path, or a LibTorch exception prefixed with
//                        where it happened: "setup" or "step N" (steps done).
// TrainerFinished carries the same message.
absl::Status Run(const v1::JobSpec& job, EventSink& events, const StopRequest& stop);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_TRAINER_H_
