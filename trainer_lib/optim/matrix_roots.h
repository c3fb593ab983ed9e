// Inverse p-th roots of symmetric positive semi-definite matrices by matrix products alone, for
// Shampoo's preconditioners: the coupled Newton iteration of Guo and Higham, "A Schur-Newton
// Method for the Matrix p-th Root and its Inverse" (SIAM J. Matrix Anal. Appl., 2006), as
// pytorch-optimizer 4.1.0's compute_power_schur_newton (a port of Anil et al.'s Scalable
// Shampoo, arXiv:2002.09018) computes it for one matrix, op for op, here over a stack:
//
//   lambda = power iteration's estimate of F's largest eigenvalue (100 iterations, as
//            the reference's power_iteration, clamped below at 1e-16)
//   G = F + (lambda ridge_epsilon) I
//   z = (1 + p) / (2 ||G||_F);  X_0 = z^(1/p) I;  M_0 = z G;  e_0 = max|M_0 - I|
//   for i = 1 .. max_iters:
//     T = (1 + 1/p) I - M_{i-1} / p;  X_i = X_{i-1} T;  M_i = T^p M_{i-1};  e_i = max|M_i - I|
//     diverged: e_i > max_error_ratio e_{i-1} -> X_{i-1};  converged: e_i <= error_tolerance -> X_i
//   after max_iters: X_max_iters
// M_i = X_i^p G throughout, so M -> I takes X to G^(-1/p). A 1x1 matrix gives
// (g + ridge_epsilon max(g, 1e-16))^(-1/p), as the reference.
//
// A GPU runs the products of a stack as one batched matmul each. Each member stops where the
// reference's loop would stop for that matrix alone: a member that converged or diverged leaves
// the stack and keeps its result, while the others go on, so each member's result is the
// reference's for that matrix (to the rounding of a batched against a single matmul). The power
// iteration starts from a fixed pseudo-random vector where the reference draws torch.randn from
// the global generator: lambda only scales the ridge, and 100 iterations make it the largest
// eigenvalue to far within the ridge's 1e-6, whatever the start. The host reads one flag per
// iteration.
//
// The products run in float32 even where TF32 is allowed (the flag is set off for the call and
// restored, so a thread that multiplies on CUDA meanwhile sees it off too): the stopping test's
// 1e-3 is near TF32's rounding. On an H200 with TF32 products, well-conditioned factors never
// reached it (100 iterations, the result 5e-3 from float32's) and factors of condition 1e6
// stopped as diverged after 13, 40% from float32's result.
//
// Cost, measured on an H200 with this algorithm in PyTorch over Qwen3-0.6B's 392 factors
// (1,024 to 3,072; stacks of at most 2^28 elements): 5.2 s for factors like optimizer_benchmark's
// (8 to 10 iterations) and 9.9 s for eigenvalues spread over 1e-6..1 (18 to 19), where batched
// eigh took 8.5 and 9.4 s: four float32 products per iteration, at about 48 TFLOP/s.
#ifndef ABLATE_TRAINER_LIB_OPTIM_MATRIX_ROOTS_H_
#define ABLATE_TRAINER_LIB_OPTIM_MATRIX_ROOTS_H_

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace ablate::train {

// The reference's defaults; ScalableShampoo passes only ridge_epsilon (its matrix_eps).
struct NewtonRootOptions {
  int64_t max_iters = 100;
  double error_tolerance = 1e-3;
  double ridge_epsilon = 1e-6;
  double max_error_ratio = 1.2;
};

// G^(-1/p) for each member of f [B, n, n] (float32 or float64, symmetric positive
// semi-definite), G the member plus its ridge as above; returns [B, n, n] in f's dtype. p >= 1.
at::Tensor NewtonInverseRoot(const at::Tensor& f, int64_t p, const NewtonRootOptions& options);

// The largest eigenvalue of each member of f [B, n, n] by power iteration, as the reference's
// power_iteration: `iters` normalized products from a fixed start, then v^T F v, clamped below
// at 1e-16. Returns [B] in f's dtype.
at::Tensor MaxEigenvalue(const at::Tensor& f, int64_t iters = 100);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_MATRIX_ROOTS_H_
