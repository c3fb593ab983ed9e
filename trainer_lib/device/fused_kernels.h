// The one switch for our CUDA kernels (trainer_lib/kernels/): RMSNorm with RoPE
// (trainer_lib/model/fused_norm.h), the SwiGLU MLP (trainer_lib/model/fused_swiglu.h), the
// cross-entropy's softmax gradient (trainer_lib/train/cross_entropy.h) and the 8-bit AdamW step
// (trainer_lib/optim/adamw8bit.h); and the q/k/v projections' autograd node
// (trainer_lib/model/fused_qkv.h), which has no kernel of its own but stands in for eager
// autograd as the others do.
// They are in a build when nvcc and a LibTorch with CUDA are both there; each caller adds its
// own conditions (a CUDA tensor, dtypes, layout) and otherwise runs its eager LibTorch path.
//
// Torch-free. Thread-safety: callable from any thread.
#ifndef ABLATE_TRAINER_LIB_DEVICE_FUSED_KERNELS_H_
#define ABLATE_TRAINER_LIB_DEVICE_FUSED_KERNELS_H_

namespace ablate::train {

// True when this build has the kernels and ABLATE_FUSED_KERNELS is not "0" in the environment
// (read once: the switch for comparing the two paths on one build).
bool FusedKernelsEnabled();

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_DEVICE_FUSED_KERNELS_H_
