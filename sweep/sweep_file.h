// Reading a sweep file (YAML) into a validated SweepSpec. This is the edge where a user's file
// becomes the proto the rest of Ablate trusts: every error names the file, line and column and
// the offending key, in one line.
#ifndef ABLATE_SWEEP_SWEEP_FILE_H_
#define ABLATE_SWEEP_SWEEP_FILE_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "ablate/v1/sweep.pb.h"

namespace ablate::sweep {

// Parses and validates `yaml`. `source` names it in errors ("tiny-grid.yaml:7:14: grid.optimizer:
// unknown optimizer 'adamx' (known: adamw, adamw8bit, muon, soap, shampoo, soap4bit)").
absl::StatusOr<v1::SweepSpec> ParseSweepYaml(absl::string_view yaml, absl::string_view source);

// Reads the file and parses it. NotFound when it cannot be read.
absl::StatusOr<v1::SweepSpec> LoadSweepFile(const std::string& path);

}  // namespace ablate::sweep

#endif  // ABLATE_SWEEP_SWEEP_FILE_H_
