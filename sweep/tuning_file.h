// Reading a sweep file's `tuning:` section (sweep/tuning.h says what it means) into v1::Tuning,
// with sweep_file.cc's reader: shape problems (an unknown key, a list where a map belongs) are
// recorded with their file position; the rules on content (every range, a missing min_steps)
// are FindSpecIssues' (sweep/tuning_check.h), checked afterwards on the whole spec and placed
// where the reader remembered each key and value. Internal to sweep/.
#ifndef ABLATE_SWEEP_TUNING_FILE_H_
#define ABLATE_SWEEP_TUNING_FILE_H_

#include <string>

#include "ablate/v1/sweep.pb.h"
#include "absl/status/status.h"
#include "sweep/yaml_reader.h"
#include "yaml-cpp/yaml.h"

namespace ablate::sweep::internal {

// `node` is the section's value, `key` its name ("tuning"). Reads method, parameters, samples,
// seed, min_steps, reduction_factor and metric; each parameter is [values], {values: [...]},
// {log_grid: [low, high], points: N} or {log_uniform: [low, high]}, and a map may add
// `relative: true` (TunedParameter.relative). An empty list of values is a problem here (the
// proto cannot tell it from a range); a negative count reads as 0, for the rules to refuse.
// The first problem recorded in `reader`, or OK.
absl::Status ReadTuning(YamlReader& reader, const YAML::Node& node, const std::string& key,
                        v1::Tuning& tuning);

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_TUNING_FILE_H_
