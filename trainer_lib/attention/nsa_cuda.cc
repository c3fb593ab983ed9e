#include "trainer_lib/attention/nsa_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include <torch/torch.h>

#ifdef ABLATE_NSA_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "trainer_lib/attention/nsa_reverse_index.h"
#include "trainer_lib/kernels/nsa_selected.h"
#endif

namespace ablate::train {
namespace {

#ifdef ABLATE_NSA_KERNELS
namespace k = ablate::kernels;

void Check(cudaError_t error, const char* what) {
  TORCH_CHECK(error == cudaSuccess, "nsa selected kernel (", what,
              "): ", cudaGetErrorString(error));
}

k::NsaSelectedParams Params(const torch::Tensor& q, const torch::Tensor& key,
                            const torch::Tensor& v, const torch::Tensor& idx,
                            int64_t block_size, int64_t window) {
  TORCH_CHECK(q.scalar_type() == torch::kBFloat16 && key.scalar_type() == torch::kBFloat16 &&
                  v.scalar_type() == torch::kBFloat16 && idx.scalar_type() == torch::kInt32,
              "nsa selected kernel: q, k, v must be bf16 and block indices int32");
  for (const torch::Tensor* x : {&q, &key, &v}) {
    TORCH_CHECK(x->is_contiguous() && reinterpret_cast<uintptr_t>(x->data_ptr()) % 16 == 0,
                "nsa selected kernel: q, k and v must be contiguous and 16-byte aligned");
  }
  TORCH_CHECK(idx.is_contiguous(), "nsa selected kernel: block indices must be contiguous");
  TORCH_CHECK(v.sizes() == key.sizes() && idx.dim() == 4 && idx.size(0) == q.size(0) &&
                  idx.size(1) == key.size(1) && idx.size(2) == q.size(2),
              "nsa selected kernel: q ", q.sizes(), ", k ", key.sizes(), ", v ", v.sizes(),
              ", indices ", idx.sizes(), " do not fit together");
  k::NsaSelectedParams p;
  p.batch = q.size(0);
  p.heads = q.size(1);
  p.kv_heads = key.size(1);
  p.seq_len = q.size(2);
  p.head_dim = q.size(3);
  p.block_size = block_size;
  p.selected = idx.size(3);
  p.window = window;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.head_dim)));
  p.q = q.data_ptr();
  p.k = key.data_ptr();
  p.v = v.data_ptr();
  p.block_idx = idx.data_ptr<int32_t>();
  TORCH_CHECK(k::NsaSelectedSupported(p), "nsa selected kernel: unsupported shapes q ",
              q.sizes(), ", k ", key.sizes(), ", block size ", block_size, ", window ", window);
  return p;
}

// The reverse index (nsa_reverse_index.h) of p's block indices, its items as the kernels take
// them.
NsaReverseIndex ReverseIndex(const k::NsaSelectedParams& p, const torch::Tensor& block_idx) {
  const int64_t chunk = NsaQueryChunk(p.heads / p.kv_heads, p.head_dim, p.seq_len, p.selected,
                                      p.block_size);
  return NsaBuildReverseIndex(block_idx, p.block_size, p.window, chunk, k::kNsaQueriesPerItem);
}

// Rows of q's layout that one (b, h_kv) pair owns: its G heads' T positions.
int64_t PairRows(const k::NsaSelectedParams& p) { return p.heads / p.kv_heads * p.seq_len; }

// Whether the by-block paths take p under kAuto: one pair's fp32 rows at most kNsaMaxPairBytes.
bool ByBlockTakes(const k::NsaSelectedParams& p) {
  return PairRows(p) * p.head_dim * 4 <= kNsaMaxPairBytes;
}

// Runs `launch` (a by-block pass adding into p.accum) over the (b, h_kv) pairs in runs whose
// fp32 rows fit kNsaAccumBytes (one pair at least), each run's items (contiguous: a pair's items
// are) in one launch into a buffer that start(run's rows, pair0, pair1) fills (zeros by default),
// then finish(run's params, its rows): the run's rows are rows accum_row0 .. + rows of q's layout.
template <typename Launch, typename Finish>
void OverPairRuns(
    k::NsaSelectedParams p, const NsaReverseIndex& rev, const torch::Tensor& like,
    const Launch& launch, const Finish& finish,
    const std::function<void(const torch::Tensor&, int64_t, int64_t)>& start = nullptr) {
  const int64_t pair_rows = PairRows(p), pairs = p.batch * p.kv_heads;
  const int64_t run =
      std::clamp<int64_t>(kNsaAccumBytes / (pair_rows * p.head_dim * 4), 1, pairs);
  torch::Tensor accum =
      torch::empty({run * pair_rows, p.head_dim}, like.options().dtype(torch::kFloat32));
  for (int64_t pair0 = 0; pair0 < pairs; pair0 += run) {
    const int64_t pair1 = std::min(pairs, pair0 + run);
    torch::Tensor part = accum.narrow(0, 0, (pair1 - pair0) * pair_rows);
    if (start) {
      start(part, pair0, pair1);
    } else {
      part.zero_();
    }
    p.items = rev.items.data_ptr<int64_t>() + 3 * rev.pair_items[pair0];
    p.num_items = rev.pair_items[pair1] - rev.pair_items[pair0];
    p.accum = part.data_ptr<float>();
    p.accum_row0 = pair0 * pair_rows;
    launch(p);
    finish(p, part);
  }
}

// A finish for OverPairRuns: out's rows ([B H T, D], any dtype) <- the run's fp32 rows, or
// += them when `add` (summed in fp32, rounded once).
auto CopyRowsInto(const torch::Tensor& out, bool add = false) {
  return [out_rows = out.view({-1, out.size(-1)}), add](const k::NsaSelectedParams& p,
                                                        const torch::Tensor& part) {
    torch::Tensor rows = out_rows.narrow(0, p.accum_row0, part.size(0));
    if (add) {
      NsaAddInto(rows, part);
    } else {
      rows.copy_(part);
    }
  };
}

// delta = rowsum(do * o) in fp32 ([B, H, T]; FlashAttention-2's D), one kernel reading each
// once (LibTorch's chain of fp32 copies, product and sum took 2.7 ms at Qwen3-0.6B's 128K on an
// H200, and at 1M tokens three [B, H, T, D] fp32 temporaries).
torch::Tensor RowDots(const torch::Tensor& d_o, const torch::Tensor& o, cudaStream_t stream) {
  torch::Tensor delta = torch::empty(o.sizes().slice(0, o.dim() - 1),
                                     o.options().dtype(torch::kFloat32));
  Check(k::NsaRowDots(d_o.data_ptr(), o.data_ptr(), delta.data_ptr<float>(), delta.numel(),
                      o.size(-1), stream),
        "delta");
  return delta;
}

// NsaSelectedForwardInto's work (its contract in nsa_cuda.h), returning the reverse index where
// the path built one, for the backward to reuse.
std::optional<NsaReverseIndex> Forward(const torch::Tensor& q, const torch::Tensor& k,
                                      const torch::Tensor& v, const torch::Tensor& block_idx,
                                      int64_t block_size, int64_t window, const torch::Tensor& o,
                                      const torch::Tensor& lse, NsaForwardPath path,
                                      const torch::Tensor& row_shift,
                                      const NsaSelectedRunStart* start = nullptr,
                                      int64_t local_blocks = 0) {
  k::NsaSelectedParams p = Params(q, k, v, block_idx, block_size, window);
  TORCH_CHECK(o.sizes() == q.sizes() && o.scalar_type() == torch::kBFloat16 &&
                  o.is_contiguous() && lse.scalar_type() == torch::kFloat32 &&
                  lse.is_contiguous() && lse.numel() == p.batch * p.heads * p.seq_len,
              "nsa selected kernel: o ", o.sizes(), " or lse ", lse.sizes(), " do not fit q ",
              q.sizes());
  TORCH_CHECK(!row_shift.defined() ||
                  (row_shift.scalar_type() == torch::kFloat32 && row_shift.is_contiguous() &&
                   row_shift.numel() == lse.numel() && row_shift.device() == q.device()),
              "nsa selected kernel: the row shift ", row_shift.sizes(),
              " must be contiguous fp32 [B, H, T] on q's device, q ", q.sizes());
  const c10::cuda::CUDAGuard guard(q.device());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream(q.device().index());
  if (path == NsaForwardPath::kAuto) {
    path = window == 0 && ByBlockTakes(p) ? NsaForwardPath::kByKeyBlock
               : NsaForwardPath::kQueryBlocks;
  }
  p.o = o.data_ptr();
  p.lse = lse.data_ptr<float>();
  if (path == NsaForwardPath::kQueryBlocks) {
    Check(k::NsaSelectedForward(p, stream), "forward");
    return std::nullopt;
  }
  NsaReverseIndex rev = ReverseIndex(p, block_idx);
  p.rev_query = rev.rev_query.data_ptr<int32_t>();
  const int64_t rows = p.batch * p.heads * p.seq_len;
  if (row_shift.defined()) {
    // One pass against the given shifts (nsa_selected.h's row_shift), then one look from the
    // host at whether every row's max stayed near its shift.
    // With `start`, each run's rows start from its values (nothing to fill here).
    const bool started = start != nullptr && local_blocks > 0;
    constexpr int kMinusInfinity = static_cast<int>(0x807fffffu);  // row_max's -inf
    const torch::TensorOptions fp32 = q.options().dtype(torch::kFloat32);
    const torch::TensorOptions int32 = q.options().dtype(torch::kInt32);
    torch::Tensor sums = started ? torch::empty({rows}, fp32) : torch::zeros({rows}, fp32);
    torch::Tensor tops =
        started ? torch::empty({rows}, int32) : torch::full({rows}, kMinusInfinity, int32);
    torch::Tensor inexact = torch::zeros({1}, int32);
    p.row_shift = row_shift.data_ptr<float>();
    p.row_sum = sums.data_ptr<float>();
    p.row_max = tops.data_ptr<int32_t>();
    p.local_blocks = started ? local_blocks : 0;
    p.skip_first_block = started;
    const int64_t pair_rows = PairRows(p);
    OverPairRuns(
        p, rev, q,
        [&](const k::NsaSelectedParams& run) {
          Check(k::NsaSelectedForwardByBlockOutput(run, stream), "forward output, one pass");
        },
        [&](const k::NsaSelectedParams& run, const torch::Tensor& part) {
          Check(k::NsaSelectedForwardByBlockFinish(run, part.size(0),
                                                   inexact.data_ptr<int32_t>(), stream),
                "forward finish");
        },
        started ? [&](const torch::Tensor& part, int64_t pair0, int64_t pair1) {
          const int64_t row0 = pair0 * pair_rows, n = (pair1 - pair0) * pair_rows;
          (*start)({pair0, pair1, part, sums.narrow(0, row0, n), tops.narrow(0, row0, n)});
        } : std::function<void(const torch::Tensor&, int64_t, int64_t)>());
    if (inexact.item<int32_t>() == 0) return rev;
    p.row_shift = nullptr;  // rare: the two passes below, exact whatever the scores, every block
    p.row_sum = nullptr;    // in them
    p.row_max = nullptr;
    p.local_blocks = 0;
    p.skip_first_block = false;
  }
  // Two passes: every row's (m, l) = (-inf, 0) (nsa_selected.h's row_stats), the statistics
  // pass over all items, the output pass over runs of pairs, then lse = (m + log2 l) ln 2.
  constexpr int64_t kNoKey = 0xff800000;  // l = 0's bits above m = -inf's
  torch::Tensor stats = torch::full({rows}, kNoKey, q.options().dtype(torch::kInt64));
  p.row_stats = reinterpret_cast<unsigned long long*>(stats.data_ptr<int64_t>());
  p.items = rev.items.data_ptr<int64_t>();
  p.num_items = rev.items.size(0);
  Check(k::NsaSelectedForwardByBlockStats(p, stream), "forward statistics");
  OverPairRuns(
      p, rev, q,
      [&](const k::NsaSelectedParams& run) {
        Check(k::NsaSelectedForwardByBlockOutput(run, stream), "forward output");
      },
      CopyRowsInto(o));
  const torch::Tensor ml = stats.view(torch::kFloat32).view({-1, 2});  // (m, l) per row
  const torch::Tensor m = ml.select(1, 0), l = ml.select(1, 1);
  lse.view({-1}).copy_(torch::where(l > 0, (m + torch::log2(l)) * std::log(2.0),
                                    -std::numeric_limits<float>::infinity()));
  return rev;
}

// NsaSelectedBackwardInto's work; `rev`, when given, is the forward's reverse index of the same
// block_idx; `delta`, when defined, rowsum(d_o o) ([B, H, T] fp32, contiguous), else computed
// here; add_dq: dq += the branch's dq instead of dq = it; `start`: NsaSelectedBackwardKept's.
void Backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
              const torch::Tensor& block_idx, int64_t block_size, int64_t window,
              const torch::Tensor& o, const torch::Tensor& lse, const torch::Tensor& d_o,
              const torch::Tensor& dq, const torch::Tensor& dk, const torch::Tensor& dv,
              NsaDqPath dq_path, const NsaReverseIndex* rev,
              const torch::Tensor& given_delta = {}, bool add_dq = false,
              int64_t local_blocks = 0, const NsaSelectedRunStart* start = nullptr) {
  k::NsaSelectedParams p = Params(q, k, v, block_idx, block_size, window);
  for (const torch::Tensor* x : {&d_o, &o, &dq}) {
    TORCH_CHECK(x->sizes() == q.sizes() && x->scalar_type() == torch::kBFloat16 &&
                    x->is_contiguous() && reinterpret_cast<uintptr_t>(x->data_ptr()) % 16 == 0,
                "nsa selected kernel: o, its gradient and dq must be bf16 like q ", q.sizes(),
                ", contiguous and 16-byte aligned");
  }
  TORCH_CHECK(dk.sizes() == k.sizes() && dv.sizes() == k.sizes() &&
                  dk.scalar_type() == torch::kFloat32 && dv.scalar_type() == torch::kFloat32 &&
                  dk.is_contiguous() && dv.is_contiguous(),
              "nsa selected kernel: gradient buffers do not fit q ", q.sizes(), " and k ",
              k.sizes());
  // The dk/dv kernel adds 16 bytes at a time (float4 atomics).
  TORCH_CHECK(reinterpret_cast<uintptr_t>(dk.data_ptr()) % 16 == 0 &&
                  reinterpret_cast<uintptr_t>(dv.data_ptr()) % 16 == 0,
              "nsa selected kernel: dk and dv must start 16-byte aligned");
  const c10::cuda::CUDAGuard guard(q.device());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream(q.device().index());
  TORCH_CHECK(!given_delta.defined() ||
                  (given_delta.scalar_type() == torch::kFloat32 && given_delta.is_contiguous() &&
                   given_delta.numel() == lse.numel()),
              "nsa selected kernel: delta ", given_delta.sizes(),
              " must be contiguous fp32 like lse ", lse.sizes());
  const torch::Tensor delta = given_delta.defined() ? given_delta : RowDots(d_o, o, stream);
  std::optional<NsaReverseIndex> built;
  if (rev == nullptr) rev = &built.emplace(ReverseIndex(p, block_idx));
  dk.zero_();
  dv.zero_();
  p.o = const_cast<void*>(o.data_ptr());
  p.lse = const_cast<float*>(lse.data_ptr<float>());
  p.d_o = d_o.data_ptr();
  p.delta = delta.data_ptr<float>();
  p.dq = dq.data_ptr();
  p.dk = dk.data_ptr<float>();
  p.dv = dv.data_ptr<float>();
  p.rev_query = rev->rev_query.data_ptr<int32_t>();
  if (dq_path == NsaDqPath::kAuto) {
    dq_path = ByBlockTakes(p) ? NsaDqPath::kInDkv : NsaDqPath::kQueryBlocks;
  }
  TORCH_CHECK((local_blocks == 0 && start == nullptr) || dq_path == NsaDqPath::kInDkv,
              "nsa selected kernel: only dq in the dk/dv kernel leaves local blocks out or "
              "starts from given rows");
  p.local_blocks = local_blocks;
  if (dq_path == NsaDqPath::kQueryBlocks) {
    // The dq kernel writes every row: into a buffer of its own where dq is added into.
    const torch::Tensor dq_branch = add_dq ? torch::empty_like(dq) : dq;
    p.dq = dq_branch.data_ptr();
    p.items = rev->items.data_ptr<int64_t>();
    p.num_items = rev->items.size(0);
    Check(k::NsaSelectedBackwardDq(p, stream), "dq");
    Check(k::NsaSelectedBackwardDkv(p, stream), "dk, dv");
    if (add_dq) dq.add_(dq_branch);
    return;
  }
  OverPairRuns(
      p, *rev, q,
      [&](const k::NsaSelectedParams& run) {
        Check(k::NsaSelectedBackwardDkv(run, stream), "dq, dk, dv");
      },
      CopyRowsInto(dq, add_dq && start == nullptr),
      start == nullptr ? std::function<void(const torch::Tensor&, int64_t, int64_t)>()
                       : [&](const torch::Tensor& part, int64_t pair0, int64_t pair1) {
                           (*start)({pair0, pair1, part, {}, {}});
                         });
}
#endif

}  // namespace

at::Tensor NsaKernelInput(const at::Tensor& x) {
  torch::Tensor y = x.to(torch::kBFloat16).contiguous();
  if (reinterpret_cast<uintptr_t>(y.data_ptr()) % 16 != 0) y = y.clone();
  return y;
}

bool NsaKernelsEnabled() {
#ifdef ABLATE_NSA_KERNELS
  static const bool enabled = [] {
    const char* value = std::getenv("ABLATE_NSA_KERNELS");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return enabled;
#else
  return false;
#endif
}

bool NsaSelectedKernelTakes(const at::Tensor& q, const at::Tensor& k) {
  if (!NsaKernelsEnabled() || !q.is_cuda() || !k.is_cuda() || q.dim() != 4 || k.dim() != 4) {
    return false;
  }
  const int64_t d = q.size(3);
  return (d == 64 || d == 128 || d == 256) && k.size(1) > 0 && q.size(1) % k.size(1) == 0 &&
         q.size(1) / k.size(1) <= 16 && q.size(0) <= 65535 && k.size(1) <= 65535 &&
         q.size(2) > 0 && q.size(2) < (int64_t{1} << 31);
}

void NsaSelectedForwardInto(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& block_idx, int64_t block_size, int64_t window,
                            at::Tensor& o, at::Tensor& lse, NsaForwardPath path,
                            const at::Tensor& row_shift) {
#ifdef ABLATE_NSA_KERNELS
  Forward(q, k, v, block_idx, block_size, window, o, lse, path, row_shift);
#else
  (void)q, (void)k, (void)v, (void)block_idx, (void)block_size, (void)window, (void)o, (void)lse,
      (void)path, (void)row_shift;
  TORCH_CHECK(false, "nsa: this build has no CUDA kernels");
#endif
}

void NsaSelectedBackwardInto(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& block_idx, int64_t block_size, int64_t window,
                             const at::Tensor& o, const at::Tensor& lse, const at::Tensor& d_o,
                             at::Tensor& dq, at::Tensor& dk, at::Tensor& dv, NsaDqPath dq_path) {
#ifdef ABLATE_NSA_KERNELS
  Backward(q, k, v, block_idx, block_size, window, o, lse, d_o, dq, dk, dv, dq_path, nullptr);
#else
  (void)q, (void)k, (void)v, (void)block_idx, (void)block_size, (void)window, (void)o, (void)lse,
      (void)d_o, (void)dq, (void)dk, (void)dv, (void)dq_path;
  TORCH_CHECK(false, "nsa: this build has no CUDA kernels");
#endif
}

void NsaAddInto(const at::Tensor& dst, const at::Tensor& src) {
  TORCH_CHECK(dst.sizes() == src.sizes(), "nsa add: ", src.sizes(), " into ", dst.sizes());
#ifdef ABLATE_NSA_KERNELS
  if (dst.is_cuda() && src.device() == dst.device() && dst.scalar_type() == torch::kBFloat16 &&
      src.scalar_type() == torch::kFloat32 && dst.is_contiguous() && src.is_contiguous()) {
    const c10::cuda::CUDAGuard guard(dst.device());
    if (k::NsaAddInto(dst.data_ptr(), src.data_ptr<float>(), dst.numel(),
                      at::cuda::getCurrentCUDAStream(dst.device().index())) == cudaSuccess) {
      return;
    }
  }
#endif
  dst.add_(src);
}

std::vector<at::Tensor> NsaSelectedSaved::Tensors() const {
  return {q, k, v, block_idx, o, lse, rev_query, items};
}

NsaSelectedSaved NsaSelectedSaved::FromTensors(const std::vector<at::Tensor>& tensors,
                                               std::vector<int64_t> pair_items,
                                               int64_t block_size, int64_t window) {
  TORCH_CHECK(tensors.size() >= 8, "nsa selected: ", tensors.size(), " saved tensors, not 8");
  return {tensors[0], tensors[1], tensors[2], tensors[3], tensors[4], tensors[5], tensors[6],
          tensors[7], std::move(pair_items), block_size, window};
}

NsaSelectedSaved NsaSelectedForwardKept(const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v, const at::Tensor& block_idx,
                                        int64_t block_size, int64_t window,
                                        const at::Tensor& row_shift,
                                        const NsaSelectedRunStart* start, int64_t local_blocks) {
#ifdef ABLATE_NSA_KERNELS
  NsaSelectedSaved s;
  s.q = NsaKernelInput(q);
  s.k = NsaKernelInput(k);
  s.v = NsaKernelInput(v);
  s.block_idx = block_idx.to(torch::kInt32).contiguous();
  s.block_size = block_size;
  s.window = window;
  s.o = torch::empty_like(s.q);
  s.lse = torch::empty({q.size(0), q.size(1), q.size(2)}, s.q.options().dtype(torch::kFloat32));
  const torch::Tensor shift =
      row_shift.defined() ? row_shift.to(torch::kFloat32).contiguous() : torch::Tensor();
  std::optional<NsaReverseIndex> rev = Forward(s.q, s.k, s.v, s.block_idx, block_size, window,
                                               s.o, s.lse, NsaForwardPath::kAuto, shift,
                                               start, local_blocks);
  // The reverse index goes to the backward, which would build the same one again, where
  // block_idx's slots would take at most kNsaKeptIndexBytes.
  if (rev && s.block_idx.numel() * 4 <= kNsaKeptIndexBytes) {
    s.rev_query = rev->rev_query;
    s.items = rev->items;
    s.pair_items = rev->pair_items;
  }
  return s;
#else
  (void)q, (void)k, (void)v, (void)block_idx, (void)block_size, (void)window, (void)row_shift,
      (void)start, (void)local_blocks;
  TORCH_CHECK(false, "nsa: this build has no CUDA kernels");
#endif
}

void NsaSelectedBackwardKept(const NsaSelectedSaved& s, const at::Tensor& lse,
                             const at::Tensor& d_o, const at::Tensor& delta, at::Tensor& dq,
                             bool add_dq, at::Tensor& dk, at::Tensor& dv, int64_t local_blocks,
                             const NsaSelectedRunStart* start) {
#ifdef ABLATE_NSA_KERNELS
  TORCH_CHECK(lse.sizes() == s.lse.sizes() && lse.scalar_type() == torch::kFloat32 &&
                  lse.is_contiguous(),
              "nsa selected kernel: the backward's lse ", lse.sizes(),
              " must be contiguous fp32 like the forward's ", s.lse.sizes());
  std::optional<NsaReverseIndex> rev;
  if (s.rev_query.defined()) rev = NsaReverseIndex{s.rev_query, s.items, s.pair_items};
  Backward(s.q, s.k, s.v, s.block_idx, s.block_size, s.window, s.o, lse, d_o, dq, dk, dv,
           NsaDqPath::kAuto, rev ? &*rev : nullptr, delta, add_dq, local_blocks, start);
#else
  (void)s, (void)lse, (void)d_o, (void)delta, (void)dq, (void)add_dq, (void)dk, (void)dv,
      (void)local_blocks, (void)start;
  TORCH_CHECK(false, "nsa: this build has no CUDA kernels");
#endif
}

bool NsaSelectedBackwardLeavesLocal(const NsaSelectedSaved& s) {
  // ByBlockTakes's test, from the saved shapes: G T rows of D fp32 a pair.
  return s.q.size(1) / s.k.size(1) * s.q.size(2) * s.q.size(3) * 4 <= kNsaMaxPairBytes;
}

}  // namespace ablate::train
