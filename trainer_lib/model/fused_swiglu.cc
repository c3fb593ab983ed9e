#include "trainer_lib/model/fused_swiglu.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#ifdef ABLATE_FUSED_KERNELS
#include <c10/cuda/CUDAStream.h>

#include "trainer_lib/kernels/swiglu.h"
#endif

namespace ablate::train {
namespace {

#ifdef ABLATE_FUSED_KERNELS
bool UnderBf16Autocast(const torch::Tensor& x) {
  return x.is_cuda() && at::autocast::is_autocast_enabled(at::kCUDA) &&
         at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16;
}

namespace k = ablate::kernels;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// gate, up [..., I] bf16 -> y [..., I] bf16. Forward and backward are the kernels'; autograd
// sees one node, which saves gate and up.
class FusedSwiGlu : public torch::autograd::Function<FusedSwiGlu> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate_in,
                               const torch::Tensor& up_in) {
    const torch::Tensor gate = gate_in.contiguous();
    const torch::Tensor up = up_in.contiguous();
    torch::Tensor y = torch::empty(gate.sizes(), gate.options());
    k::SwiGluParams p = Params(gate, up);
    p.y = y.data_ptr();
    Check(k::SwiGluForward(p, c10::cuda::getCurrentCUDAStream(gate.device().index())));
    ctx->save_for_backward({gate, up});
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const tensor_list saved = ctx->get_saved_variables();
    const torch::Tensor &gate = saved[0], &up = saved[1];
    const torch::Tensor dy = grads[0].to(torch::kBFloat16).contiguous();
    torch::Tensor dgate = torch::empty_like(gate);
    torch::Tensor dup = torch::empty_like(up);
    k::SwiGluParams p = Params(gate, up);
    p.dy = dy.data_ptr();
    p.dgate = dgate.data_ptr();
    p.dup = dup.data_ptr();
    Check(k::SwiGluBackward(p, c10::cuda::getCurrentCUDAStream(gate.device().index())));
    return {dgate, dup};
  }

  static k::SwiGluParams Params(const torch::Tensor& gate, const torch::Tensor& up) {
    k::SwiGluParams p;
    p.cols = gate.size(-1);
    p.rows = gate.numel() / p.cols;
    p.gate_up_stride = p.cols;
    p.gate = gate.data_ptr();
    p.up = up.data_ptr();
    TORCH_CHECK(k::SwiGluSupported(p), "SwiGLU kernel: unsupported shape ", gate.sizes());
    return p;
  }

  static void Check(cudaError_t error) {
    TORCH_CHECK(error == cudaSuccess, "SwiGLU kernel: ", cudaGetErrorString(error));
  }
};

// The kernels' own conditions beyond the device and autocast: dtypes, shapes, sizes.
bool KernelTakes(const torch::Tensor& gate, const torch::Tensor& up) {
  return gate.scalar_type() == torch::kBFloat16 && up.scalar_type() == torch::kBFloat16 &&
         gate.dim() >= 1 && gate.sizes() == up.sizes() && gate.device() == up.device() &&
         gate.numel() > 0;
}
#endif

}  // namespace

torch::Tensor SwiGluActivation(const torch::Tensor& gate, const torch::Tensor& up) {
#ifdef ABLATE_FUSED_KERNELS
  if (FusedKernelsEnabled() && UnderBf16Autocast(gate) && KernelTakes(gate, up)) {
    return FusedSwiGlu::apply(gate, up);
  }
#endif
  return torch::silu(gate) * up;
}

}  // namespace ablate::train
