// The TrainerStarted event: what a run is and where it starts, sent once before its first
// step, so that a result can be traced to its code, configuration, seeds and data.
//
// Torch-free. Thread-safety: pure functions.
#ifndef ABLATE_TRAINER_LIB_TRAIN_PROVENANCE_H_
#define ABLATE_TRAINER_LIB_TRAIN_PROVENANCE_H_

#include <cstdint>
#include <string>

#include "ablate/v1/config.pb.h"
#include "ablate/v1/trainer.pb.h"

namespace ablate::train {

// What the trainer learns during setup, beside its resolved configuration.
struct StartFacts {
  int64_t parameters = 0;                          // the model's, all ranks' copies counted once
  std::string device;                              // torch's name: "cpu", "cuda:0"
  int64_t resumed_from_step = 0;                   // 0 for a fresh run
  std::string data_sha256;                         // the dataset's digest (Dataset::sha256)
  double optimizer_state_bytes_per_parameter = 0;  // StateBytesPerParameter
};

// The event; `config` is the resolved one (WithLoopDefaults), recorded as JSON with proto field
// names, and the code version is this build's (build_info.h).
v1::TrainerEvent StartedEvent(const v1::TrainConfig& config, const StartFacts& facts);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_PROVENANCE_H_
