// Torch archives on disk with errors a user can act on. LibTorch's own file writer throws a
// message without the OS error ("file write failed"), so a full disk looked like a crash;
// these write through a descriptor and report errno with the path.
//
// Stateless; safe from any thread for distinct paths.
#ifndef ABLATE_TRAINER_LIB_STATE_ARCHIVE_FILE_H_
#define ABLATE_TRAINER_LIB_STATE_ARCHIVE_FILE_H_

#include <filesystem>
#include <string>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ablate::train {

// The Status for OS error `error` while doing `what` to `path`: "write PATH: no space left on
// device". ResourceExhausted when the disk or a quota or file-size limit is full (ENOSPC,
// EDQUOT, EFBIG), since retrying cannot help; Internal otherwise.
absl::Status FileError(absl::string_view what, const std::filesystem::path& path, int error);

// Creates (or truncates) `path` and writes `archive` into it. Errors as FileError.
absl::Status WriteArchive(torch::serialize::OutputArchive& archive,
                          const std::filesystem::path& path);

// Loads `path` into `archive` with tensors on `device`. DataLoss naming the file when it is
// not a torch archive.
absl::Status ReadArchive(const std::filesystem::path& path, const torch::Device& device,
                         torch::serialize::InputArchive& archive);

// Writes `text` to `path` (created or truncated). Errors as FileError.
absl::Status WriteTextFile(const std::filesystem::path& path, absl::string_view text);

// The whole of `path`. FileError("read", ...) when it cannot be read.
absl::Status ReadTextFile(const std::filesystem::path& path, std::string& text);

// fsync of a file or a folder, so that a rename never publishes data still in the page cache.
absl::Status SyncPath(const std::filesystem::path& path, bool directory);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_STATE_ARCHIVE_FILE_H_
