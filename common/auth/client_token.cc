#include "common/auth/client_token.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ablate::auth {

absl::StatusOr<std::string> ClientToken(const std::string& token_file) {
  if (token_file.empty()) {
    const char* env = std::getenv(kTokenEnv);
    return std::string(env == nullptr ? "" : absl::StripAsciiWhitespace(env));
  }
  std::ifstream in(token_file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read token file ", token_file));
  std::string line;
  std::getline(in, line);
  std::string token(absl::StripAsciiWhitespace(line));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", token_file, " holds no token on its first line"));
  }
  // The coordinator's file (ROLE TOKEN [WORKER_ID] lines, comments) is the likely mistake; the
  // line is not echoed, since it holds a token.
  if (token.front() == '#' || token.find_first_of(" \t") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token file ", token_file,
        ": its first line is a comment or holds several words; a client's token file holds the "
        "token alone on its first line (the coordinator's ROLE TOKEN lines are not one)"));
  }
  return token;
}

std::string BearerOf(const std::string& token) { return absl::StrCat("Bearer ", token); }

}  // namespace ablate::auth
