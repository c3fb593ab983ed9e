// The reverse index of the selected branch's by-block kernels (its definition and its LibTorch
// build are trainer_lib/attention/nsa_reverse_index.h) built by three CUDA kernels, with one
// cumulative sum and one read by the host between them in the caller (nsa_reverse_index.cc).
//
// For block indices [pairs, T, n] int32 (block c of l tokens in slot s of query t, -1 for none),
// an entry is a (pair, t, s) with 0 <= c <= t / l and, for a window w > 0, c > floor((t - w - l
// + 1) / l). Its list is (pair, chunk t / C, c); lists go pair, chunk, block, and a list's
// entries by t, then s: the order of a stable sort by list, which the LibTorch build makes.
//
// Design. Each (pair, chunk) is cut into `parts` ranges of queries, a thread block each, so that
// a few thousand blocks run whatever the number of chunks:
//   1. NsaReverseIndexCount: each block counts its range's entries per block c in shared memory
//      and writes part_counts[((pair chunks + chunk) NB + c) parts + part], every element
//      (NB = ceil(T / l)).
//   2. The caller: part_ends = the inclusive cumulative sum of part_counts (int64), so that a
//      part's entries of list i start at part_ends - part_counts, in list order then part order.
//   3. NsaReverseIndexFill: each block walks its range in (t, s) order, a round of blockDim
//      entries at a time, keeping per block c a cursor in shared memory. A round's entries that
//      share c are ranked within their warp (__match_any_sync), then the warps take their
//      places in turn, one barrier each: the order is the stable sort's, the same bits every
//      run, with no global atomic.
//   4. NsaReverseIndexItems: a thread per list cuts it into items of at most queries_per_item
//      entries, from the caller's cumulative sum of each list's item count.
// The LibTorch build (a radix sort of every entry's list, about 60 operators and two reads by
// the host) took 1.27 ms of one fla-shaped iteration at 64K on an H200 (docs/benchmarks.md).
//
// Limits (NsaReverseIndexKernelsFit): NB <= kNsaReverseIndexMaxBlocks (a cursor per block c in
// shared memory), C n < 2^31 (a chunk's entries are counted in int32), and the grid's blocks,
// pairs chunks parts, below 2^31.
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_REVERSE_INDEX_H_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_REVERSE_INDEX_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ablate::kernels {

// Blocks c whose cursors fit the kernels' shared memory: 160 KiB of int32 (T = 2.6M at l = 64).
inline constexpr int64_t kNsaReverseIndexMaxBlocks = 40960;

struct NsaReverseIndexParams {
  const int32_t* block_idx = nullptr;  // [pairs, seq_len, slots]
  int64_t pairs = 0, seq_len = 0, slots = 0;
  int64_t block_size = 0;  // l
  int64_t window = 0;      // w; 0: none
  int64_t chunk = 0;       // C
  int64_t parts = 0;       // query ranges per (pair, chunk): NsaReverseIndexParts
  int64_t blocks = 0;      // NB = ceil(T / l)
  int64_t chunks = 0;      // ceil(T / C)
  // [pairs, chunks, NB, parts]: Count writes them all, Fill reads them.
  int32_t* part_counts = nullptr;
  const int64_t* part_ends = nullptr;  // their inclusive cumulative sum; Fill reads it
  int32_t* rev_query = nullptr;        // [entries]; Fill writes it
  // Items: a list's count and end entry from part_counts and part_ends; item_ends [lists], the
  // inclusive cumulative sum of ceil(count / queries_per_item); items [item count, 3] int64
  // (list pair NB + c, first entry, end entry).
  const int64_t* list_counts = nullptr;
  const int64_t* item_ends = nullptr;
  int64_t queries_per_item = 0;
  int64_t* items = nullptr;
};

// The parts per (pair, chunk): about 1024 thread blocks in all, each at least 64 queries, at
// most one part per query of a chunk.
int64_t NsaReverseIndexParts(int64_t pairs, int64_t chunks, int64_t chunk);

// Whether the kernels take p's sizes (the limits above); the caller builds with LibTorch if not.
bool NsaReverseIndexKernelsFit(const NsaReverseIndexParams& p);

// The passes above, on `stream`. Each returns cudaErrorInvalidValue where the sizes do not fit,
// else the launch's error.
cudaError_t NsaReverseIndexCount(const NsaReverseIndexParams& p, cudaStream_t stream);
cudaError_t NsaReverseIndexFill(const NsaReverseIndexParams& p, cudaStream_t stream);
cudaError_t NsaReverseIndexItems(const NsaReverseIndexParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_REVERSE_INDEX_H_
