// The arguments each optimizer takes through TrainConfig.optimizer_args: name, type, default,
// valid range and where the default comes from. The one table that the sweep's checks, the
// trainer's optimizers and the documentation read, so a name or a default is written once.
// No LibTorch. Everything here is immutable and safe to call from any thread.
//
// optimizer_args is a map<string, double> (common/typed_args.h says how bools and ints are
// stored); their types are checked here, where the optimizer is known.
#ifndef ABLATE_COMMON_OPTIMIZER_ARGS_H_
#define ABLATE_COMMON_OPTIMIZER_ARGS_H_

#include <string>
#include <vector>

#include "ablate/v1/config.pb.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/typed_args.h"

namespace ablate {

// One optimizer argument (common/typed_args.h).
using OptimizerArg = TypedArg;

// The arguments `optimizer` declares, or null for a name that declares none.
const std::vector<OptimizerArg>* OptimizerArgs(absl::string_view optimizer);

// Checks config.optimizer_args against the arguments of config.optimizer: InvalidArgument
// naming the field, the optimizer and what is wrong, a line for each bad key, for a key the
// optimizer does not have ("optimizer_args.beta_2: adamw has no argument beta_2 (did you mean
// beta2?)"), a value out of range ("optimizer_args.beta2: 1 is outside [0, 1) for adamw"), a
// fractional int, a bool other than true/false, and NaN or infinity. OK for an optimizer that
// declares none.
absl::Status ValidateOptimizerArgs(const v1::TrainConfig& config);

// The value of argument `name` of config.optimizer: the one set, else its declared default.
// `name` must be declared for the optimizer (a programming error otherwise: it aborts).
double OptimizerArgOr(const v1::TrainConfig& config, absl::string_view name);

}  // namespace ablate

#endif  // ABLATE_COMMON_OPTIMIZER_ARGS_H_
