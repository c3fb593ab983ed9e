#include "cli/results.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/stats.h"
#include "cli/table.h"
#include "common/job_state.h"
#include "sweep/grid.h"
#include "sweep/tuning.h"
#include "sweep/validate.h"

namespace ablate::cli {
namespace {

using CellValues = google::protobuf::RepeatedPtrField<v1::CellValue>;

std::string Label(const CellValues& cell) {
  return absl::StrJoin(cell, " ", [](std::string* out, const v1::CellValue& value) {
    absl::StrAppend(out, value.dimension(), "=", value.value());
  });
}

// The grid's values of a cell, in grid order; the repeat's seed is not a grid dimension.
CellValues GridValues(const v1::Sweep& sweep, const CellValues& cell) {
  CellValues out;
  for (const v1::Dimension& dimension : sweep.spec().grid()) {
    for (const v1::CellValue& value : cell) {
      if (value.dimension() == dimension.name()) *out.Add() = value;
    }
  }
  return out;
}

// Whether the cell is the spec's baseline, comparing parsed values ("32K" is "32768").
bool IsBaseline(const v1::SweepSpec& spec, const CellValues& cell) {
  if (spec.baseline().empty()) return false;
  for (const v1::CellValue& value : cell) {
    const auto it = spec.baseline().find(value.dimension());
    if (it == spec.baseline().end()) return false;
    if (sweep::internal::ValueKey(value.dimension(), value.value()).value_or("a") !=
        sweep::internal::ValueKey(value.dimension(), it->second).value_or("b")) {
      return false;
    }
  }
  return true;
}

std::string Number(double value) { return absl::StrFormat("%.4f", value); }

std::string Interval(const v1::Estimate& estimate) {
  if (!estimate.has_low()) return "-";
  return absl::StrFormat("[%.4f, %.4f]", estimate.low(), estimate.high());
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

// The shortest text that reads back as the same double (0.003, not 0.0030000000000000001).
std::string Optional(bool present, double value) {
  if (!present) return "";
  char text[32];
  const std::to_chars_result written = std::to_chars(std::begin(text), std::end(text), value);
  return std::string(text, written.ptr);
}

// Whether a higher value of `metric` is the better one, for the colors: throughput and
// utilization. Every other series reads lower as better (losses, perplexity).
bool HigherIsBetter(absl::string_view metric) {
  return absl::EndsWith(metric, "tokens_per_sec") || absl::EndsWith(metric, "/mfu");
}

// A 256-color terminal's green -> yellow -> red ramp, for a value at `t` in [0, 1].
int RampColor(double t) {
  static constexpr int kRamp[] = {46, 82, 118, 154, 190, 226, 220, 214, 208, 202, 196};
  const int last = static_cast<int>(std::size(kRamp)) - 1;
  return kRamp[std::clamp(static_cast<int>(std::lround(t * last)), 0, last)];
}

std::string PadLeft(const std::string& text, size_t width) {
  const size_t shown = DisplayWidth(text);
  return std::string(width > shown ? width - shown : 0, ' ') + text;
}

std::string PadRight(const std::string& text, size_t width) {
  const size_t shown = DisplayWidth(text);
  return text + std::string(width > shown ? width - shown : 0, ' ');
}

}  // namespace

absl::StatusOr<ResultsBuilder> ResultsBuilder::Create(const v1::Sweep& sweep,
                                                      const std::string& metric) {
  const size_t slash = metric.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == metric.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metric: '", metric,
        "' is no series name (GROUP/NAME, as eval/loss, train/loss, train/tokens_per_sec)"));
  }
  return ResultsBuilder(sweep, metric);
}

bool ResultsBuilder::ReadsJobs() const { return metric_ == "eval/loss" || metric_ == "train/loss"; }

ResultsBuilder::ResultsBuilder(const v1::Sweep& sweep, std::string metric)
    : sweep_(sweep), metric_(std::move(metric)) {}

void ResultsBuilder::Add(const v1::Job& job, std::optional<double> value) {
  if (job.dropped()) return;
  CellValues cell = GridValues(sweep_, job.spec().cell());
  const std::string label = Label(cell);
  auto [it, inserted] = index_.try_emplace(label, cells_.size());
  if (inserted) {
    Cell& added = cells_.emplace_back();
    added.result.set_baseline(IsBaseline(sweep_.spec(), cell));
    *added.result.mutable_cell() = std::move(cell);
  }
  Cell& entry = cells_[it->second];
  if (job.spec().has_trial()) {
    entry.result.set_trials(entry.result.trials() + 1);
    const bool ended = JobStateHasEnded(job.state());
    const bool result = job.state() == v1::JOB_STATE_SUCCEEDED && job.has_final_eval_loss() &&
                        std::isfinite(job.final_eval_loss());
    // A cancelled trial did not fail: it waits for a retry (sweep/tuning.h).
    if (ended && !result && job.state() != v1::JOB_STATE_CANCELLED) {
      entry.result.set_failed_trials(entry.result.failed_trials() + 1);
    }
    if (entry.result.has_tuned()) return;
    v1::Job& trial = entry.trials.emplace_back();
    trial.set_state(job.state());
    if (job.has_final_eval_loss()) trial.set_final_eval_loss(job.final_eval_loss());
    *trial.mutable_spec()->mutable_cell() = job.spec().cell();
    *trial.mutable_spec()->mutable_trial() = job.spec().trial();
    trial.mutable_spec()->mutable_config()->set_learning_rate(job.spec().config().learning_rate());
    trial.mutable_spec()->mutable_config()->set_weight_decay(job.spec().config().weight_decay());
    return;
  }
  if (job.spec().has_tuned()) {
    *entry.result.mutable_tuned() = job.spec().tuned();
    entry.trials.clear();  // the cell chose
  }
  entry.result.set_jobs(entry.result.jobs() + 1);
  if (job.state() != v1::JOB_STATE_SUCCEEDED) return;
  entry.result.set_succeeded(entry.result.succeeded() + 1);
  if (metric_ == "eval/loss" && job.has_final_eval_loss()) value = job.final_eval_loss();
  if (metric_ == "train/loss" && job.has_last_loss()) value = job.last_loss();
  if (value.has_value()) {
    entry.runs.emplace_back(job.spec().config().seed(), *value);
    const std::string& version = job.provenance().code_version();
    if (version.empty()) return;
    entry.code_versions.insert(version);
    const int64_t updated = job.updated_at().seconds() * 1'000'000'000 + job.updated_at().nanos();
    if (updated >= newest_.first) newest_ = {updated, version};
  }
}

v1::SweepResults ResultsBuilder::Finish() const {
  v1::SweepResults out;
  out.set_sweep_id(sweep_.id());
  out.set_metric(metric_);
  out.set_code_version(newest_.second);
  absl::flat_hash_map<uint64_t, double> baseline;  // seed -> metric
  for (const Cell& cell : cells_) {
    if (cell.result.baseline()) baseline.insert(cell.runs.begin(), cell.runs.end());
  }
  // Cells in the file's grid order, however their jobs came (an update appends its new cells'
  // jobs after the old ones); a value the grid no longer lists goes last.
  std::vector<std::pair<std::vector<int>, const Cell*>> ordered;
  ordered.reserve(cells_.size());
  for (const Cell& cell : cells_) {
    std::vector<int> key;
    for (const v1::Dimension& dimension : sweep_.spec().grid()) {
      for (const v1::CellValue& value : cell.result.cell()) {
        if (value.dimension() != dimension.name()) continue;
        key.push_back(static_cast<int>(
            std::find(dimension.values().begin(), dimension.values().end(), value.value()) -
            dimension.values().begin()));
      }
    }
    ordered.emplace_back(std::move(key), &cell);
  }
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [key, ordered_cell] : ordered) {
    const Cell& cell = *ordered_cell;
    v1::CellResult& result = *out.add_cells();
    result = cell.result;
    if (!cell.trials.empty() && !result.has_tuned()) {
      const std::vector<v1::JobState> outcomes = sweep::TuningOutcomes(sweep_.spec(), cell.trials);
      result.set_tuning_failed(std::any_of(outcomes.begin(), outcomes.end(), [](v1::JobState s) {
        return s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_CANCELLED;
      }));
    }
    for (const std::string& version : cell.code_versions) {
      if (version != newest_.second) result.add_other_code_versions(version);
    }
    std::vector<std::pair<uint64_t, double>> runs = cell.runs;
    std::sort(runs.begin(), runs.end());
    std::vector<double> values;
    std::vector<double> differences;
    for (const auto& [seed, value] : runs) {
      result.add_seeds(seed);
      result.add_values(value);
      values.push_back(value);
      if (const auto it = baseline.find(seed); it != baseline.end()) {
        differences.push_back(value - it->second);
      }
    }
    if (!values.empty()) *result.mutable_metric() = Estimate(values);
    if (!cell.result.baseline() && !differences.empty()) {
      *result.mutable_difference() = Estimate(differences);
    }
  }
  return out;
}

std::string ResultsText(const v1::Sweep& sweep, const v1::SweepResults& results) {
  std::vector<std::string> headers;
  for (const v1::Dimension& dimension : sweep.spec().grid()) headers.push_back(dimension.name());
  const size_t dims = headers.size();
  const bool tuned = sweep.spec().has_tuning();
  // A parameter the search leaves alone has the cell's own value: no column of its own.
  bool tuned_wd = false;
  for (const v1::TunedParameter& parameter : sweep.spec().tuning().parameters()) {
    tuned_wd = tuned_wd || parameter.name() == "weight_decay";
  }
  if (tuned) headers.insert(headers.end(), {"TRIALS", "TUNED LR"});
  if (tuned_wd) headers.push_back("TUNED WD");
  for (const std::string& h :
       {std::string("RUNS"), results.metric(), std::string("95% CI"), std::string("STD")}) {
    headers.push_back(h);
  }
  // Without a baseline there is nothing to be paired with: no columns of dashes.
  const bool has_baseline = !sweep.spec().baseline().empty();
  if (has_baseline) headers.insert(headers.end(), {"VS BASELINE", "95% CI (PAIRED)"});
  Table table(headers);
  for (size_t c = dims; c < headers.size(); ++c) table.SetAlign(c, Table::Align::kRight);
  std::set<std::string> other_versions;
  const std::vector<v1::SearchPoint> points =
      tuned ? sweep::SearchPoints(sweep.spec().tuning()) : std::vector<v1::SearchPoint>();
  bool at_edge = false;  // a choice marked at its search's edge
  auto chosen_text = [&](const v1::CellResult& cell, double value, const std::string& parameter) {
    const int edge = sweep::EdgeOfSearch(points, cell.tuned().point(), parameter);
    const std::string mark = edge > 0 ? " ↑" : (edge < 0 ? " ↓" : "");
    at_edge = at_edge || !mark.empty();
    return absl::StrCat(absl::StrFormat("%g", value), mark);
  };
  for (const v1::CellResult& cell : results.cells()) {
    std::vector<std::string> row;
    for (const v1::CellValue& value : cell.cell()) row.push_back(value.value());
    other_versions.insert(cell.other_code_versions().begin(), cell.other_code_versions().end());
    if (tuned) {
      // Until the cell's tuning chooses, its final jobs do not exist; if every point failed,
      // they never will.
      const bool chose = cell.has_tuned();
      const std::string waiting =
          cell.tuning_failed()
              // Stopped with no failed trial: a cancelled one holds its tuning back.
              ? (cell.failed_trials() == 0 ? std::string("cancelled: retry --cancelled")
                                           : absl::StrCat("failed: ", cell.failed_trials(), " of ",
                                                          cell.trials(), " trials"))
              : "tuning";
      row.insert(
          row.end(),
          {absl::StrCat(cell.trials(), cell.failed_trials() > 0
                                           ? absl::StrCat(" (", cell.failed_trials(), " failed)")
                                           : ""),
           chose ? chosen_text(cell, cell.tuned().learning_rate(), "learning_rate") : waiting});
      if (tuned_wd) {
        row.push_back(chose ? chosen_text(cell, cell.tuned().weight_decay(), "weight_decay") : "-");
      }
    }
    row.push_back(absl::StrCat(cell.succeeded(), "/", cell.jobs(),
                               cell.other_code_versions().empty() ? "" : "*"));
    const bool has = cell.has_metric();
    row.push_back(has ? Number(cell.metric().mean()) : "-");
    row.push_back(has ? Interval(cell.metric()) : "-");
    row.push_back(has && cell.metric().has_std() ? Number(cell.metric().std()) : "-");
    if (!has_baseline) {
      // No columns to fill.
    } else if (cell.baseline()) {
      row.insert(row.end(), {"baseline", ""});
    } else if (cell.has_difference()) {
      row.push_back(absl::StrFormat("%+.4f", cell.difference().mean()));
      row.push_back(Interval(cell.difference()));
    } else {
      row.insert(row.end(), {"-", "-"});
    }
    table.AddRow(std::move(row));
  }
  std::string out = table.Render();
  if (at_edge) {
    absl::StrAppend(&out,
                    "↑ ↓: the tuning chose the largest (smallest) value it searched; the best may "
                    "lie beyond: widen the range\n");
  }
  // Every difference needs the baseline's value of the same seed: say why there are none.
  const auto baseline = std::find_if(results.cells().begin(), results.cells().end(),
                                     [](const v1::CellResult& cell) { return cell.baseline(); });
  if (baseline != results.cells().end() && !baseline->has_metric()) {
    std::vector<std::string> values;
    for (const v1::CellValue& value : baseline->cell()) {
      values.push_back(absl::StrCat(value.dimension(), "=", value.value()));
    }
    absl::StrAppend(&out, "the baseline cell (", absl::StrJoin(values, " "), ") has no ",
                    results.metric(), " (", baseline->succeeded(), " of ", baseline->jobs(),
                    " jobs succeeded), so no cell has a difference from it; `ablate status ",
                    sweep.id(), "` shows its jobs\n");
  }
  if (!other_versions.empty()) {
    absl::StrAppend(&out, "* some runs come from code ", absl::StrJoin(other_versions, ", "),
                    ", not ", results.code_version(), " (the newest result's)\n");
  }
  return out;
}

std::string ResultsCsv(const v1::Sweep& sweep, const v1::SweepResults& results) {
  std::vector<std::string> header;
  for (const v1::Dimension& dimension : sweep.spec().grid()) {
    header.push_back(CsvField(dimension.name()));
  }
  const bool tuned = sweep.spec().has_tuning();
  if (tuned) {
    header.insert(header.end(), {"trials", "failed_trials", "tuning_failed", "tuned_learning_rate",
                                 "tuned_weight_decay", "tuned_trial_job_id", "tuned_rung",
                                 "tuned_trial_eval_loss"});
  }
  for (const char* h : {"jobs", "succeeded", "n", "mean", "std", "ci95_low", "ci95_high", "diff",
                        "diff_ci95_low", "diff_ci95_high"}) {
    header.push_back(h);
  }
  std::string out = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (const v1::CellResult& cell : results.cells()) {
    std::vector<std::string> row;
    for (const v1::CellValue& value : cell.cell()) row.push_back(CsvField(value.value()));
    const v1::Estimate& m = cell.metric();
    const v1::Estimate& d = cell.difference();
    const bool has = cell.has_metric();
    const bool diff = cell.has_difference();
    if (tuned) {
      row.insert(row.end(), {absl::StrCat(cell.trials()), absl::StrCat(cell.failed_trials()),
                             cell.tuning_failed() ? "true" : "false",
                             Optional(cell.has_tuned(), cell.tuned().learning_rate()),
                             Optional(cell.has_tuned(), cell.tuned().weight_decay()),
                             CsvField(cell.tuned().trial_job_id()),
                             cell.has_tuned() ? absl::StrCat(cell.tuned().rung()) : "",
                             Optional(cell.has_tuned(), cell.tuned().trial_eval_loss())});
    }
    row.insert(row.end(), {absl::StrCat(cell.jobs()), absl::StrCat(cell.succeeded()),
                           absl::StrCat(m.n()), Optional(has, m.mean()),
                           Optional(m.has_std(), m.std()), Optional(m.has_low(), m.low()),
                           Optional(m.has_high(), m.high()), Optional(diff, d.mean()),
                           Optional(d.has_low(), d.low()), Optional(d.has_high(), d.high())});
    absl::StrAppend(&out, absl::StrJoin(row, ","), "\n");
  }
  return out;
}

absl::StatusOr<std::string> CompareText(const v1::Sweep& sweep, const v1::SweepResults& results,
                                        const std::string& rows_flag, const std::string& cols_flag,
                                        bool color) {
  const auto& grid = sweep.spec().grid();
  // Left out, the rows are the grid's first dimension and the columns the next one.
  const std::string rows = rows_flag.empty() && !grid.empty() ? grid.begin()->name() : rows_flag;
  std::string cols = cols_flag;
  for (const v1::Dimension& d : grid) {
    if (cols.empty() && d.name() != rows) cols = d.name();
  }
  auto find = [&](const std::string& name) {
    return std::find_if(grid.begin(), grid.end(),
                        [&](const v1::Dimension& d) { return d.name() == name; });
  };
  std::vector<std::string> names;
  for (const v1::Dimension& d : grid) names.push_back(d.name());
  // A grid of one dimension has the metric as its one column.
  const bool one_column = cols.empty();
  v1::Dimension metric_column;
  metric_column.set_name(results.metric());
  metric_column.add_values(results.metric());
  for (const auto& [flag, name] : {std::pair{"--rows", rows}, std::pair{"--cols", cols}}) {
    if (name.empty() && one_column) continue;
    if (find(name) == grid.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": '", name, "' is not a grid dimension (grid: ", absl::StrJoin(names, ", "), ")"));
    }
  }
  if (rows == cols) return absl::InvalidArgumentError("--cols: the same dimension as --rows");
  const v1::Dimension& row_dim = *find(rows);
  const v1::Dimension& col_dim = one_column ? metric_column : *find(cols);

  // Panels in the order their first cell comes; each maps (row value, col value) -> mean.
  struct Mean {
    double value;
    bool partial;  // over fewer runs than the cell has jobs (seeds): marked, as results' RUNS
  };
  struct Panel {
    std::string label;
    std::map<std::pair<std::string, std::string>, Mean> means;
  };
  bool any_partial = false;
  std::vector<Panel> panels;
  double lowest = std::numeric_limits<double>::infinity();
  double highest = -lowest;
  for (const v1::CellResult& cell : results.cells()) {
    std::string row_value;
    std::string col_value = one_column ? results.metric() : "";
    CellValues rest;
    for (const v1::CellValue& value : cell.cell()) {
      if (value.dimension() == rows) {
        row_value = value.value();
      } else if (value.dimension() == cols) {
        col_value = value.value();
      } else {
        *rest.Add() = value;
      }
    }
    const std::string label = Label(rest);
    auto panel = std::find_if(panels.begin(), panels.end(),
                              [&](const Panel& p) { return p.label == label; });
    if (panel == panels.end()) panel = panels.insert(panels.end(), Panel{label, {}});
    if (!cell.has_metric()) continue;
    const bool partial = cell.metric().n() < cell.jobs();
    any_partial = any_partial || partial;
    panel->means[{row_value, col_value}] = {cell.metric().mean(), partial};
    lowest = std::min(lowest, cell.metric().mean());
    highest = std::max(highest, cell.metric().mean());
  }

  std::string out;
  for (const Panel& panel : panels) {
    if (!out.empty()) out += '\n';
    absl::StrAppend(&out, panel.label.empty() ? "" : absl::StrCat(panel.label, "\n"));
    // Widths from the plain text, so color codes never shift a column.
    const std::string corner = one_column ? rows : absl::StrCat(rows, " \\ ", col_dim.name());
    size_t first = DisplayWidth(corner);
    for (const std::string& value : row_dim.values()) first = std::max(first, DisplayWidth(value));
    std::vector<size_t> widths;
    for (const std::string& value : col_dim.values()) {
      widths.push_back(std::max<size_t>(DisplayWidth(value), 7));  // "0.0000"
    }
    absl::StrAppend(&out, PadRight(corner, first));
    for (int c = 0; c < col_dim.values_size(); ++c) {
      absl::StrAppend(&out, "  ", PadLeft(col_dim.values(c), widths[c]));
    }
    out += '\n';
    for (const std::string& row_value : row_dim.values()) {
      absl::StrAppend(&out, PadRight(row_value, first));
      for (int c = 0; c < col_dim.values_size(); ++c) {
        const auto it = panel.means.find({row_value, col_dim.values(c)});
        const std::string text =
            it == panel.means.end()
                ? "-"
                : absl::StrCat(Number(it->second.value), it->second.partial ? "*" : "");
        std::string padded = PadLeft(text, widths[c]);
        if (color && it != panel.means.end()) {
          double t = highest > lowest ? (it->second.value - lowest) / (highest - lowest) : 0;
          if (HigherIsBetter(results.metric())) t = 1 - t;
          padded = absl::StrCat("\x1b[38;5;", RampColor(t), "m", padded, "\x1b[0m");
        }
        absl::StrAppend(&out, "  ", padded);
      }
      out += '\n';
    }
  }
  if (any_partial) {
    absl::StrAppend(&out, "* a mean over fewer runs than the cell's seeds (`ablate results` ",
                    "shows how many)\n");
  }
  return out;
}

}  // namespace ablate::cli
