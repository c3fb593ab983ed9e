#include "coordinator/store/metric_table.h"

#include <algorithm>

namespace ablate::coordinator::internal {
namespace {

// Appends the rows, in (name, step) order, to `out` as series, one value per step.
absl::Status ReadSeries(Statement& rows, std::vector<v1::MetricSeries>& out) {
  return rows.ForEachRow([&](const Statement& row) {
    std::string name = row.Text(0);
    if (out.empty() || out.back().name() != name) out.emplace_back().set_name(std::move(name));
    v1::MetricSeries& series = out.back();
    const int64_t step = row.Int(1);
    if (series.steps_size() > 0 && series.steps(series.steps_size() - 1) == step) {
      series.set_values(series.values_size() - 1, row.Double(2));
      series.set_wall_times(series.wall_times_size() - 1, row.Double(3));
    } else {
      series.add_steps(step);
      series.add_values(row.Double(2));
      series.add_wall_times(row.Double(3));
    }
    return absl::OkStatus();
  });
}

}  // namespace

// `job` is the jobs table's rowid: an integer keeps the index small where the text id would
// repeat in every row. Without a foreign key: checking it would cost a lookup per point, and
// the store only appends for a job it has just read.
const char MetricTable::kSchemaV1[] = R"sql(
CREATE TABLE metrics (
  job INTEGER NOT NULL,
  attempt_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  step INTEGER NOT NULL,
  value REAL NOT NULL,
  wall_time REAL NOT NULL
);
CREATE INDEX metrics_by_series ON metrics (job, name, step);
)sql";

absl::Status MetricTable::Append(int64_t job, uint64_t attempt_id,
                                 const std::vector<v1::MetricPoint>& points) {
  absl::StatusOr<Statement> insert = db_.Prepare(
      "INSERT INTO metrics (job, attempt_id, name, step, value, wall_time) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!insert.ok()) return insert.status();
  for (const v1::MetricPoint& point : points) {
    insert->Bind(1, job)
        .Bind(2, static_cast<int64_t>(attempt_id))
        .Bind(3, point.name())
        .Bind(4, point.step())
        .Bind(5, point.value())
        .Bind(6, point.wall_time());
    if (absl::Status run = insert->Run(); !run.ok()) return run;
    insert->Reset();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::MetricSeries>> MetricTable::Read(
    int64_t job, const std::vector<std::string>& names, int max_points) {
  std::vector<v1::MetricSeries> out;
  // Ordering by rowid last follows the index (rowid ends every index entry) and puts the
  // newest report of a step last.
  if (names.empty()) {
    absl::StatusOr<Statement> rows = db_.Prepare(
        "SELECT name, step, value, wall_time FROM metrics WHERE job = ?1 "
        "ORDER BY name, step, rowid");
    if (!rows.ok()) return rows.status();
    rows->Bind(1, job);
    if (absl::Status read = ReadSeries(*rows, out); !read.ok()) return read;
  } else {
    std::vector<std::string> sorted = names;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    absl::StatusOr<Statement> rows = db_.Prepare(
        "SELECT name, step, value, wall_time FROM metrics WHERE job = ?1 AND name = ?2 "
        "ORDER BY step, rowid");
    if (!rows.ok()) return rows.status();
    for (const std::string& name : sorted) {
      rows->Bind(1, job).Bind(2, name);
      if (absl::Status read = ReadSeries(*rows, out); !read.ok()) return read;
      rows->Reset();
    }
  }
  for (v1::MetricSeries& series : out) {
    const std::vector<int> keep = ThinEvenly(series.steps_size(), max_points);
    if (static_cast<int>(keep.size()) == series.steps_size()) continue;
    v1::MetricSeries thinned;
    thinned.set_name(series.name());
    for (int i : keep) {
      thinned.add_steps(series.steps(i));
      thinned.add_values(series.values(i));
      thinned.add_wall_times(series.wall_times(i));
    }
    series = std::move(thinned);
  }
  return out;
}

std::vector<int> ThinEvenly(int n, int max_points) {
  std::vector<int> keep;
  if (max_points <= 0 || n <= max_points) {
    for (int i = 0; i < n; ++i) keep.push_back(i);
  } else if (max_points == 1) {
    keep.push_back(n - 1);
  } else {
    // k * (n - 1) / (m - 1) for k = 0 .. m - 1: strictly increasing since n > m, ending at n - 1.
    for (int64_t k = 0; k < max_points; ++k) {
      keep.push_back(static_cast<int>(k * (n - 1) / (max_points - 1)));
    }
  }
  return keep;
}

}  // namespace ablate::coordinator::internal
