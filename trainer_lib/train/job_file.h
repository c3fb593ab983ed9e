// The job an ablate-train run is given: a JobSpec in protobuf's JSON mapping, or a bare
// TrainConfig, which then is the whole job. Settings the file leaves out take
// DefaultTrainConfig()'s values; one written out counts as given even when it is 0 or ""
// ("weight_decay": 0 turns weight decay off). A JobSpec with a config_hash holds a config the
// coordinator resolved: it is taken as written, since protobuf's JSON printer leaves zero
// values out and a default must not replace them. Unknown fields are errors, not ignored, so
// a typo cannot silently fall back to a default. Stateless; safe from any thread.
#ifndef ABLATE_TRAINER_LIB_TRAIN_JOB_FILE_H_
#define ABLATE_TRAINER_LIB_TRAIN_JOB_FILE_H_

#include <string>

#include "ablate/v1/job.pb.h"
#include "absl/status/statusor.h"

namespace ablate::train {

// The job of `json`, its config resolved and checked by ValidateTrainConfig. InvalidArgument
// names the problem: JSON that is neither message, or the setting that fails validation.
absl::StatusOr<v1::JobSpec> ParseJobJson(const std::string& json);

// ParseJobJson of a file's text; NotFound when it cannot be read. Messages start with `path`.
absl::StatusOr<v1::JobSpec> ReadJobFile(const std::string& path);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_JOB_FILE_H_
