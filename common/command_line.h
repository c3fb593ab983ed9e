// The daemons' command lines (ablate-coordinator, ablate-worker) parsed by CLI11 with `ablate`'s
// conventions: --help prints on stdout and exits 0; a usage error is one line on stderr,
// "NAME: problem (see NAME --help)", and exit status 2, where CLI11's own codes (105 for a bad
// value, 106 for a missing option) mean nothing to a script or a service manager.
#ifndef ABLATE_COMMON_COMMAND_LINE_H_
#define ABLATE_COMMON_COMMAND_LINE_H_

#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_replace.h"

namespace ablate {

// Parses `argv` into `app`, whose name (CLI::App's second argument) the errors carry: nullopt
// once parsed, else the status the program exits with (0 after --help).
inline std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::string message = absl::StrReplaceAll(e.what(), {{"\n", " "}});
    absl::StripTrailingAsciiWhitespace(&message);
    std::cerr << app.get_name() << ": " << message << " (see " << app.get_name() << " --help)\n";
    return 2;
  }
}

}  // namespace ablate

#endif  // ABLATE_COMMON_COMMAND_LINE_H_
