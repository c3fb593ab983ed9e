#include <climits>
#include <cmath>

#include "trainer_lib/kernels/nsa_block_rank.cuh"
#include "trainer_lib/kernels/nsa_top_blocks.h"

namespace ablate::kernels {
namespace {

using nsa::GroupMean;
using nsa::Key;
using nsa::KeyBlock;
using nsa::MergeMaxSum;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullMask = 0xffffffffu;
// Dynamic shared memory a kernel gets without opting in.
constexpr size_t kDefaultSharedBytes = 48 * 1024;
// A taken block's score: below every probability and every forced 1.
constexpr float kTaken = -1.0f;
// The most blocks the filter may leave for one warp's rounds.
constexpr int kCandidates = 256;

// How pass 1 spreads the G head rows over the warps: a row to warps_per_row warps (4 / G when
// G < 4, else 1), whose parts = G warps_per_row partial (max, sum) pairs are then merged.
struct Layout {
  int warps_per_row, parts, rows;
};
static_assert(kNsaTopBlocksMaxGroup <= kThreads, "a thread per head row merges its parts");

__host__ __device__ Layout LayoutOf(int g) {
  if (g <= 0) return {1, 0, 0};  // refused at launch; sized here as nothing
  const int warps_per_row = g >= kWarps ? 1 : kWarps / g;
  return {warps_per_row, warps_per_row * g, g};
}

// Whether (v, i) ranks before (value, index): higher score, then the lower block.
__device__ bool Before(float v, int i, float value, int index) {
  return v > value || (v == value && i < index);
}

// The best (value, index) of one thread's share of score[0, nb): c = thread, thread + kThreads...
// (-inf, INT_MAX) for an empty share.
__device__ void ShareBest(const float* score, int nb, float& value, int& index) {
  value = -INFINITY;
  index = INT_MAX;
  for (int c = threadIdx.x; c < nb; c += kThreads) {
    if (Before(score[c], c, value, index)) {
      value = score[c];
      index = c;
    }
  }
}

// The block-wide best of every thread's (value, index), returned to every thread. Every thread
// of the block must call it.
__device__ void BlockBest(float& value, int& index, float* warp_value, int* warp_index) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const float v = __shfl_xor_sync(kFullMask, value, offset);
    const int i = __shfl_xor_sync(kFullMask, index, offset);
    if (Before(v, i, value, index)) {
      value = v;
      index = i;
    }
  }
  if (threadIdx.x % 32 == 0) {
    warp_value[threadIdx.x / 32] = value;
    warp_index[threadIdx.x / 32] = index;
  }
  __syncthreads();
  value = warp_value[0];
  index = warp_index[0];
  for (int w = 1; w < kWarps; ++w) {
    if (Before(warp_value[w], warp_index[w], value, index)) {
      value = warp_value[w];
      index = warp_index[w];
    }
  }
  __syncthreads();  // every thread has read before the next call writes
}

__device__ unsigned long long WarpMax(unsigned long long key) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const unsigned long long other = __shfl_xor_sync(kFullMask, key, offset);
    key = other > key ? other : key;
  }
  return key;
}

// The n-th largest of the warp's 32 keys (n <= 32), or 0 when fewer than n are non-zero. Keys
// are unique but for 0.
__device__ unsigned long long WarpNthLargest(unsigned long long key, int n) {
  int above = 0;  // the lanes whose key is larger than this lane's
  for (int lane = 0; lane < 32; ++lane) above += __shfl_sync(kFullMask, key, lane) > key;
  const unsigned at = __ballot_sync(kFullMask, key != 0 && above == n - 1);
  return at == 0 ? 0 : __shfl_sync(kFullMask, key, __ffs(at) - 1);
}

// The top `rounds` of count candidate keys (unique, non-zero) into out[0 .. rounds), highest
// first, by one warp: a warp-wide max per slot, its owner lane alone rescanning its share.
// Slots from the first round that finds nothing left to `selected` get -1.
__device__ void WarpTop(unsigned long long* candidates, int count, int rounds, int selected,
                        int32_t* out) {
  const int lane = threadIdx.x % 32;
  auto share_best = [&] {
    unsigned long long best = 0;
    for (int j = lane; j < count; j += 32) best = candidates[j] > best ? candidates[j] : best;
    return best;
  };
  unsigned long long mine = share_best();
  int r = 0;
  for (; r < rounds; ++r) {
    const unsigned long long best = WarpMax(mine);
    if (best == 0) break;
    if (lane == 0) out[r] = KeyBlock(best);
    if (mine == best) {
      for (int j = lane; j < count; j += 32) {
        if (candidates[j] == best) candidates[j] = 0;
      }
      mine = share_best();
    }
    __syncwarp();
  }
  for (int slot = r + lane; slot < selected; slot += 32) out[slot] = -1;
}

__global__ void __launch_bounds__(kThreads) TopBlocksKernel(NsaTopBlocksParams p) {
  // All of it dynamic, so that NsaTopBlocksSharedBytes is the whole of it (Layout below).
  extern __shared__ unsigned long long shared64[];
  const Layout at = LayoutOf(static_cast<int>(p.group_size));
  unsigned long long* candidates = shared64;
  unsigned long long* warp_threshold = candidates + kCandidates;
  int* candidate_count = reinterpret_cast<int*>(warp_threshold + kWarps);
  float* warp_value = reinterpret_cast<float*>(candidate_count + 1);
  int* warp_index = reinterpret_cast<int*>(warp_value + kWarps);
  float* part_max = reinterpret_cast<float*>(warp_index + kWarps);
  float* part_sum = part_max + at.parts;
  float* row_max = part_sum + at.parts;
  float* row_inv = row_max + at.rows;
  float* score = row_inv + at.rows;

  const int64_t i = blockIdx.x, group = blockIdx.y;
  const int64_t t = p.first_query + i;
  const int g_count = static_cast<int>(p.group_size);
  const int own = static_cast<int>(t / p.block_size);
  const int nb = own + 1;  // blocks 0 .. own are the candidates
  const int visible = static_cast<int>(
      (t + 1) / p.block_size < p.score_cols ? (t + 1) / p.block_size : p.score_cols);
  const float scale = p.scale;
  const float* rows =
      visible > 0 ? p.scores + (group * g_count * p.queries + i) * p.score_cols : nullptr;
  const int64_t row_stride = p.queries * p.score_cols;  // from head g to head g + 1
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) *candidate_count = 0;

  // Pass 1: each head row's max and sum of exp over the visible blocks, a row to
  // at.warps_per_row warps (all four share a row at G = 1), four columns a step per lane.
  for (int r = warp; visible > 0 && r < at.parts; r += kWarps) {
    const int g = r / at.warps_per_row, part = r % at.warps_per_row;
    const int step = 32 * at.warps_per_row;
    const float* s = rows + g * row_stride;
    float m = -INFINITY, z = 0.0f;
    int c = part * 32 + lane;
    for (; c + 3 * step < visible; c += 4 * step) {
      const float x0 = s[c] * scale, x1 = s[c + step] * scale;
      const float x2 = s[c + 2 * step] * scale, x3 = s[c + 3 * step] * scale;
      const float top = fmaxf(fmaxf(x0, x1), fmaxf(x2, x3));
      if (top > m) {
        z *= expf(m - top);
        m = top;
      }
      z += (expf(x0 - m) + expf(x1 - m)) + (expf(x2 - m) + expf(x3 - m));
    }
    for (; c < visible; c += step) {
      const float x = s[c] * scale;
      if (x > m) {
        z *= expf(m - x);
        m = x;
      }
      z += expf(x - m);
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      const float m2 = __shfl_xor_sync(kFullMask, m, offset);
      const float z2 = __shfl_xor_sync(kFullMask, z, offset);
      MergeMaxSum(m, z, m2, z2);
    }
    if (lane == 0) {
      part_max[r] = m;
      part_sum[r] = z;
    }
  }
  __syncthreads();
  if (visible > 0 && static_cast<int>(threadIdx.x) < g_count) {
    const int first = threadIdx.x * at.warps_per_row;
    float m = part_max[first], z = part_sum[first];
    for (int w = 1; w < at.warps_per_row; ++w)
      MergeMaxSum(m, z, part_max[first + w], part_sum[first + w]);
    row_max[threadIdx.x] = m;
    row_inv[threadIdx.x] = 1.0f / z;
  }
  __syncthreads();

  // Pass 2: the group-mean probability of each block, the forced ones 1, and each thread's best.
  const float inv_g = 1.0f / static_cast<float>(g_count);
  unsigned long long mine = 0;
  for (int c = threadIdx.x; c < nb; c += kThreads) {
    float v = 0.0f;
    if (c < visible) {
      for (int g = 0; g < g_count; ++g) {
        v += expf(rows[g * row_stride + c] * scale - row_max[g]) * row_inv[g];
      }
      v = GroupMean(v, inv_g);
    }
    if (c == 0 || c == own || c == own - 1) v = 1.0f;
    score[c] = v;
    const unsigned long long key = Key(v, c);
    mine = key > mine ? key : mine;
  }

  // The filter: in each warp, n threads' bests are at least the warp's n-th largest best, so
  // every block of the top n is at least the largest of those thresholds. Blocks below it are
  // dropped; what is left (far fewer than the blocks, where the scores are not built to defeat
  // the filter) goes to one warp's rounds when it fits kCandidates.
  const int n = static_cast<int>(p.selected);
  const unsigned long long warp_nth = n <= 32 ? WarpNthLargest(mine, n) : 0;
  if (lane == 0) warp_threshold[warp] = warp_nth;
  __syncthreads();
  unsigned long long threshold = 1;  // 0 never ranks
  for (int w = 0; w < kWarps; ++w)
    threshold = warp_threshold[w] > threshold ? warp_threshold[w] : threshold;
  for (int c = threadIdx.x; c < nb; c += kThreads) {
    const unsigned long long key = Key(score[c], c);
    if (key >= threshold) {
      const int slot = atomicAdd(candidate_count, 1);
      if (slot < kCandidates) candidates[slot] = key;
    }
  }
  __syncthreads();
  int32_t* out = p.block_idx + (group * p.seq_len + t) * p.selected;
  const int rounds = static_cast<int>(p.selected < nb ? p.selected : nb);
  const int count = *candidate_count;
  if (count <= kCandidates) {
    if (warp == 0) WarpTop(candidates, count, rounds, n, out);
    return;
  }

  // Too many left (scores built to defeat the filter): n rounds of a block-wide argmax over
  // every block; the winner's owner alone rescans its share.
  float value;
  int index;
  ShareBest(score, nb, value, index);
  for (int r = 0; r < rounds; ++r) {
    float best = value;
    int winner = index;
    BlockBest(best, winner, warp_value, warp_index);
    // Nothing left that ranks (the block-wide best is uniform, so every thread leaves here):
    // only NaN scores, which never rank, are left.
    if (!(best > kTaken)) {
      for (int64_t slot = r + threadIdx.x; slot < p.selected; slot += kThreads) out[slot] = -1;
      return;
    }
    if (threadIdx.x == 0) out[r] = winner;
    if (winner % kThreads == static_cast<int>(threadIdx.x)) {
      score[winner] = kTaken;
      ShareBest(score, nb, value, index);
    }
  }
  for (int64_t r = rounds + threadIdx.x; r < p.selected; r += kThreads) out[r] = -1;
}

}  // namespace

size_t NsaTopBlocksSharedBytes(const NsaTopBlocksParams& p) {
  const int64_t last = p.first_query + p.queries - 1;
  const int64_t blocks = p.block_size > 0 && last >= 0 ? last / p.block_size + 1 : 0;
  const Layout at = LayoutOf(static_cast<int>(p.group_size));
  return (kCandidates + kWarps) * sizeof(unsigned long long) +
         static_cast<size_t>(1 + 2 * kWarps + 2 * at.parts + 2 * at.rows + blocks) * sizeof(float);
}

cudaError_t NsaTopBlocks(const NsaTopBlocksParams& p, cudaStream_t stream) {
  if (p.groups <= 0 || p.groups > 65535 || p.group_size <= 0 ||
      p.group_size > kNsaTopBlocksMaxGroup || p.queries <= 0 || p.queries >= (int64_t{1} << 31) ||
      p.seq_len >= (int64_t{1} << 31) || p.first_query < 0 ||
      p.first_query + p.queries > p.seq_len || p.block_size <= 0 || p.selected <= 0 ||
      p.score_cols < 0 || (p.score_cols > 0 && p.scores == nullptr) || p.block_idx == nullptr) {
    return cudaErrorInvalidValue;
  }
  // Every block the chunk's last query sees must have its column: fewer would quietly narrow
  // the softmax.
  const int64_t seen = (p.first_query + p.queries) / p.block_size;
  if (p.score_cols < (seen < p.seq_len / p.block_size ? seen : p.seq_len / p.block_size)) {
    return cudaErrorInvalidValue;
  }
  const size_t bytes = NsaTopBlocksSharedBytes(p);
  if (bytes > kDefaultSharedBytes) {
    int device = 0, optin = 0;
    cudaError_t error = cudaGetDevice(&device);
    if (error == cudaSuccess) {
      error = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    }
    if (error != cudaSuccess) return error;
    if (bytes > static_cast<size_t>(optin)) return cudaErrorInvalidValue;
    error = cudaFuncSetAttribute(TopBlocksKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(bytes));
    if (error != cudaSuccess) return error;
  }
  const dim3 grid(static_cast<unsigned>(p.queries), static_cast<unsigned>(p.groups));
  TopBlocksKernel<<<grid, kThreads, bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace ablate::kernels
