#include "trainer_lib/model/qwen3.h"

#include <optional>

#include <gtest/gtest.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include "common/catalog.h"
#include "common/model_math.h"
#include "trainer_lib/model/fused_kernels_testing.h"

namespace ablate::train {
namespace {

v1::ModelConfig Catalog(const char* name) {
  absl::StatusOr<v1::ModelConfig> config = ModelByName(name);
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

int64_t CountParameters(torch::nn::Module& model) {
  int64_t n = 0;
  for (const torch::Tensor& p : model.parameters()) n += p.numel();
  return n;
}

TEST(Qwen3Test, LogitsHaveShapeBatchTimeVocab) {
  torch::manual_seed(0);
  v1::ModelConfig config = Catalog("tiny");
  absl::StatusOr<Qwen3> model = BuildQwen3(config, "dense");
  ASSERT_TRUE(model.ok()) << model.status();
  torch::Tensor tokens = torch::randint(0, config.vocab_size(), {3, 17}, torch::kInt64);
  torch::Tensor logits = (*model)->forward(tokens);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 17, config.vocab_size()}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

TEST(Qwen3Test, ParameterCountMatchesCatalog) {
  for (const char* name : {"tiny", "mini"}) {
    v1::ModelConfig config = Catalog(name);
    absl::StatusOr<Qwen3> model = BuildQwen3(config, "dense");
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ(CountParameters(**model), ParameterCount(config)) << name;
  }
}

TEST(Qwen3Test, UntiedHeadAddsOneMatrix) {
  v1::ModelConfig config = Catalog("tiny");
  config.set_tie_word_embeddings(false);
  absl::StatusOr<Qwen3> model = BuildQwen3(config, "dense");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(CountParameters(**model), ParameterCount(config));
  EXPECT_TRUE((*model)->named_parameters().contains("lm_head.weight"));
}

TEST(Qwen3Test, ParameterNamesFollowHuggingFace) {
  absl::StatusOr<Qwen3> model = BuildQwen3(Catalog("tiny"), "dense");
  ASSERT_TRUE(model.ok()) << model.status();
  auto params = (*model)->named_parameters();
  for (const char* name :
       {"embed_tokens.weight", "layers.0.input_layernorm.weight",
        "layers.0.self_attn.q_proj.weight", "layers.0.self_attn.k_norm.weight",
        "layers.1.post_attention_layernorm.weight", "layers.1.mlp.gate_proj.weight",
        "layers.1.mlp.down_proj.weight", "norm.weight"}) {
    EXPECT_TRUE(params.contains(name)) << name;
  }
  EXPECT_FALSE(params.contains("lm_head.weight"));  // tied
}

TEST(Qwen3Test, LaterTokensDoNotChangeEarlierLogits) {
  torch::manual_seed(0);
  v1::ModelConfig config = Catalog("tiny");
  absl::StatusOr<Qwen3> model = BuildQwen3(config, "dense");
  ASSERT_TRUE(model.ok()) << model.status();
  torch::NoGradGuard no_grad;
  torch::Tensor tokens = torch::randint(0, config.vocab_size(), {2, 24}, torch::kInt64);
  torch::Tensor changed = tokens.clone();
  changed.select(/*dim=*/1, 16).add_(1).remainder_(config.vocab_size());
  torch::Tensor a = (*model)->forward(tokens);
  torch::Tensor b = (*model)->forward(changed);
  using torch::indexing::Slice;
  EXPECT_TRUE(torch::allclose(a.index({Slice(), Slice(0, 16)}), b.index({Slice(), Slice(0, 16)}),
                              /*rtol=*/0.0, /*atol=*/1e-6));
  EXPECT_FALSE(torch::allclose(a.index({Slice(), 16}), b.index({Slice(), 16})));
}

// Counts a parameter's gradient accumulations, as data-parallel gradient sync's hook sees them.
class CountAccumulations : public torch::autograd::PostAccumulateGradHook {
 public:
  explicit CountAccumulations(int* count) : count_(count) {}
  void operator()(const torch::autograd::Variable& /*tensor*/) override { ++*count_; }

 private:
  int* count_;
};

// Under checkpointing a long sequence recomputes its MLPs per chunk of positions (here 8 of
// 37: four whole chunks and a partial one): the same loss and gradients as whole MLPs, and
// still one accumulation per parameter and backward, which gradient sync requires.
TEST(Qwen3Test, ChunkedMlpRecomputationGivesTheSameGradients) {
  const v1::ModelConfig config = Catalog("tiny");
  torch::manual_seed(4);
  const torch::Tensor tokens = torch::randint(0, config.vocab_size(), {2, 37}, torch::kInt64);
  std::vector<std::vector<torch::Tensor>> grads;
  for (int64_t chunk : {int64_t{1000}, int64_t{8}}) {
    torch::manual_seed(5);
    Qwen3 model = *BuildQwen3(config, "dense");
    model->set_activation_checkpointing(true, /*offloaded_layers=*/0, chunk);
    const std::vector<torch::Tensor> parameters = model->parameters();
    std::vector<int> accumulations(parameters.size(), 0);
    for (size_t i = 0; i < parameters.size(); ++i) {
      torch::autograd::impl::set_post_acc_grad_hooks(
          parameters[i], std::make_unique<CountAccumulations>(&accumulations[i]));
    }
    model->forward(tokens).pow(2).mean().backward();
    EXPECT_EQ(accumulations, std::vector<int>(parameters.size(), 1)) << "chunk " << chunk;
    grads.emplace_back();
    for (const torch::Tensor& p : parameters) grads.back().push_back(p.grad().clone());
  }
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i) {
    EXPECT_TRUE(torch::allclose(grads[1][i], grads[0][i], 1e-5, 1e-7)) << i;
  }
}

// The tiny model's parameter gradients for tokens [2, 33], with or without activation
// checkpointing, on `device`, under bf16 autocast on CUDA. Norm weights are drawn apart from 1,
// so that one norm's weight in another's place shows.
std::vector<torch::Tensor> GradientsOfTiny(bool checkpointing, const torch::Device& device) {
  const v1::ModelConfig config = Catalog("tiny");
  torch::manual_seed(6);
  const torch::Tensor tokens = torch::randint(0, config.vocab_size(), {2, 33}, torch::kInt64);
  Qwen3 model = *BuildQwen3(config, "dense");
  {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : model->parameters()) {
      if (p.dim() == 1) p.uniform_(0.5, 1.5);
    }
  }
  model->to(device);
  model->set_activation_checkpointing(checkpointing);
  {
    std::optional<kernel_test::Bf16Autocast> autocast;
    if (device.is_cuda()) autocast.emplace();
    model->forward(tokens.to(device)).to(torch::kFloat32).pow(2).mean().backward();
  }
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : model->parameters()) grads.push_back(p.grad().cpu());
  return grads;
}

// Without checkpointing, each layer's second residual add runs inside the next layer's first
// norm; a recomputed layer adds eagerly. The two give the same gradients: to fp32 rounding on
// the CPU, and on a GPU with the kernels within bf16's error (the norm's bf16 output may
// differ in its last bit between the two kernels).
TEST(Qwen3Test, FusedLayerBoundariesGiveTheCheckpointedGradients) {
  std::vector<torch::Device> devices = {torch::kCPU};
  if (FusedKernelsEnabled() && torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
  for (const torch::Device& device : devices) {
    const std::vector<torch::Tensor> fused = GradientsOfTiny(false, device);
    const std::vector<torch::Tensor> recomputed = GradientsOfTiny(true, device);
    ASSERT_EQ(fused.size(), recomputed.size());
    const double tolerance = device.is_cuda() ? 2e-2 : 1e-5;
    for (size_t i = 0; i < fused.size(); ++i) {
      const double error =
          ((fused[i] - recomputed[i]).norm() / recomputed[i].norm().clamp_min(1e-12))
              .item<double>();
      EXPECT_LT(error, tolerance) << device << " parameter " << i;
    }
  }
}

TEST(Qwen3Test, UnknownAttentionFails) {
  EXPECT_EQ(BuildQwen3(Catalog("tiny"), "sparse").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Qwen3Test, NsaLayersOwnTheirGateProjectionAndStayCausal) {
  v1::ModelConfig config = Catalog("tiny");
  torch::manual_seed(0);
  NsaShape nsa;
  nsa.block_size = 4;
  nsa.selected_blocks = 3;
  nsa.window = 6;
  absl::StatusOr<Qwen3> model = BuildQwen3(config, "nsa", nsa);
  ASSERT_TRUE(model.ok()) << model.status();
  bool gate_found = false;
  for (const auto& named : (*model)->named_parameters()) {
    if (named.key() == "layers.0.self_attn.attention.g_proj.weight") {
      gate_found = true;
      EXPECT_EQ(named.value().sizes(),
                (std::vector<int64_t>{3 * config.num_attention_heads(), config.hidden_size()}));
    }
  }
  EXPECT_TRUE(gate_found);
  // Changing token 21 leaves every earlier position's logits as they were.
  torch::Tensor tokens = torch::randint(config.vocab_size(), {2, 30}, torch::kInt64);
  torch::Tensor changed = tokens.clone();
  changed.select(/*dim=*/1, 21).add_(1).remainder_(config.vocab_size());
  torch::Tensor a = (*model)->forward(tokens);
  torch::Tensor b = (*model)->forward(changed);
  using torch::indexing::Slice;
  EXPECT_TRUE(torch::allclose(a.index({Slice(), Slice(0, 21)}), b.index({Slice(), Slice(0, 21)}),
                              /*rtol=*/0.0, /*atol=*/1e-6));
  EXPECT_FALSE(torch::allclose(a.index({Slice(), 21}), b.index({Slice(), 21})));
}

}  // namespace
}  // namespace ablate::train
