#include "worker/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

#include <cerrno>
#include <system_error>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

extern char** environ;

namespace ablate::worker {
namespace {

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

absl::Status ErrnoError(const std::string& what, int error) {
  return absl::InternalError(
      absl::StrCat(what, ": ", std::error_code(error, std::generic_category()).message()));
}

absl::StatusOr<UniqueFd> AboveEventsFd(int fd) {
  if (fd < 0) return ErrnoError("cannot open a descriptor for the trainer", errno);
  UniqueFd owned(fd);
  if (fd > kEventsFd) return owned;
  UniqueFd moved(fcntl(fd, F_DUPFD_CLOEXEC, kEventsFd + 1));
  if (!moved.valid()) return ErrnoError("cannot move a descriptor", errno);
  return moved;
}

std::vector<std::string> ChildEnvironment(const std::vector<v1::Slot>& slots) {
  std::vector<std::string> cuda;
  for (const v1::Slot& slot : slots) {
    if (slot.kind() == v1::DEVICE_KIND_CUDA) cuda.push_back(absl::StrCat(slot.index()));
  }
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const absl::string_view var(*entry);
    if (!cuda.empty() && (absl::StartsWith(var, "CUDA_VISIBLE_DEVICES=") ||
                          absl::StartsWith(var, "CUDA_DEVICE_ORDER="))) {
      continue;
    }
    env.emplace_back(var);
  }
  if (!cuda.empty()) {
    env.push_back("CUDA_DEVICE_ORDER=PCI_BUS_ID");
    env.push_back(absl::StrCat("CUDA_VISIBLE_DEVICES=", absl::StrJoin(cuda, ",")));
  }
  return env;
}

absl::StatusOr<pid_t> SpawnInOwnGroup(const std::string& path, std::vector<std::string> argv,
                                      std::vector<std::string> env, const ChildFds& fds) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  absl::Cleanup destroy = [&] {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  };
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  int rc = posix_spawn_file_actions_adddup2(&actions, fds.stdin_fd, 0);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, fds.output_fd, 1);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, fds.output_fd, 2);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, fds.events_fd, kEventsFd);
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, kEventsFd + 1);
  if (rc == 0) {
    rc = posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  if (rc == 0) rc = posix_spawnattr_setpgroup(&attr, 0);  // a group of its own
  // The worker blocks SIGTERM and SIGINT to wait for them; a child must not inherit that.
  if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &empty);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (rc != 0) return ErrnoError(absl::StrCat("cannot prepare to run ", path), rc);
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  pid_t pid = 0;
  rc = posix_spawn(&pid, path.c_str(), &actions, &attr, c_argv.data(), c_env.data());
  if (rc != 0) return ErrnoError(absl::StrCat("cannot run ", path), rc);
  return pid;
}

}  // namespace ablate::worker
