#include "sweep/yaml_limits.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/sweep_file.h"

namespace ablate::sweep {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The classic "billion laughs": each level lists the one before ten times, so `levels` levels
// stand for 10^levels scalars in a file of a few hundred bytes.
std::string AliasBomb(int levels) {
  std::string yaml = "name: bomb\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= levels; ++i) {
    absl::StrAppend(&yaml, "l", i, ": &l", i, " [");
    for (int j = 0; j < 10; ++j) absl::StrAppend(&yaml, j ? ", " : "", "*l", i - 1);
    absl::StrAppend(&yaml, "]\n");
  }
  return yaml;
}

TEST(YamlLimitsTest, AnAliasBombIsRefusedBeforeItIsWalked) {
  // Nine levels: 10^9 nodes from under a kilobyte, as the file that grew the CLI past 2.4 GB.
  const std::string yaml = AliasBomb(9);
  ASSERT_LT(yaml.size(), 1000u);
  const absl::Status status = CheckYamlLimits(yaml, "bomb.yaml");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), StartsWith("bomb.yaml:"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("more than 100000 nodes"));
  // The sweep reader refuses it the same way, rather than walking a billion nodes.
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(yaml, "bomb.yaml");
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("more than 100000 nodes"));
}

TEST(YamlLimitsTest, AFewAliasesAreFine) {
  EXPECT_TRUE(CheckYamlLimits(AliasBomb(3), "ok.yaml").ok());  // 10^4 nodes
  EXPECT_TRUE(CheckYamlLimits("a: &x {lr: 1e-3}\nb: *x\nc: *x\n", "ok.yaml").ok());
}

TEST(YamlLimitsTest, AnAliasInsideItsOwnAnchorIsRefused) {
  const absl::Status status = CheckYamlLimits("a: &a [x, *a]\n", "loop.yaml");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("loop.yaml:1:"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("contains it"));
}

TEST(YamlLimitsTest, DeepNestingIsRefusedWithItsPlace) {
  std::string yaml = "name: deep\ngrid: ";
  for (int i = 0; i < 40; ++i) yaml += "[";
  for (int i = 0; i < 40; ++i) yaml += "]";
  const absl::Status status = CheckYamlLimits(yaml, "deep.yaml");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), StartsWith("deep.yaml:2:"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("deeper than 32 levels"));
  std::string fine = "a: ";
  for (int i = 0; i < 30; ++i) fine += "[";
  for (int i = 0; i < 30; ++i) fine += "]";
  EXPECT_TRUE(CheckYamlLimits(fine, "ok.yaml").ok());
}

TEST(YamlLimitsTest, ALongValueIsRefusedWithItsLengthAndTheLimit) {
  const std::string yaml = absl::StrCat("name: long\ndescription: ", std::string(20000, 'x'), "\n");
  const absl::Status status = CheckYamlLimits(yaml, "long.yaml");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("long.yaml:2:14: a value of 20000 bytes; the limit is 16384"));
  // Keys are scalars to the parser, held to the same limit (YAML itself refuses a plain key
  // longer than 1024 characters; an explicit one has no such bound).
  EXPECT_FALSE(
      CheckYamlLimits(absl::StrCat("? ", std::string(20000, 'k'), "\n: 1\n"), "k.yaml").ok());
}

TEST(YamlLimitsTest, SyntaxErrorsAreLeftToTheTreeParser) {
  EXPECT_TRUE(CheckYamlLimits("grid: [a, b\n", "bad.yaml").ok());
}

}  // namespace
}  // namespace ablate::sweep
