// Batches of next-token prediction: windows of context_length + 1 tokens, the first T as
// inputs and the last T as targets. Training batches are a pure function of (data_seed, step),
// so every cell of a sweep with the same data_seed sees the same data in the same order, and a
// run resumed at step s continues exactly as if it had never stopped. Evaluation uses fixed
// windows of the held-out split. Pure functions, safe from any thread.
#ifndef ABLATE_TRAINER_LIB_DATA_BATCHES_H_
#define ABLATE_TRAINER_LIB_DATA_BATCHES_H_

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace ablate::train {

struct Batch {
  at::Tensor inputs;   // [B, T] int64
  at::Tensor targets;  // [B, T] int64, inputs shifted left by one token
};

struct BatchShape {
  int64_t batch_size;      // B
  int64_t context_length;  // T
};

// B windows starting at uniformly drawn offsets of `tokens` (1-D, more than T + 1 of them),
// drawn from a SplitMix64 stream seeded by (data_seed, step).
Batch TrainBatch(const at::Tensor& tokens, BatchShape shape, uint64_t data_seed, int64_t step);

// Evaluation batch `index`: windows index * B ... index * B + B - 1 of the split laid end to
// end from its start, wrapping around when the split is shorter than the windows asked for.
Batch EvalBatch(const at::Tensor& tokens, BatchShape shape, int64_t index);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_DATA_BATCHES_H_
