// Reading a sweep file (YAML) into a validated SweepSpec. This is the edge where a user's file
// becomes the proto the rest of Ablate trusts: every problem names the file, line and column and
// the offending key, in one line, and one reading reports all of a file's problems (a line
// each, in file order), so a file with four mistakes needs one round to fix, not four.
#ifndef ABLATE_SWEEP_SWEEP_FILE_H_
#define ABLATE_SWEEP_SWEEP_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "ablate/v1/sweep.pb.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sweep/grid.h"

namespace ablate::sweep {

// The largest sweep file read: the largest real sweep files are a few kilobytes.
inline constexpr uint64_t kMaxSweepFileBytes = 1 << 20;

// Parses and validates `yaml`. `source` names it in errors ("tiny-grid.yaml:7:14:
// grid.optimizer: unknown optimizer 'adamx' (known: adamw, adamw8bit, muon, soap, shampoo,
// soap4bit)"). A text of more than kMaxSweepFileBytes, or one passing yaml_limits.h's limits
// (aliases expanding past kMaxYamlNodes, nesting, a value's length), is refused before it is
// walked (InvalidArgument, naming the limit).
absl::StatusOr<v1::SweepSpec> ParseSweepYaml(absl::string_view yaml, absl::string_view source);

// Reads the file and parses it. NotFound when it cannot be read; a file of more than
// kMaxSweepFileBytes is refused before it is read.
absl::StatusOr<v1::SweepSpec> LoadSweepFile(const std::string& path);

// A sweep file read and expanded as the coordinator will expand it.
struct ExpandedSweepFile {
  v1::SweepSpec spec;
  Expansion expansion;
  // What is legal but likely a mistake (expansion_notes.h), a line each, placed in the file as
  // problems are: "s.yaml:12:5: overrides[1].when: no cell ... meets it, so the override
  // changes nothing".
  std::vector<std::string> notes;
};

// ParseSweepYaml, then ExpandSweep: how `ablate validate`, `plan` and `submit` check a file.
// A problem ExpandSweep finds in one cell ("cell optimizer=adamw: tuning.min_steps: 50 steps is
// not below the cell's 40") is placed at the node of the file that gave the value its key
// names: the key itself where the file has it (tuning.*, derived.*), else, for a TrainConfig
// field, the setting that applied to the cell: the last override whose conditions hold, a
// derived value, the cell's grid value, then fixed ("s.yaml:9:14: cell optimizer=adamw:
// tuning.min_steps: ..."). A problem the file holds no node for reads "s.yaml: cell ...".
absl::StatusOr<ExpandedSweepFile> ExpandSweepYaml(absl::string_view yaml, absl::string_view source);
// Reads the file (as LoadSweepFile does) and expands it as ExpandSweepYaml does.
absl::StatusOr<ExpandedSweepFile> ExpandSweepFile(const std::string& path);

}  // namespace ablate::sweep

#endif  // ABLATE_SWEEP_SWEEP_FILE_H_
