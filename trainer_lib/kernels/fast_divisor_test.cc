#include "trainer_lib/kernels/fast_divisor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace ablate::kernels {
namespace {

// Every quotient and remainder against the division it replaces, for divisors that are powers of
// two, one past them (where the multiplier is largest), the sizes the gate divides by (T, H,
// runs, l) and random ones, at the dividends where an error would first show: around each
// multiple of d near 0 and near the top of the range, and random ones.
TEST(FastDivisorTest, MatchesDivisionOverTheRange) {
  std::mt19937 rng(7);
  std::vector<uint32_t> divisors = {
      1, 2, 3, 5, 7, 16, 40, 64, 100, 131072, 1048576, 1u << 30, (1u << 31) - 1};
  for (int k = 1; k < 31; ++k) {
    divisors.push_back((1u << k) + 1);
    divisors.push_back((1u << k) - 1);
  }
  for (int i = 0; i < 200; ++i) divisors.push_back(1 + rng() % ((1u << 31) - 1));
  constexpr uint32_t kTop = (1u << 31) - 1;
  for (const uint32_t d : divisors) {
    const FastDivisor fast(d);
    std::vector<uint32_t> dividends = {0, 1, kTop, kTop - 1, d - 1, d};
    for (uint32_t m = 1; m < 64; ++m) {
      const int64_t near_zero = int64_t{m} * d;
      const int64_t near_top = (int64_t{kTop / d} - m + 1) * d;  // below 0 past d's multiples
      for (const int64_t x : {near_zero, near_top}) {
        for (const int64_t off : {-1, 0, 1}) {
          const int64_t n = x + off;
          if (n >= 0 && n <= kTop) dividends.push_back(static_cast<uint32_t>(n));
        }
      }
    }
    for (int i = 0; i < 1000; ++i) dividends.push_back(rng() % (kTop + 1u));
    for (const uint32_t n : dividends) {
      uint32_t r = 0;
      const uint32_t q = fast.DivMod(n, &r);
      ASSERT_EQ(q, n / d) << n << " / " << d;
      ASSERT_EQ(r, n % d) << n << " % " << d;
      ASSERT_EQ(fast.Divide(n), n / d) << n << " / " << d;
    }
  }
}

}  // namespace
}  // namespace ablate::kernels
