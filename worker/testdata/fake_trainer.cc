// A stand-in for ablate-train in the worker's tests: the same command line
// (`train --job FILE --events-fd N`) and event pipe, with behaviour chosen by the job's cell
// value for the dimension "behavior":
//   succeed      started, a LogLine describing its environment, one metric per step, finished
//   fail         started, finished{ok: false, error}, exit 1
//   fail-silent  lines on stderr (the last one not valid UTF-8), exit 3, no finished event
//   segv, abort  started, then dies by SIGSEGV or SIGABRT
//   sleep        started, starts a grandchild in its process group, reports its pid, sleeps
//   ignore-term  like sleep, but ignores SIGTERM
//   slow         started, sleeps for the cell value "delay_ms", then metrics and finished
//   progress     started, then a TrainerProgress (step i) every 100 ms for i = 1 .. the cell
//                value "steps", then finished
//   rank-fail    (several ranks) rank 1 writes an error to stderr and exits 1; the others sleep
//   (none)       a job of a sweep file, which has no such dimension: started, one metric per
//                step, finished with its learning rate as final eval loss (the lowest learning
//                rate of a tuned cell wins); or, when the environment's FAKE_TRAINER_FAIL names
//                the job, as `fail`: "final" names a tuned cell's final jobs, "point=N" the
//                trials of search point N
// Ranks other than 0 (RANK set by the worker for a job on several ranks) get no event pipe:
// under `succeed` they write their environment to stderr and exit 0, under the sleeping
// behaviours they sleep.
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/trainer.pb.h"
#include "absl/strings/str_format.h"
#include "common/event_pipe.h"
#include "google/protobuf/util/json_util.h"

namespace {

std::string CellValue(const ablate::v1::JobSpec& job, std::string_view dimension) {
  for (const auto& cell : job.cell()) {
    if (cell.dimension() == dimension) return cell.value();
  }
  return "";
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "<unset>" : value;
}

// The descriptors open in this process, as "0,1,2,3".
std::string OpenFds() {
  std::string fds;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return "?";
  while (dirent* entry = readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name == "." || name == ".." || std::atoi(entry->d_name) == dirfd(dir)) continue;
    fds += (fds.empty() ? "" : ",") + std::string(name);
  }
  closedir(dir);
  return fds;
}

void SleepForever() {
  while (true) pause();
}

class Trainer {
 public:
  Trainer(int fd, ablate::v1::JobSpec job) : writer_(fd), job_(std::move(job)) {}

  void Started() {
    ablate::v1::TrainerEvent event;
    event.mutable_started()->set_device("cpu");
    event.mutable_started()->set_total_steps(job_.config().steps());
    Send(event);
  }
  void Log(const std::string& text) {
    ablate::v1::TrainerEvent event;
    event.mutable_log()->set_level("info");
    event.mutable_log()->set_text(text);
    Send(event);
  }
  void Metrics() {
    for (uint32_t step = 1; step <= job_.config().steps(); ++step) {
      ablate::v1::TrainerEvent event;
      auto* point = event.mutable_metrics()->add_points();
      point->set_name("train/loss");
      point->set_step(step);
      point->set_value(10.0 / step);
      Send(event);
    }
  }
  void Progress(int64_t step) {
    ablate::v1::TrainerEvent event;
    event.mutable_progress()->set_step(step);
    Send(event);
  }
  void Finished(bool ok, const std::string& error, double final_eval_loss = 0) {
    ablate::v1::TrainerEvent event;
    event.mutable_finished()->set_ok(ok);
    event.mutable_finished()->set_steps(job_.config().steps());
    event.mutable_finished()->set_final_eval_loss(final_eval_loss);
    event.mutable_finished()->set_error(error);
    Send(event);
  }

 private:
  void Send(const ablate::v1::TrainerEvent& event) {
    if (!writer_.Write(event).ok()) std::exit(4);
  }

  ablate::EventWriter writer_;
  ablate::v1::JobSpec job_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string job_path;
  int events_fd = -1;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i];
    if (flag == "--job") job_path = argv[i + 1];
    if (flag == "--events-fd") events_fd = std::atoi(argv[i + 1]);
  }
  const int rank = std::atoi(Env("RANK").c_str());  // "<unset>" reads as rank 0
  if (argc < 2 || std::string_view(argv[1]) != "train" || job_path.empty() ||
      (events_fd < 0) != (rank > 0)) {
    absl::FPrintF(stderr, "usage: fake_trainer train --job FILE --events-fd N (rank 0 only)\n");
    return 2;
  }
  const std::string rank_env = "RANK=" + Env("RANK") + " LOCAL_RANK=" + Env("LOCAL_RANK") +
                               " WORLD_SIZE=" + Env("WORLD_SIZE") +
                               " MASTER_ADDR=" + Env("MASTER_ADDR") +
                               " MASTER_PORT=" + Env("MASTER_PORT");
  std::stringstream json;
  {
    std::ifstream in(job_path);  // closed before the descriptors are listed
    json << in.rdbuf();
  }
  ablate::v1::JobSpec job;
  if (!google::protobuf::util::JsonStringToMessage(json.str(), &job).ok()) {
    absl::FPrintF(stderr, "cannot parse %s\n", job_path.c_str());
    return 2;
  }
  const rlimit no_core = {0, 0};
  (void)setrlimit(RLIMIT_CORE, &no_core);  // crashes on purpose leave no core files

  const std::string behavior = CellValue(job, "behavior");
  if (rank > 0) {
    absl::FPrintF(stderr, "%s fds=%s pgid=%d pid=%d\n", rank_env.c_str(), OpenFds().c_str(),
                  static_cast<int>(getpgrp()), static_cast<int>(getpid()));
    (void)std::fflush(stderr);  // this fake has no one to tell
    if (behavior == "rank-fail" && rank == 1) {
      absl::FPrintF(stderr, "rank 1: connection to rank 0 lost\n");
      return 1;
    }
    if (behavior == "succeed") return 0;
    SleepForever();
  }
  Trainer trainer(events_fd, job);
  trainer.Started();
  if (behavior == "succeed") {
    trainer.Log("CUDA_VISIBLE_DEVICES=" + Env("CUDA_VISIBLE_DEVICES") +
                " CUDA_DEVICE_ORDER=" + Env("CUDA_DEVICE_ORDER") +
                " PYTORCH_CUDA_ALLOC_CONF=" + Env("PYTORCH_CUDA_ALLOC_CONF") +
                " cpu_threads=" + std::to_string(job.config().cpu_threads()) + " fds=" + OpenFds() +
                " pgid_is_pid=" + std::to_string(getpgrp() == getpid()) + " " + rank_env);
    trainer.Metrics();
    trainer.Finished(true, "");
    return 0;
  }
  if (behavior.empty()) {
    const std::string fail = Env("FAKE_TRAINER_FAIL");
    const bool named = (fail == "final" && job.has_tuned()) ||
                       (job.has_trial() && fail == "point=" + std::to_string(job.trial().point()));
    if (!named) {
      trainer.Metrics();
      trainer.Finished(true, "", job.config().learning_rate());
      return 0;
    }
  }
  if (behavior == "fail" || behavior.empty()) {
    trainer.Finished(false, "loss is NaN at step 2");
    return 1;
  }
  if (behavior == "fail-silent") {
    absl::FPrintF(stderr, "loading data\nout of memory\nbad byte \xff\xfe here\n");
    return 3;
  }
  if (behavior == "segv") {
    // The default action, not the handler a runtime may have installed (AddressSanitizer's
    // reports the signal and exits with 1): the test wants a death by the signal itself.
    (void)signal(SIGSEGV, SIG_DFL);
    (void)raise(SIGSEGV);
  }
  if (behavior == "abort") {
    absl::FPrintF(stderr, "fatal: invariant broken\n");
    std::abort();
  }
  if (behavior == "sleep" || behavior == "ignore-term" || behavior == "rank-fail") {
    if (behavior == "ignore-term") (void)signal(SIGTERM, SIG_IGN);
    const pid_t child = fork();
    if (child == 0) SleepForever();
    trainer.Log("grandchild_pid=" + std::to_string(child));
    SleepForever();
  }
  if (behavior == "slow") {
    (void)usleep(static_cast<useconds_t>(std::atoi(CellValue(job, "delay_ms").c_str())) * 1000);
    trainer.Metrics();
    trainer.Finished(true, "");
    return 0;
  }
  if (behavior == "progress") {
    for (int step = 1; step <= std::atoi(CellValue(job, "steps").c_str()); ++step) {
      (void)usleep(100'000);
      trainer.Progress(step);
    }
    trainer.Finished(true, "");
    return 0;
  }
  absl::FPrintF(stderr, "unknown behavior \"%s\"\n", behavior.c_str());
  return 2;
}
