#include "trainer_lib/attention/nsa_gate.h"

#include <torch/torch.h>

namespace ablate::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class GateCombine : public torch::autograd::Function<GateCombine> {
 public:
  // The branches travel as a TensorList: autograd gives each of its tensors a gradient slot (a
  // std::vector argument would count as one value without gradient).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gates,
                               at::TensorList branches, at::ScalarType dtype) {
    variable_list saved = {gates};
    saved.insert(saved.end(), branches.begin(), branches.end());
    ctx->save_for_backward(saved);
    torch::Tensor out;
    for (size_t c = 0; c < branches.size(); ++c) {
      torch::Tensor term = Gate(gates, c) * branches[c].to(torch::kFloat32);
      out = out.defined() ? out + term : term;
    }
    return out.to(dtype);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_output) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& gates = saved[0];
    const torch::Tensor d_o = grad_output[0].to(torch::kFloat32);
    torch::Tensor d_gates = torch::zeros(gates.sizes(), d_o.options());
    variable_list grads = {torch::Tensor()};  // gates' slot, filled below
    for (size_t c = 0; c + 1 < saved.size(); ++c) {
      const torch::Tensor& branch = saved[c + 1];
      grads.push_back((Gate(gates, c) * d_o).to(branch.scalar_type()));
      d_gates.select(-1, static_cast<int64_t>(c))
          .copy_((d_o * branch.to(torch::kFloat32)).sum(-1));
    }
    grads[0] = d_gates.to(gates.scalar_type());
    grads.push_back(torch::Tensor());  // dtype
    return grads;
  }

 private:
  // gates[..., c] as an fp32 [B, H, T, 1] column.
  static torch::Tensor Gate(const torch::Tensor& gates, size_t c) {
    return gates.select(-1, static_cast<int64_t>(c)).unsqueeze(-1).to(torch::kFloat32);
  }
};

}  // namespace

at::Tensor NsaGateCombine(const at::Tensor& gates, const std::vector<at::Tensor>& branches,
                          at::ScalarType dtype) {
  TORCH_CHECK(gates.dim() == 4 && !branches.empty() &&
                  static_cast<int64_t>(branches.size()) <= gates.size(3),
              "nsa gates: ", gates.sizes(), " must be [B, H, T, C] with C >= ", branches.size(),
              " branches");
  for (const at::Tensor& b : branches) {
    TORCH_CHECK(b.dim() == 4 && b.sizes().slice(0, 3) == gates.sizes().slice(0, 3),
                "nsa gates: a branch ", b.sizes(), " does not match the gates ", gates.sizes());
  }
  return GateCombine::apply(gates, at::TensorList(branches), dtype);
}

}  // namespace ablate::train
