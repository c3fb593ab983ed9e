#include "trainer_lib/attention/nsa_gate.h"

#include <algorithm>

#include <torch/torch.h>

namespace ablate::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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
    torch::Tensor d_gates = torch::zeros(gates.sizes(), gates.options().dtype(torch::kFloat32));
    variable_list grads = {torch::Tensor()};  // gates' slot, filled below
    for (size_t c = 0; c + 1 < saved.size(); ++c) {
      grads.push_back(torch::empty_like(saved[c + 1], torch::MemoryFormat::Contiguous));
    }
    const int64_t chunk_elements = ctx->saved_data["chunk_elements"].toInt();
    ForEachChunk(d_out, chunk_elements, [&](const torch::indexing::Slice& rows) {
      const torch::Tensor d_o = Rows(d_out, rows).to(torch::kFloat32);
      const torch::Tensor g = Rows(gates, rows);
      for (size_t c = 0; c + 1 < saved.size(); ++c) {
        Rows(grads[c + 1], rows).copy_(Gate(g, c) * d_o);
        Rows(d_gates, rows)
            .select(-1, static_cast<int64_t>(c))
            .copy_((d_o * Rows(saved[c + 1], rows).to(torch::kFloat32)).sum(-1));
      }
    });
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
