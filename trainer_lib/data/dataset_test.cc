#include "trainer_lib/data/dataset.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "trainer_lib/data/tokenizer.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr BatchShape kShape{.batch_size = 4, .context_length = 8};

// The output of a shell command, to compare against a tool other than our own code.
std::string Shell(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string out;
  char buffer[256];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

// A prepared dataset laid out as scripts/prepare_data.py writes one: token i of a split is
// (i * 7 + offset) mod 300, so a window's content tells where it was cut.
class PreparedDatasetTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / ("dataset_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    WriteTokens("train.bin", 1000, 0);
    WriteTokens("valid.bin", 100, 1);
    WriteManifest(kManifest);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static int64_t Token(int64_t i, int64_t offset) { return (i * 7 + offset) % 300; }

  void WriteTokens(const std::string& file, int64_t count, int64_t offset) {
    std::string bytes;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t id = Token(i, offset);
      bytes.push_back(static_cast<char>(id & 0xff));
      bytes.push_back(static_cast<char>(id >> 8));
    }
    std::ofstream(dir_ / file, std::ios::binary) << bytes;
  }
  void WriteManifest(const std::string& text) { std::ofstream(dir_ / "dataset.json") << text; }

  absl::Status OpenError() { return Dataset::Open(dir_.string(), kShape.context_length).status(); }

  static constexpr char kManifest[] = R"({
    "format": "ablate-tokens", "version": "1",
    "tokenizer": {"path": "/x/tokenizer.json", "sha256": "ab", "vocab_size": 300},
    "vocab_size": 300, "token_bytes": 2, "dtype": "uint16", "eos_id": 0,
    "eos_token": "<|endoftext|>",
    "splits": {
      "train": {"file": "train.bin", "tokens": 1000, "documents": 3, "sha256": "aa"},
      "valid": {"file": "valid.bin", "tokens": 100, "documents": 1, "sha256": "bb"}},
    "sha256": "cafe"})";
  fs::path dir_;
};

TEST_F(PreparedDatasetTest, BatchesArePackedSequencesOfTheFiles) {
  absl::StatusOr<Dataset> dataset = Dataset::Open(dir_.string(), kShape.context_length);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->vocab_size(), 300);
  EXPECT_EQ(dataset->sha256(), "cafe");
  EXPECT_EQ(dataset->eos_id(), 0);
  EXPECT_EQ(dataset->train_tokens(), 1000);
  EXPECT_EQ(dataset->valid_tokens(), 100);

  absl::StatusOr<Batch> batch = dataset->TrainBatch(kShape, /*data_seed=*/4, /*step=*/9);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->inputs.sizes(), (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(batch->inputs.scalar_type(), torch::kInt64);
  const std::vector<int64_t> rows = TrainSequences(SequenceCount(1000, 8), kShape, 4, 9);
  for (int64_t r = 0; r < 4; ++r) {
    for (int64_t j = 0; j < 8; ++j) {
      EXPECT_EQ(batch->inputs[r][j].item<int64_t>(), Token(rows[r] * 8 + j, 0));
      EXPECT_EQ(batch->targets[r][j].item<int64_t>(), Token(rows[r] * 8 + j + 1, 0));
    }
  }
  absl::StatusOr<Batch> again = dataset->TrainBatch(kShape, 4, 9);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(torch::equal(again->inputs, batch->inputs));

  absl::StatusOr<Batch> eval = dataset->EvalBatch(kShape, 1);
  ASSERT_TRUE(eval.ok()) << eval.status();
  EXPECT_EQ(eval->inputs[0][0].item<int64_t>(), Token(4 * 8, 1));  // sequence 4 of valid
}

TEST_F(PreparedDatasetTest, AVocabularyLargerThanTheModelsIsRefused) {
  absl::StatusOr<Dataset> dataset = Dataset::Open(dir_.string(), kShape.context_length);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_TRUE(dataset->CheckVocabulary(300).ok());
  absl::Status status = dataset->CheckVocabulary(256);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr(dir_.string()));
  EXPECT_THAT(status.message(), HasSubstr("vocabulary of 300 ids, more than the model's "
                                          "vocab_size 256"));
}

TEST_F(PreparedDatasetTest, AMissingDirectoryManifestOrFileIsNamed) {
  const std::string nowhere = (dir_ / "nowhere").string();
  absl::Status status = Dataset::Open(nowhere, 8).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr(nowhere));

  fs::remove(dir_ / "valid.bin");
  status = OpenError();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr((dir_ / "valid.bin").string()));

  fs::remove(dir_ / "dataset.json");
  status = OpenError();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr((dir_ / "dataset.json").string()));
  EXPECT_THAT(status.message(), HasSubstr("prepare_data.py"));
}

TEST_F(PreparedDatasetTest, AFileThatDisagreesWithTheManifestIsRefused) {
  WriteTokens("train.bin", 999, 0);
  absl::Status status = OpenError();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr((dir_ / "train.bin").string()));
  EXPECT_THAT(status.message(), HasSubstr("holds 999 tokens, but dataset.json says 1000"));

  std::ofstream(dir_ / "train.bin", std::ios::app) << 'x';  // 1999 bytes: not whole tokens
  status = OpenError();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("not a multiple of the token width 2"));
}

TEST_F(PreparedDatasetTest, AMalformedManifestIsRefusedWithTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "is not valid JSON"},
      {absl::StrReplaceAll(kManifest, {{"ablate-tokens", "nanogpt"}}), "format is \"nanogpt\""},
      {absl::StrReplaceAll(kManifest, {{"\"vocab_size\": 300, ", ""}}),
       "has no field \"vocab_size\""},
      {absl::StrReplaceAll(kManifest, {{"\"tokens\": 1000", "\"tokens\": \"1000\""}}),
       "field \"tokens\" is not a non-negative integer"},
      {absl::StrReplaceAll(kManifest, {{"\"vocab_size\": 300, ", "\"vocab_size\": 70000, "}}),
       "token_bytes 2 cannot hold a vocabulary of 70000"},
      {absl::StrReplaceAll(kManifest, {{"\"eos_id\": 0", "\"eos_id\": 300"}}),
       "eos_id 300 is not below vocab_size 300"},
      {absl::StrReplaceAll(kManifest, {{"\"file\": \"train.bin\"", "\"file\": \"../x.bin\""}}),
       "not a file of the dataset directory"},
  };
  for (const auto& [manifest, problem] : cases) {
    WriteManifest(manifest);
    absl::Status status = OpenError();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << problem;
    EXPECT_THAT(status.message(), HasSubstr((dir_ / "dataset.json").string()));
    EXPECT_THAT(status.message(), HasSubstr(problem));
  }
}

TEST_F(PreparedDatasetTest, ASplitShorterThanOneSequenceIsRefused) {
  absl::Status status = Dataset::Open(dir_.string(), /*context_length=*/100).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("the valid split has 100 tokens, too few for "
                                          "context_length 100"));
}

TEST_F(PreparedDatasetTest, AnIdOutsideTheVocabularyFailsTheBatchThatReadsIt) {
  WriteManifest(
      absl::StrReplaceAll(kManifest, {{"\"vocab_size\": 300, ", "\"vocab_size\": 50, "}}));
  absl::StatusOr<Dataset> dataset = Dataset::Open(dir_.string(), kShape.context_length);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  absl::Status status = dataset->EvalBatch(kShape, 0).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr((dir_ / "valid.bin").string()));
  EXPECT_THAT(status.message(), HasSubstr("not below the vocabulary size 50"));
}

TEST(ByteCorpusTest, TheBuiltinCorpusIsBytesWithTheHashSha256sumGives) {
  absl::StatusOr<Dataset> dataset = Dataset::Open("builtin:tiny-corpus", 64);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(dataset->vocab_size(), kByteVocabSize);
  EXPECT_EQ(dataset->eos_id(), std::nullopt);  // bytes: no document separator
  EXPECT_GT(dataset->train_tokens(), 300000);
  EXPECT_GT(dataset->valid_tokens(), 30000);
  // Tests run in the source tree, where the built-in corpus is.
  EXPECT_EQ(dataset->sha256() + "  -\n",
            Shell("cd data/tiny-corpus && sha256sum train.txt valid.txt | sha256sum"));

  absl::StatusOr<Batch> batch = dataset->EvalBatch({.batch_size = 2, .context_length = 64}, 0);
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::ifstream valid("data/tiny-corpus/valid.txt");
  std::string text(65, '\0');
  valid.read(text.data(), 65);
  EXPECT_EQ(DecodeBytes(batch->inputs[0]), text.substr(0, 64));
  EXPECT_EQ(DecodeBytes(batch->targets[0]), text.substr(1, 64));
}

TEST(ByteCorpusTest, AFolderOfTextSplitsNamesWhatIsMissing) {
  const fs::path dir =
      fs::path(testing::TempDir()) / ("byte_corpus_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "train.txt") << "abcdefghijklmnop";
  absl::Status missing = Dataset::Open(dir.string(), 4).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr((dir / "valid.txt").string()));

  std::ofstream(dir / "valid.txt") << "";
  EXPECT_EQ(Dataset::Open(dir.string(), 4).status().code(), absl::StatusCode::kFailedPrecondition);
  std::ofstream(dir / "valid.txt") << "vwxyz";
  absl::StatusOr<Dataset> dataset = Dataset::Open(dir.string(), 4);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  absl::StatusOr<Batch> eval = dataset->EvalBatch({.batch_size = 1, .context_length = 4}, 0);
  ASSERT_TRUE(eval.ok());
  EXPECT_EQ(DecodeBytes(eval->inputs[0]), "vwxy");
  EXPECT_EQ(DecodeBytes(eval->targets[0]), "wxyz");

  EXPECT_EQ(Dataset::Open("builtin:no-such-corpus", 4).status().code(),
            absl::StatusCode::kNotFound);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ablate::train
