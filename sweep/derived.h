// A sweep's `derived:` section applied to one cell's config: tokens_per_step, which sets each
// cell's batch_size from its context_length (equal tokens per step across contexts), and
// settings given per optimizer (learning_rate: {adamw: 3e-3, muon: 2e-2}), each cell taking
// its optimizer's value. Pure; safe from any thread.
#ifndef ABLATE_SWEEP_DERIVED_H_
#define ABLATE_SWEEP_DERIVED_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ablate/v1/config.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace ablate::sweep::internal {

struct Derived {
  uint64_t tokens_per_step = 0;  // 0: none
  // Field -> (optimizer, as ValueKey spells it -> value as written), in the file's order.
  std::vector<std::pair<std::string, absl::flat_hash_map<std::string, std::string>>> by_optimizer;
};

// The derived settings of a validated spec.
Derived DerivedOf(const v1::SweepSpec& spec);

// Sets config's batch_size and per-optimizer fields. InvalidArgument with a line for each
// problem, each naming its key ("derived.weight_decay: no value for optimizer muon"): a
// tokens_per_step that is no whole number of config's sequences or more than kMaxBatch of them,
// a field without a value for config's optimizer (but an optimizer argument that optimizer does
// not take), a value SetTrainField refuses. The fields without a problem are set all the same.
absl::Status ApplyDerived(const Derived& derived, v1::TrainConfig& config);

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_DERIVED_H_
