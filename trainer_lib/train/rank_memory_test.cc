#include "trainer_lib/train/rank_memory.h"

#include <gtest/gtest.h>

#include "common/catalog.h"
#include "common/train_config.h"

namespace ablate::train {
namespace {

// Qwen3-0.6B NSA at 1M tokens with 20 layers offloaded pins 80 GiB a rank: 8 ranks on a host
// with 500 GiB available are refused before anything runs, 1 rank is planned.
TEST(RankMemoryTest, RefusesAJobWhoseRanksCannotPinTheirCheckpoints) {
  v1::TrainConfig config = DefaultTrainConfig();
  config.set_model("qwen3-0.6b");
  config.set_attention("nsa");
  config.set_context_length(1 << 20);
  config.set_batch_size(8);
  config.set_micro_batch_size(1);
  config.set_gpus(8);
  config.set_precision("bf16");
  config.set_activation_checkpointing(true);
  config.set_checkpoint_offload_layers(20);
  const v1::ModelConfig model = *ModelByName("qwen3-0.6b");
  const uint64_t available = uint64_t{500} << 30;

  absl::StatusOr<int64_t> eight = PlanRankMemory(model, config, 8, false, true, available);
  EXPECT_EQ(eight.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(eight.status().message().find("640.0 GiB for the job's 8 ranks"),
            absl::string_view::npos)
      << eight.status();

  absl::StatusOr<int64_t> one = PlanRankMemory(model, config, 1, false, true, available);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_GT(*one, int64_t{100} << 30);  // the measured 1M rank's plan, 137.5 GiB

  config.set_checkpoint_offload_layers(0);  // nothing pinned: any host will do
  EXPECT_TRUE(PlanRankMemory(model, config, 8, false, true, uint64_t{1} << 30).ok());
}

}  // namespace
}  // namespace ablate::train
