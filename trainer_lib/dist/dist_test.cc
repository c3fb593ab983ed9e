#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "absl/strings/match.h"
#include "common/catalog.h"
#include "common/train_config.h"
#include "trainer_lib/dist/grad_sync.h"
#include "trainer_lib/dist/placement.h"
#include "trainer_lib/dist/process_group.h"
#include "trainer_lib/dist/zero.h"

namespace ablate::train::dist {
namespace {

// Sets the launcher's variables for one test and clears them afterwards.
class Environment {
 public:
  explicit Environment(std::vector<std::pair<const char*, const char*>> values) {
    for (const char* name : {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) {
      ::unsetenv(name);
    }
    for (const auto& [name, value] : values) ::setenv(name, value, 1);
  }
  ~Environment() {
    for (const char* name : {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) {
      ::unsetenv(name);
    }
  }
};

TEST(RankInfoTest, NoWorldSizeIsOneProcessWhateverTheJobsRanks) {
  Environment env({});
  absl::StatusOr<RankInfo> info = RankInfoFromEnvironment(3);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->world_size, 1);
  EXPECT_EQ(info->rank, 0);
}

TEST(RankInfoTest, ReadsTorchrunsVariables) {
  Environment env({{"RANK", "2"},
                   {"LOCAL_RANK", "1"},
                   {"WORLD_SIZE", "3"},
                   {"MASTER_ADDR", "127.0.0.1"},
                   {"MASTER_PORT", "29511"}});
  absl::StatusOr<RankInfo> info = RankInfoFromEnvironment(3);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->rank, 2);
  EXPECT_EQ(info->local_rank, 1);
  EXPECT_EQ(info->world_size, 3);
  EXPECT_EQ(info->master_addr, "127.0.0.1");
  EXPECT_EQ(info->master_port, 29511);
}

TEST(RankInfoTest, RefusesWhatTheJobDoesNotAskForOrTheLauncherLeftOut) {
  {
    Environment env({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
    EXPECT_EQ(RankInfoFromEnvironment(2).status().message(),
              "WORLD_SIZE=1 but the job asks for 2 ranks (gpus, or cpu_ranks on a CPU)");
  }
  {
    Environment env({{"RANK", "2"},
                     {"WORLD_SIZE", "2"},
                     {"MASTER_ADDR", "127.0.0.1"},
                     {"MASTER_PORT", "29511"}});
    EXPECT_EQ(RankInfoFromEnvironment(2).status().message(), "RANK=2 is not below WORLD_SIZE=2");
  }
  {
    Environment env({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29511"}});
    EXPECT_EQ(RankInfoFromEnvironment(2).status().message(), "MASTER_ADDR is not set");
  }
  {
    Environment env({{"RANK", "x"}, {"WORLD_SIZE", "2"}});
    EXPECT_EQ(RankInfoFromEnvironment(2).status().message(),
              "RANK=x is not a non-negative integer");
  }
}

TEST(PlacementTest, ACpuJobsRanksRunOnTheCpu) {
  v1::TrainConfig config = DefaultTrainConfig();
  EXPECT_TRUE(RankDevice(config, 0)->is_cpu());
}

TEST(ZeroTest, OwnersTakeTheLargestParametersFirstToTheLeastLoadedRank) {
  std::vector<NamedParameter> parameters;
  for (const int64_t size : {10, 3, 7, 5}) {
    parameters.push_back({"p" + std::to_string(size), torch::zeros({size})});
  }
  // 10 -> rank 0; 7 -> rank 1; 5 -> rank 1 (7 < 10); 3 -> rank 0 (10 < 12).
  EXPECT_EQ(AssignOwners(parameters, 2), (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(AssignOwners(parameters, 1), (std::vector<int>{0, 0, 0, 0}));
}

TEST(ZeroTest, ShardingFollowsTheSettingAndUnderAutoTheMemoryPlan) {
  absl::StatusOr<v1::ModelConfig> model = ModelByName("qwen3-8b");
  ASSERT_TRUE(model.ok()) << model.status();
  v1::TrainConfig c = DefaultTrainConfig();
  c.set_gpus(2);
  c.set_batch_size(2);
  c.set_context_length(4096);
  c.set_optimizer("soap");
  constexpr int64_t kH200 = int64_t{141} << 30;
  // SOAP's state for 8B parameters (about 64 GB of moments plus preconditioners) on top of
  // fp32 weights and gradients fits no single H200: auto shards.
  EXPECT_TRUE(*ShardsOptimizerState(c, *model, kH200));
  EXPECT_FALSE(*ShardsOptimizerState(c, *model, /*device_memory_bytes=*/0));  // a CPU
  c.set_optimizer_sharding("none");
  EXPECT_FALSE(*ShardsOptimizerState(c, *model, kH200));
  ASSERT_TRUE(ModelByName("qwen3-0.6b").ok());
  c.set_optimizer("adamw");
  c.set_optimizer_sharding("");  // auto: 0.6B with AdamW fits, replicated as DDP does
  EXPECT_FALSE(*ShardsOptimizerState(c, *ModelByName("qwen3-0.6b"), kH200));
  c.set_optimizer_sharding("zero1");
  EXPECT_TRUE(*ShardsOptimizerState(c, *ModelByName("qwen3-0.6b"), kH200));
  c.set_gpus(1);
  c.set_batch_size(1);
  EXPECT_FALSE(*ShardsOptimizerState(c, *ModelByName("qwen3-0.6b"), kH200));  // one rank
}

// A loopback port free a moment ago.
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t size = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Two ranks as two threads of this process over a real TCP store and Gloo. Rank r's loss is
// (r + 1) * sum(a) + r * sum(b^2); c gets no gradient. The first backward pass runs unarmed
// (a micro-batch that accumulates), the second armed. Summed over ranks and both passes:
// grad a = 2 * (1 + 2) = 6, grad b = 2 * (0 + 1) * 2b = 4b, grad c = 0.
TEST(GradientSyncTest, SumsAccumulatedGradientsOverRanksInSeveralBuckets) {
  const int port = FreePort();
  std::vector<std::vector<torch::Tensor>> grads(2);
  std::vector<int64_t> buckets(2);
  std::vector<std::string> errors(2);
  auto rank_main = [&](int rank) {
    RankInfo info{rank, rank, 2, "127.0.0.1", port};
    absl::StatusOr<std::unique_ptr<ProcessGroup>> group =
        ProcessGroup::Connect(info, torch::Device(torch::kCPU), std::chrono::seconds(60));
    if (!group.ok()) {
      errors[rank] = group.status().ToString();
      return;
    }
    torch::Tensor a = torch::ones({4, 3}, torch::requires_grad());
    torch::Tensor b = torch::arange(5, torch::kFloat32).requires_grad_(true);
    torch::Tensor c = torch::ones({2, 2}, torch::requires_grad());
    // 40 bytes per bucket, filled from the last parameter: c (16 bytes) and b (20) share one,
    // a (48) gets its own.
    GradientSync sync(**group, {a, b, c}, /*bucket_bytes=*/40);
    buckets[rank] = sync.bucket_count();
    // Two steps, gradients cleared between them as the trainer does: the second sums into a
    // fresh buffer while the first step's .grad views are gone.
    for (int step = 0; step < 2; ++step) {
      for (torch::Tensor* p : {&a, &b, &c}) p->mutable_grad().reset();
      for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1) sync.Arm();
        ((rank + 1) * a.sum() + rank * (b * b).sum()).backward();
      }
      sync.Finish();
    }
    grads[rank] = {a.grad().clone(), b.grad().clone(), c.grad().clone()};
  };
  std::thread first(rank_main, 0);
  std::thread second(rank_main, 1);
  first.join();
  second.join();
  for (const std::string& error : errors) {
    if (absl::StrContains(error, "lacks")) GTEST_SKIP() << error;
    ASSERT_TRUE(error.empty()) << error;
  }
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(buckets[rank], 2);
    EXPECT_TRUE(torch::equal(grads[rank][0], torch::full({4, 3}, 6.0f))) << grads[rank][0];
    EXPECT_TRUE(torch::equal(grads[rank][1], 4 * torch::arange(5, torch::kFloat32)))
        << grads[rank][1];
    EXPECT_TRUE(torch::equal(grads[rank][2], torch::zeros({2, 2}))) << grads[rank][2];
  }
}

}  // namespace
}  // namespace ablate::train::dist
