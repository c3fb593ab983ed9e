#include "trainer_lib/model/recompute.h"

#include <utility>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

using Fn = std::function<torch::Tensor(const torch::Tensor&)>;

// What backward needs beyond the input: the function and the autocast state to rerun it in.
struct Rerun : torch::CustomClassHolder {
  Rerun(Fn f, c10::DeviceType d, bool autocast, at::ScalarType dtype)
      : fn(std::move(f)), device(d), autocast_enabled(autocast), autocast_dtype(dtype) {}
  Fn fn;
  c10::DeviceType device;
  bool autocast_enabled;
  at::ScalarType autocast_dtype;
};

class Recompute : public torch::autograd::Function<Recompute> {
 public:
  // params travel as a TensorList: one gradient slot each.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               Fn fn, bool offload, at::TensorList params) {
    const c10::DeviceType device = x.device().type();
    ctx->saved_data["rerun"] = c10::IValue::make_capsule(c10::make_intrusive<Rerun>(
        fn, device, at::autocast::is_autocast_enabled(device),
        at::autocast::get_autocast_dtype(device)));
    ctx->saved_data["params"] = params.vec();
    if (offload) {
      torch::Tensor host = torch::empty(
          x.sizes(), x.options().device(torch::kCPU).pinned_memory(x.is_cuda()));
      host.copy_(x, /*non_blocking=*/x.is_cuda());
      ctx->saved_data["host"] = host;
      ctx->saved_data["device"] = x.device().str();
    } else {
      ctx->save_for_backward({x});
    }
    return fn(x);  // grad mode is off here: nothing inside is kept
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    const auto rerun =
        c10::static_intrusive_pointer_cast<Rerun>(ctx->saved_data["rerun"].toCapsule());
    torch::Tensor x = Input(ctx).detach().requires_grad_(true);
    // Backward may run on another thread than forward did: autocast is thread-local.
    const bool was_enabled = at::autocast::is_autocast_enabled(rerun->device);
    const at::ScalarType was_dtype = at::autocast::get_autocast_dtype(rerun->device);
    at::autocast::set_autocast_dtype(rerun->device, rerun->autocast_dtype);
    at::autocast::set_autocast_enabled(rerun->device, rerun->autocast_enabled);
    torch::Tensor y;
    {
      torch::AutoGradMode grad(true);
      y = rerun->fn(x);
    }
    at::autocast::set_autocast_enabled(rerun->device, was_enabled);
    at::autocast::set_autocast_dtype(rerun->device, was_dtype);
    if (rerun->autocast_enabled && !was_enabled) at::autocast::clear_cache();
    const std::vector<torch::Tensor> params = ctx->saved_data["params"].toTensorVector();
    torch::autograd::variable_list grads = {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    if (params.empty()) {
      torch::autograd::backward({y}, {grad_output[0]});
      grads[0] = x.grad();
      return grads;
    }
    std::vector<torch::Tensor> inputs = {x};
    inputs.insert(inputs.end(), params.begin(), params.end());
    const torch::autograd::variable_list d = torch::autograd::grad(
        {y}, inputs, {grad_output[0]}, /*retain_graph=*/false, /*create_graph=*/false,
        /*allow_unused=*/true);
    grads[0] = d[0];
    grads.insert(grads.end(), d.begin() + 1, d.end());
    return grads;
  }

 private:
  // The input forward kept: on its device, or copied back from host memory.
  static torch::Tensor Input(torch::autograd::AutogradContext* ctx) {
    auto host = ctx->saved_data.find("host");
    if (host == ctx->saved_data.end()) return ctx->get_saved_variables()[0];
    const torch::Device device(ctx->saved_data.at("device").toStringRef());
    return host->second.toTensor().to(device, /*non_blocking=*/device.is_cuda(), /*copy=*/true);
  }
};

}  // namespace

torch::Tensor RecomputeInBackward(Fn fn, const torch::Tensor& x, bool offload,
                                  at::TensorList params) {
  return Recompute::apply(x, std::move(fn), offload, params);
}

}  // namespace ablate::train
