// The one-pass forward by key block's row state (nsa_selected.h's row_shift, row_sum and
// row_max), as every kernel that writes or reads it takes it: the by-block pass and its finish
// (nsa_forward_by_block.cu) and the window's forward, which starts the rows of the queries'
// local blocks (nsa_window.h's local_shift). Device code only.
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_ROW_SHIFT_CUH_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_ROW_SHIFT_CUH_

#include <cmath>

#include "trainer_lib/kernels/exp2.cuh"

namespace ablate::kernels::nsa {

// A row's shift in log2 units; 0 for one not finite (the compressed branch's -inf for queries
// that see no compressed block).
inline __device__ float Shift2(float m) { return isfinite(m) ? m * kLog2e : 0.0f; }

// A float's order as an int's, for atomicMax: non-negative floats order as their bits, negative
// ones reversed (the low 31 bits flipped). -inf is 0x807fffff.
inline __device__ int OrderedInt(float x) {
  const int i = __float_as_int(x);
  return i >= 0 ? i : i ^ 0x7fffffff;
}
inline __device__ float OrderedFloat(int i) { return __int_as_float(i >= 0 ? i : i ^ 0x7fffffff); }

}  // namespace ablate::kernels::nsa

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_ROW_SHIFT_CUH_
