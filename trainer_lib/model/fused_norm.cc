#include "trainer_lib/model/fused_norm.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#ifdef ABLATE_FUSED_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "trainer_lib/kernels/rms_norm.h"
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

// x [rows, C] (plain: cos and sin empty) or [B, T, H, D] (rope). Autograd's apply refuses
// undefined tensors among the inputs, hence empty ones. Forward and backward are the
// kernels'; autograd sees one node.
class FusedRmsNorm : public torch::autograd::Function<FusedRmsNorm> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& weight, double eps, const torch::Tensor& cos,
                               const torch::Tensor& sin) {
    const torch::Tensor x = x_in.contiguous();
    k::RmsNormParams p = Params(x, weight, eps, cos, sin);
    const bool rope = p.rope;
    torch::Tensor y = rope ? torch::empty({x.size(0), x.size(2), x.size(1), x.size(3)},
                                          x.options().dtype(torch::kBFloat16))
                           : torch::empty(x.sizes(), x.options().dtype(torch::kBFloat16));
    torch::Tensor rstd = torch::empty({p.rows}, x.options().dtype(torch::kFloat32));
    p.y = y.data_ptr();
    p.rstd = rstd.data_ptr<float>();
    Check(k::RmsNormForward(p, at::cuda::getCurrentCUDAStream(x.device().index())));
    ctx->save_for_backward({x, weight, rstd, cos, sin});
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const tensor_list saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &weight = saved[1], &rstd = saved[2];
    k::RmsNormParams p = Params(x, weight, ctx->saved_data["eps"].toDouble(), saved[3], saved[4]);
    const torch::Tensor dy = grads[0].to(torch::kBFloat16).contiguous();
    torch::Tensor dx = torch::empty_like(x);
    torch::Tensor dweight = torch::empty_like(weight);
    torch::Tensor workspace = torch::empty({k::RmsNormWorkspaceFloats(p.rows, p.cols)},
                                           x.options().dtype(torch::kFloat32));
    p.rstd = rstd.data_ptr<float>();
    p.dy = dy.data_ptr();
    p.dx = dx.data_ptr();
    p.dweight = dweight.data_ptr<float>();
    p.workspace = workspace.data_ptr<float>();
    Check(k::RmsNormBackward(p, at::cuda::getCurrentCUDAStream(x.device().index())));
    return {dx, dweight, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }

  static k::RmsNormParams Params(const torch::Tensor& x, const torch::Tensor& weight, double eps,
                                 const torch::Tensor& cos, const torch::Tensor& sin) {
    k::RmsNormParams p;
    p.input = x.scalar_type() == torch::kBFloat16 ? k::NormInput::kBFloat16
                                                  : k::NormInput::kFloat32;
    p.x = x.data_ptr();
    p.weight = weight.data_ptr<float>();
    p.eps = static_cast<float>(eps);
    p.cols = x.size(-1);
    p.rows = x.numel() / p.cols;
    if (cos.numel() > 0) {
      p.rope = true;
      p.seq_len = x.size(1);
      p.heads = x.size(2);
      p.cos = cos.data_ptr<float>();
      p.sin = sin.data_ptr<float>();
    }
    return p;
  }

  static void Check(cudaError_t error) {
    TORCH_CHECK(error == cudaSuccess, "RMSNorm kernel: ", cudaGetErrorString(error));
  }
};

// The kernels' own conditions beyond the device and autocast: dtypes, layout, sizes.
bool KernelTakes(const torch::Tensor& x, const torch::Tensor& weight, bool rope) {
  if (weight.scalar_type() != torch::kFloat32 || !weight.is_contiguous()) return false;
  if (x.numel() == 0) return false;
  if (rope) return x.dim() == 4 && x.scalar_type() == torch::kBFloat16 && x.size(3) % 2 == 0;
  return x.scalar_type() == torch::kBFloat16 || x.scalar_type() == torch::kFloat32;
}
#endif

}  // namespace

torch::Tensor NormForProjection(RMSNormImpl& norm, const torch::Tensor& x) {
#ifdef ABLATE_FUSED_KERNELS
  if (FusedKernelsEnabled() && UnderBf16Autocast(x) &&
      KernelTakes(x, norm.weight(), /*rope=*/false)) {
    const torch::Tensor none = torch::empty({0}, norm.weight().options());
    return FusedRmsNorm::apply(x, norm.weight(), norm.eps(), none, none);
  }
#endif
  return norm.forward(x);
}

torch::Tensor NormRopeForAttention(RMSNormImpl& norm, const torch::Tensor& x,
                                   const RopeTables& rope) {
#ifdef ABLATE_FUSED_KERNELS
  if (FusedKernelsEnabled() && UnderBf16Autocast(x) &&
      KernelTakes(x, norm.weight(), /*rope=*/true) && rope.cos.scalar_type() == torch::kFloat32) {
    return FusedRmsNorm::apply(x, norm.weight(), norm.eps(), rope.cos.contiguous(),
                               rope.sin.contiguous());
  }
#endif
  return ApplyRope(norm.forward(x).transpose(1, 2), rope);
}

}  // namespace ablate::train
