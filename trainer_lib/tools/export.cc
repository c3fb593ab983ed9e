#include "trainer_lib/tools/export.h"

#include <torch/torch.h>

#include "common/catalog.h"
#include "trainer_lib/model/hf_adapter.h"
#include "trainer_lib/model/qwen3.h"
#include "trainer_lib/train/checkpoint.h"

namespace ablate::train {

absl::Status ExportCheckpoint(const ExportOptions& options) {
  absl::StatusOr<v1::ModelConfig> config = ModelByName(options.model);
  if (!config.ok()) return config.status();
  // The attention kind owns no weights today, so any kind reads the same checkpoint.
  absl::StatusOr<Qwen3> model = BuildQwen3(*config, "dense");
  if (!model.ok()) return model.status();
  absl::StatusOr<int64_t> step = LoadCheckpointModel(options.checkpoint, **model);
  if (!step.ok()) return step.status();
  return SaveHfModel(options.out, **model,
                     options.shard_bytes > 0 ? options.shard_bytes : kDefaultShardBytes);
}

}  // namespace ablate::train
