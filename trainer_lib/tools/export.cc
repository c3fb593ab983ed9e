#include "trainer_lib/tools/export.h"

#include <filesystem>

#include <torch/torch.h>

#include "common/catalog.h"
#include "trainer_lib/model/hf_adapter.h"
#include "trainer_lib/model/qwen3.h"
#include "trainer_lib/train/checkpoint.h"
#include "trainer_lib/train/run_state.h"

namespace ablate::train {

absl::Status ExportCheckpoint(const ExportOptions& options) {
  // A step-N folder holds its MANIFEST; a job's checkpoint_dir holds step folders.
  std::filesystem::path folder = options.checkpoint;
  if (!std::filesystem::exists(folder / "MANIFEST")) {
    absl::StatusOr<std::filesystem::path> newest =
        CheckpointDir(options.checkpoint, /*keep=*/1).NewestComplete();
    if (!newest.ok()) return newest.status();
    folder = *newest;
  }
  absl::StatusOr<v1::ModelConfig> config =
      options.model.empty() ? SavedModelConfig(folder) : ModelByName(options.model);
  if (!config.ok()) return config.status();
  // The attention kind owns no weights today, so any kind reads the same checkpoint.
  absl::StatusOr<Qwen3> model = BuildQwen3(*config, "dense");
  if (!model.ok()) return model.status();
  if (absl::Status loaded = ModelState(**model, torch::kCPU)->Load(folder); !loaded.ok()) {
    return loaded;
  }
  return SaveHfModel(options.out, **model,
                     options.shard_bytes > 0 ? options.shard_bytes : kDefaultShardBytes);
}

}  // namespace ablate::train
