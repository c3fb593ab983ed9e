#include "trainer_lib/attention/nsa_fold.h"

#include <torch/torch.h>

#include <algorithm>
#include <vector>

#ifdef ABLATE_NSA_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "trainer_lib/kernels/nsa_selected.h"
#endif

namespace ablate::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Whether x's bytes read as 8-byte elements: the last dim of unit stride, every offset a
// multiple of 8 bytes.
bool FitsWords(const torch::Tensor& x) {
  const int64_t e = x.element_size();
  bool fits = x.dim() > 0 && e < 8 && x.stride(-1) == 1 && (x.size(-1) * e) % 8 == 0 &&
              (x.storage_offset() * e) % 8 == 0;
  for (int64_t i = 0; fits && i + 1 < x.dim(); ++i) fits = (x.stride(i) * e) % 8 == 0;
  return fits;
}

// Copies between rows [B, H, T, X] and folded [B, H l, NF, X] (any strides), into folded when
// `into_folded` (its slots past T zeroed), else into rows (those of the first l - 1 queries left
// as they are).
void CopyFolded(const torch::Tensor& rows, const torch::Tensor& folded, int64_t l,
                bool into_folded) {
  const int64_t h = rows.size(1), t = rows.size(2), nf = folded.size(2);
  TORCH_CHECK(l >= 1 && t >= l && nf == t / l && folded.size(1) == h * l, "nsa fold: rows ",
              rows.sizes(), " and folded ", folded.sizes(), " do not match a fold by ", l);
  // [B, H, NF, l, X]: slot (p, i) holds query (p + 1) l - 1 + i, the (p l + i)-th from l - 1.
  const torch::Tensor slots = folded.unflatten(1, {h, l}).permute({0, 1, 3, 2, 4});
  const torch::Tensor queries = rows.narrow(2, l - 1, t - l + 1);
  const int64_t full = (t - l + 1) / l;       // rows p whose l slots all hold queries: NF - 1 or NF
  const int64_t rest = t - l + 1 - full * l;  // then slots of row `full` that do, < l
  auto copy = [&](const torch::Tensor& r, const torch::Tensor& f) {
    if (into_folded) {
      NsaCopyInWords(f, r);
    } else {
      NsaCopyInWords(r, f);
    }
  };
  if (full > 0)
    copy(queries.narrow(2, 0, full * l).unflatten(2, {full, l}), slots.narrow(2, 0, full));
  if (full == nf) return;
  const torch::Tensor last = slots.select(2, full);  // [B, H, l, X]
  if (rest > 0) copy(queries.narrow(2, full * l, rest), last.narrow(2, 0, rest));
  if (into_folded) last.narrow(2, rest, l - rest).zero_();
}

class FoldFunction : public torch::autograd::Function<FoldFunction> {
 public:
  static tensor_list forward(AutogradContext* ctx, const torch::Tensor& x, int64_t l,
                             const std::vector<int64_t>& run_heads) {
    const int64_t t = x.dim() == 4 ? x.size(2) : 0;
    TORCH_CHECK(x.dim() == 4 && l >= 1 && t >= l, "nsa fold: x ", x.sizes(),
                " must be [B, H, T, X] with T >= l = ", l);
    int64_t heads = 0;
    for (int64_t h : run_heads) {
      TORCH_CHECK(h >= 1, "nsa fold: a run of ", h, " heads");
      heads += h;
    }
    TORCH_CHECK(heads == x.size(1), "nsa fold: runs of ", heads, " heads in all, for x ",
                x.sizes());
    tensor_list runs;
    int64_t h0 = 0;
    for (int64_t h : run_heads) {
      runs.push_back(torch::empty({x.size(0), h * l, t / l, x.size(3)}, x.options()));
      CopyFolded(x.narrow(1, h0, h), runs.back(), l, /*into_folded=*/true);
      h0 += h;
    }
    ctx->saved_data["sizes"] = x.sizes().vec();
    ctx->saved_data["l"] = l;
    ctx->saved_data["run_heads"] = run_heads;
    // A run that reaches no loss gets an undefined gradient, not a tensor of zeros to copy.
    ctx->set_materialize_grads(false);
    return runs;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const int64_t l = ctx->saved_data["l"].toInt();
    const std::vector<int64_t> run_heads = ctx->saved_data["run_heads"].toIntVector();
    const auto given = std::find_if(grads.begin(), grads.end(),
                                    [](const torch::Tensor& g) { return g.defined(); });
    if (given == grads.end()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    torch::Tensor dx = torch::empty(ctx->saved_data["sizes"].toIntVector(), given->options());
    dx.narrow(2, 0, l - 1).zero_();
    int64_t h0 = 0;
    for (size_t i = 0; i < run_heads.size(); ++i) {
      const torch::Tensor rows = dx.narrow(1, h0, run_heads[i]);
      if (grads[i].defined()) {
        CopyFolded(rows, grads[i], l, /*into_folded=*/false);
      } else {
        rows.zero_();  // a run that reached no loss
      }
      h0 += run_heads[i];
    }
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

class UnfoldFunction : public torch::autograd::Function<UnfoldFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, at::TensorList pieces, int64_t heads,
                               int64_t l, int64_t t, double fill) {
    TORCH_CHECK(!pieces.empty() && l >= 1, "nsa unfold: no folded heads, or l ", l, " < 1");
    int64_t runs_heads = 0;
    std::vector<int64_t> first_heads;
    for (const torch::Tensor& piece : pieces) {
      TORCH_CHECK(piece.dim() == 4 && piece.size(1) % l == 0 &&
                      piece.sizes().slice(2) == pieces[0].sizes().slice(2) &&
                      piece.size(0) == pieces[0].size(0),
                  "nsa unfold: folded run ", piece.sizes(), " must be [B, heads l, NF, X] with l ",
                  l, " and the first run's B, NF and X");
      first_heads.push_back(runs_heads);
      runs_heads += piece.size(1) / l;
    }
    TORCH_CHECK(heads >= 1 && runs_heads == heads, "nsa unfold: folded runs of ", runs_heads,
                " heads in all, for heads ", heads);
    const torch::Tensor& first = pieces[0];
    torch::Tensor rows = torch::empty({first.size(0), heads, t, first.size(3)}, first.options());
    rows.narrow(2, 0, std::min(l - 1, t)).fill_(fill);
    for (size_t i = 0; i < pieces.size(); ++i) {
      CopyFolded(rows.narrow(1, first_heads[i], pieces[i].size(1) / l), pieces[i], l,
                 /*into_folded=*/false);
    }
    ctx->saved_data["first_heads"] = first_heads;
    ctx->saved_data["l"] = l;
    ctx->saved_data["folded"] = first.sizes().vec();
    return rows;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const int64_t l = ctx->saved_data["l"].toInt();
    const std::vector<int64_t> first_heads = ctx->saved_data["first_heads"].toIntVector();
    std::vector<int64_t> sizes = ctx->saved_data["folded"].toIntVector();
    tensor_list d_pieces;
    for (size_t i = 0; i < first_heads.size(); ++i) {
      const int64_t end = i + 1 < first_heads.size() ? first_heads[i + 1] : grads[0].size(1);
      sizes[1] = (end - first_heads[i]) * l;
      d_pieces.push_back(torch::empty(sizes, grads[0].options()));
      CopyFolded(grads[0].narrow(1, first_heads[i], end - first_heads[i]), d_pieces.back(), l,
                 /*into_folded=*/true);
    }
    // One gradient per run, then none for heads, l, t and fill.
    d_pieces.resize(d_pieces.size() + 4);
    return d_pieces;
  }
};

}  // namespace

std::vector<at::Tensor> NsaFoldRows(const at::Tensor& x, int64_t l,
                                    const std::vector<int64_t>& run_heads) {
  return FoldFunction::apply(x, l, run_heads);
}

at::Tensor NsaUnfoldRows(const std::vector<at::Tensor>& pieces, int64_t heads, int64_t l,
                         int64_t t, double fill) {
  // As a TensorList, so that autograd takes each run as an input.
  return UnfoldFunction::apply(at::TensorList(pieces), heads, l, t, fill);
}

void NsaUnfoldRowsInto(const at::Tensor& rows, const at::Tensor& folded, int64_t l) {
  TORCH_CHECK(rows.dim() == 4 && folded.dim() == 4 && l >= 1 && rows.size(2) >= l &&
                  folded.size(0) == rows.size(0) && folded.size(1) == rows.size(1) * l &&
                  folded.size(2) == rows.size(2) / l && folded.size(3) == rows.size(3),
              "nsa unfold: rows ", rows.sizes(), " and folded ", folded.sizes(),
              " do not match a fold by ", l);
#ifdef ABLATE_NSA_KERNELS
  if (rows.is_cuda() && folded.device() == rows.device() && rows.scalar_type() == torch::kFloat32 &&
      folded.scalar_type() == torch::kBFloat16 && rows.is_contiguous() && folded.is_contiguous()) {
    const c10::cuda::CUDAGuard guard(rows.device());
    const cudaError_t error = ablate::kernels::NsaUnfoldRowsToFloat(
        folded.data_ptr(), rows.data_ptr<float>(), rows.size(0) * rows.size(1), rows.size(2), l,
        rows.size(3), at::cuda::getCurrentCUDAStream(rows.device().index()));
    // Shapes the kernel does not take (its refusal) go the copies' way; a launch's error is one.
    TORCH_CHECK(error == cudaSuccess || error == cudaErrorInvalidValue, "nsa unfold: ",
                cudaGetErrorString(error));
    if (error == cudaSuccess) return;
  }
#endif
  rows.narrow(2, 0, l - 1).zero_();
  CopyFolded(rows, folded, l, /*into_folded=*/false);
}

void NsaCopyInWords(const at::Tensor& dst, const at::Tensor& src) {
  if (dst.scalar_type() == src.scalar_type() && FitsWords(dst) && FitsWords(src)) {
    dst.view(torch::kInt64).copy_(src.view(torch::kInt64));
  } else {
    dst.copy_(src);
  }
}

}  // namespace ablate::train
