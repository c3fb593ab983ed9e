#include "trainer_lib/attention/nsa_window.h"

#include <ATen/Context.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

#include "trainer_lib/attention/nsa_cuda.h"
#include "trainer_lib/attention/nsa_fold.h"

#ifdef ABLATE_NSA_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "trainer_lib/kernels/nsa_selected.h"
#include "trainer_lib/kernels/nsa_window.h"
#endif

namespace ablate::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// What FlashAttention's backward may allocate for all T queries at once (nsa_window.h).
constexpr int64_t kWholeBytes = int64_t{5} << 30;

// The queries per backward chunk: all T where FlashAttention's backward then allocates at most
// kWholeBytes, else as many as allocate at most kNsaAccumBytes. Per query row it holds an fp32
// dq accumulator (4 H D bytes), dq (2 H D) and contiguous copies of do and o (4 H D); per key
// row (the chunk's rows and the w - 1 keys before them) the per-query-head dk and dv it then
// sums into the KV heads (4 H D) and those sums (4 H_kv D). A window too long for the budget
// gets one query a chunk.
int64_t BackwardRows(int64_t b, int64_t h, int64_t h_kv, int64_t t, int64_t d, int64_t window) {
  const int64_t per_key = b * d * (4 * h + 4 * h_kv);
  const int64_t per_row = b * d * 10 * h + per_key;
  if (per_row * t <= kWholeBytes) return t;
  return std::max<int64_t>(1, (kNsaAccumBytes - per_key * (window - 1)) / per_row);
}

// Whether this build's FlashAttention runs on `device`: a call on one row, once per process
// (the GPUs of one host are of one kind). A build without it, or a GPU older than sm_80, throws.
bool FlashRuns(const at::Device& device) {
  static const bool runs = [&] {
    try {
      const torch::Tensor x = torch::zeros(
          {1, 1, 1, 64}, torch::TensorOptions().device(device).dtype(torch::kBFloat16));
      at::_flash_attention_forward(x, x, x, std::nullopt, std::nullopt, 1, 1, /*dropout_p=*/0.0,
                                   /*is_causal=*/true, /*return_debug_mask=*/false);
      return true;
    } catch (const c10::Error&) {
      return false;
    }
  }();
  return runs;
}

#ifdef ABLATE_NSA_KERNELS
namespace k = ablate::kernels;

void Check(cudaError_t error, const char* what) {
  TORCH_CHECK(error == cudaSuccess, "nsa window kernel (", what, "): ", cudaGetErrorString(error));
}

// The kernels' shapes and inputs for contiguous bf16 q [B, H, T, D] and k, v [B, H_kv, T, D].
k::NsaWindowParams Params(const torch::Tensor& q, const torch::Tensor& key, const torch::Tensor& v,
                          int64_t window) {
  k::NsaWindowParams p;
  p.q = q.data_ptr();
  p.k = key.data_ptr();
  p.v = v.data_ptr();
  p.batch = q.size(0);
  p.heads = q.size(1);
  p.kv_heads = key.size(1);
  p.seq_len = q.size(2);
  p.head_dim = q.size(3);
  p.window = window;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(3))));
  return p;
}

// The local terms' selection (kernels/nsa_window.h's local_idx) into p, checked against k.
void SetLocalIndex(k::NsaWindowParams& p, const torch::Tensor& idx, const torch::Tensor& k,
                   int64_t window) {
  TORCH_CHECK(idx.scalar_type() == torch::kInt32 && idx.is_contiguous() && idx.dim() == 4 &&
                  idx.size(0) == k.size(0) && idx.size(1) == k.size(1) &&
                  idx.size(2) == k.size(2) && window >= 128,
              "nsa window kernels: the local terms' block indices must be contiguous int32 [B, "
              "H_kv, T, n] like k ",
              k.sizes(), ", not ", idx.sizes(), ", with a window of at least 128, not ", window);
  p.local_idx = idx.data_ptr<int32_t>();
  p.local_slots = idx.size(3);
}

// The branch on our kernels (trainer_lib/kernels/nsa_window.h): the forward keeps o and lse, the
// backward allocates delta (B H T fp32) and the three gradients.
class WindowKernelFunction : public torch::autograd::Function<WindowKernelFunction> {
 public:
  // q, k, v: contiguous bf16. Returns o [B, H, T, D] contiguous bf16.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& key, const torch::Tensor& v, int64_t window) {
    torch::Tensor o = torch::empty_like(q);
    torch::Tensor lse =
        torch::empty({q.size(0), q.size(1), q.size(2)}, q.options().dtype(torch::kFloat32));
    NsaWindowKernelForwardInto(q, key, v, window, o, lse);
    ctx->save_for_backward({q, key, v, o, lse});
    ctx->saved_data["window"] = window;
    return o;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &q = saved[0], &key = saved[1], &v = saved[2], &o = saved[3],
                        &lse = saved[4];
    const torch::Tensor d_o = NsaKernelInput(grads[0]);
    torch::Tensor delta = torch::empty_like(lse);
    {
      const c10::cuda::CUDAGuard guard(q.device());
      Check(k::NsaRowDots(d_o.data_ptr(), o.data_ptr(), delta.data_ptr<float>(), lse.numel(),
                          q.size(3), at::cuda::getCurrentCUDAStream(q.device().index())),
            "delta");
    }
    torch::Tensor dq = torch::empty_like(q), dk = torch::empty_like(key), dv = torch::empty_like(v);
    NsaWindowKernelBackwardInto(q, key, v, ctx->saved_data["window"].toInt(), lse, d_o, delta, dq,
                                dk, dv);
    return {dq, dk, dv, torch::Tensor()};
  }
};
#endif

class WindowFunction : public torch::autograd::Function<WindowFunction> {
 public:
  // q, k, v: bf16 [B, H(_kv), T, D] with unit stride in D. Returns o [B, H, T, D] contiguous.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, int64_t window, int64_t backward_rows) {
    const int64_t t = q.size(2);
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
    // FlashAttention's layout is [B, T, H, D]: the transposed views, no copies. o is made
    // contiguous in [B, H, T, D] for the gate's kernels (a copy only where FlashAttention
    // allocated it in its own layout).
    auto [o, lse, seed, offset, unused] = at::_flash_attention_forward(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), std::nullopt, std::nullopt, t, t,
        /*dropout_p=*/0.0, /*is_causal=*/true, /*return_debug_mask=*/false, scale,
        /*window_size_left=*/window - 1, /*window_size_right=*/0);
    (void)unused;
    torch::Tensor out = o.transpose(1, 2).contiguous();
    ctx->save_for_backward({q, k, v, out, lse, seed, offset});
    ctx->saved_data["window"] = window;
    ctx->saved_data["rows"] = backward_rows;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &o = saved[3], &lse = saved[4],
                        &seed = saved[5], &offset = saved[6];
    const int64_t window = ctx->saved_data["window"].toInt();
    const int64_t t = q.size(2), d = q.size(3);
    int64_t rows = ctx->saved_data["rows"].toInt();
    if (rows <= 0) rows = BackwardRows(q.size(0), q.size(1), k.size(1), t, d, window);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const torch::Tensor d_o = grads[0].to(torch::kBFloat16);
    if (rows >= t) {
      auto [dq, dk, dv] = Chunk(d_o, q, k, v, o, lse, seed, offset, 0, t, window, scale);
      return {dq.transpose(1, 2), dk.transpose(1, 2), dv.transpose(1, 2), {}, {}};
    }
    // Chunks' key ranges overlap by w - 1 keys, whose dk and dv two chunks add: in fp32, as the
    // kernels' node sums its own (summed in bf16 they broke the error rule on a GPU where chunks
    // are shorter than the window). dq starts as NaN so that a row no chunk wrote could not pass
    // for a gradient.
    torch::Tensor dq = torch::full_like(q, NAN);
    torch::Tensor dk = torch::zeros(k.sizes(), k.options().dtype(torch::kFloat32));
    torch::Tensor dv = torch::zeros_like(dk);
    for (int64_t t0 = 0; t0 < t; t0 += rows) {
      const int64_t t1 = std::min(t, t0 + rows);
      const int64_t s0 = std::max<int64_t>(0, t0 - (window - 1));
      auto [dq_c, dk_c, dv_c] = Chunk(d_o, q, k, v, o, lse, seed, offset, t0, t1, window, scale);
      dq.narrow(2, t0, t1 - t0).copy_(dq_c.transpose(1, 2));
      dk.narrow(2, s0, t1 - s0).add_(dk_c.transpose(1, 2));
      dv.narrow(2, s0, t1 - s0).add_(dv_c.transpose(1, 2));
    }
    return {dq, dk.to(torch::kBFloat16), dv.to(torch::kBFloat16), {}, {}};
  }

 private:
  // FlashAttention's backward for queries t0 .. t1 - 1 over the keys s0 .. t1 - 1 their windows
  // reach; with fewer queries than keys it aligns the last query to the last key, which puts
  // query t0 + i at key t0 + i. Returns dq, dk, dv in its layout, [B, rows or keys, H(_kv), D].
  static std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> Chunk(
      const torch::Tensor& d_o, const torch::Tensor& q, const torch::Tensor& k,
      const torch::Tensor& v, const torch::Tensor& o, const torch::Tensor& lse,
      const torch::Tensor& seed, const torch::Tensor& offset, int64_t t0, int64_t t1,
      int64_t window, double scale) {
    const int64_t s0 = std::max<int64_t>(0, t0 - (window - 1));
    auto rows = [&](const torch::Tensor& x) { return x.narrow(2, t0, t1 - t0).transpose(1, 2); };
    auto keys = [&](const torch::Tensor& x) { return x.narrow(2, s0, t1 - s0).transpose(1, 2); };
    // do and o contiguous in FlashAttention's layout, which its backward would otherwise copy
    // them into an element at a time.
    auto contiguous_rows = [&](const torch::Tensor& x) {
      const torch::Tensor view = rows(x);
      torch::Tensor y = torch::empty(view.sizes(), view.options());
      NsaCopyInWords(y, view);
      return y;
    };
    return at::_flash_attention_backward(
        contiguous_rows(d_o), rows(q), keys(k), keys(v), contiguous_rows(o),
        lse.narrow(2, t0, t1 - t0).contiguous(),
        /*cum_seq_q=*/{}, /*cum_seq_k=*/{}, t1 - t0, t1 - s0, /*dropout_p=*/0.0,
        /*is_causal=*/true, seed, offset, scale, /*window_size_left=*/window - 1,
        /*window_size_right=*/0);
  }
};

}  // namespace

bool NsaWindowKernelsTake(const at::Tensor& q, const at::Tensor& k) {
#ifdef ABLATE_NSA_KERNELS
  if (!NsaKernelsEnabled() || !q.defined() || !k.defined() || !q.is_cuda() ||
      k.device() != q.device() || q.dim() != 4 || k.dim() != 4 || q.size(0) != k.size(0) ||
      q.size(2) != k.size(2) || q.size(3) != k.size(3) || k.size(1) == 0) {
    return false;
  }
  const c10::cuda::CUDAGuard guard(q.device());
  return k::NsaWindowSupported(Params(q, k, k, 1)) && k::NsaWindowKernelsRun();
#else
  (void)q, (void)k;
  return false;
#endif
}

void NsaWindowKernelForwardInto(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                int64_t window, at::Tensor& o, at::Tensor& lse,
                                const NsaWindowLocalStart* start) {
#ifdef ABLATE_NSA_KERNELS
  for (const at::Tensor* x : std::initializer_list<const at::Tensor*>{&q, &k, &v, &o}) {
    TORCH_CHECK(x->scalar_type() == torch::kBFloat16 && x->is_contiguous(),
                "nsa window kernels: q, k, v and o must be contiguous bf16");
  }
  TORCH_CHECK(o.sizes() == q.sizes() && lse.scalar_type() == torch::kFloat32 &&
                  lse.is_contiguous() && lse.numel() * q.size(3) == q.numel(),
              "nsa window kernels: o ", o.sizes(), " and lse ", lse.sizes(), " do not fit q ",
              q.sizes());
  const c10::cuda::CUDAGuard guard(q.device());
  k::NsaWindowParams p = Params(q, k, v, window);
  p.o = o.data_ptr();
  p.lse = lse.data_ptr<float>();
  if (start != nullptr) {
    SetLocalIndex(p, start->block_idx, k, window);
    const int64_t rows = lse.numel();
    TORCH_CHECK(
        start->shift.scalar_type() == torch::kFloat32 && start->shift.is_contiguous() &&
            start->shift.numel() == rows && start->row_sum.is_contiguous() &&
            start->row_sum.scalar_type() == torch::kFloat32 && start->row_sum.numel() == rows &&
            start->row_max.is_contiguous() && start->row_max.scalar_type() == torch::kInt32 &&
            start->row_max.numel() == rows && start->accum.is_contiguous() &&
            start->accum.scalar_type() == torch::kFloat32 && start->accum.numel() == q.numel(),
        "nsa window kernels: the local start's shift ", start->shift.sizes(), ", row sums ",
        start->row_sum.sizes(), ", row maxes ", start->row_max.sizes(), " and accum ",
        start->accum.sizes(),
        " must be contiguous, fp32 but the int32 maxes, a row or a row of D each per row "
        "of q ",
        q.sizes());
    p.local_shift = start->shift.data_ptr<float>();
    p.local_accum = start->accum.data_ptr<float>();
    p.local_sum = start->row_sum.data_ptr<float>();
    p.local_max = start->row_max.data_ptr<int32_t>();
  }
  Check(k::NsaWindowForward(p, at::cuda::getCurrentCUDAStream(q.device().index())), "forward");
#else
  (void)q, (void)k, (void)v, (void)window, (void)o, (void)lse, (void)start;
  TORCH_CHECK(false, "nsa: this build has no CUDA kernels");
#endif
}

void NsaWindowKernelBackwardInto(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 int64_t window, const at::Tensor& lse, const at::Tensor& d_o,
                                 const at::Tensor& delta, at::Tensor& dq, at::Tensor& dk,
                                 at::Tensor& dv, const NsaWindowLocalTerms* local) {
#ifdef ABLATE_NSA_KERNELS
  const bool dq_fp32 = dq.defined() && dq.scalar_type() == torch::kFloat32;
  TORCH_CHECK(dq.defined() || dk.defined(), "nsa window kernels: no gradient asked for");
  TORCH_CHECK(dk.defined() == dv.defined(), "nsa window kernels: dk and dv go together");
  TORCH_CHECK(!dq_fp32 || dk.defined(),
              "nsa window kernels: an fp32 dq is added into by the dk/dv kernel, so dk and dv "
              "must be asked for with it");
  for (const at::Tensor* x :
       std::initializer_list<const at::Tensor*>{&q, &k, &v, &d_o, &dq, &dk, &dv}) {
    if (!x->defined()) continue;  // a gradient not asked for
    TORCH_CHECK(
        (x->scalar_type() == torch::kBFloat16 || (x == &dq && dq_fp32)) && x->is_contiguous(),
        "nsa window kernels: q, k, v, d_o and the gradients must be contiguous bf16 "
        "(dq fp32 too)");
  }
  TORCH_CHECK(d_o.sizes() == q.sizes() && (!dq.defined() || dq.sizes() == q.sizes()) &&
                  (!dk.defined() || (dk.sizes() == k.sizes() && dv.sizes() == k.sizes())),
              "nsa window kernels: d_o ", d_o.sizes(), " or the gradients do not fit q ", q.sizes(),
              " and k ", k.sizes());
  for (const at::Tensor* x : {&lse, &delta}) {
    TORCH_CHECK(x->scalar_type() == torch::kFloat32 && x->is_contiguous() &&
                    x->numel() * q.size(3) == q.numel(),
                "nsa window kernels: lse and delta must be contiguous fp32 [B, H, T], not ",
                x->sizes());
  }
  const c10::cuda::CUDAGuard guard(q.device());
  k::NsaWindowParams p = Params(q, k, v, window);
  p.lse = const_cast<float*>(lse.data_ptr<float>());
  p.d_o = d_o.data_ptr();
  p.delta = delta.data_ptr<float>();
  if (dq_fp32) {
    p.dq_accum = dq.data_ptr<float>();
  } else if (dq.defined()) {
    p.dq = dq.data_ptr();
  }
  if (dk.defined()) {
    p.dk = dk.data_ptr();
    p.dv = dv.data_ptr();
  }
  if (local != nullptr) {
    SetLocalIndex(p, local->block_idx, k, window);
    for (const at::Tensor* x : {&local->lse, &local->delta}) {
      TORCH_CHECK(x->scalar_type() == torch::kFloat32 && x->is_contiguous() &&
                      x->numel() * q.size(3) == q.numel(),
                  "nsa window kernels: the local terms' lse and delta must be contiguous fp32 "
                  "[B, H, T], not ",
                  x->sizes());
    }
    p.local_lse = local->lse.data_ptr<float>();
    p.local_delta = local->delta.data_ptr<float>();
  }
  Check(k::NsaWindowBackward(p, at::cuda::getCurrentCUDAStream(q.device().index())), "backward");
#else
  (void)q, (void)k, (void)v, (void)window, (void)lse, (void)d_o, (void)delta, (void)dq, (void)dk,
      (void)dv, (void)local;
  TORCH_CHECK(false, "nsa: this build has no CUDA kernels");
#endif
}

bool NsaWindowFlashTakes(const at::Tensor& q, const at::Tensor& k) {
  return q.defined() && k.defined() && q.is_cuda() && k.device() == q.device() && q.dim() == 4 &&
         k.dim() == 4 && q.size(0) == k.size(0) && q.size(2) == k.size(2) &&
         q.size(3) == k.size(3) && k.size(1) > 0 && q.size(1) % k.size(1) == 0 &&
         q.size(3) % 8 == 0 && q.size(3) <= 256 && q.size(2) > 0 &&
         at::globalContext().userEnabledFlashSDP() && FlashRuns(q.device());
}

bool NsaWindowTakes(const at::Tensor& q, const at::Tensor& k) {
  return NsaWindowKernelsTake(q, k) || NsaWindowFlashTakes(q, k);
}

at::Tensor NsaWindowAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              int64_t window, int64_t backward_rows, NsaWindowPath path) {
  TORCH_CHECK(window > 0, "nsa window: window ", window, " must be positive");
  TORCH_CHECK(v.defined() && k.defined() && v.sizes() == k.sizes() && v.device() == k.device(),
              "nsa window: v ", v.defined() ? v.sizes() : at::IntArrayRef{}, " differs from k ",
              k.defined() ? k.sizes() : at::IntArrayRef{});
  const bool kernels = path != NsaWindowPath::kFlash && NsaWindowKernelsTake(q, k);
  TORCH_CHECK(kernels || path != NsaWindowPath::kKernels, "nsa window: our kernels do not take q ",
              q.sizes(), " on ", q.device(), ", k ", k.sizes(), " (see NsaWindowKernelsTake)");
#ifdef ABLATE_NSA_KERNELS
  // The bf16 rounding and copies are differentiable, so the gradients come back in the inputs'
  // dtypes.
  if (kernels) {
    return WindowKernelFunction::apply(NsaKernelInput(q), NsaKernelInput(k), NsaKernelInput(v),
                                       window);
  }
#endif
  TORCH_CHECK(NsaWindowFlashTakes(q, k), "nsa window: FlashAttention does not take q ", q.sizes(),
              " on ", q.device(), ", k ", k.sizes(), " (see NsaWindowFlashTakes)");
  // FlashAttention reads rows of D with unit stride.
  auto bf16 = [](const at::Tensor& x) {
    torch::Tensor y = x.to(torch::kBFloat16);
    return y.stride(3) == 1 ? y : y.contiguous();
  };
  return WindowFunction::apply(bf16(q), bf16(k), bf16(v), window, backward_rows);
}

}  // namespace ablate::train
