#include <climits>
#include <cmath>

#include "trainer_lib/kernels/nsa_top_blocks.h"

namespace ablate::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullMask = 0xffffffffu;
// Dynamic shared memory a kernel gets without opting in.
constexpr size_t kDefaultSharedBytes = 48 * 1024;
// A taken block's score: below every probability and every forced 1.
constexpr float kTaken = -1.0f;

// (m, z) := the pair for the union of two sets, each given as (max, sum of exp(x - max));
// (-inf, 0) is the empty set.
__device__ void MergeMaxSum(float& m, float& z, float m2, float z2) {
  const float top = fmaxf(m, m2);
  if (top == -INFINITY) return;
  z = z * expf(m - top) + z2 * expf(m2 - top);
  m = top;
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

__global__ void __launch_bounds__(kThreads) TopBlocksKernel(NsaTopBlocksParams p) {
  // All of it dynamic, so that NsaTopBlocksSharedBytes is the whole of it: each warp's best
  // (value, index) in the top-n rounds, the G rows' max and 1 / sum, then a score per block.
  extern __shared__ float shared[];
  float* warp_value = shared;
  int* warp_index = reinterpret_cast<int*>(shared + kWarps);
  const int64_t i = blockIdx.x, group = blockIdx.y;
  const int64_t t = p.first_query + i;
  const int g_count = static_cast<int>(p.group_size);
  const int own = static_cast<int>(t / p.block_size);
  const int nb = own + 1;  // blocks 0 .. own are the candidates
  const int visible = static_cast<int>(
      (t + 1) / p.block_size < p.score_cols ? (t + 1) / p.block_size : p.score_cols);
  float* row_max = shared + 2 * kWarps;
  float* row_inv = row_max + g_count;
  float* score = row_inv + g_count;
  const float scale = p.scale;
  const float* rows =
      visible > 0 ? p.scores + (group * g_count * p.queries + i) * p.score_cols : nullptr;
  const int64_t row_stride = p.queries * p.score_cols;  // from head g to head g + 1

  // Pass 1: each head row's max and sum of exp over the visible blocks.
  if (visible > 0) {
    const int lane = threadIdx.x % 32;
    for (int g = threadIdx.x / 32; g < g_count; g += kWarps) {
      const float* s = rows + g * row_stride;
      float m = -INFINITY, z = 0.0f;
      for (int c = lane; c < visible; c += 32) {
        const float x = s[c] * scale;
        if (x > m) {
          z = z * expf(m - x) + 1.0f;
          m = x;
        } else {
          z += expf(x - m);
        }
      }
      for (int offset = 16; offset > 0; offset /= 2) {
        const float m2 = __shfl_xor_sync(kFullMask, m, offset);
        const float z2 = __shfl_xor_sync(kFullMask, z, offset);
        MergeMaxSum(m, z, m2, z2);
      }
      if (lane == 0) {
        row_max[g] = m;
        row_inv[g] = 1.0f / z;
      }
    }
  }
  __syncthreads();

  // Pass 2: the group-mean probability of each block; the forced ones rank first.
  const float inv_g = 1.0f / static_cast<float>(g_count);
  for (int c = threadIdx.x; c < nb; c += kThreads) {
    float v = 0.0f;
    if (c < visible) {
      for (int g = 0; g < g_count; ++g) {
        v += expf(rows[g * row_stride + c] * scale - row_max[g]) * row_inv[g];
      }
      v *= inv_g;
    }
    if (c == 0 || c == own || c == own - 1) v = 1.0f;
    score[c] = v;
  }
  __syncthreads();

  // The top n: a block-wide argmax per slot; the winner's owner alone rescans its share.
  int32_t* out = p.block_idx + (group * p.seq_len + t) * p.selected;
  const int rounds = static_cast<int>(p.selected < nb ? p.selected : nb);
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
  return static_cast<size_t>(2 * kWarps + 2 * p.group_size + blocks) * sizeof(float);
}

cudaError_t NsaTopBlocks(const NsaTopBlocksParams& p, cudaStream_t stream) {
  if (p.groups <= 0 || p.groups > 65535 || p.group_size <= 0 || p.queries <= 0 ||
      p.queries >= (int64_t{1} << 31) || p.seq_len >= (int64_t{1} << 31) || p.first_query < 0 ||
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
