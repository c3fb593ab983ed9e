// ablate-worker: runs the coordinator's training jobs on this machine, one ablate-train process
// per attempt, until SIGTERM or SIGINT.
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/auth/client_token.h"
#include "common/auth/tls.h"
#include "common/command_line.h"
#include "common/host_memory.h"
#include "common/log.h"
#include "worker/gpu_monitor.h"
#include "worker/health_server.h"
#include "worker/job_paths.h"
#include "worker/session.h"
#include "worker/slots.h"

namespace {

std::string Hostname() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

// ablate-train beside this executable, as the build and the install lay them out.
std::string DefaultTrainer() {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? "ablate-train" : (self.parent_path() / "ablate-train").string();
}

std::string DescribeSlots(const ablate::worker::SessionOptions& options) {
  return absl::StrJoin(options.info.slots(), ",", [](std::string* out, const auto& slot) {
    absl::StrAppend(out,
                    slot.kind() == ablate::v1::DEVICE_KIND_CUDA ? "cuda:" : "cpu:", slot.index(),
                    "/", slot.memory_bytes() >> 20, "MiB");
  });
}

}  // namespace

int main(int argc, char** argv) {
  ablate::worker::SessionOptions options;
  uint32_t cpu_slots = 0;
  uint64_t slot_memory_mib = 0;
  uint64_t pinned_memory_mib = 0;
  std::string worker_id;
  std::string work_dir;
  std::string trainer = DefaultTrainer();

  CLI::App app{"ablate-worker: runs the coordinator's training jobs on this machine",
               "ablate-worker"};
  app.add_option("--coordinator", options.coordinator, "coordinator address, HOST:PORT")
      ->envname("ABLATE_COORDINATOR")
      ->capture_default_str();
  app.add_option("--slots", cpu_slots,
                 "offer this many CPU slots (default: one slot per CUDA device, else 1 CPU slot); "
                 "given, the worker offers CPU slots only, never its GPUs")
      ->envname("ABLATE_SLOTS")
      ->check(CLI::Range(1, 4096));
  app.add_option("--slot-memory-mib", slot_memory_mib,
                 "memory each CPU slot offers, in MiB (default: the machine's memory divided "
                 "among the CPU slots)")
      ->envname("ABLATE_SLOT_MEMORY_MIB")
      ->check(CLI::PositiveNumber);
  app.add_option("--pinned-memory-mib", pinned_memory_mib,
                 "host memory this worker's jobs may pin in all, in MiB, for the layers they "
                 "offload (checkpoint_offload_layers); the coordinator places no more on it "
                 "(default: 90% of the host's available memory at start; each trainer still "
                 "refuses to pin more than 90% of what is available when it starts, so a larger "
                 "figure does not raise that)")
      ->envname("ABLATE_PINNED_MEMORY_MIB")
      ->check(CLI::PositiveNumber);
  app.add_option("--worker-id", worker_id, "stable id of this worker (default: <hostname>-<pid>)")
      ->envname("ABLATE_WORKER_ID");
  app.add_option("--work-dir", work_dir,
                 "where attempts keep job.json and trainer.log (default: ./runs/worker-<id>)")
      ->envname("ABLATE_WORK_DIR");
  app.add_option("--trainer", trainer,
                 "the ablate-train executable; checked as the worker starts, and a job it later "
                 "cannot run goes back to the coordinator, which gives this worker no work "
                 "for a while (ablate workers says why)")
      ->envname("ABLATE_TRAINER")
      ->capture_default_str();
  app.add_option("--cpu-threads-per-slot", options.trainer.cpu_threads_per_slot,
                 "threads per slot for jobs whose config leaves cpu_threads at 0")
      ->envname("ABLATE_CPU_THREADS_PER_SLOT")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  std::vector<std::string> checkpoint_roots;
  app.add_option("--checkpoint-root", checkpoint_roots,
                 "a folder jobs may checkpoint under; repeatable (default: ./runs)")
      ->envname("ABLATE_CHECKPOINT_ROOT");
  std::vector<std::string> data_roots;
  app.add_option("--data-root", data_roots,
                 "a folder jobs may read datasets from; repeatable (default: ./data)")
      ->envname("ABLATE_DATA_ROOT");
  std::string token_file;
  app.add_option("--token-file", token_file,
                 "file whose first line is this worker's bearer token. The token sent is the "
                 "first set of: --token-file, else $ABLATE_TOKEN_FILE, else $ABLATE_TOKEN (a "
                 "token file given either way wins over $ABLATE_TOKEN)")
      ->envname("ABLATE_TOKEN_FILE");
  std::string health_address;
  app.add_option("--health-http", health_address,
                 "serve /healthz and /readyz for an orchestrator's probes on HOST:PORT; /readyz "
                 "answers 503 with the reason while not connected, or after a trainer failed "
                 "to start until one starts")
      ->envname("ABLATE_HEALTH_HTTP");
  double stop_grace_s = absl::ToDoubleSeconds(options.stop_grace);
  app.add_option("--stop-grace-s", stop_grace_s,
                 "seconds a stopped trainer (cancel, or this worker's SIGTERM) has to write its "
                 "checkpoint before SIGKILL; keep it under the orchestrator's own grace period")
      ->envname("ABLATE_STOP_GRACE_S")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  double stall_timeout_s = 1800;
  app.add_option("--stall-timeout-s", stall_timeout_s,
                 "seconds a trainer may send nothing (it reports at least once a minute while it "
                 "steps) before it is taken as hung and stopped, its attempt retried while the "
                 "job has attempts left; 0: never")
      ->envname("ABLATE_STALL_TIMEOUT_S")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  std::string tls_ca;
  app.add_option("--tls-ca", tls_ca,
                 "CA certificate to trust the coordinator's TLS with (default: $ABLATE_TLS_CA; "
                 "$ABLATE_TLS_CERT and $ABLATE_TLS_KEY add a client certificate); none: "
                 "plaintext");
  if (std::optional<int> exit_code = ablate::ParseCommandLine(app, argc, argv)) {
    return *exit_code;
  }
  options.stop_grace = absl::Seconds(stop_grace_s);
  options.trainer.stall_timeout = absl::Seconds(stall_timeout_s);
  options.trainer.stall_grace = options.stop_grace;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ablate::auth::GrpcChannelCredentials(tls_ca);
  if (!credentials.ok()) {
    ABLATE_LOG(ERROR) << "no TLS credentials error=\"" << credentials.status().message() << "\"";
    return EXIT_FAILURE;
  }
  options.credentials = *std::move(credentials);
  absl::StatusOr<std::string> token = ablate::auth::ClientToken(token_file);
  if (!token.ok()) {
    ABLATE_LOG(ERROR) << "no token error=\"" << token.status().message() << "\"";
    return EXIT_FAILURE;
  }
  options.token = *std::move(token);

  const std::string hostname = Hostname();
  if (worker_id.empty()) worker_id = absl::StrCat(hostname, "-", getpid());
  if (work_dir.empty()) work_dir = absl::StrCat("runs/worker-", worker_id);
  if (access(trainer.c_str(), X_OK) != 0) {
    ABLATE_LOG(ERROR) << "trainer not executable path=" << trainer
                      << " (build ablate-train or pass --trainer)";
    return EXIT_FAILURE;
  }

  options.info.set_worker_id(worker_id);
  options.info.set_hostname(hostname);
  options.info.set_version(ABLATE_VERSION);
  for (ablate::v1::Slot& slot : ablate::worker::DefaultSlots(cpu_slots, slot_memory_mib << 20)) {
    *options.info.add_slots() = std::move(slot);
  }
  options.info.set_pinned_memory_bytes(
      pinned_memory_mib > 0 ? pinned_memory_mib << 20
                            : ablate::PinnableBytes(ablate::ReadMeminfoBytes("MemAvailable")));
  if (options.info.pinned_memory_bytes() == 0) {
    ABLATE_LOG(WARNING) << "host memory unknown (/proc/meminfo unreadable): jobs that pin host "
                           "memory are placed here without a limit; pass --pinned-memory-mib";
  }
  // Absolute, so that logs and job.json paths name them wherever a trainer runs.
  std::error_code error;
  const std::filesystem::path cwd = std::filesystem::current_path(error);
  if (error) {
    ABLATE_LOG(ERROR) << "cannot read the working directory error=" << error.message();
    return EXIT_FAILURE;
  }
  if (checkpoint_roots.empty()) checkpoint_roots = {"runs"};
  if (data_roots.empty()) data_roots = {"data"};
  for (const std::string& root : checkpoint_roots) {
    options.roots.checkpoint_roots.push_back(cwd / root);
  }
  for (const std::string& root : data_roots) options.roots.data_roots.push_back(cwd / root);
  // So that the coordinator can warn at submit of a sweep whose paths no worker accepts.
  for (std::string& name : ablate::worker::RootNames(options.roots.checkpoint_roots)) {
    options.info.add_checkpoint_roots(std::move(name));
  }
  for (std::string& name : ablate::worker::RootNames(options.roots.data_roots)) {
    options.info.add_data_roots(std::move(name));
  }
  options.trainer.trainer_path = (cwd / trainer).string();
  options.trainer.work_dir = cwd / work_dir;
  options.info.set_work_dir(options.trainer.work_dir.lexically_normal().string());
  if (std::any_of(options.info.slots().begin(), options.info.slots().end(),
                  [](const ablate::v1::Slot& slot) {
                    return slot.kind() == ablate::v1::DEVICE_KIND_CUDA;
                  })) {
    absl::StatusOr<std::unique_ptr<ablate::worker::GpuMonitor>> nvml = ablate::worker::OpenNvml();
    if (nvml.ok()) {
      options.gpu_monitor = *std::move(nvml);
    } else {
      ABLATE_LOG(WARNING) << "no GPU health metrics error=\"" << nvml.status().message() << "\"";
    }
  }

  // Blocked before any thread starts, so every thread inherits the mask and the signals wait
  // for sigwait below. Trainers get a clean mask from TrainerProcess.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ABLATE_LOG(INFO) << "worker starting worker_id=" << worker_id
                   << " coordinator=" << options.coordinator << " slots=" << DescribeSlots(options)
                   << " pinned_memory="
                   << ablate::Gibibytes(static_cast<double>(options.info.pinned_memory_bytes()))
                   << " work_dir=" << options.trainer.work_dir.string()
                   << " trainer=" << options.trainer.trainer_path;
  // A refusal of the worker's credentials ends the daemon, as a signal would, but failing.
  options.on_refused = [] { kill(getpid(), SIGTERM); };
  const std::string coordinator = options.coordinator;
  ablate::worker::Session session(std::move(options));
  std::unique_ptr<ablate::worker::HealthServer> health;
  if (!health_address.empty()) {
    absl::StatusOr<std::unique_ptr<ablate::worker::HealthServer>> started =
        ablate::worker::HealthServer::Start(health_address,
                                            [&session] { return session.Readiness(); });
    if (!started.ok()) {
      ABLATE_LOG(ERROR) << "health endpoints error=\"" << started.status().message() << "\"";
      return EXIT_FAILURE;
    }
    health = *std::move(started);
    ABLATE_LOG(INFO) << "health endpoints listening port=" << health->port();
  }
  session.Start();

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  // A refusal stops the daemon through the same wait (on_refused): say which it was.
  if (session.refused().ok()) {
    ABLATE_LOG(INFO) << "signal received signal=" << signal_number;
  } else {
    ABLATE_LOG(INFO) << "stopping: the coordinator refuses this worker";
  }
  session.Shutdown();
  health.reset();
  if (absl::Status refused = session.refused(); !refused.ok()) {
    std::cerr << "ablate-worker: the coordinator at " << coordinator
              << " refuses this worker: " << refused.message() << '\n';
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
