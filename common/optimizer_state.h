// Optimizer state by weight: which dimensions SOAP and Shampoo precondition, and how many bytes
// of state each optimizer of TrainConfig.optimizer holds for one weight. The one owner of these
// layouts: the trainer's optimizers (trainer_lib/optim/) allocate by the same rules and report
// them (StateBytesPerParameter), and the memory plan (common/model_math.h) sums them over a
// model. No LibTorch; pure and safe to call from any thread.
#ifndef ABLATE_COMMON_OPTIMIZER_STATE_H_
#define ABLATE_COMMON_OPTIMIZER_STATE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace ablate {

// Block-wise quantized state (trainer_lib/optim/blockwise_quant.h): elements per float32 scale.
inline constexpr int64_t kAdamW8bitBlock = 256;         // both moments, as torchao's AdamW8bit
inline constexpr int64_t kAdamW8bitMinElements = 4096;  // smaller moments stay fp32 (torchao)
inline constexpr int64_t kSoap4bitSmallBlock = 64;      // moments and bases (Wang et al. 2024)
inline constexpr int64_t kSoap4bitFactorBlock = 256;    // factors, as 8-bit optimizers block

// Whether AdamW8bit quantizes the moments of a parameter of n elements: torchao's rule, at
// least kAdamW8bitMinElements and a whole number of blocks; otherwise they stay fp32.
bool AdamW8bitQuantizes(int64_t n);

// Bytes of n elements quantized to `bits` (4 or 8) per code in blocks of `block` (even): the
// codes of every block, the last one zero-padded, packed two to a byte at 4 bits, and one
// float32 scale per block.
int64_t BlockQuantizedBytes(int64_t n, int bits, int64_t block);

// SOAP's rule (pytorch-optimizer 4.1.0's SOAP; SOAP-4bit's too): dimension d of a parameter of
// `shape` is preconditioned when its size is at most max_precond_dim and the parameter has two
// dimensions or more, or precondition_1d holds. Each side is judged alone: a [151936, 1024]
// embedding keeps a 1024 x 1024 factor under the default bound of 10,000.
bool SoapPreconditions(absl::Span<const int64_t> shape, size_t d, int64_t max_precond_dim,
                       bool precondition_1d);

// Shampoo's rule (pytorch-optimizer 4.1.0's ScalableShampoo, whose
// no_preconditioning_for_layers_with_dim_gt skips the whole layer): a parameter is
// preconditioned in every dimension when it has two dimensions or more and none above
// max_precond_dim, and in none otherwise.
bool ShampooPreconditions(absl::Span<const int64_t> shape, int64_t max_precond_dim);

// The optimizer_args that change what state a weight holds. An optimizer reads only its own.
struct OptimizerStateArgs {
  int64_t max_precond_dim = 0;             // SOAP, SOAP-4bit and Shampoo
  bool precondition_1d = false;            // SOAP and SOAP-4bit
  int64_t start_preconditioning_step = 1;  // Shampoo: m_graft is held until this step
};

// The arguments of `optimizer` from `args` (TrainConfig.optimizer_args, validated at the edge)
// and, for those unset, their declared defaults (common/optimizer_args.h: max_precond_dim
// 10,000 for SOAP and SOAP-4bit, 8,192 for Shampoo; start_preconditioning_step 25).
OptimizerStateArgs OptimizerStateArgsOf(absl::string_view optimizer,
                                        const google::protobuf::Map<std::string, double>& args);

// Elements of the [n_d, n_d] matrices `optimizer` keeps per preconditioned dimension d of a
// weight of `shape`, one matrix each (sum of n_d^2): by SoapPreconditions for "soap" and
// "soap4bit", ShampooPreconditions for "shampoo", 0 for the others.
int64_t PreconditionerElements(absl::string_view optimizer, absl::Span<const int64_t> shape,
                               const OptimizerStateArgs& args);

// Bytes of state `optimizer` holds for one float32 weight of `shape` from its first step on,
// the most it holds between steps (not step counters); P = PreconditionerElements:
//   "adamw"      m and v, fp32: 8 n.
//   "adamw8bit"  m and v as 8-bit codes with a float32 scale per kAdamW8bitBlock, where
//                AdamW8bitQuantizes(n); else fp32 as AdamW.
//   "muon"       a hidden matrix (trainer_lib/optim/optimizer.h, IsHiddenMatrix): its fp32
//                momentum, 4 n; any other weight AdamW's state.
//   "soap"       m and v, and per preconditioned dimension its factor and eigenbasis, fp32:
//                8 n + 8 P.
//   "soap4bit"   m and sqrt(v) in 8 bits, blocks of kSoap4bitSmallBlock; per preconditioned
//                dimension its factor in 8 bits, blocks of kSoap4bitFactorBlock, and its
//                eigenbasis in 4 bits, blocks of kSoap4bitSmallBlock (BlockQuantizedBytes).
//   "shampoo"    m and the graft's v, m_graft until start_preconditioning_step (dropped after
//                the first step when that is 1), and per preconditioned dimension its factor
//                and inverse root, fp32: 12 n + 8 P, or 8 n + 8 P.
// InvalidArgument for another name.
absl::StatusOr<int64_t> OptimizerStateBytes(absl::string_view optimizer,
                                            absl::Span<const int64_t> shape, bool hidden_matrix,
                                            const OptimizerStateArgs& args);

}  // namespace ablate

#endif  // ABLATE_COMMON_OPTIMIZER_STATE_H_
