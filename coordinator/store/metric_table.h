// Where metric points live. The layout is this file's alone: the store appends and reads
// through MetricTable, so points can move to another layout (packed rows, a table per sweep)
// with a schema migration and no change to the store's callers.
//
// Layout v2 (the store's third migration): one row per appended report, its points a serialized
// v1::MetricBatch, indexed by (job, rowid). A report costs one row and one index entry whatever
// it holds, where layout v1 (one row per point, indexed by (job, name, step)) cost one of each
// per point: the table's B-trees, not the bytes, set SQLite's append rate. Reading decodes the
// job's reports in append order and keeps the named points. Points a v1 file already holds are
// read too, before the packed ones (they are older); nothing is written in v1 any more.
//
// Thread safety: none of its own. A MetricTable borrows a connection that its caller holds
// locked, and runs inside the caller's transaction.
#ifndef ABLATE_COORDINATOR_STORE_METRIC_TABLE_H_
#define ABLATE_COORDINATOR_STORE_METRIC_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "ablate/v1/metrics.pb.h"
#include "ablate/v1/trainer.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/store/sqlite_db.h"

namespace ablate::coordinator::internal {

class MetricTable {
 public:
  // The tables and indexes of layout v1, run by the store's first migration, and of layout v2,
  // run by its third.
  static const char kSchemaV1[];
  static const char kSchemaV2[];

  explicit MetricTable(Db& db) : db_(db) {}

  // Appends the points of `batch`, of attempt `attempt_id` of the job whose rowid is `job`, as
  // one row.
  absl::Status Append(int64_t job, uint64_t attempt_id, const v1::MetricBatch& batch);

  // The job's series named in `names` (all when empty), by name, each sorted by step. Where
  // a step was reported twice (a retry resumes from a checkpoint before the step its
  // predecessor reached), the newest value wins. Each series is thinned evenly to at most
  // `max_points`, keeping its last point; `max_points` <= 0 keeps every point. `logged`, when
  // not null, receives the name of every series the job has, by name, whatever `names` asks:
  // the read decodes every report of the job anyway.
  absl::StatusOr<std::vector<v1::MetricSeries>> Read(int64_t job,
                                                     const std::vector<std::string>& names,
                                                     int max_points,
                                                     std::vector<std::string>* logged = nullptr);

 private:
  Db& db_;
};

// The bytes layout v2 stores for one report: `points` as a serialized v1::MetricBatch.
std::string EncodeMetricBatch(const std::vector<v1::MetricPoint>& points);

// Indices of `n` points to keep so that at most `max_points` remain, evenly spaced, the first
// and the last included. All of them when n <= max_points or max_points <= 0.
std::vector<int> ThinEvenly(int n, int max_points);

}  // namespace ablate::coordinator::internal

#endif  // ABLATE_COORDINATOR_STORE_METRIC_TABLE_H_
