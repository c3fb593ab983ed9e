// One step of AdamW with block-wise 8-bit moments (trainer_lib/optim/adamw8bit.h states the
// method and its source, torchao's AdamW8bit) for one parameter, in one kernel: it reads the
// parameter, its gradient and both moments once and writes them once, where the eager
// LibTorch path runs about 40 operations per tensor.
//
// The math is the eager path's, operation for operation in fp32 (__fmul_rn and friends keep
// nvcc from contracting two roundings into one):
//   p32  = p - (lr * wd) * p
//   m    = lerp(deq(m), g, 1 - beta1);   v = lerp(deq(v), g * g, 1 - beta2)
//   lerp = ATen's CUDA lerp: s + w (e - s) when |w| < 0.5, else e - (e - s)(1 - w), each a
//          fused multiply-add as nvcc compiles ATen's
//   store: per block of 256 elements, scale = max(absmax, 1e-12), code = the nearest map value
//          to x / scale (ties up), by the eager path's branch-free binary search
//   p    = p32 - lr * (m / bias_correction1) / (sqrt(v) / sqrt(bias_correction2) + eps)
// with m and v unquantized in the last line. ATen's pow and the kernel's may differ in the
// last bit, so the caller passes the bias corrections.
//
// Shapes (all contiguous, device memory): param and grad [numel], fp32 or bf16 (both of the
// same dtype). Quantized moments: codes uint8 [numel], scales fp32 [numel / 256], numel a
// multiple of 256; qmaps fp32 [256] each, ascending. Unquantized moments: fp32 [numel], any
// numel, scales and qmaps unused. Indexes are 64-bit.
#ifndef ABLATE_TRAINER_LIB_KERNELS_ADAMW8BIT_H_
#define ABLATE_TRAINER_LIB_KERNELS_ADAMW8BIT_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ablate::kernels {

enum class ParamDtype { kFloat32, kBFloat16 };

inline constexpr int64_t kAdamW8bitBlock = 256;  // elements per scale (torchao's block)

struct AdamW8bitParams {
  ParamDtype dtype = ParamDtype::kFloat32;
  void* param = nullptr;
  const void* grad = nullptr;
  int64_t numel = 0;
  bool quantized = true;                 // moments as 8-bit codes and scales, else fp32
  void* exp_avg = nullptr;               // uint8 codes or fp32
  void* exp_avg_sq = nullptr;            // uint8 codes or fp32
  float* exp_avg_scale = nullptr;        // quantized only
  float* exp_avg_sq_scale = nullptr;     // quantized only
  const float* qmap_signed = nullptr;    // quantized only: the first moment's map
  const float* qmap_unsigned = nullptr;  // quantized only: the second moment's map
  float lr = 0;
  float lr_times_weight_decay = 0;  // fp32(lr * wd), as the eager path rounds it
  float one_minus_beta1 = 0;
  float one_minus_beta2 = 0;
  float eps = 0;
  float bias_correction1 = 1;       // 1 - beta1^step
  float bias_correction2_sqrt = 1;  // sqrt(1 - beta2^step)
};

// Launch on `stream`; return the launch's error (cudaSuccess when it started).
cudaError_t AdamW8bitStep(const AdamW8bitParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_ADAMW8BIT_H_
