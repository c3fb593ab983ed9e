// A sweep's results per cell, over repeated seeds, from its jobs (cli/stats.h for the
// statistics): what `ablate results` prints as a table, CSV or JSON, and `ablate compare` as a
// heatmap of one metric over two dimensions.
//
// A cell is the job's grid values without the repeat's seed; its metric is taken from jobs
// that succeeded only (a failed run's last loss says nothing about the configuration). The
// difference from the baseline (the spec's `baseline` cell) pairs runs by seed. Jobs an update
// of the sweep dropped (Job.dropped) are left out. A cell with a run produced by another code
// version than the newest result's is marked (CellResult.other_code_versions). With tuning,
// a cell's trials are counted apart (CellResult.trials, failed_trials) and left out of its runs,
// what its tuning chose comes from its final jobs (CellResult.tuned), and a cell whose every
// point failed is marked so (CellResult.tuning_failed) rather than left "tuning".
//
// ResultsBuilder keeps one number per job, so a sweep's jobs can be fed a page at a time. Not
// thread-safe; the render functions are pure.
#ifndef ABLATE_CLI_RESULTS_H_
#define ABLATE_CLI_RESULTS_H_

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/results.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "absl/status/statusor.h"

namespace ablate::cli {

class ResultsBuilder {
 public:
  // `metric` is eval/loss (each job's final evaluation), train/loss (its last logged training
  // loss), both read from the Job, or any other series a trainer reports ("train/tokens_per_sec",
  // "eval/perplexity"), whose last point the caller reads and passes to Add. InvalidArgument
  // for a name that is no series name ("group/name").
  static absl::StatusOr<ResultsBuilder> Create(const v1::Sweep& sweep, const std::string& metric);

  // Whether the metric is one the Job carries (eval/loss, train/loss); else Add needs its value.
  bool ReadsJobs() const;
  // `value`: the job's last point of a metric the Job does not carry, nullopt when it has none.
  void Add(const v1::Job& job, std::optional<double> value = std::nullopt);
  v1::SweepResults Finish() const;

 private:
  struct Cell {
    v1::CellResult result;                          // cell, jobs, succeeded, baseline
    std::vector<std::pair<uint64_t, double>> runs;  // seed -> metric
    std::set<std::string> code_versions;            // of the runs
    // With tuning, until the cell has a final job: its trials, with only what
    // sweep::TuningOutcomes reads, to tell a tuning still under way from one that failed.
    std::vector<v1::Job> trials;
  };
  ResultsBuilder(const v1::Sweep& sweep, std::string metric);

  v1::Sweep sweep_;
  std::string metric_;
  std::vector<Cell> cells_;              // in the order their first job came
  std::map<std::string, size_t> index_;  // cell label -> position in cells_
  // The newest run's code version: of the succeeded job updated last.
  std::pair<int64_t, std::string> newest_ = {std::numeric_limits<int64_t>::min(), ""};
};

// One row per cell: its grid values, RUNS (succeeded/jobs), the metric's mean, its 95%
// interval and standard deviation, and the difference from the baseline with its paired 95%
// interval; "-" where a value is unknown. A cell with other_code_versions has a '*' after its
// RUNS, explained by a last line naming the versions. With tuning, TRIALS (with "(N failed)"
// when some failed), TUNED LR and TUNED WD follow the grid values: "tuning" until the cell has
// chosen, "failed: N of M trials" when its tuning ended without a choice.
std::string ResultsText(const v1::Sweep& sweep, const v1::SweepResults& results);

// The same as CSV with a header row: dimensions, (with tuning: trials, failed_trials,
// tuning_failed, tuned_learning_rate, tuned_weight_decay,) jobs, succeeded, n, mean, std, ci95_low,
// ci95_high, diff, diff_ci95_low, diff_ci95_high; empty fields where unknown.
std::string ResultsCsv(const v1::Sweep& sweep, const v1::SweepResults& results);

// The cells' means as a grid of `rows` x `cols` (two different grid dimensions; empty, the
// rows are the first dimension and the columns the next, or on a grid of one dimension the
// metric as the one column), one panel per
// combination of the remaining dimensions, each headed by it. With `color`, each value is
// colored on one scale over every panel, green at the best value through yellow to red at the
// worst: the lowest for a loss, the highest for throughput (tokens_per_sec) and mfu.
// InvalidArgument names a flag that is not a grid dimension, or the same dimension twice.
absl::StatusOr<std::string> CompareText(const v1::Sweep& sweep, const v1::SweepResults& results,
                                        const std::string& rows, const std::string& cols,
                                        bool color);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_RESULTS_H_
