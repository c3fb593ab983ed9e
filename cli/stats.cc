#include "cli/stats.h"

#include <cmath>
#include <numeric>

namespace ablate::cli {

double StudentT975(int df) {
  // Two-sided 95% critical values of t, df = 1..30 (any statistics table).
  static constexpr double kTable[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                      2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                      2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                      2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (df < 1) df = 1;
  if (df <= 30) return kTable[df - 1];
  const double z = 1.959964;
  const double n = df;
  return z + (z * z * z + z) / (4 * n) +
         (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * n * n);
}

v1::Estimate Estimate(const std::vector<double>& values) {
  v1::Estimate out;
  const double n = static_cast<double>(values.size());
  out.set_n(static_cast<uint32_t>(values.size()));
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  out.set_mean(mean);
  if (values.size() < 2) return out;
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  const double std = std::sqrt(squares / (n - 1));
  const double half = StudentT975(static_cast<int>(values.size()) - 1) * std / std::sqrt(n);
  out.set_std(std);
  out.set_low(mean - half);
  out.set_high(mean + half);
  return out;
}

}  // namespace ablate::cli
