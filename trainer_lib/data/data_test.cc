#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer_lib/data/batches.h"
#include "trainer_lib/data/corpus.h"
#include "trainer_lib/data/tokenizer.h"

namespace ablate::train {
namespace {

using torch::indexing::Slice;

constexpr BatchShape kShape{.batch_size = 4, .context_length = 32};

TEST(TokenizerTest, BytesRoundTrip) {
  const std::string text = "seven plus two is nine.\n\xff\x01";
  at::Tensor tokens = EncodeBytes(text);
  EXPECT_EQ(tokens.numel(), static_cast<int64_t>(text.size()));
  EXPECT_EQ(tokens[0].item<int64_t>(), 's');
  EXPECT_EQ(DecodeBytes(tokens), text);
  EXPECT_EQ(DecodeBytes(tokens.to(torch::kInt64)), text);
}

TEST(CorpusTest, LoadsTheBuiltinCorpus) {
  absl::StatusOr<Corpus> corpus = LoadCorpus("builtin:tiny-corpus");
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  EXPECT_GT(corpus->train.numel(), 300000);
  EXPECT_GT(corpus->valid.numel(), 30000);
  EXPECT_EQ(corpus->train.scalar_type(), torch::kUInt8);
}

TEST(CorpusTest, LoadsAFolderAndNamesWhatIsMissing) {
  const std::filesystem::path dir = std::filesystem::path(testing::TempDir()) /
                                    ("corpus_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "train.txt") << "abcdef";
  std::filesystem::remove(dir / "valid.txt");
  absl::StatusOr<Corpus> missing = LoadCorpus(dir.string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("valid.txt"), std::string::npos);

  std::ofstream(dir / "valid.txt") << "xyz";
  absl::StatusOr<Corpus> corpus = LoadCorpus(dir.string());
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  EXPECT_EQ(DecodeBytes(corpus->train), "abcdef");
  EXPECT_EQ(DecodeBytes(corpus->valid), "xyz");

  EXPECT_EQ(LoadCorpus("builtin:no-such-corpus").status().code(), absl::StatusCode::kNotFound);
  for (const char* file : {"train.txt", "valid.txt", ""}) std::filesystem::remove(dir / file);
}

TEST(BatchesTest, SameSeedAndStepGiveTheSameBatch) {
  at::Tensor tokens = torch::randint(0, 256, {5000}, torch::kInt64).to(torch::kUInt8);
  Batch a = TrainBatch(tokens, kShape, /*data_seed=*/7, /*step=*/12);
  Batch b = TrainBatch(tokens, kShape, 7, 12);
  EXPECT_TRUE(torch::equal(a.inputs, b.inputs));
  EXPECT_TRUE(torch::equal(a.targets, b.targets));
  EXPECT_FALSE(torch::equal(a.inputs, TrainBatch(tokens, kShape, 7, 13).inputs));
  EXPECT_FALSE(torch::equal(a.inputs, TrainBatch(tokens, kShape, 8, 12).inputs));
}

TEST(BatchesTest, TargetsAreInputsShiftedByOne) {
  at::Tensor tokens = torch::arange(5000, torch::kInt64).remainder(251).to(torch::kUInt8);
  Batch batch = TrainBatch(tokens, kShape, 1, 0);
  ASSERT_EQ(batch.inputs.sizes(), (std::vector<int64_t>{4, 32}));
  ASSERT_EQ(batch.targets.sizes(), batch.inputs.sizes());
  EXPECT_EQ(batch.inputs.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(batch.inputs.index({Slice(), Slice(1, torch::indexing::None)}),
                           batch.targets.index({Slice(), Slice(0, -1)})));
  // Consecutive tokens of the source: each target is the byte after its input.
  EXPECT_TRUE(torch::equal((batch.inputs + 1).remainder(251), batch.targets));
}

TEST(BatchesTest, EvalBatchesAreFixedWindowsFromTheStart) {
  at::Tensor tokens = torch::arange(5000, torch::kInt64).remainder(251).to(torch::kUInt8);
  Batch first = EvalBatch(tokens, kShape, 0);
  EXPECT_TRUE(torch::equal(first.inputs[0], tokens.narrow(0, 0, 32).to(torch::kInt64)));
  EXPECT_TRUE(torch::equal(first.inputs[1], tokens.narrow(0, 33, 32).to(torch::kInt64)));
  Batch second = EvalBatch(tokens, kShape, 1);
  EXPECT_TRUE(torch::equal(second.inputs[0], tokens.narrow(0, 4 * 33, 32).to(torch::kInt64)));
  EXPECT_TRUE(torch::equal(EvalBatch(tokens, kShape, 1).inputs, second.inputs));
}

}  // namespace
}  // namespace ablate::train
