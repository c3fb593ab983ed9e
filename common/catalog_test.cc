#include "common/catalog.h"

#include "gtest/gtest.h"

namespace ablate {
namespace {

TEST(CatalogTest, Qwen3SmallestMatchesPublishedParameterCount) {
  auto config = ModelByName("qwen3-0.6b");
  ASSERT_TRUE(config.ok()) << config.status();
  // Hugging Face reports 596M for Qwen3-0.6B, the tied embedding counted once.
  EXPECT_EQ(ParameterCount(*config), 596049920);
}

TEST(CatalogTest, TinyModelIsSmallEnoughForCpuTests) {
  auto config = ModelByName("tiny");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(ParameterCount(*config), 115072);
  EXPECT_EQ(config->vocab_size(), 256u);
}

TEST(CatalogTest, UntiedModelsCountTheirHead) {
  auto config = ModelByName("qwen3-8b");
  ASSERT_TRUE(config.ok());
  v1::ModelConfig tied = *config;
  tied.set_tie_word_embeddings(true);
  EXPECT_EQ(ParameterCount(*config) - ParameterCount(tied),
            int64_t{config->vocab_size()} * config->hidden_size());
}

TEST(CatalogTest, UnknownModelNamesTheKnownOnes) {
  auto config = ModelByName("qwen3-1b");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("qwen3-0.6b"), std::string::npos);
}

TEST(CatalogTest, FlopsGrowWithContext) {
  auto config = ModelByName("qwen3-0.6b");
  ASSERT_TRUE(config.ok());
  const double short_context = TrainingFlopsPerToken(*config, 4096);
  EXPECT_GT(short_context, 6.0 * 440e6);
  EXPECT_GT(TrainingFlopsPerToken(*config, 32768), short_context);
}

}  // namespace
}  // namespace ablate
