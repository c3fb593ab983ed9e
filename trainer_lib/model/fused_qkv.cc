#include "trainer_lib/model/fused_qkv.h"

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "trainer_lib/device/fused_kernels.h"
#include "trainer_lib/model/bf16_autocast.h"

namespace ablate::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// x [N, C] times w_c^T [C, C_out] into a tensor of x's leading shape `sizes` and C_out.
torch::Tensor Project(const torch::Tensor& x2, const torch::Tensor& w_c,
                      std::vector<int64_t> sizes) {
  sizes.back() = w_c.size(0);
  torch::Tensor out = torch::empty(sizes, x2.options());
  torch::Tensor rows = out.view({-1, w_c.size(0)});
  torch::mm_out(rows, x2, w_c.t());
  return out;
}

class FusedQkvProjection : public torch::autograd::Function<FusedQkvProjection> {
 public:
  static tensor_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& wq,
                             const torch::Tensor& wk, const torch::Tensor& wv) {
    const torch::Tensor x2 = x.reshape({-1, x.size(-1)}).to(torch::kBFloat16).contiguous();
    tensor_list out, casts;
    for (const torch::Tensor* w : {&wq, &wk, &wv}) {
      casts.push_back(w->to(torch::kBFloat16));  // as autocast's cast of the weight rounds it
      out.push_back(Project(x2, casts.back(), x.sizes().vec()));
    }
    ctx->save_for_backward({x2, casts[0], casts[1], casts[2]});
    // An output that reaches no loss then comes to backward undefined, not as zeros, and its
    // weight gets no gradient, as eager's linear leaves it.
    ctx->set_materialize_grads(false);
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const tensor_list saved = ctx->get_saved_variables();
    const torch::Tensor& x2 = saved[0];
    torch::Tensor dx;
    tensor_list result = {torch::Tensor()};
    for (size_t i = 0; i < 3; ++i) {
      const torch::Tensor& w_c = saved[i + 1];
      if (!grads[i].defined()) {  // an output that reached no loss
        result.emplace_back();
        continue;
      }
      const torch::Tensor d = grads[i].reshape({-1, w_c.size(0)}).to(torch::kBFloat16).contiguous();
      if (dx.defined()) {
        dx.addmm_(d, w_c);  // cuBLAS adds into dx in its fp32 epilogue: no separate add
      } else {
        dx = torch::mm(d, w_c);
      }
      result.push_back(at::mm(d.t(), x2, torch::kFloat32));  // the fp32 weight's gradient
    }
    if (dx.defined()) {
      const auto x_dtype = static_cast<c10::ScalarType>(ctx->saved_data["x_dtype"].toInt());
      result[0] = dx.view(ctx->saved_data["x_sizes"].toIntVector()).to(x_dtype);
    }
    return result;
  }
};

bool NodeTakes(const torch::Tensor& x, const std::array<torch::nn::LinearImpl*, 3>& layers) {
  if (!(x.scalar_type() == torch::kBFloat16 || x.scalar_type() == torch::kFloat32) ||
      x.dim() < 1 || x.numel() == 0) {
    return false;
  }
  for (const torch::nn::LinearImpl* layer : layers) {
    const torch::Tensor& w = layer->weight;
    if (layer->bias.defined() || w.scalar_type() != torch::kFloat32 || w.dim() != 2 ||
        w.device() != x.device() || w.size(1) != x.size(-1) || w.size(0) == 0) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::array<torch::Tensor, 3> QkvProjections(const torch::Tensor& x, torch::nn::LinearImpl& q,
                                            torch::nn::LinearImpl& k, torch::nn::LinearImpl& v) {
  if (FusedKernelsEnabled() && UnderBf16Autocast(x) && NodeTakes(x, {&q, &k, &v})) {
    tensor_list out = FusedQkvProjection::apply(x, q.weight, k.weight, v.weight);
    return {std::move(out[0]), std::move(out[1]), std::move(out[2])};
  }
  return {q.forward(x), k.forward(x), v.forward(x)};
}

}  // namespace ablate::train
