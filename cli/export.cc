#include "cli/export.h"

#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

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
         << "); it comes with the Python package: " << InstallHint(ABLATE_SOURCE_DIR, choice.format)
         << "\n";
  return kExitUsage;
}

std::string InstallHint(const std::string& source_dir, const std::string& format) {
  // The package's extras are named after the formats that need one; csv needs none.
  const std::string extra = format == "csv" ? "" : absl::StrCat("[", format, "]");
  const std::filesystem::path package = std::filesystem::path(source_dir) / "python";
  std::error_code absent;
  if (!std::filesystem::exists(package / "pyproject.toml", absent)) {
    return absl::StrCat("pip install 'SOURCE/python", extra,
                        "', SOURCE being a copy of Ablate's source tree (the one this ablate was "
                        "built from, ",
                        source_dir, ", is gone)");
  }
  // An absolute path, so that the command works from any folder.
  return absl::StrCat("pip install '", package.string(), extra, "'");
}

}  // namespace ablate::cli
