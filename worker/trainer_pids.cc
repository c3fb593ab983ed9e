#include "worker/trainer_pids.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "worker/unique_fd.h"

namespace ablate::worker {
namespace {

constexpr char kPidDir[] = "trainer-pids";

struct ProcStat {
  pid_t pgrp = 0;
  uint64_t start = 0;
};

// Fields 5 (pgrp) and 22 (starttime) of /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from the last ')'.
std::optional<ProcStat> ReadProcStat(pid_t pid) {
  std::ifstream file(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(file, line)) return std::nullopt;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(line).substr(paren + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state).
  ProcStat stat;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[2], &stat.pgrp) ||
      !absl::SimpleAtoi(fields[19], &stat.start)) {
    return std::nullopt;
  }
  return stat;
}

// The processes of group `pgrp` that started at or after `start`; none when a process holds the
// pid `pgrp` with another start time (see the header).
std::vector<pid_t> LeftoverGroup(pid_t pgrp, uint64_t start) {
  std::vector<pid_t> found;
  if (std::optional<ProcStat> leader = ReadProcStat(pgrp);
      leader.has_value() && leader->start != start) {
    return found;
  }
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::optional<ProcStat> stat = ReadProcStat(pid);
    if (stat.has_value() && stat->pgrp == pgrp && stat->start >= start) found.push_back(pid);
  }
  return found;
}

// A pidfd for `pid` once it is checked to be the same process as found (pgrp and start time
// read after the pidfd pins it), or an invalid one.
UniqueFd PinProcess(pid_t pid, pid_t pgrp, uint64_t start) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return pidfd;
  std::optional<ProcStat> stat = ReadProcStat(pid);
  if (!stat.has_value() || stat->pgrp != pgrp || stat->start < start) return UniqueFd();
  return pidfd;
}

bool WaitForExit(int pidfd, absl::Time deadline) {
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd fd = {pidfd, POLLIN, 0};
    const int n = poll(
        &fd, 1, static_cast<int>(std::min<int64_t>(INT_MAX, absl::ToInt64Milliseconds(left) + 1)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

std::filesystem::path PidFilePath(const std::filesystem::path& work_dir, uint64_t attempt_id) {
  return work_dir / kPidDir / absl::StrCat("attempt-", attempt_id, ".pid");
}

absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid) {
  std::optional<ProcStat> stat = ReadProcStat(pid);
  if (!stat.has_value()) return absl::NotFoundError(absl::StrCat("no process ", pid));
  return stat->start;
}

absl::Status WritePidFile(const std::filesystem::path& work_dir, uint64_t attempt_id, pid_t pid) {
  absl::StatusOr<uint64_t> start = ProcessStartTime(pid);
  if (!start.ok()) return start.status();
  const std::filesystem::path path = PidFilePath(work_dir, attempt_id);
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  std::ofstream out(path, std::ios::trunc);
  out << pid << ' ' << *start << '\n';
  out.close();
  if (error || !out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

void RemovePidFile(const std::filesystem::path& work_dir, uint64_t attempt_id) {
  std::error_code error;
  std::filesystem::remove(PidFilePath(work_dir, attempt_id), error);
}

int StopLeftoverTrainers(const std::filesystem::path& work_dir, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<UniqueFd> killed;
  std::vector<std::filesystem::path> records;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(work_dir / kPidDir, error)) {
    records.push_back(entry.path());
    std::ifstream file(entry.path());
    pid_t pgrp = 0;
    uint64_t start = 0;
    if (!(file >> pgrp >> start) || pgrp <= 1) {
      ABLATE_LOG(WARNING) << "unreadable trainer pid file path=" << entry.path().string();
      continue;
    }
    for (const pid_t pid : LeftoverGroup(pgrp, start)) {
      UniqueFd pidfd = PinProcess(pid, pgrp, start);
      if (!pidfd.valid()) continue;
      if (syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0) continue;
      ABLATE_LOG(WARNING) << "killed a trainer process left by an earlier worker pid=" << pid
                          << " trainer_pid=" << pgrp << " file=" << entry.path().filename();
      killed.push_back(std::move(pidfd));
    }
  }
  for (const UniqueFd& pidfd : killed) {
    if (!WaitForExit(pidfd.get(), deadline)) {
      ABLATE_LOG(ERROR) << "a leftover trainer process outlived SIGKILL timeout="
                        << absl::FormatDuration(timeout);
    }
  }
  for (const auto& path : records) std::filesystem::remove(path, error);
  return static_cast<int>(killed.size());
}

}  // namespace ablate::worker
