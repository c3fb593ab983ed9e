#include "cli/plan_view.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "cli/table.h"
#include "common/slot_need.h"
#include "sweep/tuning.h"

namespace ablate::cli {
namespace {

std::string CellLabel(const google::protobuf::RepeatedPtrField<v1::CellValue>& cell) {
  return absl::StrJoin(cell, " ", [](std::string* out, const v1::CellValue& value) {
    absl::StrAppend(out, value.dimension(), "=", value.value());
  });
}

// One decimal, or two significant digits below one hour (a CPU demo's 0.0028).
std::string Hours(double hours) {
  if (hours >= 1 || hours == 0) return absl::StrFormat("%.1f", hours);
  return absl::StrFormat("%.2g", hours);
}

// The search every cell runs: its size and each parameter's values.
std::string SearchText(const v1::SweepPlan& plan) {
  std::string out =
      absl::StrCat("tuning: ", plan.search_size(), " points per cell by successive halving (eta ",
                   plan.reduction_factor(), ")\n");
  const int parameters = plan.search(0).values_size();
  for (int p = 0; p < parameters; ++p) {
    std::vector<std::string> values;
    for (const v1::SearchPoint& point : plan.search()) {
      const std::string& value = point.values(p).value();
      if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(value);
    }
    const std::string& name = plan.search(0).values(p).dimension();
    const bool relative = absl::StartsWith(values.front(), sweep::kRelativeMark);
    absl::StrAppend(&out, "  ", name, ": ", absl::StrJoin(values, " "),
                    relative ? absl::StrCat(" (times each cell's own ", name, ")") : "", "\n");
  }
  // Why a cell may have fewer rungs than its search would fill (sweep/tuning.h: RungsOf).
  absl::StrAppend(&out,
                  "  rungs: from min_steps, each eta times the steps of the one before, "
                  "while that is\n  below the cell's steps and keeps 2 or more trials; the "
                  "last rung's best trains the cell's steps\n");
  return out;
}

// The tuned parameters whose search is relative to each cell's own value.
std::vector<std::string> RelativeParameters(const v1::SweepPlan& plan) {
  std::vector<std::string> out;
  if (plan.search().empty()) return out;
  for (const v1::CellValue& value : plan.search(0).values()) {
    if (absl::StartsWith(value.value(), sweep::kRelativeMark)) out.push_back(value.dimension());
  }
  return out;
}

// The lowest and highest value of `name` a cell's trials train with: "0.00075..0.012".
std::string RangeOf(const v1::CellTuning& tuning, const std::string& name) {
  double low = 0;
  double high = 0;
  std::string low_text;
  std::string high_text;
  for (const v1::SearchPoint& point : tuning.points()) {
    for (const v1::CellValue& value : point.values()) {
      double number = 0;
      if (value.dimension() != name || !absl::SimpleAtod(value.value(), &number)) continue;
      if (low_text.empty() || number < low) {
        low = number;
        low_text = value.value();
      }
      if (high_text.empty() || number > high) {
        high = number;
        high_text = value.value();
      }
    }
  }
  return low_text.empty() ? "" : absl::StrCat(low_text, "..", high_text);
}

// Each tuned cell's rungs ("8x50 2x150": 8 trials of 50 steps, then 2 of 150) and their cost.
std::string TrialsText(const v1::SweepPlan& plan, size_t max_jobs) {
  std::vector<std::string> headers;
  const int dims = plan.cells().empty() ? 0 : plan.cells(0).cell_size();
  for (int d = 0; d < dims; ++d) {
    if (plan.cells(0).cell(d).dimension() != "seed") {
      headers.push_back(plan.cells(0).cell(d).dimension());
    }
  }
  const size_t cell_columns = headers.size();
  for (const char* h : {"RUNGS", "STEPS", "TOKENS", "FLOPS", "GPU-H"}) headers.push_back(h);
  // With relative parameters, the values each cell's trials train with, as "low..high".
  const std::vector<std::string> relative = RelativeParameters(plan);
  for (const std::string& name : relative) headers.push_back(absl::AsciiStrToUpper(name));
  Table trials(headers);
  for (size_t c = cell_columns + 1; c < headers.size(); ++c) {
    trials.SetAlign(c, Table::Align::kRight);
  }
  size_t cells = 0;
  for (const v1::CellPlan& cell : plan.cells()) {
    if (!cell.has_tuning()) continue;
    if (cells++ >= max_jobs) continue;
    std::vector<std::string> row;
    for (const v1::CellValue& value : cell.cell()) {
      if (value.dimension() != "seed") row.push_back(value.value());
    }
    std::vector<std::string> rungs;
    for (const v1::RungPlan& rung : cell.tuning().rungs()) {
      rungs.push_back(absl::StrCat(rung.trials(), "x", rung.steps()));
    }
    row.insert(row.end(),
               {absl::StrJoin(rungs, " "), absl::StrCat(cell.tuning().steps()),
                SiCount(static_cast<double>(cell.tuning().tokens())),
                absl::StrFormat("%.3g", cell.tuning().flops()),
                cell.tuning().has_gpu_hours() ? Hours(cell.tuning().gpu_hours()) : "unknown"});
    for (const std::string& name : relative) row.push_back(RangeOf(cell.tuning(), name));
    trials.AddRow(std::move(row));
  }
  std::string out = absl::StrCat("trials per cell:\n", trials.Render());
  if (cells > trials.rows()) {
    absl::StrAppend(&out, "... ", cells - trials.rows(),
                    " more cells: `ablate plan FILE` lists every one\n");
  }
  return out;
}

std::string Count(uint64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

}  // namespace

std::string JobCountText(const v1::JobCountPlan& count) {
  const std::string per_cell = count.seeds() > 1
                                   ? absl::StrCat(" (", Count(count.cells(), "cell", "cells"),
                                                  " x ", count.seeds(), " seeds)")
                                   : "";
  std::string out;
  if (count.rungs().empty()) {
    out = absl::StrCat(Count(count.total(), "job", "jobs"), per_cell);
  } else {
    std::vector<std::string> rungs;
    rungs.reserve(count.rungs_size());
    for (int k = 0; k < count.rungs_size(); ++k) {
      rungs.push_back(absl::StrCat("rung ", k, ": ", count.rungs(k).trials(), " x ",
                                   count.rungs(k).steps(), " steps"));
    }
    out = absl::StrCat(count.total(), " jobs at most: ", count.finals(), " final", per_cell, " + ",
                       Count(count.trials(), "trial", "trials"), " (", absl::StrJoin(rungs, ", "),
                       ")");
  }
  absl::StrAppend(&out, "; ", Count(count.excluded(), "cell", "cells"), " excluded by constraints");
  if (!count.rungs().empty()) {
    absl::StrAppend(&out, "; rung 0's ", count.submitted(), " trials run first");
  }
  return out;
}

std::string SiCount(double value) {
  static constexpr const char* kSuffixes[] = {"", "K", "M", "B", "T", "P"};
  size_t i = 0;
  while (std::fabs(value) >= 1000 && i + 1 < std::size(kSuffixes)) {
    value /= 1000;
    ++i;
  }
  if (i == 0) return absl::StrFormat("%.0f", value);
  if (value >= 100) return absl::StrFormat("%.0f%s", value, kSuffixes[i]);
  if (value >= 10) return absl::StrFormat("%.1f%s", value, kSuffixes[i]);
  return absl::StrFormat("%.2f%s", value, kSuffixes[i]);
}

std::string Bytes(uint64_t bytes) { return bytes == 0 ? "-" : MemoryText(bytes); }

std::string PlanText(const v1::SweepPlan& plan, size_t max_jobs) {
  std::string out = absl::StrCat("sweep ", plan.sweep_id(), " (", plan.shape(),
                                 "): ", JobCountText(plan.job_count()), "\n");
  if (!plan.search().empty()) absl::StrAppend(&out, SearchText(plan));

  absl::StrAppend(&out, "dimensions:\n");
  Table dimensions({"", ""});
  for (const v1::DimensionPlan& dimension : plan.dimensions()) {
    std::vector<std::string> counts;
    counts.reserve(dimension.values_size());
    for (int i = 0; i < dimension.values_size(); ++i) {
      counts.push_back(absl::StrCat(dimension.values(i), " ", dimension.jobs(i)));
    }
    dimensions.AddRow({absl::StrCat("  ", dimension.name()), absl::StrJoin(counts, "  ")});
  }
  absl::StrAppend(&out, dimensions.Render(/*header=*/false));

  if (!plan.excluded().empty()) {
    absl::StrAppend(&out, "excluded:\n");
    for (const v1::ExcludedCell& excluded : plan.excluded()) {
      absl::StrAppend(&out, "  ", CellLabel(excluded.cell()), ": constraints[",
                      excluded.constraint(), "]", excluded.reason().empty() ? "" : ": ",
                      excluded.reason(), "\n");
    }
  }

  std::vector<std::string> headers = {"JOB"};
  const int dims = plan.cells().empty() ? 0 : plan.cells(0).cell_size();
  for (int d = 0; d < dims; ++d) headers.push_back(plan.cells(0).cell(d).dimension());
  // HOST only where a job offloads checkpoints to pinned host memory.
  const bool host = absl::c_any_of(
      plan.cells(), [](const v1::CellPlan& cell) { return cell.host_memory_bytes() > 0; });
  for (const char* h :
       {"PARAMS", "TOKENS", "FLOPS", "MEMORY", "HOST", "GPUS", "BATCH", "ACCUM", "LR", "GPU-H"}) {
    if (host || absl::string_view(h) != "HOST") headers.push_back(h);
  }
  Table jobs(headers);
  for (size_t c = dims + 1; c < headers.size(); ++c) jobs.SetAlign(c, Table::Align::kRight);
  for (const v1::CellPlan& cell : plan.cells()) {
    if (jobs.rows() == max_jobs) break;
    std::vector<std::string> row = {
        cell.tuned()
            ? "(tuned)"
            : std::string(absl::StripPrefix(cell.job_id(), absl::StrCat(plan.sweep_id(), "-")))};
    for (const v1::CellValue& value : cell.cell()) row.push_back(value.value());
    row.insert(row.end(), {SiCount(static_cast<double>(cell.parameters())),
                           SiCount(static_cast<double>(cell.tokens())),
                           absl::StrFormat("%.3g", cell.flops()), Bytes(cell.memory_bytes())});
    if (host) row.push_back(Bytes(cell.host_memory_bytes()));
    row.insert(row.end(), {cell.gpus() == 0 ? "cpu" : absl::StrCat(cell.gpus()),
                           absl::StrCat(cell.batch_size()), absl::StrCat(cell.accumulation_steps()),
                           cell.tuned() ? "tuned" : absl::StrFormat("%g", cell.learning_rate()),
                           cell.has_gpu_hours() ? Hours(cell.gpu_hours()) : "unknown"});
    jobs.AddRow(std::move(row));
  }
  absl::StrAppend(&out, jobs.Render());
  if (static_cast<size_t>(plan.cells_size()) > jobs.rows()) {
    absl::StrAppend(&out, "... ", plan.cells_size() - jobs.rows(),
                    " more jobs: `ablate plan FILE` lists every one\n");
  }

  if (!plan.search().empty()) absl::StrAppend(&out, TrialsText(plan, max_jobs));

  absl::StrAppend(&out, "total", plan.search().empty() ? "" : " (trials included)", ": ",
                  SiCount(static_cast<double>(plan.tokens())), " tokens, ",
                  absl::StrFormat("%.3g", plan.flops()), " FLOPs, ");
  if (plan.cells_without_estimate() == static_cast<uint32_t>(plan.cells_size())) {
    absl::StrAppend(&out, "GPU-hours unknown (no throughput in the sweep file)\n");
  } else if (plan.cells_without_estimate() > 0) {
    absl::StrAppend(&out, "at least ", Hours(plan.gpu_hours()), " GPU-hours; ",
                    plan.cells_without_estimate(),
                    " jobs unknown (no throughput entry matches them)\n");
  } else {
    absl::StrAppend(&out, Hours(plan.gpu_hours()), " GPU-hours\n");
  }
  return out;
}

}  // namespace ablate::cli
