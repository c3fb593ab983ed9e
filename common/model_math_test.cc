#include "common/model_math.h"

#include "common/catalog.h"
#include "gtest/gtest.h"

namespace ablate {
namespace {

v1::ModelConfig Model(absl::string_view name) {
  absl::StatusOr<v1::ModelConfig> config = ModelByName(name);
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

TEST(ModelMathTest, Qwen3SmallestMatchesPublishedParameterCount) {
  // transformers reports 596,049,920 for Qwen3-0.6B, the tied embedding counted once.
  EXPECT_EQ(ParameterCount(Model("qwen3-0.6b")), 596049920);
  EXPECT_EQ(ParameterCount(Model("tiny")), 115072);
}

TEST(ModelMathTest, UntiedModelsCountTheirHead) {
  const v1::ModelConfig untied = Model("qwen3-8b");
  v1::ModelConfig tied = untied;
  tied.set_tie_word_embeddings(true);
  EXPECT_EQ(ParameterCount(untied) - ParameterCount(tied),
            int64_t{untied.vocab_size()} * untied.hidden_size());
}

TEST(ModelMathTest, DenseFlopsArePinned) {
  // 6 * 596,049,920 + 12 * 28 layers * 16 heads * 128 head_dim * (4096 + 1) / 2 keys.
  EXPECT_DOUBLE_EQ(TrainingFlopsPerToken(Model("qwen3-0.6b"), 4096), 4985929728.0);
  EXPECT_DOUBLE_EQ(MeanKeysPerQuery("dense", 4), 2.5);
}

TEST(ModelMathTest, UntiedEmbeddingIsALookupNotAMatmul) {
  const v1::ModelConfig untied = Model("qwen3-8b");
  v1::ModelConfig tied = untied;
  tied.set_tie_word_embeddings(true);
  // Untying adds a head (a matmul) and makes the embedding a lookup: no FLOPs change.
  EXPECT_DOUBLE_EQ(TrainingFlopsPerToken(untied, 4096), TrainingFlopsPerToken(tied, 4096));
}

TEST(ModelMathTest, NsaKeysArePinnedAndBounded) {
  // At 64K: compressed (32768.5 - 32) / 16 + 1, selected 16 x 64 ramping in, window 512
  // ramping in.
  EXPECT_DOUBLE_EQ(MeanKeysPerQuery("nsa", 65536), 3573.04296875);
  // Past the ramps, only the compressed branch grows with the context.
  const double at_1m = MeanKeysPerQuery("nsa", 1 << 20);
  EXPECT_LT(at_1m, MeanKeysPerQuery("dense", 1 << 20) / 15);
  EXPECT_LT(TrainingFlopsPerToken(Model("qwen3-0.6b"), 131072, "nsa"),
            TrainingFlopsPerToken(Model("qwen3-0.6b"), 131072, "dense"));
}

TEST(ModelMathTest, TinyFp32PlanIsPinned) {
  RankWork work;
  work.micro_batch_size = 2;
  work.context_length = 32;
  work.bf16 = false;
  absl::StatusOr<MemoryPlan> plan = PlanMemory(Model("tiny"), work);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->weights, 460288);
  EXPECT_EQ(plan->gradients, 460288);
  EXPECT_EQ(plan->optimizer, 920576);
  EXPECT_EQ(plan->activations, 786432);
  EXPECT_EQ(plan->loss, 196608);
  EXPECT_EQ(plan->recompute, 0);
  // The forward's end (activations and the loss) outweighs the gradients.
  EXPECT_EQ(plan->total(), 460288 + 920576 + 786432 + 196608);
}

TEST(ModelMathTest, PeakIsTheLargerOfTheForwardAndTheBackwardEnd) {
  const v1::ModelConfig model = Model("qwen3-4b");
  RankWork work;
  work.activation_checkpointing = true;
  work.context_length = 32768;  // long sequences: the saved layer inputs and the loss lead
  const MemoryPlan long_context = *PlanMemory(model, work);
  EXPECT_GT(long_context.forward_end(), long_context.backward_end());
  EXPECT_EQ(long_context.total(),
            long_context.weights + long_context.optimizer + long_context.forward_end());
  work.context_length = 4096;  // short ones: the fp32 gradients lead
  const MemoryPlan short_context = *PlanMemory(model, work);
  EXPECT_LT(short_context.forward_end(), short_context.backward_end());
  EXPECT_EQ(short_context.total(),
            short_context.weights + short_context.optimizer + short_context.backward_end());
  EXPECT_GT(short_context.recompute, 0);
}

TEST(ModelMathTest, CheckpointingKeepsOnlyLayerInputs) {
  RankWork work;
  work.context_length = 32768;
  const v1::ModelConfig model = Model("qwen3-0.6b");
  const MemoryPlan full = *PlanMemory(model, work);
  work.activation_checkpointing = true;
  const MemoryPlan checkpointed = *PlanMemory(model, work);
  EXPECT_LT(checkpointed.activations * 5, full.activations);
  EXPECT_EQ(checkpointed.optimizer, full.optimizer);
}

TEST(ModelMathTest, OptimizerStateOrdersAsTheMethodsDo) {
  const v1::ModelConfig model = Model("qwen3-0.6b");
  auto state = [&](const std::string& optimizer) {
    RankWork work;
    work.optimizer = optimizer;
    absl::StatusOr<MemoryPlan> plan = PlanMemory(model, work);
    EXPECT_TRUE(plan.ok()) << optimizer << ": " << plan.status();
    return plan.ok() ? plan->optimizer : 0;
  };
  const int64_t adamw = state("adamw");
  EXPECT_EQ(adamw, 8 * ParameterCount(model));
  EXPECT_LT(state("adamw8bit") * 3, adamw);   // 2 bytes and a scale per 256, not 8
  EXPECT_LT(state("muon"), adamw);            // one moment for hidden matrices
  EXPECT_GT(state("soap"), adamw);            // plus preconditioners
  EXPECT_LT(state("soap4bit"), state("soap"));
  RankWork unknown;
  unknown.optimizer = "sgd";
  EXPECT_EQ(PlanMemory(model, unknown).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelMathTest, PeakFlopsKnowsHopperAndNotCpus) {
  EXPECT_DOUBLE_EQ(PeakMatmulFlops("NVIDIA H200"), 989.4e12);
  EXPECT_DOUBLE_EQ(PeakMatmulFlops("NVIDIA H100 80GB HBM3"), 989.4e12);
  EXPECT_EQ(PeakMatmulFlops("cpu"), 0);
}

}  // namespace
}  // namespace ablate
