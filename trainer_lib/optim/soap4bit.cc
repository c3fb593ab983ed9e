#include "trainer_lib/optim/soap4bit.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "common/optimizer_state.h"
#include "trainer_lib/optim/blockwise_quant.h"
#include "trainer_lib/optim/group_options.h"
#include "trainer_lib/optim/kronecker.h"
#include "trainer_lib/optim/tensor_list_archive.h"

namespace ablate::train {
namespace {

// The layout's block sizes are common/optimizer_state.h's, which counts the state's bytes.
constexpr int64_t kSmallBlock = kSoap4bitSmallBlock;    // bases and moments
constexpr int64_t kFactorBlock = kSoap4bitFactorBlock;  // factors

// Q <- 1.5 Q - 0.5 Q (Q^T Q) for each Q of a stack [B, n, n]: one Björck step towards the
// nearest orthogonal matrix.
torch::Tensor Rectify(const torch::Tensor& q) {
  return 1.5 * q - 0.5 * torch::matmul(q, torch::matmul(q.mT(), q));
}

// Parameters unpacked for a refresh are refreshed and packed again once they hold this many
// float32 elements between them. Every parameter's bases refresh on the same steps, so holding
// them all until one refresh at the end would hold the whole state in float32 on those steps,
// which is SOAP's own peak (measured on Qwen3-0.6B: 27.1 GiB, above soap's 25.1). 2^28 is the
// refreshes' own batch bound (kronecker.h's GroupBySize), so their batches stay as large. The
// same bound cuts the batches of same-shaped parameters that step together.
constexpr int64_t kMaxUnpackedElements = int64_t{1} << 28;

// A parameter's state in float32 for the length of one step.
struct Working {
  torch::Tensor param;
  Soap4bitParamState* state;
  torch::Tensor exp_avg, exp_avg_sq;
  std::vector<torch::Tensor> factors, bases;
  bool bases_changed = false;

  int64_t elements() const {
    int64_t n = exp_avg.numel() + exp_avg_sq.numel();
    for (const std::vector<torch::Tensor>* list : {&factors, &bases}) {
      for (const torch::Tensor& t : *list) n += t.defined() ? t.numel() : 0;
    }
    return n;
  }
};

// Float32 elements that unpacking a parameter of `state` makes.
int64_t UnpackedElements(const torch::Tensor& param, const Soap4bitParamState& state) {
  int64_t n = 2 * param.numel();
  for (size_t d = 0; d < state.factor_codes.size(); ++d) {
    if (state.factor_codes[d].defined()) {
      n += 2 * param.size(static_cast<int64_t>(d)) * param.size(static_cast<int64_t>(d));
    }
  }
  return n;
}

// Unpacks same-shaped parameters (past their first step) together: each Working's tensors are
// slices of stacks, one dequantization and one batched rectification per kind. Returns the
// rectified bases stacked per dimension ([B, n, n], or undefined), as SoapDirectionBatch takes
// them.
std::vector<torch::Tensor> UnpackEach(const std::vector<Working*>& ws) {
  const Soap4bitParamState& first = *ws.front()->state;
  const auto shape = ws.front()->param.sizes();
  auto codes = [&](auto member) {
    std::vector<Quantized> qs;
    for (const Working* w : ws) qs.push_back(member(*w->state));
    return qs;
  };
  const torch::Tensor m = DequantizeEach(
      codes([](const Soap4bitParamState& s) -> Quantized {
        return {s.exp_avg_codes(), s.exp_avg_scales()};
      }),
      QuantTable::kSigned8, kSmallBlock, shape);
  const torch::Tensor v = DequantizeEach(codes([](const Soap4bitParamState& s) -> Quantized {
                                           return {s.exp_avg_sq_codes(), s.exp_avg_sq_scales()};
                                         }),
                                         QuantTable::kPositive8, kSmallBlock, shape)
                              .square();
  const size_t dims = first.factor_codes.size();
  std::vector<torch::Tensor> factors(dims), bases(dims);
  for (size_t d = 0; d < dims; ++d) {
    if (!first.factor_codes[d].defined()) continue;
    const int64_t n = shape[static_cast<int64_t>(d)];
    factors[d] = DequantizeEach(codes([d](const Soap4bitParamState& s) -> Quantized {
                                  return {s.factor_codes[d], s.factor_scales[d]};
                                }),
                                QuantTable::kSigned8, kFactorBlock, {n, n});
    bases[d] = Rectify(DequantizeEach(codes([d](const Soap4bitParamState& s) -> Quantized {
                                        return {s.basis_codes[d], s.basis_scales[d]};
                                      }),
                                      QuantTable::kNormalFloat4, kSmallBlock, {n, n}));
  }
  for (size_t b = 0; b < ws.size(); ++b) {
    Working& w = *ws[b];
    const auto i = static_cast<int64_t>(b);
    w.exp_avg = m[i];
    w.exp_avg_sq = v[i];
    w.factors.assign(dims, torch::Tensor());
    w.bases.assign(dims, torch::Tensor());
    for (size_t d = 0; d < dims; ++d) {
      if (factors[d].defined()) {
        w.factors[d] = factors[d][i];
        w.bases[d] = bases[d][i];
      }
    }
  }
  return bases;
}

// Packs same-shaped parameters together, bases only when they were (all) refreshed.
void PackEach(const std::vector<Working*>& ws) {
  auto stacked = [&](auto member) {
    std::vector<torch::Tensor> of_each;
    for (const Working* w : ws) of_each.push_back(member(*w));
    return torch::stack(of_each);
  };
  const std::vector<Quantized> m = QuantizeEach(
      stacked([](const Working& w) { return w.exp_avg; }), QuantTable::kSigned8, kSmallBlock);
  const std::vector<Quantized> v =
      QuantizeEach(stacked([](const Working& w) { return w.exp_avg_sq.sqrt(); }),
                   QuantTable::kPositive8, kSmallBlock);
  const Working& first = *ws.front();
  std::vector<std::vector<Quantized>> factors(first.factors.size()), bases(first.factors.size());
  for (size_t d = 0; d < first.factors.size(); ++d) {
    if (!first.factors[d].defined()) continue;
    factors[d] = QuantizeEach(stacked([d](const Working& w) { return w.factors[d]; }),
                              QuantTable::kSigned8, kFactorBlock);
    if (first.bases_changed) {
      bases[d] = QuantizeEach(stacked([d](const Working& w) { return w.bases[d]; }),
                              QuantTable::kNormalFloat4, kSmallBlock);
    }
  }
  for (size_t b = 0; b < ws.size(); ++b) {
    Soap4bitParamState& s = *ws[b]->state;
    TORCH_INTERNAL_ASSERT(ws[b]->bases_changed == first.bases_changed);
    s.exp_avg_codes(m[b].codes).exp_avg_scales(m[b].scales);
    s.exp_avg_sq_codes(v[b].codes).exp_avg_sq_scales(v[b].scales);
    for (size_t d = 0; d < factors.size(); ++d) {
      if (factors[d].empty()) continue;
      s.factor_codes[d] = factors[d][b].codes;
      s.factor_scales[d] = factors[d][b].scales;
      if (!bases[d].empty()) {
        s.basis_codes[d] = bases[d][b].codes;
        s.basis_scales[d] = bases[d][b].scales;
      }
    }
  }
}

// One step of same-shaped parameters past their first step, as one stack: moves each by its
// SOAP direction, accumulates the factors and packs again the members whose bases are not due
// for a refresh. Returns, per member, whether its refresh is due (it then stays unpacked).
std::vector<bool> StepBatch(const std::vector<Working*>& batch, const SoapOptions& o) {
  const std::vector<torch::Tensor> bases = UnpackEach(batch);
  std::vector<torch::Tensor> grads, exp_avgs, exp_avg_sqs;
  std::vector<std::vector<torch::Tensor>*> factors;
  for (Working* w : batch) {
    grads.push_back(w->param.grad().to(torch::kFloat32));
    exp_avgs.push_back(w->exp_avg);
    exp_avg_sqs.push_back(w->exp_avg_sq);
    factors.push_back(&w->factors);
  }
  const torch::Tensor stacked_grads = torch::stack(grads);
  const torch::Tensor directions =
      SoapDirectionBatch(stacked_grads, bases, o, exp_avgs, exp_avg_sqs);
  std::vector<bool> due;
  for (size_t b = 0; b < batch.size(); ++b) {
    Working& w = *batch[b];
    const int64_t t = w.state->step();
    w.state->step(t + 1);
    w.param.add_(directions[static_cast<int64_t>(b)], -SoapStepSize(o, t));
    if (o.weight_decay() != 0.0) w.param.mul_(1.0 - o.weight_decay() * o.lr());
    due.push_back(t % o.precondition_frequency() == 0);
  }
  AccumulateFactors(stacked_grads, ShampooBeta(o), factors);
  std::vector<Working*> to_pack;
  for (size_t b = 0; b < batch.size(); ++b) {
    if (!due[b]) to_pack.push_back(batch[b]);
  }
  if (!to_pack.empty()) PackEach(to_pack);
  return due;
}

int64_t Bytes(const torch::Tensor& t) { return t.defined() ? t.numel() * t.element_size() : 0; }

}  // namespace

void Soap4bitParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_codes);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_scales);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq_codes);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq_scales);
  WriteTensorList(archive, "factor_codes", factor_codes);
  WriteTensorList(archive, "factor_scales", factor_scales);
  WriteTensorList(archive, "basis_codes", basis_codes);
  WriteTensorList(archive, "basis_scales", basis_scales);
}

void Soap4bitParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_codes);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_scales);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq_codes);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq_scales);
  factor_codes = ReadTensorList(archive, "factor_codes");
  factor_scales = ReadTensorList(archive, "factor_scales");
  basis_codes = ReadTensorList(archive, "basis_codes");
  basis_scales = ReadTensorList(archive, "basis_scales");
}

Soap4bit::Soap4bit(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                   SoapOptions defaults)
    : Optimizer(groups, std::make_unique<SoapOptions>(defaults)) {
  TORCH_CHECK(defaults.precondition_frequency() >= 1, "soap4bit: precondition_frequency < 1");
  KeepGroupOptions(groups, *this);
}

torch::Tensor Soap4bit::step(LossClosure closure) {
  TORCH_CHECK(!closure, "soap4bit: a closure is not supported");
  torch::NoGradGuard no_grad;
  // Parameters whose bases are (re)computed this step stay unpacked until a batched refresh
  // of up to kMaxUnpackedElements; the others are packed again at once.
  std::vector<std::unique_ptr<Working>> refreshing;
  std::vector<Refresh> eigh_work, power_work;
  int64_t unpacked = 0;
  auto refresh = [&] {
    EighBases(eigh_work);
    PowerIterationBases(power_work);
    for (const std::unique_ptr<Working>& w : refreshing) PackEach({w.get()});
    eigh_work.clear();
    power_work.clear();
    refreshing.clear();
    unpacked = 0;
  };
  auto keep_for_refresh = [&](std::unique_ptr<Working> w, bool first_step) {
    w->bases_changed = true;
    (first_step ? eigh_work : power_work).push_back({&w->factors, &w->bases, &w->exp_avg_sq});
    unpacked += w->elements();
    refreshing.push_back(std::move(w));
    if (unpacked >= kMaxUnpackedElements) refresh();
  };
  for (torch::optim::OptimizerParamGroup& group : param_groups_) {
    const auto& o = static_cast<const SoapOptions&>(group.options());
    // Parameters past their first step, by shape: each shape's run steps in stacked batches.
    std::map<std::vector<int64_t>, std::vector<std::unique_ptr<Working>>> moving;
    for (torch::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = state_[p.unsafeGetTensorImpl()];
      auto w = std::make_unique<Working>();
      w->param = p;
      if (slot) {
        w->state = static_cast<Soap4bitParamState*>(slot.get());
        moving[p.sizes().vec()].push_back(std::move(w));
        continue;
      }
      auto fresh = std::make_unique<Soap4bitParamState>();
      w->state = fresh.get();
      w->exp_avg = torch::zeros_like(p, torch::kFloat32);
      w->exp_avg_sq = torch::zeros_like(p, torch::kFloat32);
      w->factors = ZeroFactors(p.sizes(), p.options(), o.max_precond_dim(), o.precondition_1d());
      w->bases.resize(w->factors.size());
      const size_t k = w->factors.size();
      fresh->factor_codes.resize(k);
      fresh->factor_scales.resize(k);
      fresh->basis_codes.resize(k);
      fresh->basis_scales.resize(k);
      fresh->step(1);
      slot = std::move(fresh);
      AccumulateFactors(p.grad().to(torch::kFloat32), ShampooBeta(o), w->factors);
      keep_for_refresh(std::move(w), /*first_step=*/true);
    }
    for (auto& [shape, run] : moving) {
      const int64_t per_member = UnpackedElements(run.front()->param, *run.front()->state);
      const auto size =
          static_cast<size_t>(std::max<int64_t>(1, kMaxUnpackedElements / per_member));
      for (size_t first = 0; first < run.size(); first += size) {
        std::vector<Working*> batch;
        for (size_t i = first; i < std::min(run.size(), first + size); ++i) {
          batch.push_back(run[i].get());
        }
        const std::vector<bool> due = StepBatch(batch, o);
        for (size_t b = first; b < first + batch.size(); ++b) {
          if (due[b - first]) keep_for_refresh(std::move(run[b]), /*first_step=*/false);
        }
      }
    }
  }
  refresh();
  return {};
}

int64_t Soap4bit::StateBytes() const {
  int64_t bytes = 0;
  for (const auto& [key, state] : state_) {
    const auto& s = static_cast<const Soap4bitParamState&>(*state);
    bytes += Bytes(s.exp_avg_codes()) + Bytes(s.exp_avg_scales()) +
             Bytes(s.exp_avg_sq_codes()) + Bytes(s.exp_avg_sq_scales());
    for (size_t d = 0; d < s.factor_codes.size(); ++d) {
      bytes += Bytes(s.factor_codes[d]) + Bytes(s.factor_scales[d]) + Bytes(s.basis_codes[d]) +
               Bytes(s.basis_scales[d]);
    }
  }
  return bytes;
}

void Soap4bit::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<Soap4bitParamState, SoapOptions>(archive, *this);
}

void Soap4bit::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<Soap4bitParamState, SoapOptions>(archive, *this);
}

}  // namespace ablate::train
