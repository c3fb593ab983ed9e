// Next-token cross-entropy computed from the final hidden states and the output head, a chunk
// of tokens at a time, so that the [tokens, vocab] fp32 logits are never held whole. At
// Qwen3's vocabulary (151,936) a 32K-token micro-batch's logits alone take 19 GiB in fp32;
// a 4096-token chunk takes 2.3 GiB and is freed before the next.
//
// The gradient is taken in the same pass (as Liger-Kernel's fused linear cross-entropy does):
// for each chunk, logits = h W^T, loss = logsumexp(logits) - logits[target], and
// d loss / d logits = softmax(logits) - onehot(target), from which dh = dlogits W and
// dW += dlogits^T h; backward then only scales the stored dh and dW by the incoming gradient
// and hands them over, so it runs once per forward.
// The result equals the unchunked loss and gradient up to fp32 summation order. On CUDA in
// bf16, where the fused kernels are on (trainer_lib/device/fused_kernels.h), each chunk's loss
// and logit gradient (evaluation's loss too) come from one kernel in place over the bf16 logits
// (trainer_lib/kernels/cross_entropy.h) instead of an fp32 copy and six passes over it.
//
// Thread-safety: none needed; pure functions of their arguments.
#ifndef ABLATE_TRAINER_LIB_TRAIN_CROSS_ENTROPY_H_
#define ABLATE_TRAINER_LIB_TRAIN_CROSS_ENTROPY_H_

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace ablate::train {

// Targets with this value count for nothing (padding), as in PyTorch's cross_entropy.
inline constexpr int64_t kIgnoreIndex = -100;

// The summed cross-entropy over positions n whose targets[n] != kIgnoreIndex:
//   sum_n logsumexp(hidden[n] W^T) - (hidden[n] W^T)[targets[n]]
// hidden: [N, H] fp32 or bf16; weight: [V, H] fp32 (the output head, or the tied embedding);
// targets: [N] int64 in [0, V) or kIgnoreIndex; chunk_tokens > 0 rows per chunk. Logits are
// products in `compute` (kFloat32, or kBFloat16 under mixed precision, as autocast would) and
// are summed in fp32. Returns a 0-d fp32 tensor; it carries gradients to `hidden` and `weight`
// when grad mode is on and either requires them.
at::Tensor ChunkedCrossEntropySum(const at::Tensor& hidden, const at::Tensor& weight,
                                  const at::Tensor& targets, int64_t chunk_tokens,
                                  at::ScalarType compute);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_CROSS_ENTROPY_H_
