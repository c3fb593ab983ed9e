#include "trainer_lib/hf/safetensors.h"

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/support/temp_folder.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Odd sizes and mixed widths, so that some tensors start at offsets no wider type aligns to.
std::vector<std::pair<std::string, torch::Tensor>> Sample() {
  torch::manual_seed(3);
  return {
      {"a.weight", torch::randn({3, 5})},
      {"b.bf16", torch::randn({7}).to(torch::kBFloat16)},
      {"c.half", torch::randn({1, 3}).to(torch::kFloat16)},
      {"d.ids", torch::randint(0, 1000, {2, 3}, torch::kInt64)},
      {"e.bytes", torch::randint(0, 255, {5}, torch::kUInt8)},
      {"f.scalar", torch::tensor(2.5, torch::kFloat64)},
      {"g.empty", torch::zeros({0, 4})},
  };
}

void ExpectSame(const SafetensorsReader& reader,
                const std::vector<std::pair<std::string, torch::Tensor>>& expected) {
  ASSERT_EQ(reader.Names().size(), expected.size());
  for (const auto& [name, t] : expected) {
    absl::StatusOr<torch::Tensor> got = reader.Read(name);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(got->sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(*got, t)) << name;
  }
}

TEST(SafetensorsTest, RoundTripKeepsValuesDtypesAndShapes) {
  const test::TempFolder folder("safetensors_round_trip");
  const fs::path dir = folder.path();
  ASSERT_TRUE(WriteSafetensors(dir, Sample()).ok());
  EXPECT_TRUE(fs::exists(dir / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.index.json"));
  for (const fs::path& path : {dir, dir / "model.safetensors"}) {
    absl::StatusOr<std::unique_ptr<SafetensorsReader>> reader = SafetensorsReader::Open(path);
    ASSERT_TRUE(reader.ok()) << reader.status();
    ExpectSame(**reader, Sample());
    EXPECT_EQ((*reader)->Shape("a.weight"), (std::vector<int64_t>{3, 5}));
  }
}

TEST(SafetensorsTest, HeaderIsTheFormatsLayout) {
  const test::TempFolder folder("safetensors_layout");
  const fs::path dir = folder.path();
  ASSERT_TRUE(WriteSafetensors(dir, {{"x", torch::arange(3, torch::kFloat32)}}).ok());
  std::ifstream in(dir / "model.safetensors", std::ios::binary);
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), 8);
  std::string header(header_size, '\0');
  in.read(header.data(), header_size);
  EXPECT_EQ(header_size % 8, 0u);
  EXPECT_THAT(header, HasSubstr(R"("x":{"data_offsets":[0,12],"dtype":"F32","shape":[3]})"));
  float values[3];
  in.read(reinterpret_cast<char*>(values), sizeof(values));
  EXPECT_EQ(values[2], 2.0f);
}

TEST(SafetensorsTest, ShardsAboveTheLimitWithAnIndex) {
  const test::TempFolder folder("safetensors_sharded");
  const fs::path dir = folder.path();
  // 60 bytes for a.weight alone, so a 64-byte limit gives several shards.
  ASSERT_TRUE(WriteSafetensors(dir, Sample(), /*shard_bytes=*/64).ok());
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  ASSERT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(dir / "model-00001-of-00003.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "model-00003-of-00003.safetensors"));
  std::ifstream index(dir / "model.safetensors.index.json");
  std::string text((std::istreambuf_iterator<char>(index)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr(R"("total_size": 141)"));
  EXPECT_THAT(text, HasSubstr(R"("a.weight": "model-00001-of-00003.safetensors")"));
  absl::StatusOr<std::unique_ptr<SafetensorsReader>> reader = SafetensorsReader::Open(dir);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ExpectSame(**reader, Sample());
}

// A second write to the same folder leaves only its own weights: a reader would otherwise
// take the first write's single file, or mix shards of two writes.
TEST(SafetensorsTest, ASecondWriteReplacesTheFirstsWeights) {
  const test::TempFolder folder("safetensors_rewrite");
  const fs::path dir = folder.path();
  ASSERT_TRUE(WriteSafetensors(dir, {{"old", torch::ones({2})}}).ok());
  std::ofstream(dir / "notes.txt") << "kept";
  ASSERT_TRUE(WriteSafetensors(dir, Sample(), /*shard_bytes=*/64).ok());
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));  // not a weights file: left alone
  absl::StatusOr<std::unique_ptr<SafetensorsReader>> sharded = SafetensorsReader::Open(dir);
  ASSERT_TRUE(sharded.ok()) << sharded.status();
  ExpectSame(**sharded, Sample());
  // Back to one file: the shards and their index go.
  ASSERT_TRUE(WriteSafetensors(dir, Sample()).ok());
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir / "model-00001-of-00003.safetensors"));
  absl::StatusOr<std::unique_ptr<SafetensorsReader>> single = SafetensorsReader::Open(dir);
  ASSERT_TRUE(single.ok()) << single.status();
  ExpectSame(**single, Sample());
}

TEST(SafetensorsTest, TruncatedFileIsDataLossNamingIt) {
  const test::TempFolder folder("safetensors_truncated");
  const fs::path dir = folder.path();
  ASSERT_TRUE(WriteSafetensors(dir, Sample()).ok());
  const fs::path file = dir / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) - 3);
  absl::StatusOr<std::unique_ptr<SafetensorsReader>> reader = SafetensorsReader::Open(dir);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(reader.status().message(), HasSubstr(file.string()));
  EXPECT_THAT(reader.status().message(), HasSubstr("truncated"));

  fs::resize_file(file, 20);  // into the header itself
  reader = SafetensorsReader::Open(file);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(reader.status().message(), HasSubstr(file.string()));
  fs::resize_file(file, 5);
  EXPECT_EQ(SafetensorsReader::Open(file).status().code(), absl::StatusCode::kDataLoss);
}

TEST(SafetensorsTest, CorruptHeaderIsDataLossNamingTheFile) {
  const test::TempFolder folder("safetensors_corrupt");
  const fs::path dir = folder.path();
  ASSERT_TRUE(WriteSafetensors(dir, Sample()).ok());
  const fs::path file = dir / "model.safetensors";
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp(8);
  io.write("[", 1);  // the header's opening brace
  io.close();
  absl::StatusOr<std::unique_ptr<SafetensorsReader>> reader = SafetensorsReader::Open(file);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(reader.status().message(), HasSubstr(file.string() + ": the header"));
}

TEST(SafetensorsTest, ShardMissingATensorOfTheIndexIsDataLoss) {
  const test::TempFolder folder("safetensors_missing_shard_tensor");
  const fs::path dir = folder.path();
  ASSERT_TRUE(WriteSafetensors(dir, Sample(), /*shard_bytes=*/64).ok());
  ASSERT_TRUE(WriteSafetensors(dir / "other", {{"z", torch::ones({2})}}).ok());
  fs::rename(dir / "other" / "model.safetensors", dir / "model-00002-of-00003.safetensors");
  absl::StatusOr<std::unique_ptr<SafetensorsReader>> reader = SafetensorsReader::Open(dir);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(reader.status().message(), HasSubstr("model.safetensors.index.json"));
}

TEST(SafetensorsTest, EmptyDirectoryIsNotFound) {
  const test::TempFolder folder("safetensors_empty");
  const fs::path dir = folder.path();
  fs::create_directories(dir);
  EXPECT_EQ(SafetensorsReader::Open(dir).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ablate::train
