// SOAP-4bit: SOAP (soap.h, same options and the same order of operations) with its state
// held in low precision between steps, after 4-bit Shampoo (Wang et al., "4-bit Shampoo for
// Memory-Efficient Network Training", NeurIPS 2024, arXiv:2405.18144):
//   eigenbases Q_d   NF4, blocks of 64; after dequantizing, one Björck orthonormalization
//                    Q <- 1.5 Q - 0.5 Q Q^T Q rectifies the orthogonality that quantization
//                    broke (Wang et al.'s rectification). Re-quantized only when refreshed, so
//                    the codes do not drift between refreshes.
//   first moment m   8 bits, linear, blocks of 64.
//   second moment v  sqrt(v) in 8 bits on the linear map without zero, blocks of 64, so no
//                    denominator collapses to eps (Li et al. 2023, arXiv:2309.01507, use that
//                    map at 4 bits).
//   factors F_d      8 bits, linear, blocks of 256: 4 bits cannot hold a covariance whose
//                    diagonal dwarfs its off-diagonal, and float32 factors alone cost
//                    4 (m^2 + n^2) / (m n) bytes per parameter, 8 for a square matrix.
// The moments are 8-bit, not 4-bit, because 4 bits cost the loss bar below: on the 108M `small`
// model (1,000 steps on real text, docs/benchmarks.md) NF4 m and 4-bit sqrt(v) ended 17% above
// soap, 8-bit m alone 1.8%, both moments in 8 bits 0.7%.
// State, with block scales: 2.125 bytes per parameter for the moments plus 1.58 per element of
// factors and bases together, (m^2 + n^2) / (m n) elements per parameter of an [m, n] matrix:
// 5.3 bytes per parameter for a square matrix, 7.4 for a 1:3 one; StateBytes reports it. During
// a step the state is float32, unpacked for stacked batches of same-shaped parameters (at most
// 2^28 elements each) as soap.cc batches its work (a refresh step holds the refreshed
// parameters' factors, bases and v in float32 together, to batch their linear algebra).
//
// No maintained reference exists: its bars are the state size and a tiny model's loss within
// 1% of soap's on the same run (soap4bit_test.cc). Thread-safety: one thread at a time.
#ifndef ABLATE_TRAINER_LIB_OPTIM_SOAP4BIT_H_
#define ABLATE_TRAINER_LIB_OPTIM_SOAP4BIT_H_

#include <cstdint>
#include <vector>

#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

#include "trainer_lib/optim/soap.h"

namespace ablate::train {

struct Soap4bitParamState
    : public torch::optim::OptimizerCloneableParamState<Soap4bitParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg_codes);       // 8-bit m
  TORCH_ARG(torch::Tensor, exp_avg_scales);
  TORCH_ARG(torch::Tensor, exp_avg_sq_codes);    // 8-bit sqrt(v)
  TORCH_ARG(torch::Tensor, exp_avg_sq_scales);

 public:
  // Per dimension, undefined where not preconditioned.
  std::vector<torch::Tensor> factor_codes, factor_scales, basis_codes, basis_scales;

  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

class Soap4bit : public torch::optim::Optimizer {
 public:
  explicit Soap4bit(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                    SoapOptions defaults = SoapOptions());

  // closure must be null; returns an undefined tensor.
  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // Bytes of optimizer state held now, over all parameters.
  int64_t StateBytes() const;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_SOAP4BIT_H_
