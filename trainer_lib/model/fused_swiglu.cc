#include "trainer_lib/model/fused_swiglu.h"

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#ifdef ABLATE_FUSED_KERNELS
#include <c10/cuda/CUDAStream.h>

#include "trainer_lib/kernels/swiglu.h"
#include "trainer_lib/model/bf16_autocast.h"
#endif

namespace ablate::train {
namespace {

#ifdef ABLATE_FUSED_KERNELS
namespace k = ablate::kernels;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

void Check(cudaError_t error) {
  TORCH_CHECK(error == cudaSuccess, "SwiGLU kernel: ", cudaGetErrorString(error));
}

// The kernels' view of gate_up [N, 2I] bf16: g its first I columns, u its last.
k::SwiGluParams Params(const torch::Tensor& gate_up) {
  k::SwiGluParams p;
  p.rows = gate_up.size(0);
  p.cols = gate_up.size(1) / 2;
  p.gate_up_stride = gate_up.size(1);
  p.gate = gate_up.data_ptr<at::BFloat16>();
  p.up = gate_up.data_ptr<at::BFloat16>() + p.cols;
  TORCH_CHECK(k::SwiGluSupported(p), "SwiGLU kernel: unsupported shape ", gate_up.sizes());
  return p;
}

// y = silu(g) * u, [N, I] bf16.
torch::Tensor Activation(const torch::Tensor& gate_up) {
  k::SwiGluParams p = Params(gate_up);
  torch::Tensor y = torch::empty({p.rows, p.cols}, gate_up.options());
  p.y = y.data_ptr();
  Check(k::SwiGluForward(p, c10::cuda::getCurrentCUDAStream(gate_up.device().index())));
  return y;
}

// [dg, du], [N, 2I] bf16, from y's gradient dy [N, I] bf16, written over gate_up, which
// backward does not read again: the kernel reads each element before writing its gradient
// there. That spares a [N, 2I] buffer at the layer's backward, where a checkpointed run peaks
// (384 MiB for 32,768 tokens of Qwen3-0.6B).
void ActivationBackwardInPlace(torch::Tensor& gate_up, const torch::Tensor& dy) {
  k::SwiGluParams p = Params(gate_up);
  p.dy = dy.data_ptr();
  p.dgate = gate_up.data_ptr<at::BFloat16>();
  p.dup = gate_up.data_ptr<at::BFloat16>() + p.cols;
  Check(k::SwiGluBackward(p, c10::cuda::getCurrentCUDAStream(gate_up.device().index())));
}

// [gate_w; up_w] cast to bf16, [2I, C]: each half rounds as autocast's cast of the weight does.
torch::Tensor StackedBf16(const torch::Tensor& gate_w, const torch::Tensor& up_w) {
  const int64_t i = gate_w.size(0);
  torch::Tensor stacked =
      torch::empty({2 * i, gate_w.size(1)}, gate_w.options().dtype(torch::kBFloat16));
  stacked.narrow(0, 0, i).copy_(gate_w);
  stacked.narrow(0, i, i).copy_(up_w);
  return stacked;
}

// The whole MLP as one autograd node (header). GEMMs in bf16 with fp32 accumulation, as
// autocast's linear runs them.
class FusedSwiGluMlp : public torch::autograd::Function<FusedSwiGluMlp> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& gate_w, const torch::Tensor& up_w,
                               const torch::Tensor& down_w) {
    const torch::Tensor x2 = x.reshape({-1, x.size(-1)}).to(torch::kBFloat16).contiguous();
    const torch::Tensor gate_up = torch::mm(x2, StackedBf16(gate_w, up_w).t());
    // The output in its own shape, written through a 2-D view, so that it is no view itself.
    std::vector<int64_t> out_sizes = x.sizes().vec();
    out_sizes.back() = down_w.size(0);
    torch::Tensor out = torch::empty(out_sizes, gate_up.options());
    torch::Tensor out_rows = out.view({-1, down_w.size(0)});
    torch::mm_out(out_rows, Activation(gate_up), down_w.to(torch::kBFloat16).t());
    ctx->save_for_backward({x2, gate_up, gate_w, up_w, down_w});
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    tensor_list saved = ctx->get_saved_variables();
    const torch::Tensor &x2 = saved[0], &gate_w = saved[2], &up_w = saved[3], &down_w = saved[4];
    const torch::Tensor d_out =
        grads[0].reshape({-1, down_w.size(0)}).to(torch::kBFloat16).contiguous();
    // down's weight gradient first, so that the recomputed y is freed before dy is made. The
    // weights' gradients come out of the GEMMs' fp32 accumulators as the fp32 weights take
    // them, not through bf16 and a cast.
    const torch::Tensor d_down = at::mm(d_out.t(), Activation(saved[1]), down_w.scalar_type());
    torch::Tensor dy = torch::mm(d_out, down_w.to(torch::kBFloat16));
    ActivationBackwardInPlace(saved[1], dy);
    dy.reset();
    const torch::Tensor& d_gate_up = saved[1];
    const torch::Tensor dx = torch::mm(d_gate_up, StackedBf16(gate_w, up_w));
    const torch::Tensor d_stacked = at::mm(d_gate_up.t(), x2, gate_w.scalar_type());
    const int64_t i = gate_w.size(0);
    const auto x_dtype = static_cast<c10::ScalarType>(ctx->saved_data["x_dtype"].toInt());
    return {dx.view(ctx->saved_data["x_sizes"].toIntVector()).to(x_dtype),
            d_stacked.narrow(0, 0, i), d_stacked.narrow(0, i, i), d_down};
  }
};

// The node's own conditions beyond the device and autocast: dtypes, shapes, sizes.
bool NodeTakes(const torch::Tensor& x, const torch::nn::LinearImpl& gate,
               const torch::nn::LinearImpl& up, const torch::nn::LinearImpl& down) {
  for (const torch::nn::LinearImpl* layer : {&gate, &up, &down}) {
    const torch::Tensor& w = layer->weight;
    if (layer->bias.defined() || w.scalar_type() != torch::kFloat32 || w.dim() != 2 ||
        w.device() != x.device()) {
      return false;
    }
  }
  const int64_t c = gate.weight.size(1), i = gate.weight.size(0);
  return (x.scalar_type() == torch::kBFloat16 || x.scalar_type() == torch::kFloat32) &&
         x.dim() >= 1 && x.size(-1) == c && x.numel() > 0 && i > 0 &&
         up.weight.sizes() == gate.weight.sizes() && down.weight.size(1) == i &&
         down.weight.size(0) > 0;
}
#endif

}  // namespace

torch::Tensor SwiGluMlp(const torch::Tensor& x, torch::nn::LinearImpl& gate,
                        torch::nn::LinearImpl& up, torch::nn::LinearImpl& down) {
#ifdef ABLATE_FUSED_KERNELS
  if (FusedKernelsEnabled() && UnderBf16Autocast(x) && NodeTakes(x, gate, up, down)) {
    return FusedSwiGluMlp::apply(x, gate.weight, up.weight, down.weight);
  }
#endif
  return down.forward(torch::silu(gate.forward(x)) * up.forward(x));
}

}  // namespace ablate::train
