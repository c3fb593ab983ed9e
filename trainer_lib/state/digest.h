// SHA-256 digests, as lowercase hex, of bytes and of files (OpenSSL's implementation).
// Checkpoint manifests and a run's data provenance use them. Stateless; safe from any thread.
#ifndef ABLATE_TRAINER_LIB_STATE_DIGEST_H_
#define ABLATE_TRAINER_LIB_STATE_DIGEST_H_

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ablate::train {

// Incremental SHA-256: Update any number of times, then Hex once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(absl::string_view bytes) { Update(bytes.data(), bytes.size()); }
  std::string Hex();  // 64 hex digits; the object is spent afterwards

 private:
  struct State;
  State* state_;
};

// The digest of a file's bytes and its size; FileError("read", path, ...) when unreadable.
struct FileDigest {
  std::string sha256;
  uint64_t size = 0;
};
absl::StatusOr<FileDigest> DigestFile(const std::filesystem::path& path);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_STATE_DIGEST_H_
