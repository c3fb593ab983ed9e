// Agreement checks between the ranks of a data-parallel job: the guarantee that every rank
// holds the same parameters after each step rests on identical updates from identical
// (summed) gradients, and is verified at each checkpoint rather than trusted.
//
// Thread-safety: collectives; call from the training thread of every rank at the same point.
#ifndef ABLATE_TRAINER_LIB_DIST_REPLICAS_H_
#define ABLATE_TRAINER_LIB_DIST_REPLICAS_H_

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "trainer_lib/dist/process_group.h"

namespace ablate::train::dist {

// OK when every rank's `tensors` are bitwise equal (SHA-256 of their bytes, in order; copies
// them to the host), or at once for no group (one process). Otherwise Internal: "step N:
// parameters of rank R differ from rank 0's" naming the first such rank, on every rank.
absl::Status CheckReplicasAgree(ProcessGroup* group, const std::vector<at::Tensor>& tensors,
                                int64_t step);

// OK when every rank passes the same `value`; otherwise FailedPrecondition naming `what` and
// each rank's value ("resumed step: rank 0 40, rank 1 30"). Every rank gets the same answer.
absl::Status CheckSameValue(ProcessGroup& group, int64_t value, const char* what);

}  // namespace ablate::train::dist

#endif  // ABLATE_TRAINER_LIB_DIST_REPLICAS_H_
