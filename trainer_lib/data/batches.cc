#include "trainer_lib/data/batches.h"

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

// Two rounds of mixing keep nearby (seed, epoch) pairs from giving related orders.
uint64_t EpochKey(uint64_t data_seed, uint64_t epoch) {
  uint64_t state = data_seed;
  state = SplitMix64(state) ^ epoch;
  return SplitMix64(state);
}

}  // namespace

int64_t SequenceCount(int64_t tokens, int64_t context_length) {
  return tokens > context_length ? (tokens - 1) / context_length : 0;
}

std::vector<int64_t> TrainSequences(int64_t sequences, BatchShape shape, uint64_t data_seed,
                                    int64_t step) {
  std::vector<int64_t> rows(shape.batch_size);
  for (int64_t r = 0; r < shape.batch_size; ++r) {
    const auto sample = static_cast<uint64_t>(step * shape.batch_size + r);
    const auto n = static_cast<uint64_t>(sequences);
    rows[r] = static_cast<int64_t>(PermuteIndex(sample % n, n, EpochKey(data_seed, sample / n)));
  }
  return rows;
}

std::vector<int64_t> EvalSequences(int64_t sequences, BatchShape shape, int64_t index) {
  std::vector<int64_t> rows(shape.batch_size);
  for (int64_t r = 0; r < shape.batch_size; ++r) {
    rows[r] = (index * shape.batch_size + r) % sequences;
  }
  return rows;
}

uint64_t PermuteIndex(uint64_t i, uint64_t n, uint64_t key) {
  int half_bits = 1;
  while (half_bits < 32 && (uint64_t{1} << (2 * half_bits)) < n) ++half_bits;
  const uint64_t mask = (uint64_t{1} << half_bits) - 1;
  // Each round's function is SplitMix64 of the round's key and the right half; a Feistel
  // network is a bijection whatever its round functions are.
  uint64_t round_keys[4];
  uint64_t key_state = key;
  for (uint64_t& round_key : round_keys) round_key = SplitMix64(key_state);
  do {
    uint64_t left = i >> half_bits;
    uint64_t right = i & mask;
    for (const uint64_t round_key : round_keys) {
      uint64_t state = round_key ^ right;
      const uint64_t mixed = left ^ (SplitMix64(state) & mask);
      left = right;
      right = mixed;
    }
    i = (left << half_bits) | right;
  } while (i >= n);
  return i;
}

}  // namespace ablate::train
