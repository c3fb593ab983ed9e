#include "trainer_lib/attention/nsa_blocks.h"

#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace ablate::train {
namespace {

using torch::indexing::Slice;

// fla's rule: which blocks each query may keep, and which it must. block: [1, NB]; pos: [Tc].
std::pair<torch::Tensor, torch::Tensor> FlaAllowedAndForced(const torch::Tensor& block,
                                                            const torch::Tensor& pos,
                                                            int64_t l) {
  torch::Tensor own = torch::floor_divide(pos, l).unsqueeze(1);  // [Tc, 1]
  torch::Tensor forced = (block == own) | (block == 0) | (block == own - 1);
  torch::Tensor ended = block < torch::floor_divide(pos + 1, l).unsqueeze(1);
  return {ended | forced, forced};
}

// The paper's rule: the blocks that overlap a visible window, [Tc, NB]. The first window
// overlapping block j is max(0, j l'/d - l/d + 1); it is visible once it ended.
torch::Tensor PaperAllowed(const torch::Tensor& block, const torch::Tensor& pos,
                           const NsaShape& s) {
  const int64_t l = s.kernel(), d = s.stride();
  torch::Tensor first = (block * (s.block_size / d) - l / d + 1).clamp_min(0);
  return (first * d + l - 1) <= pos.unsqueeze(1);
}

}  // namespace

at::Tensor NsaMeanPool(const at::Tensor& x, int64_t block_size,
                       std::optional<at::ScalarType> dtype) {
  const int64_t blocks = x.size(2) / block_size;
  return x.index({Slice(), Slice(), Slice(0, blocks * block_size)})
      .reshape({x.size(0), x.size(1), blocks, block_size, x.size(3)})
      .mean(3, /*keepdim=*/false, dtype);
}

at::Tensor NsaLearnedCompress(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& pe,
                              int64_t kernel, int64_t stride) {
  const int64_t b = x.size(0), hkv = x.size(1), t = x.size(2), d = x.size(3);
  TORCH_CHECK(weight.dim() == 3 && weight.size(0) == hkv && weight.size(1) == kernel * d &&
                  weight.size(2) == d && pe.dim() == 3 && pe.size(0) == hkv &&
                  pe.size(1) == kernel && pe.size(2) == d,
              "nsa: compression weight ", weight.sizes(), " and position encoding ", pe.sizes(),
              " must be [", hkv, ", ", kernel * d, ", ", d, "] and [", hkv, ", ", kernel, ", ", d,
              "] for x ", x.sizes());
  if (t < kernel) return x.new_zeros({b, hkv, 0, d});
  // [B, H_kv, NC, D, l] -> [B, H_kv, NC, l, D], each window's tokens with their position's code.
  torch::Tensor windows =
      x.unfold(2, kernel, stride).transpose(-1, -2) + pe.unsqueeze(0).unsqueeze(2);
  const int64_t nc = windows.size(2);
  return torch::matmul(windows.reshape({b, hkv, nc, kernel * d}), weight.unsqueeze(0));
}

at::Tensor NsaMeanCompressionWeight(int64_t kv_heads, int64_t kernel, int64_t head_dim) {
  return (torch::eye(head_dim).repeat({kernel, 1}) / double(kernel))
      .unsqueeze(0)
      .repeat({kv_heads, 1, 1});
}

at::Tensor NsaSelectionScores(const at::Tensor& p_cmp, int64_t blocks, const NsaShape& shape) {
  const int64_t a = shape.block_size / shape.stride(), c = shape.kernel() / shape.stride();
  const int64_t nc = p_cmp.size(-1);
  // p_cmp padded with c - 1 zeros in front (windows before the first) and enough behind that
  // block j's windows a j - (c - 1) .. a j + a - 1 all exist: padded index a j + m - n + c - 1.
  const int64_t length = std::max(nc + c - 1, a * (blocks - 1) + a + c - 1);
  std::vector<int64_t> sizes = p_cmp.sizes().vec();
  sizes.back() = length;
  torch::Tensor padded = p_cmp.new_zeros(sizes);
  padded.index_put_({"...", Slice(c - 1, c - 1 + nc)}, p_cmp);
  sizes.back() = blocks;
  torch::Tensor p_slc = p_cmp.new_zeros(sizes);
  for (int64_t m = 0; m < a; ++m) {
    for (int64_t n = 0; n < c; ++n) {
      const int64_t first = m - n + c - 1;
      p_slc += padded.index({"...", Slice(first, first + a * (blocks - 1) + 1, a)});
    }
  }
  return p_slc;
}

at::Tensor NsaTopBlocks(const at::Tensor& score, int64_t first_query, const NsaShape& shape) {
  const int64_t n = shape.selected_blocks;
  const int64_t tc = score.size(2), blocks = score.size(3);
  const auto long_opts = score.options().dtype(torch::kInt64);
  torch::Tensor pos = torch::arange(first_query, first_query + tc, long_opts);
  torch::Tensor block = torch::arange(blocks, long_opts).unsqueeze(0);  // [1, NB]
  torch::Tensor allowed, ranked;
  if (shape.paper_selection) {
    allowed = PaperAllowed(block, pos, shape);
    // Blocks without a score rank below every scored one (scores are >= 0).
    ranked = torch::where(allowed, score, -1.0);
  } else {
    torch::Tensor forced;
    std::tie(allowed, forced) = FlaAllowedAndForced(block, pos, shape.block_size);
    ranked = torch::where(forced, 1.0, score);
  }
  torch::Tensor top = std::get<1>(torch::topk(ranked, std::min(n, blocks), -1));
  torch::Tensor kept = allowed.expand_as(score).gather(-1, top);
  torch::Tensor idx = torch::where(kept, top, -1);
  if (n > blocks) {
    torch::Tensor pad = torch::full({score.size(0), score.size(1), tc, n - blocks}, -1,
                                    idx.options());
    idx = torch::cat({idx, pad}, -1);
  }
  return idx;
}

at::Tensor NsaWindowBlockIndices(int64_t batch, int64_t kv_heads, int64_t seq_len,
                                 int64_t block_size, int64_t window, const at::Device& device) {
  TORCH_CHECK(batch > 0 && kv_heads > 0 && seq_len > 0 && block_size > 0 && window > 0,
              "nsa window indices: batch ", batch, ", kv heads ", kv_heads, ", length ", seq_len,
              ", block size ", block_size, ", window ", window, " must be positive");
  const int64_t blocks = (seq_len + block_size - 1) / block_size;
  const int64_t slots = std::min((window - 1 + block_size - 1) / block_size + 1, blocks);
  const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  torch::Tensor pos = torch::arange(seq_len, opts).unsqueeze(1);  // [T, 1]
  torch::Tensor first = (pos - (window - 1)).clamp_min(0).floor_divide(block_size);
  torch::Tensor block = first + torch::arange(slots, opts);  // [T, n]
  torch::Tensor idx = torch::where(block <= pos.floor_divide(block_size), block, -1);
  return idx.to(torch::kInt32).expand({batch, kv_heads, seq_len, slots}).contiguous();
}

}  // namespace ablate::train
