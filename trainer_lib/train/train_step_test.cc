#include "trainer_lib/train/train_step.h"

#include <iostream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/catalog.h"
#include "common/train_config.h"
#include "trainer_lib/optim/optimizer.h"
#include "trainer_lib/train/cross_entropy.h"

namespace ablate::train {
namespace {

namespace F = torch::nn::functional;

// The largest |a - b| relative to the largest |b|.
double RelativeError(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<double>();
}

TEST(ChunkedCrossEntropyTest, EqualsThePlainLossAndItsGradient) {
  torch::manual_seed(3);
  const int64_t n = 37, h = 16, v = 50;  // 37 tokens: chunks of 8 leave a ragged last one
  torch::Tensor hidden = torch::randn({n, h}).requires_grad_(true);
  torch::Tensor weight = torch::randn({v, h}).requires_grad_(true);
  torch::Tensor targets = torch::randint(0, v, {n}, torch::kInt64);
  targets.index_put_({torch::tensor({2, 11, 30})}, kIgnoreIndex);

  torch::Tensor plain = F::cross_entropy(
      torch::matmul(hidden, weight.t()), targets,
      F::CrossEntropyFuncOptions().reduction(torch::kSum).ignore_index(kIgnoreIndex));
  plain.backward();
  const torch::Tensor plain_dh = hidden.grad().clone(), plain_dw = weight.grad().clone();
  hidden.mutable_grad().zero_();
  weight.mutable_grad().zero_();

  torch::Tensor chunked = ChunkedCrossEntropySum(hidden, weight, targets, 8, torch::kFloat32);
  (chunked * 2.5).backward();  // the incoming gradient scales what was stored
  EXPECT_NEAR(chunked.item<double>(), plain.item<double>(), 1e-5 * plain.item<double>());
  EXPECT_LT(RelativeError(hidden.grad(), 2.5 * plain_dh), 1e-5);
  EXPECT_LT(RelativeError(weight.grad(), 2.5 * plain_dw), 1e-5);
  EXPECT_EQ(hidden.grad()[2].abs().sum().item<double>(), 0.0);  // an ignored position

  torch::NoGradGuard no_grad;  // evaluation takes the path without gradients
  EXPECT_NEAR(ChunkedCrossEntropySum(hidden, weight, targets, 5, torch::kFloat32).item<double>(),
              plain.item<double>(), 1e-5 * plain.item<double>());
}

// The loss hands its stored gradients to autograd instead of keeping them while the loss
// tensor lives (through the whole backward of the model below it): a second backward through
// the same graph finds nothing left and says so.
TEST(ChunkedCrossEntropyTest, BackwardHandsItsGradientsOver) {
  torch::manual_seed(4);
  torch::Tensor hidden = torch::randn({9, 8}).requires_grad_(true);
  torch::Tensor weight = torch::randn({20, 8}).requires_grad_(true);
  const torch::Tensor targets = torch::randint(0, 20, {9}, torch::kInt64);
  torch::Tensor loss = ChunkedCrossEntropySum(hidden, weight, targets, 4, torch::kFloat32);
  loss.backward({}, /*retain_graph=*/true);
  const torch::Tensor first = weight.grad().clone();
  try {
    loss.backward();
    ADD_FAILURE() << "a second backward ran";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("backward runs once"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(torch::equal(weight.grad(), first));
}

// On CUDA in bf16 the loss's kernel (trainer_lib/kernels/cross_entropy.h) takes each chunk's
// loss and softmax gradient when the kernels are built. Loss within fp32 rounding, gradients
// within twice the eager bf16 formula's own error against fp64 from the same bf16 logits, on
// Qwen3's vocabulary (16-byte loads) and an odd one (one element at a time), ignored rows
// included, ragged chunks.
TEST(ChunkedCrossEntropyTest, Bf16OnCudaWithinTheEagerFormulasError) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (const int64_t v : {int64_t{151936}, int64_t{1001}}) {
    torch::manual_seed(5);
    const int64_t n = 77, h = 64;
    torch::Tensor hidden = torch::randn({n, h}, cuda).requires_grad_(true);
    torch::Tensor weight = (torch::randn({v, h}, cuda) * 0.5).requires_grad_(true);
    torch::Tensor targets = torch::randint(0, v, {n}, cuda.dtype(torch::kInt64));
    targets.index_put_({torch::tensor({0, 40}, cuda.dtype(torch::kInt64))}, kIgnoreIndex);
    torch::Tensor loss = ChunkedCrossEntropySum(hidden, weight, targets, 32, torch::kBFloat16);
    loss.backward();

    torch::NoGradGuard no_grad;
    const torch::Tensor hb = hidden.detach().to(torch::kBFloat16);
    const torch::Tensor wb = weight.detach().to(torch::kBFloat16);
    const torch::Tensor logits = torch::matmul(hb, wb.t());  // bf16, as both paths have them
    const torch::Tensor valid = (targets != kIgnoreIndex).unsqueeze(1);
    const torch::Tensor at_target = targets.clamp_min(0).unsqueeze(1);
    // d loss / d logits by the eager formula in `dtype`.
    auto softmax_grad = [&](torch::ScalarType dtype) {
      const torch::Tensor z = logits.to(dtype);
      torch::Tensor d = (z - z.logsumexp(1, /*keepdim=*/true)).exp();
      d.scatter_add_(1, at_target, -torch::ones({n, 1}, d.options()));
      return d * valid;
    };
    const torch::Tensor z64 = logits.to(torch::kF64);
    const torch::Tensor ref_loss =
        ((z64.logsumexp(1) - z64.gather(1, at_target).squeeze(1)) * valid.squeeze(1)).sum();
    const torch::Tensor d64 = softmax_grad(torch::kF64);
    const torch::Tensor ref_dh = torch::matmul(d64, wb.to(torch::kF64));
    const torch::Tensor ref_dw = torch::matmul(d64.t(), hb.to(torch::kF64));
    const torch::Tensor d_eager = softmax_grad(torch::kFloat32).to(torch::kBFloat16);
    const torch::Tensor eager_dh = torch::matmul(d_eager, wb).to(torch::kF64);
    const torch::Tensor eager_dw = torch::matmul(d_eager.t(), hb).to(torch::kF64);

    EXPECT_NEAR(loss.item<double>(), ref_loss.item<double>(), 1e-5 * ref_loss.item<double>())
        << "vocab " << v;
    const torch::Tensor eval_loss =  // without gradients, as evaluation computes it
        ChunkedCrossEntropySum(hidden, weight, targets, 32, torch::kBFloat16);
    EXPECT_NEAR(eval_loss.item<double>(), ref_loss.item<double>(), 1e-5 * ref_loss.item<double>())
        << "vocab " << v;
    const double dh = RelativeError(hidden.grad().to(torch::kF64), ref_dh);
    const double dw = RelativeError(weight.grad().to(torch::kF64), ref_dw);
    EXPECT_LE(dh, 2 * RelativeError(eager_dh, ref_dh) + 1e-6) << "vocab " << v;
    EXPECT_LE(dw, 2 * RelativeError(eager_dw, ref_dw) + 1e-6) << "vocab " << v;
    EXPECT_EQ(hidden.grad()[40].abs().sum().item<double>(), 0.0) << "an ignored position";
    std::cout << "  vocab " << v << ": dh " << dh << " (eager " << RelativeError(eager_dh, ref_dh)
              << "), dW " << dw << " (eager " << RelativeError(eager_dw, ref_dw) << ")\n";
  }
}

// A tiny model and AdamW built from `seed`, and the step over them.
struct Tiny {
  explicit Tiny(const v1::TrainConfig& c, uint64_t seed = 7) : config(WithLoopDefaults(c)) {
    torch::manual_seed(seed);
    model = *BuildQwen3(*ModelByName("tiny"), "dense");
    optimizer = *MakeOptimizer(config, *model);
    step = std::make_unique<TrainStep>(*model, *optimizer, config);
  }
  v1::TrainConfig config;
  Qwen3 model{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<TrainStep> step;
};

v1::TrainConfig TinyConfig() {
  v1::TrainConfig c = DefaultTrainConfig();
  c.set_batch_size(8);
  c.set_context_length(32);
  c.set_loss_chunk_tokens(100);  // ragged chunks over 8 x 32 tokens
  return c;
}

torch::Tensor Tokens(int64_t b, int64_t t) {
  torch::manual_seed(11);
  return torch::randint(0, 256, {b, t}, torch::kInt64);
}

TEST(TrainStepTest, MicroBatchesGiveTheWholeBatchsStep) {
  v1::TrainConfig c = TinyConfig();
  Tiny whole(c);
  c.set_micro_batch_size(2);
  Tiny accumulated(c);
  torch::Tensor inputs = Tokens(8, 32), targets = Tokens(8, 32).roll(1, 1);
  targets.index_put_({0, torch::indexing::Slice(0, 5)}, kIgnoreIndex);  // uneven real tokens

  const TrainStep::Result a = whole.step->Run(inputs, targets, 1e-3);
  const TrainStep::Result b = accumulated.step->Run(inputs, targets, 1e-3);
  EXPECT_NEAR(b.loss.item<double>(), a.loss.item<double>(), 1e-6);
  EXPECT_NEAR(b.grad_norm.item<double>(), a.grad_norm.item<double>(), 1e-5);
  // Adam's first update is about lr * sign(gradient), so rounding-level gradient differences
  // near zero move a weight by up to 2 lr: 2e-3 against weights of ~0.1, where a wrong
  // accumulation would move whole updates.
  const auto pa = whole.model->parameters(), pb = accumulated.model->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_LT(RelativeError(pb[i], pa[i]), 3e-4) << i;
}

TEST(TrainStepTest, ActivationCheckpointingGivesTheSameStep) {
  v1::TrainConfig c = TinyConfig();
  Tiny plain(c);
  torch::Tensor inputs = Tokens(8, 32), targets = Tokens(8, 32).roll(1, 1);
  const TrainStep::Result a = plain.step->Run(inputs, targets, 1e-3);
  c.set_activation_checkpointing(true);
  // Every checkpoint on the device, then the first layer's in host memory.
  for (uint32_t offloaded : {0u, 1u}) {
    c.set_checkpoint_offload_layers(offloaded);
    Tiny recomputed(c);
    const TrainStep::Result b = recomputed.step->Run(inputs, targets, 1e-3);
    EXPECT_NEAR(b.loss.item<double>(), a.loss.item<double>(), 1e-6) << offloaded;
    EXPECT_NEAR(b.grad_norm.item<double>(), a.grad_norm.item<double>(), 1e-6) << offloaded;
    const auto pa = plain.model->parameters(), pb = recomputed.model->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_LT(RelativeError(pb[i], pa[i]), 1e-6) << i << " offloaded " << offloaded;
    }
  }
}

TEST(TrainStepTest, Bf16ChangesTheLossByMoreThanFp32Rounding) {
  v1::TrainConfig c = TinyConfig();
  Tiny fp32(c);
  c.set_precision("bf16");
  Tiny bf16(c);  // the same weights: same seed
  torch::Tensor inputs = Tokens(8, 32), targets = Tokens(8, 32).roll(1, 1);
  const double loss32 = fp32.step->EvalLoss(inputs, targets);
  const double loss16 = bf16.step->EvalLoss(inputs, targets);
  // bf16 keeps 8 bits of mantissa: products differ from fp32 by ~1e-3 relative. Ignoring the
  // setting would make the two equal to fp32 rounding (~1e-7).
  EXPECT_GT(std::abs(loss16 - loss32), 1e-5) << loss32 << " " << loss16;
  EXPECT_LT(std::abs(loss16 - loss32), 5e-2) << loss32 << " " << loss16;
  // A second fp32 model with other chunking agrees with the first to fp32 rounding.
  c.set_precision("fp32");
  c.set_loss_chunk_tokens(7);
  Tiny fp32_again(c);
  EXPECT_NEAR(fp32_again.step->EvalLoss(inputs, targets), loss32, 1e-6);
}

TEST(TrainStepTest, SkipModeLeavesTheWeightsOfANonFiniteStep) {
  v1::TrainConfig c = TinyConfig();
  c.set_nonfinite("skip");
  Tiny tiny(c);
  const std::vector<torch::Tensor> before = [&] {
    std::vector<torch::Tensor> copies;
    for (const torch::Tensor& p : tiny.model->parameters()) copies.push_back(p.detach().clone());
    return copies;
  }();
  {
    torch::NoGradGuard no_grad;
    tiny.model->parameters()[0][0][0].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  torch::Tensor inputs = Tokens(8, 32), targets = Tokens(8, 32).roll(1, 1);
  inputs.index_put_({torch::indexing::Slice(), 0}, 0);  // the NaN embedding row is used
  const TrainStep::Result r = tiny.step->Run(inputs, targets, 1e-3);
  EXPECT_TRUE(r.skipped);
  EXPECT_TRUE(std::isnan(r.loss.item<double>()));
  const auto after = tiny.model->parameters();
  for (size_t i = 1; i < after.size(); ++i) EXPECT_TRUE(torch::equal(after[i], before[i])) << i;
}

}  // namespace
}  // namespace ablate::train
