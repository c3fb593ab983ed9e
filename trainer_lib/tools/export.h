// `ablate-train export`: an Ablate checkpoint written out as a Hugging Face model directory
// (config.json + safetensors) that transformers' Qwen3ForCausalLM.from_pretrained loads.
//
// This header does not include LibTorch. Not thread-safe: one export at a time per folder.
#ifndef ABLATE_TRAINER_LIB_TOOLS_EXPORT_H_
#define ABLATE_TRAINER_LIB_TOOLS_EXPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ablate::train {

struct ExportOptions {
  std::string checkpoint;  // a job's checkpoint_dir (its newest step) or one step-N folder
  // The model it was trained as, a catalog name or hf:PATH; empty: the model the checkpoint
  // records (its model.json).
  std::string model;
  std::string out;         // the model directory to write; created when missing
  int64_t shard_bytes = 0;  // largest file before sharding; 0: transformers' 5 GB
};

// What an export read and wrote.
struct ExportResult {
  std::string folder;  // the step folder read
  // The tokenizer files copied into `out` (tokenizer.json first), from the folder of the
  // tokenizer.json that prepared the job's dataset; empty when none was, and then
  // `tokenizer_note` says why.
  std::vector<std::string> tokenizer_files;
  std::string tokenizer_note;
};

// Builds the model (options.model, or the one the checkpoint records), loads the checkpoint's
// weights into it and writes it to `out` in float32, replacing the weight files of an earlier
// export there. Then copies the tokenizer the job's dataset was prepared with, so that
// transformers' AutoTokenizer loads `out` too: dataset.json names tokenizer.json and its SHA-256,
// and only a file that still matches is copied (another tokenizer would map the ids the model
// learned to other text), with tokenizer_config.json and special_tokens_map.json where they lie
// beside it. No tokenizer to copy is not an error (ExportResult::tokenizer_note).
// FailedPrecondition for a checkpoint of another attention than dense (NSA's gates have no
// place in transformers' Qwen3). Fails as ModelByName, CheckpointDir::NewestComplete (NotFound
// when there is none), SavedModelConfig, the model piece (naming the tensor when the checkpoint
// is of another model), SaveHfModel and the copies do.
absl::StatusOr<ExportResult> ExportCheckpoint(const ExportOptions& options);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TOOLS_EXPORT_H_
