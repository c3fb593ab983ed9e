#include "common/optimizer_state.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace ablate {
namespace {

google::protobuf::Map<std::string, double> Args(
    const std::vector<std::pair<std::string, double>>& set) {
  google::protobuf::Map<std::string, double> args;
  for (const auto& [name, value] : set) args[name] = value;
  return args;
}

TEST(OptimizerStateTest, EachOptimizerReadsItsOwnDefaults) {
  const OptimizerStateArgs soap = OptimizerStateArgsOf("soap", {});
  EXPECT_EQ(soap.max_precond_dim, 10000);
  EXPECT_FALSE(soap.precondition_1d);
  const OptimizerStateArgs shampoo = OptimizerStateArgsOf("shampoo", {});
  EXPECT_EQ(shampoo.max_precond_dim, 8192);
  EXPECT_EQ(shampoo.start_preconditioning_step, 25);
  const OptimizerStateArgs set =
      OptimizerStateArgsOf("soap4bit", Args({{"max_precond_dim", 64}, {"precondition_1d", 1}}));
  EXPECT_EQ(set.max_precond_dim, 64);
  EXPECT_TRUE(set.precondition_1d);
  EXPECT_EQ(OptimizerStateArgsOf("adamw", {}).max_precond_dim, 0);  // has none
}

// SOAP judges each side alone, Shampoo the whole parameter: Qwen3's embedding keeps its hidden
// side's factor under SOAP and none under Shampoo; Qwen3-4B's 9,728-wide MLP matrices lie
// between Shampoo's bound (8,192) and SOAP's (10,000).
TEST(OptimizerStateTest, SoapBoundsEachSideShampooTheWholeParameter) {
  const std::vector<int64_t> embedding = {151936, 1024}, mlp = {9728, 2560};
  const OptimizerStateArgs soap = OptimizerStateArgsOf("soap", {});
  const OptimizerStateArgs shampoo = OptimizerStateArgsOf("shampoo", {});
  EXPECT_FALSE(SoapPreconditions(embedding, 0, soap.max_precond_dim, false));
  EXPECT_TRUE(SoapPreconditions(embedding, 1, soap.max_precond_dim, false));
  EXPECT_EQ(PreconditionerElements("soap", embedding, soap), 1024 * 1024);
  EXPECT_EQ(PreconditionerElements("shampoo", embedding, shampoo), 0);
  EXPECT_EQ(PreconditionerElements("soap", mlp, soap), 9728 * 9728 + 2560 * 2560);
  EXPECT_EQ(PreconditionerElements("shampoo", mlp, shampoo), 0);
  EXPECT_EQ(PreconditionerElements("shampoo", std::vector<int64_t>{2048, 1024}, shampoo),
            2048 * 2048 + 1024 * 1024);
  // Vectors only under precondition_1d, which Shampoo does not have.
  EXPECT_EQ(PreconditionerElements("soap", std::vector<int64_t>{64}, soap), 0);
  EXPECT_EQ(PreconditionerElements("soap", std::vector<int64_t>{64}, {10000, true, 1}), 64 * 64);
  EXPECT_EQ(PreconditionerElements("shampoo", std::vector<int64_t>{64}, shampoo), 0);
  EXPECT_EQ(PreconditionerElements("adamw", mlp, soap), 0);
}

TEST(OptimizerStateTest, BytesFollowEachLayout) {
  const std::vector<int64_t> matrix = {512, 64}, vector = {64};
  const int64_t n = 512 * 64, p = 512 * 512 + 64 * 64;
  auto bytes = [](const char* optimizer, const std::vector<int64_t>& shape, bool hidden,
                  const OptimizerStateArgs& args) {
    absl::StatusOr<int64_t> b = OptimizerStateBytes(optimizer, shape, hidden, args);
    EXPECT_TRUE(b.ok()) << optimizer << ": " << b.status();
    return b.value_or(-1);
  };
  const OptimizerStateArgs none;
  EXPECT_EQ(bytes("adamw", matrix, true, none), 8 * n);
  EXPECT_EQ(bytes("adamw8bit", matrix, true, none), 2 * (n + 4 * n / 256));
  EXPECT_EQ(bytes("adamw8bit", vector, false, none), 8 * 64);  // too small: fp32
  EXPECT_EQ(bytes("muon", matrix, true, none), 4 * n);
  EXPECT_EQ(bytes("muon", matrix, false, none), 8 * n);  // embedding, head: AdamW
  const OptimizerStateArgs soap = OptimizerStateArgsOf("soap", {});
  EXPECT_EQ(bytes("soap", matrix, true, soap), 8 * n + 8 * p);
  EXPECT_EQ(bytes("soap", vector, false, soap), 8 * 64);
  // 8-bit moments in blocks of 64; 8-bit factors in blocks of 256 and 4-bit bases in blocks of
  // 64, a 64 x 64 factor filling 16 blocks of 256.
  EXPECT_EQ(bytes("soap4bit", matrix, true, soap),
            2 * (n + 4 * n / 64) + (p + 4 * p / 256) + (p / 2 + 4 * p / 64));
  // m_graft until step 25 by default; with start_preconditioning_step 1 dropped at once.
  const OptimizerStateArgs shampoo = OptimizerStateArgsOf("shampoo", {});
  EXPECT_EQ(bytes("shampoo", matrix, true, shampoo), 12 * n + 8 * p);
  EXPECT_EQ(bytes("shampoo", matrix, true, {8192, false, 1}), 8 * n + 8 * p);
  EXPECT_EQ(bytes("shampoo", vector, false, shampoo), 12 * 64);
  EXPECT_EQ(OptimizerStateBytes("sgd", matrix, true, none).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(OptimizerStateTest, QuantizedBytesPadTheLastBlock) {
  EXPECT_EQ(BlockQuantizedBytes(256, 8, 256), 256 + 4);
  EXPECT_EQ(BlockQuantizedBytes(257, 8, 256), 512 + 8);
  EXPECT_EQ(BlockQuantizedBytes(100, 4, 64), 64 + 8);
  EXPECT_TRUE(AdamW8bitQuantizes(4096));
  EXPECT_FALSE(AdamW8bitQuantizes(4096 + 128));
  EXPECT_FALSE(AdamW8bitQuantizes(2048));
}

}  // namespace
}  // namespace ablate
