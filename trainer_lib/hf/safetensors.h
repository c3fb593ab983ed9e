// Reading and writing tensors in Hugging Face's safetensors format, one file or a directory of
// shards with its model.safetensors.index.json, as transformers' save_pretrained writes them.
//
// A file is: 8 bytes, the header's length N as a little-endian uint64; N bytes of JSON mapping
// each tensor's name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the
// data that follows, in bytes) plus an optional "__metadata__" of strings; then the raw
// little-endian data. An index maps each name to the file holding it ("weight_map") beside
// "metadata": {"total_size": bytes}. Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8,
// U8, BOOL. This host must be little-endian (every platform LibTorch ships for is).
//
// A SafetensorsReader maps its files read-only and copies one tensor at a time out of them,
// so loading a model never holds a second copy of all its weights. Reader and writer are used
// by one thread at a time.
#ifndef ABLATE_TRAINER_LIB_HF_SAFETENSORS_H_
#define ABLATE_TRAINER_LIB_HF_SAFETENSORS_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ablate::train {

// transformers' default shard size for save_pretrained: 5 GB (decimal).
inline constexpr int64_t kDefaultShardBytes = 5'000'000'000;

class SafetensorsReader {
 public:
  // Opens `path`: a .safetensors file, or a directory holding model.safetensors or
  // model.safetensors.index.json and its shards. Checks every header: NotFound when nothing is
  // there; DataLoss naming the file when a header is malformed, an offset runs past the end of
  // the file (a truncated download), or a tensor's byte count disagrees with its shape.
  static absl::StatusOr<std::unique_ptr<SafetensorsReader>> Open(const std::filesystem::path& path);

  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  // Every tensor's name, sorted.
  std::vector<std::string> Names() const;
  bool Contains(const std::string& name) const { return tensors_.count(name) > 0; }
  // The tensor's shape; empty for a name not held (use Contains first).
  std::vector<int64_t> Shape(const std::string& name) const;

  // A fresh contiguous CPU tensor holding a copy of the named tensor, in its stored dtype.
  // NotFound for a name not held.
  absl::StatusOr<at::Tensor> Read(const std::string& name) const;

 private:
  struct File;
  struct Entry {
    const File* file;
    std::string dtype;
    std::vector<int64_t> shape;
    uint64_t begin;  // offsets into the file's mapping, after its header
    uint64_t end;
  };
  SafetensorsReader() = default;
  absl::Status AddFile(const std::filesystem::path& path);

  std::vector<std::unique_ptr<File>> files_;
  std::map<std::string, Entry> tensors_;
};

// Writes `tensors` (any device, any supported dtype, stored as they are) under `dir`, which is
// created when missing: one model.safetensors when their bytes total at most `shard_bytes`,
// else model-0000i-of-0000n.safetensors shards of at most `shard_bytes` each (a tensor larger
// than that gets a shard of its own) and model.safetensors.index.json. Weight files of an
// earlier write to `dir` (model.safetensors, its index, model-*-of-*.safetensors) are removed
// first. Internal naming the path when a write or removal fails; InvalidArgument for an
// unsupported dtype or a repeated name.
absl::Status WriteSafetensors(const std::filesystem::path& dir,
                              const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              int64_t shard_bytes = kDefaultShardBytes);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_HF_SAFETENSORS_H_
