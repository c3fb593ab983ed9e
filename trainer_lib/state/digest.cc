#include "trainer_lib/state/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_format.h"
#include "trainer_lib/state/archive_file.h"

namespace ablate::train {

struct Sha256::State {
  EVP_MD_CTX* context;
};

Sha256::Sha256() : state_(new State{EVP_MD_CTX_new()}) {
  EVP_DigestInit_ex(state_->context, EVP_sha256(), nullptr);
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(state_->context);
  delete state_;
}

void Sha256::Update(const void* data, size_t size) {
  EVP_DigestUpdate(state_->context, data, size);
}

std::string Sha256::Hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(state_->context, digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) absl::StrAppendFormat(&hex, "%02x", digest[i]);
  return hex;
}

absl::StatusOr<FileDigest> DigestFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileError("read", path, errno);
  Sha256 sha;
  FileDigest result;
  std::vector<char> buffer(1 << 20);
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return FileError("read", path, error);
    }
    if (n == 0) break;
    sha.Update(buffer.data(), static_cast<size_t>(n));
    result.size += static_cast<uint64_t>(n);
  }
  ::close(fd);
  result.sha256 = sha.Hex();
  return result;
}

}  // namespace ablate::train
