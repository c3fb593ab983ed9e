// The selected branch alone as an autograd node (nsa_cuda.h's NsaSelectedAttention), on the
// kept forward and backward that the gated node (nsa_sparse.h) calls among its branches.
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "trainer_lib/attention/nsa_cuda.h"

namespace ablate::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class NsaSelectedFunction : public torch::autograd::Function<NsaSelectedFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& key, const torch::Tensor& v,
                               const torch::Tensor& idx, int64_t block_size, int64_t window,
                               const std::optional<torch::Tensor>& row_shift) {
    NsaSelectedSaved s = NsaSelectedForwardKept(q, key, v, idx, block_size, window,
                                                row_shift ? *row_shift : torch::Tensor());
    ctx->save_for_backward(s.Tensors());
    ctx->saved_data["pair_items"] = s.pair_items;
    ctx->saved_data["sizes"] = std::vector<int64_t>{block_size, window};
    ctx->saved_data["dtypes"] = std::vector<int64_t>{static_cast<int64_t>(q.scalar_type()),
                                                     static_cast<int64_t>(key.scalar_type()),
                                                     static_cast<int64_t>(v.scalar_type())};
    return s.o;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    const NsaSelectedSaved s =
        NsaSelectedSaved::FromTensors(ctx->get_saved_variables(),
                                      ctx->saved_data["pair_items"].toIntVector(), sizes[0],
                                      sizes[1]);
    const std::vector<int64_t> dtypes = ctx->saved_data["dtypes"].toIntVector();
    torch::Tensor dq = torch::empty_like(s.q);
    torch::Tensor dk = torch::empty(s.k.sizes(), s.k.options().dtype(torch::kFloat32));
    torch::Tensor dv = torch::empty_like(dk);
    NsaSelectedBackwardKept(s, s.lse, NsaKernelInput(grads[0]), torch::Tensor(), dq, false, dk,
                            dv);
    return {dq.to(static_cast<c10::ScalarType>(dtypes[0])),
            dk.to(static_cast<c10::ScalarType>(dtypes[1])),
            dv.to(static_cast<c10::ScalarType>(dtypes[2])),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

at::Tensor NsaSelectedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& block_idx, int64_t block_size, int64_t window,
                                const at::Tensor& row_shift) {
  // An optional, not an undefined tensor: autograd records every tensor argument's device, and
  // an undefined tensor has none. Without the kernels the forward refuses, as the kept forward
  // does.
  return NsaSelectedFunction::apply(
      q, k, v, block_idx, block_size, window,
      row_shift.defined() ? std::optional<torch::Tensor>(row_shift) : std::nullopt);
}

}  // namespace ablate::train
