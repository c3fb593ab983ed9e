// AdamW with both moments held in 8 bits (Dettmers et al., ICLR 2022, "8-bit optimizers via
// block-wise quantization"), computed as torchao's torchao.optim.AdamW8bit does:
//
//   A moment of a parameter with at least 4,096 elements, a multiple of the block of 256, is
//   stored as uint8 codes (one per element, same shape) and one fp32 scale per block of 256
//   consecutive elements (the block's largest magnitude, at least 1e-12). A code indexes the
//   dynamic quantization map: 256 values in [-1, 1] (signed, first moment) or [0, 1]
//   (unsigned, second moment), dense near zero, the map of bitsandbytes' create_dynamic_map
//   (7 exponent bits). Quantizing rounds to the nearest map value, ties up. Smaller moments
//   stay fp32, as in torchao.
//   Each step, in fp32: p <- p - lr * wd * p; m = lerp(deq(m), g, 1 - beta1);
//   v = lerp(deq(v), g^2, 1 - beta2); store quantized m and v; p <- p - lr * (m / bc1) /
//   (sqrt(v) / sqrt(bc2) + eps), with the unquantized m and v of this step.
//
// On a CUDA device, with our kernels in the build (trainer_lib/device/fused_kernels.h), each
// parameter's step is one kernel (trainer_lib/kernels/adamw8bit.h) computing the same math;
// elsewhere it is the eager LibTorch operations below, which the kernel's test compares it to.
//
// State: about 2 bytes per parameter plus 8 bytes per 256 (torchao's layout), saved with
// torch's optimizer archive, one entry per parameter. The block, the size rule and the bytes
// are common/optimizer_state.h's (kAdamW8bitBlock, AdamW8bitQuantizes, OptimizerStateBytes).
// Thread-safety: one thread.
#ifndef ABLATE_TRAINER_LIB_OPTIM_ADAMW8BIT_H_
#define ABLATE_TRAINER_LIB_OPTIM_ADAMW8BIT_H_

#include <vector>

#include <torch/optim/adamw.h>

namespace ablate::train {

struct AdamW8bitParamState
    : public torch::optim::OptimizerCloneableParamState<AdamW8bitParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg);           // uint8 codes, or fp32 when not quantized
  TORCH_ARG(torch::Tensor, exp_avg_scale);     // fp32 [numel / 256]; empty when not quantized
  TORCH_ARG(torch::Tensor, exp_avg_sq);
  TORCH_ARG(torch::Tensor, exp_avg_sq_scale);

 public:  // TORCH_ARG leaves the section private
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

// The 256 values of the dynamic map, ascending, fp32 on the CPU.
torch::Tensor DynamicQuantMap(bool is_signed);

class AdamW8bit : public torch::optim::Optimizer {
 public:
  // Groups with torch's AdamWOptions (amsgrad unsupported).
  explicit AdamW8bit(std::vector<torch::optim::OptimizerParamGroup> groups);

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  torch::Tensor qmap_signed_;    // on the parameters' device once the first step runs
  torch::Tensor qmap_unsigned_;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_ADAMW8BIT_H_
