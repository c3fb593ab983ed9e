// Which packed sequences make each batch. A split is one stream of tokens, documents laid end to
// end with an EOS after each (as scripts/prepare_data.py writes them, and as nanoGPT and
// Megatron-LM pack pretraining data). It is cut into sequences of T + 1 tokens that overlap by
// one, so every token after the first is a target exactly once per pass:
//   sequence k = tokens [k * T, k * T + T + 1),  k in [0, SequenceCount(N, T))
// A document runs on across sequence boundaries; nothing is padded or dropped except the tail
// shorter than a sequence.
//
// Training walks the sequences epoch after epoch, each epoch in its own pseudo-random order:
// row r of the batch of step s is sample g = s * B + r, which is position g mod S of epoch
// g / S. The batch is therefore a pure function of (data_seed, step): every cell of a sweep
// with the same data_seed sees the same data in the same order, and a run resumed at step s
// continues exactly as if it had never stopped. Evaluation takes the held-out sequences in
// order from the first. Pure functions, safe from any thread; no LibTorch.
#ifndef ABLATE_TRAINER_LIB_DATA_BATCHES_H_
#define ABLATE_TRAINER_LIB_DATA_BATCHES_H_

#include <cstdint>
#include <vector>

namespace ablate::train {

struct BatchShape {
  int64_t batch_size;      // B
  int64_t context_length;  // T
};

// The number of whole sequences of T + 1 tokens in a split of `tokens`: (tokens - 1) / T, or 0
// when the split is shorter than one sequence.
int64_t SequenceCount(int64_t tokens, int64_t context_length);

// The B sequence indices of training step `step`, in row order, from `sequences` > 0.
std::vector<int64_t> TrainSequences(int64_t sequences, BatchShape shape, uint64_t data_seed,
                                    int64_t step);

// The B sequence indices of evaluation batch `index`: index * B ... index * B + B - 1, wrapping
// around when the split holds fewer.
std::vector<int64_t> EvalSequences(int64_t sequences, BatchShape shape, int64_t index);

// A pseudo-random permutation of [0, n), n > 0, chosen by `key`: maps i in [0, n) to a distinct
// value in [0, n). A four-round Feistel network on the smallest domain of 4^h >= n values,
// walking the cycle until the value falls inside [0, n) (Black and Rogaway, "Ciphers with
// Arbitrary Finite Domains", 2002): O(1) memory and time per index, so an epoch of billions of
// sequences needs no shuffled table.
uint64_t PermuteIndex(uint64_t i, uint64_t n, uint64_t key);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_DATA_BATCHES_H_
