#include "trainer_lib/train/model_for_data.h"

#include <cstdint>

#include "common/train_config.h"

namespace ablate::train {

absl::StatusOr<v1::ModelConfig> ModelForData(const v1::TrainConfig& config,
                                             const Dataset& dataset) {
  absl::StatusOr<v1::ModelConfig> model = ModelOfConfig(config);
  if (!model.ok()) return model.status();
  if (absl::Status s = dataset.CheckVocabulary(model->vocab_size()); !s.ok()) return s;
  if (model->eos_token_id().empty() && dataset.eos_id().has_value()) {
    model->add_eos_token_id(static_cast<uint32_t>(*dataset.eos_id()));
  }
  return model;
}

}  // namespace ablate::train
