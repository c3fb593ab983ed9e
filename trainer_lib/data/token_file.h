// A read-only, memory-mapped file of token ids: nanoGPT's .bin layout, a flat array of
// little-endian unsigned integers of 2 bytes (uint16, vocabularies up to 65,536) or 4 bytes
// (uint32), with no header. scripts/prepare_data.py writes train.bin and valid.bin this way.
//
// The file is mapped, never read whole: a 20 GB split costs address space, not memory, and the
// pages a batch touches are read on demand and shared with every process mapping the same file.
//
// Invariants, established by Open:
//  1. The file's size is a multiple of token_bytes(); size() is that quotient.
//  2. The mapping lives as long as the TokenFile (move-only) and is never written.
// Thread-safety: every const method is safe from any number of threads at once. The file must
// not be truncated while mapped (reading a page past the new end raises SIGBUS, as for any
// mapped file); prepared datasets are written once and then only read.
#ifndef ABLATE_TRAINER_LIB_DATA_TOKEN_FILE_H_
#define ABLATE_TRAINER_LIB_DATA_TOKEN_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ablate::train {

class TokenFile {
 public:
  // Maps the token file at `path`.
  //   token_bytes  2 or 4; 0 picks it from vocab_size: 2 when vocab_size <= 65,536, else 4
  //                (the rule prepare_data.py writes by).
  //   vocab_size   when > 0, every id Read copies is checked to be below it; 0 checks nothing
  //                (and then token_bytes must be given).
  // Returns, each message naming the path:
  //   NotFound            no file at `path`;
  //   InvalidArgument     token_bytes not 0, 2 or 4, or 0 with vocab_size 0;
  //   DataLoss            a size that is not a multiple of the token width;
  //   Internal            the file cannot be opened or mapped (the OS error is given).
  static absl::StatusOr<TokenFile> Open(const std::string& path, int token_bytes,
                                        int64_t vocab_size);

  TokenFile(TokenFile&& other) noexcept;
  TokenFile& operator=(TokenFile&& other) noexcept;
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;
  ~TokenFile();

  const std::string& path() const { return path_; }
  int token_bytes() const { return token_bytes_; }
  int64_t vocab_size() const { return vocab_size_; }  // 0 when ids are not checked
  int64_t size() const { return size_; }               // tokens

  // Copies tokens [begin, begin + count) as int64 into out[0 .. count). OutOfRange when the
  // range leaves the file; FailedPrecondition naming the path, the position and the id when an
  // id is not below vocab_size() (a dataset tokenized for a larger vocabulary than the model's).
  // `out` may be partly written on error.
  absl::Status Read(int64_t begin, int64_t count, int64_t* out) const;

  // The same range as a new [count] int64 CPU tensor.
  absl::StatusOr<at::Tensor> Read(int64_t begin, int64_t count) const;

 private:
  TokenFile(std::string path, int token_bytes, int64_t vocab_size, const void* data,
            size_t mapped_bytes);

  // Constant after construction (until moved from).
  std::string path_;
  int token_bytes_ = 0;
  int64_t vocab_size_ = 0;
  const void* data_ = nullptr;  // the mapping; null for an empty file
  size_t mapped_bytes_ = 0;
  int64_t size_ = 0;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_DATA_TOKEN_FILE_H_
