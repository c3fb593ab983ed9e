#include "trainer_lib/data/token_file.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

using ::testing::HasSubstr;

class TokenFileTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(testing::TempDir()) /
           ("token_file_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `ids` as little-endian integers of `width` bytes, byte by byte, so the test does
  // not share the reader's assumption about the host's byte order.
  std::string Write(const std::string& name, const std::vector<uint64_t>& ids, int width) {
    std::string bytes;
    for (uint64_t id : ids) {
      for (int b = 0; b < width; ++b) bytes.push_back(static_cast<char>((id >> (8 * b)) & 0xff));
    }
    return WriteBytes(name, bytes);
  }
  std::string WriteBytes(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(TokenFileTest, ReadsTwoByteIds) {
  const std::string path = Write("two.bin", {0, 1, 258, 65535, 7}, 2);
  absl::StatusOr<TokenFile> file = TokenFile::Open(path, 2, 0);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->size(), 5);
  EXPECT_EQ(file->token_bytes(), 2);
  absl::StatusOr<at::Tensor> all = file->Read(0, 5);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(*all, torch::tensor({0, 1, 258, 65535, 7}, torch::kInt64)));
  int64_t middle[2] = {-1, -1};
  ASSERT_TRUE(file->Read(2, 2, middle).ok());
  EXPECT_EQ(middle[0], 258);
  EXPECT_EQ(middle[1], 65535);
}

TEST_F(TokenFileTest, ReadsFourByteIds) {
  const std::string path = Write("four.bin", {151643, 0, 70000, 4294967295ULL}, 4);
  absl::StatusOr<TokenFile> file = TokenFile::Open(path, 4, 0);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->size(), 4);
  absl::StatusOr<at::Tensor> all = file->Read(0, 4);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(torch::equal(
      *all, torch::tensor({int64_t{151643}, int64_t{0}, int64_t{70000}, int64_t{4294967295}})));
}

TEST_F(TokenFileTest, WidthFollowsTheVocabularySize) {
  const std::string path = Write("width.bin", {1, 2, 3, 4}, 2);  // 8 bytes: 4 x 2 or 2 x 4
  absl::StatusOr<TokenFile> two = TokenFile::Open(path, 0, 65536);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->token_bytes(), 2);
  EXPECT_EQ(two->size(), 4);
  absl::StatusOr<TokenFile> four = TokenFile::Open(path, 0, 65537);
  ASSERT_TRUE(four.ok()) << four.status();
  EXPECT_EQ(four->token_bytes(), 4);
  EXPECT_EQ(four->size(), 2);
  // Read as uint32, the first two ids make one: 1 + 2 * 65536, which 65,537 ids do not hold.
  EXPECT_EQ(four->Read(0, 1).status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<TokenFile> wide = TokenFile::Open(path, 0, 200000);
  ASSERT_TRUE(wide.ok()) << wide.status();
  absl::StatusOr<at::Tensor> first = wide->Read(0, 1);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)[0].item<int64_t>(), 1 + (2 << 16));
}

TEST_F(TokenFileTest, ErrorsNameThePathAndTheProblem) {
  const std::string missing = (dir_ / "missing.bin").string();
  absl::Status status = TokenFile::Open(missing, 2, 0).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr(missing));

  const std::string odd = WriteBytes("odd.bin", std::string(7, '\1'));
  status = TokenFile::Open(odd, 2, 0).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr(odd));
  EXPECT_THAT(status.message(), HasSubstr("not a multiple of the token width 2"));
  const std::string six = WriteBytes("six.bin", std::string(6, '\1'));
  EXPECT_TRUE(TokenFile::Open(six, 2, 0).ok());
  EXPECT_EQ(TokenFile::Open(six, 4, 0).status().code(), absl::StatusCode::kDataLoss);

  EXPECT_EQ(TokenFile::Open(six, 3, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TokenFile::Open(six, 0, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenFileTest, IdsAtOrAboveTheVocabularyAreRefusedWithTheirPosition) {
  const std::string path = Write("big.bin", {5, 255, 256, 3}, 2);
  absl::StatusOr<TokenFile> file = TokenFile::Open(path, 2, 256);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE(file->Read(0, 2).ok());  // only the ids read are checked
  EXPECT_TRUE(file->Read(3, 1).ok());
  absl::Status status = file->Read(1, 3).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr(path));
  EXPECT_THAT(status.message(), HasSubstr("token 2 is id 256"));
  // Unchecked, the same ids read as they are.
  absl::StatusOr<TokenFile> unchecked = TokenFile::Open(path, 2, 0);
  ASSERT_TRUE(unchecked.ok());
  EXPECT_TRUE(unchecked->Read(0, 4).ok());
}

TEST_F(TokenFileTest, RangesOutsideTheFileAreRefused) {
  absl::StatusOr<TokenFile> file = TokenFile::Open(Write("r.bin", {1, 2, 3}, 4), 4, 0);
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE(file->Read(3, 0).ok());
  EXPECT_EQ(file->Read(2, 2).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(file->Read(-1, 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(file->Read(0, -1).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(TokenFileTest, AnEmptyFileHasNoTokens) {
  absl::StatusOr<TokenFile> file = TokenFile::Open(WriteBytes("empty.bin", ""), 2, 0);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->size(), 0);
  EXPECT_TRUE(file->Read(0, 0).ok());
}

TEST_F(TokenFileTest, AMovedFileKeepsItsMapping) {
  absl::StatusOr<TokenFile> opened = TokenFile::Open(Write("m.bin", {9, 8, 7}, 2), 2, 0);
  ASSERT_TRUE(opened.ok());
  TokenFile moved = *std::move(opened);
  TokenFile assigned = *TokenFile::Open(Write("n.bin", {1}, 2), 2, 0);
  assigned = std::move(moved);
  absl::StatusOr<at::Tensor> tokens = assigned.Read(0, 3);
  ASSERT_TRUE(tokens.ok());
  EXPECT_TRUE(torch::equal(*tokens, torch::tensor({9, 8, 7}, torch::kInt64)));
}

}  // namespace
}  // namespace ablate::train
