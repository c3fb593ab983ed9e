#include "trainer_lib/optim/adamw8bit.h"

#include <torch/optim/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/optimizer_state.h"
#include "trainer_lib/device/fused_kernels.h"

#ifdef ABLATE_FUSED_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "trainer_lib/kernels/adamw8bit.h"
#endif

namespace ablate::train {
namespace {

using torch::optim::AdamWOptions;

// The step of one parameter by trainer_lib/kernels/adamw8bit.h, when the kernels are in this
// build and take it (a contiguous CUDA parameter of fp32 or bf16, its gradient alike); returns
// false, having done nothing, otherwise. The scalars are rounded to fp32 as the eager path's
// fp32 scalar tensors round them.
bool FusedStep(torch::Tensor& p, AdamW8bitParamState& s, const AdamWOptions& o,
               const torch::Tensor& qmap_signed, const torch::Tensor& qmap_unsigned) {
#ifdef ABLATE_FUSED_KERNELS
  const torch::Tensor& grad = p.grad();
  const bool takes = FusedKernelsEnabled() && p.is_cuda() &&
                     (p.scalar_type() == torch::kFloat32 || p.scalar_type() == torch::kBFloat16) &&
                     grad.scalar_type() == p.scalar_type() && p.is_contiguous() &&
                     grad.is_contiguous() && s.exp_avg().is_contiguous() &&
                     s.exp_avg_sq().is_contiguous();
  if (!takes) return false;
  namespace k = ablate::kernels;
  const auto [beta1, beta2] = o.betas();
  const auto step = static_cast<float>(s.step());
  const float lr = static_cast<float>(o.lr());
  k::AdamW8bitParams a;
  a.dtype =
      p.scalar_type() == torch::kBFloat16 ? k::ParamDtype::kBFloat16 : k::ParamDtype::kFloat32;
  a.param = p.data_ptr();
  a.grad = grad.data_ptr();
  a.numel = p.numel();
  a.quantized = s.exp_avg().scalar_type() == torch::kUInt8;
  a.exp_avg = s.exp_avg().data_ptr();
  a.exp_avg_sq = s.exp_avg_sq().data_ptr();
  if (a.quantized) {
    a.exp_avg_scale = s.exp_avg_scale().data_ptr<float>();
    a.exp_avg_sq_scale = s.exp_avg_sq_scale().data_ptr<float>();
    a.qmap_signed = qmap_signed.data_ptr<float>();
    a.qmap_unsigned = qmap_unsigned.data_ptr<float>();
  }
  a.lr = lr;
  a.lr_times_weight_decay = lr * static_cast<float>(o.weight_decay());
  a.one_minus_beta1 = static_cast<float>(1 - beta1);
  a.one_minus_beta2 = static_cast<float>(1 - beta2);
  a.eps = static_cast<float>(o.eps());
  a.bias_correction1 = 1.f - std::pow(static_cast<float>(beta1), step);
  a.bias_correction2_sqrt = std::sqrt(1.f - std::pow(static_cast<float>(beta2), step));
  const cudaError_t error = k::AdamW8bitStep(a, at::cuda::getCurrentCUDAStream(p.device().index()));
  TORCH_CHECK(error == cudaSuccess, "8-bit AdamW kernel: ", cudaGetErrorString(error));
  return true;
#else
  return false;
#endif
}

bool Quantized(const torch::Tensor& p) { return AdamW8bitQuantizes(p.numel()); }

// Codes of `x` (fp32, already divided by its block scales) in `qmap`: the nearest map value,
// ties up, found by a branch-free binary search over the ascending map, as torchao does.
torch::Tensor Encode(const torch::Tensor& x, const torch::Tensor& qmap) {
  torch::Tensor codes = torch::where(x >= qmap[128], 128, 0);
  for (int64_t half = 64; half >= 1; half /= 2) {
    codes += torch::where(x >= qmap.index({codes + half}), half, 0);
  }
  const torch::Tensor codes_up = (codes + 1).clamp_max(255);
  const torch::Tensor down = qmap.index({codes});
  const torch::Tensor up = qmap.index({codes_up});
  return torch::where(x - down >= (up - down) * 0.5, codes_up, codes).to(torch::kUInt8);
}

// Stores `value` (fp32) into a moment: quantized in place, or copied when kept in fp32.
void Store(const torch::Tensor& value, torch::Tensor& moment, torch::Tensor& scale,
           const torch::Tensor& qmap) {
  if (moment.scalar_type() != torch::kUInt8) {
    moment.copy_(value);
    return;
  }
  const torch::Tensor blocks = value.view({-1, kAdamW8bitBlock});
  const torch::Tensor s = blocks.abs().amax(-1).clamp_min(1e-12);
  moment.copy_(Encode((blocks / s.view({-1, 1})).view(value.sizes()), qmap));
  scale.copy_(s);
}

torch::Tensor Load(const torch::Tensor& moment, const torch::Tensor& scale,
                   const torch::Tensor& qmap) {
  if (moment.scalar_type() != torch::kUInt8) return moment;
  return (qmap.index({moment.to(torch::kInt)}).view({scale.size(0), -1}) * scale.view({-1, 1}))
      .view(moment.sizes());
}

void NewState(const torch::Tensor& p, AdamW8bitParamState& s) {
  const auto fp32 = p.options().dtype(torch::kFloat32);
  if (Quantized(p)) {
    s.exp_avg(torch::zeros(p.sizes(), p.options().dtype(torch::kUInt8)));
    s.exp_avg_sq(torch::zeros(p.sizes(), p.options().dtype(torch::kUInt8)));
    s.exp_avg_scale(torch::zeros({p.numel() / kAdamW8bitBlock}, fp32));
    s.exp_avg_sq_scale(torch::zeros({p.numel() / kAdamW8bitBlock}, fp32));
  } else {
    s.exp_avg(torch::zeros(p.sizes(), fp32));
    s.exp_avg_sq(torch::zeros(p.sizes(), fp32));
    s.exp_avg_scale(torch::empty({0}, fp32));
    s.exp_avg_sq_scale(torch::empty({0}, fp32));
  }
}

}  // namespace

void AdamW8bitParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_scale);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq_scale);
}

void AdamW8bitParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_scale);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq_scale);
}

torch::Tensor DynamicQuantMap(bool is_signed) {
  constexpr int kExponentBits = 7;
  std::vector<double> values;
  for (int i = 0; i < kExponentBits; ++i) {
    const int64_t fractions = is_signed ? (int64_t{1} << i) + 1 : (int64_t{1} << (i + 1)) + 1;
    const torch::Tensor bounds = torch::linspace(0.1, 1, fractions);
    const torch::Tensor means =
        (bounds.slice(0, 0, fractions - 1) + bounds.slice(0, 1, fractions)) / 2.0;
    const double magnitude = std::pow(10.0, -(kExponentBits - 1) + i);
    auto append = [&](const torch::Tensor& v) {
      const float* data = v.data_ptr<float>();
      values.insert(values.end(), data, data + v.numel());
    };
    append((means * magnitude).contiguous());
    if (is_signed) append((means * -magnitude).contiguous());
  }
  values.push_back(0);
  values.push_back(1);
  std::sort(values.begin(), values.end());
  TORCH_CHECK(values.size() == 256, "the dynamic map has ", values.size(), " values");
  return torch::tensor(values, torch::kFloat32);
}

AdamW8bit::AdamW8bit(std::vector<torch::optim::OptimizerParamGroup> groups)
    : torch::optim::Optimizer(std::move(groups), std::make_unique<AdamWOptions>()),
      qmap_signed_(DynamicQuantMap(true)),
      qmap_unsigned_(DynamicQuantMap(false)) {}

torch::Tensor AdamW8bit::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (torch::optim::OptimizerParamGroup& group : param_groups_) {
    const auto& o = static_cast<const AdamWOptions&>(group.options());
    const auto [beta1, beta2] = o.betas();
    for (torch::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (qmap_signed_.device() != p.device()) {
        qmap_signed_ = qmap_signed_.to(p.device());
        qmap_unsigned_ = qmap_unsigned_.to(p.device());
      }
      auto& slot = state_[p.unsafeGetTensorImpl()];
      if (slot == nullptr) {
        auto fresh = std::make_unique<AdamW8bitParamState>();
        NewState(p, *fresh);
        slot = std::move(fresh);
      }
      auto& s = static_cast<AdamW8bitParamState&>(*slot);
      s.step(s.step() + 1);
      if (FusedStep(p, s, o, qmap_signed_, qmap_unsigned_)) continue;
      // torchao keeps lr and the step as fp32 tensors; the same here gives its rounding.
      const auto fp32 = p.options().dtype(torch::kFloat32);
      const torch::Tensor lr = torch::scalar_tensor(o.lr(), fp32);
      const torch::Tensor step = torch::scalar_tensor(static_cast<double>(s.step()), fp32);
      const torch::Tensor grad = p.grad().to(torch::kFloat32);
      torch::Tensor p32 = p.to(torch::kFloat32);
      p32 = p32 - lr * o.weight_decay() * p32;
      const torch::Tensor bias_correction1 = 1 - torch::pow(beta1, step);
      const torch::Tensor bias_correction2 = 1 - torch::pow(beta2, step);
      const torch::Tensor m =
          Load(s.exp_avg(), s.exp_avg_scale(), qmap_signed_).lerp(grad, 1 - beta1);
      const torch::Tensor v =
          Load(s.exp_avg_sq(), s.exp_avg_sq_scale(), qmap_unsigned_).lerp(grad.square(), 1 - beta2);
      Store(m, s.exp_avg(), s.exp_avg_scale(), qmap_signed_);
      Store(v, s.exp_avg_sq(), s.exp_avg_sq_scale(), qmap_unsigned_);
      const torch::Tensor denom = v.sqrt() / bias_correction2.sqrt() + o.eps();
      p.copy_(p32 - lr * (m / bias_correction1) / denom);
    }
  }
  return loss;
}

void AdamW8bit::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<AdamW8bitParamState, AdamWOptions>(archive, *this);
}

void AdamW8bit::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<AdamW8bitParamState, AdamWOptions>(archive, *this);
}

}  // namespace ablate::train
