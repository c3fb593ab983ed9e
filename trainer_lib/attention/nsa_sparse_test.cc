// The selected and window branches with their gated sum as one node (nsa_sparse.h) against the
// references in fp32, under the NSA issue's error rule (nsa_error_rule.h), on block indices that
// no selection rule makes: a query's own block and the one before it in none of its slots, in
// one or in two, other blocks repeated, empty slots. Where the window holds both blocks (512 and
// 128 here) the window's kernels take their terms, counted, and the selected branch's dk/dv
// kernel skips them; a window of 100 keeps them in the selected branch. Skips without the
// kernels and a GPU. The forward is run with the selected branch's row shifts and without.
#include "trainer_lib/attention/nsa_sparse.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "trainer_lib/attention/nsa.h"
#include "trainer_lib/attention/nsa_cuda.h"
#include "trainer_lib/attention/nsa_error_rule.h"
#include "trainer_lib/attention/nsa_fold.h"

namespace ablate::train {
namespace {

constexpr int64_t kHeads = 8, kKvHeads = 2, kT = 1000, kD = 128, kBlock = 64, kSlots = 8;

// [1, H_kv, T, n] int32: by t mod 4, slots (own, prev, random ...), (own, own, prev, prev,
// random ...), (random from blocks below prev ..., -1), (prev, 0, 0, random ..., -1); own = t / l,
// prev = own - 1 (-1 for the first block's queries), random blocks visible to t.
torch::Tensor LocalCountIndices() {
  torch::Tensor idx = torch::full({1, kKvHeads, kT, kSlots}, -1, torch::kInt32);
  auto a = idx.accessor<int32_t, 4>();
  for (int64_t h = 0; h < kKvHeads; ++h) {
    for (int64_t t = 0; t < kT; ++t) {
      const int32_t own = static_cast<int32_t>(t / kBlock), prev = own - 1;
      auto random = [&](int32_t below) {
        return static_cast<int32_t>(torch::randint(0, below + 1, {1}).item<int64_t>());
      };
      std::vector<int32_t> slots;
      switch ((t + h) % 4) {
        case 0:
          slots = {own, prev};
          break;
        case 1:
          slots = {own, own, prev, prev};
          break;
        case 2:
          slots = {};
          break;
        default:
          slots = {prev, 0, 0};
          break;
      }
      for (int64_t j = 0; j < kSlots; ++j) {
        if (j < static_cast<int64_t>(slots.size())) {
          a[0][h][t][j] = slots[j];
        } else if ((t + h) % 4 == 2) {
          a[0][h][t][j] = own >= 2 && j < kSlots - 1 ? random(own - 2) : -1;
        } else {
          a[0][h][t][j] = j < kSlots - 1 ? random(own) : -1;
        }
      }
    }
  }
  return idx;
}

// o_cmp as runs differentiable in the caller's graph.
NsaFoldedCompressed Runs(std::vector<torch::Tensor> runs) {
  NsaFoldedCompressed cmp;
  cmp.runs = std::move(runs);
  return cmp;
}

// o, dq, dk, dv, d gates and d o_cmp of g_cmp (o_cmp + q / 2) + g_sel o_sel + g_swa o_swa: the
// node on CUDA in bf16 (`node`), or the references in `dtype`. The node takes the compressed
// branch on a graph of its own, as NsaAttend gives it: its runs made from a leaf in o_cmp's
// place and q's folded runs, so that the branch's dq reaches dq through the node's fp32 rows.
// shift: the node's row_shift (undefined: none).
std::vector<torch::Tensor> RunBranches(bool node, torch::Dtype dtype,
                                       const std::vector<torch::Tensor>& in,
                                       const torch::Tensor& idx, int64_t window,
                                       const torch::Tensor& shift = {}) {
  std::vector<torch::Tensor> leaves;
  for (int i = 0; i < 5; ++i) {
    leaves.push_back(in[i].to(node ? torch::kBFloat16 : dtype).detach().requires_grad_(true));
  }
  leaves[3] = in[3].detach().requires_grad_(true);  // the gates stay fp32
  const torch::Tensor &q = leaves[0], &k = leaves[1], &v = leaves[2], &g = leaves[3];
  torch::Tensor o;
  if (node) {
    NsaFoldedCompressed cmp;
    cmp.inputs = {leaves[4]};
    cmp.leaves = {leaves[4].detach().requires_grad_(true)};
    {
      torch::NoGradGuard no_grad;
      cmp.q_runs = NsaFoldRows(q, kBlock, {kHeads});
    }
    cmp.q_runs[0].requires_grad_(true);
    cmp.runs = {NsaFoldRows(cmp.leaves[0], kBlock, {kHeads})[0] + cmp.q_runs[0] / 2};
    o = NsaGatedBranches(q, k, v, g, cmp, idx, shift, kBlock, window);
  } else {
    const torch::Tensor gates = g.to(dtype);
    // Folded and unfolded back: the first l - 1 queries see no compressed block (o_cmp 0).
    const torch::Tensor o_cmp =
        NsaUnfoldRows(NsaFoldRows(leaves[4] + q / 2, kBlock, {kHeads}), kHeads, kBlock, kT, 0.0);
    o = gates.select(3, 0).unsqueeze(3) * o_cmp +
        gates.select(3, 1).unsqueeze(3) * NsaSelectedReference(q, k, v, idx, kBlock) +
        gates.select(3, 2).unsqueeze(3) * NsaWindowReference(q, k, v, window);
  }
  o.backward(in[5].to(o.scalar_type()));
  std::vector<torch::Tensor> out = {o.detach().to(torch::kFloat32)};
  for (const torch::Tensor& x : leaves) out.push_back(x.grad().to(torch::kFloat32));
  return out;
}

// Each of the node's outputs against the fp32 reference, within twice the bf16 reference's
// error.
void ExpectWithinTheRule(const std::vector<torch::Tensor>& ours,
                         const std::vector<torch::Tensor>& exact,
                         const std::vector<torch::Tensor>& bf16, const char* const (&names)[6]) {
  for (int i = 0; i < 6; ++i) {
    if (i == 4) {  // the gates' gradient sums D products of bf16 outputs: relative to its size
      const double scale = exact[i].abs().max().item<double>();
      EXPECT_LE(NsaMeasure(ours[i], exact[i], -1).max, 1e-2 * scale) << names[i];
      continue;
    }
    const double bound = 2 * NsaMeasure(bf16[i], exact[i], -1).max + 1e-4;
    const NsaError e = NsaMeasure(ours[i], exact[i], bound);
    EXPECT_LE(e.max, bound) << names[i] << ": first over at " << e.first_over << " of "
                            << exact[i].sizes();
  }
}

TEST(NsaSparseTest, LocalBlocksInAnyCountMatchTheReference) {
  if (!NsaKernelsEnabled() || !torch::cuda::is_available()) {
    GTEST_SKIP() << "needs the NSA kernels (nvcc and LibTorch with CUDA) and a GPU";
  }
  torch::manual_seed(17);
  const torch::Tensor idx = LocalCountIndices().to(torch::kCUDA);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  auto rounded = [&](std::vector<int64_t> shape) {
    return torch::randn(shape, cuda).to(torch::kBFloat16).to(torch::kFloat32);
  };
  const torch::Tensor gates = torch::rand({1, kHeads, kT, 3}, cuda);
  gates.narrow(2, 300, 50).select(3, 1).zero_();  // no gradient through the selected branch there
  const std::vector<torch::Tensor> in = {
      rounded({1, kHeads, kT, kD}),   rounded({1, kKvHeads, kT, kD}),
      rounded({1, kKvHeads, kT, kD}), gates,
      rounded({1, kHeads, kT, kD}),   rounded({1, kHeads, kT, kD})};
  ASSERT_TRUE(
      NsaGatedBranchesTake(in[0].to(torch::kBFloat16), in[1].to(torch::kBFloat16), gates, 512));
  // The selected forward's row shifts: none (its two passes); near the rows' maxima, with the
  // compressed branch's -inf for the first queries (its one pass, which the window's forward
  // starts where it takes the local blocks); and some rows too far from theirs for fp32 (the
  // one pass, then the two passes over every block).
  torch::Tensor near = torch::zeros({1, kHeads, kT}, cuda);
  near.narrow(2, 0, 40).fill_(-std::numeric_limits<float>::infinity());
  torch::Tensor far = near.clone();
  far.narrow(2, 500, 8).fill_(1000.0f);
  const torch::Tensor shifts[] = {torch::Tensor(), near, far};
  const char* shift_names[] = {"none", "near", "far"};
  const char* names[] = {"o", "dq", "dk", "dv", "d gates", "d o_cmp"};
  for (int64_t window : {512, 128, 100}) {
    const std::vector<torch::Tensor> exact = RunBranches(false, torch::kFloat32, in, idx, window);
    const std::vector<torch::Tensor> bf16 = RunBranches(false, torch::kBFloat16, in, idx, window);
    for (int shift = 0; shift < 3; ++shift) {
      SCOPED_TRACE(testing::Message() << "window " << window << ", shift " << shift_names[shift]);
      const std::vector<torch::Tensor> ours =
          RunBranches(true, torch::kBFloat16, in, idx, window, shifts[shift]);
      ExpectWithinTheRule(ours, exact, bf16, names);
    }
  }
}

// Long enough that the selected branch's fp32 rows take two runs of (b, h_kv) pairs
// (kNsaAccumBytes): the window's forward and backward, run by run on views of the pairs, start
// and add into each run's rows where they are. Pairs 2 and 3 are pairs 1 and 0 again (inputs and
// indices), so the second run's outputs and gradients must be the first's, swapped: a run that
// read or wrote another run's rows would differ. And the node's o with row shifts (one pass,
// started by the window) against its o without (two passes over every block, nothing started):
// the same math, rounded apart.
TEST(NsaSparseTest, EveryRunOfPairsStartsItsOwnRows) {
  if (!NsaKernelsEnabled() || !torch::cuda::is_available()) {
    GTEST_SKIP() << "needs the NSA kernels (nvcc and LibTorch with CUDA) and a GPU";
  }
  constexpr int64_t kLongT = 131072, kPairs = 4, kG = 8, kN = 16;
  static_assert(2 * kG * kLongT * kD * 4 >= kNsaAccumBytes, "one run would hold every pair");
  torch::manual_seed(18);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  // x [1, 2 n, ...] with n rows of dim 1 a pair: its two pairs swapped.
  const auto swapped = [](const torch::Tensor& x) {
    std::vector<int64_t> pairs = x.sizes().vec();
    pairs[1] /= 2;
    pairs.insert(pairs.begin() + 1, 2);
    return x.reshape(pairs).flip(1).reshape(x.sizes());
  };
  const auto mirrored = [&](const torch::Tensor& x) { return torch::cat({x, swapped(x)}, 1); };
  constexpr int64_t kHalf = kPairs / 2;
  const torch::Tensor q =
      mirrored(torch::randn({1, kHalf * kG, kLongT, kD}, cuda)).to(torch::kBFloat16);
  const torch::Tensor k = mirrored(torch::randn({1, kHalf, kLongT, kD}, cuda)).to(torch::kBFloat16);
  const torch::Tensor v = mirrored(torch::randn({1, kHalf, kLongT, kD}, cuda)).to(torch::kBFloat16);
  const torch::Tensor gates = mirrored(torch::rand({1, kHalf * kG, kLongT, 3}, cuda));
  const torch::Tensor o_cmp =
      mirrored(torch::randn({1, kHalf * kG, kLongT, kD}, cuda)).to(torch::kBFloat16);
  const torch::Tensor d_o =
      mirrored(torch::randn({1, kHalf * kG, kLongT, kD}, cuda)).to(torch::kBFloat16);
  // Slots as fla's rule fills them: block 0, the own block, the one before, then random blocks
  // at or before the own one.
  const torch::Tensor t = torch::arange(kLongT, cuda.dtype(torch::kInt32)).view({1, 1, kLongT, 1});
  const torch::Tensor own = torch::div(t, kBlock, "floor").expand({1, kHalf, kLongT, 1});
  const torch::Tensor idx = mirrored(
      torch::cat({torch::zeros_like(own), own, (own - 1).clamp_min(0),
                  (torch::rand({1, kHalf, kLongT, kN - 3}, cuda) * (own + 1)).to(torch::kInt32)},
                 3));
  const torch::Tensor shift = torch::zeros({1, kPairs * kG, kLongT}, cuda);
  // Apart by bf16's rounding (and fp32 atomics' order), relative to the larger values: two
  // ulps at most.
  const auto expect_near = [](const torch::Tensor& x, const torch::Tensor& y, const char* name) {
    const torch::Tensor y32 = y.to(torch::kFloat32);
    const torch::Tensor apart = (x.to(torch::kFloat32) - y32).abs() / (y32.abs() + 1);
    EXPECT_LE(apart.max().item<float>(), 1.6e-2f)
        << name << " at " << apart.argmax().item<int64_t>();
    EXPECT_LE(apart.mean().item<float>(), 1e-3f) << name;
  };
  {
    torch::NoGradGuard no_grad;
    const std::vector<torch::Tensor> runs = NsaFoldRows(o_cmp, kBlock, {kPairs * kG});
    const torch::Tensor one_pass =
        NsaGatedBranches(q, k, v, gates, Runs(runs), idx, shift, kBlock, 512);
    const torch::Tensor two = NsaGatedBranches(q, k, v, gates, Runs(runs), idx, {}, kBlock, 512);
    expect_near(one_pass, two, "o, one pass against two");
  }
  std::vector<torch::Tensor> leaves;
  for (const torch::Tensor& x : {q, k, v, gates, o_cmp}) {
    leaves.push_back(x.detach().requires_grad_(true));
  }
  const torch::Tensor o = NsaGatedBranches(leaves[0], leaves[1], leaves[2], leaves[3],
                                           Runs(NsaFoldRows(leaves[4], kBlock, {kPairs * kG})), idx,
                                           shift, kBlock, 512);
  o.backward(d_o);
  const char* names[] = {"dq", "dk", "dv", "d gates", "d o_cmp"};
  std::vector<torch::Tensor> results = {o.detach()};
  for (const torch::Tensor& x : leaves) results.push_back(x.grad());
  for (size_t i = 0; i < results.size(); ++i) {
    const torch::Tensor& x = results[i];
    const int64_t half = x.size(1) / 2;
    expect_near(x.narrow(1, half, half), swapped(x.narrow(1, 0, half)),
                i == 0 ? "o, the second run against the first" : names[i - 1]);
  }
}

}  // namespace
}  // namespace ablate::train
