#include "trainer_lib/model/fused_norm.h"

#include <utility>

#include <torch/torch.h>

#ifdef ABLATE_FUSED_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "trainer_lib/kernels/rms_norm.h"
#include "trainer_lib/model/bf16_autocast.h"
#endif

namespace ablate::train {
namespace {

#ifdef ABLATE_FUSED_KERNELS
namespace k = ablate::kernels;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

void Check(cudaError_t error) {
  TORCH_CHECK(error == cudaSuccess, "RMSNorm kernel: ", cudaGetErrorString(error));
}

cudaStream_t StreamOf(const torch::Tensor& x) {
  return at::cuda::getCurrentCUDAStream(x.device().index());
}

// The kernels' parameters for x [rows, C] (plain: cos and sin empty) or [B, T, H, D] (rope,
// y in `layout`).
k::RmsNormParams Params(const torch::Tensor& x, const torch::Tensor& weight, double eps,
                        const torch::Tensor& cos, const torch::Tensor& sin,
                        RopeLayout layout = RopeLayout::kHeadsMajor) {
  k::RmsNormParams p;
  p.input =
      x.scalar_type() == torch::kBFloat16 ? k::NormInput::kBFloat16 : k::NormInput::kFloat32;
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
    p.token_major = layout == RopeLayout::kTokenMajor;
  }
  return p;
}

// The backward kernel on p (set up by Params, plus any add extras) with forward's rstd and
// the incoming gradient dy; writes dx and returns dweight.
torch::Tensor RunBackward(k::RmsNormParams& p, const torch::Tensor& weight,
                          const torch::Tensor& rstd, const torch::Tensor& dy_in,
                          torch::Tensor& dx) {
  const torch::Tensor dy = dy_in.to(torch::kBFloat16).contiguous();
  torch::Tensor dweight = torch::empty_like(weight);
  torch::Tensor workspace = torch::empty({k::RmsNormWorkspaceFloats(p.rows, p.cols)},
                                         weight.options().dtype(torch::kFloat32));
  p.rstd = rstd.data_ptr<float>();
  p.dy = dy.data_ptr();
  p.dx = dx.data_ptr();
  p.dweight = dweight.data_ptr<float>();
  p.workspace = workspace.data_ptr<float>();
  Check(k::RmsNormBackward(p, StreamOf(dx)));
  return dweight;
}

// Autograd's apply refuses undefined tensors among the inputs, hence empty cos and sin for the
// plain norm. Forward and backward are the kernels'; autograd sees one node. With rope, y is
// [B, H, T, D] (kHeadsMajor) or [B, T, H, D] (kTokenMajor); the plain norm ignores `layout`.
class FusedRmsNorm : public torch::autograd::Function<FusedRmsNorm> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& weight, double eps, const torch::Tensor& cos,
                               const torch::Tensor& sin, RopeLayout layout) {
    const torch::Tensor x = x_in.contiguous();
    k::RmsNormParams p = Params(x, weight, eps, cos, sin, layout);
    const bool heads_major = p.rope && !p.token_major;
    torch::Tensor y = heads_major ? torch::empty({x.size(0), x.size(2), x.size(1), x.size(3)},
                                                 x.options().dtype(torch::kBFloat16))
                                  : torch::empty(x.sizes(), x.options().dtype(torch::kBFloat16));
    torch::Tensor rstd = torch::empty({p.rows}, x.options().dtype(torch::kFloat32));
    p.y = y.data_ptr();
    p.rstd = rstd.data_ptr<float>();
    Check(k::RmsNormForward(p, StreamOf(x)));
    ctx->save_for_backward({x, weight, rstd, cos, sin});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["token_major"] = layout == RopeLayout::kTokenMajor;
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const tensor_list saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &weight = saved[1], &rstd = saved[2];
    const RopeLayout layout = ctx->saved_data["token_major"].toBool() ? RopeLayout::kTokenMajor
                                                                      : RopeLayout::kHeadsMajor;
    k::RmsNormParams p =
        Params(x, weight, ctx->saved_data["eps"].toDouble(), saved[3], saved[4], layout);
    torch::Tensor dx = torch::empty_like(x);
    torch::Tensor dweight = RunBackward(p, weight, rstd, grads[0], dx);
    return {dx, dweight, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// x [rows, C] fp32 and delta [rows, C] bf16 -> {x + delta in fp32, the plain norm of it in
// bf16}. Backward gets both outputs' gradients: the sum's joins the norm's in the one kernel,
// which hands the total to x in fp32 and to delta in bf16, as eager's add does.
class FusedAddRmsNorm : public torch::autograd::Function<FusedAddRmsNorm> {
 public:
  static tensor_list forward(AutogradContext* ctx, const torch::Tensor& x_in,
                             const torch::Tensor& delta_in, const torch::Tensor& weight,
                             double eps) {
    const torch::Tensor x = x_in.contiguous();
    const torch::Tensor delta = delta_in.contiguous();
    torch::Tensor sum = torch::empty(x.sizes(), x.options());
    const torch::Tensor none = torch::empty({0}, weight.options());
    k::RmsNormParams p = Params(sum, weight, eps, none, none);
    torch::Tensor y = torch::empty(x.sizes(), x.options().dtype(torch::kBFloat16));
    torch::Tensor rstd = torch::empty({p.rows}, x.options());
    p.residual = x.data_ptr<float>();
    p.delta = delta.data_ptr();
    p.sum = sum.data_ptr<float>();
    p.y = y.data_ptr();
    p.rstd = rstd.data_ptr<float>();
    Check(k::RmsNormForward(p, StreamOf(x)));
    ctx->save_for_backward({sum, weight, rstd});
    ctx->saved_data["eps"] = eps;
    return {sum, y};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const tensor_list saved = ctx->get_saved_variables();
    const torch::Tensor &sum = saved[0], &weight = saved[1], &rstd = saved[2];
    const torch::Tensor none = torch::empty({0}, weight.options());
    k::RmsNormParams p = Params(sum, weight, ctx->saved_data["eps"].toDouble(), none, none);
    const torch::Tensor dsum = grads[0].to(torch::kFloat32).contiguous();
    torch::Tensor dx = torch::empty_like(sum);
    torch::Tensor ddelta = torch::empty(sum.sizes(), sum.options().dtype(torch::kBFloat16));
    p.dsum = dsum.data_ptr<float>();
    p.dx_bf16 = ddelta.data_ptr();
    torch::Tensor dweight = RunBackward(p, weight, rstd, grads[1], dx);
    return {dx, ddelta, dweight, torch::Tensor()};
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
    return FusedRmsNorm::apply(x, norm.weight(), norm.eps(), none, none,
                               RopeLayout::kHeadsMajor);
  }
#endif
  return norm.forward(x);
}

torch::Tensor NormRopeForAttention(RMSNormImpl& norm, const torch::Tensor& x,
                                   const RopeTables& rope, RopeLayout layout) {
#ifdef ABLATE_FUSED_KERNELS
  if (FusedKernelsEnabled() && UnderBf16Autocast(x) &&
      KernelTakes(x, norm.weight(), /*rope=*/true) && rope.cos.scalar_type() == torch::kFloat32) {
    torch::Tensor y = FusedRmsNorm::apply(x, norm.weight(), norm.eps(), rope.cos.contiguous(),
                                          rope.sin.contiguous(), layout);
    return layout == RopeLayout::kTokenMajor ? y.transpose(1, 2) : y;
  }
#endif
  return ApplyRope(norm.forward(x).transpose(1, 2), rope);
}

ResidualNormed AddNormForProjection(RMSNormImpl& norm, const torch::Tensor& x,
                                    const torch::Tensor& delta) {
#ifdef ABLATE_FUSED_KERNELS
  if (FusedKernelsEnabled() && UnderBf16Autocast(x) && x.scalar_type() == torch::kFloat32 &&
      delta.scalar_type() == torch::kBFloat16 && delta.device() == x.device() &&
      delta.sizes() == x.sizes() && KernelTakes(x, norm.weight(), /*rope=*/false)) {
    tensor_list out = FusedAddRmsNorm::apply(x, delta, norm.weight(), norm.eps());
    return {std::move(out[0]), std::move(out[1])};
  }
#endif
  torch::Tensor residual = x + delta;
  torch::Tensor normed = NormForProjection(norm, residual);
  return {std::move(residual), std::move(normed)};
}

}  // namespace ablate::train
