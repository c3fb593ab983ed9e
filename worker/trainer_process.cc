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

#include "absl/algorithm/container.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/event_pipe.h"
#include "common/log.h"
#include "common/train_config.h"
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
  const bool created = std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", error.message()));
  }
  // A trainer that cannot start leaves no folder behind: a worker whose trainer cannot be run
  // is asked again and again, and would otherwise fill its work dir with empty attempts.
  absl::Cleanup remove_dir = [&dir, created] {
    if (!created) return;
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    std::filesystem::remove(dir.parent_path(), ignored);  // the job's, unless it holds others
  };

  const uint32_t world_size = WorldSize(job.config());
  v1::JobSpec spec = job;
  if (spec.config().cpu_threads() == 0) {
    const uint32_t slot_count = std::max<uint32_t>(1, static_cast<uint32_t>(slots.size()));
    spec.mutable_config()->set_cpu_threads(
        std::max<uint32_t>(1, options.cpu_threads_per_slot * slot_count / world_size));
  }
  const std::filesystem::path job_file = dir / kJobFile;
  if (absl::Status status = WriteJobFile(job_file, spec); !status.ok()) return status;

  absl::StatusOr<UniqueFd> devnull = AboveEventsFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull.ok()) return devnull.status();
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoError("cannot create the event pipe", errno);
  UniqueFd read_end(pipe_fds[0]);
  absl::StatusOr<UniqueFd> write_end = AboveEventsFd(pipe_fds[1]);
  if (!write_end.ok()) return write_end.status();
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return ErrnoError("cannot create an eventfd", errno);
  RankPlace place{.rank = 0, .world_size = world_size};
  if (world_size > 1) {
    absl::StatusOr<int> port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    place.master_port = *port;
  }

  std::vector<Rank> ranks;
  // On any error below, the ranks already started go, with their whole group.
  auto kill_started = [&ranks] {
    if (ranks.empty()) return;
    kill(-ranks.front().pid, SIGKILL);
    for (const Rank& rank : ranks) {
      while (waitpid(rank.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  };
  for (uint32_t r = 0; r < world_size; ++r) {
    place.rank = r;
    const std::filesystem::path log_path =
        dir / (r == 0 ? std::string(kLogFile) : absl::StrCat("trainer-rank", r, ".log"));
    absl::StatusOr<UniqueFd> log =
        AboveEventsFd(open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!log.ok()) {
      kill_started();
      return log.status();
    }
    std::vector<std::string> argv = {options.trainer_path, "train", "--job", job_file.string()};
    if (r == 0) argv.insert(argv.end(), {"--events-fd", absl::StrCat(kEventsFd)});
    absl::StatusOr<pid_t> pid =
        SpawnInGroup(options.trainer_path, std::move(argv), ChildEnvironment(slots, place),
                     {devnull->get(), log->get(), r == 0 ? write_end->get() : -1},
                     r == 0 ? 0 : ranks.front().pid);
    if (!pid.ok()) {
      kill_started();
      return pid.status();
    }
    // Through syscall(): glibc 2.36 declares pidfd_open without C linkage for C++.
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, *pid, 0)));
    ranks.push_back({*pid, std::move(pidfd), log_path});
    if (!ranks.back().pidfd.valid()) {
      const int saved = errno;
      kill_started();
      return ErrnoError("cannot watch the trainer's process", saved);
    }
  }
  write_end->Reset();  // rank 0 holds the only write end, so its exit ends the stream
  std::move(remove_dir).Cancel();

  const pid_t group = ranks.front().pid;
  // A safety net for a restarted worker (trainer_pids.h); the death signal already covers
  // the ranks themselves, so the attempt goes on without it.
  if (absl::Status recorded = WritePidFile(options.work_dir, attempt_id, group); !recorded.ok()) {
    ABLATE_LOG(WARNING) << "trainer not recorded job_id=" << job.job_id()
                        << " attempt_id=" << attempt_id << " error=\"" << recorded.message()
                        << "\"";
  }
  ABLATE_LOG(INFO) << "trainer started job_id=" << job.job_id() << " attempt_id=" << attempt_id
                   << " pid=" << group << " ranks=" << world_size << " dir=" << dir.string();
  return std::unique_ptr<TrainerProcess>(new TrainerProcess(
      options, job, attempt_id, std::move(dir), std::move(ranks), std::move(read_end),
      std::move(wake), std::move(on_event), std::move(on_exit)));
}

TrainerProcess::TrainerProcess(const TrainerOptions& options, const v1::JobSpec& job,
                               uint64_t attempt_id, std::filesystem::path attempt_dir,
                               std::vector<Rank> ranks, UniqueFd events, UniqueFd wake,
                               EventCallback on_event, ExitCallback on_exit)
    : job_id_(job.job_id()),
      attempt_id_(attempt_id),
      work_dir_(options.work_dir),
      attempt_dir_(std::move(attempt_dir)),
      ranks_(std::move(ranks)),
      group_(ranks_.front().pid),
      events_(std::move(events)),
      wake_(std::move(wake)),
      stall_timeout_(options.stall_timeout),
      stall_grace_(options.stall_grace),
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
  StopLocked(grace, reason);
}

absl::Duration TrainerProcess::StallCheckLocked() {
  if (stall_timeout_ == absl::ZeroDuration() || stop_reason_.has_value()) {
    return absl::InfiniteDuration();
  }
  const absl::Duration left = last_event_ + stall_timeout_ - absl::Now();
  if (left > absl::ZeroDuration()) return left;
  ABLATE_LOG(WARNING) << "trainer stalled job_id=" << job_id_ << " attempt_id=" << attempt_id_
                      << " silent_for=" << absl::FormatDuration(stall_timeout_)
                      << " last_step=" << last_step_;
  StopLocked(stall_grace_, absl::StrCat("stalled: the trainer sent nothing for ",
                                        absl::FormatDuration(stall_timeout_), " after step ",
                                        last_step_, " (the worker's --stall-timeout-s)"));
  return absl::InfiniteDuration();
}

void TrainerProcess::StopLocked(absl::Duration grace, const std::string& reason) {
  if (reaped_) return;
  const absl::Time deadline = absl::Now() + grace;
  if (stop_reason_.has_value()) {
    // Stopping already: a later stop (a worker whose lease lapses while it shuts down) may
    // bring the SIGKILL forward, never back; the first reason stands.
    if (killed_ || deadline >= *kill_deadline_) return;
    stop_grace_ = deadline - (*kill_deadline_ - stop_grace_);
    kill_deadline_ = deadline;
  } else {
    stop_reason_ = reason;
    stop_grace_ = grace;
    kill_deadline_ = deadline;
    kill(-group_, SIGTERM);
  }
  const uint64_t one = 1;
  if (write(wake_.get(), &one, sizeof(one)) < 0) {
    ABLATE_LOG(ERROR) << "cannot wake the trainer supervisor pid=" << group_;
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
    {
      absl::MutexLock lock(&mu_);
      last_event_ = absl::Now();
      if (event.has_finished()) finished_ = event.finished();
      if (event.has_progress()) last_step_ = std::max(last_step_, event.progress().step());
      for (const v1::MetricPoint& point : event.metrics().points()) {
        last_step_ = std::max(last_step_, point.step());
      }
    }
    if (event.has_progress()) continue;  // the stall watch's alone
    on_event_(event);
  }
}

void TrainerProcess::Supervise() {
  std::vector<std::optional<int>> statuses(ranks_.size());  // set once a rank has exited
  auto running = [&statuses] {
    return absl::c_any_of(statuses, [](const std::optional<int>& s) { return !s.has_value(); });
  };
  while (running()) {
    int timeout_ms = -1;
    {
      absl::MutexLock lock(&mu_);
      absl::Duration wait = StallCheckLocked();
      if (kill_deadline_.has_value() && !killed_) {
        const absl::Duration left = *kill_deadline_ - absl::Now();
        if (left <= absl::ZeroDuration()) {
          killed_ = true;
          kill(-group_, SIGKILL);
        } else {
          wait = std::min(wait, left);
        }
      }
      if (wait != absl::InfiniteDuration()) {
        timeout_ms = static_cast<int>(std::min<int64_t>(
            INT_MAX, absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1)))));
      }
    }
    std::vector<pollfd> fds = {{wake_.get(), POLLIN, 0}};
    std::vector<size_t> polled;  // the rank of fds[i + 1]
    for (size_t r = 0; r < ranks_.size(); ++r) {
      if (statuses[r].has_value()) continue;
      fds.push_back({ranks_[r].pidfd.get(), POLLIN, 0});
      polled.push_back(r);
    }
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      ABLATE_LOG(ERROR) << "poll failed while supervising pid=" << group_ << " errno=" << errno;
      // Without poll no deadline can be kept; still wait for every exit before going on.
      for (size_t r = 0; r < ranks_.size(); ++r) {
        siginfo_t info;
        while (!statuses[r].has_value() &&
               waitid(P_PID, ranks_[r].pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
        }
        statuses[r] = 0;
      }
      break;
    }
    if (n <= 0) continue;
    if (fds[0].revents != 0) {
      uint64_t count = 0;  // only resets the eventfd: the deadline is read under the lock above
      if (read(wake_.get(), &count, sizeof(count)) < 0 && errno != EAGAIN && errno != EINTR) {
        ABLATE_LOG(ERROR) << "cannot read the supervisor's eventfd pid=" << group_;
      }
    }
    for (size_t i = 0; i < polled.size(); ++i) {
      if (fds[i + 1].revents == 0) continue;
      const size_t r = polled[i];
      // WNOWAIT: the exited rank stays a zombie, so the group's id cannot be reused while the
      // group may still be signalled.
      siginfo_t info = {};
      if (waitid(P_PID, ranks_[r].pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
          info.si_pid == 0) {
        continue;
      }
      statuses[r] = info.si_code == CLD_EXITED ? W_EXITCODE(info.si_status, 0)
                                               : W_EXITCODE(0, info.si_status);
      RankExited(r, *statuses[r]);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    // Until reaped, the exited ranks are zombies that keep the group's id ours, so this reaches
    // only what the trainer left behind, which could otherwise hold the event pipe open.
    kill(-group_, SIGKILL);
    reaped_ = true;
  }
  std::vector<int> wait_statuses(ranks_.size(), 0);
  for (size_t r = 0; r < ranks_.size(); ++r) {
    while (waitpid(ranks_[r].pid, &wait_statuses[r], 0) < 0 && errno == EINTR) {
    }
  }
  RemovePidFile(work_dir_, attempt_id_);  // its whole group is gone
  reader_.join();
  v1::AttemptEnded ended = Outcome(wait_statuses);
  ABLATE_LOG(INFO) << "trainer ended job_id=" << job_id_ << " attempt_id=" << attempt_id_
                   << " pid=" << group_ << " succeeded=" << ended.succeeded() << " reason=\""
                   << ended.exit().reason() << "\"";
  on_exit_(ended);
  absl::MutexLock lock(&mu_);
  ended_ = std::move(ended);
}

void TrainerProcess::RankExited(size_t index, int wait_status) {
  const bool failed = !WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0;
  absl::MutexLock lock(&mu_);
  if (!failed || ranks_.size() == 1 || stop_reason_.has_value() || failed_rank_.has_value()) {
    return;
  }
  failed_rank_ = index;
  ABLATE_LOG(WARNING) << "trainer rank failed, stopping the others job_id=" << job_id_
                      << " attempt_id=" << attempt_id_ << " rank=" << index;
  kill(-group_, SIGKILL);
}

v1::AttemptEnded TrainerProcess::Outcome(const std::vector<int>& wait_statuses) {
  std::optional<std::string> stop_reason;
  std::optional<v1::TrainerFinished> finished;
  std::optional<size_t> failed_rank;
  bool killed = false;
  absl::Duration grace;
  {
    absl::MutexLock lock(&mu_);
    stop_reason = stop_reason_;
    finished = finished_;
    failed_rank = failed_rank_;
    killed = killed_;
    grace = stop_grace_;
  }
  // The rank that speaks for the attempt: the one that failed first, else rank 0.
  const size_t rank = failed_rank.value_or(0);
  const int wait_status = wait_statuses[rank];
  v1::AttemptEnded ended;
  ended.set_job_id(job_id_);
  ended.set_attempt_id(attempt_id_);
  v1::ExitStatus& exit = *ended.mutable_exit();
  std::string what =
      ranks_.size() > 1 ? absl::StrCat("rank ", rank, " of ", ranks_.size(), " ") : "";
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    exit.set_exit_code(-1);
    exit.set_signal(sig);
    absl::StrAppend(&what, "killed by signal ", sig, " (", SignalName(sig), ")");
  } else {
    exit.set_exit_code(WEXITSTATUS(wait_status));
    absl::StrAppend(&what, "exited with code ", exit.exit_code());
  }
  const bool all_exited_zero = absl::c_all_of(
      wait_statuses, [](int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; });
  const bool clean = all_exited_zero && finished.has_value() && finished->ok();
  ended.set_succeeded(clean && !stop_reason.has_value());
  if (finished.has_value()) *ended.mutable_finished() = *finished;

  if (stop_reason.has_value()) {
    exit.set_reason(killed ? absl::StrCat(*stop_reason, ": killed by SIGKILL after ",
                                          absl::FormatDuration(grace))
                           : *stop_reason);
  } else if (clean) {
    exit.set_reason(ranks_.size() > 1 ? absl::StrCat(ranks_.size(), " ranks exited with code 0")
                                      : what);
  } else {
    // Rank 0's own account when it is the one that failed; another rank has only its log.
    std::string detail = rank == 0 && finished.has_value() && !finished->error().empty()
                             ? finished->error()
                             : LogTail(ranks_[rank].log, kLogTailLines, kLogTailBytes);
    if (detail.empty() && exit.exit_code() == 0) detail = "the trainer did not report finishing";
    exit.set_reason(detail.empty() ? what : absl::StrCat(what, ": ", detail));
  }
  return ended;
}

}  // namespace ablate::worker
