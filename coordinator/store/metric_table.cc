#include "coordinator/store/metric_table.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "ablate/v1/trainer.pb.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"

namespace ablate::coordinator::internal {
namespace {

struct Sample {
  int64_t step;
  double value;
  double wall_time;
};

// One series from its samples in report order: sorted by step, the newest sample of a step
// kept (a retry resumes from a checkpoint before the step its predecessor reached, and
// reports the steps after it again), thinned to `max_points`.
v1::MetricSeries ToSeries(const std::string& name, std::vector<Sample>& samples, int max_points) {
  std::stable_sort(samples.begin(), samples.end(),
                   [](const Sample& a, const Sample& b) { return a.step < b.step; });
  std::vector<Sample> unique;
  unique.reserve(samples.size());
  for (const Sample& sample : samples) {
    if (!unique.empty() && unique.back().step == sample.step) {
      unique.back() = sample;
    } else {
      unique.push_back(sample);
    }
  }
  v1::MetricSeries series;
  series.set_name(name);
  for (int i : ThinEvenly(static_cast<int>(unique.size()), max_points)) {
    series.add_steps(unique[i].step);
    series.add_values(unique[i].value);
    series.add_wall_times(unique[i].wall_time);
  }
  return series;
}

}  // namespace

// `job` is the jobs table's rowid: an integer keeps the index small where the text id would
// repeat in every row. Without a foreign key: checking it would cost a lookup per report, and
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

const char MetricTable::kSchemaV2[] = R"sql(
CREATE TABLE metric_reports (
  job INTEGER NOT NULL,
  attempt_id INTEGER NOT NULL,
  points BLOB NOT NULL
);
CREATE INDEX metric_reports_by_job ON metric_reports (job);
)sql";

absl::Status MetricTable::Append(int64_t job, uint64_t attempt_id, const v1::MetricBatch& batch) {
  absl::StatusOr<Statement> insert =
      db_.Prepare("INSERT INTO metric_reports (job, attempt_id, points) VALUES (?1, ?2, ?3)");
  if (!insert.ok()) return insert.status();
  // One buffer per writing thread, reused: a report of thousands of points is some 100 KB, and
  // a fresh allocation of that size makes the allocator consolidate the small chunks the
  // previous reports' points freed, which cost the writer more than the serializing.
  thread_local std::string packed;
  packed.clear();
  if (!batch.AppendToString(&packed)) {
    return absl::InvalidArgumentError("a metric report too large to store");
  }
  return insert->Bind(1, job)
      .Bind(2, static_cast<int64_t>(attempt_id))
      .BindBlobUncopied(3, packed)
      .Run();
}

absl::StatusOr<std::vector<v1::MetricSeries>> MetricTable::Read(
    int64_t job, const std::vector<std::string>& names, int max_points,
    std::vector<std::string>* logged) {
  const absl::flat_hash_set<std::string> wanted(names.begin(), names.end());
  std::map<std::string, std::vector<Sample>> by_name;  // sorted: series come out by name
  // Every name met, with its series' samples when asked for (null when not): a point costs one
  // lookup, which also collects the names for `logged`.
  absl::flat_hash_map<std::string, std::vector<Sample>*> met;
  auto keep = [&](const std::string& name, Sample sample) {
    auto [it, added] = met.try_emplace(name, nullptr);
    if (added && (wanted.empty() || wanted.contains(name))) it->second = &by_name[name];
    if (it->second != nullptr) it->second->push_back(sample);
  };
  absl::StatusOr<Statement> legacy =
      db_.Prepare("SELECT name, step, value, wall_time FROM metrics WHERE job = ?1 ORDER BY rowid");
  if (!legacy.ok()) return legacy.status();
  legacy->Bind(1, job);
  absl::Status read = legacy->ForEachRow([&](const Statement& row) {
    keep(row.Text(0), {row.Int(1), row.Double(2), row.Double(3)});
    return absl::OkStatus();
  });
  if (!read.ok()) return read;

  absl::StatusOr<Statement> reports =
      db_.Prepare("SELECT points FROM metric_reports WHERE job = ?1 ORDER BY rowid");
  if (!reports.ok()) return reports.status();
  reports->Bind(1, job);
  v1::MetricBatch batch;
  read = reports->ForEachRow([&](const Statement& row) {
    const absl::string_view bytes = row.Blob(0);
    if (!batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::DataLossError(absl::StrCat("a metric report of job ", job, " is corrupt"));
    }
    for (const v1::MetricPoint& point : batch.points()) {
      keep(point.name(), {point.step(), point.value(), point.wall_time()});
    }
    return absl::OkStatus();
  });
  if (!read.ok()) return read;

  std::vector<v1::MetricSeries> out;
  out.reserve(by_name.size());
  for (auto& [name, samples] : by_name) out.push_back(ToSeries(name, samples, max_points));
  if (logged != nullptr) {
    logged->clear();
    for (const auto& entry : met) logged->push_back(entry.first);
    std::sort(logged->begin(), logged->end());
  }
  return out;
}

// MetricBatch's wire format written point by point: field 1, length-delimited, holds each
// point. Serializing the points in place spares a copy of each into a MetricBatch (a string
// allocation per name), which cost the writer more than SQLite's insert.
std::string EncodeMetricBatch(const std::vector<v1::MetricPoint>& points) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream bytes(&out);
    google::protobuf::io::CodedOutputStream coded(&bytes);
    for (const v1::MetricPoint& point : points) {
      coded.WriteTag(google::protobuf::internal::WireFormatLite::MakeTag(
          v1::MetricBatch::kPointsFieldNumber,
          google::protobuf::internal::WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
      coded.WriteVarint32(static_cast<uint32_t>(point.ByteSizeLong()));
      point.SerializeWithCachedSizes(&coded);
    }
  }  // the streams flush into `out` as they close
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
