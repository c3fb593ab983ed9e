// Warp-level building blocks for bf16 tensor-core kernels (sm_80 and later; AtomicAddRows needs
// sm_90): asynchronous copies into shared memory, the m16n8k16 MMA with fp32 accumulation, and the
// loads of its operand fragments from shared memory. Device code only; included by the .cu files of
// this folder.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"), with quad = lane / 4 and
// pair = lane % 4, each 32-bit register holding two bf16 (the lower column in the low half):
//   A (16 x 16, row-major): a[0] = A[quad][2 pair, +1],     a[1] = A[quad + 8][2 pair, +1],
//                           a[2] = A[quad][2 pair + 8, +9], a[3] = A[quad + 8][2 pair + 8, +9]
//   B (16 x 8):             b[0] = B[2 pair, +1][quad],     b[1] = B[2 pair + 8, +9][quad]
//   C (16 x 8, fp32):       c[0], c[1] = C[quad][2 pair, +1], c[2], c[3] = C[quad + 8][2 pair, +1]
// so the C fragments of two adjacent 8-column tiles are, once rounded, the A fragment of their
// 16 columns (FlashAttention-2's way of feeding P to the second product without shared memory).
//
// Shared matrices are row-major bf16 with a row stride of `stride` elements, a multiple of 8
// whose words fall in distinct banks for 8 consecutive rows (kStride below).
#ifndef ABLATE_TRAINER_LIB_KERNELS_MMA_BF16_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_MMA_BF16_CUH_

#include <cuda_bf16.h>

#include <cstdint>
#include <cstring>

namespace ablate::kernels::mma {

using bf16 = __nv_bfloat16;

inline __device__ uint32_t SharedAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Starts a 16-byte copy global -> shared; writes zeros instead when !valid (`src` must still
// be a valid address: it is not read).
inline __device__ void CopyAsync16(bf16* dst, const bf16* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(SharedAddress(dst)),
               "l"(src), "r"(valid ? 16 : 0)
               : "memory");
}

inline __device__ void CommitCopies() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most `kPending` committed groups of this thread's copies are in flight.
template <int kPending>
__device__ void WaitCopies() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Row stride, in elements, of a shared tile of kCols columns (a multiple of 64): 16 bytes of
// padding put 8 consecutive rows' words in distinct banks for the fragment loads.
template <int kCols>
constexpr int kStride = kCols + 8;

// Starts copying rows [0, rows) of a shared [rows][kCols] tile, row r from src(r) or zeros where
// src(r) is null, with threads thread, thread + threads, ... (`base`: any valid address).
template <int kCols, typename Src>
__device__ void CopyRows(bf16* dst, int rows, const bf16* base, Src src, int thread, int threads) {
  constexpr int kChunks = kCols / 8;  // 16-byte copies per row
  for (int i = thread; i < rows * kChunks; i += threads) {
    const int r = i / kChunks, c = i % kChunks;
    const bf16* from = src(r);
    CopyAsync16(dst + r * kStride<kCols> + c * 8, from != nullptr ? from + c * 8 : base,
                from != nullptr);
  }
}

// Max and sum over the 4 lanes holding one row of a C fragment.
inline __device__ float QuadMax(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

inline __device__ float QuadSum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

inline __device__ uint32_t Word(const bf16* p) { return *reinterpret_cast<const uint32_t*>(p); }

inline __device__ uint32_t Pack(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  uint32_t w;
  memcpy(&w, &v, sizeof(w));
  return w;
}

// d += a b for a 16x16 A and 16x8 B fragment.
inline __device__ void Mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The A fragment of rows [0, 16) and columns [c0, c0 + 16) of shared matrix m: one ldmatrix of
// four 8x8 blocks, lanes 8i .. 8i + 7 naming the rows of block i (rows 8 (i % 2), columns
// c0 + 8 (i / 2)), in a's order.
inline __device__ void LoadA(uint32_t (&a)[4], const bf16* m, int stride, int c0) {
  const int lane = threadIdx.x % 32;
  const bf16* p = m + ((lane % 8) + 8 * ((lane / 8) % 2)) * stride + c0 + 8 * (lane / 16);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
               : "r"(SharedAddress(p))
               : "memory");
}

// The B fragment B[k][n] = m[n0 + n][k0 + k]: B is the transpose of rows [n0, n0 + 8) of m, as
// K is for S = Q K^T.
inline __device__ void LoadBTransposed(uint32_t (&b)[2], const bf16* m, int stride, int n0,
                                       int k0) {
  const int lane = threadIdx.x % 32;
  const bf16* p = m + (n0 + lane / 4) * stride + k0 + 2 * (lane % 4);
  b[0] = Word(p);
  b[1] = Word(p + 8);
}

// The B fragments B[k][n] = m[k0 + k][n0 + n] of columns n0 .. n0 + 7 (b[0], b[1]) and
// n0 + 8 .. n0 + 15 (b[2], b[3]), as V is for O = P V: one ldmatrix.trans of four 8x8 blocks,
// lanes 8i .. 8i + 7 naming the rows of block i (rows k0 + 8 (i % 2), columns n0 + 8 (i / 2)).
inline __device__ void LoadB2(uint32_t (&b)[4], const bf16* m, int stride, int k0, int n0) {
  const int lane = threadIdx.x % 32;
  const bf16* p = m + (k0 + (lane % 8) + 8 * ((lane / 8) % 2)) * stride + n0 + 8 * (lane / 16);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
               : "r"(SharedAddress(p))
               : "memory");
}

// s = a b^T for shared a [16][kDepth] and the rows [0, kN) of shared b [kN][kDepth]: the C
// fragments of the kN / 8 column tiles.
template <int kDepth, int kN>
__device__ void ProductWithTranspose(float (&s)[kN / 8][4], const bf16* a, const bf16* b,
                                     int stride) {
#pragma unroll
  for (int j = 0; j < kN / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < kDepth / 16; ++kk) {
    uint32_t af[4];
    LoadA(af, a, stride, 16 * kk);
#pragma unroll
    for (int j = 0; j < kN / 8; ++j) {
      uint32_t bf[2];
      LoadBTransposed(bf, b, stride, 8 * j, 16 * kk);
      Mma(s[j], af, bf[0], bf[1]);
    }
  }
}

// acc += a m[k0 .. k0 + 15][0 .. kCols - 1] for the A fragment a of 16 rows and 16 columns.
template <int kCols>
__device__ void AccumulateTile(float (&acc)[kCols / 8][4], const uint32_t (&a)[4], const bf16* m,
                               int stride, int k0) {
#pragma unroll
  for (int n = 0; n < kCols / 16; ++n) {
    uint32_t bf[4];
    LoadB2(bf, m, stride, k0, 16 * n);
    Mma(acc[2 * n], a, bf[0], bf[1]);
    Mma(acc[2 * n + 1], a, bf[2], bf[3]);
  }
}

// acc += p m for p [16][kK] given as C fragments (rounded to bf16 here) and the rows [0, kK),
// columns [0, kCols) of shared m.
template <int kCols, int kK>
__device__ void AccumulateProduct(float (&acc)[kCols / 8][4], const float (&p)[kK / 8][4],
                                  const bf16* m, int stride) {
#pragma unroll
  for (int kk = 0; kk < kK / 16; ++kk) {
    const uint32_t af[4] = {Pack(p[2 * kk][0], p[2 * kk][1]), Pack(p[2 * kk][2], p[2 * kk][3]),
                            Pack(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                            Pack(p[2 * kk + 1][2], p[2 * kk + 1][3])};
    AccumulateTile<kCols>(acc, af, m, stride, 16 * kk);
  }
}

// acc += a m for shared a [16][kK] (row stride a_stride) and the rows [0, kK), columns
// [0, kCols) of shared m.
template <int kCols, int kK>
__device__ void AccumulateSharedProduct(float (&acc)[kCols / 8][4], const bf16* a, int a_stride,
                                        const bf16* m, int stride) {
#pragma unroll
  for (int kk = 0; kk < kK / 16; ++kk) {
    uint32_t af[4];
    LoadA(af, a, a_stride, 16 * kk);
    AccumulateTile<kCols>(acc, af, m, stride, 16 * kk);
  }
}

// Adds C fragments acc [16 rows][kCols] into fp32 rows in global memory with 8-byte atomics
// (sm_90's float2 atomicAdd): `top` is row quad's column 0, `bottom` row quad + 8's, null for a
// row not to write (8-byte aligned). Each lane adds its own two adjacent columns of each row, with
// no shuffles: where lanes paired up to add float4s (half the atomic instructions, two shuffles
// each), the selected branch's dk/dv kernel ran 2% slower at fla's 64K on an H100
// (docs/benchmarks.md, "The large kernels at fla's 64K profiled"). Any lanes may call it.
template <int kCols>
__device__ void AtomicAddRows(float* top, float* bottom, const float (&acc)[kCols / 8][4]) {
  const int col = 2 * (static_cast<int>(threadIdx.x) % 4);
#pragma unroll
  for (int n = 0; n < kCols / 8; ++n) {
    if (top != nullptr) {
      atomicAdd(reinterpret_cast<float2*>(top + 8 * n + col), make_float2(acc[n][0], acc[n][1]));
    }
    if (bottom != nullptr) {
      atomicAdd(reinterpret_cast<float2*>(bottom + 8 * n + col), make_float2(acc[n][2], acc[n][3]));
    }
  }
}

}  // namespace ablate::kernels::mma

#endif  // ABLATE_TRAINER_LIB_KERNELS_MMA_BF16_CUH_
