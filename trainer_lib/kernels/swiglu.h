// CUDA kernels for the SwiGLU activation of a gated MLP (Shazeer 2020, "GLU Variants Improve
// Transformer"; Hugging Face Qwen3MLP's down_proj(act_fn(gate_proj(x)) * up_proj(x)) with
// act_fn = silu), forward and backward, one elementwise pass each. Plain CUDA: no LibTorch
// here; the autograd glue is trainer_lib/model/fused_swiglu.h.
//
// The math, every element in fp32 (inputs widened exactly), each output rounded once to bf16:
//   e   = exp(-g);   s = 1 / (1 + e)   (sigmoid);   silu(g) = g / (1 + e)   (ATen's form)
//   forward:   y  = bf16(silu(g) * u)
//   backward:  dg = bf16(dy * u * s * (1 + g * (1 - s)))   (ATen's silu_backward, times u)
//              du = bf16(dy * silu(g))
// Eager PyTorch under bf16 autocast rounds more often: silu's output to bf16, then the product
// (forward); the product's gradient dy * u to bf16 before silu's backward (dg), and du from the
// rounded silu. So y here is the exact product rounded once, and may differ from eager's by one
// bf16 unit in the last place (it is the closer of the two to the exact value); likewise dg and
// du. Backward needs only g and u, not silu(g) or y.
//
// Shapes: g, u, dg, du are [rows, cols] bf16 with a row stride of gate_up_stride elements (>=
// cols), so that g and u may be the two halves of one [rows, 2 cols] projection's output
// (stride 2 cols, u = g + cols); y and dy are [rows, cols] bf16, contiguous. Rows of 8-element
// multiples with 16-byte aligned pointers take 16-byte loads and stores; any other shape works,
// one element at a time. Indexes are 64-bit.
#ifndef ABLATE_TRAINER_LIB_KERNELS_SWIGLU_H_
#define ABLATE_TRAINER_LIB_KERNELS_SWIGLU_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace ablate::kernels {

struct SwiGluParams {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t gate_up_stride = 0;  // elements between rows of g, u, dg, du
  const void* gate = nullptr;  // g, bf16
  const void* up = nullptr;    // u, bf16
  // Forward writes y; backward reads dy and writes dg and du.
  void* y = nullptr;         // bf16, [rows, cols]
  const void* dy = nullptr;  // bf16, [rows, cols]
  void* dgate = nullptr;     // bf16, g's layout
  void* dup = nullptr;       // bf16, u's layout
};

// True when the kernels can take these sizes (rows, cols >= 1, gate_up_stride >= cols).
bool SwiGluSupported(const SwiGluParams& p);

// Launch on `stream`; return the launch's error (cudaSuccess when it started).
cudaError_t SwiGluForward(const SwiGluParams& p, cudaStream_t stream);
cudaError_t SwiGluBackward(const SwiGluParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_SWIGLU_H_
