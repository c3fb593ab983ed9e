#include "trainer_lib/optim/kronecker.h"

#include <algorithm>
#include <utility>

#include <torch/torch.h>

#include "common/optimizer_state.h"

namespace ablate::train {
namespace {

// One (parameter, dimension) of a refresh: where its factor and basis live.
struct FactorRef {
  const Refresh* refresh;
  size_t dim;
};

std::vector<FactorRef> DefinedFactors(const std::vector<Refresh>& work) {
  std::vector<FactorRef> refs;
  for (const Refresh& r : work) {
    for (size_t d = 0; d < r.factors->size(); ++d) {
      if ((*r.factors)[d].defined()) refs.push_back({&r, d});
    }
  }
  return refs;
}

// Runs `fn` on each group of same-sized factors of `refs`, stacked into [B, n, n]. On the CPU
// each factor is a group of its own: LAPACK's batched eigh and QR there round the second and
// later matrices of a batch differently from a lone one, and SOAP amplifies such differences
// in the null space of a rank-deficient factor; one call per matrix costs the CPU nothing
// and keeps it equal to the reference, op for op.
template <typename Fn>
void ForEachStack(const std::vector<FactorRef>& refs, Fn fn) {
  std::vector<at::Tensor> mats;
  mats.reserve(refs.size());
  for (const FactorRef& ref : refs) mats.push_back((*ref.refresh->factors)[ref.dim]);
  std::vector<std::vector<size_t>> groups;
  if (!mats.empty() && mats.front().is_cuda()) {
    groups = GroupBySize(mats);
  } else {
    for (size_t i = 0; i < mats.size(); ++i) groups.push_back({i});
  }
  for (const std::vector<size_t>& group : groups) {
    std::vector<at::Tensor> stacked;
    std::vector<FactorRef> members;
    for (size_t i : group) {
      stacked.push_back(mats[i]);
      members.push_back(refs[i]);
    }
    fn(torch::stack(stacked), members);
  }
}

}  // namespace

std::vector<at::Tensor> ZeroFactors(at::IntArrayRef shape, const at::TensorOptions& options,
                                    int64_t max_precond_dim, bool precondition_1d) {
  std::vector<at::Tensor> factors(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (SoapPreconditions(shape, d, max_precond_dim, precondition_1d)) {
      factors[d] = torch::zeros({shape[d], shape[d]}, options.dtype(torch::kFloat32));
    }
  }
  return factors;
}

void AccumulateFactors(const at::Tensor& grad, double beta, std::vector<at::Tensor>& factors) {
  AccumulateFactors(grad.unsqueeze(0), beta, {&factors});
}

void AccumulateFactors(const at::Tensor& grads, double beta,
                       const std::vector<std::vector<at::Tensor>*>& factors) {
  const int64_t batch = grads.size(0);
  for (int64_t d = 0; d + 1 < grads.dim(); ++d) {
    if (!(*factors.front())[d].defined()) continue;
    // [B, n_d, rest]: dimension d first, the others flattened, as torch.tensordot lays them out.
    const at::Tensor rows = grads.movedim(d + 1, 1).reshape({batch, grads.size(d + 1), -1});
    const at::Tensor outer = torch::bmm(rows, rows.mT());
    std::vector<at::Tensor> targets;
    for (std::vector<at::Tensor>* f : factors) targets.push_back((*f)[d]);
    torch::_foreach_lerp_(targets, outer.to(targets.front().scalar_type()).unbind(0),
                          1.0 - beta);
  }
}

at::Tensor Project(const at::Tensor& x, const std::vector<at::Tensor>& bases, bool backward) {
  std::vector<at::Tensor> stacked;
  for (const at::Tensor& q : bases) stacked.push_back(q.defined() ? q.unsqueeze(0) : q);
  return ProjectBatch(x.unsqueeze(0), stacked, backward).squeeze(0);
}

at::Tensor ProjectBatch(const at::Tensor& xs, const std::vector<at::Tensor>& bases,
                        bool backward) {
  const int64_t batch = xs.size(0);
  at::Tensor y = xs;
  for (const at::Tensor& q : bases) {
    if (!q.defined()) {
      y = y.movedim(1, -1);
      continue;
    }
    // Contract the first axis: [B, rest, n] = [B, n, rest]^T Q (forward) or Q^T (backward).
    std::vector<int64_t> shape = y.sizes().vec();
    shape.erase(shape.begin() + 1);
    shape.push_back(q.size(-1));
    const at::Tensor rows = y.reshape({batch, y.size(1), -1}).mT();
    y = torch::bmm(rows, backward ? q.mT() : q).reshape(shape);
  }
  return y;
}

void EighBases(const std::vector<Refresh>& work) {
  ForEachStack(DefinedFactors(work), [](const at::Tensor& f, const std::vector<FactorRef>& refs) {
    const int64_t n = f.size(-1);
    const at::Tensor shifted = f + 1e-30 * torch::eye(n, f.options());
    at::Tensor q;
    try {
      q = std::get<1>(torch::linalg_eigh(shifted));
    } catch (const c10::Error&) {
      // Ill-conditioned float32 factors can fail to converge; float64 does, as the reference.
      q = std::get<1>(torch::linalg_eigh(shifted.to(torch::kFloat64))).to(f.scalar_type());
    }
    q = torch::flip(q, {-1});  // descending eigenvalues
    for (size_t b = 0; b < refs.size(); ++b) {
      (*refs[b].refresh->bases)[refs[b].dim] = q[static_cast<int64_t>(b)].clone();
    }
  });
}

void PowerIterationBases(const std::vector<Refresh>& work) {
  ForEachStack(DefinedFactors(work), [](const at::Tensor& f, const std::vector<FactorRef>& refs) {
    std::vector<at::Tensor> old;
    for (const FactorRef& ref : refs) old.push_back((*ref.refresh->bases)[ref.dim]);
    const at::Tensor q = torch::stack(old);                     // [B, n, n]
    const at::Tensor product = torch::matmul(f, q);             // F Q
    std::vector<at::Tensor> estimates;  // diag(Q^T F Q) per matrix, summed as the reference
    for (int64_t b = 0; b < q.size(0); ++b) estimates.push_back((q[b] * product[b]).sum(0));
    const at::Tensor estimate = torch::stack(estimates);        // [B, n]
    const at::Tensor order = torch::argsort(estimate, -1, /*descending=*/true);
    const at::Tensor power = product.gather(2, order.unsqueeze(1).expand_as(product));
    const at::Tensor q_new = power.is_cuda()
                                 ? CholeskyQr(power.to(torch::kFloat32))
                                 : std::get<0>(torch::linalg_qr(power.to(torch::kFloat32)));
    for (size_t b = 0; b < refs.size(); ++b) {
      const auto i = static_cast<int64_t>(b);
      const Refresh& r = *refs[b].refresh;
      const auto d = static_cast<int64_t>(refs[b].dim);
      (*r.bases)[refs[b].dim] = q_new[i].to(f.scalar_type()).clone();
      *r.exp_avg_sq = r.exp_avg_sq->index_select(d, order[i]);
    }
  });
}

namespace {

at::Tensor CholeskyQrSlice(const at::Tensor& a) {
  const at::Tensor a64 = a.to(torch::kFloat64);
  const at::Tensor norms = at::linalg_vector_norm(a64, 2, {-2}, /*keepdim=*/true);
  const at::Tensor scaled = a64 / norms.clamp_min(1e-300);
  const auto [l, info] = torch::linalg_cholesky_ex(torch::matmul(scaled.mT(), scaled));
  // scaled = Q L^T, so Q = scaled L^-T.
  const at::Tensor q64 =
      torch::linalg_solve_triangular(l.mT(), scaled, /*upper=*/true, /*left=*/false);
  const at::Tensor eye = torch::eye(a.size(-1), q64.options());
  const at::Tensor error = (torch::matmul(q64.mT(), q64) - eye).abs().amax({-2, -1});
  // A failed factorization leaves NaN in its member's Q, which no comparison with 1e-6 catches.
  const at::Tensor failed = (info != 0).logical_or(error.isnan()).logical_or(error > 1e-6);
  at::Tensor q = q64.to(a.scalar_type());
  if (failed.any().item<bool>()) {
    const at::Tensor redo = failed.nonzero().squeeze(1);
    q.index_copy_(0, redo, std::get<0>(torch::linalg_qr(a.index_select(0, redo))));
  }
  return q;
}

}  // namespace

at::Tensor CholeskyQr(const at::Tensor& a, int64_t max_slice_elements) {
  const int64_t per_slice = std::max<int64_t>(1, max_slice_elements / (a.size(-1) * a.size(-2)));
  std::vector<at::Tensor> slices;
  for (int64_t first = 0; first < a.size(0); first += per_slice) {
    slices.push_back(CholeskyQrSlice(a.slice(0, first, first + per_slice)));
  }
  return slices.size() == 1 ? slices.front() : torch::cat(slices);
}

namespace {

// p = 2k for each member, k the number of defined factors of its parameter.
std::vector<int64_t> RootOrders(const std::vector<FactorRef>& refs) {
  std::vector<int64_t> orders;
  for (const FactorRef& ref : refs) {
    int64_t k = 0;
    for (const at::Tensor& factor : *ref.refresh->factors) k += factor.defined() ? 1 : 0;
    orders.push_back(2 * k);
  }
  return orders;
}

}  // namespace

void InverseRoots(const std::vector<Refresh>& work) {
  ForEachStack(DefinedFactors(work), [](const at::Tensor& f, const std::vector<FactorRef>& refs) {
    std::vector<double> exponents;
    for (int64_t p : RootOrders(refs)) exponents.push_back(-1.0 / static_cast<double>(p));
    const auto [lambda, q] = torch::linalg_eigh(f);  // [B, n], [B, n, n]
    const at::Tensor power =
        torch::tensor(exponents, lambda.options()).unsqueeze(1);  // [B, 1]
    const at::Tensor scale = lambda.abs().pow(power);
    const at::Tensor roots = torch::matmul(q * scale.unsqueeze(1), q.transpose(1, 2));
    for (size_t b = 0; b < refs.size(); ++b) {
      (*refs[b].refresh->bases)[refs[b].dim] = roots[static_cast<int64_t>(b)].clone();
    }
  });
}

void NewtonInverseRoots(const std::vector<Refresh>& work, const NewtonRootOptions& options) {
  ForEachStack(DefinedFactors(work), [&](const at::Tensor& f, const std::vector<FactorRef>& refs) {
    const std::vector<int64_t> orders = RootOrders(refs);
    // One size can hold factors of different orders (a matrix's and a 3-D tensor's).
    std::vector<int64_t> distinct = orders;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    for (int64_t p : distinct) {
      std::vector<int64_t> members;
      for (size_t b = 0; b < refs.size(); ++b) {
        if (orders[b] == p) members.push_back(static_cast<int64_t>(b));
      }
      const at::Tensor stack =
          distinct.size() == 1
              ? f
              : f.index_select(0, torch::tensor(members, torch::kLong).to(f.device()));
      const at::Tensor roots = NewtonInverseRoot(stack, p, options);
      for (size_t j = 0; j < members.size(); ++j) {
        const FactorRef& ref = refs[static_cast<size_t>(members[j])];
        (*ref.refresh->bases)[ref.dim] = roots[static_cast<int64_t>(j)].clone();
      }
    }
  });
}

std::vector<std::vector<size_t>> GroupBySize(const std::vector<at::Tensor>& mats,
                                             int64_t max_elements) {
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < mats.size(); ++i) {
    bool placed = false;
    for (std::vector<size_t>& group : groups) {
      const at::Tensor& first = mats[group.front()];
      const bool full =
          static_cast<int64_t>(group.size() + 1) * first.numel() > max_elements;
      if (!full && first.sizes() == mats[i].sizes() &&
          first.scalar_type() == mats[i].scalar_type() && first.device() == mats[i].device()) {
        group.push_back(i);
        placed = true;
        break;
      }
    }
    if (!placed) groups.push_back({i});
  }
  return groups;
}

}  // namespace ablate::train
