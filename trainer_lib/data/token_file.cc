#include "trainer_lib/data/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <utility>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace ablate::train {
namespace {

// The file is little-endian and read in place, which is right only on a little-endian host
// (every machine LibTorch's CUDA builds run on).
static_assert(std::endian::native == std::endian::little, "token files are little-endian");

constexpr int64_t kLargestTwoByteVocab = 65536;

absl::Status OsError(const std::string& path, absl::string_view what, int error) {
  return absl::InternalError(absl::StrCat(path, ": cannot ", what, ": ", std::strerror(error)));
}

// Copies ids of type T, keeping their maximum so a single comparison checks the whole range.
template <typename T>
T CopyIds(const T* ids, int64_t count, int64_t* out) {
  T largest = 0;
  for (int64_t i = 0; i < count; ++i) {
    largest = std::max(largest, ids[i]);
    out[i] = ids[i];
  }
  return largest;
}

}  // namespace

absl::StatusOr<TokenFile> TokenFile::Open(const std::string& path, int token_bytes,
                                          int64_t vocab_size) {
  if (token_bytes == 0 && vocab_size > 0) token_bytes = vocab_size <= kLargestTwoByteVocab ? 2 : 4;
  if (token_bytes != 2 && token_bytes != 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": token width must be 2 or 4 bytes (or given by a vocabulary size), got ",
        token_bytes));
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such token file"));
    return OsError(path, "open", errno);
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    return OsError(path, "stat", error);
  }
  const auto bytes = static_cast<size_t>(info.st_size);
  if (bytes % token_bytes != 0) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat(path, ": size ", bytes,
                                            " bytes is not a multiple of the token width ",
                                            token_bytes, " (truncated, or the wrong width)"));
  }
  const void* data = nullptr;
  if (bytes > 0) {
    void* mapped = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      return OsError(path, "map", error);
    }
    data = mapped;
  }
  ::close(fd);  // the mapping keeps the file open
  return TokenFile(path, token_bytes, vocab_size, data, bytes);
}

TokenFile::TokenFile(std::string path, int token_bytes, int64_t vocab_size, const void* data,
                     size_t mapped_bytes)
    : path_(std::move(path)),
      token_bytes_(token_bytes),
      vocab_size_(vocab_size),
      data_(data),
      mapped_bytes_(mapped_bytes),
      size_(static_cast<int64_t>(mapped_bytes / token_bytes)) {}

TokenFile::TokenFile(TokenFile&& other) noexcept
    : path_(std::move(other.path_)),
      token_bytes_(other.token_bytes_),
      vocab_size_(other.vocab_size_),
      data_(std::exchange(other.data_, nullptr)),
      mapped_bytes_(std::exchange(other.mapped_bytes_, 0)),
      size_(std::exchange(other.size_, 0)) {}

TokenFile& TokenFile::operator=(TokenFile&& other) noexcept {
  if (this != &other) {
    std::swap(path_, other.path_);
    std::swap(token_bytes_, other.token_bytes_);
    std::swap(vocab_size_, other.vocab_size_);
    std::swap(data_, other.data_);
    std::swap(mapped_bytes_, other.mapped_bytes_);
    std::swap(size_, other.size_);
  }
  return *this;
}

TokenFile::~TokenFile() {
  if (data_ != nullptr) ::munmap(const_cast<void*>(data_), mapped_bytes_);
}

absl::Status TokenFile::Read(int64_t begin, int64_t count, int64_t* out) const {
  if (begin < 0 || count < 0 || begin > size_ - count) {
    return absl::OutOfRangeError(absl::StrCat(path_, ": tokens [", begin, ", ", begin + count,
                                              ") are outside the file's ", size_));
  }
  if (count == 0) return absl::OkStatus();
  const int64_t largest =
      token_bytes_ == 2 ? CopyIds(static_cast<const uint16_t*>(data_) + begin, count, out)
                        : CopyIds(static_cast<const uint32_t*>(data_) + begin, count, out);
  if (vocab_size_ > 0 && largest >= vocab_size_) {
    for (int64_t i = 0; i < count; ++i) {
      if (out[i] >= vocab_size_) {
        return absl::FailedPreconditionError(
            absl::StrCat(path_, ": token ", begin + i, " is id ", out[i],
                         ", not below the vocabulary size ", vocab_size_));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<at::Tensor> TokenFile::Read(int64_t begin, int64_t count) const {
  at::Tensor tokens = torch::empty({std::max<int64_t>(count, 0)}, torch::kInt64);
  if (absl::Status s = Read(begin, count, tokens.data_ptr<int64_t>()); !s.ok()) return s;
  return tokens;
}

}  // namespace ablate::train
