// Summary statistics of a few runs: mean, sample standard deviation and the 95% confidence
// interval of the mean from Student's t distribution, as results over repeated seeds need.
// Pure; safe from any thread.
#ifndef ABLATE_CLI_STATS_H_
#define ABLATE_CLI_STATS_H_

#include <vector>

#include "ablate/v1/results.pb.h"

namespace ablate::cli {

// The 0.975 quantile of Student's t with `df` >= 1 degrees of freedom: exact to the three
// decimals of the standard tables for df <= 30, then the Cornish-Fisher expansion around the
// normal quantile 1.959964 (error below 1e-4 for df > 30).
double StudentT975(int df);

// n, mean, and for n >= 2 the sample standard deviation (divisor n - 1) and mean -+ t * std /
// sqrt(n). `values` must not be empty.
v1::Estimate Estimate(const std::vector<double>& values);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_STATS_H_
