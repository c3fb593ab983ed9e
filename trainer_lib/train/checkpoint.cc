#include "trainer_lib/train/checkpoint.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/remove_tree.h"
#include "trainer_lib/state/archive_file.h"
#include "trainer_lib/state/digest.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kStepPrefix = "step-";
constexpr absl::string_view kTempPrefix = ".tmp-";
constexpr char kManifest[] = "MANIFEST";
constexpr char kCorruptSuffix[] = ".corrupt";

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

absl::Status FsError(absl::string_view what, const fs::path& path, const std::error_code& error) {
  return FileError(what, path, error.value());
}

// Step folders under `dir`, newest first.
absl::StatusOr<std::vector<std::pair<int64_t, fs::path>>> StepFolders(const fs::path& dir) {
  std::error_code error;
  std::vector<std::pair<int64_t, fs::path>> steps;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    if (std::optional<int64_t> step = StepOf(entry.path()); step.has_value()) {
      steps.emplace_back(*step, entry.path());
    }
  }
  if (error && error != std::errc::no_such_file_or_directory) return FsError("list", dir, error);
  std::sort(steps.begin(), steps.end(), [](const auto& a, const auto& b) { return a > b; });
  return steps;
}

// Flushes every file of `folder` and writes its MANIFEST: "<sha256> <bytes> <name>" lines.
absl::Status SealFolder(const fs::path& folder) {
  std::error_code error;
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder, error)) {
    files.push_back(entry.path());
  }
  if (error) return FsError("list", folder, error);
  std::sort(files.begin(), files.end());
  std::string manifest;
  for (const fs::path& file : files) {
    if (absl::Status s = SyncPath(file, false); !s.ok()) return s;
    absl::StatusOr<FileDigest> digest = DigestFile(file);
    if (!digest.ok()) return digest.status();
    absl::StrAppend(&manifest, digest->sha256, " ", digest->size, " ",
                    file.filename().string(), "\n");
  }
  if (absl::Status s = WriteTextFile(folder / kManifest, manifest); !s.ok()) return s;
  if (absl::Status s = SyncPath(folder / kManifest, false); !s.ok()) return s;
  return SyncPath(folder, true);
}

// OK when every file the MANIFEST lists is there with its size and digest; DataLoss saying
// which is not otherwise.
absl::Status VerifyFolder(const fs::path& folder) {
  std::string manifest;
  if (!ReadTextFile(folder / kManifest, manifest).ok()) {
    return absl::DataLossError("no MANIFEST (an incomplete write)");
  }
  for (absl::string_view line : absl::StrSplit(manifest, '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    uint64_t size = 0;
    if (fields.size() != 3 || !absl::SimpleAtoi(fields[1], &size)) {
      return absl::DataLossError(absl::StrCat("MANIFEST line '", line, "' is malformed"));
    }
    absl::StatusOr<FileDigest> digest = DigestFile(folder / fields[2]);
    if (!digest.ok()) return absl::DataLossError(absl::StrCat(fields[2], " is missing"));
    if (digest->size != size) {
      return absl::DataLossError(absl::StrCat(fields[2], " has ", digest->size,
                                              " bytes, MANIFEST says ", size));
    }
    if (digest->sha256 != fields[0]) {
      return absl::DataLossError(absl::StrCat(fields[2], " does not match its SHA-256"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<fs::path> CheckpointDir::Save(int64_t step, const std::vector<Stateful*>& pieces) {
  std::error_code error;
  const fs::path temp = dir_ / absl::StrCat(kTempPrefix, StepName(step));
  const fs::path final_path = dir_ / StepName(step);
  if (fs::exists(final_path, error)) return final_path;  // complete, by invariant 1
  RemoveTree(temp);  // a leftover of a crash while writing this same step
  if (!fs::create_directories(temp, error) && error) return FsError("mkdir", temp, error);

  absl::Status written = absl::OkStatus();
  for (Stateful* piece : pieces) {
    written = piece->Save(temp);
    if (!written.ok()) break;
  }
  if (written.ok()) written = SealFolder(temp);
  if (written.ok()) {
    fs::rename(temp, final_path, error);
    if (error) written = FsError("rename into", final_path, error);
  }
  if (!written.ok()) {
    RemoveTree(temp);  // frees what a full disk took; the older checkpoints stay
    return written;
  }
  if (absl::Status s = SyncPath(dir_, true); !s.ok()) return s;
  if (absl::Status s = Prune(final_path); !s.ok()) return s;
  return final_path;
}

absl::Status CheckpointDir::Prune(const fs::path& newest) {
  absl::StatusOr<std::vector<std::pair<int64_t, fs::path>>> steps = StepFolders(dir_);
  if (!steps.ok()) return steps.status();
  std::vector<fs::path> stale;
  int kept = 0;
  for (const auto& [step, path] : *steps) {
    if (path == newest || kept < keep_) {
      ++kept;
      continue;
    }
    stale.push_back(path);
  }
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_, error)) {
    if (absl::StartsWith(entry.path().filename().string(), kTempPrefix)) stale.push_back(entry);
  }
  for (const fs::path& path : stale) RemoveTree(path);
  return absl::OkStatus();
}

absl::StatusOr<fs::path> CheckpointDir::NewestComplete() const {
  absl::StatusOr<std::vector<std::pair<int64_t, fs::path>>> steps = StepFolders(dir_);
  if (!steps.ok()) return steps.status();
  for (const auto& [step, path] : *steps) {
    if (VerifyFolder(path).ok()) return path;
  }
  return absl::NotFoundError(absl::StrCat("no complete checkpoint in ", dir_.string()));
}

absl::StatusOr<std::optional<CheckpointDir::Loaded>> CheckpointDir::LoadLatest(
    const std::vector<Stateful*>& pieces, std::vector<std::string>& skipped) {
  absl::StatusOr<std::vector<std::pair<int64_t, fs::path>>> steps = StepFolders(dir_);
  if (!steps.ok()) return steps.status();
  for (const auto& [step, path] : *steps) {
    if (absl::Status verified = VerifyFolder(path); !verified.ok()) {
      // A name no earlier set-aside holds: renaming onto one fails, and the next save of this
      // step would then replace the folder, losing what the message says was kept.
      fs::path aside = path.string() + kCorruptSuffix;
      for (int n = 2; fs::exists(aside); ++n) {
        aside = absl::StrCat(path.string(), kCorruptSuffix, "-", n);
      }
      std::error_code error;
      fs::rename(path, aside, error);
      skipped.push_back(absl::StrCat(
          "checkpoint ", path.string(), " is unreadable (", verified.message(), "); ",
          error ? absl::StrCat("could not be moved aside (", error.message(), "), left in place")
                : absl::StrCat("moved to ", aside.string())));
      continue;
    }
    for (Stateful* piece : pieces) {
      if (absl::Status s = piece->Load(path); !s.ok()) return s;
    }
    return Loaded{step, path};
  }
  return std::nullopt;
}

}  // namespace ablate::train
