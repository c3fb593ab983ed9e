// The `ablate` command line: flags and subcommands (CLI11), the coordinator's address, and
// the dispatch to cli/commands.h. Kept apart from main() so the whole program is a function
// a test could call.
#ifndef ABLATE_CLI_APP_H_
#define ABLATE_CLI_APP_H_

namespace ablate::cli {

// Parses `argv`, runs the chosen subcommand and returns the process's exit status: 0 on
// success, 1 when the coordinator refused or a watched sweep ended other than COMPLETED (a
// job of an untuned sweep, or a cell's final job of a tuned one, failed or was cancelled), 2 for
// usage errors and bad sweep files, 3 when the coordinator cannot be reached.
int RunCli(int argc, char** argv);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_APP_H_
