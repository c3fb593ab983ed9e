#include "trainer_lib/optim/matrix_roots.h"

#include <limits>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

namespace ablate::train {

namespace {

// Float32 products (no TF32) while it lives; restores the setting it found.
class NoTf32 {
 public:
  NoTf32() : was_(at::globalContext().allowTF32CuBLAS()) {
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  ~NoTf32() { at::globalContext().setAllowTF32CuBLAS(was_); }
  NoTf32(const NoTf32&) = delete;
  NoTf32& operator=(const NoTf32&) = delete;

 private:
  bool was_;
};

}  // namespace

at::Tensor MaxEigenvalue(const at::Tensor& f, int64_t iters) {
  TORCH_CHECK(f.dim() == 3 && f.size(1) == f.size(2), "MaxEigenvalue: f must be [B, n, n]");
  // A fixed start, drawn on the CPU so that it is the same on every device.
  const at::Generator start = at::make_generator<at::CPUGeneratorImpl>(/*seed_in=*/0);
  at::Tensor v =
      at::randn({f.size(0), f.size(1), 1}, start, f.options().device(torch::kCPU)).to(f.device());
  const double tiny = f.scalar_type() == torch::kFloat64 ? std::numeric_limits<double>::min()
                                                         : std::numeric_limits<float>::min();
  for (int64_t i = 0; i < iters; ++i) {
    const at::Tensor product = torch::bmm(f, v);
    v = product / at::linalg_vector_norm(product, 2, {1}, /*keepdim=*/true).clamp_min(tiny);
  }
  return (v * torch::bmm(f, v)).sum({1, 2}).clamp_min(1e-16);
}

at::Tensor NewtonInverseRoot(const at::Tensor& f, int64_t p, const NewtonRootOptions& options) {
  TORCH_CHECK(f.dim() == 3 && f.size(1) == f.size(2), "NewtonInverseRoot: f must be [B, n, n]");
  TORCH_CHECK(p >= 1, "NewtonInverseRoot: p < 1");
  const NoTf32 float32_products;
  const double inverse_p = 1.0 / static_cast<double>(p);
  const int64_t n = f.size(-1);
  if (n == 1) return (f + options.ridge_epsilon * f.clamp_min(1e-16)).pow(-inverse_p);
  // Each line is the reference's, in its order of operations (Python's (1 + p) / x is
  // x.reciprocal() * (1 + p); torch.dist(a, b, inf) is max |a - b|).
  const at::Tensor eye = torch::eye(n, f.options());
  const at::Tensor lambda = MaxEigenvalue(f).view({-1, 1, 1});
  const at::Tensor g = f + lambda * options.ridge_epsilon * eye;
  const at::Tensor z =
      (at::linalg_vector_norm(g, 2, {-2, -1}, /*keepdim=*/true) * 2).reciprocal() * (1 + p);
  at::Tensor root = eye * z.pow(inverse_p);
  at::Tensor m = g * z;
  const double alpha = -inverse_p;
  const at::Tensor alpha_identity = eye * (1.0 - alpha);
  at::Tensor prev_error = (m - eye).abs().amax({-2, -1});
  // Members still iterating are root/m/prev_error's rows; `index` says which member each is.
  at::Tensor out = torch::empty_like(f);
  at::Tensor index = torch::arange(f.size(0), f.options().dtype(torch::kLong));
  for (int64_t i = 0; i < options.max_iters && index.numel() > 0; ++i) {
    const at::Tensor step = alpha_identity + alpha * m;
    const at::Tensor new_root = torch::matmul(root, step);
    const at::Tensor new_m = torch::matmul(torch::linalg_matrix_power(step, p), m);
    const at::Tensor error = (new_m - eye).abs().amax({-2, -1});
    const at::Tensor diverged = error > prev_error * options.max_error_ratio;
    const at::Tensor finished = diverged.logical_or(error <= options.error_tolerance);
    if (!finished.any().item<bool>()) {
      root = new_root;
      m = new_m;
      prev_error = error;
      continue;
    }
    // A diverged member keeps the root from before this step, a converged one takes the new.
    const at::Tensor done = finished.nonzero().squeeze(1);
    const at::Tensor result = torch::where(diverged.view({-1, 1, 1}), root, new_root);
    out.index_copy_(0, index.index_select(0, done), result.index_select(0, done));
    const at::Tensor going = finished.logical_not().nonzero().squeeze(1);
    root = new_root.index_select(0, going);
    m = new_m.index_select(0, going);
    prev_error = error.index_select(0, going);
    index = index.index_select(0, going);
  }
  if (index.numel() > 0) out.index_copy_(0, index, root);
  return out;
}

}  // namespace ablate::train
