// CUDA kernel for the softmax cross-entropy of one chunk of rows, its loss and its gradient with
// respect to the logits in one launch, in place over bf16 logits. Plain CUDA: no LibTorch here;
// the caller is trainer_lib/train/cross_entropy.cc (ChunkedCrossEntropySum's backward-in-forward).
//
// The math, per row r of logits z [rows, vocab] with target t_r (every sum in fp32, inputs
// widened exactly from bf16; natural log and exp):
//   lse_r  = log sum_j exp(z_rj)                (online: running max m and sum s, Milakov and
//                                                Gimelshein 2018, "Online normalizer
//                                                calculation for softmax")
//   loss_r = lse_r - z_r,t_r                     0 when t_r == ignore_index
//   dz_rj  = bf16(exp(z_rj - lse_r) - [j == t_r])   all 0 when t_r == ignore_index
// which is what the eager path computes in fp32 from the same bf16 logits (logsumexp, gather,
// sub_, exp_, scatter_add_, mul_ by the valid mask, then the cast to bf16) up to the order of
// lse's sum (about one fp32 unit). The eager path makes an fp32 copy of the chunk's logits and
// runs six passes over it; this reads the bf16 row twice and writes it once.
//
// Layout: logits [rows, vocab] bf16, contiguous, overwritten with dz; targets [rows] int64 (in
// [0, vocab) or ignore_index); lse and loss [rows] fp32, written. One thread block per row: a
// row of Qwen3's 151,936 columns is 297 KiB, so the second read mostly comes from L2 only when
// few rows are in flight. Rows whose vocab is a multiple of 8 and whose pointer is 16-byte
// aligned take 16-byte loads and stores. Indexes are 64-bit. A target outside [0, vocab) that
// is not ignore_index gives a loss of NaN for its row (the caller checks targets beforehand).
#ifndef ABLATE_TRAINER_LIB_KERNELS_CROSS_ENTROPY_H_
#define ABLATE_TRAINER_LIB_KERNELS_CROSS_ENTROPY_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace ablate::kernels {

struct CrossEntropyParams {
  int64_t rows = 0;
  int64_t vocab = 0;
  int64_t ignore_index = -100;
  void* logits = nullptr;             // bf16 [rows, vocab]: read, then overwritten with dz
  const int64_t* targets = nullptr;   // [rows]
  float* lse = nullptr;               // [rows], written
  float* loss = nullptr;              // [rows], written
};

// True when the kernel can take these sizes (rows, vocab >= 1, rows < 2^31 blocks).
bool CrossEntropySupported(const CrossEntropyParams& p);

// Launch on `stream`; return the launch's error (cudaSuccess when it started).
cudaError_t CrossEntropyForwardBackward(const CrossEntropyParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_CROSS_ENTROPY_H_
