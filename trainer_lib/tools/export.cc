#include "trainer_lib/tools/export.h"

#include <filesystem>

#include <torch/torch.h>

#include "common/catalog.h"
#include "trainer_lib/model/hf_adapter.h"
#include "trainer_lib/model/qwen3.h"
#include "trainer_lib/train/checkpoint.h"
#include "trainer_lib/train/run_state.h"

namespace ablate::train {

absl::StatusOr<std::string> ExportCheckpoint(const ExportOptions& options) {
  // A step-N folder holds its MANIFEST; a job's checkpoint_dir holds step folders.
  std::filesystem::path folder = options.checkpoint;
  if (!std::filesystem::exists(folder / "MANIFEST")) {
    absl::StatusOr<std::filesystem::path> newest =
        CheckpointDir(options.checkpoint, /*keep=*/1).NewestComplete();
    if (!newest.ok()) return newest.status();
    folder = *newest;
  }
  // NSA's gates are weights that transformers' Qwen3 has no place for: written without them,
  // the model would compute another function than the one trained.
  if (absl::StatusOr<v1::TrainConfig> trained = SavedTrainConfig(folder);
      trained.ok() && trained->attention() != "dense") {
    return absl::FailedPreconditionError(absl::StrCat(
        folder.string(), " is a checkpoint of a model with attention ", trained->attention(),
        ", whose weights (the gates' g_proj) transformers' Qwen3ForCausalLM has no place for; "
        "export writes dense-attention models only"));
  }
  absl::StatusOr<v1::ModelConfig> config =
      options.model.empty() ? SavedModelConfig(folder) : ModelByName(options.model);
  if (!config.ok()) return config.status();
  absl::StatusOr<Qwen3> model = BuildQwen3(*config, "dense");
  if (!model.ok()) return model.status();
  if (absl::Status loaded = ModelState(**model, torch::kCPU)->Load(folder); !loaded.ok()) {
    return loaded;
  }
  if (absl::Status saved = SaveHfModel(
          options.out, **model, options.shard_bytes > 0 ? options.shard_bytes : kDefaultShardBytes);
      !saved.ok()) {
    return saved;
  }
  return folder.string();
}

}  // namespace ablate::train
