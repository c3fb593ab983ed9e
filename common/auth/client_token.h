// The token a client (the CLI, the worker) presents to the coordinator. It comes from a file
// (--token-file: its first line, surrounding whitespace dropped) or from the environment
// variable ABLATE_TOKEN, never from a command-line argument, which other users of the machine
// can read in the process list.
#ifndef ABLATE_COMMON_AUTH_CLIENT_TOKEN_H_
#define ABLATE_COMMON_AUTH_CLIENT_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"

namespace ablate::auth {

// The environment variable read when no token file is given.
inline constexpr char kTokenEnv[] = "ABLATE_TOKEN";

// The token from `token_file` when it is not empty, else from $ABLATE_TOKEN; empty when neither
// is set (the coordinator will then answer UNAUTHENTICATED). NotFound or InvalidArgument when
// the file cannot be read or holds no token, or when the token (the file's first line, or
// $ABLATE_TOKEN) is a comment or several words (the coordinator's token file, say).
absl::StatusOr<std::string> ClientToken(const std::string& token_file);

// The value of the Authorization header or metadata for `token`: "Bearer TOKEN".
std::string BearerOf(const std::string& token);

}  // namespace ablate::auth

#endif  // ABLATE_COMMON_AUTH_CLIENT_TOKEN_H_
