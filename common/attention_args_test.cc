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
            "selected_blocks, window, learned_compression, compression_kernel, "
            "compression_stride, paper_selection)");
  // Every bad key, a line each, in the order of the keys.
  EXPECT_EQ(Problem(Nsa({{"windw", "64"}, {"blok_size", "16"}, {"window", "1.5"}})),
            "attention_args.blok_size: nsa has no argument blok_size (did you mean block_size?)\n"
            "attention_args.window: 1.5 must be a whole number for nsa\n"
            "attention_args.windw: nsa has no argument windw (did you mean window?)");
  EXPECT_EQ(Problem(Nsa({{"compression_strid", "8"}})),
            "attention_args.compression_strid: nsa has no argument compression_strid (did you "
            "mean compression_stride?)");
  EXPECT_EQ(Problem(Nsa({{"paper_selection", "2"}})),
            "attention_args.paper_selection: 2 must be true or false for nsa");
  EXPECT_EQ(Problem(Nsa({{"block_size", "0"}})),
            "attention_args.block_size: 0 is outside [1, 65536] for nsa");
  EXPECT_EQ(Problem(Nsa({{"selected_blocks", "0"}})),
            "attention_args.selected_blocks: 0 is outside [1, 65536] for nsa");
  EXPECT_EQ(Problem(Nsa({{"selected_blocks", "2"}})),
            "attention_args.selected_blocks: 2 is below 3, the blocks fla's rule forces into "
            "every selection (the first and the two local ones); paper_selection: true (eq. 11, "
            "none forced) takes from 1");
  EXPECT_EQ(Problem(Nsa({{"selected_blocks", "1"}, {"paper_selection", "true"}})), "");
  // Whole numbers in full, not in a double's shortest form (1.04858e+06).
  EXPECT_EQ(Problem(Nsa({{"window", "-1"}})),
            "attention_args.window: -1 is outside [0, 1048576] for nsa");
  EXPECT_EQ(Problem(Nsa({{"window", "2000000"}})),
            "attention_args.window: 2000000 is outside [0, 1048576] for nsa");
  EXPECT_EQ(Problem(Nsa({{"window", "1.5"}})),
            "attention_args.window: 1.5 must be a whole number for nsa");
  EXPECT_EQ(Problem(Nsa({{"window", "nan"}})),
            "attention_args.window: nan must be a finite number for nsa");
  // ValidateTrainConfig, which submit runs on every cell, refuses them too.
  EXPECT_EQ(ValidateTrainConfig(Nsa({{"blok_size", "32"}})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AttentionArgsTest, ShapesThatReadEveryKeyAreNamed) {
  v1::TrainConfig c = Nsa({});  // window 512, 16 blocks of 64
  c.set_context_length(4096);
  EXPECT_EQ(NsaReadsEveryKey(c), "");
  c.set_context_length(512);
  EXPECT_EQ(NsaReadsEveryKey(c),
            "attention_args.window: 512 tokens hold every key of a 512-token context: NSA "
            "computes dense attention there, and more");
  c.set_context_length(1024);
  (*c.mutable_attention_args())["window"] = 0;
  EXPECT_EQ(NsaReadsEveryKey(c),
            "attention_args.selected_blocks: 16 blocks of 64 tokens hold every key of a "
            "1024-token context: NSA computes dense attention there, and more");
  c.set_context_length(1025);
  EXPECT_EQ(NsaReadsEveryKey(c), "");
  c.set_context_length(256);
  c.set_attention("dense");
  EXPECT_EQ(NsaReadsEveryKey(c), "");
}

TEST(AttentionArgsTest, ThePapersCompressionAndRuleReachTheShape) {
  const NsaShape defaults = NsaShapeOf(Nsa({}));
  EXPECT_FALSE(defaults.learned_compression);
  EXPECT_FALSE(defaults.paper_selection);
  EXPECT_EQ(defaults.kernel(), 64);  // mean pooling over the block
  const v1::TrainConfig c = Nsa({{"learned_compression", "true"}, {"paper_selection", "true"}});
  ASSERT_TRUE(ValidateTrainConfig(c).ok()) << ValidateTrainConfig(c);
  const NsaShape shape = NsaShapeOf(c);
  EXPECT_TRUE(shape.learned_compression && shape.paper_selection);
  EXPECT_EQ(shape.kernel(), 32);  // the paper's l and d
  EXPECT_EQ(shape.stride(), 16);
}

TEST(AttentionArgsTest, CompressionThatEquationNineCannotMapIsRefusedByName) {
  EXPECT_EQ(Problem(Nsa({{"learned_compression", "true"}, {"compression_stride", "24"}})),
            "attention_args.compression_stride: 24 does not divide compression_kernel 32 (the "
            "paper's eq. 9 needs the stride to divide the window)");
  EXPECT_EQ(Problem(Nsa({{"learned_compression", "true"},
                         {"compression_kernel", "48"},
                         {"compression_stride", "48"}})),
            "attention_args.compression_stride: 48 does not divide block_size 64 (the paper's "
            "eq. 9 needs the stride to divide the selection block)");
  EXPECT_EQ(Problem(Nsa({{"learned_compression", "true"}, {"compression_kernel", "128"}})),
            "attention_args.compression_kernel: 128 exceeds block_size 64 (the paper's eq. 9 "
            "needs compression windows no longer than selection blocks)");
  EXPECT_EQ(Problem(Nsa({{"learned_compression", "true"}, {"compression_stride", "0"}})),
            "attention_args.compression_stride: 0 is outside [1, 65536] for nsa");
  // Mean pooling reads neither: a grid over learned_compression can fix them.
  EXPECT_TRUE(ValidateAttentionArgs(Nsa({{"compression_stride", "24"}})).ok());
}

TEST(AttentionArgsTest, DenseIgnoresThemSoAGridCanShareThem) {
  v1::TrainConfig c = Nsa({{"block_size", "16"}});
  c.set_attention("dense");
  EXPECT_TRUE(ValidateTrainConfig(c).ok());
  EXPECT_EQ(AttentionArgs("dense"), nullptr);
}

}  // namespace
}  // namespace ablate
