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

// grad_weight [V, H] fp32 += d^T h, for d [C, V] and h [C, H] in the compute dtype. On CUDA
// with bf16 inputs cuBLAS accumulates the product into the fp32 gradient in place (addmm's
// out_dtype); otherwise the product is made in the compute dtype, widened and added, which
// holds a [V, H] product and its fp32 copy (0.87 GiB at Qwen3's vocabulary and H = 1,024).
void AccumulateWeightGradient(torch::Tensor& grad_weight, const torch::Tensor& d,
                              const torch::Tensor& h) {
  if (d.is_cuda() && d.scalar_type() == torch::kBFloat16) {
    at::addmm_out(grad_weight, grad_weight, d.t(), h, torch::kFloat32);
    return;
  }
  grad_weight.add_(torch::matmul(d.t(), h).to(torch::kFloat32));
}

// Adds the chunk's summed loss to `total`, for evaluation. Where the loss kernel runs it holds
// the chunk's bf16 logits alone (the gradient it writes over them is dropped), not
// ForwardChunk's fp32 copy and logsumexp's fp32 temporaries, which at 4,096 tokens of Qwen3's
// vocabulary raised a checkpointed run's peak by 0.97 GiB (docs/benchmarks.md).
void AddChunkLoss(const torch::Tensor& h, const torch::Tensor& w_compute,
                  const torch::Tensor& targets, torch::Tensor& total) {
#ifdef ABLATE_FUSED_KERNELS
  if (FusedLogitGradient(h, w_compute, targets, total)) return;
#endif
  total.add_(ForwardChunk(h, w_compute, targets).loss);
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
      AccumulateWeightGradient(grad_weight, d, h.to(compute));
    }
    ctx->saved_data["grad_hidden"] = grad_hidden;
    ctx->saved_data["grad_weight"] = grad_weight.to(weight.scalar_type());
    return total;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    const torch::Tensor& g = grad_output[0];  // 0-d
    // The loss tensor keeps this node, and so saved_data, alive until the whole backward has
    // run, while the stored gradients (the head's is 594 MiB in fp32 at Qwen3's vocabulary)
    // are needed only now. They are scaled in place and handed over, so that autograd's
    // accumulation takes them without a copy and nothing else holds them.
    auto hidden = ctx->saved_data.find("grad_hidden");
    auto weight = ctx->saved_data.find("grad_weight");
    TORCH_CHECK(hidden != ctx->saved_data.end() && weight != ctx->saved_data.end(),
                "cross-entropy: backward runs once per forward (its gradients, computed in "
                "forward, were handed over by the first)");
    torch::Tensor grad_hidden = hidden->second.toTensor().mul_(g);
    torch::Tensor grad_weight = weight->second.toTensor().mul_(g);
    ctx->saved_data.clear();
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
    AddChunkLoss(hidden.index({rows}), w_compute, targets.index({rows}), total);
  }
  return total;
}

}  // namespace ablate::train
