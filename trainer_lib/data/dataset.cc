#include "trainer_lib/data/dataset.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <variant>

#include <torch/torch.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "trainer_lib/data/manifest.h"
#include "trainer_lib/data/token_file.h"
#include "trainer_lib/data/tokenizer.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kBuiltinPrefix = "builtin:";

// The data directory of built-in datasets. A deployed binary points ABLATE_DATA_DIR at its
// copy; a binary run from a build tree finds the sources it was built from (ABLATE_SOURCE_DIR).
fs::path DataDir() {
  if (const char* env = std::getenv("ABLATE_DATA_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return fs::path(ABLATE_SOURCE_DIR) / "data";
}

std::string Sha256Hex(absl::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), length));
}

// What `sha256sum train.X valid.X` prints, hashed: one identity for the pair of split files.
std::string ListingSha256(const std::string& train_sha256, const fs::path& train_file,
                          const std::string& valid_sha256, const fs::path& valid_file) {
  return Sha256Hex(absl::StrCat(train_sha256, "  ", train_file.filename().string(), "\n",
                                valid_sha256, "  ", valid_file.filename().string(), "\n"));
}

absl::Status WithDataset(const std::string& name, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("dataset ", name, ": ", status.message()));
}

}  // namespace

class Dataset::Split {
 public:
  explicit Split(std::variant<TokenFile, at::Tensor> tokens) : tokens_(std::move(tokens)) {}

  int64_t size() const {
    if (const auto* file = std::get_if<TokenFile>(&tokens_)) return file->size();
    return std::get<at::Tensor>(tokens_).numel();
  }

  // Tokens [begin, begin + count) as int64 into out[0 .. count); TokenFile::Read's errors.
  absl::Status Read(int64_t begin, int64_t count, int64_t* out) const {
    if (const auto* file = std::get_if<TokenFile>(&tokens_)) return file->Read(begin, count, out);
    const uint8_t* bytes = std::get<at::Tensor>(tokens_).const_data_ptr<uint8_t>() + begin;
    std::copy(bytes, bytes + count, out);
    return absl::OkStatus();
  }

 private:
  std::variant<TokenFile, at::Tensor> tokens_;  // a mapped file, or [N] uint8 byte tokens
};

namespace {

struct OpenedSplits {
  int64_t vocab_size;
  std::optional<int64_t> eos_id;
  std::string sha256;
  std::variant<TokenFile, at::Tensor> train;
  std::variant<TokenFile, at::Tensor> valid;
};

absl::StatusOr<OpenedSplits> OpenPrepared(const fs::path& dir) {
  absl::StatusOr<DatasetManifest> manifest = ReadManifest(dir);
  if (!manifest.ok()) return manifest.status();
  std::optional<TokenFile> files[2];
  int index = 0;
  for (const SplitManifest* split : {&manifest->train, &manifest->valid}) {
    const fs::path path = dir / split->file;
    absl::StatusOr<TokenFile> file =
        TokenFile::Open(path.string(), manifest->token_bytes, manifest->vocab_size);
    if (!file.ok()) return file.status();
    if (file->size() != split->tokens) {
      return absl::DataLossError(absl::StrCat(
          path.string(), " holds ", file->size(), " tokens, but ", kManifestFile, " says ",
          split->tokens, " (a changed file, or one from another preparation)"));
    }
    files[index++] = *std::move(file);
  }
  return OpenedSplits{manifest->vocab_size, manifest->eos_id, manifest->sha256,
                      *std::move(files[0]), *std::move(files[1])};
}

absl::StatusOr<std::string> ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(path.string(), " is empty"));
  }
  return std::move(text).str();
}

absl::StatusOr<OpenedSplits> OpenByteCorpus(const fs::path& dir) {
  const fs::path train_path = dir / "train.txt";
  const fs::path valid_path = dir / "valid.txt";
  absl::StatusOr<std::string> train = ReadText(train_path);
  if (!train.ok()) return train.status();
  absl::StatusOr<std::string> valid = ReadText(valid_path);
  if (!valid.ok()) return valid.status();
  return OpenedSplits{
      kByteVocabSize, std::nullopt,
      ListingSha256(Sha256Hex(*train), train_path, Sha256Hex(*valid), valid_path),
      EncodeBytes(*train), EncodeBytes(*valid)};
}

}  // namespace

absl::StatusOr<Dataset> Dataset::Open(const std::string& name, int64_t context_length) {
  fs::path dir(name);
  if (absl::StartsWith(name, kBuiltinPrefix)) dir = DataDir() / name.substr(kBuiltinPrefix.size());
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("dataset ", name, ": no directory ", dir.string()));
  }
  absl::StatusOr<OpenedSplits> splits;
  if (fs::exists(dir / kManifestFile, error) || !fs::exists(dir / "train.txt", error)) {
    splits = OpenPrepared(dir);  // without either, its error says how to prepare one
  } else {
    splits = OpenByteCorpus(dir);
  }
  if (!splits.ok()) return WithDataset(name, splits.status());

  Dataset dataset(name, splits->vocab_size, splits->eos_id, std::move(splits->sha256),
                  std::make_unique<const Split>(std::move(splits->train)),
                  std::make_unique<const Split>(std::move(splits->valid)));
  for (const auto& [split, tokens] : {std::pair{"train", dataset.train_tokens()},
                                      std::pair{"valid", dataset.valid_tokens()}}) {
    if (SequenceCount(tokens, context_length) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("dataset ", name, ": the ", split, " split has ", tokens,
                       " tokens, too few for context_length ", context_length));
    }
  }
  return dataset;
}

Dataset::Dataset(std::string name, int64_t vocab_size, std::optional<int64_t> eos_id,
                 std::string sha256, std::unique_ptr<const Split> train,
                 std::unique_ptr<const Split> valid)
    : name_(std::move(name)),
      vocab_size_(vocab_size),
      eos_id_(eos_id),
      sha256_(std::move(sha256)),
      train_(std::move(train)),
      valid_(std::move(valid)) {}

Dataset::Dataset(Dataset&&) noexcept = default;
Dataset& Dataset::operator=(Dataset&&) noexcept = default;
Dataset::~Dataset() = default;

int64_t Dataset::train_tokens() const { return train_->size(); }
int64_t Dataset::valid_tokens() const { return valid_->size(); }

absl::Status Dataset::CheckVocabulary(int64_t model_vocab_size) const {
  if (vocab_size_ <= model_vocab_size) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("dataset ", name_, " has a vocabulary of ", vocab_size_,
                   " ids, more than the model's vocab_size ", model_vocab_size));
}

absl::StatusOr<Batch> Dataset::TrainBatch(BatchShape shape, uint64_t data_seed,
                                          int64_t step) const {
  const int64_t sequences = SequenceCount(train_->size(), shape.context_length);
  return Gather(*train_, TrainSequences(sequences, shape, data_seed, step), shape.context_length);
}

absl::StatusOr<Batch> Dataset::EvalBatch(BatchShape shape, int64_t index) const {
  const int64_t sequences = SequenceCount(valid_->size(), shape.context_length);
  return Gather(*valid_, EvalSequences(sequences, shape, index), shape.context_length);
}

absl::StatusOr<Batch> Dataset::Gather(const Split& split, const std::vector<int64_t>& sequences,
                                      int64_t context_length) const {
  const auto b = static_cast<int64_t>(sequences.size());
  const int64_t t = context_length;
  at::Tensor windows = torch::empty({b, t + 1}, torch::kInt64);  // [B, T+1]
  int64_t* out = windows.data_ptr<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    absl::Status s = split.Read(sequences[r] * t, t + 1, out + r * (t + 1));
    if (!s.ok()) return WithDataset(name_, s);
  }
  return Batch{windows.narrow(1, 0, t), windows.narrow(1, 1, t)};
}

}  // namespace ablate::train
