// The arguments each attention kind takes through TrainConfig.attention_args, as
// common/optimizer_args.h does for optimizers: one table of name, type, default, range and the
// source of the default, read by the sweep's checks (at submit, through ValidateTrainConfig),
// by the trainer (NsaShapeOf) and by the model math. No LibTorch; immutable and safe to call
// from any thread.
//
// nsa (Yuan et al. 2025; fla-core's NSA):
//   block_size           int   64     the selection block l' (and, pooling, the compression
//                                     window and stride)
//   selected_blocks      int   16     blocks per query, fla's 3 forced ones included (so >= 3
//                                     under fla's rule, >= 1 under paper_selection)
//   window               int   512    sliding window in tokens; 0 turns the branch off
//   learned_compression  bool  false  the paper's learned compression instead of fla's mean
//                                     pooling (trainer_lib/attention/nsa_blocks.h)
//   compression_kernel   int   32     its window l (read only under learned_compression,
//                                     and no part of a job's config without it)
//   compression_stride   int   16     its stride d (the same)
//   paper_selection      bool  false  the paper's eq. 11 (top n, none forced) instead of fla's
//                                     rule (the first and two local blocks forced in)
// Under learned_compression the paper's eq. 9 needs d | l, d | l' and l <= l'.
// dense takes none; arguments given to a kind that declares none are ignored, as a grid over
// attention with fixed NSA arguments needs, and are no part of its job's config
// (WithoutExplicitDefaults, train_config.h).
#ifndef ABLATE_COMMON_ATTENTION_ARGS_H_
#define ABLATE_COMMON_ATTENTION_ARGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "ablate/v1/config.pb.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/model_math.h"
#include "common/typed_args.h"

namespace ablate {

// The longest context dense attention takes (128K tokens); a longer one needs attention nsa,
// which takes up to kMaxContext (train_config.h).
inline constexpr uint64_t kLongestDenseContext = 131072;

// The arguments `attention` declares, or null for a kind that declares none.
const std::vector<TypedArg>* AttentionArgs(absl::string_view attention);

// Checks config.attention_args against config.attention's arguments: InvalidArgument naming
// the field, as CheckTypedArgs does, a line for each bad key ("attention_args.blok_size: nsa
// has no argument blok_size (did you mean block_size?)"); once every key is good, the first of
// selected_blocks below fla's forced blocks and, under learned_compression, a kernel, stride
// and block that eq. 9 cannot map ("attention_args.compression_stride: 24 does not divide
// compression_kernel 32 ...").
absl::Status ValidateAttentionArgs(const v1::TrainConfig& config);

// NSA's shape from a validated config: the arguments set, else their defaults.
NsaShape NsaShapeOf(const v1::TrainConfig& config);

// Why an NSA config reads every key of its context, which no check refuses but which leaves
// no sparsity to compare: a window, or selected_blocks * block_size tokens, as long as the
// context, named by the argument that does ("attention_args.window: 512 tokens hold every key
// of a 256-token context: ..."); "" where it does not, or where attention is not nsa.
std::string NsaReadsEveryKey(const v1::TrainConfig& config);

}  // namespace ablate

#endif  // ABLATE_COMMON_ATTENTION_ARGS_H_
