#include "trainer_lib/train/checkpoint.h"

#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kStepPrefix = "step-";
constexpr absl::string_view kTempPrefix = ".tmp-";
constexpr char kFile[] = "checkpoint.pt";

std::string StepName(int64_t step) { return absl::StrFormat("step-%08d", step); }

// The step of a folder named step-N, if it is one.
std::optional<int64_t> StepOf(const fs::path& path) {
  const std::string name = path.filename().string();
  int64_t step = 0;
  if (!absl::StartsWith(name, kStepPrefix) ||
      !absl::SimpleAtoi(absl::string_view(name).substr(kStepPrefix.size()), &step)) {
    return std::nullopt;
  }
  return step;
}

// fsync of a file or a folder, so that a rename never publishes data still in the page cache.
absl::Status Sync(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | (directory ? O_DIRECTORY : 0));
  if (fd < 0 || ::fsync(fd) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return absl::InternalError(absl::StrCat("fsync ", path.string(), ": ", std::strerror(error)));
  }
  ::close(fd);
  return absl::OkStatus();
}

// Removes a folder and all it holds; a missing one is fine. Not std::filesystem::remove_all:
// LibTorch's CUDA build (2.11) exports a copy of it that programs linking LibTorch call
// instead of libstdc++'s, and that copy jumps to a null address.
void RemoveTree(const fs::path& path) {
  ::nftw(
      path.c_str(), [](const char* entry, const struct stat*, int, struct FTW*) {
        return std::remove(entry);
      },
      /*nopenfd=*/16, FTW_DEPTH | FTW_PHYS);
}

absl::Status FsError(absl::string_view what, const fs::path& path,
                     const std::error_code& error) {
  return absl::InternalError(absl::StrCat(what, " ", path.string(), ": ", error.message()));
}

// The newest step-N folder under `dir`; none when `dir` is missing or holds none.
absl::StatusOr<std::optional<int64_t>> NewestStep(const fs::path& dir) {
  std::error_code error;
  std::optional<int64_t> latest;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    std::optional<int64_t> step = StepOf(entry.path());
    if (step.has_value() && (!latest.has_value() || *step > *latest)) latest = step;
  }
  if (error && error != std::errc::no_such_file_or_directory) return FsError("list", dir, error);
  return latest;
}

std::string FirstLine(absl::string_view text) {
  return std::string(text.substr(0, text.find('\n')));
}

}  // namespace

absl::StatusOr<fs::path> SaveCheckpoint(const fs::path& dir, int64_t step,
                                        torch::nn::Module& model,
                                        torch::optim::Optimizer& optimizer) {
  std::error_code error;
  const fs::path temp = dir / absl::StrCat(kTempPrefix, StepName(step));
  const fs::path final_path = dir / StepName(step);
  if (fs::exists(final_path, error)) return final_path;  // complete, by invariant 1
  RemoveTree(temp);  // a leftover of a crash while writing this same step
  if (!fs::create_directories(temp, error) && error) return FsError("mkdir", temp, error);

  torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
  model.save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("step", torch::tensor(step));
  archive.save_to((temp / kFile).string());
  if (absl::Status s = Sync(temp / kFile, false); !s.ok()) return s;
  if (absl::Status s = Sync(temp, true); !s.ok()) return s;

  fs::rename(temp, final_path, error);
  if (error) return FsError("rename into", final_path, error);
  if (absl::Status s = Sync(dir, true); !s.ok()) return s;

  std::vector<fs::path> stale;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.path() != final_path &&
        (StepOf(entry.path()).has_value() || absl::StartsWith(name, kTempPrefix))) {
      stale.push_back(entry.path());
    }
  }
  for (const fs::path& path : stale) RemoveTree(path);
  return final_path;
}

absl::StatusOr<int64_t> LoadLatestCheckpoint(const fs::path& dir, torch::nn::Module& model,
                                             torch::optim::Optimizer& optimizer,
                                             const torch::Device& device) {
  absl::StatusOr<std::optional<int64_t>> latest = NewestStep(dir);
  if (!latest.ok()) return latest.status();
  if (!latest->has_value()) return 0;

  const fs::path file = dir / StepName(**latest) / kFile;
  try {
    torch::serialize::InputArchive archive, model_archive, optimizer_archive;
    archive.load_from(file.string(), device);
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    torch::Tensor step;
    archive.read("step", step);
    model.load(model_archive);
    optimizer.load(optimizer_archive);
    return step.item<int64_t>();
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("checkpoint ", file.string(), " does not load: ",
                                            e.what_without_backtrace()));
  }
}

absl::StatusOr<int64_t> LoadCheckpointModel(const fs::path& dir, torch::nn::Module& model) {
  fs::path folder = dir.lexically_normal();
  if (!folder.has_filename()) folder = folder.parent_path();  // "step-N/"
  if (!StepOf(folder).has_value()) {
    absl::StatusOr<std::optional<int64_t>> latest = NewestStep(dir);
    if (!latest.ok()) return latest.status();
    if (!latest->has_value()) {
      return absl::NotFoundError(absl::StrCat(dir.string(), ": no checkpoint (step-N folder)"));
    }
    folder = dir / StepName(**latest);
  }
  const fs::path file = folder / kFile;
  try {
    torch::serialize::InputArchive archive, model_archive;
    archive.load_from(file.string(), torch::kCPU);
    archive.read("model", model_archive);
    torch::Tensor step;
    archive.read("step", step);
    model.load(model_archive);
    return step.item<int64_t>();
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("checkpoint ", file.string(), " does not load: ",
                                            FirstLine(e.what_without_backtrace())));
  }
}

}  // namespace ablate::train
