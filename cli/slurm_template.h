// The built-in batch script template of `ablate slurm up`: deploy/slurm/ablate-workers.sbatch,
// compiled in (cli/CMakeLists.txt) so that the binary needs no source tree beside it.
#ifndef ABLATE_CLI_SLURM_TEMPLATE_H_
#define ABLATE_CLI_SLURM_TEMPLATE_H_

namespace ablate::cli {

extern const char kSlurmWorkersTemplate[];

}  // namespace ablate::cli

#endif  // ABLATE_CLI_SLURM_TEMPLATE_H_
