// What a command that follows something live (watch, submit --watch, log --follow) says when
// Ctrl-C ends it: that what it followed goes on without it, and how to pick it up again.
// Quitting the view is the usual way to leave it, so the exit is the shell's for SIGINT (130),
// not an error line.
#ifndef ABLATE_CLI_INTERRUPT_H_
#define ABLATE_CLI_INTERRUPT_H_

#include <string_view>

namespace ablate::cli {

// From now on SIGINT writes `message` and a newline to stderr, on a line of its own, and
// exits the process with status 130. A later call replaces the message (at most 511 bytes are
// kept). Call from the CLI's one thread.
void SayOnInterrupt(std::string_view message);

}  // namespace ablate::cli

#endif  // ABLATE_CLI_INTERRUPT_H_
