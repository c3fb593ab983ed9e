// Tiles of bf16 rows loaded by Hopper's tensor memory accelerator (sm_90: PTX ISA's
// cp.async.bulk.tensor, completing on an mbarrier), for kernels whose tiles are contiguous rows:
// one thread issues a tile's load, where cp.async has every thread issue its 16-byte chunks and
// their address math on the kernel's own chain (the NSA window's dk/dv kernel spent about a sixth
// of its time on those copies: docs/benchmarks.md, "The large kernels at fla's 64K profiled").
// FlashAttention-3's Hopper kernels load their Q, K, V and dO tiles this way.
//
// The tensor map covers x as [B][H][T][128] bf16 (contiguous), its box one 64 x 64 panel of a
// swizzled tile (wgmma_bf16.cuh, "Tiles"): 128-byte rows, TMA's own 128-byte swizzle, which is
// the tiles' (16-byte chunk j of row r at chunk j ^ (r % 8), the panel 1024-byte aligned). Rows
// past T are filled with zeros, as CopyRowsSwizzled does.
//
// Host: EncodeRowTiles builds a map (the driver's encoder found at run time, so that nothing
// links libcuda). Device: a kernel takes its maps as a __grid_constant__ parameter, so that the
// maps' addresses are the parameter space's.
#ifndef ABLATE_TRAINER_LIB_KERNELS_TMA_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_TMA_CUH_

#include <cuda.h>  // CUtensorMap and its enums: types only
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "trainer_lib/kernels/mma_bf16.cuh"

namespace ablate::kernels::tma {

constexpr int kRowElems = 128;  // the rows' elements (the head dim the maps take)
constexpr int kBoxRows = 64;    // a box's rows, and a tile's
constexpr int kPanelElems = 64;
constexpr uint32_t kTileBytes = kBoxRows * kRowElems * 2;  // one [64][128] tile, both panels

// Host: fills *map for x, bf16 [batch, heads, rows, 128] contiguous and 16-byte aligned, its box
// box_rows rows of box_heads heads (one 64-column panel of each): [64 rows] of one head for the
// tiles of contiguous rows, [1 row] of G heads for rows gathered query by query.
// cudaErrorNotSupported where the driver has no encoder (before CUDA 12), cudaErrorInvalidValue
// where it refuses the shape (a stride of 2^40 bytes or more).
inline cudaError_t EncodeRows(CUtensorMap* map, const void* x, int64_t batch, int64_t heads,
                              int64_t rows, int box_rows, int box_heads) {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    const cudaError_t error = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                                               cudaEnableDefault, &found);
    return error == cudaSuccess && found == cudaDriverEntryPointSuccess
               ? reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn)
               : nullptr;
  }();
  if (encode == nullptr) return cudaErrorNotSupported;
  constexpr cuuint64_t kRowBytes = kRowElems * 2;
  const cuuint64_t dims[4] = {kRowElems, static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(batch)};
  const cuuint64_t strides[3] = {kRowBytes, kRowBytes * rows, kRowBytes * rows * heads};
  const cuuint32_t box[4] = {kPanelElems, static_cast<cuuint32_t>(box_rows),
                             static_cast<cuuint32_t>(box_heads), 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  const CUresult result =
      encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, const_cast<void*>(x), dims, strides, box,
             element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
             CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return result == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

// Initializes the `count` mbarriers from bars for one arrival a phase each, and makes them
// visible to the barrier's async proxy. One thread; a barrier of the block before any other
// thread waits on them.
inline __device__ void InitBarriers(uint64_t* bars, int count) {
  for (int i = 0; i < count; ++i) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(mma::SharedAddress(bars + i))
                 : "memory");
  }
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// The phase's one arrival, announcing `bytes` of loads that complete it.
inline __device__ void ExpectBytes(uint64_t* bar, uint32_t bytes) {
  asm volatile(
      "mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(mma::SharedAddress(bar)),
      "r"(bytes)
      : "memory");
}

// Waits until the barrier's phase of parity `parity` (0 for its first, 1 its second, ...) is
// complete; its loads are then visible to this thread and to its wgmmas.
inline __device__ void Wait(uint64_t* bar, uint32_t parity) {
  const uint32_t address = mma::SharedAddress(bar);
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        " selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(address), "r"(parity)
        : "memory");
  } while (done == 0);
}

// Starts loading the map's box at row `row` of head h of sequence b, both 64-column panels, into
// dst (1024-byte aligned) and dst + panel_elems, its bytes completing on bar. One thread.
inline __device__ void LoadBox(__nv_bfloat16* dst, int panel_elems, const CUtensorMap* map, int row,
                               int h, int b, uint64_t* bar) {
#pragma unroll
  for (int panel = 0; panel < kRowElems / kPanelElems; ++panel) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(
            mma::SharedAddress(dst + panel * panel_elems)),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(panel * kPanelElems), "r"(row), "r"(h), "r"(b),
        "r"(mma::SharedAddress(bar))
        : "memory");
  }
}

}  // namespace ablate::kernels::tma

#endif  // ABLATE_TRAINER_LIB_KERNELS_TMA_CUH_
