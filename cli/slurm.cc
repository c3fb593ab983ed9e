#include "cli/slurm.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/slurm_template.h"

namespace ablate::cli {
namespace {

namespace fs = std::filesystem;

// This program's folder, where ablate-worker and ablate-train are built and installed.
fs::path OwnFolder() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  return error ? fs::current_path() : self.parent_path();
}

std::string Absolute(const std::string& path) {
  std::error_code error;
  const fs::path absolute = fs::absolute(path, error);
  return error ? path : absolute.lexically_normal().string();
}

std::string WorkerId(const SlurmUpOptions& options, int node) {
  return absl::StrCat(options.worker_prefix, "-", node);
}

// Runs argv, returning its exit status and what it printed on stdout.
struct Output {
  int status = -1;
  std::string out;
};
Output Run(const std::vector<std::string>& argv) {
  // Built before fork: the child only calls async-signal-safe functions.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  Output result;
  std::array<char, 4096> buffer;
  for (ssize_t n; (n = read(pipe_fds[0], buffer.data(), buffer.size())) > 0;) {
    result.out.append(buffer.data(), static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
    result.status = WEXITSTATUS(status);
  }
  return result;
}

}  // namespace

CLI::App* AddSlurmCommands(CLI::App& app, SlurmUpOptions& options) {
  CLI::App* slurm = app.add_subcommand("slurm", "run Ablate workers on a Slurm cluster");
  slurm->require_subcommand(1);
  CLI::App* up = slurm->add_subcommand(
      "up", "submit one Slurm job whose nodes each run an ablate-worker for the coordinator");
  up->add_option("--nodes", options.nodes, "nodes to allocate, one worker each")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  up->add_option("--gpus-per-node", options.gpus_per_node, "GPUs per node (0: CPU workers)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  up->add_option("--partition", options.partition, "Slurm partition (default: the cluster's)");
  up->add_option("--time", options.time, "the allocation's time limit, as sbatch reads it")
      ->capture_default_str();
  up->add_option("--grace-s", options.grace_s,
                 "SIGTERM the workers this many seconds before the limit, so jobs checkpoint")
      ->capture_default_str()
      ->check(CLI::Range(10, 86400));
  up->add_option("--token-dir", options.token_dir,
                 "folder with one file per worker id (PREFIX-0, PREFIX-1, ...) holding its token")
      ->required();
  up->add_option("--worker-prefix", options.worker_prefix, "worker ids are PREFIX-<node index>")
      ->capture_default_str();
  up->add_option("--template", options.template_path,
                 "your own batch script template (default: the built-in one)");
  up->add_option("--worker", options.worker, "ablate-worker on the nodes (default: beside ablate)");
  up->add_option("--trainer", options.trainer,
                 "ablate-train on the nodes (default: beside ablate)");
  up->add_option("--work-dir", options.work_dir, "shared folder for logs and the script")
      ->capture_default_str();
  up->add_option("--checkpoint-root", options.checkpoint_root,
                 "shared folder jobs checkpoint under")
      ->capture_default_str();
  up->add_option("--data-root", options.data_root, "shared folder of datasets")
      ->capture_default_str();
  up->add_flag("--dry-run", options.dry_run, "print the batch script instead of submitting it");
  return up;
}

absl::StatusOr<std::string> RenderSlurmScript(const std::string& template_text,
                                              const SlurmUpOptions& options,
                                              const std::string& coordinator) {
  if (options.time.empty() || options.time.find_first_of(" \n'\"") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--time: bad value '", options.time, "'"));
  }
  const fs::path own = OwnFolder();
  const std::string work_dir = Absolute(options.work_dir);
  const std::string script = absl::StrReplaceAll(
      template_text,
      {{"@PARTITION_LINE@",
        options.partition.empty() ? "" : absl::StrCat("#SBATCH --partition=", options.partition)},
       {"@GPUS_LINE@", options.gpus_per_node == 0
                           ? ""
                           : absl::StrCat("#SBATCH --gpus-per-node=", options.gpus_per_node)},
       {"@JOB_NAME@", absl::StrCat("ablate-", options.worker_prefix)},
       {"@NODES@", absl::StrCat(options.nodes)},
       {"@TIME@", options.time},
       {"@GRACE_S@", absl::StrCat(options.grace_s)},
       {"@LOG_DIR@", work_dir + "/logs"},
       {"@COORDINATOR@", coordinator},
       {"@WORKER_PREFIX@", options.worker_prefix},
       {"@TOKEN_DIR@", Absolute(options.token_dir)},
       {"@WORKER@",
        Absolute(options.worker.empty() ? (own / "ablate-worker").string() : options.worker)},
       {"@TRAINER@",
        Absolute(options.trainer.empty() ? (own / "ablate-train").string() : options.trainer)},
       {"@WORK_DIR@", work_dir},
       {"@CHECKPOINT_ROOT@", Absolute(options.checkpoint_root)},
       {"@DATA_ROOT@", Absolute(options.data_root)}});
  // A word left is a field this program does not fill: a typo in the template.
  std::smatch left;
  if (std::regex_search(script, left, std::regex("@[A-Z][A-Z_]*@"))) {
    return absl::InvalidArgumentError(
        absl::StrCat("template: unknown field ", left.str(), " (see ablate slurm up --help)"));
  }
  return script;
}

int SlurmUpCommand(const SlurmUpOptions& options, const std::string& coordinator, const Io& io) {
  std::string template_text(kSlurmWorkersTemplate);
  if (!options.template_path.empty()) {
    std::ifstream in(options.template_path);
    if (!in) {
      io.err << "ablate: --template " << options.template_path << ": cannot read it\n";
      return kExitUsage;
    }
    template_text.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (int node = 0; node < options.nodes; ++node) {
    const fs::path token = fs::path(options.token_dir) / WorkerId(options, node);
    if (!fs::is_regular_file(token)) {
      io.err << "ablate: --token-dir " << options.token_dir << ": no token for worker "
             << WorkerId(options, node) << " (expected the file " << token.string()
             << "; the coordinator's token file binds one worker token to each id)\n";
      return kExitUsage;
    }
  }
  absl::StatusOr<std::string> script = RenderSlurmScript(template_text, options, coordinator);
  if (!script.ok()) {
    io.err << "ablate: " << script.status().message() << "\n";
    return kExitUsage;
  }
  if (options.dry_run) {
    io.out << *script;
    return kExitOk;
  }
  const fs::path logs = fs::path(Absolute(options.work_dir)) / "logs";
  std::error_code error;
  fs::create_directories(logs, error);
  const fs::path path =
      fs::path(Absolute(options.work_dir)) /
      absl::StrCat("ablate-", options.worker_prefix, "-",
                   absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::UTCTimeZone()), ".sbatch");
  std::ofstream(path) << *script;
  if (error || !fs::exists(path)) {
    io.err << "ablate: cannot write " << path.string() << "\n";
    return kExitFailed;
  }
  const Output submitted = Run({options.sbatch, "--parsable", path.string()});
  if (submitted.status != 0) {
    io.err << "ablate: " << options.sbatch << " " << path.string() << " failed (exit "
           << submitted.status << ")\n";
    return kExitFailed;
  }
  std::string job_id(absl::StripTrailingAsciiWhitespace(submitted.out));
  io.out << "submitted Slurm job " << job_id << ": workers " << WorkerId(options, 0);
  if (options.nodes > 1) io.out << " .. " << WorkerId(options, options.nodes - 1);
  io.out << " for " << coordinator << "; script " << path.string() << ", logs " << logs.string()
         << "\n";
  return kExitOk;
}

}  // namespace ablate::cli
