#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/catalog.h"
#include "trainer_lib/model/qwen3.h"
#include "trainer_lib/optim/soap.h"
#include "trainer_lib/optim/soap4bit.h"

namespace ablate::train {
namespace {

// A tiny Qwen3 learns a noisy bigram (the next byte is 5 x + 3 mod 256 half the time, else
// random, so the loss has a floor near 3.45); SOAP and SOAP-4bit, same data, same seed, 120
// steps, end within 1% of each other. In the long suite: about two CPU-minutes.
double FinalLoss(bool four_bit) {
  torch::manual_seed(7);
  auto config = ModelByName("tiny");
  EXPECT_TRUE(config.ok());
  auto model = BuildQwen3(*config, "dense");
  EXPECT_TRUE(model.ok());
  std::vector<torch::Tensor> matrices, vectors;
  for (const torch::Tensor& p : (*model)->parameters()) {
    (p.dim() >= 2 ? matrices : vectors).push_back(p);
  }
  const SoapOptions options = SoapOptions(3e-3).weight_decay(0.01);
  std::vector<torch::optim::OptimizerParamGroup> groups = {
      torch::optim::OptimizerParamGroup(matrices, std::make_unique<SoapOptions>(options)),
      torch::optim::OptimizerParamGroup(
          vectors, std::make_unique<SoapOptions>(SoapOptions(options).weight_decay(0)))};
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (four_bit) {
    optimizer = std::make_unique<Soap4bit>(groups, options);
  } else {
    optimizer = std::make_unique<Soap>(groups, options);
  }
  torch::Generator data = at::detail::createCPUGenerator(11);
  double last = 0;
  constexpr int kSteps = 120;
  for (int step = 0; step < kSteps; ++step) {
    torch::Tensor tokens = torch::randint(256, {8, 48}, data);
    const torch::Tensor keep = torch::rand({8, 47}, data) < 0.5;
    for (int64_t i = 1; i < 48; ++i) {
      const torch::Tensor next = (tokens.select(1, i - 1) * 5 + 3).remainder(256);
      tokens.select(1, i).copy_(torch::where(keep.select(1, i - 1), next, tokens.select(1, i)));
    }
    const torch::Tensor logits = (*model)->forward(tokens);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(
        logits.slice(1, 0, 47).reshape({-1, 256}), tokens.slice(1, 1).reshape({-1}));
    optimizer->zero_grad();
    loss.backward();
    optimizer->step();
    if (step >= kSteps - 5) last += loss.item<double>() / 5;  // mean of the last five
  }
  return last;
}

TEST(Soap4bitTest, TinyModelLossWithinOnePercentOfSoap) {
  const double soap = FinalLoss(false);
  const double soap4bit = FinalLoss(true);
  EXPECT_LT(soap, 0.8 * std::log(256.0)) << "SOAP did not train";
  EXPECT_NEAR(soap4bit, soap, 0.01 * soap);
  std::printf("final loss: soap %.4f, soap4bit %.4f\n", soap, soap4bit);
}

}  // namespace
}  // namespace ablate::train
