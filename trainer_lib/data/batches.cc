#include "trainer_lib/data/batches.h"

#include <vector>

#include <torch/torch.h>

namespace ablate::train {
namespace {

// SplitMix64 (Steele, Lea and Flood): a tiny generator whose output is fixed by its state
// alone, unlike torch's generators, so batches never depend on what else drew random numbers.
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Windows of T + 1 tokens at `offsets`, split into inputs and targets.
Batch Windows(const at::Tensor& tokens, const std::vector<int64_t>& offsets, int64_t t) {
  const auto b = static_cast<int64_t>(offsets.size());
  at::Tensor starts = torch::tensor(offsets, torch::kInt64).view({b, 1});
  at::Tensor index = starts + torch::arange(t + 1, torch::kInt64).view({1, t + 1});  // [B, T+1]
  at::Tensor windows = tokens.index_select(0, index.view({-1})).view({b, t + 1}).to(torch::kInt64);
  return {windows.narrow(1, 0, t), windows.narrow(1, 1, t)};
}

void CheckTokens(const at::Tensor& tokens, BatchShape shape) {
  TORCH_CHECK(tokens.dim() == 1, "batches are cut from 1-D token tensors, got ", tokens.sizes());
  TORCH_CHECK(tokens.numel() > shape.context_length + 1, "a split of ", tokens.numel(),
              " tokens is too short for windows of ", shape.context_length + 1);
}

}  // namespace

Batch TrainBatch(const at::Tensor& tokens, BatchShape shape, uint64_t data_seed, int64_t step) {
  CheckTokens(tokens, shape);
  // Two rounds of mixing keep nearby (seed, step) pairs from starting related streams.
  uint64_t seed_state = data_seed;
  uint64_t state = SplitMix64(seed_state) ^ static_cast<uint64_t>(step);
  state = SplitMix64(state);
  const auto starts = static_cast<uint64_t>(tokens.numel() - shape.context_length);
  std::vector<int64_t> offsets(shape.batch_size);
  for (int64_t& offset : offsets) offset = static_cast<int64_t>(SplitMix64(state) % starts);
  return Windows(tokens, offsets, shape.context_length);
}

Batch EvalBatch(const at::Tensor& tokens, BatchShape shape, int64_t index) {
  CheckTokens(tokens, shape);
  const int64_t starts = tokens.numel() - shape.context_length;
  std::vector<int64_t> offsets(shape.batch_size);
  for (int64_t r = 0; r < shape.batch_size; ++r) {
    offsets[r] = ((index * shape.batch_size + r) * (shape.context_length + 1)) % starts;
  }
  return Windows(tokens, offsets, shape.context_length);
}

}  // namespace ablate::train
