#include "sweep/grid.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <numeric>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/ids.h"
#include "common/train_config.h"
#include "sweep/validate.h"

namespace ablate::sweep {
namespace {

constexpr absl::string_view kDefaultCheckpointRoot = "runs/checkpoints";
// All 64 bits of the spec's hash: two specs share a sweep id with probability about n^2 / 2^65
// among n specs (32 bits collided after some 35,000 specs differing only in their seed).
constexpr size_t kSweepHashDigits = 16;
constexpr size_t kJobHashDigits = 6;

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
  v1::TrainConfig base;  // defaults, then `fixed`
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
  std::vector<std::vector<std::string>> keys;
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
    plan.reasons.push_back(constraint.reason().empty()
                               ? absl::StrCat("left out by constraints[", i, "]")
                               : constraint.reason());
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

absl::StatusOr<v1::TrainConfig> ResolveConfig(const Plan& plan, const Cell& cell) {
  v1::TrainConfig config = plan.base;
  for (size_t d = 0; d < cell.size(); ++d) {
    if (absl::Status set = SetTrainField(config, plan.names[d], plan.values[d][cell[d]]);
        !set.ok()) {
      return set;
    }
  }
  for (const auto& [when, settings] : plan.overrides) {
    if (!Holds(when, cell)) continue;
    for (const auto& [name, value] : settings) {
      if (absl::Status set = SetTrainField(config, name, value); !set.ok()) return set;
    }
  }
  if (absl::Status valid = ValidateTrainConfig(config); !valid.ok()) return valid;
  return config;
}

// Hex digits two 64-bit hashes share at the front.
size_t CommonDigits(uint64_t a, uint64_t b) {
  return a == b ? 16 : static_cast<size_t>(std::countl_zero(a ^ b)) / 4;
}

// A job id holds the first six digits of its config hash, or more where two jobs of the sweep
// share those (as git lengthens short commit ids): a sweep of 100,000 cells has hundreds of
// such pairs. The length depends only on the sweep's set of hashes, so ids stay deterministic.
void AssignJobIds(const std::string& sweep_id, const std::string& checkpoint_root,
                  const absl::flat_hash_map<uint64_t, size_t>& job_by_hash,
                  std::vector<v1::JobSpec>& jobs) {
  std::vector<std::pair<uint64_t, size_t>> by_hash(job_by_hash.begin(), job_by_hash.end());
  std::sort(by_hash.begin(), by_hash.end());
  for (size_t i = 0; i < by_hash.size(); ++i) {
    const uint64_t hash = by_hash[i].first;
    size_t digits = kJobHashDigits;
    if (i > 0) digits = std::max(digits, CommonDigits(hash, by_hash[i - 1].first) + 1);
    if (i + 1 < by_hash.size()) {
      digits = std::max(digits, CommonDigits(hash, by_hash[i + 1].first) + 1);
    }
    v1::JobSpec& job = jobs[by_hash[i].second];
    job.set_job_id(absl::StrCat(sweep_id, "-", job.config_hash().substr(0, digits)));
    job.set_checkpoint_dir(absl::StrCat(checkpoint_root, "/", sweep_id, "/", job.job_id()));
  }
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

}  // namespace

std::string SweepId(const v1::SweepSpec& spec) {
  return absl::StrCat(Slug(spec.name()), "-", MessageHash(spec).substr(0, kSweepHashDigits));
}

absl::StatusOr<Expansion> ExpandSweep(const v1::SweepSpec& spec) {
  if (absl::Status valid = ValidateSweepSpec(spec); !valid.ok()) return valid;
  absl::StatusOr<Plan> plan = MakePlan(spec);
  if (!plan.ok()) return plan.status();

  Expansion out;
  out.sweep_id = SweepId(spec);
  const absl::string_view root =
      spec.checkpoint_root().empty() ? kDefaultCheckpointRoot : spec.checkpoint_root();
  const std::string checkpoint_root(absl::StripSuffix(root, "/"));

  uint64_t cells = 1;
  for (const auto& values : plan->values) cells *= values.size();
  out.jobs.reserve(cells);                            // at most internal::kMaxCells, as validated
  absl::flat_hash_map<uint64_t, size_t> job_by_hash;  // config hash -> job index
  job_by_hash.reserve(cells);
  Cell cell(plan->names.size(), 0);
  do {
    CellValues values = ValuesOf(*plan, cell);
    const auto violated =
        std::find_if(plan->constraints.begin(), plan->constraints.end(),
                     [&](const auto& c) { return Holds(c.first, cell) && !Holds(c.second, cell); });
    if (violated != plan->constraints.end()) {
      out.dropped.push_back(
          absl::StrCat(Label(values), ": ", plan->reasons[violated - plan->constraints.begin()]));
    } else {
      absl::StatusOr<v1::TrainConfig> config = ResolveConfig(*plan, cell);
      if (!config.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("cell ", Label(values), ": ", config.status().message()));
      }
      std::string hash = MessageHash(*config);
      uint64_t number = 0;  // the same 16 hex digits as a number: a smaller key to look up
      std::from_chars(hash.data(), hash.data() + hash.size(), number, 16);
      const auto [twin, inserted] = job_by_hash.emplace(number, out.jobs.size());
      if (!inserted) {
        return absl::InvalidArgumentError(
            absl::StrCat("cells ", Label(out.jobs[twin->second].cell()), " and ", Label(values),
                         " resolve to the same config; an override hides a grid dimension"));
      }
      v1::JobSpec& job = out.jobs.emplace_back();
      job.set_sweep_id(out.sweep_id);
      job.set_index(static_cast<uint32_t>(out.jobs.size() - 1));
      *job.mutable_cell() = std::move(values);
      *job.mutable_config() = *std::move(config);
      job.set_config_hash(std::move(hash));
    }
  } while (NextCell(*plan, cell));
  if (out.jobs.empty()) {
    return absl::InvalidArgumentError("constraints leave no cell of the grid to run");
  }
  AssignJobIds(out.sweep_id, checkpoint_root, job_by_hash, out.jobs);
  return out;
}

}  // namespace ablate::sweep
