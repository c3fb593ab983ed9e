#include "trainer_lib/optim/muon.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include <torch/torch.h>

#include "trainer_lib/optim/adamw.h"

namespace ablate::train {
namespace {

using torch::optim::AdamWParamState;

bool IsMuonGroup(const torch::optim::OptimizerParamGroup& group) {
  return dynamic_cast<const MuonOptions*>(&group.options()) != nullptr;
}

// Elements of fp32 update stacked at once for one batched Newton-Schulz: large enough that
// the batched matmuls fill an H200 (Qwen3-4B's MLP matrices are 25M elements), small enough
// that the stack and its bf16 iterates stay a few GiB beside the model.
constexpr int64_t kMaxBatchElements = int64_t{1} << 28;

void MuonGroupStep(
    torch::optim::OptimizerParamGroup& group,
    ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>>& state) {
  const auto& o = static_cast<const MuonOptions&>(group.options());
  std::vector<torch::Tensor> params, grads, bufs;
  for (torch::Tensor& p : group.params()) {
    if (!p.grad().defined()) continue;
    auto& slot = state[p.unsafeGetTensorImpl()];
    if (slot == nullptr) {
      auto fresh = std::make_unique<MuonParamState>();
      fresh->momentum_buffer(torch::zeros_like(p.grad(), torch::MemoryFormat::Preserve));
      slot = std::move(fresh);
    }
    params.push_back(p);
    grads.push_back(p.grad());
    bufs.push_back(static_cast<MuonParamState&>(*slot).momentum_buffer());
  }
  if (params.empty()) return;
  // The element-wise steps over every matrix at once (one multi-tensor kernel each on CUDA;
  // torch's per-tensor loop elsewhere), the same operations as torch.optim.Muon per matrix.
  torch::_foreach_lerp_(bufs, grads, 1 - o.momentum());
  const std::vector<torch::Tensor> updates =
      o.nesterov() ? torch::_foreach_lerp(grads, bufs, o.momentum()) : bufs;
  torch::_foreach_mul_(params, 1 - o.lr() * o.weight_decay());

  // Newton-Schulz for each run of same-shaped matrices as one batched computation: slices of a
  // batched matmul are computed as the single matmul would be, so batching changes no bits.
  std::map<std::vector<int64_t>, std::vector<size_t>> by_shape;
  for (size_t i = 0; i < params.size(); ++i) by_shape[params[i].sizes().vec()].push_back(i);
  for (const auto& [shape, indices] : by_shape) {
    const double rows = static_cast<double>(shape[0]);
    const double cols = static_cast<double>(shape[1]);
    const double ratio = o.match_rms_adamw() ? 0.2 * std::sqrt(std::max(rows, cols))
                                             : std::sqrt(std::max(1.0, rows / cols));
    const size_t per_batch =
        static_cast<size_t>(std::max<int64_t>(1, kMaxBatchElements / (shape[0] * shape[1])));
    for (size_t first = 0; first < indices.size(); first += per_batch) {
      const size_t last = std::min(indices.size(), first + per_batch);
      std::vector<torch::Tensor> batch_params, batch_updates;
      for (size_t k = first; k < last; ++k) {
        batch_params.push_back(params[indices[k]]);
        batch_updates.push_back(updates[indices[k]]);
      }
      const torch::Tensor orthogonal =
          NewtonSchulz(torch::stack(batch_updates), o).to(params[indices[first]].scalar_type());
      torch::_foreach_add_(batch_params, orthogonal.unbind(0), -o.lr() * ratio);
    }
  }
}

// Archive keys of the state of the parameter at `index` in group order.
std::string Key(size_t index, const char* field) {
  return "p" + std::to_string(index) + "_" + field;
}

}  // namespace

torch::Tensor NewtonSchulz(const torch::Tensor& update, const MuonOptions& o) {
  const bool single = update.dim() == 2;
  const bool tall = update.size(-2) > update.size(-1);
  // A copy even when `update` is bf16 already: it may be the momentum buffer. The transpose is
  // a view, as in torch.optim.Muon: on CPU a matmul of a transposed view and of its contiguous
  // copy round differently in bf16.
  torch::Tensor x = (single ? update.unsqueeze(0) : update)
                        .to(torch::kBFloat16, /*non_blocking=*/false, /*copy=*/true);
  if (tall) x = x.mT();
  x.div_(torch::linalg_vector_norm(x, 2, {-2, -1}, /*keepdim=*/true).clamp_min(o.ns_eps()));
  for (int64_t i = 0; i < o.ns_steps(); ++i) {
    const torch::Tensor gram = torch::bmm(x, x.mT());
    const torch::Tensor gram_update = torch::baddbmm(gram, gram, gram, o.ns_b(), o.ns_c());
    x = torch::baddbmm(x, gram_update, x, o.ns_a());
  }
  if (tall) x = x.mT();
  return single ? x.squeeze(0) : x;
}

Muon::Muon(std::vector<torch::optim::OptimizerParamGroup> groups, double adam_lr_ratio)
    : torch::optim::Optimizer(std::vector<torch::optim::OptimizerParamGroup>{},
                              std::make_unique<MuonOptions>()),
      adam_lr_ratio_(adam_lr_ratio) {
  // Not add_param_group: it rebuilds every group's options as the defaults' type (MuonOptions),
  // which would turn the AdamW groups into Muon ones.
  for (torch::optim::OptimizerParamGroup& group : groups) {
    for (const torch::Tensor& p : group.params()) {
      TORCH_CHECK(!IsMuonGroup(group) || p.dim() == 2, "Muon takes 2-D parameters only, got ",
                  p.sizes());
    }
    param_groups_.push_back(std::move(group));
  }
}

torch::Tensor Muon::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (torch::optim::OptimizerParamGroup& group : param_groups_) {
    if (IsMuonGroup(group)) {
      MuonGroupStep(group, state_);
    } else {
      AdamWGroupStep(group, state_, adam_lr_ratio_);
    }
  }
  return loss;
}

void Muon::save(torch::serialize::OutputArchive& archive) const {
  size_t index = 0;
  for (const auto& group : param_groups_) {
    for (const torch::Tensor& p : group.params()) {
      const size_t i = index++;
      auto it = state_.find(p.unsafeGetTensorImpl());
      if (it == state_.end()) continue;
      if (IsMuonGroup(group)) {
        archive.write(Key(i, "momentum_buffer"),
                      static_cast<const MuonParamState&>(*it->second).momentum_buffer());
        continue;
      }
      const auto& s = static_cast<const AdamWParamState&>(*it->second);
      archive.write(Key(i, "step"), torch::tensor(s.step(), torch::kInt64));
      archive.write(Key(i, "exp_avg"), s.exp_avg());
      archive.write(Key(i, "exp_avg_sq"), s.exp_avg_sq());
    }
  }
}

void Muon::load(torch::serialize::InputArchive& archive) {
  auto read = [&](const std::string& key, const torch::Tensor& like, torch::Tensor& out) {
    if (!archive.try_read(key, out)) return false;
    TORCH_CHECK(out.sizes() == like.sizes(), key, " has shape ", out.sizes(), ", the parameter ",
                like.sizes());
    return true;
  };
  ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>> loaded;
  size_t index = 0;
  for (const auto& group : param_groups_) {
    for (const torch::Tensor& p : group.params()) {
      const size_t i = index++;
      if (IsMuonGroup(group)) {
        torch::Tensor buf;
        if (!read(Key(i, "momentum_buffer"), p, buf)) continue;
        auto s = std::make_unique<MuonParamState>();
        s->momentum_buffer(buf);
        loaded[p.unsafeGetTensorImpl()] = std::move(s);
        continue;
      }
      torch::Tensor step, exp_avg, exp_avg_sq;
      if (!archive.try_read(Key(i, "step"), step)) continue;
      TORCH_CHECK(read(Key(i, "exp_avg"), p, exp_avg) && read(Key(i, "exp_avg_sq"), p, exp_avg_sq),
                  "parameter ", i, " has a step but no moments");
      auto s = std::make_unique<AdamWParamState>();
      s->step(step.item<int64_t>());
      s->exp_avg(exp_avg);
      s->exp_avg_sq(exp_avg_sq);
      loaded[p.unsafeGetTensorImpl()] = std::move(s);
    }
  }
  state_ = std::move(loaded);
}

}  // namespace ablate::train
