// NSA's gated sum of its branches (Yuan et al., 2025, eq. 5) as two CUDA kernels, forward and
// backward, for trainer_lib/attention/nsa_gate.h's node (the math and the reasons are there):
//
//   forward:   o[r] = sum_c g[r][c] o_c[r]
//   backward:  d o_c[r] = g[r][c] do[r],   d g[r][c] = sum_d do[r][d] o_c[r][d]
//
// over rows r = (b, h, t) of D elements, in fp32 from bf16 inputs, results rounded once. A team
// of lanes per row (a power of two up to a warp) reads it 16 bytes a lane where D and the
// pointers allow (bf16 pairs otherwise), a warp taking 32 / team rows at once, so that each pass
// reads and writes every tensor once with many loads in flight: the eager chunks they replace
// cast, multiply, add and copy through fp32 temporaries, about 15 passes over [B, H, T, D] per
// layer between forward and backward.
//
// Shapes (contiguous, 4-byte aligned, 64-bit offsets): gates [rows, C] bf16 or fp32; each branch,
// out, d_out and each branch gradient [rows, D] bf16; d_gates [rows, C] fp32, its columns past
// the branches written 0. Limits: 1 <= branches <= min(C, kNsaGateMaxBranches), C <= 32, D even.
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_GATE_H_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_GATE_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ablate::kernels {

inline constexpr int kNsaGateMaxBranches = 3;
inline constexpr int kNsaGateMaxRuns = 16;

struct NsaGateParams {
  int64_t rows = 0;         // B * H * T
  int64_t head_dim = 0;     // D
  int64_t branches = 0;     // branches summed
  int64_t gate_cols = 0;    // C, the gates' last dimension
  bool gates_fp32 = false;  // gates in fp32, else bf16
  const void* gates = nullptr;
  const void* branch[kNsaGateMaxBranches] = {};
  // Forward writes out.
  void* out = nullptr;
  // Backward reads d_out, writes d_branch and d_gates. A null d_branch[c] is not written: a
  // branch that takes do and g_c itself needs only d_gates' column c, which is rowsum(do o_c).
  const void* d_out = nullptr;
  void* d_branch[kNsaGateMaxBranches] = {};
  float* d_gates = nullptr;
  // Branch 0 (and its gradient) as the compressed branch's fused attention returns it, when
  // fold = l > 0: folded (trainer_lib/attention/nsa_fold.h) in runs of run_heads whole heads (the
  // last run may hold fewer), run j [B, heads_j l, T / l, D] at folded[j] (d_folded[j]). Row
  // (b, h, t) is row (t + 1) / l - 1 of batch b's folded head (h mod run_heads) l + (t + 1) mod l
  // in run h / run_heads; rows t < l - 1 have none (read as 0, no gradient written). branch[0] and
  // d_branch[0] are then unused. Saves the copies that unfold o_cmp and fold its gradient.
  int64_t fold = 0;
  int64_t heads = 0;    // H
  int64_t seq_len = 0;  // T
  int64_t run_heads = 0;
  int64_t runs = 0;
  const void* folded[kNsaGateMaxRuns] = {};
  void* d_folded[kNsaGateMaxRuns] = {};
};

// Launch on `stream`; return the launch's error (cudaSuccess when it started).
// cudaErrorInvalidValue for sizes or pointers outside the limits above.
cudaError_t NsaGateForward(const NsaGateParams& p, cudaStream_t stream);
cudaError_t NsaGateBackward(const NsaGateParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_GATE_H_
