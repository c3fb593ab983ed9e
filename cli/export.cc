#include "cli/export.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace ablate::cli {

int ExportCommand(const std::string& coordinator, const std::string& token,
                  const std::string& sweep_id, const ExportChoice& choice, const Io& io) {
  constexpr char kProgram[] = "ablate-export";
  std::vector<std::string> args = {kProgram, sweep_id,   "--format",      choice.format,
                                   "--out",  choice.out, "--coordinator", coordinator};
  if (choice.include_dropped) args.emplace_back("--include-dropped");
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  if (!token.empty()) setenv("ABLATE_TOKEN", token.c_str(), /*overwrite=*/1);
  io.out.flush();
  io.err.flush();
  execvp(kProgram, argv.data());
  const int error = errno;
  io.err << "ablate: export: cannot run " << kProgram << " (" << std::strerror(error)
         << "); it comes with the Python package: "
         << "pip install './python[parquet,tensorboard,wandb]'\n";
  return kExitUsage;
}

}  // namespace ablate::cli
