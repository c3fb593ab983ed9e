// Defaults, field access by name and validation for TrainConfig, the resolved settings of one
// run. Sweep files set fields by name (grid dimensions, `fixed`, `overrides`), so the mapping
// from a name and a string value to a typed field lives here, once, through protobuf
// reflection. Stateless; safe from any thread.
#ifndef ABLATE_COMMON_TRAIN_CONFIG_H_
#define ABLATE_COMMON_TRAIN_CONFIG_H_

#include <cstdint>
#include <string>

#include "ablate/v1/config.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ablate {

// The settings a cell starts from before the sweep's grid, fixed settings and overrides:
// tiny model, dense attention, AdamW at 3e-3 with 10 warmup steps, 200 steps of 16 x 128
// tokens on the built-in corpus, fp32, seeds 1 and 1.
v1::TrainConfig DefaultTrainConfig();

// `config` with the training loop's zero values replaced by what they mean: micro_batch_size
// 0 is batch_size, and loss_chunk_tokens, lr_schedule, decay_fraction, nonfinite and
// keep_checkpoints and divergence_evals left at zero (a config resolved before they existed) take
// DefaultTrainConfig()'s values, grad_bucket_mb kDefaultGradBucketMb.
v1::TrainConfig WithLoopDefaults(v1::TrainConfig config);

// `config` with every setting that a sweep wrote at the value its unset form runs as put back
// to that unset form (micro_batch_size equal to a rank's whole share, divergence_evals 3,
// grad_bucket_mb kDefaultGradBucketMb, optimizer_sharding "auto", cpu_ranks 1, an
// attention_args or optimizer_args entry at its declared default), and without the
// attention_args of an attention that takes none (dense): a cell that writes a default, or an
// argument its attention ignores, and one that leaves it out are then one job, of one id
// (EraseDefaultArgs, typed_args.h, says why what trains is the same). Settings that
// DefaultTrainConfig sets (loss_chunk_tokens 4096, ...) are already equal either way. A config
// that is already so comes back unchanged, so a stored job's config normalized again is the
// config an expansion gives its cell now.
v1::TrainConfig WithoutExplicitDefaults(v1::TrainConfig config);

// Megabytes of gradients per all-reduce bucket when grad_bucket_mb is 0: 100, where PyTorch
// DDP's bucket_cap_mb is 25. On 2 H200s (Qwen3-0.6B, 4,096 x 4 tokens per GPU) it kept 96.5% and
// 96.5% of the 1-GPU throughput per GPU against 96.0% and 96.1% for 25 MB, in alternating runs
// of one call (docs/benchmarks.md, "Data parallelism on 2 H200s").
inline constexpr uint32_t kDefaultGradBucketMb = 100;

// Sets the field called `name` ("learning_rate", "context_length", "optimizer_args.beta2",
// "attention_args.window")
// from its text form. Integers accept a K/M suffix in powers of two ("32K" = 32768).
// InvalidArgument names the field and the value when the name is unknown or the value does
// not parse as the field's type, and refuses 0 for a setting whose 0 stands for its default
// (micro_batch_size, loss_chunk_tokens, decay_fraction, keep_checkpoints, divergence_evals,
// grad_bucket_mb): a sweep writing it would run the default under a label that says 0.
absl::Status SetTrainField(v1::TrainConfig& config, absl::string_view name,
                           absl::string_view value);

// The text form of a field, as SetTrainField would read it back ("0.003", "131072", "dense").
// Returns an empty string for an unknown name.
std::string GetTrainField(const v1::TrainConfig& config, absl::string_view name);

// True when `name` is a field SetTrainField accepts.
bool IsTrainField(absl::string_view name);

// True when `name` is a map whose keys SetTrainField sets one at a time ("attention_args",
// "optimizer_args"): not a field itself, but a sweep file's map of them.
bool IsTrainArgMap(absl::string_view name);

// Upper bounds of a job's sizes, far above any real run: 100M steps, 2^20 sequences per step,
// 2^20 tokens per sequence (the 1M context NSA sweeps use), 4,096 GPUs, 256 CPU ranks.
inline constexpr uint32_t kMaxSteps = 100'000'000;
inline constexpr uint32_t kMaxBatch = 1u << 20;
inline constexpr uint32_t kMaxContext = 1u << 20;
inline constexpr uint32_t kMaxGpus = 4096;
inline constexpr uint32_t kMaxCpuRanks = 256;

// Data-parallel ranks of a run: gpus when it asks for GPUs, else cpu_ranks, at least 1. One
// rule for the trainer's process group, the worker's gang of ranks, the scheduler's slot count
// and the plan's per-rank batch.
uint32_t WorldSize(const v1::TrainConfig& config);

// Each of `ranks` data-parallel ranks' micro-batch: micro_batch_size (0: the rank's whole
// share) capped at the rank's batch_size / ranks rows. InvalidArgument, naming the field, when
// batch_size does not split evenly over the ranks or the micro-batch does not divide a rank's
// rows: "batch_size: 64 does not split evenly over the job's 3 ranks".
absl::StatusOr<uint32_t> MicroBatchPerRank(const v1::TrainConfig& config, uint32_t ranks);

// Checks a resolved config: every number finite, sizes within the bounds above, known model,
// attention and optimizer names, optimizer_args and attention_args as their optimizer and
// attention kind declare them, positive steps, batch and context, a learning rate in (0, 1],
// warmup not longer than the run, context lengths above 128K only with NSA, a batch that
// splits over its WorldSize ranks in micro-batches (MicroBatchPerRank), a known lr_schedule and
// nonfinite policy, decay_fraction in [0, 1], a divergence_factor of 0 or above 1, and
// cpu_ranks only without gpus. InvalidArgument with a line for each problem, each naming its
// field first, the first problem of a field only, so that one round of edits fixes them all:
// "steps: must be positive\ncontext_length: 524288 requires attention nsa (got dense, ...)".
absl::Status ValidateTrainConfig(const v1::TrainConfig& config);

// `config` with, for a model hf:PATH, hf_model set to the config PATH holds now: what a sweep's
// expansion records. Fails as ModelByName does; `config` unchanged for a catalog model.
absl::Status RecordHfModel(v1::TrainConfig& config);

// The model a job runs: ModelByName(config.model()), and where the config recorded hf_model,
// FailedPrecondition naming the fields when PATH no longer holds it ("model: hf:/m changed since
// its sweep was expanded (num_hidden_layers 2 vs 3); submit the edited model as a new sweep or
// with --update").
absl::StatusOr<v1::ModelConfig> ModelOfConfig(const v1::TrainConfig& config);

}  // namespace ablate

#endif  // ABLATE_COMMON_TRAIN_CONFIG_H_
