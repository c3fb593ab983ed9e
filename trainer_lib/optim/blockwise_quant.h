// Block-wise quantization of optimizer state (Dettmers et al. 2022, "8-bit Optimizers via
// Block-wise Quantization", arXiv:2110.02861): a tensor is cut into consecutive blocks of
// `block` elements (the last one zero-padded); each block keeps one float32 scale, its largest
// magnitude (at least 1e-12), and each element a code indexing a small table of values in
// [-1, 1], chosen as the nearest table value to element / scale.
//
// Tables, each a fact about its source:
//   kNormalFloat4  the 16 quantiles of NF4 (Dettmers et al. 2023, "QLoRA", arXiv:2305.14314),
//                  for roughly normal data: orthogonal matrices' entries, first moments.
//   kPositive4     (k + 1) / 16, k = 0..15: a linear map without zero, as Li et al. 2023
//                  ("Memory Efficient Optimizers with 4-bit States", arXiv:2309.01507) use for
//                  second moments, so no denominator is quantized to zero.
//   kPositive8     (k + 1) / 256, k = 0..255: the same map without zero at 8 bits.
//   kSigned8       k / 127, k = -127..127: linear 8 bits.
// 4-bit codes are packed two to a byte (uint8, low nibble first), 8-bit codes one to a byte.
//
// Stateless; safe from any thread on distinct tensors.
#ifndef ABLATE_TRAINER_LIB_OPTIM_BLOCKWISE_QUANT_H_
#define ABLATE_TRAINER_LIB_OPTIM_BLOCKWISE_QUANT_H_

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace ablate::train {

enum class QuantTable { kNormalFloat4, kPositive4, kPositive8, kSigned8 };

struct Quantized {
  at::Tensor codes;   // uint8, ceil(numel / block) * block / (2 for 4-bit tables) bytes
  at::Tensor scales;  // float32 [ceil(numel / block)]
};

// x: float32, any shape (a kPositive4 input must be non-negative). block: even, >= 2.
Quantized Quantize(const at::Tensor& x, QuantTable table, int64_t block);

// The float32 tensor of `shape` that `q` encodes; shape's element count is x's.
at::Tensor Dequantize(const Quantized& q, QuantTable table, int64_t block,
                      at::IntArrayRef shape);

// Quantize for each of the B slices of xs [B, ...] on its own, in one pass over the stack: entry
// b is Quantize(xs[b]) bit for bit (each slice's last block padded apart). Its tensors are
// the slice's own (not views of a stacked result), so that each can be saved or freed alone.
std::vector<Quantized> QuantizeEach(const at::Tensor& xs, QuantTable table, int64_t block);

// Dequantize for B tensors of one `shape` at once: [B, shape...], slice b Dequantize(qs[b]).
at::Tensor DequantizeEach(const std::vector<Quantized>& qs, QuantTable table, int64_t block,
                          at::IntArrayRef shape);

// Bytes that Quantize's result holds for n elements (common/optimizer_state.h's
// BlockQuantizedBytes, which the state's accounting uses).
int64_t QuantizedBytes(int64_t n, QuantTable table, int64_t block);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_BLOCKWISE_QUANT_H_
