#include "trainer_lib/optim/soap4bit.h"

#include <memory>
#include <utility>

#include <torch/torch.h>

#include "trainer_lib/optim/blockwise_quant.h"
#include "trainer_lib/optim/group_options.h"
#include "trainer_lib/optim/kronecker.h"
#include "trainer_lib/optim/tensor_list_archive.h"

namespace ablate::train {
namespace {

constexpr int64_t kSmallBlock = 64;    // bases and moments (Wang et al. use 64 for bases)
constexpr int64_t kFactorBlock = 256;  // factors, as 8-bit optimizers block

// Q <- 1.5 Q - 0.5 Q (Q^T Q): one Björck step towards the nearest orthogonal matrix.
torch::Tensor Rectify(const torch::Tensor& q) {
  return 1.5 * q - 0.5 * torch::matmul(q, torch::matmul(q.t(), q));
}

// Parameters unpacked for a refresh are refreshed and packed again once they hold this many
// float32 elements between them. Every parameter's bases refresh on the same steps, so holding
// them all until one refresh at the end would hold the whole state in float32 on those steps,
// which is SOAP's own peak (measured on Qwen3-0.6B: 27.1 GiB, above soap's 25.1). 2^28 is the
// refreshes' own batch bound (kronecker.h's GroupBySize), so their batches stay as large.
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

void Unpack(Working& w) {
  Soap4bitParamState& s = *w.state;
  const auto shape = w.param.sizes();
  w.exp_avg = Dequantize({s.exp_avg_codes(), s.exp_avg_scales()}, QuantTable::kSigned8,
                         kSmallBlock, shape);
  w.exp_avg_sq = Dequantize({s.exp_avg_sq_codes(), s.exp_avg_sq_scales()},
                            QuantTable::kPositive8, kSmallBlock, shape)
                     .square();
  w.factors.assign(s.factor_codes.size(), torch::Tensor());
  w.bases.assign(s.factor_codes.size(), torch::Tensor());
  for (size_t d = 0; d < s.factor_codes.size(); ++d) {
    if (!s.factor_codes[d].defined()) continue;
    const int64_t n = w.param.size(static_cast<int64_t>(d));
    w.factors[d] = Dequantize({s.factor_codes[d], s.factor_scales[d]}, QuantTable::kSigned8,
                              kFactorBlock, {n, n});
    if (s.basis_codes[d].defined()) {
      w.bases[d] = Rectify(Dequantize({s.basis_codes[d], s.basis_scales[d]},
                                      QuantTable::kNormalFloat4, kSmallBlock, {n, n}));
    }
  }
}

void Pack(Working& w) {
  Soap4bitParamState& s = *w.state;
  Quantized m = Quantize(w.exp_avg, QuantTable::kSigned8, kSmallBlock);
  s.exp_avg_codes(m.codes).exp_avg_scales(m.scales);
  Quantized v = Quantize(w.exp_avg_sq.sqrt(), QuantTable::kPositive8, kSmallBlock);
  s.exp_avg_sq_codes(v.codes).exp_avg_sq_scales(v.scales);
  for (size_t d = 0; d < w.factors.size(); ++d) {
    if (!w.factors[d].defined()) continue;
    Quantized f = Quantize(w.factors[d], QuantTable::kSigned8, kFactorBlock);
    s.factor_codes[d] = f.codes;
    s.factor_scales[d] = f.scales;
    if (w.bases_changed) {
      Quantized q = Quantize(w.bases[d], QuantTable::kNormalFloat4, kSmallBlock);
      s.basis_codes[d] = q.codes;
      s.basis_scales[d] = q.scales;
    }
  }
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
    for (const std::unique_ptr<Working>& w : refreshing) Pack(*w);
    eigh_work.clear();
    power_work.clear();
    refreshing.clear();
    unpacked = 0;
  };
  for (torch::optim::OptimizerParamGroup& group : param_groups_) {
    const auto& o = static_cast<const SoapOptions&>(group.options());
    for (torch::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = state_[p.unsafeGetTensorImpl()];
      auto w = std::make_unique<Working>();
      w->param = p;
      if (!slot) {
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
        slot = std::move(fresh);
      } else {
        w->state = static_cast<Soap4bitParamState*>(slot.get());
        Unpack(*w);
      }
      Soap4bitParamState& s = *w->state;
      const torch::Tensor grad = p.grad().to(torch::kFloat32);
      const int64_t t = s.step();
      s.step(t + 1);
      if (t > 0) {
        p.add_(SoapDirection(grad, w->bases, o, w->exp_avg, w->exp_avg_sq),
               -SoapStepSize(o, t));
        if (o.weight_decay() != 0.0) p.mul_(1.0 - o.weight_decay() * o.lr());
      }
      AccumulateFactors(grad, ShampooBeta(o), w->factors);
      if (t == 0 || t % o.precondition_frequency() == 0) {
        w->bases_changed = true;
        (t == 0 ? eigh_work : power_work).push_back({&w->factors, &w->bases, &w->exp_avg_sq});
        unpacked += w->elements();
        refreshing.push_back(std::move(w));
        if (unpacked >= kMaxUnpackedElements) refresh();
      } else {
        Pack(*w);
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
