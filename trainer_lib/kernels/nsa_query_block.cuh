// The unit of work of nsa_selected.cu's forward and dq kernels: a thread block takes Q = 16 / G
// consecutive queries t0 .. t0 + Q - 1 of one (b, h_kv), so that the MMA's 16 rows hold Q G
// (query, head) pairs, row r = qi G + g, instead of one query's G heads and 16 - G zero rows;
// and it walks the union of its queries' selected blocks, so that a block several of them chose
// (neighbours mostly choose the same ones) is loaded once for all of them. Device code only;
// the contract is nsa_selected.h's.
//
// The union keeps the reference's multiplicity: a block that query qi's index list holds c times
// counts c times in qi's softmax (NsaSelectedReference gathers every slot; the dk/dv kernel's
// reverse index has one entry per slot). The union's entries are therefore (block, copy): copy c
// of a block is taken by the queries holding it more than c times, so that every (query, slot)
// pair whose block holds a key the query sees is in exactly one entry, and no other pair is.
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_QUERY_BLOCK_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_QUERY_BLOCK_CUH_

#include <cstdint>

#include <cuda_bf16.h>

#include "trainer_lib/kernels/mma_bf16.cuh"
#include "trainer_lib/kernels/nsa_selected.h"

namespace ablate::kernels::nsa {

using bf16 = __nv_bfloat16;

inline constexpr int kRows = 16;       // the MMA's M
inline constexpr int kQueryWarps = 4;  // warps sharing out a block's key tiles
// (query, slot) pairs one pass of the union takes, one per thread: 8 queries' 16 slots, Qwen3's
// G = 2 at the paper's n = 16, in one pass. More slots run in several passes (a block chosen in
// two passes is loaded in both).
inline constexpr int kUnionItems = 32 * kQueryWarps;

// Positions (queries, keys) are ints: T < 2^31.
struct QueryBlock {
  int t0;            // first query position
  int groups;        // G, heads per key/value head
  int queries;       // Q = 16 / G: 8 at G = 2, 1 for G > 8
  // Row of (b, h_kv, 0) in k, v and block_idx: [B * H_kv * T, .]. Recomputed from blockIdx
  // where needed rather than kept: the forward at D = 256 has no register to spare.
  __device__ int64_t KvRow(const NsaSelectedParams& p) const {
    return (static_cast<int64_t>(blockIdx.z) * p.kv_heads + blockIdx.y) * p.seq_len;
  }
};

// Thread blocks (x, y, z) = (query block, h_kv, b).
inline __device__ QueryBlock ThisQueryBlock(const NsaSelectedParams& p) {
  QueryBlock at;
  at.groups = static_cast<int>(p.heads / p.kv_heads);
  at.queries = kRows / at.groups;
  at.t0 = static_cast<int>(blockIdx.x) * at.queries;
  return at;
}

// Row r's query qi, or -1 for a padding row or a query past the end (the last block of a
// sequence whose length Q does not divide).
inline __device__ int RowQuery(const QueryBlock& at, int r, int64_t seq_len) {
  const int qi = r / at.groups;
  return qi < at.queries && int64_t{at.t0} + qi < seq_len ? qi : -1;  // t0 + qi may pass 2^31
}

// Row r's row in q, o, do, dq ([B * H * T, D]) and lse, delta: (b, h_kv G + g, t0 + qi); r must
// have a query.
inline __device__ int64_t HeadRow(const NsaSelectedParams& p, const QueryBlock& at, int r) {
  const int64_t head = static_cast<int64_t>(blockIdx.z) * p.heads + blockIdx.y * at.groups;
  return (head + r % at.groups) * p.seq_len + at.t0 + r / at.groups;
}

// Starts copying the block's rows of x (q or do, [B * H * T, D] bf16) into a shared [16][D]
// tile, zeros for rows without a query. All threads of the block.
template <int D>
__device__ void CopyQueryRows(bf16* dst, const void* x, const NsaSelectedParams& p,
                              const QueryBlock& at) {
  const bf16* base = static_cast<const bf16*>(x);
  mma::CopyRows<D>(
      dst, kRows, base,
      [&](int r) {
        return RowQuery(at, r, p.seq_len) >= 0 ? base + HeadRow(p, at, r) * D : nullptr;
      },
      threadIdx.x, blockDim.x);
}

// One pass's (query, slot) pairs, item i = qi * slots + k for slot s0 + k of query qi.
struct QueryUnion {
  int32_t block[kUnionItems];  // the item's block, -1 when it has no key its query sees
  // Nonzero where the item is an entry of the union: bit qi for each query taking it.
  uint16_t takers[kUnionItems];
};

// Fills `u` with slots [s0, s0 + slots) of the block's queries, slots <= kUnionItems / Q; returns
// the item count Q slots. Item i is the entry of (its block, copy c), c the times its block
// appears in earlier slots of its query, when no earlier query holds the block more than c
// times; that entry's takers are the queries holding it more than c times. All threads: it
// begins with a barrier (the previous pass's entries are consumed) and returns after one, with
// every copy its threads started before (the rows of CopyQueryRows) complete and visible.
inline __device__ int BuildUnion(QueryUnion& u, const NsaSelectedParams& p, const QueryBlock& at,
                                 int s0, int slots) {
  const int items = at.queries * slots, i = threadIdx.x;
  const int qi = i / slots;
  int32_t block = -1;
  const int64_t t = int64_t{at.t0} + qi;
  if (i < items && t < p.seq_len) {
    const int32_t c = p.block_idx[(at.KvRow(p) + t) * p.selected + s0 + i % slots];
    // A key first <= s < first + l with t - w < s <= t (as the reverse index's test).
    const int64_t first = int64_t{c} * p.block_size;
    if (c >= 0 && first <= t && (p.window == 0 || first + p.block_size + p.window > t + 1)) {
      block = c;
    }
  }
  __syncthreads();
  if (i < items) u.block[i] = block;
  mma::WaitCopies<0>();
  __syncthreads();
  uint32_t takers = 0;
  if (block >= 0) {
    int copy = 0;
    for (int j = qi * slots; j < i; ++j) copy += u.block[j] == block;
    for (int q = 0; q < at.queries; ++q) {
      int count = 0;
      for (int j = q * slots; j < (q + 1) * slots; ++j) count += u.block[j] == block;
      takers |= static_cast<uint32_t>(count > copy) << q;
    }
    if ((takers & ((1u << qi) - 1)) != 0) takers = 0;  // an earlier query's item is the entry
  }
  if (i < items) u.takers[i] = static_cast<uint16_t>(takers);
  __syncthreads();
  return items;
}

// Which of this lane's elements of a tile's S (C fragments, mma_bf16.cuh) the row's query
// sees: bit 4 j + e for row lane / 4 + 8 (e / 2) (query row_q[e / 2], -1: none) and key
// 8 j + 2 (lane % 4) + e % 2 of the tile r0 .. r0 + count - 1. None unless the query is among the
// tile's entry's takers, else the keys with t - w < s <= t.
template <int kKeys>
__device__ uint32_t SeenElements(const int (&row_q)[2], uint32_t takers, const QueryBlock& at,
                                 int r0, int count, int64_t window) {
  static_assert(kKeys <= 64, "bits 4 j + e of a 32-bit mask");
  const int lane = threadIdx.x % 32;
  uint32_t seen = 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int qi = row_q[h];
    if (qi < 0 || ((takers >> qi) & 1u) == 0) continue;
    const int t = at.t0 + qi - r0;  // the query's position, from the tile's first key
    const int lo = window > 0 ? static_cast<int>(max(int64_t{t} - window + 1, int64_t{0})) : 0;
    const int hi = min(t + 1, count);  // keys [lo, hi) of the tile
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = 8 * j + 2 * (lane % 4) + e;
        if (key >= lo && key < hi) seen |= 1u << (4 * j + 2 * h + e);
      }
    }
  }
  return seen;
}

// Calls body(r0, count, takers) for this warp's key tiles: pass after pass of at most
// kUnionItems (query, slot) pairs, each entry of the union cut to the keys its takers see,
// (t_first - w, t_last] for its first and last taker, and into tiles of kKeys tokens (the last of
// an entry cut at the block's end or at t_last), dealt to the warps in turn. A tile's keys past
// `count` are zeros; a row masks the keys its query does not see (SeenElements). All threads of the
// block (the passes synchronize it); `u` is the block's shared QueryUnion.
template <int kKeys, typename Body>
__device__ void ForEachTile(QueryUnion& u, const NsaSelectedParams& p, const QueryBlock& at,
                            Body body) {
  const int warp = threadIdx.x / 32, per_pass = kUnionItems / at.queries;
  const int selected = static_cast<int>(p.selected);  // n < 2^31 (NsaSelectedSupported)
  unsigned dealt = 0;  // tiles so far; unsigned: wraps (by 2^32, a multiple of the warps)
  for (int s0 = 0; s0 < selected; s0 += min(per_pass, selected - s0)) {
    const int items = BuildUnion(u, p, at, s0, min(per_pass, selected - s0));
    for (int e = 0; e < items; ++e) {
      const uint32_t takers = u.takers[e];
      if (takers == 0) continue;
      const int64_t block = u.block[e];
      const int t_first = at.t0 + __ffs(static_cast<int>(takers)) - 1;
      const int t_last = at.t0 + 31 - __clz(static_cast<int>(takers));
      const int64_t low = p.window > 0 ? t_first - p.window + 1 : 0;
      // Unsigned, so that r0 + kKeys cannot overflow; both are below T.
      const unsigned first = static_cast<unsigned>(max(block * p.block_size, low));
      const unsigned end = static_cast<unsigned>(min((block + 1) * p.block_size,
                                                     int64_t{t_last} + 1));
      for (unsigned r0 = first; r0 < end; r0 += kKeys, ++dealt) {
        if (dealt % kQueryWarps == warp) {
          body(static_cast<int>(r0), static_cast<int>(min(unsigned{kKeys}, end - r0)), takers);
        }
      }
    }
  }
}

}  // namespace ablate::kernels::nsa

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_QUERY_BLOCK_CUH_
