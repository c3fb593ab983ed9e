#include "trainer_lib/hf/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

struct DType {
  const char* name;
  torch::ScalarType type;
};
constexpr DType kDTypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
    {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
    {"I16", torch::kInt16},    {"I8", torch::kInt8},     {"U8", torch::kUInt8},
    {"BOOL", torch::kBool},
};

const DType* DTypeNamed(const std::string& name) {
  for (const DType& d : kDTypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const DType* DTypeOf(torch::ScalarType type) {
  for (const DType& d : kDTypes) {
    if (type == d.type) return &d;
  }
  return nullptr;
}

absl::Status Corrupt(const fs::path& file, absl::string_view problem) {
  return absl::DataLossError(absl::StrCat(file.string(), ": ", problem));
}

absl::Status OsError(absl::string_view what, const fs::path& path) {
  return absl::InternalError(absl::StrCat(what, " ", path.string(), ": ", std::strerror(errno)));
}

absl::StatusOr<std::string> ReadText(const fs::path& path) {
  std::ifstream in(path);
  if (!in.is_open()) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes all of `data` to `out`, which names `path` in errors.
absl::Status WriteAll(std::FILE* out, const void* data, size_t size, const fs::path& path) {
  if (size > 0 && std::fwrite(data, 1, size, out) != size) return OsError("write", path);
  return absl::OkStatus();
}

absl::Status WriteFile(const fs::path& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const uint64_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", DTypeOf(t.scalar_type())->name},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  const uint64_t length = text.size();          // little-endian on every supported host

  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) return OsError("open", path);
  absl::Status status = WriteAll(out, &length, sizeof(length), path);
  if (status.ok()) status = WriteAll(out, text.data(), text.size(), path);
  for (const auto& [name, t] : tensors) {
    if (!status.ok()) break;
    const torch::Tensor cpu = t.detach().to(torch::kCPU).contiguous();
    status = WriteAll(out, cpu.data_ptr(), cpu.nbytes(), path);
  }
  if (std::fclose(out) != 0 && status.ok()) status = OsError("close", path);
  return status;
}

}  // namespace

// One mapped file: the whole of it, read-only, unmapped with the reader.
struct SafetensorsReader::File {
  fs::path path;
  const uint8_t* data = nullptr;  // the first byte after the header
  void* map = nullptr;
  size_t map_size = 0;
  ~File() {
    if (map != nullptr) ::munmap(map, map_size);
  }
};

SafetensorsReader::~SafetensorsReader() = default;

absl::StatusOr<std::unique_ptr<SafetensorsReader>> SafetensorsReader::Open(const fs::path& path) {
  std::unique_ptr<SafetensorsReader> reader(new SafetensorsReader);
  std::error_code error;
  if (!fs::is_directory(path, error)) {
    if (absl::Status s = reader->AddFile(path); !s.ok()) return s;
    return reader;
  }
  if (fs::exists(path / kSingleFile, error)) {
    if (absl::Status s = reader->AddFile(path / kSingleFile); !s.ok()) return s;
    return reader;
  }
  const fs::path index_path = path / kIndexFile;
  absl::StatusOr<std::string> text = ReadText(index_path);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat(path.string(), ": holds neither ", kSingleFile,
                                            " nor ", kIndexFile));
  }
  const json index = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
      !index["weight_map"].is_object()) {
    return Corrupt(index_path, "not a JSON object with a \"weight_map\" object");
  }
  std::set<std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) return Corrupt(index_path, absl::StrCat(name, ": not a file name"));
    shards.insert(file.get<std::string>());
  }
  for (const std::string& shard : shards) {
    if (absl::Status s = reader->AddFile(path / shard); !s.ok()) return s;
  }
  for (const auto& [name, file] : index["weight_map"].items()) {
    const std::string shard = file.get<std::string>();
    auto it = reader->tensors_.find(name);
    if (it == reader->tensors_.end() || it->second.file->path.filename().string() != shard) {
      return Corrupt(index_path, absl::StrCat(name, " is not in ", shard));
    }
  }
  return reader;
}

absl::Status SafetensorsReader::AddFile(const fs::path& path) {
  auto file = std::make_unique<File>();
  file->path = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path.string(), ": not found"));
    return OsError("open", path);
  }
  struct stat info = {};
  if (::fstat(fd, &info) != 0) {
    ::close(fd);
    return OsError("stat", path);
  }
  const uint64_t size = info.st_size;
  if (size < 8) {
    ::close(fd);
    return Corrupt(path, absl::StrCat("only ", size, " bytes, shorter than the header's length"));
  }
  file->map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file open
  if (file->map == MAP_FAILED) {
    file->map = nullptr;
    return OsError("mmap", path);
  }
  file->map_size = size;
  const auto* bytes = static_cast<const uint8_t*>(file->map);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes, sizeof(header_size));
  if (header_size > size - 8) {
    return Corrupt(path, absl::StrCat("header of ", header_size, " bytes, but the file has ",
                                      size, " (truncated?)"));
  }
  file->data = bytes + 8 + header_size;
  const uint64_t data_size = size - 8 - header_size;
  const json header = json::parse(bytes + 8, bytes + 8 + header_size, nullptr, false);
  if (header.is_discarded() || !header.is_object()) {
    return Corrupt(path, "the header is not a JSON object");
  }
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") continue;
    auto bad = [&](absl::string_view problem) { return Corrupt(path, absl::StrCat(name, ": ", problem)); };
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
        !value.contains("data_offsets")) {
      return bad("needs dtype, shape and data_offsets");
    }
    const json& dtype = value["dtype"];
    const DType* type = dtype.is_string() ? DTypeNamed(dtype.get<std::string>()) : nullptr;
    if (type == nullptr) return bad(absl::StrCat("unsupported dtype ", dtype.dump()));
    Entry entry{file.get(), type->name, {}, 0, 0};
    uint64_t numel = 1;
    for (const json& d : value["shape"]) {
      if (!d.is_number_unsigned()) return bad(absl::StrCat("bad shape ", value["shape"].dump()));
      entry.shape.push_back(d.get<int64_t>());
      numel *= d.get<uint64_t>();
    }
    const json& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      return bad(absl::StrCat("bad data_offsets ", offsets.dump()));
    }
    entry.begin = offsets[0].get<uint64_t>();
    entry.end = offsets[1].get<uint64_t>();
    if (entry.begin > entry.end || entry.end > data_size) {
      return bad(absl::StrCat("data_offsets ", offsets.dump(), " run past the ", data_size,
                              " data bytes (truncated?)"));
    }
    if (entry.end - entry.begin != numel * c10::elementSize(type->type)) {
      return bad(absl::StrCat(entry.end - entry.begin, " bytes for shape ",
                              value["shape"].dump(), " of ", type->name));
    }
    if (!tensors_.emplace(name, std::move(entry)).second) {
      return bad("held by two files");
    }
  }
  files_.push_back(std::move(file));
  return absl::OkStatus();
}

std::vector<std::string> SafetensorsReader::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, entry] : tensors_) names.push_back(name);
  return names;
}

std::vector<int64_t> SafetensorsReader::Shape(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? std::vector<int64_t>{} : it->second.shape;
}

absl::StatusOr<at::Tensor> SafetensorsReader::Read(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) return absl::NotFoundError(absl::StrCat("no tensor ", name));
  const Entry& e = it->second;
  torch::Tensor out = torch::empty(e.shape, torch::dtype(DTypeNamed(e.dtype)->type));
  // A copy, not a view of the mapping: offsets need not be aligned for the dtype.
  std::memcpy(out.data_ptr(), e.file->data + e.begin, e.end - e.begin);
  return out;
}

absl::Status WriteSafetensors(const fs::path& dir,
                              const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              int64_t shard_bytes) {
  std::set<std::string> names;
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> shards(1);
  int64_t shard_size = 0, total = 0;
  for (const auto& [name, t] : tensors) {
    if (DTypeOf(t.scalar_type()) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": dtype ", c10::toString(t.scalar_type()), " has no safetensors name"));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": given twice"));
    }
    const int64_t bytes = t.numel() * t.element_size();
    if (!shards.back().empty() && shard_size + bytes > shard_bytes) {
      shards.emplace_back();
      shard_size = 0;
    }
    shards.back().emplace_back(name, t);
    shard_size += bytes;
    total += bytes;
  }
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("mkdir ", dir.string(), ": ", error.message()));
  }
  // An earlier save's weights would be read beside these or instead of them (a single file
  // before an index, or shards of another count): removed first, as save_pretrained does.
  std::vector<fs::path> stale;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    const bool shard = absl::StartsWith(name, "model-") && absl::StrContains(name, "-of-") &&
                       absl::EndsWith(name, ".safetensors");
    if (name == kSingleFile || name == kIndexFile || shard) stale.push_back(entry.path());
  }
  for (const fs::path& path : stale) {
    if (fs::remove(path, error); error) {
      return absl::InternalError(absl::StrCat("remove ", path.string(), ": ", error.message()));
    }
  }
  if (shards.size() == 1) return WriteFile(dir / kSingleFile, shards[0]);

  json weight_map = json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file =
        absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, shards.size());
    if (absl::Status s = WriteFile(dir / file, shards[i]); !s.ok()) return s;
    for (const auto& [name, t] : shards[i]) weight_map[name] = file;
  }
  const json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const fs::path index_path = dir / kIndexFile;
  std::ofstream out(index_path);
  out << index.dump(2) << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("write ", index_path.string(), " failed"));
  return absl::OkStatus();
}

}  // namespace ablate::train
