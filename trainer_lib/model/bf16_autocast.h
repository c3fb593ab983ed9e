// The condition shared by the model's fused-kernel bindings (fused_norm.h, fused_swiglu.h):
// they replace what bf16 autocast on CUDA computes, so they apply only where it is on.
// Thread-safety: reads the calling thread's autocast state.
#ifndef ABLATE_TRAINER_LIB_MODEL_BF16_AUTOCAST_H_
#define ABLATE_TRAINER_LIB_MODEL_BF16_AUTOCAST_H_

#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>

namespace ablate::train {

// True when x is a CUDA tensor and autocast is on for CUDA with dtype bf16.
inline bool UnderBf16Autocast(const at::Tensor& x) {
  return x.is_cuda() && at::autocast::is_autocast_enabled(at::kCUDA) &&
         at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16;
}

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_MODEL_BF16_AUTOCAST_H_
