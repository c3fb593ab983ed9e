// `ablate slurm up`: Ablate workers on a Slurm cluster, one per allocated node, as one batch
// job rendered from a template (deploy/slurm/ablate-workers.sbatch, built into the binary, or
// the user's own with --template) and submitted with sbatch. The workers join the coordinator's
// pool like any other; at the end of the allocation Slurm's SIGTERM drains them (their jobs
// checkpoint and go back to the queue).
//
// A template's fields are @NAME@ words: @JOB_NAME@, @NODES@, @TIME@, @GRACE_S@, @LOG_DIR@,
// @PARTITION_LINE@, @GPUS_LINE@, @CPUS_LINE@ and @MEM_LINE@ (an #SBATCH line, or nothing; a
// template without the CPU or memory word is refused when that flag is given), @COORDINATOR@,
// @WORKER_PREFIX@, @TOKEN_DIR@, @WORKER@, @TRAINER@, @WORK_DIR@, @CHECKPOINT_ROOT@,
// @DATA_ROOT@. Paths are made absolute: the script runs on other machines.
#ifndef ABLATE_CLI_SLURM_H_
#define ABLATE_CLI_SLURM_H_

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "cli/commands.h"

namespace ablate::cli {

struct SlurmUpOptions {
  int nodes = 1;
  int gpus_per_node = 0;  // 0: no GPUs asked for (CPU workers)
  // The worker's CPUs (sbatch --cpus-per-task, one task a node); 0: the cluster's default for a
  // task, often a single CPU, which `up` notes.
  int cpus_per_node = 0;
  std::string mem_per_node;  // sbatch --mem, as "64G"; empty: the cluster's default
  std::string partition;     // empty: the cluster's default partition
  std::string time = "24:00:00";
  int grace_s = 120;                    // SIGTERM this long before the time limit
  std::string worker_prefix = "slurm";  // worker ids: PREFIX-0 .. PREFIX-(nodes-1)
  std::string token_dir;                // holds one file per worker id, its bearer token
  std::string template_path;            // empty: the built-in template
  std::string worker;                   // default: ablate-worker beside this binary
  std::string trainer;                  // default: ablate-train beside this binary
  std::string work_dir = "runs/slurm";
  std::string checkpoint_root = "runs";
  std::string data_root = "data";
  bool dry_run = false;  // print the script instead of submitting it
  std::string sbatch = "sbatch";
};

// Adds `slurm up` and its flags to `app`; returns the `up` subcommand, parsed when chosen.
CLI::App* AddSlurmCommands(CLI::App& app, SlurmUpOptions& options);

// The batch script for `options` from `template_text`, the coordinator at `coordinator`.
// InvalidArgument naming the field for a template word left unfilled (a typo in a user's
// template) or a bad option.
absl::StatusOr<std::string> RenderSlurmScript(const std::string& template_text,
                                              const SlurmUpOptions& options,
                                              const std::string& coordinator);

// Checks that every worker id has its token, renders the script, writes it under the work
// directory and submits it (or prints it, with dry_run). Prints the Slurm job id and the worker
// ids. kExitUsage for bad options or a missing token, kExitFailed when sbatch fails.
int SlurmUpCommand(const SlurmUpOptions& options, const std::string& coordinator, const Io& io);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_SLURM_H_
