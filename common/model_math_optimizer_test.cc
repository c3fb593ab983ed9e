// The memory plan's optimizer terms: each method's state and step working memory, ZeRO-1's
// split, and the optimizer arguments that reach them.
#include "common/model_math.h"
#include "common/model_math_testing.h"
#include "gtest/gtest.h"

namespace ablate {
namespace {

// SOAP's step at Qwen3-0.6B, one 4,096-token row, checkpointed: measured on an H200 at
// 25.09 GiB (refresh steps) where the forward's end alone planned 23.64 GiB; the step's own
// working memory, 7 full batches of 2^28 float32 elements beside the gradients, now leads.
TEST(ModelMathTest, PreconditionedOptimizersPlanTheirStepsWorkingMemory) {
  const v1::ModelConfig model = Model("qwen3-0.6b");
  RankWork work;
  work.micro_batch_size = 1;
  work.context_length = 4096;
  work.activation_checkpointing = true;
  for (const char* optimizer : {"soap", "shampoo", "soap4bit"}) {
    work.optimizer = optimizer;
    const MemoryPlan plan = *PlanMemory(model, work);
    EXPECT_EQ(plan.optimizer_step, int64_t{7} * 4 * (int64_t{1} << 28)) << optimizer;
    EXPECT_GT(plan.step_end(), plan.forward_end()) << optimizer;
    EXPECT_EQ(plan.total(), plan.weights + plan.optimizer + plan.step_end()) << optimizer;
  }
  work.optimizer = "soap";
  EXPECT_GT(PlanMemory(model, work)->total(), int64_t{25} << 30);  // above the measured peak
  for (const char* optimizer : {"adamw", "adamw8bit", "muon"}) {
    work.optimizer = optimizer;
    EXPECT_EQ(PlanMemory(model, work)->optimizer_step, 0) << optimizer;
  }
  // A model whose preconditioners fill less than one batch plans 7 copies of them: 7 x 4 bytes
  // x 2 x (1/8 of SOAP's state beyond Adam's moments).
  work.optimizer = "soap";
  const MemoryPlan tiny = *PlanMemory(Model("tiny"), work);
  const int64_t adam = 8 * ParameterCount(Model("tiny"));
  EXPECT_EQ(tiny.optimizer_step, 7 * (tiny.optimizer - adam) / 2);
}

// Under zero1 each of the job's ranks holds about 1/N of the state: the sweep's plan (what
// placement compares with a GPU's memory) and the trainer's agree on it. Under auto the plan
// stays replicated, the larger figure, since the trainer decides from the GPU it gets.
TEST(ModelMathTest, Zero1SplitsTheOptimizerStateOverTheJobsRanks) {
  v1::TrainConfig train;
  train.set_model("qwen3-4b");
  train.set_optimizer("soap");
  train.set_batch_size(2);
  train.set_context_length(4096);
  train.set_gpus(2);
  const v1::ModelConfig model = Model("qwen3-4b");
  train.set_optimizer_sharding("auto");
  const MemoryPlan replicated = *PlanMemory(model, RankWorkOf(train));
  train.set_optimizer_sharding("zero1");
  const RankWork work = RankWorkOf(train);
  EXPECT_EQ(work.optimizer_shards, 2);
  const MemoryPlan sharded = *PlanMemory(model, work);
  EXPECT_EQ(sharded.optimizer, replicated.optimizer / 2);
  EXPECT_EQ(replicated.total() - sharded.total(), replicated.optimizer - sharded.optimizer);
  train.set_gpus(1);
  EXPECT_EQ(RankWorkOf(train).optimizer_shards, 1);
}

// A micro-batch above a rank's share of the batch runs at the share (MicroBatchPerRank), and is
// planned so: a plan at the micro-batch asked for would count memory no rank holds.
TEST(ModelMathTest, TheMicroBatchIsPlannedAtARanksShareAtMost) {
  v1::TrainConfig train;
  train.set_batch_size(16);
  train.set_gpus(2);
  EXPECT_EQ(RankWorkOf(train).micro_batch_size, 8);
  train.set_micro_batch_size(32);
  EXPECT_EQ(RankWorkOf(train).micro_batch_size, 8);
  train.set_micro_batch_size(4);
  EXPECT_EQ(RankWorkOf(train).micro_batch_size, 4);
  train.set_gpus(3);  // 16 does not split over 3 ranks: refused by validation, planned at 5
  EXPECT_EQ(RankWorkOf(train).micro_batch_size, 5);
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
  EXPECT_LT(state("adamw8bit") * 3, adamw);  // 2 bytes and a scale per 256, not 8
  EXPECT_LT(state("muon"), adamw);           // one moment for hidden matrices
  EXPECT_GT(state("soap"), adamw);           // plus preconditioners
  EXPECT_LT(state("soap4bit"), state("soap"));
  RankWork unknown;
  unknown.optimizer = "sgd";
  EXPECT_EQ(PlanMemory(model, unknown).status().code(), absl::StatusCode::kInvalidArgument);
}

// Shampoo holds m, the graft's v and, until start_preconditioning_step, m_graft, and
// preconditions a matrix only when no side exceeds its own bound of 8,192 (shampoo.h): not
// Qwen3's embedding, nor Qwen3-4B's 9,728-wide MLP matrices, whose sides SOAP's bound of 10,000
// lets through one by one.
TEST(ModelMathTest, ShampooPlansItsGraftAndItsOwnBound) {
  auto optimizer_bytes = [](const v1::ModelConfig& model, const std::string& optimizer) {
    RankWork work;
    work.optimizer = optimizer;
    absl::StatusOr<MemoryPlan> plan = PlanMemory(model, work);
    EXPECT_TRUE(plan.ok()) << plan.status();
    return plan.ok() ? plan->optimizer : 0;
  };
  auto square = [](int64_t n) { return n * n; };
  // Qwen3-0.6B: every layer matrix is preconditioned, q and o [2048, 1024], k and v [1024,
  // 1024], gate, up and down [3072, 1024].
  const v1::ModelConfig small = Model("qwen3-0.6b");
  const int64_t small_layer =
      2 * (square(2048) + square(1024)) + 2 * 2 * square(1024) + 3 * (square(3072) + square(1024));
  EXPECT_EQ(optimizer_bytes(small, "shampoo"), 12 * ParameterCount(small) + 8 * 28 * small_layer);
  // Qwen3-4B: q and o [4096, 2560], k and v [1024, 2560], gate, up and down [9728, 2560].
  const v1::ModelConfig large = Model("qwen3-4b");
  const int64_t attention = 2 * (square(4096) + square(2560)) + 2 * (square(1024) + square(2560));
  const int64_t mlp = 3 * (square(9728) + square(2560));
  EXPECT_EQ(optimizer_bytes(large, "shampoo"), 12 * ParameterCount(large) + 8 * 36 * attention);
  EXPECT_EQ(optimizer_bytes(large, "soap"),
            8 * ParameterCount(large) + 8 * (square(2560) + 36 * (attention + mlp)));
}

// The plan reads the optimizer_args that change the state: a bound of 2,048 drops the MLP's
// preconditioners under both rules, and Shampoo starting at step 1 holds no m_graft.
TEST(ModelMathTest, OptimizerArgsReachThePlan) {
  const v1::ModelConfig model = Model("qwen3-0.6b");
  v1::TrainConfig train;
  train.set_optimizer("shampoo");
  train.set_micro_batch_size(1);
  const int64_t defaults = PlanMemory(model, RankWorkOf(train))->optimizer;
  (*train.mutable_optimizer_args())["start_preconditioning_step"] = 1;
  EXPECT_EQ(PlanMemory(model, RankWorkOf(train))->optimizer, defaults - 4 * ParameterCount(model));
  (*train.mutable_optimizer_args())["max_precond_dim"] = 2048;
  const int64_t mlp = int64_t{3} * (3072 * 3072 + 1024 * 1024);
  EXPECT_EQ(PlanMemory(model, RankWorkOf(train))->optimizer,
            defaults - 4 * ParameterCount(model) - 8 * 28 * mlp);
  train.set_optimizer("soap");
  train.clear_optimizer_args();
  const int64_t soap = PlanMemory(model, RankWorkOf(train))->optimizer;
  (*train.mutable_optimizer_args())["max_precond_dim"] = 2048;
  EXPECT_EQ(PlanMemory(model, RankWorkOf(train))->optimizer,
            soap - int64_t{8} * 28 * 3 * 3072 * 3072);
}

}  // namespace
}  // namespace ablate
