// The arguments each attention kind takes through TrainConfig.attention_args, as
// common/optimizer_args.h does for optimizers: one table of name, type, default, range and the
// source of the default, read by the sweep's checks (at submit, through ValidateTrainConfig),
// by the trainer (NsaShapeOf) and by the model math. No LibTorch; immutable and safe to call
// from any thread.
//
// nsa (Yuan et al. 2025; fla-core's NSA):
//   block_size           int   64   compression block, its stride and the selection block
//   selected_blocks      int   16   blocks per query, the 3 forced ones included (so >= 3)
//   window               int   512  sliding window in tokens; 0 turns the branch off
//   learned_compression  bool  false  the paper's MLP compression (kernel 32, stride 16):
//                                     not built, refused when true
// dense takes none; arguments given to a kind that declares none are ignored, as a grid over
// attention with fixed NSA arguments needs.
#ifndef ABLATE_COMMON_ATTENTION_ARGS_H_
#define ABLATE_COMMON_ATTENTION_ARGS_H_

#include <vector>

#include "ablate/v1/config.pb.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/model_math.h"
#include "common/typed_args.h"

namespace ablate {

// The arguments `attention` declares, or null for a kind that declares none.
const std::vector<TypedArg>* AttentionArgs(absl::string_view attention);

// Checks config.attention_args against config.attention's arguments: InvalidArgument naming
// the field, as CheckTypedArgs does ("attention_args.blok_size: nsa has no argument blok_size
// (did you mean block_size?)"), and for learned_compression set to true ("not built").
absl::Status ValidateAttentionArgs(const v1::TrainConfig& config);

// NSA's shape from a validated config: the arguments set, else their defaults.
NsaShape NsaShapeOf(const v1::TrainConfig& config);

}  // namespace ablate

#endif  // ABLATE_COMMON_ATTENTION_ARGS_H_
