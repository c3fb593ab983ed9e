// The reverse index's kernels (nsa_reverse_index.h: the passes, the order, the limits).
#include <cstdint>

#include "trainer_lib/kernels/launch.cuh"
#include "trainer_lib/kernels/nsa_reverse_index.h"

namespace ablate::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// The query range of this thread block's (pair, chunk, part), blockIdx.x = (pair chunks + chunk)
// parts + part; its entries are slots [first t n, end t n) of the pair's [T, n] indices.
struct PartRange {
  int64_t pair_chunk;  // pair chunks + chunk
  int64_t pair;
  int64_t first, end;  // queries [first, end); empty where the chunk is shorter than the parts
  int part;

  __device__ explicit PartRange(const NsaReverseIndexParams& p) {
    part = static_cast<int>(blockIdx.x % p.parts);
    pair_chunk = blockIdx.x / p.parts;
    pair = pair_chunk / p.chunks;
    const int64_t chunk0 = (pair_chunk % p.chunks) * p.chunk;
    const int64_t chunk_end = min(p.seq_len, chunk0 + p.chunk);
    const int64_t per = (p.chunk + p.parts - 1) / p.parts;
    first = min(chunk_end, chunk0 + part * per);
    end = min(chunk_end, first + per);
  }
  // Its entries, fewer than 2^31 (C n is).
  __device__ int Slots(const NsaReverseIndexParams& p) const {
    return static_cast<int>((end - first) * p.slots);
  }
  __device__ const int32_t* Indices(const NsaReverseIndexParams& p) const {
    return p.block_idx + (pair * p.seq_len + first) * p.slots;
  }
  // Where block c's (list's) count for this part sits in part_counts and part_ends.
  __device__ int64_t At(const NsaReverseIndexParams& p, int64_t c) const {
    return (pair_chunk * p.blocks + c) * p.parts + part;
  }
};

// Whether query t sees a key of block c: 0 <= c <= t / l and, with a window, the block's last
// key (c + 1) l - 1 past t - w, i.e. c > floor((t - w - l + 1) / l).
__device__ bool Sees(const NsaReverseIndexParams& p, int64_t t, int32_t c) {
  if (c < 0 || c > t / p.block_size) return false;
  if (p.window <= 0) return true;
  const int64_t lo = t - p.window - p.block_size + 1, l = p.block_size;
  return c > (lo >= 0 ? lo / l : -((-lo + l - 1) / l));
}

__global__ void __launch_bounds__(kThreads) CountKernel(NsaReverseIndexParams p) {
  extern __shared__ int32_t counts[];  // [NB]
  const PartRange at(p);
  for (int64_t c = threadIdx.x; c < p.blocks; c += kThreads) counts[c] = 0;
  __syncthreads();
  const int32_t* idx = at.Indices(p);
  const int slots = at.Slots(p), n = static_cast<int>(p.slots);
  for (int e = threadIdx.x; e < slots; e += kThreads) {
    const int32_t c = idx[e];
    if (Sees(p, at.first + e / n, c)) atomicAdd(&counts[c], 1);
  }
  __syncthreads();
  for (int64_t c = threadIdx.x; c < p.blocks; c += kThreads) p.part_counts[at.At(p, c)] = counts[c];
}

__global__ void __launch_bounds__(kThreads) FillKernel(NsaReverseIndexParams p) {
  extern __shared__ int32_t cursor[];  // [NB]: the next entry of each list, from `base`
  const PartRange at(p);
  // The (pair, chunk)'s first entry: list (pair, chunk, 0)'s, part 0's.
  const int64_t first_at = at.pair_chunk * p.blocks * p.parts;
  const int64_t base = p.part_ends[first_at] - p.part_counts[first_at];
  for (int64_t c = threadIdx.x; c < p.blocks; c += kThreads) {
    const int64_t i = at.At(p, c);
    cursor[c] = static_cast<int32_t>(p.part_ends[i] - p.part_counts[i] - base);
  }
  __syncthreads();
  const int32_t* idx = at.Indices(p);
  const int slots = at.Slots(p), n = static_cast<int>(p.slots);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int32_t* out = p.rev_query + base;
  for (int e0 = 0; e0 < slots; e0 += kThreads) {  // uniform
    const int e = e0 + threadIdx.x;
    const int64_t t = at.first + e / n;
    const int32_t c = e < slots ? idx[e] : -1;
    const int32_t key = e < slots && Sees(p, t, c) ? c : -1;
    // The lanes of this warp with the same list: this one's rank among them, in lane order.
    const unsigned peers = __match_any_sync(0xffffffffu, key);
    const int leader = __ffs(peers) - 1;
    const int rank = __popc(peers & ((1u << lane) - 1));
    int32_t start = 0;
    // The warps in turn: warp w's groups take their places after warp w - 1's.
    for (int w = 0; w < kWarps; ++w) {
      if (w == warp && key >= 0 && lane == leader) {
        start = cursor[key];
        cursor[key] = start + __popc(peers);
      }
      __syncthreads();
    }
    start = __shfl_sync(0xffffffffu, start, leader);
    if (key >= 0) out[start + rank] = static_cast<int32_t>(t);
  }
}

__host__ __device__ int64_t Lists(const NsaReverseIndexParams& p) {
  return p.pairs * p.chunks * p.blocks;
}

__global__ void ItemsKernel(NsaReverseIndexParams p) {
  const int64_t list = blockIdx.x * int64_t{kThreads} + threadIdx.x;
  if (list >= Lists(p)) return;
  const int64_t count = p.list_counts[list];
  if (count == 0) return;
  const int64_t q = p.queries_per_item;
  const int64_t end = p.part_ends[(list + 1) * p.parts - 1];
  const int64_t pieces = (count + q - 1) / q;
  const int64_t kernel_list = list / (p.chunks * p.blocks) * p.blocks + list % p.blocks;
  int64_t* item = p.items + 3 * (p.item_ends[list] - pieces);
  for (int64_t j = 0, begin = end - count; j < pieces; ++j, begin += q, item += 3) {
    item[0] = kernel_list;
    item[1] = begin;
    item[2] = min(begin + q, end);
  }
}

dim3 PartsGrid(const NsaReverseIndexParams& p) {
  return dim3(static_cast<unsigned>(p.pairs * p.chunks * p.parts));
}

size_t CursorBytes(const NsaReverseIndexParams& p) {
  return static_cast<size_t>(p.blocks) * sizeof(int32_t);
}

}  // namespace

int64_t NsaReverseIndexParts(int64_t pairs, int64_t chunks, int64_t chunk) {
  constexpr int64_t kTargetBlocks = 1024, kMinQueries = 64;
  const int64_t wanted = (kTargetBlocks + pairs * chunks - 1) / (pairs * chunks);
  const int64_t most = chunk / kMinQueries > 1 ? chunk / kMinQueries : 1;
  return wanted < 1 ? 1 : (wanted > most ? most : wanted);
}

bool NsaReverseIndexKernelsFit(const NsaReverseIndexParams& p) {
  constexpr int64_t kInt32Limit = int64_t{1} << 31;
  return p.pairs >= 1 && p.seq_len >= 1 && p.seq_len < kInt32Limit && p.slots >= 1 &&
         p.block_size >= 1 && p.window >= 0 && p.chunk >= 1 && p.parts >= 1 &&
         p.blocks == (p.seq_len + p.block_size - 1) / p.block_size &&
         p.blocks <= kNsaReverseIndexMaxBlocks &&
         p.chunks == (p.seq_len + p.chunk - 1) / p.chunk && p.chunk < kInt32Limit / p.slots &&
         p.pairs * p.chunks < kInt32Limit / p.parts && p.queries_per_item >= 1;
}

cudaError_t NsaReverseIndexCount(const NsaReverseIndexParams& p, cudaStream_t stream) {
  if (!NsaReverseIndexKernelsFit(p) || p.block_idx == nullptr || p.part_counts == nullptr) {
    return cudaErrorInvalidValue;
  }
  return LaunchKernel(CountKernel, PartsGrid(p), kThreads, CursorBytes(p), stream, p);
}

cudaError_t NsaReverseIndexFill(const NsaReverseIndexParams& p, cudaStream_t stream) {
  if (!NsaReverseIndexKernelsFit(p) || p.block_idx == nullptr || p.part_counts == nullptr ||
      p.part_ends == nullptr || p.rev_query == nullptr) {
    return cudaErrorInvalidValue;
  }
  return LaunchKernel(FillKernel, PartsGrid(p), kThreads, CursorBytes(p), stream, p);
}

cudaError_t NsaReverseIndexItems(const NsaReverseIndexParams& p, cudaStream_t stream) {
  if (!NsaReverseIndexKernelsFit(p) || p.part_ends == nullptr || p.list_counts == nullptr ||
      p.item_ends == nullptr || p.items == nullptr) {
    return cudaErrorInvalidValue;
  }
  const dim3 grid(static_cast<unsigned>((Lists(p) + kThreads - 1) / kThreads));
  return LaunchKernel(ItemsKernel, grid, kThreads, 0, stream, p);
}

}  // namespace ablate::kernels
