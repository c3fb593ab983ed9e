#include "trainer_lib/optim/blockwise_quant.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

// Round trip within half the widest gap of each table, times the block's scale; on an odd
// length, so the last block is padded.
TEST(BlockwiseQuantTest, RoundTripIsWithinHalfAStepOfEachBlock) {
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({7, 37});
  struct Case {
    QuantTable table;
    torch::Tensor input;
    double half_gap;  // half the widest gap between neighbouring table values
  };
  const Case cases[] = {{QuantTable::kNormalFloat4, x, (1.0 - 0.69619280) / 2},
                        {QuantTable::kPositive4, x.abs(), 1.0 / 16},  // below 1/16 rounds up
                        {QuantTable::kPositive8, x.abs(), 1.0 / 256},  // below 1/256 too
                        {QuantTable::kSigned8, x, 0.5 / 127}};
  for (const Case& c : cases) {
    const Quantized q = Quantize(c.input, c.table, 64);
    EXPECT_EQ(q.codes.numel() + 4 * q.scales.numel(), QuantizedBytes(x.numel(), c.table, 64));
    const torch::Tensor back = Dequantize(q, c.table, 64, x.sizes());
    ASSERT_EQ(back.sizes(), x.sizes());
    const torch::Tensor flat = torch::constant_pad_nd(c.input.reshape({-1}), {0, 320 - 259});
    const torch::Tensor scale = flat.view({-1, 64}).abs().amax(1);  // [5]
    const torch::Tensor bound =
        scale.repeat_interleave(64).slice(0, 0, x.numel()).view(x.sizes()) * c.half_gap;
    EXPECT_TRUE(((back - c.input).abs() <= bound * (1 + 1e-6)).all().item<bool>())
        << static_cast<int>(c.table);
    EXPECT_GT((back - c.input).abs().max().item<double>(), 0.0);  // it does quantize
  }
}

TEST(BlockwiseQuantTest, PositiveTableNeverGivesZero) {
  const torch::Tensor x = torch::tensor({0.0f, 1e-9f, 1.0f, 0.5f});
  const torch::Tensor back =
      Dequantize(Quantize(x, QuantTable::kPositive4, 4), QuantTable::kPositive4, 4, {4});
  EXPECT_TRUE((back > 0).all().item<bool>());
  EXPECT_FLOAT_EQ(back[2].item<float>(), 1.0f);
}

// A stack quantized in one pass gives each slice the codes and scales of that slice alone, its
// last block padded on its own (259 elements: 4 blocks of 64 and 3 padded), and back.
TEST(BlockwiseQuantTest, EachSliceOfAStackAsIfAlone) {
  torch::manual_seed(1);
  const torch::Tensor xs = torch::randn({3, 7, 37});
  for (QuantTable table : {QuantTable::kNormalFloat4, QuantTable::kSigned8}) {
    const std::vector<Quantized> each = QuantizeEach(xs, table, 64);
    ASSERT_EQ(each.size(), 3u);
    std::vector<torch::Tensor> alone_back;
    for (int64_t b = 0; b < 3; ++b) {
      const Quantized alone = Quantize(xs[b], table, 64);
      EXPECT_TRUE(torch::equal(each[b].codes, alone.codes)) << b;
      EXPECT_TRUE(torch::equal(each[b].scales, alone.scales)) << b;
      alone_back.push_back(Dequantize(alone, table, 64, {7, 37}));
    }
    EXPECT_TRUE(torch::equal(DequantizeEach(each, table, 64, {7, 37}), torch::stack(alone_back)));
  }
}

}  // namespace
}  // namespace ablate::train
