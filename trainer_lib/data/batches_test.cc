#include "trainer_lib/data/batches.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ablate::train {
namespace {

using ::testing::ElementsAre;

std::vector<uint64_t> Permutation(uint64_t n, uint64_t key) {
  std::vector<uint64_t> out(n);
  for (uint64_t i = 0; i < n; ++i) out[i] = PermuteIndex(i, n, key);
  return out;
}

bool IsPermutation(std::vector<int64_t> values, int64_t n) {
  std::sort(values.begin(), values.end());
  std::vector<int64_t> expected(n);
  std::iota(expected.begin(), expected.end(), 0);
  return values == expected;
}

TEST(BatchesTest, SequencesOverlapByOneToken) {
  EXPECT_EQ(SequenceCount(9, 8), 1);   // tokens 0..8: one sequence of 9
  EXPECT_EQ(SequenceCount(16, 8), 1);  // the second would need token 16
  EXPECT_EQ(SequenceCount(17, 8), 2);
  EXPECT_EQ(SequenceCount(8, 8), 0);
  EXPECT_EQ(SequenceCount(0, 8), 0);
}

TEST(BatchesTest, PermuteIndexIsABijectionOnAnySize) {
  for (uint64_t n : {1, 2, 3, 4, 5, 16, 17, 255, 1000, 4099}) {
    std::vector<uint64_t> p = Permutation(n, /*key=*/n * 31 + 7);
    std::vector<int64_t> values(p.begin(), p.end());
    EXPECT_TRUE(IsPermutation(values, static_cast<int64_t>(n))) << "n=" << n;
  }
}

TEST(BatchesTest, PermuteIndexShufflesAndTheKeyChoosesTheOrder) {
  const std::vector<uint64_t> a = Permutation(1000, 1);
  std::vector<uint64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(a, identity);
  EXPECT_EQ(a, Permutation(1000, 1));
  EXPECT_NE(a, Permutation(1000, 2));
  // Shuffled, not shifted: few neighbours stay neighbours.
  int adjacent = 0;
  for (size_t i = 1; i < a.size(); ++i) adjacent += a[i] == a[i - 1] + 1;
  EXPECT_LT(adjacent, 20);
}

TEST(BatchesTest, EachEpochVisitsEverySequenceOnceInItsOwnOrder) {
  constexpr int64_t kSequences = 100;
  constexpr BatchShape kShape{.batch_size = 10, .context_length = 8};
  std::vector<int64_t> first, second;
  for (int64_t step = 0; step < 10; ++step) {
    for (int64_t k : TrainSequences(kSequences, kShape, /*data_seed=*/3, step)) first.push_back(k);
  }
  for (int64_t step = 10; step < 20; ++step) {
    for (int64_t k : TrainSequences(kSequences, kShape, 3, step)) second.push_back(k);
  }
  EXPECT_TRUE(IsPermutation(first, kSequences));
  EXPECT_TRUE(IsPermutation(second, kSequences));
  EXPECT_NE(first, second);
}

TEST(BatchesTest, ABatchMayStraddleTwoEpochs) {
  constexpr BatchShape kShape{.batch_size = 3, .context_length = 8};
  std::vector<int64_t> samples;
  for (int64_t step = 0; step < 7; ++step) {
    for (int64_t k : TrainSequences(7, kShape, 5, step)) samples.push_back(k);
  }
  for (int epoch = 0; epoch < 3; ++epoch) {
    EXPECT_TRUE(IsPermutation({samples.begin() + 7 * epoch, samples.begin() + 7 * epoch + 7}, 7));
  }
  EXPECT_THAT(TrainSequences(1, kShape, 5, 4), ElementsAre(0, 0, 0));
}

TEST(BatchesTest, BatchesDependOnlyOnSeedAndStep) {
  constexpr BatchShape kShape{.batch_size = 4, .context_length = 8};
  EXPECT_EQ(TrainSequences(5000, kShape, 7, 12), TrainSequences(5000, kShape, 7, 12));
  EXPECT_NE(TrainSequences(5000, kShape, 7, 12), TrainSequences(5000, kShape, 7, 13));
  EXPECT_NE(TrainSequences(5000, kShape, 7, 12), TrainSequences(5000, kShape, 8, 12));
}

TEST(BatchesTest, EvalTakesSequencesInOrderAndWraps) {
  constexpr BatchShape kShape{.batch_size = 4, .context_length = 8};
  EXPECT_THAT(EvalSequences(10, kShape, 0), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(EvalSequences(10, kShape, 1), ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(EvalSequences(10, kShape, 2), ElementsAre(8, 9, 0, 1));
}

}  // namespace
}  // namespace ablate::train
