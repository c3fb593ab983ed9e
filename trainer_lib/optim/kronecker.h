// Kronecker-factored preconditioner pieces shared by Shampoo and SOAP (Gupta et al. 2018,
// arXiv:1802.09568; Vyas et al. 2025, arXiv:2409.11321): one factor per dimension of a
// parameter, the exponential average of the gradient's outer product over every other
// dimension, and its eigenbasis.
//
// A parameter of shape [n_0, ..., n_{k-1}] has a list of k factors, entry d an [n_d, n_d]
// float tensor or an undefined tensor for a dimension left unpreconditioned (by SOAP's rule,
// common/optimizer_state.h's SoapPreconditions: larger than max_precond_dim, or the one
// dimension of a vector unless precondition_1d). The operations
// below follow, op for op, the SOAP code of pytorch-optimizer 4.1.0 (a port of the paper's),
// so that LibTorch and that reference round alike.
//
// Refreshes take the work of many parameters at once and, on CUDA, batch the factors of one
// size into one stacked call of torch.linalg (eigh, QR), since on a GPU a few large calls cost
// far less than one small call per factor (on the CPU one call per factor, see kronecker.cc).
// The per-step products (factor statistics, projections) likewise take a stack of same-shaped
// parameters as batched matmuls. Stateless; safe from any thread on distinct tensors.
#ifndef ABLATE_TRAINER_LIB_OPTIM_KRONECKER_H_
#define ABLATE_TRAINER_LIB_OPTIM_KRONECKER_H_

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "trainer_lib/optim/matrix_roots.h"

namespace ablate::train {

// Zero factors for a parameter of `shape` (float32 on `options`' device), [n_d, n_d] for each
// dimension d that SoapPreconditions (common/optimizer_state.h).
std::vector<at::Tensor> ZeroFactors(at::IntArrayRef shape, const at::TensorOptions& options,
                                    int64_t max_precond_dim, bool precondition_1d);

// factor_d <- lerp(factor_d, contraction of grad with itself over every dimension but d,
// 1 - beta) for each defined factor.
void AccumulateFactors(const at::Tensor& grad, double beta, std::vector<at::Tensor>& factors);

// The same for a stack of same-shaped gradients grads [B, n_0, ..., n_{k-1}] and the factor
// lists of its B parameters (equal in which entries are defined), the contractions of each
// dimension taken as one batched matmul; each slice's result is the one above, bit for bit on
// the CPU for parameters of one and two dimensions.
void AccumulateFactors(const at::Tensor& grads, double beta,
                       const std::vector<std::vector<at::Tensor>*>& factors);

// x contracted with each basis in turn along its first axis, so the result is in the same
// layout as x: forward computes x ×_d Q_d^T (into the eigenbasis), backward x ×_d Q_d. An
// undefined basis rotates the axis to the back without change.
at::Tensor Project(const at::Tensor& x, const std::vector<at::Tensor>& bases, bool backward);

// Project for a stack of same-shaped tensors xs [B, n_0, ..., n_{k-1}] with their bases stacked
// per dimension (entry d [B, n_d, n_d], or undefined for all B): one batched matmul per
// dimension, each slice equal to Project of that slice with its own bases (bit for bit on the
// CPU for one and two dimensions).
at::Tensor ProjectBatch(const at::Tensor& xs, const std::vector<at::Tensor>& bases,
                        bool backward);

// Work for one parameter's refresh: its factors, its bases (replaced) and, for the QR
// refresh, its second moment in the eigenbasis, whose axes follow the bases' new column order.
struct Refresh {
  const std::vector<at::Tensor>* factors;
  std::vector<at::Tensor>* bases;
  at::Tensor* exp_avg_sq;  // null for the eigh refresh
};

// Bases from a full symmetric eigendecomposition of each factor (plus 1e-30 I, as the
// reference), columns by descending eigenvalue. SOAP uses it at a parameter's first step.
void EighBases(const std::vector<Refresh>& work);

// One step of orthogonal iteration: columns of Q sorted by descending estimated eigenvalue
// diag(Q^T F Q), then Q <- qr(F Q) in float32; exp_avg_sq permuted along the same axis. On the
// CPU qr is Householder's, as the reference's; on CUDA it is CholeskyQr below, whose Q differs
// from Householder's only in the signs of columns, which SOAP's update does not see (each
// column projects in and back out).
void PowerIterationBases(const std::vector<Refresh>& work);

// The Q of a QR decomposition of each matrix of a stack a [B, m, n] (m >= n, float32 or
// float64), with R's diagonal positive: Cholesky QR of the column-scaled matrix in float64
// (Yamazaki, Tomov and Dongarra 2015, "Mixed-precision Cholesky QR factorization"). Scaling
// the columns to unit norm leaves Q unchanged and takes the spread of their norms (F's
// eigenvalues, once Q is near F's eigenbasis) out of the Gram matrix's condition. A member whose
// Cholesky factorization fails (a rank-deficient matrix) or whose Q is not orthonormal to 1e-6
// is redone by Householder QR. On an H200 it takes 0.2, 1.4 and 4.8 ms per matrix at n =
// 1,024, 2,048 and 3,072 where cuSOLVER's Householder QR takes 4.9, 10.8 and 18.6
// (docs/benchmarks.md). Returns a's dtype. The stack is done in consecutive slices of at most
// `max_slice_elements` elements (at least one matrix), so that its float64 temporaries (about
// six live at once) stay within a few of the float32 batches that the memory plan budgets for an
// optimizer step (common/model_math.h) however large the stack.
at::Tensor CholeskyQr(const at::Tensor& a, int64_t max_slice_elements = int64_t{1} << 26);

// Shampoo's inverse roots: bases_d <- F_d^(-1/(2k)) for each defined factor, k the number of
// defined factors of that parameter, as Q |Lambda|^(-1/(2k)) Q^T from a symmetric
// eigendecomposition (for a positive semi-definite F the same as the SVD U S^(-1/(2k)) V^T).
// exp_avg_sq is not used.
void InverseRoots(const std::vector<Refresh>& work);

// The same roots by the coupled Newton iteration (matrix_roots.h), each of F_d plus its ridge
// options.ridge_epsilon lambda_max(F_d) I, as the reference's use_svd=False; batched as above
// (on the CPU one call per factor, so that it rounds as the reference's loop over factors).
void NewtonInverseRoots(const std::vector<Refresh>& work, const NewtonRootOptions& options);

// Indexes of `mats` grouped by (sizes, dtype, device), in first-seen order, so that each group
// can be stacked into one batched call. A group holds at most `max_elements` elements in all
// (at least one matrix): a batched eigendecomposition makes several stack-sized temporaries,
// and the 9,728-sized factors of Qwen3-4B's 36 layers, stacked whole, took 40 GiB at once.
std::vector<std::vector<size_t>> GroupBySize(const std::vector<at::Tensor>& mats,
                                             int64_t max_elements = int64_t{1} << 28);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_KRONECKER_H_
