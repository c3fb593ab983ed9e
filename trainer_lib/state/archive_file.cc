#include "trainer_lib/state/archive_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;

// A file opened for writing that records the first OS error instead of throwing it.
class FileWriter {
 public:
  explicit FileWriter(const fs::path& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)),
        error_(fd_ < 0 ? errno : 0) {}
  ~FileWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  // Writes all of [data, data + size) or records why not; returns the bytes written.
  size_t Write(const void* data, size_t size) {
    const char* at = static_cast<const char*>(data);
    size_t done = 0;
    while (error_ == 0 && done < size) {
      const ssize_t n = ::write(fd_, at + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = n < 0 ? errno : EIO;
        break;
      }
      done += static_cast<size_t>(n);
    }
    return done;
  }

  // 0, or the first error of open, write or close.
  int Close() {
    if (fd_ >= 0 && ::close(fd_) != 0 && error_ == 0) error_ = errno;
    fd_ = -1;
    return error_;
  }

  int error() const { return error_; }

 private:
  int fd_;
  int error_;
};

}  // namespace

absl::Status FileError(absl::string_view what, const fs::path& path, int error) {
  std::string reason = std::strerror(error);
  if (!reason.empty()) reason[0] = absl::ascii_tolower(static_cast<unsigned char>(reason[0]));
  const std::string message = absl::StrCat(what, " ", path.string(), ": ", reason);
  if (error == ENOSPC || error == EDQUOT || error == EFBIG) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

absl::Status WriteArchive(torch::serialize::OutputArchive& archive, const fs::path& path) {
  FileWriter file(path);
  if (file.error() != 0) return FileError("create", path, file.error());
  try {
    // The writer always hears that every byte was written: told of a short write, LibTorch
    // throws, and then throws again from its writer's destructor, which ends the process.
    // FileWriter keeps the first error and stops writing instead.
    archive.save_to([&file](const void* data, size_t size) {
      file.Write(data, size);
      return size;
    });
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("write ", path.string(), ": ", e.what_without_backtrace()));
  }
  if (const int error = file.Close(); error != 0) return FileError("write", path, error);
  return absl::OkStatus();
}

absl::Status ReadArchive(const fs::path& path, const torch::Device& device,
                         torch::serialize::InputArchive& archive) {
  try {
    archive.load_from(path.string(), device);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    return absl::DataLossError(absl::StrCat(path.string(), " is not a readable archive: ",
                                            what.substr(0, what.find('\n'))));
  }
  return absl::OkStatus();
}

absl::Status WriteTextFile(const fs::path& path, absl::string_view text) {
  FileWriter file(path);
  if (file.error() != 0) return FileError("create", path, file.error());
  file.Write(text.data(), text.size());
  if (const int error = file.Close(); error != 0) return FileError("write", path, error);
  return absl::OkStatus();
}

absl::Status ReadTextFile(const fs::path& path, std::string& text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FileError("read", path, errno != 0 ? errno : ENOENT);
  std::ostringstream out;
  out << in.rdbuf();
  text = out.str();
  return absl::OkStatus();
}

absl::Status SyncPath(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0 || ::fsync(fd) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return FileError("fsync", path, error);
  }
  ::close(fd);
  return absl::OkStatus();
}

}  // namespace ablate::train
