#include "trainer_lib/data/corpus.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "trainer_lib/data/tokenizer.h"

namespace ablate::train {
namespace {

constexpr absl::string_view kBuiltinPrefix = "builtin:";

// The data directory of built-in corpora. A deployed binary points ABLATE_DATA_DIR at its copy;
// a binary run from a build tree finds the sources it was built from (ABLATE_SOURCE_DIR).
std::filesystem::path DataDir() {
  if (const char* env = std::getenv("ABLATE_DATA_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return std::filesystem::path(ABLATE_SOURCE_DIR) / "data";
}

absl::StatusOr<at::Tensor> ReadSplit(const std::string& dataset,
                                     const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("dataset ", dataset, ": cannot read ", path.string()));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset ", dataset, ": ", path.string(), " is empty"));
  }
  return EncodeBytes(text.str());
}

}  // namespace

absl::StatusOr<Corpus> LoadCorpus(const std::string& dataset) {
  std::filesystem::path dir(dataset);
  if (absl::StartsWith(dataset, kBuiltinPrefix)) {
    dir = DataDir() / dataset.substr(kBuiltinPrefix.size());
  }
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("dataset ", dataset, ": no folder ", dir.string()));
  }
  absl::StatusOr<at::Tensor> train = ReadSplit(dataset, dir / "train.txt");
  if (!train.ok()) return train.status();
  absl::StatusOr<at::Tensor> valid = ReadSplit(dataset, dir / "valid.txt");
  if (!valid.ok()) return valid.status();
  return Corpus{*std::move(train), *std::move(valid)};
}

}  // namespace ablate::train
