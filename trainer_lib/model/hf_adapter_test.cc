#include "trainer_lib/model/hf_adapter.h"

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/catalog.h"
#include "tests/support/temp_folder.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

Qwen3 Build(const v1::ModelConfig& config, uint64_t seed) {
  torch::manual_seed(seed);
  absl::StatusOr<Qwen3> model = BuildQwen3(config, "dense");
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

TEST(HfAdapterTest, NamesFollowTransformers) {
  EXPECT_EQ(HfTensorName("layers.3.self_attn.q_norm.weight"),
            "model.layers.3.self_attn.q_norm.weight");
  EXPECT_EQ(HfTensorName("embed_tokens.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(HfTensorName("lm_head.weight"), "lm_head.weight");
}

TEST(HfAdapterTest, SavedModelLoadsBackIntoAnotherInitialisation) {
  for (bool tied : {true, false}) {
    v1::ModelConfig config = *ModelByName("tiny");
    config.set_tie_word_embeddings(tied);
    Qwen3 saved = Build(config, 1);
    const test::TempFolder folder(std::string("hf_adapter_") + (tied ? "tied" : "untied"));
    const fs::path dir = folder.path();
    ASSERT_TRUE(SaveHfModel(dir, *saved, /*shard_bytes=*/100'000).ok());
    EXPECT_TRUE(fs::exists(dir / "config.json"));
    EXPECT_TRUE(fs::exists(dir / "model.safetensors.index.json"));  // 460 KB in shards

    Qwen3 loaded = Build(config, 2);
    ASSERT_TRUE(LoadHfWeights(dir, *loaded).ok());
    auto expected = saved->named_parameters();
    for (const auto& item : loaded->named_parameters()) {
      EXPECT_TRUE(torch::equal(item.value(), expected[item.key()])) << item.key();
    }
    absl::StatusOr<Qwen3> whole = LoadHfModel(dir);
    ASSERT_TRUE(whole.ok()) << whole.status();
    EXPECT_EQ((*whole)->config().tie_word_embeddings(), tied);
  }
}

TEST(HfAdapterTest, AnotherShapeIsRefusedNamingTheFields) {
  const test::TempFolder folder("hf_adapter_other_shape");
  const fs::path dir = folder.path();
  ASSERT_TRUE(SaveHfModel(dir, *Build(*ModelByName("mini"), 1)).ok());
  Qwen3 tiny = Build(*ModelByName("tiny"), 1);
  absl::Status status = LoadHfWeights(dir, *tiny);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("hidden_size 128 vs 64"));
  EXPECT_THAT(status.message(), HasSubstr("num_hidden_layers 4 vs 2"));
  EXPECT_THAT(status.message(), HasSubstr(dir.string()));
}

// config.json itself, which `model: hf:` may name, holds no weights: the directory is asked for.
TEST(HfAdapterTest, AConfigFileIsRefusedForItsDirectory) {
  const test::TempFolder folder("hf_adapter_config_file");
  const fs::path dir = folder.path();
  Qwen3 tiny = Build(*ModelByName("tiny"), 1);
  ASSERT_TRUE(SaveHfModel(dir, *tiny).ok());
  absl::Status status = LoadHfWeights(dir / "config.json", *tiny);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("config.json is a file; give the model's directory"));
}

TEST(HfAdapterTest, MissingWeightIsNamed) {
  v1::ModelConfig config = *ModelByName("tiny");
  config.set_tie_word_embeddings(false);
  const test::TempFolder folder("hf_adapter_missing_head");
  const fs::path dir = folder.path();
  ASSERT_TRUE(SaveHfModel(dir, *Build(*ModelByName("tiny"), 1)).ok());  // tied: no lm_head
  // The same shapes but untied: the config is rewritten, the weights lack lm_head.weight.
  Qwen3 untied = Build(config, 1);
  const test::TempFolder untied_folder("hf_adapter_untied_config");
  const fs::path untied_dir = untied_folder.path();
  ASSERT_TRUE(SaveHfModel(untied_dir, *untied).ok());
  fs::copy_file(untied_dir / "config.json", dir / "config.json",
                fs::copy_options::overwrite_existing);
  absl::Status status = LoadHfWeights(dir, *untied);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("no lm_head.weight"));
}

}  // namespace
}  // namespace ablate::train
