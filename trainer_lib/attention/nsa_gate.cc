#include "trainer_lib/attention/nsa_gate.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#ifdef ABLATE_NSA_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "trainer_lib/attention/nsa_cuda.h"
#include "trainer_lib/kernels/nsa_gate.h"
#endif

namespace ablate::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// A branch or gradient the kernels read or write as bf16 pairs, on the gates' device.
bool KernelReads(const torch::Tensor& x, const torch::Tensor& gates) {
  return x.is_cuda() && x.device() == gates.device() && x.scalar_type() == torch::kBFloat16 &&
         x.is_contiguous() && reinterpret_cast<uintptr_t>(x.data_ptr()) % 4 == 0;
}

#ifdef ABLATE_NSA_KERNELS
namespace k = ablate::kernels;
static_assert(kNsaGateMaxFoldedRuns == static_cast<size_t>(k::kNsaGateMaxRuns));

// The kernels' parameters for contiguous gates and the branches; with `folded`, branch 0 is its
// runs and `branches` are branches 1, 2, ...
k::NsaGateParams KernelParams(const torch::Tensor& gates, at::TensorList branches,
                              const NsaFoldedBranch* folded) {
  const int first = folded != nullptr ? 1 : 0;
  k::NsaGateParams p;
  p.rows = gates.size(0) * gates.size(1) * gates.size(2);
  p.head_dim = folded != nullptr ? folded->runs[0].size(3) : branches[0].size(3);
  p.branches = first + static_cast<int64_t>(branches.size());
  p.gate_cols = gates.size(3);
  p.gates_fp32 = gates.scalar_type() == torch::kFloat32;
  p.gates = gates.data_ptr();
  for (size_t c = 0; c < branches.size(); ++c) p.branch[c + first] = branches[c].data_ptr();
  if (folded != nullptr) {
    p.fold = folded->l;
    p.heads = gates.size(1);
    p.seq_len = gates.size(2);
    p.run_heads = folded->runs[0].size(1) / folded->l;
    p.runs = static_cast<int64_t>(folded->runs.size());
    for (size_t j = 0; j < folded->runs.size(); ++j) p.folded[j] = folded->runs[j].data_ptr();
  }
  return p;
}

// TORCH_CHECK that `folded` holds runs of whole heads of `like` ([B, H, T, D]) as nsa_fold.h
// folds them, each contiguous bf16 on the gates' device, all but the last of one size, at most
// kNsaGateMaxRuns.
void CheckFolded(const NsaFoldedBranch& folded, const torch::Tensor& like,
                 const torch::Tensor& gates) {
  const int64_t l = folded.l, h = like.size(1), t = like.size(2);
  TORCH_CHECK(l >= 1 && t >= l && !folded.runs.empty() &&
                  folded.runs.size() <= static_cast<size_t>(k::kNsaGateMaxRuns),
              "nsa gate kernel: ", folded.runs.size(), " folded runs (1 to ",
              k::kNsaGateMaxRuns, ") of l ", l, " for T ", t);
  const int64_t run_heads = folded.runs[0].dim() == 4 ? folded.runs[0].size(1) / l : 0;
  int64_t heads = 0;
  for (size_t j = 0; j < folded.runs.size(); ++j) {
    const torch::Tensor& run = folded.runs[j];
    const int64_t expected = std::min(run_heads, h - heads);
    TORCH_CHECK(KernelReads(run, gates) && run.dim() == 4 && run.size(0) == like.size(0) &&
                    run.size(1) == expected * l && expected >= 1 && run.size(2) == t / l &&
                    run.size(3) == like.size(3),
                "nsa gate kernel: folded run ", j, " ", run.sizes(), " is not [B, ", expected,
                " l, T / l, D] contiguous bf16 for ", like.sizes(), " and l ", l);
    heads += expected;
  }
  TORCH_CHECK(heads == h, "nsa gate kernel: folded runs of ", heads, " heads for H ", h);
}

void Check(cudaError_t error, const char* what) {
  TORCH_CHECK(error == cudaSuccess, "nsa gate kernel (", what, "): ", cudaGetErrorString(error));
}
#endif

// The forward on the kernel where it takes the tensors: writes out, true. False: the eager
// chunks are left to do it.
bool ForwardOnKernel(const torch::Tensor& gates, at::TensorList branches, at::ScalarType dtype,
                     torch::Tensor& out) {
  if (!NsaGateKernelTakes(gates, branches, dtype)) return false;
  NsaGateForwardInto(gates, branches, out);
  return true;
}

// The backward on the kernel where it takes the tensors: writes the branches' gradients
// (grads[1 ..], contiguous, in their dtypes) and d_gates (fp32), true. False: the eager chunks
// are left to do it.
bool BackwardOnKernel(const torch::Tensor& gates, const std::vector<torch::Tensor>& branches,
                      const torch::Tensor& d_out, variable_list& grads, torch::Tensor& d_gates) {
  const torch::Tensor d_o = d_out.contiguous();
  if (!NsaGateKernelTakes(gates, branches, torch::kBFloat16) || !KernelReads(d_o, gates)) {
    return false;
  }
  NsaGateBackwardInto(gates, branches, d_o, at::TensorList(grads).slice(1), d_gates);
  return true;
}

// Calls body(rows) for consecutive slices of positions covering [0, T) of x [B, H, T, D], each
// of about `elements` elements.
template <typename Body>
void ForEachChunk(const torch::Tensor& x, int64_t elements, Body body) {
  const int64_t t = x.size(2);
  const int64_t per_position = std::max<int64_t>(1, x.size(0) * x.size(1) * x.size(3));
  const int64_t chunk = std::max<int64_t>(1, elements / per_position);
  for (int64_t t0 = 0; t0 < t; t0 += chunk) {
    body(torch::indexing::Slice(t0, std::min(t, t0 + chunk)));
  }
}

// gates[..., c] as an fp32 [B, H, Tc, 1] column.
torch::Tensor Gate(const torch::Tensor& gates, size_t c) {
  return gates.select(-1, static_cast<int64_t>(c)).unsqueeze(-1).to(torch::kFloat32);
}

class GateCombine : public torch::autograd::Function<GateCombine> {
 public:
  // The branches travel as a TensorList: autograd gives each of its tensors a gradient slot (a
  // std::vector argument would count as one value without gradient).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gates,
                               at::TensorList branches, at::ScalarType dtype,
                               int64_t chunk_elements) {
    variable_list saved = {gates};
    saved.insert(saved.end(), branches.begin(), branches.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["chunk_elements"] = chunk_elements;
    torch::Tensor out = torch::empty(branches[0].sizes(), branches[0].options().dtype(dtype));
    if (ForwardOnKernel(gates, branches, dtype, out)) return out;
    ForEachChunk(out, chunk_elements, [&](const torch::indexing::Slice& rows) {
      torch::Tensor sum;
      for (size_t c = 0; c < branches.size(); ++c) {
        torch::Tensor term =
            Gate(Rows(gates, rows), c) * Rows(branches[c], rows).to(torch::kFloat32);
        sum = sum.defined() ? sum + term : term;
      }
      Rows(out, rows).copy_(sum);
    });
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_output) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& gates = saved[0];
    const torch::Tensor& d_out = grad_output[0];
    torch::Tensor d_gates = torch::empty(gates.sizes(), gates.options().dtype(torch::kFloat32));
    variable_list grads = {torch::Tensor()};  // gates' slot, filled below
    for (size_t c = 0; c + 1 < saved.size(); ++c) {
      grads.push_back(torch::empty_like(saved[c + 1], torch::MemoryFormat::Contiguous));
    }
    const std::vector<torch::Tensor> branches(saved.begin() + 1, saved.end());
    if (!BackwardOnKernel(gates, branches, d_out, grads, d_gates)) {
      d_gates.zero_();  // a gate without a branch gets 0
      const int64_t chunk_elements = ctx->saved_data["chunk_elements"].toInt();
      ForEachChunk(d_out, chunk_elements, [&](const torch::indexing::Slice& rows) {
        const torch::Tensor d_o = Rows(d_out, rows).to(torch::kFloat32);
        const torch::Tensor g = Rows(gates, rows);
        for (size_t c = 0; c < branches.size(); ++c) {
          Rows(grads[c + 1], rows).copy_(Gate(g, c) * d_o);
          Rows(d_gates, rows)
              .select(-1, static_cast<int64_t>(c))
              .copy_((d_o * Rows(branches[c], rows).to(torch::kFloat32)).sum(-1));
        }
      });
    }
    grads[0] = d_gates.to(gates.scalar_type());
    grads.push_back(torch::Tensor());  // dtype
    grads.push_back(torch::Tensor());  // chunk_elements
    return grads;
  }

 private:
  // x[:, :, rows]: positions `rows` of x [B, H, T, ...].
  static torch::Tensor Rows(const torch::Tensor& x, const torch::indexing::Slice& rows) {
    using torch::indexing::Slice;
    return x.index({Slice(), Slice(), rows});
  }
};

}  // namespace

void NsaGateForwardInto(const at::Tensor& gates, at::TensorList branches, at::Tensor& out,
                        const NsaFoldedBranch* folded) {
#ifdef ABLATE_NSA_KERNELS
  // `out` stands in for a folded branch 0's shape and layout.
  std::vector<at::Tensor> all(branches.begin(), branches.end());
  if (folded != nullptr) all.insert(all.begin(), out);
  TORCH_CHECK(NsaGateKernelTakes(gates, all, torch::kBFloat16) && KernelReads(out, gates) &&
                  out.sizes() == all[0].sizes(),
              "nsa gate kernel: gates ", gates.sizes(), ", branches or out ", out.sizes(),
              " not as the kernels take them (NsaGateKernelTakes)");
  if (folded != nullptr) CheckFolded(*folded, out, gates);
  // The model's gates are a transposed view of their projection; [B, H, T, C] is small to copy.
  const torch::Tensor g = gates.contiguous();
  k::NsaGateParams p = KernelParams(g, branches, folded);
  const c10::cuda::CUDAGuard guard(gates.device());
  p.out = out.data_ptr();
  Check(k::NsaGateForward(p, at::cuda::getCurrentCUDAStream(gates.device().index())), "forward");
#else
  (void)gates, (void)branches, (void)out, (void)folded;
  TORCH_CHECK(false, "nsa: this build has no CUDA kernels");
#endif
}

void NsaGateBackwardInto(const at::Tensor& gates, at::TensorList branches,
                         const at::Tensor& d_out, at::TensorList d_branches, at::Tensor& d_gates,
                         const NsaFoldedBranch* folded, at::TensorList d_folded) {
#ifdef ABLATE_NSA_KERNELS
  std::vector<at::Tensor> all(branches.begin(), branches.end());
  if (folded != nullptr) all.insert(all.begin(), d_out);
  TORCH_CHECK(NsaGateKernelTakes(gates, all, torch::kBFloat16) && KernelReads(d_out, gates) &&
                  d_out.sizes() == all[0].sizes() && d_branches.size() == branches.size() &&
                  d_gates.scalar_type() == torch::kFloat32 && d_gates.is_contiguous() &&
                  d_gates.sizes() == gates.sizes(),
              "nsa gate kernel: gates ", gates.sizes(), ", d_out ", d_out.sizes(),
              ", branches or their gradients not as the kernels take them");
  for (size_t c = 0; c < branches.size(); ++c) {
    TORCH_CHECK(!d_branches[c].defined() || (KernelReads(d_branches[c], gates) &&
                                             d_branches[c].sizes() == branches[c].sizes()),
                "nsa gate kernel: branch ", c, "'s gradient ", d_branches[c].sizes(),
                " must be contiguous bf16 like the branch");
  }
  if (folded != nullptr) {
    CheckFolded(*folded, d_out, gates);
    TORCH_CHECK(d_folded.empty() || d_folded.size() == folded->runs.size(),
                "nsa gate kernel: ", d_folded.size(), " gradients for ", folded->runs.size(),
                " folded runs");
    for (size_t j = 0; j < d_folded.size(); ++j) {
      TORCH_CHECK(KernelReads(d_folded[j], gates) && d_folded[j].sizes() == folded->runs[j].sizes(),
                  "nsa gate kernel: folded run ", j, "'s gradient ", d_folded[j].sizes(),
                  " must be contiguous bf16 like the run");
    }
  }
  const torch::Tensor g = gates.contiguous();
  k::NsaGateParams p = KernelParams(g, branches, folded);
  const c10::cuda::CUDAGuard guard(gates.device());
  p.d_out = d_out.data_ptr();
  const int first = folded != nullptr ? 1 : 0;
  for (size_t c = 0; c < branches.size(); ++c) {
    p.d_branch[c + first] = d_branches[c].defined() ? d_branches[c].data_ptr() : nullptr;
  }
  for (size_t j = 0; j < d_folded.size(); ++j) p.d_folded[j] = d_folded[j].data_ptr();
  p.d_gates = d_gates.data_ptr<float>();
  Check(k::NsaGateBackward(p, at::cuda::getCurrentCUDAStream(gates.device().index())),
        "backward");
#else
  (void)gates, (void)branches, (void)d_out, (void)d_branches, (void)d_gates, (void)folded,
      (void)d_folded;
  TORCH_CHECK(false, "nsa: this build has no CUDA kernels");
#endif
}

bool NsaGateKernelTakes(const at::Tensor& gates, at::TensorList branches, at::ScalarType dtype) {
#ifdef ABLATE_NSA_KERNELS
  if (!NsaKernelsEnabled() || dtype != torch::kBFloat16 || !gates.is_cuda() ||
      gates.dim() != 4 || gates.numel() == 0 ||
      (gates.scalar_type() != torch::kBFloat16 && gates.scalar_type() != torch::kFloat32) ||
      branches.empty() || branches.size() > static_cast<size_t>(k::kNsaGateMaxBranches) ||
      gates.size(3) > 32 || static_cast<int64_t>(branches.size()) > gates.size(3) ||
      branches[0].dim() != 4 || branches[0].size(3) % 2 != 0) {
    return false;
  }
  for (const torch::Tensor& b : branches) {
    if (!KernelReads(b, gates) || b.sizes() != branches[0].sizes()) return false;
  }
  return true;
#else
  (void)gates, (void)branches, (void)dtype;
  return false;
#endif
}

at::Tensor NsaGateCombine(const at::Tensor& gates, const std::vector<at::Tensor>& branches,
                          at::ScalarType dtype, int64_t chunk_elements) {
  TORCH_CHECK(gates.dim() == 4 && !branches.empty() &&
                  static_cast<int64_t>(branches.size()) <= gates.size(3),
              "nsa gates: ", gates.sizes(), " must be [B, H, T, C] with C >= ", branches.size(),
              " branches");
  for (const at::Tensor& b : branches) {
    TORCH_CHECK(b.dim() == 4 && b.sizes().slice(0, 3) == gates.sizes().slice(0, 3),
                "nsa gates: a branch ", b.sizes(), " does not match the gates ", gates.sizes());
  }
  return GateCombine::apply(gates, at::TensorList(branches), dtype, chunk_elements);
}

}  // namespace ablate::train
