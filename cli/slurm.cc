#include "cli/slurm.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <regex>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
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
  up->add_option("--cpus-per-node", options.cpus_per_node,
                 "CPUs for each node's worker and its trainers (0: the cluster's default for one "
                 "task, often a single CPU)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  up->add_option("--mem-per-node", options.mem_per_node,
                 "memory for each node's worker, as sbatch --mem reads it: 64G, 512000M "
                 "(default: the cluster's)");
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

namespace {

// Characters the script's quoting cannot hold: the fields sit in double quotes inside the single
// quotes of `bash -c '...'`, so each of these would end a quote or expand on the node.
constexpr char kUnquotable[] = "'\"$`\\\n";

absl::Status Quotable(absl::string_view flag, const std::string& value) {
  if (value.find_first_of(kUnquotable) == std::string::npos) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      flag, ": '", value,
      "' holds a quote, $, `, \\ or a line break, which the batch script cannot quote; use a "
      "path or name without them"));
}

// sbatch's --time in seconds: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
// days-hours:minutes or days-hours:minutes:seconds (sbatch(1)); nullopt for anything else.
std::optional<int64_t> TimeSeconds(const std::string& time) {
  std::smatch m;
  if (!std::regex_match(time, m, std::regex(R"((?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?)"))) {
    return std::nullopt;
  }
  std::vector<int64_t> parts;  // the numbers after the days, in order
  for (size_t i = 2; i <= 4; ++i) {
    if (m[i].matched) parts.push_back(std::stoll(m[i].str()));
  }
  if (m[1].matched) {  // days-hours[:minutes[:seconds]]
    static constexpr int64_t kUnit[] = {3600, 60, 1};
    int64_t seconds = std::stoll(m[1].str()) * 86400;
    for (size_t i = 0; i < parts.size(); ++i) seconds += parts[i] * kUnit[i];
    return seconds;
  }
  if (parts.size() == 1) return parts[0] * 60;
  if (parts.size() == 2) return parts[0] * 60 + parts[1];
  return parts[0] * 3600 + parts[1] * 60 + parts[2];
}

}  // namespace

absl::StatusOr<std::string> RenderSlurmScript(const std::string& template_text,
                                              const SlurmUpOptions& options,
                                              const std::string& coordinator) {
  const std::optional<int64_t> time = TimeSeconds(options.time);
  if (!time.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--time: bad value '", options.time,
        "' (as sbatch reads it: MINUTES, HOURS:MINUTES:SECONDS or DAYS-HOURS[:MINUTES])"));
  }
  if (options.grace_s >= *time) {
    return absl::InvalidArgumentError(
        absl::StrCat("--grace-s: ", options.grace_s, " s is not less than --time ", options.time,
                     " (", *time, " s): the workers would be told to stop before they start"));
  }
  for (const auto& [flag, value] : std::vector<std::pair<absl::string_view, std::string>>{
           {"--coordinator", coordinator},
           {"--partition", options.partition},
           {"--worker-prefix", options.worker_prefix},
           {"--token-dir", options.token_dir},
           {"--worker", options.worker},
           {"--trainer", options.trainer},
           {"--work-dir", options.work_dir},
           {"--checkpoint-root", options.checkpoint_root},
           {"--data-root", options.data_root}}) {
    if (absl::Status s = Quotable(flag, value); !s.ok()) return s;
  }
  if (!options.mem_per_node.empty() &&
      !std::regex_match(options.mem_per_node, std::regex("[0-9]+[KMGT]?"))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mem-per-node: bad value '", options.mem_per_node,
                     "' (as sbatch's --mem reads it: a number of megabytes, or one ending in K, "
                     "M, G or T, as 64G)"));
  }
  // A flag whose line the template has no place for would be dropped without a word.
  for (const auto& [flag, given, word] :
       {std::tuple<absl::string_view, bool, absl::string_view>{
            "--cpus-per-node", options.cpus_per_node > 0, "@CPUS_LINE@"},
        {"--mem-per-node", !options.mem_per_node.empty(), "@MEM_LINE@"}}) {
    if (given && !absl::StrContains(template_text, word)) {
      return absl::InvalidArgumentError(absl::StrCat("template: no ", word, " for ", flag,
                                                     " (add the word where its #SBATCH line "
                                                     "belongs)"));
    }
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
       {"@CPUS_LINE@", options.cpus_per_node == 0
                           ? ""
                           : absl::StrCat("#SBATCH --cpus-per-task=", options.cpus_per_node)},
       {"@MEM_LINE@",
        options.mem_per_node.empty() ? "" : absl::StrCat("#SBATCH --mem=", options.mem_per_node)},
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
  if (options.cpus_per_node == 0) {
    io.err << "ablate: note: no --cpus-per-node: each worker gets the cluster's default CPUs for "
              "one task, often a single one; CPU slots and data loading want the node's\n";
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
