#include "trainer_lib/tools/export.h"

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

#include "common/catalog.h"
#include "trainer_lib/model/hf_adapter.h"
#include "trainer_lib/data/manifest.h"
#include "trainer_lib/model/qwen3.h"
#include "trainer_lib/state/digest.h"
#include "trainer_lib/train/checkpoint.h"
#include "trainer_lib/train/run_state.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json",
                                           "special_tokens_map.json"};

// Copies into `out` the tokenizer that prepared `dataset` (ExportCheckpoint's rule), filling
// result's tokenizer fields. An earlier export's tokenizer files there go first: left beside
// other weights, they could be another tokenizer's.
absl::Status CopyTokenizer(const std::string& dataset, const fs::path& out, ExportResult* result) {
  std::error_code error;
  for (const char* name : kTokenizerFiles) fs::remove(out / name, error);
  if (dataset.empty() || dataset.starts_with("builtin:") ||
      fs::exists(fs::path(dataset) / "train.txt", error)) {
    result->tokenizer_note = "the job's tokens are bytes (ids 0-255): there is no tokenizer";
    return absl::OkStatus();
  }
  const absl::StatusOr<DatasetManifest> manifest = ReadManifest(dataset);
  if (!manifest.ok()) {
    result->tokenizer_note = std::string(manifest.status().message());
    return absl::OkStatus();
  }
  const fs::path tokenizer = manifest->tokenizer_path;
  const absl::StatusOr<FileDigest> digest = DigestFile(tokenizer);
  if (!digest.ok()) {
    result->tokenizer_note = absl::StrCat("the tokenizer that prepared ", dataset, ", ",
                                          tokenizer.string(), ", cannot be read here");
    return absl::OkStatus();
  }
  if (digest->sha256 != manifest->tokenizer_sha256) {
    result->tokenizer_note =
        absl::StrCat(tokenizer.string(), " has changed since it prepared ", dataset,
                     " (its SHA-256 differs from dataset.json's): not copied");
    return absl::OkStatus();
  }
  // tokenizer.json under that name whatever the prepared file was called; the others where
  // they lie beside it.
  for (const char* name : kTokenizerFiles) {
    const bool json = name == kTokenizerFiles[0];
    const fs::path from = json ? tokenizer : tokenizer.parent_path() / name;
    if (!json && !fs::exists(from, error)) continue;
    fs::copy_file(from, out / name, fs::copy_options::overwrite_existing, error);
    if (error) {
      return absl::InternalError(absl::StrCat("export: cannot copy ", from.string(), " to ",
                                              (out / name).string(), ": ", error.message()));
    }
    result->tokenizer_files.push_back(from.string());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ExportResult> ExportCheckpoint(const ExportOptions& options) {
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
  const absl::StatusOr<v1::TrainConfig> trained = SavedTrainConfig(folder);
  if (trained.ok() && trained->attention() != "dense") {
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
  ExportResult result{folder.string(), {}, {}};
  if (!trained.ok()) {
    result.tokenizer_note = "the checkpoint records no dataset (no config.json)";
  } else if (absl::Status copied = CopyTokenizer(trained->dataset(), options.out, &result);
             !copied.ok()) {
    return copied;
  }
  return result;
}

}  // namespace ablate::train
