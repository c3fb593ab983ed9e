// Where a rank runs and which share of each batch it takes.
//
// batch_size is global: the N ranks of a job split every batch of B rows into N contiguous
// shares of B / N rows, rank r taking rows [r * B / N, (r + 1) * B / N), and each rank cuts its
// share into micro-batches of min(micro_batch_size, B / N) rows. Together they take exactly
// the rows one process would, so a run's data does not depend on its rank count.
// Pure functions; safe from any thread.
#ifndef ABLATE_TRAINER_LIB_DIST_PLACEMENT_H_
#define ABLATE_TRAINER_LIB_DIST_PLACEMENT_H_

#include <cstdint>

#include <c10/core/Device.h>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"

namespace ablate::train::dist {

// The device of rank `local_rank` of a job: the CPU when it asks for no GPUs, else
// cuda:local_rank among the GPUs the worker made visible (CUDA_VISIBLE_DEVICES). Unavailable
// when CUDA is missing or shows fewer devices (another host may have them: not permanent).
absl::StatusOr<c10::Device> RankDevice(const v1::TrainConfig& config, int local_rank);

}  // namespace ablate::train::dist

#endif  // ABLATE_TRAINER_LIB_DIST_PLACEMENT_H_
