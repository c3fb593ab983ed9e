#include "sweep/expansion_notes.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/attention_args.h"
#include "common/train_config.h"
#include "common/typed_args.h"
#include "sweep/cell_problems.h"
#include "sweep/validate.h"

namespace ablate::sweep::internal {
namespace {

// Cells carry their grid values as written, so values compare as text here. One pass over the
// kept jobs and one over the dropped cells, whatever the grid's size. Not where baseline, cells
// or sample pick the cells: they pick few, and the plan's excluded list names each one that a
// constraint dropped (in one-factor's example, the only cell of a context its baseline's
// attention is refused at).
void AddDroppedValues(const v1::SweepSpec& spec, const Expansion& expansion,
                      std::vector<ExpansionNote>& notes) {
  if (expansion.dropped.empty() || !spec.baseline().empty() || spec.cells_size() > 0 ||
      spec.has_sample()) {
    return;
  }
  using Key = std::pair<std::string, std::string>;  // dimension, value
  absl::flat_hash_set<Key> kept;
  for (const v1::JobSpec& job : expansion.jobs) {
    for (const v1::CellValue& v : job.cell()) kept.emplace(v.dimension(), v.value());
  }
  absl::flat_hash_map<Key, std::set<int>> dropped_by;  // the constraints that dropped its cells
  for (const v1::ExcludedCell& excluded : expansion.dropped) {
    for (const v1::CellValue& v : excluded.cell()) {
      dropped_by[Key(v.dimension(), v.value())].insert(excluded.constraint());
    }
  }
  for (const v1::Dimension& dimension : spec.grid()) {
    for (int i = 0; i < dimension.values_size(); ++i) {
      const Key key(dimension.name(), dimension.values(i));
      // A value in no cell at all was left out by `cells` or `sample`, as asked.
      const auto by = dropped_by.find(key);
      if (kept.contains(key) || by == dropped_by.end()) continue;
      std::vector<std::string> names;
      names.reserve(by->second.size());
      for (const int c : by->second) names.push_back(absl::StrCat("constraints[", c, "]"));
      notes.push_back(
          {absl::StrCat("grid.", dimension.name(), "[", i, "]"),
           absl::StrCat("grid.", dimension.name(), ": '", key.second,
                        "' is in no cell that the constraints keep (", absl::StrJoin(names, ", "),
                        by->second.size() == 1 ? " drops" : " drop",
                        " every cell with it), so it runs nowhere")});
    }
  }
}

// Settings the file gives that no job reads, at each place that gives them: arguments of an
// attention kind no cell has, the learned compression's without it, a wsd decay under no wsd
// schedule. Accepted (a file may keep them for cells it leaves out for now), but most often
// the file means a cell it does not have.
void AddUnreadSettings(const v1::SweepSpec& spec, const Expansion& expansion,
                       std::vector<ExpansionNote>& notes) {
  bool any_args = false, any_wsd = false;
  // Each argument read only under a switch (typed_args.h), mapped to that switch, and those
  // some cell reads.
  absl::flat_hash_map<std::string, std::string> switched;
  absl::flat_hash_set<std::string> read;
  for (const v1::JobSpec& job : expansion.jobs) {
    const v1::TrainConfig& c = job.config();
    if (const std::vector<TypedArg>* declared = AttentionArgs(c.attention())) {
      any_args = true;
      for (const TypedArg& arg : *declared) {
        if (arg.read_only_under.empty()) continue;
        switched.emplace(arg.name, arg.read_only_under);
        if (TypedArgOr(c.attention(), declared, c.attention_args(), arg.read_only_under) != 0) {
          read.insert(arg.name);
        }
      }
    }
    any_wsd |= c.lr_schedule() == "wsd";
  }
  const auto why_unread = [&](absl::string_view setting) -> std::string {
    if (absl::ConsumePrefix(&setting, "attention_args.")) {
      if (!any_args) return "no cell's attention takes arguments (dense takes none)";
      const auto under = switched.find(setting);
      if (under != switched.end() && !read.contains(setting)) {
        return absl::StrCat("read only under attention_args.", under->second,
                            ", which no cell sets");
      }
      return "";
    }
    if (setting == "decay_fraction" && !any_wsd) {
      return "read only by lr_schedule wsd, which no cell uses";
    }
    return "";
  };
  // Sorted: a protobuf map's order is not the file's.
  const auto note_each = [&](const std::string& prefix,
                             const google::protobuf::Map<std::string, std::string>& settings) {
    std::vector<std::string> names;
    for (const auto& [name, value] : settings) names.push_back(name);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      const std::string why = why_unread(name);
      const std::string at = prefix + name;
      if (!why.empty())
        notes.push_back({at, absl::StrCat(at, ": ", why, ", so it changes nothing")});
    }
  };
  note_each("fixed.", spec.fixed());
  for (int i = 0; i < spec.overrides_size(); ++i) {
    note_each(absl::StrCat("overrides[", i, "].set."), spec.overrides(i).set());
  }
  for (const v1::Dimension& dimension : spec.grid()) {
    const std::string why = why_unread(dimension.name());
    const std::string at = "grid." + dimension.name();
    if (!why.empty()) notes.push_back({at, absl::StrCat(at, ": ", why, ", so it changes nothing")});
  }
}

// A `derived:` value for an optimizer no cell uses: legal (kept for a cell the file leaves out
// for now), but most often a misspelt optimizer or a grid that lost one. Noted at the value.
void AddDerivedForNoCell(const v1::SweepSpec& spec, const Expansion& expansion,
                         std::vector<ExpansionNote>& notes) {
  absl::flat_hash_set<std::string> used;
  for (const v1::JobSpec& job : expansion.jobs) used.insert(job.config().optimizer());
  for (const v1::OptimizerSetting& setting : spec.by_optimizer()) {
    std::vector<std::string> optimizers;  // sorted: a protobuf map's order is not the file's
    for (const auto& [optimizer, value] : setting.values()) optimizers.push_back(optimizer);
    std::sort(optimizers.begin(), optimizers.end());
    for (const std::string& optimizer : optimizers) {
      absl::StatusOr<std::string> key = ValueKey("optimizer", optimizer);
      if (!key.ok() || used.contains(*key)) continue;
      const std::string at = absl::StrCat("derived.", setting.field(), ".", optimizer);
      notes.push_back({at, absl::StrCat(at, ": no cell uses optimizer ", optimizer,
                                        ", so it changes nothing")});
    }
  }
}

// NSA cells with no sparsity left are legal (a tiny model's smoke test may want one), but a
// comparison of attention kinds built on them compares nothing. Grouped as the cells' problems
// are: a line per reason, naming a few more cells it holds for and counting the rest.
void AddCellsReadingEveryKey(const std::vector<v1::JobSpec>& jobs,
                             std::vector<ExpansionNote>& notes) {
  std::vector<std::string> why(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) why[i] = NsaReadsEveryKey(jobs[i].config());
  for (std::string& line : GroupedCellLines(
           jobs.size(), [&](size_t i) { return why[i].empty() ? nullptr : &why[i]; },
           [&](size_t i) { return CellLabel(jobs[i]); }, "notes")) {
    notes.push_back({"", std::move(line)});
  }
}

// A baseline runs one factor at a time: the grid's cells that change two or more dimensions
// from it do not run. Often meant, but a `baseline:` added to a whole grid for its differences
// changes which cells run without a word; noted at the baseline, with the first few such cells
// in grid order.
void AddCellsTheBaselineLeavesOut(const v1::SweepSpec& spec, std::vector<ExpansionNote>& notes) {
  if (spec.baseline().empty()) return;
  const int dims = spec.grid_size();
  std::vector<int> base(dims, 0), cell(dims, 0);  // value index per dimension
  uint64_t grid = 1, run = 1;
  for (int d = 0; d < dims; ++d) {
    const v1::Dimension& dimension = spec.grid(d);
    grid *= dimension.values_size();
    run += dimension.values_size() - 1;
    const auto chosen = spec.baseline().find(dimension.name());
    if (chosen == spec.baseline().end()) return;  // refused by validation before this
    const std::string key = ValueKey(dimension.name(), chosen->second).value_or("");
    for (int v = 0; v < dimension.values_size(); ++v) {
      if (ValueKey(dimension.name(), dimension.values(v)).value_or("") == key) base[d] = v;
    }
  }
  if (grid == run) return;
  constexpr size_t kNamed = 3;
  std::vector<std::string> named;
  // The first cells in grid order (first dimension slowest) that change two dimensions or more.
  for (bool more = true; more && named.size() < kNamed;) {
    int changed = 0;
    for (int d = 0; d < dims; ++d) changed += cell[d] != base[d] ? 1 : 0;
    if (changed >= 2) {
      v1::JobSpec labelled;
      for (int d = 0; d < dims; ++d) {
        v1::CellValue& value = *labelled.add_cell();
        value.set_dimension(spec.grid(d).name());
        value.set_value(spec.grid(d).values(cell[d]));
      }
      named.push_back(CellLabel(labelled));
    }
    more = false;
    for (int d = dims - 1; d >= 0 && !more; --d) {
      more = ++cell[d] < spec.grid(d).values_size();
      if (!more) cell[d] = 0;
    }
  }
  const uint64_t left_out = grid - run;
  notes.push_back(
      {"baseline",
       absl::StrCat("baseline: one factor at a time runs ", run, " of the grid's ", grid,
                    " cells (the baseline and each cell that changes one dimension from it); the ",
                    left_out, left_out == 1 ? " cell" : " cells",
                    " that change two or more do not run: ", absl::StrJoin(named, ", "),
                    left_out > named.size()
                        ? absl::StrCat(" and ", left_out - named.size(), " more")
                        : "")});
}

// A micro-batch above a rank's share of the batch runs as the whole share (MicroBatchPerRank):
// legal, but the file then asks for more than the run does, most often by a batch_size that an
// override or a grid value made smaller.
void AddMicroBatchAboveShare(const std::vector<v1::JobSpec>& jobs,
                             std::vector<ExpansionNote>& notes) {
  const auto above = [](const v1::JobSpec& job) {
    const v1::TrainConfig& c = job.config();
    return c.micro_batch_size() > c.batch_size() / WorldSize(c);
  };
  const auto first = std::find_if(jobs.begin(), jobs.end(), above);
  if (first == jobs.end()) return;
  const int64_t more = std::count_if(first + 1, jobs.end(), above);
  const v1::TrainConfig& c = first->config();
  const uint32_t share = c.batch_size() / WorldSize(c);
  notes.push_back(
      {"",
       absl::StrCat(
           "cell ", CellLabel(*first), ": micro_batch_size: ", c.micro_batch_size(),
           " is more than ",
           WorldSize(c) > 1 ? absl::StrCat("a rank's share of batch_size (", share, ")")
                            : absl::StrCat("batch_size (", share, ")"),
           more > 0 ? absl::StrCat(", as in ", more, more == 1 ? " more job" : " more jobs") : "",
           "; the whole share runs at once")});
}

// Cells that share an earlier cell's jobs (Expansion::shared_cells): meant when a grid crosses
// attention kinds with NSA arguments, but the file lists more cells than run. A few named, as
// cells' problems are, at the first attention_args value they differ in.
void AddSharedCells(const Expansion& expansion, std::vector<ExpansionNote>& notes) {
  std::vector<std::string> why;
  why.reserve(expansion.shared_cells.size());
  for (const Expansion::SharedCell& cell : expansion.shared_cells) {
    why.push_back(absl::StrCat(cell.dimension, ": ", cell.attention,
                               " takes no attention_args, so the cell runs as cell ", cell.runs_as,
                               " does, in its jobs"));
  }
  for (std::string& line : GroupedCellLines(
           why.size(), [&](size_t i) { return &why[i]; },
           [&](size_t i) { return expansion.shared_cells[i].label; }, "notes")) {
    notes.push_back({"", std::move(line)});
  }
}

}  // namespace

std::vector<ExpansionNote> ExpansionNotes(const v1::SweepSpec& spec, const Expansion& expansion) {
  std::vector<ExpansionNote> notes;
  AddCellsTheBaselineLeavesOut(spec, notes);
  for (const int i : expansion.idle_overrides) {
    const std::string at = absl::StrCat("overrides[", i, "].when");
    notes.push_back({at, absl::StrCat(at,
                                      ": no cell that the grid and its constraints keep meets it, "
                                      "so the override changes nothing")});
  }
  AddDroppedValues(spec, expansion, notes);
  AddUnreadSettings(spec, expansion, notes);
  AddDerivedForNoCell(spec, expansion, notes);
  if (spec.has_sample() && spec.sample().count() > expansion.kept_cells) {
    notes.push_back({"sample.count",
                     absl::StrCat("sample.count: ", spec.sample().count(), " is more than the ",
                                  expansion.kept_cells,
                                  " cells the grid and its constraints keep; all of them run")});
  }
  AddSharedCells(expansion, notes);
  AddCellsReadingEveryKey(expansion.jobs, notes);
  AddMicroBatchAboveShare(expansion.jobs, notes);
  return notes;
}

}  // namespace ablate::sweep::internal
