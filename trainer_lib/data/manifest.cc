#include "trainer_lib/data/manifest.h"

#include <fstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace ablate::train {
namespace {

using nlohmann::json;

// What is wrong with the manifest; thrown by the readers below and turned into a Status at
// ReadManifest's edge, so each field is read in one line.
struct ManifestError {
  std::string problem;
};

const json& Get(const json& object, const std::string& key, json::value_t type) {
  auto it = object.find(key);
  if (it == object.end()) throw ManifestError{absl::StrCat("has no field \"", key, "\"")};
  const bool count = type == json::value_t::number_unsigned;
  if (count ? !it->is_number_unsigned() : it->type() != type) {
    throw ManifestError{absl::StrCat("field \"", key, "\" is not ",
                                     count ? "a non-negative integer" : json(type).type_name())};
  }
  return *it;
}

int64_t Count(const json& object, const std::string& key) {
  return Get(object, key, json::value_t::number_unsigned).get<int64_t>();
}

std::string String(const json& object, const std::string& key) {
  return Get(object, key, json::value_t::string).get<std::string>();
}

SplitManifest ReadSplit(const json& splits, const std::string& name) {
  const json& split = Get(splits, name, json::value_t::object);
  SplitManifest out{.file = String(split, "file"),
                    .tokens = Count(split, "tokens"),
                    .documents = Count(split, "documents"),
                    .sha256 = String(split, "sha256")};
  if (out.file.empty() || out.file.find('/') != std::string::npos) {
    throw ManifestError{absl::StrCat("split \"", name, "\" names \"", out.file,
                                     "\", not a file of the dataset directory")};
  }
  return out;
}

DatasetManifest Read(const json& root) {
  if (!root.is_object()) throw ManifestError{"is not a JSON object"};
  if (const std::string format = String(root, "format"); format != "ablate-tokens") {
    throw ManifestError{absl::StrCat("format is \"", format, "\", not \"ablate-tokens\"")};
  }
  const json& tokenizer = Get(root, "tokenizer", json::value_t::object);
  const json& splits = Get(root, "splits", json::value_t::object);
  DatasetManifest m{.vocab_size = Count(root, "vocab_size"),
                    .token_bytes = 0,
                    .eos_id = Count(root, "eos_id"),
                    .tokenizer_path = String(tokenizer, "path"),
                    .tokenizer_sha256 = String(tokenizer, "sha256"),
                    .train = ReadSplit(splits, "train"),
                    .valid = ReadSplit(splits, "valid"),
                    .sha256 = String(root, "sha256")};
  // The rule prepare_data.py writes by: the narrowest width that holds every id.
  const int64_t token_bytes = Count(root, "token_bytes");
  if (m.vocab_size == 0 || (token_bytes != 2 && token_bytes != 4) ||
      (token_bytes == 2 && m.vocab_size > 65536)) {
    throw ManifestError{absl::StrCat("token_bytes ", token_bytes,
                                     " cannot hold a vocabulary of ", m.vocab_size)};
  }
  m.token_bytes = static_cast<int>(token_bytes);
  if (m.eos_id >= m.vocab_size) {
    throw ManifestError{
        absl::StrCat("eos_id ", m.eos_id, " is not below vocab_size ", m.vocab_size)};
  }
  return m;
}

}  // namespace

absl::StatusOr<DatasetManifest> ReadManifest(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / kManifestFile;
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        path.string(), ": no manifest; prepare the dataset with scripts/prepare_data.py, "
                       "which writes it last"));
  }
  const json root = json::parse(in, /*cb=*/nullptr, /*allow_exceptions=*/false);
  try {
    if (root.is_discarded()) throw ManifestError{"is not valid JSON"};
    return Read(root);
  } catch (const ManifestError& e) {
    return absl::DataLossError(absl::StrCat(path.string(), ": ", e.problem));
  }
}

}  // namespace ablate::train
