#include "sweep/grid.h"

#include <algorithm>
#include <atomic>
#include <numeric>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/attention_args.h"
#include "common/ids.h"
#include "common/train_config.h"
#include "sweep/cell_problems.h"
#include "sweep/derived.h"
#include "sweep/job_ids.h"
#include "sweep/long_context_fix.h"
#include "sweep/memory_planner.h"
#include "sweep/tuning.h"
#include "sweep/validate.h"

namespace ablate::sweep {
namespace {

// All 64 bits of the spec's hash: two specs share a sweep id with probability about n^2 / 2^65
// among n specs (32 bits collided after some 35,000 specs differing only in their seed).
constexpr size_t kSweepHashDigits = 16;

using Cell = std::vector<int>;  // value index per grid dimension
using Settings = std::vector<std::pair<std::string, std::string>>;

// A condition resolved once against the grid, so that testing a cell is a lookup: which value
// indices of one dimension satisfy it.
struct Match {
  int dimension;
  std::vector<bool> accepts;
};
using Conjunction = std::vector<Match>;

bool Holds(const Conjunction& all, const Cell& cell) {
  return std::all_of(all.begin(), all.end(),
                     [&](const Match& m) { return m.accepts[cell[m.dimension]]; });
}

// Everything about the spec that does not depend on the cell, worked out once.
struct Plan {
  std::vector<std::string> names;                                // grid dimensions in order
  std::vector<std::vector<std::string>> values;                  // as written, per dimension
  std::vector<std::pair<Conjunction, Conjunction>> constraints;  // when, require
  std::vector<std::string> reasons;
  std::vector<std::pair<Conjunction, Settings>> overrides;
  v1::TrainConfig base;                        // defaults, then `fixed`
  std::vector<std::vector<std::string>> keys;  // ValueKey of each value, per dimension
  internal::Derived derived;
  uint32_t repeats = 0;
};

absl::StatusOr<Conjunction> ResolveConditions(
    const google::protobuf::RepeatedPtrField<v1::Condition>& all, const Plan& plan,
    const std::vector<std::vector<std::string>>& keys) {
  Conjunction out;
  for (const v1::Condition& condition : all) {
    const auto it = std::find(plan.names.begin(), plan.names.end(), condition.dimension());
    Match match{static_cast<int>(it - plan.names.begin()), {}};
    absl::flat_hash_set<std::string> wanted;
    for (const std::string& value : condition.values()) {
      absl::StatusOr<std::string> key = internal::ValueKey(condition.dimension(), value);
      if (!key.ok()) return key.status();
      wanted.insert(*std::move(key));
    }
    for (const std::string& key : keys[match.dimension]) {
      match.accepts.push_back(wanted.contains(key));
    }
    out.push_back(std::move(match));
  }
  return out;
}

absl::StatusOr<Plan> MakePlan(const v1::SweepSpec& spec) {
  Plan plan;
  std::vector<std::vector<std::string>>& keys = plan.keys;
  for (const v1::Dimension& dimension : spec.grid()) {
    plan.names.push_back(dimension.name());
    plan.values.emplace_back(dimension.values().begin(), dimension.values().end());
    keys.emplace_back();
    for (const std::string& value : dimension.values()) {
      absl::StatusOr<std::string> key = internal::ValueKey(dimension.name(), value);
      if (!key.ok()) return key.status();
      keys.back().push_back(*std::move(key));
    }
  }
  for (int i = 0; i < spec.constraints_size(); ++i) {
    const v1::Constraint& constraint = spec.constraints(i);
    absl::StatusOr<Conjunction> when = ResolveConditions(constraint.when(), plan, keys);
    if (!when.ok()) return when.status();
    absl::StatusOr<Conjunction> require = ResolveConditions(constraint.require(), plan, keys);
    if (!require.ok()) return require.status();
    plan.constraints.emplace_back(*std::move(when), *std::move(require));
    plan.reasons.push_back(constraint.reason());  // empty when the file gives none
  }
  for (const v1::Override& override : spec.overrides()) {
    absl::StatusOr<Conjunction> when = ResolveConditions(override.when(), plan, keys);
    if (!when.ok()) return when.status();
    plan.overrides.emplace_back(*std::move(when),
                                Settings(override.set().begin(), override.set().end()));
  }
  // `fixed` may not name a grid dimension (validated), so applying it before the cell's values
  // gives the same config as after them, and does it once instead of once per cell.
  plan.base = DefaultTrainConfig();
  for (const auto& [name, value] : spec.fixed()) {
    if (absl::Status set = SetTrainField(plan.base, name, value); !set.ok()) return set;
  }
  plan.derived = internal::DerivedOf(spec);
  plan.repeats = spec.repeats();
  return plan;
}

using CellValues = google::protobuf::RepeatedPtrField<v1::CellValue>;

CellValues ValuesOf(const Plan& plan, const Cell& cell) {
  CellValues out;
  for (size_t d = 0; d < cell.size(); ++d) {
    v1::CellValue& value = *out.Add();
    value.set_dimension(plan.names[d]);
    value.set_value(plan.values[d][cell[d]]);
  }
  return out;
}

// "model=tiny context_length=1M", as errors and dropped cells name a cell.
std::string Label(const CellValues& values) {
  std::string label;
  for (const v1::CellValue& value : values) {
    absl::StrAppend(&label, label.empty() ? "" : " ", value.dimension(), "=", value.value());
  }
  return label;
}

// The config of `cell` for repeat `seed` (0: no repeats, the configured seeds).
absl::StatusOr<v1::TrainConfig> ResolveConfig(const Plan& plan, const Cell& cell, uint32_t seed) {
  v1::TrainConfig config = plan.base;
  for (size_t d = 0; d < cell.size(); ++d) {
    if (absl::Status set = SetTrainField(config, plan.names[d], plan.values[d][cell[d]]);
        !set.ok()) {
      return set;
    }
  }
  // Its problems come with validation's, so that one round of edits fixes both.
  const absl::Status derived = internal::ApplyDerived(plan.derived, config);
  if (seed > 0) {
    config.set_seed(seed);
    config.set_data_seed(seed);
  }
  for (const auto& [when, settings] : plan.overrides) {
    if (!Holds(when, cell)) continue;
    for (const auto& [name, value] : settings) {
      if (absl::Status set = SetTrainField(config, name, value); !set.ok()) return set;
    }
  }
  const absl::Status valid = ValidateTrainConfig(config);
  if (!derived.ok() || !valid.ok()) {
    std::vector<absl::string_view> lines;
    for (const absl::Status* s : {&derived, &valid}) {
      if (!s->ok()) lines.push_back(s->message());
    }
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }
  if (absl::Status recorded = RecordHfModel(config); !recorded.ok()) return recorded;
  return WithoutExplicitDefaults(std::move(config));
}

// Moves `cell` to the next cell of the cross product, the last dimension fastest; false after
// the last cell.
bool NextCell(const Plan& plan, Cell& cell) {
  for (size_t d = cell.size(); d-- > 0;) {
    if (++cell[d] < static_cast<int>(plan.values[d].size())) return true;
    cell[d] = 0;
  }
  return false;
}

// The first constraint `cell` breaks, if any.
std::optional<size_t> Violated(const Plan& plan, const Cell& cell) {
  for (size_t i = 0; i < plan.constraints.size(); ++i) {
    const auto& [when, require] = plan.constraints[i];
    if (Holds(when, cell) && !Holds(require, cell)) return i;
  }
  return std::nullopt;
}

// The cell a baseline or an explicit cell names: the value index per dimension whose parsed
// value matches (validation made sure one does).
Cell CellOf(const Plan& plan, const google::protobuf::Map<std::string, std::string>& choice) {
  Cell cell(plan.names.size(), 0);
  for (size_t d = 0; d < plan.names.size(); ++d) {
    const std::string key = *internal::ValueKey(plan.names[d], choice.at(plan.names[d]));
    const auto& keys = plan.keys[d];
    cell[d] = static_cast<int>(std::find(keys.begin(), keys.end(), key) - keys.begin());
  }
  return cell;
}

// Flat positions of `count` cells drawn without replacement from `allowed`, by a partial
// Fisher-Yates shuffle driven by mt19937_64, whose output the C++ standard fixes (unlike
// std::shuffle's or a distribution's), so a seed draws the same cells everywhere. The modulo's
// bias is below 2^-40 for any grid within kMaxCells.
std::vector<uint64_t> Draw(std::vector<uint64_t> allowed, uint32_t count, uint64_t seed) {
  std::mt19937_64 generator(seed);
  const size_t n = std::min<size_t>(count, allowed.size());
  for (size_t i = 0; i < n; ++i) {
    const size_t j = i + static_cast<size_t>(generator() % (allowed.size() - i));
    std::swap(allowed[i], allowed[j]);
  }
  allowed.resize(n);
  std::sort(allowed.begin(), allowed.end());
  return allowed;
}

// Calls `fn` with each cell the sweep's shape considers, in run order: the whole grid (first
// dimension slowest); the baseline, then per dimension in grid order each other value of it;
// the explicit cells as listed; or the grid's excluded cells and the drawn sample, in grid
// order. Stops at `fn`'s first error.
absl::Status ForEachCell(const v1::SweepSpec& spec, const Plan& plan,
                         absl::FunctionRef<absl::Status(const Cell&)> fn) {
  if (!spec.baseline().empty()) {
    const Cell baseline = CellOf(plan, spec.baseline());
    if (std::optional<size_t> rule = Violated(plan, baseline)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "baseline: ", Label(ValuesOf(plan, baseline)), " is excluded by constraints[", *rule, "]",
          plan.reasons[*rule].empty() ? "" : " (", plan.reasons[*rule],
          plan.reasons[*rule].empty() ? "" : ")"));
    }
    if (absl::Status status = fn(baseline); !status.ok()) return status;
    for (size_t d = 0; d < baseline.size(); ++d) {
      for (int v = 0; v < static_cast<int>(plan.values[d].size()); ++v) {
        if (v == baseline[d]) continue;
        Cell cell = baseline;
        cell[d] = v;
        if (absl::Status status = fn(cell); !status.ok()) return status;
      }
    }
    return absl::OkStatus();
  }
  for (const v1::CellChoice& choice : spec.cells()) {
    if (absl::Status status = fn(CellOf(plan, choice.values())); !status.ok()) return status;
  }
  if (!spec.cells().empty()) return absl::OkStatus();

  std::vector<uint64_t> chosen;
  if (spec.has_sample()) {
    std::vector<uint64_t> allowed;
    uint64_t position = 0;
    Cell cell(plan.names.size(), 0);
    do {
      if (!Violated(plan, cell)) allowed.push_back(position);
      ++position;
    } while (NextCell(plan, cell));
    chosen = Draw(std::move(allowed), spec.sample().count(), spec.sample().seed());
  }
  uint64_t position = 0;
  auto next_chosen = chosen.begin();
  Cell cell(plan.names.size(), 0);
  do {
    bool wanted = true;
    if (spec.has_sample()) {
      wanted = next_chosen != chosen.end() && *next_chosen == position;
      if (wanted) ++next_chosen;
      wanted = wanted || Violated(plan, cell).has_value();
    }
    ++position;
    if (!wanted) continue;
    if (absl::Status status = fn(cell); !status.ok()) return status;
  } while (NextCell(plan, cell));
  return absl::OkStatus();
}

// What one cell of the sweep comes to: left out by a constraint (`rule`), the problems that keep
// it from resolving, a line each (without the cell's label, so that cells with the same problem
// compare equal), or its jobs without ids and indices (drafts).
struct ResolvedCell {
  CellValues values;
  std::optional<size_t> rule;
  std::optional<std::string> problem;
  std::vector<v1::JobSpec> drafts;
};

// Reads only what it is given and writes only `planner`'s cache, so cells resolve on several
// threads at once, each with its own planner.
ResolvedCell ResolveCell(const v1::SweepSpec& spec, const Plan& plan,
                         const std::vector<v1::SearchPoint>& points, const std::string& sweep_id,
                         const Cell& cell, internal::MemoryPlanner& planner) {
  ResolvedCell out;
  out.values = ValuesOf(plan, cell);
  out.rule = Violated(plan, cell);
  if (out.rule.has_value()) return out;
  // A tuned cell's jobs are its first rung's trials (with its first seed); the rest of its
  // jobs follow from their results (sweep/tuning.h).
  const uint32_t repeats = std::max<uint32_t>(1, plan.repeats);
  for (uint32_t repeat = 1; repeat <= (spec.has_tuning() ? 1 : repeats); ++repeat) {
    const uint32_t seed = plan.repeats > 0 ? repeat : 0;
    absl::StatusOr<v1::TrainConfig> config = ResolveConfig(plan, cell, seed);
    absl::StatusOr<std::vector<v1::JobSpec>> trials;
    if (config.ok() && spec.has_tuning()) {
      trials = TrialsOfCell(spec.tuning(), points, *config, out.values);
      if (!trials.ok()) config = trials.status();
    }
    if (!config.ok()) {
      out.problem = std::string(config.status().message());
      return out;
    }
    if (spec.has_tuning()) {
      out.drafts = *std::move(trials);
      break;
    }
    v1::JobSpec& job = out.drafts.emplace_back();
    // The last repeat takes the values; nothing reads them after it.
    if (repeat < repeats) {
      *job.mutable_cell() = out.values;
    } else {
      *job.mutable_cell() = std::move(out.values);
    }
    if (seed > 0) {
      v1::CellValue& value = *job.add_cell();
      value.set_dimension(std::string(kRepeatDimension));
      value.set_value(absl::StrCat(seed));
    }
    *job.mutable_config() = *std::move(config);
    job.set_config_hash(MessageHash(job.config()));
  }
  for (v1::JobSpec& job : out.drafts) {
    job.set_sweep_id(sweep_id);
    job.set_priority(spec.priority());
    const internal::MemoryPlanner::Planned planned = planner.Plan(job.config());
    job.set_memory_bytes(planned.peak_bytes);
    // Only a GPU trainer pins its offloaded layers' inputs; a CPU one keeps them in its own
    // pageable memory (trainer_lib/model/recompute.h).
    job.set_host_memory_bytes(job.config().gpus() > 0 ? planned.host_bytes : 0);
  }
  return out;
}

// The first dimension in which `later`'s cell differs from `earlier`'s, where every one they
// differ in is an attention_args key and `later`'s attention takes no arguments: their equal
// configs are then one run, by design (dense ignores them). Empty otherwise.
std::string IgnoredArgumentDimension(const v1::JobSpec& earlier, const v1::JobSpec& later) {
  if (AttentionArgs(later.config().attention()) != nullptr ||
      earlier.cell_size() != later.cell_size()) {
    return "";
  }
  std::string first;
  for (int d = 0; d < later.cell_size(); ++d) {
    const v1::CellValue& value = later.cell(d);
    if (value.value() == earlier.cell(d).value()) continue;
    if (!absl::StartsWith(value.dimension(), "attention_args.")) return "";
    if (first.empty()) first = value.dimension();
  }
  return first;
}

// Below this many cells a sweep resolves on the calling thread alone: a second thread costs
// more to start than it saves.
constexpr size_t kCellsPerThread = 4096;

// Calls fn(0, planner), ..., fn(n - 1, planner), each once, in no particular order: on the
// calling thread and, for n of at least 2 * kCellsPerThread, one more, which is joined before
// returning; each thread passes its own planner.
// Resolving a cell's config (copy, set, validate, hash) is most of a large sweep's expansion,
// and cells are independent of each other: a 100,000-cell sweep then expands in about half
// the time on two cores.
void ForEachIndex(size_t n, absl::FunctionRef<void(size_t, internal::MemoryPlanner&)> fn) {
  constexpr size_t kChunk = 256;  // indices taken at a time: the threads share the work evenly
  std::atomic<size_t> next{0};
  auto run = [&] {
    internal::MemoryPlanner planner;
    for (size_t begin; (begin = next.fetch_add(kChunk)) < n;) {
      for (size_t i = begin; i < std::min(n, begin + kChunk); ++i) fn(i, planner);
    }
  };
  std::optional<std::thread> helper;
  if (n >= 2 * kCellsPerThread) helper.emplace(run);
  run();
  if (helper.has_value()) helper->join();
}

}  // namespace

std::string SweepId(const v1::SweepSpec& spec) {
  return absl::StrCat(Slug(spec.name()), "-", MessageHash(spec).substr(0, kSweepHashDigits));
}

absl::StatusOr<Expansion> ExpandSweep(const v1::SweepSpec& spec) {
  if (absl::Status valid = ValidateSweepSpec(spec); !valid.ok()) return valid;
  absl::StatusOr<Plan> plan = MakePlan(spec);
  if (!plan.ok()) return plan.status();

  std::vector<Cell> cells;
  absl::Status listed = ForEachCell(spec, *plan, [&](const Cell& cell) {
    cells.push_back(cell);
    return absl::OkStatus();
  });
  if (!listed.ok()) return listed;
  const std::vector<v1::SearchPoint> points =
      spec.has_tuning() ? SearchPoints(spec.tuning()) : std::vector<v1::SearchPoint>();
  Expansion out;
  out.sweep_id = SweepId(spec);
  std::vector<ResolvedCell> resolved(cells.size());
  ForEachIndex(cells.size(), [&](size_t i, internal::MemoryPlanner& planner) {
    resolved[i] = ResolveCell(spec, *plan, points, out.sweep_id, cells[i], planner);
  });

  size_t drafts = 0;
  for (const ResolvedCell& cell : resolved) drafts += cell.drafts.size();
  out.jobs.reserve(drafts);
  absl::flat_hash_map<uint64_t, size_t> job_by_hash;  // config hash -> job index
  job_by_hash.reserve(drafts);
  if (absl::Status bad = internal::CellProblems(
          resolved.size(),
          [&](size_t i) { return resolved[i].problem ? &*resolved[i].problem : nullptr; },
          [&](size_t i) { return Label(resolved[i].values); });
      !bad.ok()) {
    std::vector<const CellValues*> failed;
    for (const ResolvedCell& cell : resolved) {
      if (cell.problem.has_value()) failed.push_back(&cell.values);
    }
    return internal::WithLongContextFix(spec, bad, failed);
  }
  for (ResolvedCell& cell : resolved) {
    if (cell.rule.has_value()) {
      v1::ExcludedCell& excluded = out.dropped.emplace_back();
      *excluded.mutable_cell() = std::move(cell.values);
      excluded.set_constraint(static_cast<int32_t>(*cell.rule));
      excluded.set_reason(plan->reasons[*cell.rule]);
      continue;
    }
    for (v1::JobSpec& draft : cell.drafts) {
      // The same 16 hex digits as a number: a smaller key to look up.
      const auto [twin, inserted] =
          job_by_hash.emplace(internal::HashNumber(draft.config_hash()), out.jobs.size());
      if (!inserted) {
        const v1::JobSpec& earlier = out.jobs[twin->second];
        std::string dimension = IgnoredArgumentDimension(earlier, draft);
        if (dimension.empty()) {
          return absl::InvalidArgumentError(absl::StrCat("cells ", Label(earlier.cell()), " and ",
                                                         Label(draft.cell()),
                                                         " resolve to the same config"));
        }
        // Each of the cell's jobs (repeats, trials) is the earlier cell's: named once, by its
        // grid values (without a repeat's seed).
        if (&draft == &cell.drafts.front()) {
          const auto grid_label = [&](const v1::JobSpec& job) {
            CellValues values(job.cell().begin(), job.cell().begin() + spec.grid_size());
            return Label(values);
          };
          out.shared_cells.push_back({grid_label(draft), grid_label(earlier), std::move(dimension),
                                      draft.config().attention()});
        }
        continue;
      }
      v1::JobSpec& job = out.jobs.emplace_back(std::move(draft));
      job.set_index(static_cast<uint32_t>(out.jobs.size() - 1));
    }
  }
  if (out.jobs.empty()) {
    return absl::InvalidArgumentError("constraints leave no cell of the grid to run");
  }
  out.kept_cells = cells.size() - out.dropped.size();
  for (size_t i = 0; i < plan->overrides.size(); ++i) {
    const Conjunction& when = plan->overrides[i].first;
    bool used = false;
    for (size_t c = 0; c < cells.size() && !used; ++c) {
      used = !resolved[c].rule.has_value() && Holds(when, cells[c]);
    }
    if (!used) out.idle_overrides.push_back(static_cast<int>(i));
  }
  internal::AssignJobIds(out.sweep_id, internal::CheckpointRootOf(spec),
                         {job_by_hash.begin(), job_by_hash.end()}, out.jobs);
  return out;
}

std::string ExcludedLine(const v1::ExcludedCell& excluded) {
  return absl::StrCat(Label(excluded.cell()), ": ",
                      excluded.reason().empty()
                          ? absl::StrCat("left out by constraints[", excluded.constraint(), "]")
                          : excluded.reason());
}

std::string CellLabel(const v1::JobSpec& job) { return Label(job.cell()); }

}  // namespace ablate::sweep
