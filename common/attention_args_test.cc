#include "common/attention_args.h"

#include <gtest/gtest.h>

#include "common/train_config.h"

namespace ablate {
namespace {

v1::TrainConfig Nsa(const std::vector<std::pair<std::string, std::string>>& args) {
  v1::TrainConfig c = DefaultTrainConfig();
  c.set_attention("nsa");
  for (const auto& [name, value] : args) {
    EXPECT_TRUE(SetTrainField(c, "attention_args." + name, value).ok()) << name;
  }
  return c;
}

std::string Problem(const v1::TrainConfig& c) {
  return std::string(ValidateAttentionArgs(c).message());
}

TEST(AttentionArgsTest, DefaultsAreFlasAndThePapers) {
  const NsaShape shape = NsaShapeOf(Nsa({}));
  EXPECT_EQ(shape.block_size, 64);
  EXPECT_EQ(shape.selected_blocks, 16);
  EXPECT_EQ(shape.window, 512);
  EXPECT_TRUE(ValidateAttentionArgs(Nsa({})).ok());
}

TEST(AttentionArgsTest, SetArgumentsReachTheShape) {
  const v1::TrainConfig c = Nsa({{"block_size", "32"}, {"selected_blocks", "8"}, {"window", "0"}});
  ASSERT_TRUE(ValidateTrainConfig(c).ok()) << ValidateTrainConfig(c);
  const NsaShape shape = NsaShapeOf(c);
  EXPECT_EQ(shape.block_size, 32);
  EXPECT_EQ(shape.selected_blocks, 8);
  EXPECT_EQ(shape.window, 0);
  EXPECT_EQ(GetTrainField(c, "attention_args.window"), "0");
  EXPECT_TRUE(IsTrainField("attention_args.window"));
  EXPECT_FALSE(IsTrainField("attention_args."));
}

TEST(AttentionArgsTest, MisspeltTypedAndOutOfRangeArgumentsAreRefusedByName) {
  EXPECT_EQ(Problem(Nsa({{"blok_size", "32"}})),
            "attention_args.blok_size: nsa has no argument blok_size (did you mean block_size?)");
  EXPECT_EQ(Problem(Nsa({{"stride", "16"}})),
            "attention_args.stride: nsa has no argument stride (it takes block_size, "
            "selected_blocks, window, learned_compression)");
  EXPECT_EQ(Problem(Nsa({{"block_size", "0"}})),
            "attention_args.block_size: 0 is outside [1, 65536] for nsa");
  EXPECT_EQ(Problem(Nsa({{"selected_blocks", "2"}})),
            "attention_args.selected_blocks: 2 is outside [3, 65536] for nsa");
  EXPECT_EQ(Problem(Nsa({{"window", "1.5"}})),
            "attention_args.window: 1.5 must be a whole number for nsa");
  EXPECT_EQ(Problem(Nsa({{"window", "nan"}})),
            "attention_args.window: nan must be a finite number for nsa");
  // ValidateTrainConfig, which submit runs on every cell, refuses them too.
  EXPECT_EQ(ValidateTrainConfig(Nsa({{"blok_size", "32"}})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AttentionArgsTest, LearnedCompressionIsRefusedAsNotBuilt) {
  EXPECT_TRUE(ValidateAttentionArgs(Nsa({{"learned_compression", "false"}})).ok());
  const std::string problem = Problem(Nsa({{"learned_compression", "true"}}));
  EXPECT_EQ(problem.rfind("attention_args.learned_compression: true is not built yet", 0), 0u)
      << problem;
}

TEST(AttentionArgsTest, DenseIgnoresThemSoAGridCanShareThem) {
  v1::TrainConfig c = Nsa({{"block_size", "16"}});
  c.set_attention("dense");
  EXPECT_TRUE(ValidateTrainConfig(c).ok());
  EXPECT_EQ(AttentionArgs("dense"), nullptr);
}

}  // namespace
}  // namespace ablate
