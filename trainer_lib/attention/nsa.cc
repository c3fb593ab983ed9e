#include "trainer_lib/attention/nsa.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "trainer_lib/attention/nsa_blocks.h"
#include "trainer_lib/attention/nsa_compressed.h"
#include "trainer_lib/attention/nsa_cuda.h"
#include "trainer_lib/attention/nsa_fold.h"
#include "trainer_lib/attention/nsa_gate.h"
#include "trainer_lib/attention/nsa_sparse.h"
#include "trainer_lib/attention/nsa_window.h"

namespace ablate::train {
namespace {

using torch::indexing::Slice;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Elements of one gathered key tensor [B, H_kv, chunk, n * l, D] the automatic chunk aims at.
constexpr int64_t kChunkElements = int64_t{1} << 25;
// Elements of one score tensor [B, H, chunk, NF + w] NsaBlockIndices' chunks aim at (they
// gather no keys).
constexpr int64_t kScoreElements = int64_t{1} << 27;
// Block size of the window's indices on the kernels: any tiling of (t - w, t] gives the same
// branch, and 64 is the dk/dv kernel's key tile and a multiple of the forward's, whatever the
// selected branch's block size.
constexpr int64_t kWindowBlock = 64;

// Turns autocast off on one device type for a scope: the reference computes in fp32 whatever
// the step's precision, so a recomputation in backward sees the same math.
class AutocastOff {
 public:
  explicit AutocastOff(c10::DeviceType device)
      : device_(device), was_enabled_(at::autocast::is_autocast_enabled(device)) {
    at::autocast::set_autocast_enabled(device_, false);
  }
  ~AutocastOff() { at::autocast::set_autocast_enabled(device_, was_enabled_); }
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  c10::DeviceType device_;
  bool was_enabled_;
};

// What one chunk of queries [t0, t0 + chunk) needs beyond its tensors.
struct ChunkShape {
  int64_t t0;     // first query position of the chunk
  int64_t t;      // sequence length (keys)
  NsaShape nsa;
};

// A ChunkShape as the integers an autograd node keeps, and back.
std::vector<int64_t> Pack(const ChunkShape& c) {
  const NsaShape& s = c.nsa;
  return {c.t0, c.t, s.block_size, s.selected_blocks, s.window, s.learned_compression,
          s.compression_kernel, s.compression_stride, s.paper_selection};
}

ChunkShape Unpack(const std::vector<int64_t>& v) {
  return {v[0], v[1], {v[2], v[3], v[4], v[5] != 0, v[6], v[7], v[8] != 0}};
}

// Compressed attention probabilities of a chunk, [B, H_kv, G, Tc, NF], zero where no window
// is visible. qg: [B, H_kv, G, Tc, D]; k_cmp: [B, H_kv, NF, D] with NF > 0; pos: [Tc] positions.
torch::Tensor CompressedProbs(const torch::Tensor& qg, const torch::Tensor& k_cmp,
                              const torch::Tensor& pos, double scale, const NsaShape& shape) {
  const int64_t blocks = k_cmp.size(2), l = shape.kernel(), d = shape.stride();
  // Window i has ended by query t when i d + l - 1 <= t, i.e. i < (t - l + 1 + d) / d (floored,
  // so negative before the first window ends).
  torch::Tensor visible = torch::arange(blocks, pos.options()).unsqueeze(0) <
                          torch::floor_divide(pos - l + 1 + d, d).unsqueeze(1);  // [Tc, NF]
  torch::Tensor any = visible.any(-1, /*keepdim=*/true);                  // [Tc, 1]
  torch::Tensor s = torch::matmul(qg, k_cmp.unsqueeze(2).transpose(-1, -2)) * scale;
  // A row with nothing visible softmaxes zeros and is then zeroed: no NaN to reach backward.
  s = s.masked_fill(visible.logical_not(), kNegInf).masked_fill(any.logical_not(), 0.0);
  return torch::softmax(s, -1) * any;
}

// The selection of a chunk by its rule (nsa_blocks.h): [B, H_kv, Tc, n] int64. p: the
// compressed probabilities [B, H_kv, G, Tc, NF] (undefined when NF = 0); pos: [Tc] positions.
torch::Tensor SelectBlocks(const torch::Tensor& p, const torch::Tensor& pos,
                           const std::vector<int64_t>& bhkt, const ChunkShape& c) {
  const int64_t l = c.nsa.block_size;
  const int64_t blocks = (c.t + l - 1) / l;  // every block, the partial last one included
  torch::Tensor score = torch::zeros({bhkt[0], bhkt[1], bhkt[2], blocks},
                                     pos.options().dtype(torch::kFloat32));
  if (p.defined()) {
    // Eq. 9's sum over l / d windows per segment, scaled back to at most 1 (the ranking is
    // unchanged; fla's forced score 1 stays on top). With l = d = l' it is p itself.
    score = NsaSelectionScores(p.mean(2), blocks, c.nsa) / double(c.nsa.kernel() / c.nsa.stride());
  }
  return NsaTopBlocks(score, c.t0, c.nsa);
}

// Selected attention of a chunk: [B, H_kv, G, Tc, D]. idx: [B, H_kv, Tc, n]; w > 0 also hides
// the keys s <= t - w (NsaSelectedReference's window; the branch itself has none).
torch::Tensor Selected(const torch::Tensor& qg, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& idx, const torch::Tensor& pos, double scale,
                       int64_t l, int64_t w) {
  const int64_t b = k.size(0), hkv = k.size(1), d = k.size(3);
  const int64_t tc = idx.size(2), tokens = idx.size(3) * l;
  // Token positions of the chosen blocks: [B, H_kv, Tc, n * l]; -1 slots give negative ones.
  torch::Tensor token = (idx.unsqueeze(-1) * l + torch::arange(l, idx.options()))
                            .reshape({b, hkv, tc, tokens});
  torch::Tensor valid = (token >= 0) & (token <= pos.view({1, 1, tc, 1}));
  if (w > 0) valid &= token > pos.view({1, 1, tc, 1}) - w;
  // A query that kept no block (the paper's rule before any window ended) reads 0: its row
  // softmaxes the clamped keys and is then zeroed, so no NaN reaches backward.
  torch::Tensor any = valid.any(-1, /*keepdim=*/true);  // [B, H_kv, Tc, 1]
  valid = valid | any.logical_not();
  torch::Tensor gather = token.clamp(0, k.size(2) - 1).reshape({b, hkv, tc * tokens, 1})
                             .expand({b, hkv, tc * tokens, d});
  torch::Tensor k_sel = k.gather(2, gather).view({b, hkv, tc, tokens, d});
  torch::Tensor v_sel = v.gather(2, gather).view({b, hkv, tc, tokens, d});
  torch::Tensor q_t = qg.transpose(2, 3);  // [B, H_kv, Tc, G, D]
  torch::Tensor s = torch::matmul(q_t, k_sel.transpose(-1, -2)) * scale;  // [B, H_kv, Tc, G, nl]
  s = s.masked_fill(valid.unsqueeze(3).logical_not(), kNegInf);
  return (torch::matmul(torch::softmax(s, -1), v_sel) * any.unsqueeze(3)).transpose(2, 3);
}

// Sliding-window attention of a chunk: [B, H_kv, G, Tc, D], over keys t - w < s <= t.
torch::Tensor Window(const torch::Tensor& qg, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& pos, double scale, const ChunkShape& c) {
  const int64_t tc = pos.size(0), w = c.nsa.window;
  const int64_t first = std::max<int64_t>(0, c.t0 - w + 1), end = c.t0 + tc;
  torch::Tensor kw = k.index({Slice(), Slice(), Slice(first, end)}).unsqueeze(2);
  torch::Tensor vw = v.index({Slice(), Slice(), Slice(first, end)}).unsqueeze(2);
  torch::Tensor key = torch::arange(first, end, pos.options()).unsqueeze(0);  // [1, L]
  torch::Tensor query = pos.unsqueeze(1);                                     // [Tc, 1]
  torch::Tensor inside = (key <= query) & (key > query - w);
  torch::Tensor s = torch::matmul(qg, kw.transpose(-1, -2)) * scale;  // [B, H_kv, G, Tc, L]
  s = s.masked_fill(inside.logical_not(), kNegInf);
  return torch::matmul(torch::softmax(s, -1), vw);
}

// The gated output of queries [t0, t0 + Tc): [B, H, Tc, D], all fp32. q_c: [B, H, Tc, D];
// g_c: [B, H, Tc, 3]; k, v: [B, H_kv, T, D]; k_cmp, v_cmp: [B, H_kv, NF, D].
torch::Tensor Chunk(const torch::Tensor& q_c, const torch::Tensor& g_c, const torch::Tensor& k,
                    const torch::Tensor& v, const torch::Tensor& k_cmp,
                    const torch::Tensor& v_cmp, const ChunkShape& c) {
  const int64_t b = q_c.size(0), h = q_c.size(1), tc = q_c.size(2), d = q_c.size(3);
  const int64_t hkv = k.size(1), g = h / hkv, l = c.nsa.block_size;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  torch::Tensor qg = q_c.view({b, hkv, g, tc, d});
  torch::Tensor gates = g_c.view({b, hkv, g, tc, 3});
  torch::Tensor pos = torch::arange(c.t0, c.t0 + tc, q_c.options().dtype(torch::kInt64));

  torch::Tensor out;
  torch::Tensor p;
  if (k_cmp.size(2) > 0) {
    torch::Tensor probs = CompressedProbs(qg, k_cmp, pos, scale, c.nsa);
    out = torch::matmul(probs, v_cmp.unsqueeze(2)) * gates.select(-1, 0).unsqueeze(-1);
    p = probs.detach();
  }
  torch::Tensor idx;
  {
    torch::NoGradGuard no_grad;
    idx = SelectBlocks(p, pos, {b, hkv, tc}, c);
  }
  torch::Tensor o =
      Selected(qg, k, v, idx, pos, scale, l, /*w=*/0) * gates.select(-1, 1).unsqueeze(-1);
  out = out.defined() ? out + o : o;
  if (c.nsa.window > 0) {
    out = out + Window(qg, k, v, pos, scale, c) * gates.select(-1, 2).unsqueeze(-1);
  }
  return out.reshape({b, h, tc, d});
}

// One chunk, keeping only its inputs for backward and recomputing the chunk there (the
// several-input form of trainer_lib/model/recompute.h's RecomputeInBackward, which this
// library cannot link: the model links it). Gradients come back for all six inputs.
class ChunkCheckpoint : public torch::autograd::Function<ChunkCheckpoint> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q_c,
                               const torch::Tensor& g_c, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& k_cmp,
                               const torch::Tensor& v_cmp, const ChunkShape& shape) {
    ctx->save_for_backward({q_c, g_c, k, v, k_cmp, v_cmp});
    ctx->saved_data["shape"] = Pack(shape);
    return Chunk(q_c, g_c, k, v, k_cmp, v_cmp, shape);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    std::vector<torch::Tensor> inputs;
    for (const torch::Tensor& saved : ctx->get_saved_variables()) {
      inputs.push_back(saved.detach().requires_grad_(true));
    }
    const ChunkShape shape = Unpack(ctx->saved_data["shape"].toIntVector());
    torch::Tensor y;
    {
      torch::AutoGradMode grad(true);
      AutocastOff autocast(inputs[0].device().type());
      y = Chunk(inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], inputs[5], shape);
    }
    torch::autograd::variable_list grads =
        torch::autograd::grad({y}, inputs, {grad_output[0]}, /*retain_graph=*/false,
                              /*create_graph=*/false, /*allow_unused=*/true);
    grads.resize(inputs.size() + 1);  // no gradient for the shape
    return grads;
  }
};

int64_t ChunkSize(const torch::Tensor& q, const torch::Tensor& k, const NsaOptions& o,
                  bool selected) {
  if (o.query_chunk > 0) return o.query_chunk;
  if (!selected) {
    const int64_t per_query =
        q.size(0) * q.size(1) * (q.size(2) / o.shape.stride() + o.shape.window + 1);
    return std::max<int64_t>(1, kScoreElements / std::max<int64_t>(1, per_query));
  }
  const int64_t per_query = k.size(0) * k.size(1) * k.size(3) * o.shape.selected_blocks *
                            o.shape.block_size;
  return std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, per_query));
}

void CheckShapes(const torch::Tensor& q, const torch::Tensor& k, const NsaOptions& o) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4, "nsa: q ", q.sizes(), " and k ", k.sizes(),
              " must be [B, H, T, D]");
  TORCH_CHECK(q.size(0) == k.size(0) && q.size(2) == k.size(2) && q.size(3) == k.size(3),
              "nsa: q ", q.sizes(), " does not match k ", k.sizes(), " in B, T or D");
  TORCH_CHECK(k.size(1) > 0 && q.size(1) % k.size(1) == 0, "nsa: ", q.size(1),
              " query heads are not a multiple of ", k.size(1), " key/value heads");
  TORCH_CHECK(o.shape.block_size > 0 && o.shape.selected_blocks > 0 && o.shape.window >= 0,
              "nsa: block_size and selected_blocks must be positive and window not negative");
  const int64_t l = o.shape.kernel(), d = o.shape.stride();
  TORCH_CHECK(d > 0 && l % d == 0 && o.shape.block_size % d == 0 && l <= o.shape.block_size,
              "nsa: compression window ", l, " and stride ", d, " do not fit block ",
              o.shape.block_size, " (eq. 9 needs d | l, d | l' and l <= l')");
}

// Keys or values compressed by `shape`'s rule (nsa_blocks.h), fp32 in and out.
torch::Tensor Compress(const torch::Tensor& x32, const at::Tensor& weight, const at::Tensor& pe,
                       const NsaShape& shape) {
  if (!shape.learned_compression) return NsaMeanPool(x32, shape.block_size);
  TORCH_CHECK(weight.defined() && pe.defined(),
              "nsa: learned compression needs its weights and position encodings");
  return NsaLearnedCompress(x32, weight.to(torch::kFloat32), pe.to(torch::kFloat32),
                            shape.compression_kernel, shape.compression_stride);
}

// NsaAttention's gates are sigmoid(g_proj(hidden)), in [0, 1] (Compute).
NsaOptions WithSigmoidGates(NsaOptions options) {
  options.gates_nonnegative = true;
  return options;
}

}  // namespace

at::Tensor NsaBlockIndices(const at::Tensor& q, const at::Tensor& k, const NsaOptions& options,
                           const NsaCompressionWeights& weights) {
  CheckShapes(q, k, options);
  torch::NoGradGuard no_grad;
  AutocastOff autocast(q.device().type());
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), d = q.size(3), hkv = k.size(1);
  torch::Tensor q32 = q.to(torch::kFloat32), k32 = k.to(torch::kFloat32);
  torch::Tensor k_cmp = Compress(k32, weights.k_weight, weights.k_pe, options.shape);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  // No keys are gathered here: the compressed scores bound the chunk.
  const int64_t chunk = ChunkSize(q, k, options, /*selected=*/false);
  std::vector<torch::Tensor> parts;
  for (int64_t t0 = 0; t0 < t; t0 += chunk) {
    const int64_t tc = std::min(chunk, t - t0);
    torch::Tensor qg =
        q32.index({Slice(), Slice(), Slice(t0, t0 + tc)}).view({b, hkv, h / hkv, tc, d});
    torch::Tensor pos = torch::arange(t0, t0 + tc, q.options().dtype(torch::kInt64));
    torch::Tensor p;
    if (k_cmp.size(2) > 0) p = CompressedProbs(qg, k_cmp, pos, scale, options.shape);
    parts.push_back(SelectBlocks(p, pos, {b, hkv, tc}, {t0, t, options.shape}));
  }
  return torch::cat(parts, 2);
}

at::Tensor NsaAttend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& gates, const NsaOptions& options,
                     const NsaCompressionWeights& weights, at::Tensor* selection) {
  CheckShapes(q, k, options);
  TORCH_CHECK(v.sizes() == k.sizes(), "nsa: v ", v.sizes(), " differs from k ", k.sizes());
  TORCH_CHECK(gates.dim() == 4 && gates.size(0) == q.size(0) && gates.size(1) == q.size(1) &&
                  gates.size(2) == q.size(2) && gates.size(3) == 3,
              "nsa: gates ", gates.sizes(), " must be [B, H, T, 3] for q ", q.sizes());
  const NsaShape& s = options.shape;
  // The fast path where the kernels take the shapes: the compressed branch and the selection
  // scored once in bf16 (the selection computed in forward only, kept by the selected branch's
  // autograd node for backward), the selected branch on the kernels, the window branch on its own
  // kernels or PyTorch's FlashAttention where either takes the shapes (nsa_window.h; else on the
  // selected branch's kernels over the window's blocks), gated in
  // fp32 by one node that keeps the branches as they are (nsa_gate.h); in bf16 with the window
  // on our kernels (or none), the selected and window branches and the gates as one node that
  // passes no gradient tensor between them (nsa_sparse.h). That path scores
  // mean-pooled blocks under fla's rule only: learned compression (windows that overlap, a map
  // with its own gradient) and the paper's rule (rows that may select nothing) run on the
  // chunked reference below, on CUDA too, at its speed.
  const bool fast =
      !s.learned_compression && !s.paper_selection && NsaSelectedKernelTakes(q, k);
  AutocastOff autocast(q.device().type());
  if (fast) {
    // Contiguous once: the selected and window nodes then keep the same tensors, where each
    // would copy a transposed view (v's) for itself.
    const torch::Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
    // The node folds each gate into its branch's lse as ln g: gates must not be negative there
    // (nsa.h asks for gates in (0, 1); a negative one takes the separate nodes). One look from
    // the host, only where the node would run and the caller has not vouched for the sign.
    const bool gated = NsaGatedBranchesTake(qc, kc, gates, s.window) &&
                       (options.gates_nonnegative || !(gates < 0).any().item<bool>());
    const NsaCompressedOutput cmp = NsaCompressedAndSelect(
        q, k, v, options, selection != nullptr ? *selection : at::Tensor(), gated);
    if (selection != nullptr) *selection = cmp.block_idx;
    const std::vector<torch::Tensor>& runs = cmp.folded.runs;
    if (gated && !runs.empty() && runs.size() <= kNsaGateMaxFoldedRuns) {
      return NsaGatedBranches(qc, kc, vc, gates, cmp.folded, cmp.block_idx, cmp.lse, s.block_size,
                              s.window);
    }
    // Runs asked for but more than the gate's kernels read in place: unfolded here (such runs are
    // differentiable in q, k and v, never on a graph of their own).
    TORCH_INTERNAL_ASSERT(cmp.folded.leaves.empty());
    const torch::Tensor o_cmp =
        runs.empty() ? cmp.out : NsaUnfoldRows(runs, q.size(1), s.block_size, q.size(2), 0.0);
    std::vector<torch::Tensor> branches = {
        o_cmp, NsaSelectedAttention(qc, kc, vc, cmp.block_idx, s.block_size, 0, cmp.lse)};
    if (s.window > 0 && NsaWindowTakes(qc, kc)) {
      branches.push_back(NsaWindowAttention(qc, kc, vc, s.window));
    } else if (s.window > 0) {
      const torch::Tensor window_idx =
          NsaWindowBlockIndices(k.size(0), k.size(1), k.size(2), kWindowBlock, s.window,
                                q.device());
      branches.push_back(NsaSelectedAttention(qc, kc, vc, window_idx, kWindowBlock, s.window));
    }
    return NsaGateCombine(gates, branches, q.scalar_type());
  }
  torch::Tensor g32 = gates.to(torch::kFloat32);
  const int64_t t = q.size(2);
  torch::Tensor q32 = q.to(torch::kFloat32);
  torch::Tensor k32 = k.to(torch::kFloat32), v32 = v.to(torch::kFloat32);
  torch::Tensor k_cmp = Compress(k32, weights.k_weight, weights.k_pe, s);
  torch::Tensor v_cmp = Compress(v32, weights.v_weight, weights.v_pe, s);
  const int64_t chunk = ChunkSize(q, k, options, /*selected=*/true);
  std::vector<torch::Tensor> parts;
  for (int64_t t0 = 0; t0 < t; t0 += chunk) {
    const Slice rows(t0, std::min(t, t0 + chunk));
    parts.push_back(ChunkCheckpoint::apply(
        q32.index({Slice(), Slice(), rows}), g32.index({Slice(), Slice(), rows}), k32, v32,
        k_cmp, v_cmp, ChunkShape{t0, t, s}));
  }
  return torch::cat(parts, 2).to(q.scalar_type());
}

at::Tensor NsaCompressedReference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  int64_t block_size) {
  NsaOptions options;
  options.shape.block_size = block_size;
  CheckShapes(q, k, options);
  TORCH_CHECK(v.sizes() == k.sizes(), "nsa: v ", v.sizes(), " differs from k ", k.sizes());
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), d = q.size(3), hkv = k.size(1);
  if (t / block_size == 0) return q * 0.0;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  torch::Tensor pos = torch::arange(t, q.options().dtype(torch::kInt64));
  torch::Tensor qg = q.view({b, hkv, h / hkv, t, d});
  torch::Tensor probs =
      CompressedProbs(qg, NsaMeanPool(k, block_size), pos, scale, options.shape);
  return torch::matmul(probs, NsaMeanPool(v, block_size).unsqueeze(2)).reshape({b, h, t, d});
}

at::Tensor NsaSelectedReference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& block_idx, int64_t block_size,
                                int64_t first_query, int64_t window) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.sizes() == k.sizes() && block_idx.dim() == 4 &&
                  q.size(0) == k.size(0) && q.size(3) == k.size(3) && k.size(1) > 0 &&
                  q.size(1) % k.size(1) == 0 && block_idx.size(2) == q.size(2) &&
                  first_query >= 0 && first_query + q.size(2) <= k.size(2) && block_size > 0 &&
                  window >= 0,
              "nsa: q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes(), ", indices ",
              block_idx.sizes(), ", first query ", first_query, " do not fit together");
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), d = q.size(3), hkv = k.size(1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  torch::Tensor pos =
      torch::arange(first_query, first_query + t, q.options().dtype(torch::kInt64));
  return Selected(q.view({b, hkv, h / hkv, t, d}), k, v, block_idx.to(torch::kInt64), pos, scale,
                  block_size, window)
      .reshape({b, h, t, d});
}

at::Tensor NsaWindowReference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              int64_t window) {
  NsaOptions options;
  options.shape.window = window;
  CheckShapes(q, k, options);
  TORCH_CHECK(v.sizes() == k.sizes() && window > 0, "nsa: v ", v.sizes(), " differs from k ",
              k.sizes(), " or window ", window, " is not positive");
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), d = q.size(3), hkv = k.size(1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  torch::Tensor pos = torch::arange(t, q.options().dtype(torch::kInt64));
  return Window(q.view({b, hkv, h / hkv, t, d}), k, v, pos, scale, {0, t, options.shape})
      .reshape({b, h, t, d});
}

NsaAttention::NsaAttention(int64_t hidden_size, int64_t heads, int64_t kv_heads,
                           int64_t head_dim, const NsaOptions& options)
    : heads_(heads), options_(WithSigmoidGates(options)) {
  g_proj_ = register_module(
      "g_proj", torch::nn::Linear(torch::nn::LinearOptions(hidden_size, 3 * heads).bias(false)));
  if (!options.shape.learned_compression) return;
  const int64_t l = options.shape.compression_kernel;
  compression_.k_weight =
      register_parameter("k_compress", NsaMeanCompressionWeight(kv_heads, l, head_dim));
  compression_.k_pe = register_parameter("k_compress_pe", torch::zeros({kv_heads, l, head_dim}));
  compression_.v_weight =
      register_parameter("v_compress", NsaMeanCompressionWeight(kv_heads, l, head_dim));
  compression_.v_pe = register_parameter("v_compress_pe", torch::zeros({kv_heads, l, head_dim}));
}

at::Tensor NsaAttention::Compute(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& hidden) {
  TORCH_CHECK(hidden.dim() == 3 && hidden.size(0) == q.size(0) && hidden.size(1) == q.size(2),
              "nsa: hidden ", hidden.sizes(), " must be [B, T, hidden] for q ", q.sizes());
  // [B, T, 3H] -> [B, T, H, 3] -> [B, H, T, 3], cmp/slc/swa innermost as fla's unbind(-1).
  torch::Tensor gates = torch::sigmoid(g_proj_(hidden))
                            .view({hidden.size(0), hidden.size(1), heads_, 3})
                            .transpose(1, 2);
  if (!recomputed_) return NsaAttend(q, k, v, gates, options_, compression_);
  at::Tensor selection;
  if (!torch::GradMode::is_enabled()) {  // the first run: keep what it selects
    at::Tensor out = NsaAttend(q, k, v, gates, options_, compression_, &selection);
    if (selection.defined()) kept_.push_back(selection);
    return out;
  }
  if (!kept_.empty()) {  // the recomputation: select what forward did
    selection = kept_.front();
    kept_.pop_front();
  }
  return NsaAttend(q, k, v, gates, options_, compression_, &selection);
}

}  // namespace ablate::train
