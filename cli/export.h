// `ablate export SWEEP --format csv|parquet|tensorboard|wandb --out DIR` is the Python
// package's `ablate-export` (python/ablate/export): TensorBoard's event writer, wandb's offline
// runs and Parquet through pyarrow are Python libraries, and Debian ships no Arrow for C++, so
// the CLI hands the command over instead of reimplementing any of them.
#ifndef ABLATE_CLI_EXPORT_H_
#define ABLATE_CLI_EXPORT_H_

#include <string>
#include <vector>

#include "cli/commands.h"

namespace ablate::cli {

// The formats ablate-export writes.
inline const std::vector<std::string> kExportFormats = {"csv", "parquet", "tensorboard", "wandb"};

// What `ablate export` writes, and where.
struct ExportChoice {
  std::string format;  // one of kExportFormats
  std::string out;     // the folder
  // Also the jobs an update of the sweep dropped, marked so. Left out by default, as
  // `ablate results` leaves them out: their runs are of cells the sweep's file no longer has.
  bool include_dropped = false;
};

// Replaces this process with `ablate-export SWEEP --format FORMAT --out OUT --coordinator
// COORDINATOR [--include-dropped]`, found on PATH, with `token` in its environment as
// ABLATE_TOKEN (never on its command line). Returns only when that program cannot be run:
// kExitUsage, with a line on `io.err` saying how to install it (InstallHint of the source tree
// this binary was built from).
int ExportCommand(const std::string& coordinator, const std::string& token,
                  const std::string& sweep_id, const ExportChoice& choice, const Io& io);

// The command that installs ablate-export with what `format` needs, from any folder: pip
// install of `source_dir`'s python/ package by its absolute path, with the format's extra
// ("pip install '/src/ablate/python[parquet]'"); when that package is not there (a binary
// copied away from its source tree), the same with SOURCE in its place, saying why.
std::string InstallHint(const std::string& source_dir, const std::string& format);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_EXPORT_H_
