#include "worker/trainer_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <fstream>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/event_pipe.h"
#include "common/log.h"
#include "google/protobuf/util/json_util.h"
#include "worker/log_tail.h"
#include "worker/spawn.h"
#include "worker/trainer_pids.h"

namespace ablate::worker {
namespace {

constexpr char kJobFile[] = "job.json";
constexpr char kLogFile[] = "trainer.log";
// What a reason quotes of trainer.log: enough to name the error, short enough for one line.
constexpr size_t kLogTailLines = 3;
constexpr size_t kLogTailBytes = 300;

// A job id becomes one path component: it must not be empty, climb, or nest.
bool IsPathComponent(std::string_view id) {
  return !id.empty() && id != "." && id != ".." && id.find('/') == std::string_view::npos &&
         id.find('\0') == std::string_view::npos;
}

absl::Status WriteJobFile(const std::filesystem::path& path, const v1::JobSpec& job) {
  google::protobuf::util::JsonPrintOptions json;
  json.add_whitespace = true;
  json.preserve_proto_field_names = true;
  std::string text;
  if (auto status = google::protobuf::util::MessageToJsonString(job, &text, json); !status.ok()) {
    return absl::InternalError(absl::StrCat("cannot encode the job spec: ", status.ToString()));
  }
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return ErrnoError(absl::StrCat("cannot write ", path.string()), errno);
  return absl::OkStatus();
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev == nullptr ? "unknown" : absl::StrCat("SIG", abbrev);
}

void DrainToEof(int fd) {
  char buffer[4096];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n == 0 || (n < 0 && errno != EINTR)) return;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TrainerProcess>> TrainerProcess::Start(
    const TrainerOptions& options, const v1::JobSpec& job, uint64_t attempt_id,
    const std::vector<v1::Slot>& slots, EventCallback on_event, ExitCallback on_exit) {
  if (!IsPathComponent(job.job_id())) {
    return absl::InvalidArgumentError(
        absl::StrCat("job_id \"", job.job_id(), "\" cannot name a directory"));
  }
  std::filesystem::path dir =
      options.work_dir / job.job_id() / absl::StrCat("attempt-", attempt_id);
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", error.message()));
  }

  v1::JobSpec spec = job;
  if (spec.config().cpu_threads() == 0) {
    const uint32_t slot_count = std::max<uint32_t>(1, static_cast<uint32_t>(slots.size()));
    spec.mutable_config()->set_cpu_threads(options.cpu_threads_per_slot * slot_count);
  }
  const std::filesystem::path job_file = dir / kJobFile;
  if (absl::Status status = WriteJobFile(job_file, spec); !status.ok()) return status;

  const std::string log_path = (dir / kLogFile).string();
  absl::StatusOr<UniqueFd> log =
      AboveEventsFd(open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!log.ok()) return log.status();
  absl::StatusOr<UniqueFd> devnull = AboveEventsFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull.ok()) return devnull.status();
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoError("cannot create the event pipe", errno);
  UniqueFd read_end(pipe_fds[0]);
  absl::StatusOr<UniqueFd> write_end = AboveEventsFd(pipe_fds[1]);
  if (!write_end.ok()) return write_end.status();
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return ErrnoError("cannot create an eventfd", errno);

  absl::StatusOr<pid_t> pid =
      SpawnInOwnGroup(options.trainer_path,
                      {options.trainer_path, "train", "--job", job_file.string(), "--events-fd",
                       absl::StrCat(kEventsFd)},
                      ChildEnvironment(slots), {devnull->get(), log->get(), write_end->get()});
  if (!pid.ok()) return pid.status();
  write_end->Reset();  // the child holds the only write end, so its exit ends the stream

  // Through syscall(): glibc 2.36 declares pidfd_open without C linkage for C++.
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, *pid, 0)));
  if (!pidfd.valid()) {
    const int saved = errno;
    kill(-*pid, SIGKILL);
    waitpid(*pid, nullptr, 0);
    return ErrnoError("cannot watch the trainer's process", saved);
  }
  // A safety net for a restarted worker (trainer_pids.h); the death signal already covers
  // the trainer itself, so the attempt goes on without it.
  if (absl::Status recorded = WritePidFile(options.work_dir, attempt_id, *pid); !recorded.ok()) {
    ABLATE_LOG(WARNING) << "trainer not recorded job_id=" << job.job_id()
                        << " attempt_id=" << attempt_id << " error=\"" << recorded.message()
                        << "\"";
  }
  ABLATE_LOG(INFO) << "trainer started job_id=" << job.job_id() << " attempt_id=" << attempt_id
                   << " pid=" << *pid << " dir=" << dir.string();
  return std::unique_ptr<TrainerProcess>(new TrainerProcess(
      job, attempt_id, options.work_dir, std::move(dir), *pid, std::move(pidfd),
      std::move(read_end), std::move(wake), std::move(on_event), std::move(on_exit)));
}

TrainerProcess::TrainerProcess(const v1::JobSpec& job, uint64_t attempt_id,
                               std::filesystem::path work_dir, std::filesystem::path attempt_dir,
                               pid_t pid, UniqueFd pidfd,
                               UniqueFd events, UniqueFd wake, EventCallback on_event,
                               ExitCallback on_exit)
    : job_id_(job.job_id()),
      attempt_id_(attempt_id),
      work_dir_(std::move(work_dir)),
      attempt_dir_(std::move(attempt_dir)),
      pid_(pid),
      pidfd_(std::move(pidfd)),
      events_(std::move(events)),
      wake_(std::move(wake)),
      on_event_(std::move(on_event)),
      on_exit_(std::move(on_exit)) {
  reader_ = std::thread(&TrainerProcess::ReadEvents, this);
  supervisor_ = std::thread(&TrainerProcess::Supervise, this);
}

TrainerProcess::~TrainerProcess() {
  Stop(kDefaultStopGrace, "stopped");
  supervisor_.join();
}

void TrainerProcess::Stop(absl::Duration grace, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (reaped_ || stop_reason_.has_value()) return;
  stop_reason_ = reason;
  stop_grace_ = grace;
  kill_deadline_ = absl::Now() + grace;
  kill(-pid_, SIGTERM);
  const uint64_t one = 1;
  if (write(wake_.get(), &one, sizeof(one)) < 0) {
    ABLATE_LOG(ERROR) << "cannot wake the trainer supervisor pid=" << pid_;
  }
}

std::optional<v1::AttemptEnded> TrainerProcess::WaitForExit(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(
      absl::Condition(
          +[](std::optional<v1::AttemptEnded>* ended) { return ended->has_value(); }, &ended_),
      timeout);
  return ended_;
}

void TrainerProcess::ReadEvents() {
  EventReader reader(events_.get());
  while (true) {
    absl::StatusOr<std::optional<v1::TrainerEvent>> next = reader.Next();
    if (!next.ok()) {
      ABLATE_LOG(WARNING) << "unreadable trainer events job_id=" << job_id_
                          << " attempt_id=" << attempt_id_ << " error=" << next.status();
      // Keep the pipe open and empty so the trainer neither blocks nor dies of SIGPIPE.
      DrainToEof(events_.get());
      return;
    }
    if (!next->has_value()) return;
    const v1::TrainerEvent& event = **next;
    if (event.has_finished()) {
      absl::MutexLock lock(&mu_);
      finished_ = event.finished();
    }
    on_event_(event);
  }
}

void TrainerProcess::Supervise() {
  while (true) {
    int timeout_ms = -1;
    {
      absl::MutexLock lock(&mu_);
      if (kill_deadline_.has_value() && !killed_) {
        const absl::Duration left = *kill_deadline_ - absl::Now();
        if (left <= absl::ZeroDuration()) {
          killed_ = true;
          kill(-pid_, SIGKILL);
        } else {
          timeout_ms = static_cast<int>(std::min<int64_t>(
              INT_MAX, absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)))));
        }
      }
    }
    pollfd fds[2] = {{pidfd_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    const int n = poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) {
      ABLATE_LOG(ERROR) << "poll failed while supervising pid=" << pid_ << " errno=" << errno;
      // Without poll no deadline can be kept; still wait for the exit before going on.
      siginfo_t info;
      while (waitid(P_PID, pid_, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
      }
      break;
    }
    if (n > 0 && fds[0].revents != 0) break;
    if (n > 0 && fds[1].revents != 0) {
      uint64_t count = 0;  // only resets the eventfd: the deadline is read under the lock above
      if (read(wake_.get(), &count, sizeof(count)) < 0 && errno != EAGAIN && errno != EINTR) {
        ABLATE_LOG(ERROR) << "cannot read the supervisor's eventfd pid=" << pid_;
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    // Until reaped, the exited child is a zombie that keeps its group id ours, so this reaches
    // only what the trainer left behind, which could otherwise hold the event pipe open.
    kill(-pid_, SIGKILL);
    reaped_ = true;
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  RemovePidFile(work_dir_, attempt_id_);  // its whole group is gone
  reader_.join();
  v1::AttemptEnded ended = Outcome(status);
  ABLATE_LOG(INFO) << "trainer ended job_id=" << job_id_ << " attempt_id=" << attempt_id_
                   << " pid=" << pid_ << " succeeded=" << ended.succeeded() << " reason=\""
                   << ended.exit().reason() << "\"";
  on_exit_(ended);
  absl::MutexLock lock(&mu_);
  ended_ = std::move(ended);
}

v1::AttemptEnded TrainerProcess::Outcome(int wait_status) {
  std::optional<std::string> stop_reason;
  std::optional<v1::TrainerFinished> finished;
  bool killed = false;
  absl::Duration grace;
  {
    absl::MutexLock lock(&mu_);
    stop_reason = stop_reason_;
    finished = finished_;
    killed = killed_;
    grace = stop_grace_;
  }
  v1::AttemptEnded ended;
  ended.set_job_id(job_id_);
  ended.set_attempt_id(attempt_id_);
  v1::ExitStatus& exit = *ended.mutable_exit();
  std::string what;
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    exit.set_exit_code(-1);
    exit.set_signal(sig);
    what = absl::StrCat("killed by signal ", sig, " (", SignalName(sig), ")");
  } else {
    exit.set_exit_code(WEXITSTATUS(wait_status));
    what = absl::StrCat("exited with code ", exit.exit_code());
  }
  const bool clean = exit.exit_code() == 0 && finished.has_value() && finished->ok();
  ended.set_succeeded(clean && !stop_reason.has_value());
  if (finished.has_value()) *ended.mutable_finished() = *finished;

  if (stop_reason.has_value()) {
    exit.set_reason(killed ? absl::StrCat(*stop_reason, ": killed by SIGKILL after ",
                                          absl::FormatDuration(grace))
                           : *stop_reason);
  } else if (clean) {
    exit.set_reason(what);
  } else {
    std::string detail = finished.has_value() && !finished->error().empty()
                             ? finished->error()
                             : LogTail(attempt_dir_ / kLogFile, kLogTailLines, kLogTailBytes);
    if (detail.empty() && exit.exit_code() == 0) detail = "the trainer did not report finishing";
    exit.set_reason(detail.empty() ? what : absl::StrCat(what, ": ", detail));
  }
  return ended;
}

}  // namespace ablate::worker
