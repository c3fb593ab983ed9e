#include "trainer_lib/attention/nsa_compressed.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

#include <ATen/SDPBackend.h>
#include <torch/torch.h>

#include "trainer_lib/attention/nsa_blocks.h"
#include "trainer_lib/attention/nsa_fold.h"
#include "trainer_lib/attention/nsa_gate.h"
#include "trainer_lib/attention/nsa_selection.h"

namespace ablate::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

constexpr double kInf = std::numeric_limits<double>::infinity();
// fp32 elements of one chunk's [B, H, Tc, NF] scores when NsaOptions::query_chunk is 0: about
// 1 GiB, three of them in backward.
constexpr int64_t kScoreElements = int64_t{1} << 28;
// NsaOptions::fused_chunk_bytes's default.
constexpr int64_t kFusedBytes = int64_t{4} << 30;

// a b for bf16 batches with fp32 accumulation and an fp32 result: bmm's out_dtype overload
// (cuBLAS's bf16 tensor-core GEMM) on CUDA. The CPU has no such kernel: there the same bf16
// values are multiplied in fp32.
torch::Tensor Bmm32(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.is_cuda()) return at::bmm(a, b, torch::kFloat32);
  return torch::bmm(a.to(torch::kFloat32), b.to(torch::kFloat32));
}

struct Geometry {
  int64_t b, h_kv, g, t, nf, l, n;  // nf: full blocks, T / l
  double scale;
};

Geometry GeometryOf(const torch::Tensor& q, const torch::Tensor& k_cmp, int64_t l, int64_t n) {
  return {q.size(0),  k_cmp.size(1), q.size(1) / k_cmp.size(1), q.size(2), k_cmp.size(2), l, n,
          1.0 / std::sqrt(static_cast<double>(q.size(3)))};
}

// A chunk of queries [t0, t0 + tc) and the compressed blocks c < nfc that any of them sees.
struct Rows {
  int64_t t0, tc, nfc;
};

Rows RowsAt(int64_t t0, int64_t chunk, const Geometry& g) {
  const int64_t tc = std::min(chunk, g.t - t0);
  return {t0, tc, std::min(g.nf, (t0 + tc) / g.l)};
}

// A chunk's rows of x [B, H, T, X] or [B, H, T] with each key/value head's G query heads
// stacked: [B H_kv, G tc, X] (X = 1 for 3-D x), a copy.
torch::Tensor Group(const torch::Tensor& x, const Geometry& g, const Rows& r) {
  return x.narrow(2, r.t0, r.tc).reshape({g.b * g.h_kv, g.g * r.tc, -1});
}

// Writes rows in Group's layout into the chunk's rows of dst [B, H, T, X] or [B, H, T].
void Ungroup(const torch::Tensor& dst, const torch::Tensor& rows, const Geometry& g,
             const Rows& r) {
  dst.view({g.b, g.h_kv, g.g, g.t, -1})
      .narrow(3, r.t0, r.tc)
      .copy_(rows.view({g.b, g.h_kv, g.g, r.tc, -1}));
}

// The chunk's scaled scores [B H_kv, G tc, nfc] fp32, -inf where a block has not ended for a
// query ((c + 1) l - 1 > t). qg: Group(q) bf16; kc: [B H_kv, nfc, D] bf16.
torch::Tensor Scores(const torch::Tensor& qg, const torch::Tensor& kc, const Geometry& g,
                     const Rows& r) {
  torch::Tensor s = Bmm32(qg, kc.transpose(1, 2)).mul_(g.scale);
  // Blocks c < (t0 + 1) / l have ended for every query of the chunk: only the columns after them
  // (about tc / l of them) need the mask.
  const int64_t ended = (r.t0 + 1) / g.l;
  if (ended < r.nfc) {
    const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(s.device());
    torch::Tensor pos = torch::arange(r.t0, r.t0 + r.tc, opts);
    torch::Tensor block = torch::arange(ended, r.nfc, opts);
    torch::Tensor hidden =
        block.unsqueeze(0) >= torch::floor_divide(pos + 1, g.l).unsqueeze(1);  // [tc, cols]
    s.narrow(2, ended, r.nfc - ended)
        .view({s.size(0), g.g, r.tc, r.nfc - ended})
        .masked_fill_(hidden, -kInf);
  }
  return s;
}

// The chunk's compressed probabilities [B H_kv, G tc, nfc] fp32: the softmax of Scores, with the
// rows of queries that see no block yet (t < l - 1, all -inf) set to 0 as fla's nan_to_num does.
torch::Tensor Probs(const torch::Tensor& qg, const torch::Tensor& kc, const Geometry& g,
                    const Rows& r) {
  torch::Tensor p = torch::softmax(Scores(qg, kc, g, r), -1);
  const int64_t blind = std::min(r.tc, g.l - 1 - r.t0);
  if (blind > 0) p.view({p.size(0), g.g, r.tc, r.nfc}).narrow(2, 0, blind).zero_();
  return p;
}

// The chunk's selection [B, H_kv, tc, n] int32 from its probabilities p [B H_kv, G tc, nfc]
// (undefined when nfc = 0). Blocks past the last query's own one can never be kept: the score
// stops there.
torch::Tensor Select(const torch::Tensor& p, const Geometry& g, const Rows& r,
                     torch::Device device) {
  const int64_t blocks = std::min((g.t + g.l - 1) / g.l, (r.t0 + r.tc - 1) / g.l + 1);
  torch::Tensor score = torch::zeros({g.b, g.h_kv, r.tc, blocks},
                                     torch::TensorOptions().device(device));
  if (p.defined()) {
    score.narrow(3, 0, r.nfc).copy_(p.view({g.b, g.h_kv, g.g, r.tc, r.nfc}).mean(2));
  }
  return NsaTopBlocks(score, r.t0, NsaShape{g.l, g.n, 0}).to(torch::kInt32);
}

// Every chunk's selection [B, H_kv, T, n] int32 and, when `o` ([B, H, T, D] fp32) is defined,
// o_cmp's rows written into it. q16: [B, H, T, D] bf16; kf, vf: [B H_kv, NF, D] bf16.
torch::Tensor ScoreChunks(const torch::Tensor& q16, const torch::Tensor& kf,
                          const torch::Tensor& vf, const Geometry& g, int64_t chunk,
                          const torch::Tensor& o) {
  std::vector<torch::Tensor> idx;
  for (int64_t t0 = 0; t0 < g.t; t0 += chunk) {
    const Rows r = RowsAt(t0, chunk, g);
    torch::Tensor p;
    if (r.nfc > 0) {
      p = Probs(Group(q16, g, r), kf.narrow(1, 0, r.nfc), g, r);
      if (o.defined()) Ungroup(o, Bmm32(p.to(torch::kBFloat16), vf.narrow(1, 0, r.nfc)), g, r);
    }
    idx.push_back(Select(p, g, r, q16.device()));
  }
  return torch::cat(idx, 2);
}

// Every chunk's selection [B, H_kv, T, n] int32 on the top-blocks kernel (nsa_selection.h's
// NsaTopBlocksInto): per chunk one GEMM of raw scores, then one kernel in place of Probs and
// Select. q16: [B, H, T, D] bf16 on CUDA; kf: [B H_kv, NF, D] bf16.
torch::Tensor SelectOnKernel(const torch::Tensor& q16, const torch::Tensor& kf, const Geometry& g,
                             int64_t chunk) {
  torch::Tensor idx = torch::empty({g.b, g.h_kv, g.t, g.n}, q16.options().dtype(torch::kInt32));
  for (int64_t t0 = 0; t0 < g.t; t0 += chunk) {
    const Rows r = RowsAt(t0, chunk, g);
    torch::Tensor s;
    if (r.nfc > 0) s = Bmm32(Group(q16, g, r), kf.narrow(1, 0, r.nfc).transpose(1, 2));
    NsaTopBlocksInto(s, g.g, r.t0, r.tc, g.l, g.scale, idx);
  }
  return idx;
}

// The output and log-sum-exp of an SDPA backend op's result (its first two elements).
template <typename Result>
std::pair<torch::Tensor, torch::Tensor> OutputAndLse(const Result& r) {
  return {std::get<0>(r), std::get<1>(r)};
}

struct FusedCompressed {
  // o_cmp [B, H, T, D] bf16, differentiable in q, k_cmp and v_cmp; undefined where `folded` is
  // asked for instead: o_cmp as the backend returns it, runs of folded heads (nsa_fold.h).
  torch::Tensor out;
  NsaFoldedCompressed folded;
  // [B, H, T] fp32, no gradient: query t's log of the sum over the blocks it sees of
  // exp(q k_cmp[c] / sqrt(D)) (natural log), -inf for the first l - 1 queries, which see none;
  // undefined where SDPA's backend is none of those called here.
  torch::Tensor lse;
};

// o_cmp through PyTorch's fused causal attention (cuDNN or flash on CUDA), and its log-sum-exp;
// both undefined where SDPA would pick its unfused math kernel. The queries that see the same
// compressed blocks are folded into heads (nsa_fold.h, one copy each way): query t sees the blocks c <= p with p = (t + 1) / l - 1,
// so the l queries t = (p + 1) l - 1 + i (i < l) form row p of head h l + i, and row p of a causal
// attention over the NF compressed keys sees exactly the keys c <= p. With equal query and key
// lengths (NF rows: the last query, T - 1, has p = NF - 1) SDPA's causal mask is that lower
// triangle, and head h l + i reads key/value head h / G as GQA asks. The first l - 1 queries
// see no block: their rows are 0, as fla's nan_to_num makes them. Autograd differentiates it
// through the backend's own backward. q: [B, H, T, D]; k_cmp, v_cmp: [B, H_kv, NF, D].
//
// The backend's op is called as scaled_dot_product_attention calls it with enable_gqa (PyTorch
// 2.11 to 2.13, aten/src/ATen/native/transformers/attention.cpp), with its log-sum-exp asked for
// (no slower on cuDNN at Qwen3-0.6B's shape and 128K on an H200): cuDNN's and the efficient
// kernel's on the tensors as they are (cuDNN reads the GQA heads itself; the efficient kernel has
// no GQA and is picked only for H l = H_kv); flash's with D padded to a multiple of 8 and the
// unpadded D's scale, its output cut back to D. Any other backend runs through SDPA itself,
// without a log-sum-exp. Runs of whole key/value heads bound the backward's memory
// (NsaOptions::fused_chunk_bytes is `fused_bytes`). folded_out: o_cmp as NsaCompressedAndSelect's
// `folded`, on a graph of its own where that function says.
FusedCompressed FusedCompressedAttention(const torch::Tensor& q, const torch::Tensor& k_cmp,
                                         const torch::Tensor& v_cmp, int64_t l,
                                         int64_t fused_bytes, bool folded_out) {
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), d = q.size(3), nf = k_cmp.size(2);
  const int64_t h_kv = k_cmp.size(1);
  if (!q.is_cuda() || nf == 0) return {};
  // Whole key/value heads at a time, as many as keep 8 bytes per element of their folded q
  // within fused_bytes: the backends' backward allocates about that (cuDNN's fp32 dq
  // accumulator and more; one 32 GiB allocation failed for all of Qwen3-4B's heads at 1M
  // tokens on an H200). Folded head f of a run reads its key/value head f / (G l).
  const int64_t group = h / h_kv, per_kv = b * group * l * nf * d;
  const int64_t kv_run = std::clamp<int64_t>(fused_bytes / (8 * per_kv), 1, h_kv);
  std::vector<int64_t> run_heads;  // query heads per run
  for (int64_t kv0 = 0; kv0 < h_kv; kv0 += kv_run) {
    run_heads.push_back((std::min(h_kv, kv0 + kv_run) - kv0) * group);
  }
  const bool own_graph = folded_out && run_heads.size() <= kNsaGateMaxFoldedRuns &&
                         torch::GradMode::is_enabled() &&
                         (q.requires_grad() || k_cmp.requires_grad() || v_cmp.requires_grad());
  // [B, heads l, NF, D] a run; on a graph of its own, folded without history and then leaves
  // (as the bf16 keys and values), so that the caller's graph never sees them.
  std::vector<torch::Tensor> folded;
  torch::Tensor k16, v16;
  if (own_graph) {
    {
      torch::NoGradGuard no_grad;
      folded = NsaFoldRows(q.to(torch::kBFloat16), l, run_heads);
    }
    for (torch::Tensor& run : folded) run.requires_grad_(true);
    k16 = k_cmp.detach().to(torch::kBFloat16).requires_grad_(true);
    v16 = v_cmp.detach().to(torch::kBFloat16).requires_grad_(true);
  } else {
    folded = NsaFoldRows(q.to(torch::kBFloat16), l, run_heads);
    k16 = k_cmp.to(torch::kBFloat16);
    v16 = v_cmp.to(torch::kBFloat16);
  }
  const auto backend = static_cast<at::SDPBackend>(at::_fused_sdp_choice(
      folded[0], k16.narrow(1, 0, run_heads[0] / group), v16.narrow(1, 0, run_heads[0] / group),
      /*attn_mask=*/std::nullopt, /*dropout_p=*/0.0, /*is_causal=*/true, /*scale=*/std::nullopt,
      /*enable_gqa=*/true));
  if (backend == at::SDPBackend::math || backend == at::SDPBackend::error) return {};
  // The backend's op on the folded heads qp of key/value heads [kv_first, + kv_count).
  auto attend = [&](const torch::Tensor& qp, int64_t kv_first,
                    int64_t kv_count) -> std::pair<torch::Tensor, torch::Tensor> {
    const torch::Tensor kp = k16.narrow(1, kv_first, kv_count),
                        vp = v16.narrow(1, kv_first, kv_count);
    switch (backend) {
      case at::SDPBackend::cudnn_attention:
        return OutputAndLse(at::_scaled_dot_product_cudnn_attention(
            qp, kp, vp, /*attn_bias=*/std::nullopt, /*compute_log_sumexp=*/true,
            /*dropout_p=*/0.0, /*is_causal=*/true, /*return_debug_mask=*/false));
      case at::SDPBackend::flash_attention: {
        auto pad = [&](const torch::Tensor& x) {
          return d % 8 == 0 ? x : torch::constant_pad_nd(x, {0, 8 - d % 8});
        };
        auto [o, lse] = OutputAndLse(at::_scaled_dot_product_flash_attention(
            pad(qp), pad(kp), pad(vp), /*dropout_p=*/0.0, /*is_causal=*/true,
            /*return_debug_mask=*/false, /*scale=*/1.0 / std::sqrt(static_cast<double>(d))));
        return {o.narrow(3, 0, d), lse};
      }
      case at::SDPBackend::efficient_attention:
        return OutputAndLse(at::_scaled_dot_product_efficient_attention(
            qp, kp, vp, /*attn_bias=*/std::nullopt, /*compute_log_sumexp=*/true,
            /*dropout_p=*/0.0, /*is_causal=*/true));
      default:
        return {at::scaled_dot_product_attention(qp, kp, vp, /*attn_mask=*/std::nullopt,
                                                 /*dropout_p=*/0.0, /*is_causal=*/true,
                                                 /*scale=*/std::nullopt, /*enable_gqa=*/true),
                torch::Tensor()};
    }
  };
  std::vector<torch::Tensor> os, lses;
  int64_t kv0 = 0;
  for (size_t i = 0; i < folded.size(); ++i) {
    const int64_t kvc = run_heads[i] / group;
    auto [op, lp] = attend(folded[i], kv0, kvc);
    os.push_back(op);
    lses.push_back(lp);
    kv0 += kvc;
  }
  FusedCompressed fused;
  if (own_graph) {
    fused.folded = {os, {k16, v16}, {k_cmp, v_cmp}, folded};
  } else if (folded_out) {
    fused.folded.runs = os;
  } else {
    fused.out = NsaUnfoldRows(os, h, l, t, 0.0);
  }
  if (lses[0].defined()) {
    // Folded rows as the backends return them (PyTorch 2.11 on an H200, and its sources to
    // 2.13): [B, H l, NF, 1] from cuDNN (strided as [B, NF, H l, 1] where cuDNN runs its ragged
    // layout; reshape reads the logical order), [B, H l, NF] from flash, and [B, H l, NF rounded
    // up to 32] from the efficient kernel. Row p of folded head h l + i is query
    // (p + 1) l - 1 + i, as o's.
    std::vector<torch::Tensor> rows;
    for (const torch::Tensor& lse : lses) {
      const int64_t folded_heads = lse.dim() >= 2 ? lse.size(1) : 0;
      TORCH_CHECK(lse.dim() >= 3 && lse.size(0) == b && folded_heads % l == 0 &&
                      lse.size(2) >= nf && lse.numel() == b * folded_heads * lse.size(2) &&
                      lse.scalar_type() == torch::kFloat32,
                  "nsa compressed: SDPA's logsumexp ", lse.sizes(), " ", lse.scalar_type(),
                  " is not [", b, ", heads l, NF >= ", nf, "(, 1)] fp32 with l ", l);
      rows.push_back(lse.detach().reshape({b, folded_heads, -1, 1}).narrow(2, 0, nf));
    }
    fused.lse = NsaUnfoldRows(rows, h, l, t, -kInf).squeeze(3);
  }
  return fused;
}

class CompressedFunction : public torch::autograd::Function<CompressedFunction> {
 public:
  // q: [B, H, T, D]; k_cmp, v_cmp: [B, H_kv, NF, D]. Returns {o_cmp fp32, block_idx int32}.
  static tensor_list forward(AutogradContext* ctx, const torch::Tensor& q,
                             const torch::Tensor& k_cmp, const torch::Tensor& v_cmp, int64_t l,
                             int64_t n, int64_t chunk) {
    const Geometry g = GeometryOf(q, k_cmp, l, n);
    const int64_t d = q.size(3);
    const torch::Tensor q16 = q.to(torch::kBFloat16);
    // Kept as [B, H_kv, NF, D]; the GEMMs read them as [B H_kv, NF, D].
    const torch::Tensor k16 = k_cmp.to(torch::kBFloat16).contiguous();
    const torch::Tensor v16 = v_cmp.to(torch::kBFloat16).contiguous();
    const torch::Tensor kf = k16.view({g.b * g.h_kv, g.nf, d});
    const torch::Tensor vf = v16.view({g.b * g.h_kv, g.nf, d});
    // Rows of chunks that see no block stay 0.
    torch::Tensor o = torch::zeros(q.sizes(), q.options().dtype(torch::kFloat32));
    torch::Tensor block_idx = ScoreChunks(q16, kf, vf, g, chunk, o);
    ctx->mark_non_differentiable({block_idx});
    ctx->save_for_backward({q16, k16, v16, o});
    ctx->saved_data["ints"] = std::vector<int64_t>{
        l, n, chunk, static_cast<int64_t>(q.scalar_type()),
        static_cast<int64_t>(k_cmp.scalar_type()), static_cast<int64_t>(v_cmp.scalar_type())};
    return {o, block_idx};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const tensor_list s = ctx->get_saved_variables();
    const std::vector<int64_t> ints = ctx->saved_data["ints"].toIntVector();
    if (!grads[0].defined()) return tensor_list(6);
    const torch::Tensor &q16 = s[0], &k16 = s[1], &v16 = s[2], &o = s[3];
    const int64_t chunk = ints[2];
    const Geometry g = GeometryOf(q16, k16, ints[0], ints[1]);
    const int64_t d = q16.size(3);
    const torch::Tensor kf = k16.view({g.b * g.h_kv, g.nf, d});
    const torch::Tensor vf = v16.view({g.b * g.h_kv, g.nf, d});
    const torch::Tensor d_o = grads[0].to(torch::kFloat32);
    const torch::Tensor delta = (d_o * o).sum(-1);  // [B, H, T]
    const torch::Tensor do16 = d_o.to(torch::kBFloat16);
    torch::Tensor dq = torch::zeros(q16.sizes(), o.options());
    torch::Tensor dk = torch::zeros(kf.sizes(), o.options()), dv = torch::zeros_like(dk);
    for (int64_t t0 = 0; t0 < g.t; t0 += chunk) {
      const Rows r = RowsAt(t0, chunk, g);
      if (r.nfc == 0) continue;
      const torch::Tensor qg = Group(q16, g, r), dog = Group(do16, g, r);
      const torch::Tensor kc = kf.narrow(1, 0, r.nfc), vc = vf.narrow(1, 0, r.nfc);
      const torch::Tensor p = Probs(qg, kc, g, r);
      torch::Tensor ds = Bmm32(dog, vc.transpose(1, 2)).sub_(Group(delta, g, r)).mul_(p);
      const torch::Tensor p16 = p.to(torch::kBFloat16), ds16 = ds.to(torch::kBFloat16);
      Ungroup(dq, Bmm32(ds16, kc).mul_(g.scale), g, r);
      dk.narrow(1, 0, r.nfc).add_(Bmm32(ds16.transpose(1, 2), qg), g.scale);
      dv.narrow(1, 0, r.nfc).add_(Bmm32(p16.transpose(1, 2), dog));
    }
    return {dq.to(static_cast<c10::ScalarType>(ints[3])),
            dk.view(k16.sizes()).to(static_cast<c10::ScalarType>(ints[4])),
            dv.view(k16.sizes()).to(static_cast<c10::ScalarType>(ints[5])),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

NsaCompressedOutput NsaCompressedAndSelect(const at::Tensor& q, const at::Tensor& k,
                                           const at::Tensor& v, const NsaOptions& options,
                                           const at::Tensor& selection, bool folded_out) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.sizes() == k.sizes() && q.size(0) == k.size(0) &&
                  q.size(2) == k.size(2) && q.size(3) == k.size(3) && k.size(1) > 0 &&
                  q.size(1) % k.size(1) == 0,
              "nsa compressed: q ", q.sizes(), ", k ", k.sizes(), " and v ", v.sizes(),
              " must be [B, H, T, D], [B, H_kv, T, D] twice, H a multiple of H_kv");
  const int64_t l = options.shape.block_size, n = options.shape.selected_blocks;
  TORCH_CHECK(l > 0 && n > 0, "nsa compressed: block_size and selected_blocks must be positive");
  // Pooled in fp32 under autograd (from k and v as they are, not an fp32 copy of them): dk_cmp,
  // dv_cmp reach k and v through the mean.
  torch::Tensor k_cmp = NsaMeanPool(k, l, torch::kFloat32);
  torch::Tensor v_cmp = NsaMeanPool(v, l, torch::kFloat32);
  int64_t chunk = options.query_chunk;
  if (chunk <= 0) {
    const int64_t per_query = q.size(0) * q.size(1) * std::max<int64_t>(1, k_cmp.size(2));
    chunk = std::max<int64_t>(1, kScoreElements / per_query);
  }
  const FusedCompressed fused = FusedCompressedAttention(
      q, k_cmp, v_cmp, l, options.fused_chunk_bytes > 0 ? options.fused_chunk_bytes : kFusedBytes,
      folded_out);
  if (fused.out.defined() || !fused.folded.runs.empty()) {
    if (selection.defined()) {
      TORCH_CHECK(selection.dim() == 4 && selection.size(0) == k.size(0) &&
                      selection.size(1) == k.size(1) && selection.size(2) == k.size(2) &&
                      selection.size(3) == n,
                  "nsa compressed: a kept selection ", selection.sizes(), " does not fit k ",
                  k.sizes(), " and n = ", n);
      return {fused.out, selection, fused.lse, fused.folded};
    }
    // The selection is not differentiable: one pass of scores without autograd.
    torch::NoGradGuard no_grad;
    if (NsaSelectionKernelTakes(q, k.size(1), l, n)) {
      torch::Tensor idx = torch::empty({q.size(0), k.size(1), q.size(2), n},
                                       q.options().dtype(torch::kInt32));
      // Pass 1 of the kernel is the log-sum-exp SDPA made: taken from it where the backend gave it.
      NsaSelectionInto(q, k_cmp, fused.lse, l, idx);
      return {fused.out, idx, fused.lse, fused.folded};
    }
    const Geometry g = GeometryOf(q, k_cmp, l, n);
    const torch::Tensor kf =
        k_cmp.to(torch::kBFloat16).contiguous().view({g.b * g.h_kv, g.nf, q.size(3)});
    const torch::Tensor q16 = q.to(torch::kBFloat16);
    if (NsaTopBlocksKernelTakes(q, k.size(1), l)) {
      return {fused.out, SelectOnKernel(q16, kf, g, chunk), fused.lse, fused.folded};
    }
    return {fused.out, ScoreChunks(q16, kf, torch::Tensor(), g, chunk, torch::Tensor()), fused.lse,
            fused.folded};
  }
  const tensor_list out = CompressedFunction::apply(q, k_cmp, v_cmp, l, n, chunk);
  return {out[0], out[1], torch::Tensor(), {}};
}

}  // namespace ablate::train
