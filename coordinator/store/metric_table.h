// Where metric points live. The layout is this file's alone: the store appends and reads
// through MetricTable, so points can move to another layout (packed rows, a table per sweep)
// with a schema migration and no change to the store's callers.
//
// Layout v1: an append-only rowid table, one row per point, indexed by (job, name, step).
// Appends go to the end of the table; reading one job's series walks its index range in order.
//
// Thread safety: none of its own. A MetricTable borrows a connection that its caller holds
// locked, and runs inside the caller's transaction.
#ifndef ABLATE_COORDINATOR_STORE_METRIC_TABLE_H_
#define ABLATE_COORDINATOR_STORE_METRIC_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "ablate/v1/metrics.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/store/sqlite_db.h"

namespace ablate::coordinator::internal {

class MetricTable {
 public:
  // The tables and indexes of layout v1, run by the store's first migration.
  static const char kSchemaV1[];

  explicit MetricTable(Db& db) : db_(db) {}

  // Appends points of attempt `attempt_id` of the job whose rowid is `job`.
  absl::Status Append(int64_t job, uint64_t attempt_id, const std::vector<v1::MetricPoint>& points);

  // The job's series named in `names` (all when empty), by name, each sorted by step. Where
  // a step was reported twice (a retry resumes from a checkpoint before the step its
  // predecessor reached), the newest value wins. Each series is thinned evenly to at most
  // `max_points`, keeping its last point; `max_points` <= 0 keeps every point.
  absl::StatusOr<std::vector<v1::MetricSeries>> Read(int64_t job,
                                                     const std::vector<std::string>& names,
                                                     int max_points);

 private:
  Db& db_;
};

// Indices of `n` points to keep so that at most `max_points` remain, evenly spaced, the first
// and the last included. All of them when n <= max_points or max_points <= 0.
std::vector<int> ThinEvenly(int n, int max_points);

}  // namespace ablate::coordinator::internal

#endif  // ABLATE_COORDINATOR_STORE_METRIC_TABLE_H_
