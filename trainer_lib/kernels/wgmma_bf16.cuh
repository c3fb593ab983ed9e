// Warpgroup-level building blocks for Hopper's bf16 tensor cores (sm_90a: wgmma.mma_async, PTX
// ISA 9.7.15): shared tiles in the 128-byte swizzle, their matrix descriptors, the MMAs a kernel
// of this folder issues, and the fences around them; and, host side, whether the device runs
// them. Included by the .cu files of this folder; the wgmma instructions assemble only for an
// sm_90a target, so their callers stand under `#if defined(__CUDA_ARCH_FEAT_SM90_ALL)` or
// `if constexpr` on it.
//
// Tiles. A shared tile of R rows and C bf16 columns (C a multiple of 64) is C / 64 panels, each
// [R][64] with 128-byte rows, 1024-byte aligned; 16-byte chunk j of row r lies at chunk j ^ (r % 8)
// of its row (the 128-byte swizzle, PTX ISA "Shared Memory Matrix Layout"), so that the eight rows
// of a fragment fall in distinct banks. One tile serves as either operand layout:
//  - K-major (the tile's columns are the product's K): SwizzledKMajor, one descriptor per 16
//    columns, 8-row groups 1024 bytes apart;
//  - MN-major (its rows are the K): SwizzledMnMajor, one descriptor per 16 rows, the panels (64
//    columns of M or N each) R * 128 bytes apart.
// Fragments. A warpgroup's 4 warps each hold 16 rows of the 64-row A and D of m64nNk16; warp w's
// rows are 16 w + quad and 16 w + quad + 8, laid out as mma.m16n8k16's A and C fragments repeated
// over N / 8 column tiles (mma_bf16.cuh), so that D's fragments rounded to bf16 are the next
// product's register A, as with mma.sync.
#ifndef ABLATE_TRAINER_LIB_KERNELS_WGMMA_BF16_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_WGMMA_BF16_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "trainer_lib/kernels/mma_bf16.cuh"

namespace ablate::kernels::wgmma {

using bf16 = __nv_bfloat16;

// Host code: whether the current device runs sm_90a code (compute capability 9.0), asked once per
// process (the GPUs of one host are of one kind). Launchers ask it only where the build holds
// that code (ABLATE_SM90A_KERNELS).
inline bool DeviceRunsSm90a() {
  static const bool runs = [] {
    int device = 0, major = 0, minor = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    return major == 9 && minor == 0;
  }();
  return runs;
}

// Element offset of (r, col) in a swizzled tile of `rows` rows; r, col >= 0. In unsigned
// arithmetic, where the divisions and remainders by powers of two are shifts and masks (signed,
// each needs a rounding fix-up for negative values that never come: in the selection kernel the
// copies' index math was a tenth of its instructions).
inline __device__ int SwizzledOffset(int rows, int r, int col) {
  const unsigned ur = r, uc = col;
  return static_cast<int>((uc / 64) * rows * 64 + ur * 64 + ((((uc % 64) / 8) ^ (ur % 8)) * 8) +
                          uc % 8);
}

// Starts copying rows [0, rows) of a swizzled [rows][kCols] tile, row r from src(r) or zeros
// where src(r) is null, with threads thread, thread + threads, ... (`base`: any valid address).
template <int kCols, typename Src>
__device__ void CopyRowsSwizzled(bf16* dst, int rows, const bf16* base, Src src, int thread,
                                 int threads) {
  constexpr int kChunks = kCols / 8;
  for (int i = thread; i < rows * kChunks; i += threads) {
    const int r = static_cast<unsigned>(i) / kChunks, c = static_cast<unsigned>(i) % kChunks;
    const bf16* from = src(r);
    mma::CopyAsync16(dst + SwizzledOffset(rows, r, 8 * c), from != nullptr ? from + c * 8 : base,
                     from != nullptr);
  }
}

// A shared matrix descriptor (PTX ISA "Matrix Descriptor Format"): start address, leading and
// stride byte offsets, 128-byte swizzle, base offset 0 (the tiles are 1024-byte aligned).
inline __device__ uint64_t Descriptor(const bf16* start, uint32_t leading, uint32_t stride) {
  const auto encode = [](uint32_t x) { return static_cast<uint64_t>((x & 0x3FFFF) >> 4); };
  return encode(mma::SharedAddress(start)) | encode(leading) << 16 | encode(stride) << 32 |
         uint64_t{1} << 62;
}

// Columns [16 kk, 16 kk + 16) of a swizzled tile of `rows` rows as a K-major operand (its rows M or
// N). The leading offset is unused in this layout (1 by the ISA's convention).
inline __device__ uint64_t SwizzledKMajor(const bf16* tile, int rows, int kk) {
  return Descriptor(tile + (kk / 4) * rows * 64 + (kk % 4) * 16, 16, 1024);
}

// Rows [16 kk, 16 kk + 16) of a swizzled tile of `rows` rows as an MN-major operand (its columns
// M or N, at most one panel's worth per descriptor's atom, the next panel `rows` * 128 bytes on).
inline __device__ uint64_t SwizzledMnMajor(const bf16* tile, int rows, int kk) {
  return Descriptor(tile + kk * 16 * 64, rows * 128, 1024);
}

// Orders this warpgroup's earlier register and shared accesses before its next wgmma.
inline __device__ void Fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
// Closes the wgmmas issued since the last commit into a group.
inline __device__ void Commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most kPending committed groups are in flight.
template <int kPending>
__device__ void Wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Makes this thread's generic-proxy writes to shared memory (st.shared, cp.async) visible to the
// async proxy that wgmma reads through; a barrier then publishes them to the warpgroup.
inline __device__ void FenceSharedForAsync() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Keeps the compiler from moving reads of an accumulator above the Wait that completes it, or
// writes of an operand (an accumulator rescaled, register A packed) below the Fence that must
// follow them.
template <int kTiles>
__device__ void FenceOperands(float (&d)[kTiles][4]) {
#pragma unroll
  for (int n = 0; n < kTiles; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[n][e])::"memory");
  }
}
template <int kTiles>
__device__ void FenceOperands(uint32_t (&a)[kTiles][4]) {
#pragma unroll
  for (int n = 0; n < kTiles; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(a[n][e])::"memory");
  }
}

#define ABLATE_WGMMA_D4(i) "+f"(d[i][0]), "+f"(d[i][1]), "+f"(d[i][2]), "+f"(d[i][3])

// d (+)= A B for m64n64k16, A and B in shared memory: A K-major, B K-major (kTransB = 0) or
// N-major (1); accumulate = false overwrites d. Asynchronous: read d after Commit and Wait.
template <int kTransB>
__device__ void MmaShared64(float (&d)[8][4], uint64_t a, uint64_t b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, %35;\n}\n"
      : ABLATE_WGMMA_D4(0), ABLATE_WGMMA_D4(1), ABLATE_WGMMA_D4(2), ABLATE_WGMMA_D4(3),
        ABLATE_WGMMA_D4(4), ABLATE_WGMMA_D4(5), ABLATE_WGMMA_D4(6), ABLATE_WGMMA_D4(7)
      : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)), "n"(kTransB));
}

// d (+)= A B for m64n64k16, A in registers (this warp's 16 rows, mma.m16n8k16's A fragment) and B
// K-major in shared memory; accumulate = false overwrites d. Asynchronous, and A's registers are
// read until the Wait.
inline __device__ void MmaRegisterA64(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b,
                                      bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
      : ABLATE_WGMMA_D4(0), ABLATE_WGMMA_D4(1), ABLATE_WGMMA_D4(2), ABLATE_WGMMA_D4(3),
        ABLATE_WGMMA_D4(4), ABLATE_WGMMA_D4(5), ABLATE_WGMMA_D4(6), ABLATE_WGMMA_D4(7)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(static_cast<int>(accumulate)));
}

// d += A B for m64n128k16, A in registers (this warp's 16 rows, mma.m16n8k16's A fragment) and B
// N-major in shared memory. Asynchronous, and A's registers are read until the Wait.
inline __device__ void MmaRegisterA128(float (&d)[16][4], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, "
      "%45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, "
      "%63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : ABLATE_WGMMA_D4(0), ABLATE_WGMMA_D4(1), ABLATE_WGMMA_D4(2), ABLATE_WGMMA_D4(3),
        ABLATE_WGMMA_D4(4), ABLATE_WGMMA_D4(5), ABLATE_WGMMA_D4(6), ABLATE_WGMMA_D4(7),
        ABLATE_WGMMA_D4(8), ABLATE_WGMMA_D4(9), ABLATE_WGMMA_D4(10), ABLATE_WGMMA_D4(11),
        ABLATE_WGMMA_D4(12), ABLATE_WGMMA_D4(13), ABLATE_WGMMA_D4(14), ABLATE_WGMMA_D4(15)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}

#undef ABLATE_WGMMA_D4

}  // namespace ablate::kernels::wgmma

#endif  // ABLATE_TRAINER_LIB_KERNELS_WGMMA_BF16_CUH_
