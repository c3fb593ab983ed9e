// A cell's estimate over its repeats as `ablate results` computes it (cli/stats.cc): the mean,
// the sample standard deviation, and the 95% confidence interval of the mean from Student's t,
// mean ± t(0.975, n-1) · std / √n. The dashboard and the CLI show the same interval.

// Two-sided 95% critical values of t, df = 1..30 (any statistics table).
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
  2.060, 2.056, 2.052, 2.048, 2.045, 2.042];

export function studentT975(df: number): number {
  const n = Math.max(1, df);
  if (n <= 30) return T975[n - 1];
  // Beyond the table, the normal quantile with the Cornish-Fisher correction for t.
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * n) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * n * n);
}

export interface Estimate {
  n: number;
  mean: number;
  std?: number;   // unset with one value
  half?: number;  // half the 95% interval's width; unset with one value
}

export function estimate(xs: number[]): Estimate {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean };
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { n, mean, std, half: (studentT975(n - 1) * std) / Math.sqrt(n) };
}
