// The model a job trains, as its dataset needs it: the config's model (common/train_config.h's
// ModelOfConfig), refused when the dataset's ids do not fit its embedding, and given the
// dataset's end-of-document token as its eos_token_id when it names none, so that an export's
// config.json (transformers' generation stops there) says where a document ends.
//
// Thread-safety: a pure function.
#ifndef ABLATE_TRAINER_LIB_TRAIN_MODEL_FOR_DATA_H_
#define ABLATE_TRAINER_LIB_TRAIN_MODEL_FOR_DATA_H_

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "trainer_lib/data/dataset.h"

namespace ablate::train {

// ModelOfConfig's errors, then Dataset::CheckVocabulary's FailedPrecondition. An hf: model's
// own eos_token_id list is kept as its config.json gives it; a catalog model takes the
// prepared dataset's manifest eos_id (none for a byte corpus, which has no separator).
absl::StatusOr<v1::ModelConfig> ModelForData(const v1::TrainConfig& config,
                                             const Dataset& dataset);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_MODEL_FOR_DATA_H_
