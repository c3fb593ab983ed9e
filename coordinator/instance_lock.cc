#include "coordinator/instance_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace ablate::coordinator {
namespace {

std::string HostName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "unknown";
  return host;
}

// What the holder wrote into the file, on one line.
std::string ReadHolder(int fd) {
  char buffer[512] = {};
  const ssize_t n = pread(fd, buffer, sizeof(buffer) - 1, 0);
  if (n <= 0) return "pid unknown: it has not written the file yet";
  return std::string(absl::StripAsciiWhitespace(absl::string_view(buffer, static_cast<size_t>(n))));
}

}  // namespace

absl::StatusOr<std::unique_ptr<InstanceLock>> InstanceLock::Acquire(const std::string& db_path) {
  if (db_path == ":memory:") return nullptr;
  std::string path = absl::StrCat(db_path, ".lock");
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    std::string holder = ReadHolder(fd);
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("database ", db_path, " is in use by another coordinator (", holder,
                       "); stop it first, or give this one another --db"));
    }
    return absl::InternalError(absl::StrCat("cannot lock ", path, ": ", std::strerror(error)));
  }
  std::unique_ptr<InstanceLock> lock(new InstanceLock(std::move(path), fd));
  if (absl::Status s = lock->Write(absl::StrCat("pid=", getpid(), " host=", HostName())); !s.ok()) {
    return s;
  }
  return lock;
}

InstanceLock::~InstanceLock() {
  // Emptied first, so a reader between unlock and the next holder's write sees no stale pid.
  if (ftruncate(fd_, 0) != 0) {
    ABLATE_LOG(WARNING) << "cannot empty lock file path=" << path_ << " error=\""
                        << std::strerror(errno) << "\"";
  }
  close(fd_);  // the lock goes with the descriptor
}

absl::Status InstanceLock::Describe(int grpc_port, int http_port) {
  return Write(absl::StrCat("pid=", getpid(), " host=", HostName(), " grpc=", grpc_port,
                            " http=", http_port));
}

absl::Status InstanceLock::Write(const std::string& text) {
  const std::string line = text + "\n";
  if (ftruncate(fd_, 0) != 0 ||
      pwrite(fd_, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
    return absl::InternalError(absl::StrCat("cannot write ", path_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace ablate::coordinator
