#include "trainer_lib/train/cross_entropy.h"

#include <optional>
#include <utility>

#include <torch/torch.h>

#include <c10/core/impl/LocalDispatchKeySet.h>

#include "trainer_lib/device/fused_kernels.h"

#ifdef ABLATE_FUSED_KERNELS
#include <c10/cuda/CUDAStream.h>

#include "trainer_lib/kernels/cross_entropy.h"
#endif

namespace ablate::train {
namespace {

using torch::indexing::Slice;

// One chunk's logits [C, V] in fp32, and its loss sum. Under autocast the caller has excluded
// autocast, so `compute` alone decides the product's precision.
struct ChunkLoss {
  torch::Tensor logits;  // [C, V] fp32
  torch::Tensor lse;     // [C] fp32
  torch::Tensor loss;    // 0-d fp32
};

ChunkLoss ForwardChunk(const torch::Tensor& h, const torch::Tensor& w_compute,
                       const torch::Tensor& targets) {
  torch::Tensor logits = torch::matmul(h.to(w_compute.scalar_type()), w_compute.t())
                             .to(torch::kFloat32);  // [C, V]
  torch::Tensor lse = torch::logsumexp(logits, 1);    // [C]
  const torch::Tensor valid = targets != kIgnoreIndex;
  torch::Tensor picked =
      logits.gather(1, targets.clamp_min(0).unsqueeze(1)).squeeze(1);  // [C]
  torch::Tensor loss = ((lse - picked) * valid).sum();
  return {std::move(logits), std::move(lse), std::move(loss)};
}

#ifdef ABLATE_FUSED_KERNELS
// The chunk's loss and logit gradient by our kernel (trainer_lib/kernels/cross_entropy.h), in
// place over the bf16 logits; nullopt where it does not apply.
std::optional<torch::Tensor> FusedLogitGradient(const torch::Tensor& h,
                                                const torch::Tensor& w_compute,
                                                const torch::Tensor& targets,
                                                torch::Tensor& total) {
  if (!FusedKernelsEnabled() || !h.is_cuda() || w_compute.scalar_type() != torch::kBFloat16) {
    return std::nullopt;
  }
  torch::Tensor logits = torch::matmul(h.to(torch::kBFloat16), w_compute.t()).contiguous();
  const torch::Tensor t = targets.contiguous();
  const auto f32 = h.options().dtype(torch::kFloat32);
  torch::Tensor lse = torch::empty({logits.size(0)}, f32);
  torch::Tensor loss = torch::empty({logits.size(0)}, f32);
  ablate::kernels::CrossEntropyParams p;
  p.rows = logits.size(0);
  p.vocab = logits.size(1);
  p.ignore_index = kIgnoreIndex;
  p.logits = logits.data_ptr();
  p.targets = t.data_ptr<int64_t>();
  p.lse = lse.data_ptr<float>();
  p.loss = loss.data_ptr<float>();
  if (!ablate::kernels::CrossEntropySupported(p)) return std::nullopt;
  const cudaError_t error = ablate::kernels::CrossEntropyForwardBackward(
      p, c10::cuda::getCurrentCUDAStream(h.device().index()));
  TORCH_CHECK(error == cudaSuccess, "cross-entropy kernel: ", cudaGetErrorString(error));
  total.add_(loss.sum());
  return logits;
}
#endif

// Adds the chunk's summed loss to `total` and returns d loss / d logits = softmax -
// onehot(target), zero on ignored rows, [C, V] in w_compute's dtype.
torch::Tensor LogitGradient(const torch::Tensor& h, const torch::Tensor& w_compute,
                            const torch::Tensor& targets, torch::Tensor& total) {
#ifdef ABLATE_FUSED_KERNELS
  if (std::optional<torch::Tensor> d = FusedLogitGradient(h, w_compute, targets, total)) {
    return *std::move(d);
  }
#endif
  ChunkLoss chunk = ForwardChunk(h, w_compute, targets);
  total.add_(chunk.loss);
  torch::Tensor& dlogits = chunk.logits;  // in place
  dlogits.sub_(chunk.lse.unsqueeze(1)).exp_();
  const torch::Tensor valid = (targets != kIgnoreIndex).unsqueeze(1);
  dlogits.scatter_add_(1, targets.clamp_min(0).unsqueeze(1),
                       -torch::ones({targets.size(0), 1}, dlogits.options()));
  dlogits.mul_(valid);
  return dlogits.to(w_compute.scalar_type());
}

class ChunkedCrossEntropy : public torch::autograd::Function<ChunkedCrossEntropy> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& hidden,
                               const torch::Tensor& weight, const torch::Tensor& targets,
                               int64_t chunk_tokens, at::ScalarType compute) {
    const torch::Tensor w_compute = weight.to(compute);
    torch::Tensor grad_hidden = torch::empty_like(hidden);
    torch::Tensor grad_weight = torch::zeros_like(weight, torch::kFloat32);
    torch::Tensor total = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
    for (int64_t start = 0; start < hidden.size(0); start += chunk_tokens) {
      const Slice rows(start, start + chunk_tokens);
      const torch::Tensor h = hidden.index({rows});
      const torch::Tensor t = targets.index({rows});
      const torch::Tensor d = LogitGradient(h, w_compute, t, total);
      grad_hidden.index_put_({rows}, torch::matmul(d, w_compute).to(hidden.scalar_type()));
      grad_weight.add_(torch::matmul(d.t(), h.to(compute)).to(torch::kFloat32));
    }
    ctx->saved_data["grad_hidden"] = grad_hidden;
    ctx->saved_data["grad_weight"] = grad_weight.to(weight.scalar_type());
    return total;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    const torch::Tensor& g = grad_output[0];  // 0-d
    torch::Tensor grad_hidden = ctx->saved_data["grad_hidden"].toTensor() * g;
    torch::Tensor grad_weight = ctx->saved_data["grad_weight"].toTensor() * g;
    return {grad_hidden, grad_weight, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor ChunkedCrossEntropySum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                     const torch::Tensor& targets, int64_t chunk_tokens,
                                     at::ScalarType compute) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
              "cross-entropy: hidden [N, H] and weight [V, H] expected, got ", hidden.sizes(),
              " and ", weight.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == hidden.size(0) &&
                  targets.scalar_type() == torch::kInt64,
              "cross-entropy: targets [", hidden.size(0), "] int64 expected, got ",
              targets.scalar_type(), " ", targets.sizes());
  TORCH_CHECK(chunk_tokens > 0, "cross-entropy: chunk_tokens must be positive");
  // The precision is `compute`, whatever autocast says: its casts are applied here explicitly.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const bool wants_grad =
      torch::GradMode::is_enabled() && (hidden.requires_grad() || weight.requires_grad());
  if (wants_grad) {
    return ChunkedCrossEntropy::apply(hidden, weight, targets, chunk_tokens, compute);
  }
  const torch::Tensor w_compute = weight.to(compute);
  torch::Tensor total = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
  for (int64_t start = 0; start < hidden.size(0); start += chunk_tokens) {
    const Slice rows(start, start + chunk_tokens);
    total.add_(ForwardChunk(hidden.index({rows}), w_compute, targets.index({rows})).loss);
  }
  return total;
}

}  // namespace ablate::train
