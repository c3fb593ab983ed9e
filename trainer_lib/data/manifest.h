// The manifest of a prepared dataset, DIR/dataset.json, as scripts/prepare_data.py writes it
// (its --help lists every field). Read and checked once, when a job opens its dataset; what the
// trainer relies on is kept here, the rest (tokenizer path, inputs) stays in the file for
// people. Torch-free plain data; safe from any thread.
#ifndef ABLATE_TRAINER_LIB_DATA_MANIFEST_H_
#define ABLATE_TRAINER_LIB_DATA_MANIFEST_H_

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace ablate::train {

inline constexpr char kManifestFile[] = "dataset.json";

struct SplitManifest {
  std::string file;    // relative to the dataset directory: "train.bin", "valid.bin"
  int64_t tokens = 0;  // EOS tokens included
  int64_t documents = 0;
  std::string sha256;  // of the file, hex
};

struct DatasetManifest {
  int64_t vocab_size = 0;  // every id is below it
  int token_bytes = 0;     // 2 (uint16) or 4 (uint32)
  int64_t eos_id = 0;
  std::string tokenizer_path;
  std::string tokenizer_sha256;
  SplitManifest train;
  SplitManifest valid;
  std::string sha256;  // of the text `sha256sum train.bin valid.bin` prints: the data's identity
};

// Reads DIR/dataset.json. NotFound when there is none (an unprepared directory, or one whose
// preparation did not finish: the manifest is written last); DataLoss when it is not JSON, is
// not an "ablate-tokens" manifest, or lacks a field, has one of the wrong type, or a token width
// that does not fit its vocabulary. Every message names the file.
absl::StatusOr<DatasetManifest> ReadManifest(const std::filesystem::path& dir);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_DATA_MANIFEST_H_
