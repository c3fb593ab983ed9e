#include "trainer_lib/attention/nsa_sparse.h"

#include <torch/torch.h>

#include <optional>
#include <vector>

#include "trainer_lib/attention/nsa_cuda.h"
#include "trainer_lib/attention/nsa_fold.h"
#include "trainer_lib/attention/nsa_gate.h"
#include "trainer_lib/attention/nsa_window.h"

namespace ablate::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Gate columns in nsa.h's branch order: compressed (0), selected, window.
constexpr int64_t kSelected = 1, kWindow = 2;

// Zeroes the slots past T of a run of folded heads (nsa_fold.h): row NF - 1 of folded heads
// h l + i with NF l - 1 + i >= T, which hold no query and must carry no gradient.
void ZeroSlotsPastT(const torch::Tensor& run, int64_t l, int64_t t) {
  const int64_t nf = run.size(2), used = t - nf * l + 1;  // slots of row NF - 1 that hold queries
  if (used >= l) return;
  run.view({run.size(0), run.size(1) / l, l, nf, run.size(3)})
      .narrow(2, used, l - used)
      .select(3, nf - 1)
      .zero_();
}

// Pairs [run.pair0, run.pair1) of x ([B, H_x, ...] with H_x a multiple of like's H_kv =
// like.size(1): each (b, h_kv) pair's H_x / H_kv heads in a row) as a batch of one, a view.
torch::Tensor PairRun(const torch::Tensor& x, const torch::Tensor& like,
                      const NsaSelectedRun& run) {
  const int64_t pairs = like.size(0) * like.size(1), n = run.pair1 - run.pair0;
  std::vector<int64_t> shape = x.sizes().vec();
  const int64_t per_pair = shape[0] * shape[1] / pairs;
  shape[0] = pairs;
  shape[1] = per_pair;
  const torch::Tensor runs = x.view(shape).narrow(0, run.pair0, n);
  shape[0] = 1;
  shape[1] = n * per_pair;
  return runs.view(shape);
}

// The window's kernels take the selected branch's local terms for blocks of their tiles' 64
// tokens and windows that hold both blocks whole (kernels/nsa_window.h).
constexpr int64_t kLocalBlockSize = 64, kLocalMinWindow = 128, kLocalBlocks = 2;

// Writes rows of q's layout for pairs [pair0, pair1) (`accum`, [pairs G T, D] fp32) from the
// compressed branch's dq, folded in runs of whole key/value heads as its q was (each run [B,
// kv heads G l, NF, D] bf16, contiguous): where the sparse branches then add theirs.
void UnfoldDqInto(const torch::Tensor& accum, int64_t pair0, int64_t pair1,
                  const std::vector<torch::Tensor>& dq_runs, int64_t h_kv, int64_t group,
                  int64_t l) {
  const torch::Tensor rows = accum.view({pair1 - pair0, group, -1, accum.size(-1)});
  for (int64_t pair = pair0; pair < pair1; ++pair) {
    const int64_t b = pair / h_kv;
    int64_t head = pair % h_kv;  // then the pair's key/value head within its run
    size_t run = 0;
    while (head >= dq_runs[run].size(1) / (group * l)) head -= dq_runs[run++].size(1) / (group * l);
    NsaUnfoldRowsInto(rows.narrow(0, pair - pair0, 1),
                      dq_runs[run].select(0, b).narrow(0, head * group * l, group * l).unsqueeze(0),
                      l);
  }
}

class GatedBranchesFunction : public torch::autograd::Function<GatedBranchesFunction> {
 public:
  // `cmp_inputs` travel as a TensorList, so that autograd gives each a gradient slot: o_cmp's
  // runs, or where o_cmp comes on a graph of its own, that graph's inputs.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& key, const torch::Tensor& v,
                               const torch::Tensor& gates, at::TensorList cmp_inputs,
                               const NsaFoldedCompressed& o_cmp, const torch::Tensor& block_idx,
                               const std::optional<torch::Tensor>& row_shift, int64_t block_size,
                               int64_t window) {
    // As the kernels read them, once (NsaSelectedForwardKept takes them as they are).
    const torch::Tensor kq = NsaKernelInput(q), kk = NsaKernelInput(key), kv = NsaKernelInput(v);
    const torch::Tensor idx = block_idx.to(torch::kInt32).contiguous();
    const torch::Tensor shift =
        row_shift ? row_shift->to(torch::kFloat32).contiguous() : torch::Tensor();
    torch::Tensor o_swa, lse_swa;
    if (window > 0) {
      o_swa = torch::empty_like(kq);
      lse_swa = torch::empty({q.size(0), q.size(1), q.size(2)}, q.options().dtype(torch::kFloat32));
    }
    // Where the selected forward runs in one pass, the window's forward runs with it, run by run
    // of its (b, h_kv) pairs, and starts its rows with the queries' own and previous blocks and
    // block 0.
    bool window_done = false;
    const NsaSelectedRunStart start = [&](const NsaSelectedRun& run) {
      const auto part = [&](const torch::Tensor& x) { return PairRun(x, key, run); };
      torch::Tensor o_run = part(o_swa), lse_run = part(lse_swa);
      const NsaWindowLocalStart local{part(idx), part(shift), run.accum, run.row_sum, run.row_max};
      NsaWindowKernelForwardInto(part(kq), part(kk), part(kv), window, o_run, lse_run, &local);
      window_done = true;
    };
    const bool local = window >= kLocalMinWindow && block_size == kLocalBlockSize;
    const NsaSelectedSaved sel = NsaSelectedForwardKept(kq, kk, kv, idx, block_size, 0, shift,
                                                        local ? &start : nullptr, kLocalBlocks);
    std::vector<torch::Tensor> branches = {sel.o};  // after the compressed one
    if (window > 0) {
      if (!window_done) NsaWindowKernelForwardInto(sel.q, sel.k, sel.v, window, o_swa, lse_swa);
      branches.push_back(o_swa);
    }
    const NsaFoldedBranch folded{o_cmp.runs, block_size};
    torch::Tensor out = torch::empty_like(sel.o);
    NsaGateForwardInto(gates, branches, out, &folded);
    // Saved after the selected branch's: gates, o_swa, lse_swa, then o_cmp's runs (with their
    // graph's history where they have one), its leaves and q_runs.
    std::vector<torch::Tensor> saved = sel.Tensors();
    saved.insert(saved.end(), {gates, o_swa, lse_swa});
    for (const std::vector<torch::Tensor>* part : {&o_cmp.runs, &o_cmp.leaves, &o_cmp.q_runs}) {
      saved.insert(saved.end(), part->begin(), part->end());
    }
    ctx->save_for_backward(saved);
    ctx->saved_data["pair_items"] = sel.pair_items;
    ctx->saved_data["sizes"] = std::vector<int64_t>{
        block_size, window, static_cast<int64_t>(o_cmp.runs.size()),
        static_cast<int64_t>(o_cmp.leaves.size()), static_cast<int64_t>(o_cmp.q_runs.size())};
    ctx->saved_data["dtypes"] = std::vector<int64_t>{
        static_cast<int64_t>(q.scalar_type()), static_cast<int64_t>(key.scalar_type()),
        static_cast<int64_t>(v.scalar_type()), static_cast<int64_t>(gates.scalar_type())};
    std::vector<int64_t> input_dtypes;
    for (const torch::Tensor& x : cmp_inputs)
      input_dtypes.push_back(static_cast<int64_t>(x.scalar_type()));
    ctx->saved_data["cmp_dtypes"] = input_dtypes;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const std::vector<torch::Tensor> saved = ctx->get_saved_variables();
    const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    const std::vector<int64_t> dtypes = ctx->saved_data["dtypes"].toIntVector();
    const int64_t l = sizes[0], window = sizes[1], n_runs = sizes[2], n_leaves = sizes[3];
    const NsaSelectedSaved sel =
        NsaSelectedSaved::FromTensors(saved, ctx->saved_data["pair_items"].toIntVector(), l, 0);
    const torch::Tensor &gates = saved[8], &o_swa = saved[9], &lse_swa = saved[10];
    const auto cmp_at = saved.begin() + 11;
    const NsaFoldedBranch folded{std::vector<torch::Tensor>(cmp_at, cmp_at + n_runs), l};
    // The leaves, then q_runs: the inputs of o_cmp's own graph, if it has one.
    const std::vector<torch::Tensor> graph_inputs(cmp_at + n_runs, saved.end());
    const torch::Tensor d_o = NsaKernelInput(grads[0]);
    std::vector<torch::Tensor> branches = {sel.o};
    if (window > 0) branches.push_back(o_swa);
    // The gate's backward: d o_cmp in the runs' layout, and d g, whose columns are the other
    // branches' delta.
    torch::Tensor d_gates = torch::empty(gates.sizes(), d_o.options().dtype(torch::kFloat32));
    std::vector<torch::Tensor> d_cmp;
    for (const torch::Tensor& run : folded.runs) {
      d_cmp.push_back(torch::empty_like(run));
      ZeroSlotsPastT(d_cmp.back(), l, d_o.size(2));
    }
    NsaGateBackwardInto(gates, branches, d_o, std::vector<torch::Tensor>(branches.size()), d_gates,
                        &folded, d_cmp);
    // o_cmp's own graph backward from d o_cmp: its inputs' gradients, and the compressed branch's
    // folded dq, which the sparse branches' dq rows start from below.
    std::vector<torch::Tensor> cmp_grads = d_cmp, dq_cmp;
    if (!graph_inputs.empty()) {
      const tensor_list graph_grads = torch::autograd::grad(
          folded.runs, graph_inputs, d_cmp, /*retain_graph=*/false, /*create_graph=*/false,
          /*allow_unused=*/true);
      const std::vector<int64_t> input_dtypes = ctx->saved_data["cmp_dtypes"].toIntVector();
      cmp_grads.clear();
      for (int64_t i = 0; i < n_leaves; ++i) {
        const torch::Tensor& grad = graph_grads[i];
        cmp_grads.push_back(grad.defined() ? grad.to(static_cast<c10::ScalarType>(input_dtypes[i]))
                                           : grad);
      }
      for (size_t i = n_leaves; i < graph_grads.size(); ++i) {
        dq_cmp.push_back(graph_grads[i].defined() ? graph_grads[i].contiguous()
                                                  : torch::zeros_like(graph_inputs[i]));
      }
    }
    d_cmp.clear();
    const torch::Tensor g = gates.to(torch::kFloat32);
    // lse - ln g_c and D_c = d g_c for branch c, contiguous [B, H, T] fp32.
    auto gated_lse = [&](const torch::Tensor& lse, int64_t c) {
      return (lse - g.select(3, c).log()).contiguous();
    };
    auto delta = [&](int64_t c) { return d_gates.select(3, c).contiguous(); };
    torch::Tensor dq = torch::empty_like(sel.q);
    torch::Tensor dk = torch::empty(sel.k.sizes(), sel.k.options().dtype(torch::kFloat32));
    torch::Tensor dv = torch::empty_like(dk);
    const torch::Tensor lse_sel = gated_lse(sel.lse, kSelected), delta_sel = delta(kSelected);
    // The queries' own and previous blocks go with the window's products, which hold their
    // scores already: the selected branch's dk/dv kernel skips them.
    const bool local =
        window >= kLocalMinWindow && l == kLocalBlockSize && NsaSelectedBackwardLeavesLocal(sel);
    torch::Tensor dk_swa = window > 0 ? torch::empty_like(sel.k) : torch::Tensor();
    torch::Tensor dv_swa = window > 0 ? torch::empty_like(sel.v) : torch::Tensor();
    const torch::Tensor lse_swa_gated = window > 0 ? gated_lse(lse_swa, kWindow) : torch::Tensor();
    const torch::Tensor delta_swa = window > 0 ? delta(kWindow) : torch::Tensor();
    // With the local terms the window's backward runs per run of (b, h_kv) pairs, its dk/dv
    // kernel adding dq into the fp32 rows the selected branch's dq is then added into (no bf16
    // sum read back, and no second walk of the window for dq).
    const NsaSelectedRunStart dq_start = [&](const NsaSelectedRun& run) {
      const auto part = [&](const torch::Tensor& x) { return PairRun(x, sel.k, run); };
      const torch::Tensor q_run = part(sel.q);
      if (dq_cmp.empty()) {
        run.accum.zero_();
      } else {
        UnfoldDqInto(run.accum, run.pair0, run.pair1, dq_cmp, sel.k.size(1),
                     sel.q.size(1) / sel.k.size(1), l);
      }
      torch::Tensor dq_run = run.accum.view(q_run.sizes());
      torch::Tensor dk_run = part(dk_swa), dv_run = part(dv_swa);
      const NsaWindowLocalTerms terms{part(sel.block_idx), part(lse_sel), part(delta_sel)};
      NsaWindowKernelBackwardInto(q_run, part(sel.k), part(sel.v), window, part(lse_swa_gated),
                                  part(d_o), part(delta_swa), dq_run, dk_run, dv_run, &terms);
    };
    if (window > 0 && !local) {
      NsaWindowKernelBackwardInto(sel.q, sel.k, sel.v, window, lse_swa_gated, d_o, delta_swa, dq,
                                  dk_swa, dv_swa);
    }
    NsaSelectedBackwardKept(sel, lse_sel, d_o, delta_sel, dq, /*add_dq=*/window > 0, dk, dv,
                            local ? kLocalBlocks : 0, local ? &dq_start : nullptr);
    if (window > 0) {  // the sums in the window's bf16 buffers, rounded once
      NsaAddInto(dk_swa, dk);
      NsaAddInto(dv_swa, dv);
      dk = dk_swa;
      dv = dv_swa;
    }
    if (!dq_cmp.empty() && !local) {  // dq's rows did not start from it
      dq.add_(NsaUnfoldRows(dq_cmp, dq.size(1), l, dq.size(2), 0.0));
    }
    tensor_list out = {dq.to(static_cast<c10::ScalarType>(dtypes[0])),
                       dk.to(static_cast<c10::ScalarType>(dtypes[1])),
                       dv.to(static_cast<c10::ScalarType>(dtypes[2])),
                       d_gates.to(static_cast<c10::ScalarType>(dtypes[3]))};
    out.insert(out.end(), cmp_grads.begin(), cmp_grads.end());
    out.resize(out.size() + 5);  // none for o_cmp, block_idx, row_shift, block_size and window
    return out;
  }
};

}  // namespace

bool NsaGatedBranchesTake(const at::Tensor& q, const at::Tensor& k, const at::Tensor& gates,
                          int64_t window) {
  return q.defined() && q.scalar_type() == torch::kBFloat16 && q.is_contiguous() &&
         gates.dim() == 4 && gates.size(3) > kWindow && NsaSelectedKernelTakes(q, k) &&
         (window == 0 || NsaWindowKernelsTake(q, k)) &&
         NsaGateKernelTakes(gates, {q}, torch::kBFloat16);
}

at::Tensor NsaGatedBranches(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& gates, const NsaFoldedCompressed& o_cmp,
                            const at::Tensor& block_idx, const at::Tensor& row_shift,
                            int64_t block_size, int64_t window) {
  TORCH_CHECK(NsaGatedBranchesTake(q, k, gates, window), "nsa gated branches: q ", q.sizes(),
              ", k ", k.sizes(), ", gates ", gates.sizes(), " and window ", window,
              " are not what the kernels take (NsaGatedBranchesTake)");
  TORCH_CHECK(v.sizes() == k.sizes(), "nsa gated branches: v ", v.sizes(), " differs from k ",
              k.sizes());
  TORCH_CHECK(
      o_cmp.leaves.size() == o_cmp.inputs.size() && (o_cmp.leaves.empty() || !o_cmp.runs.empty()),
      "nsa gated branches: o_cmp's graph has ", o_cmp.leaves.size(), " leaves for ",
      o_cmp.inputs.size(), " inputs");
  // q_runs, where given, fold whole key/value heads' G query heads each, all of q's heads.
  const int64_t group_rows = q.size(1) / k.size(1) * block_size;
  int64_t q_run_rows = 0;
  for (const at::Tensor& run : o_cmp.q_runs) {
    TORCH_CHECK(run.dim() == 4 && run.size(1) % group_rows == 0, "nsa gated branches: a q run ",
                run.sizes(), " does not fold whole groups of G l = ", group_rows, " rows");
    q_run_rows += run.size(1);
  }
  TORCH_CHECK(o_cmp.q_runs.empty() || q_run_rows == q.size(1) * block_size,
              "nsa gated branches: q runs of ", q_run_rows, " folded rows for q ", q.sizes(),
              " and l = ", block_size);
  const bool own_graph = !o_cmp.leaves.empty() || !o_cmp.q_runs.empty();
  // The gate's kernels read the runs contiguous (a copy only where a backend returned others).
  NsaFoldedCompressed cmp = o_cmp;
  for (at::Tensor& run : cmp.runs) run = run.contiguous();
  // An optional, not an undefined tensor: autograd records every tensor argument's device.
  return GatedBranchesFunction::apply(
      q, k, v, gates, at::TensorList(own_graph ? cmp.inputs : cmp.runs), cmp, block_idx,
      row_shift.defined() ? std::optional<torch::Tensor>(row_shift) : std::nullopt, block_size,
      window);
}

}  // namespace ablate::train
