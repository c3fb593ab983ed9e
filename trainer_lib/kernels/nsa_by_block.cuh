// What the by-block kernels of the selected branch share (nsa_backward_by_block.cu's dk/dv kernel
// and nsa_forward_by_block.cu's forward): a thread block per (work item of the reverse index,
// 64-token tile of its key block), grid (item, tile), walking the item's (query, head) rows in
// double-buffered steps; and the launch with opt-in shared memory that every kernel of the branch
// uses. Device code only; the contract is nsa_selected.h's.
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_BY_BLOCK_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_BY_BLOCK_CUH_

#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

#include "trainer_lib/kernels/exp2.cuh"
#include "trainer_lib/kernels/launch.cuh"
#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_selected.h"
#include "trainer_lib/kernels/tma.cuh"
#include "trainer_lib/kernels/wgmma_bf16.cuh"

namespace ablate::kernels::nsa {

// Starts copying rows [row, row + count) of x (k or v, [B * H_kv * T, D]) into a shared
// [kKeys][D] tile, zeros after them.
template <int D, int kKeys>
__device__ void CopyKeyTile(__nv_bfloat16* dst, const void* x, int64_t row, int count, int thread,
                            int threads) {
  const __nv_bfloat16* base = static_cast<const __nv_bfloat16*>(x) + row * D;
  mma::CopyRows<D>(
      dst, kKeys, base, [&](int r) { return r < count ? base + r * D : nullptr; }, thread, threads);
}

// The same for both k and v, into ks and vs.
template <int D, int kKeys>
__device__ void CopyKeys(__nv_bfloat16* ks, __nv_bfloat16* vs, const NsaSelectedParams& p,
                         int64_t row, int count, int thread, int threads) {
  CopyKeyTile<D, kKeys>(ks, p.k, row, count, thread, threads);
  CopyKeyTile<D, kKeys>(vs, p.v, row, count, thread, threads);
}

// The thread block's item and key tile. The item's rows are its (query, head) pairs,
// entry-major: row f is head f % G of query rev_query[e0 + f / G].
struct ItemTile {
  int64_t e0, rows;        // the item's first entry of rev_query; its rows, (e1 - e0) G
  const int32_t* queries;  // rev_query[e0 ..] in shared memory (LoadQueries)
  int64_t head0;           // row of (b, h_kv G, 0) in q's layout [B * H * T, D]
  int64_t kv_row;          // row of the tile's first key in k and v [B * H_kv * T, D]
  int64_t r0;              // the tile's first key position
  int64_t block0;          // the block's first key position
  int64_t local_span;      // local_blocks l: a query t < block0 + local_span is skipped
  int count;               // keys in the tile; <= 0: the tile is past the block's or sequence's end
  int groups;              // G
  int h0, b;               // the group's first head h_kv G and the sequence

  // Row f's row in q's layout (and lse and delta; accum's is this minus accum_row0), its query
  // position in *t; -1 past the item's rows. f < rows <= kNsaQueriesPerItem G fits an int, so
  // that the division is 32-bit.
  // Rows of a query whose local blocks hold the item's (local_blocks) are -1 too.
  __device__ int64_t Row(const NsaSelectedParams& p, int f, int64_t* t) const {
    if (f >= rows) return -1;
    *t = queries[f / groups];
    if (local_span > 0 && *t - block0 < local_span) return -1;
    return head0 + (f % groups) * p.seq_len + *t;
  }

  // The tile's keys that query t sees, key in [lo, hi] (t - w < r0 + key <= t, key < count),
  // as 32-bit bounds (empty: hi < lo), so that each element's mask is two 32-bit compares.
  __device__ int2 SeenKeys(const NsaSelectedParams& p, int64_t t) const {
    const int64_t reach = p.window > 0 ? p.window : p.seq_len + 1;
    const int64_t lo = max(int64_t{0}, t - reach + 1 - r0);
    const int64_t hi = min(int64_t{count} - 1, t - r0);
    return hi < lo ? make_int2(1, 0) : make_int2(static_cast<int>(lo), static_cast<int>(hi));
  }
};

// The item's queries copied into `queries` (shared, kNsaQueriesPerItem entries), so that the
// rows' facts are computed without a global load; the caller's barrier makes them visible.
// `queries` must outlive `at`.
inline __device__ void LoadQueries(ItemTile& at, const NsaSelectedParams& p, int32_t* queries) {
  for (int i = threadIdx.x; i < at.rows / at.groups; i += blockDim.x) {
    queries[i] = p.rev_query[at.e0 + i];
  }
  at.queries = queries;
}

template <int kKeys>
__device__ ItemTile ThisItemTile(const NsaSelectedParams& p) {
  const int64_t* item = p.items + 3 * static_cast<int64_t>(blockIdx.x);
  const int64_t list = item[0];
  const int64_t blocks = (p.seq_len + p.block_size - 1) / p.block_size;
  const int64_t block = list % blocks, bh = list / blocks;
  const int64_t hk = bh % p.kv_heads, b = bh / p.kv_heads;
  const int64_t tile0 = static_cast<int64_t>(blockIdx.y) * kKeys;
  ItemTile at;
  at.groups = static_cast<int>(p.heads / p.kv_heads);
  at.e0 = item[1];
  at.rows = (item[2] - item[1]) * at.groups;
  at.h0 = static_cast<int>(hk * at.groups);
  at.b = static_cast<int>(b);
  at.head0 = (b * p.heads + hk * at.groups) * p.seq_len;
  at.block0 = block * p.block_size;
  at.local_span = p.local_blocks * p.block_size;
  at.r0 = at.block0 + tile0;
  at.kv_row = (b * p.kv_heads + hk) * p.seq_len + at.r0;
  at.count = static_cast<int>(
      max(int64_t{0}, min(min(int64_t{kKeys}, p.block_size - tile0), p.seq_len - at.r0)));
  return at;
}

// Starts copying the tile's keys of x (k or v, [B * H_kv * T, D]) into a swizzled [kKeys][D] tile
// (wgmma_bf16.cuh), zeros after them.
template <int D, int kKeys>
__device__ void CopyKeyTileSwizzled(__nv_bfloat16* dst, const void* x, const ItemTile& at,
                                    int thread, int threads) {
  const __nv_bfloat16* base = static_cast<const __nv_bfloat16*>(x) + at.kv_row * D;
  const int count = at.count;
  wgmma::CopyRowsSwizzled<D>(
      dst, kKeys, base, [base, count](int r) { return r < count ? base + r * D : nullptr; }, thread,
      threads);
}

// The facts of a step's rows that the by-block kernels keep in shared memory: the row in q's
// layout (-1: none) and the tile's keys it sees. Computed once per row, by one thread.
struct StepRow {
  int64_t at;
  int2 keys;  // ItemTile::SeenKeys
};

// The loop over an item's steps. Rows are double-buffered: prefetch(i, slot) starts loading step
// i's rows into buffer i % 2 from the facts in `slot` and commits its copies. Their facts are
// triple-buffered and written two steps ahead, in two phases so that their global loads (lse,
// say) are in flight during a step's products: facts(i) issues step i's loads and returns a
// callable that writes them into a slot. Slot (i + 2) % 3 was last read by step i - 1, which
// every thread has left, so the facts need no barrier of their own; those of steps past the end
// are written (rows of -1) and never read. body(buf, slot) runs once step i's rows are in; the
// step after next loads into buf only once every thread has left it. All threads of the block,
// after a barrier that makes LoadQueries' list visible. kForWgmma: the rows are also fenced for
// the async proxy before the barrier that publishes them, for a body that reads them with wgmma.
template <bool kForWgmma = false, typename Facts, typename Prefetch, typename Body>
__device__ void ForEachStep(int steps, const Facts& facts, const Prefetch& prefetch,
                            const Body& body) {
  facts(0)(0);
  facts(1)(1);
  __syncthreads();  // the first two steps' facts are in
  prefetch(0, 0);
  for (int i = 0; i < steps; ++i) {
    if (i + 1 < steps) {
      prefetch(i + 1, (i + 1) % 3);
      mma::WaitCopies<1>();
    } else {
      mma::WaitCopies<0>();
    }
    if constexpr (kForWgmma) wgmma::FenceSharedForAsync();
    __syncthreads();  // step i's rows are in
    const auto write_facts = facts(i + 2);
    body(i % 2, i % 3);
    write_facts((i + 2) % 3);
    __syncthreads();  // buffer i % 2 is consumed before step i + 2 loads into it
  }
}

// ForEachStep's loop with the rows loaded by the tensor memory accelerator (tma.cuh) where G is 8
// or 16: load(i, bar), called by thread 0, starts step i's rows into buffer i % 2, `bytes` of them
// completing on bar (one of the two mbarriers at `bars`), a box of the G heads' rows a query, so
// that each lands 1024-byte aligned in its swizzled tile. One thread issues a step's 8 or 16 boxes
// where cp.async has every thread issue 16-byte chunks of gathered rows. The caller's cp.async
// copies (K and V) are in before the first body. Otherwise as ForEachStep<true>.
template <typename Facts, typename Load, typename Body>
__device__ void ForEachLoadedStep(int steps, uint64_t* bars, uint32_t bytes, const Facts& facts,
                                  const Load& load, const Body& body) {
  facts(0)(0);
  facts(1)(1);
  if (threadIdx.x == 0) tma::InitBarriers(bars, 2);
  mma::CommitCopies();  // wait_group waits for committed groups only
  mma::WaitCopies<0>();
  wgmma::FenceSharedForAsync();
  __syncthreads();  // the first two steps' facts, the caller's copies and the barriers are in
  const auto start = [&](int i) {
    uint64_t* bar = bars + i % 2;
    tma::ExpectBytes(bar, bytes);
    load(i, bar);
  };
  if (threadIdx.x == 0) start(0);
  for (int i = 0; i < steps; ++i) {
    if (threadIdx.x == 0 && i + 1 < steps) start(i + 1);
    tma::Wait(bars + i % 2, static_cast<uint32_t>(i / 2) % 2);
    __syncwarp();  // thread 0's loads took it apart from its warp; wgmma needs it whole
    const auto write_facts = facts(i + 2);
    body(i % 2, i % 3);
    write_facts((i + 2) % 3);
    __syncthreads();  // buffer i % 2 is consumed before step i + 2 loads into it
  }
}

// Whether the by-block kernels load a step's rows by TMA (ForEachLoadedStep) at head ratio G.
inline bool RowsByTma(int64_t groups) { return groups == 8 || groups == 16; }

// Host: fills *map for x ([B, H, T, 128] bf16 contiguous: q, or do), its box a query's G heads,
// for LoadStepRows. cudaError_t as tma::EncodeRows's.
inline cudaError_t EncodeStepRows(CUtensorMap* map, const void* x, const NsaSelectedParams& p) {
  return tma::EncodeRows(map, x, p.batch, p.heads, p.seq_len, 1,
                         static_cast<int>(p.heads / p.kv_heads));
}

// Starts loading step i's 64 rows of the map's tensor into `tile` (a swizzled [64][128] tile,
// wgmma_bf16.cuh), completing on bar: a box of the G heads' rows a query, 64 / G of them, a query
// past the item's at T, whose rows come in as zeros. A query whose local blocks hold this block
// loads its rows, which its facts then mask. Thread 0, as ForEachLoadedStep's load.
inline __device__ void LoadStepRows(const ItemTile& at, const NsaSelectedParams& p, int i,
                                    __nv_bfloat16* tile, const CUtensorMap* map, uint64_t* bar) {
  constexpr int kStep = tma::kBoxRows;
  const int per_step = kStep / at.groups;
  const int64_t entries = at.rows / at.groups;
  for (int j = 0; j < per_step; ++j) {
    const int64_t e = static_cast<int64_t>(i) * per_step + j;
    const int t = e < entries ? at.queries[e] : static_cast<int>(p.seq_len);
    tma::LoadBox(tile + j * at.groups * tma::kPanelElems, kStep * tma::kPanelElems, map, t, at.h0,
                 at.b, bar);
  }
}

// The kernels of the branch launch with opt-in shared memory (launch.cuh).
using kernels::LaunchKernel;

// f(std::integral_constant<int, D>()) for p's head dim D (64, 128 or 256): each launcher's
// dispatch to its kernels' instances; cudaErrorInvalidValue where NsaSelectedSupported(p) fails.
template <typename F>
cudaError_t WithHeadDim(const NsaSelectedParams& p, const F& f) {
  if (!NsaSelectedSupported(p)) return cudaErrorInvalidValue;
  if (p.head_dim == 64) return f(std::integral_constant<int, 64>());
  if (p.head_dim == 128) return f(std::integral_constant<int, 128>());
  return f(std::integral_constant<int, 256>());
}

}  // namespace ablate::kernels::nsa

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_BY_BLOCK_CUH_
