#include "common/auth/client_token.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace ablate::auth {
namespace {

// A line of the coordinator's file (ROLE TOKEN [WORKER_ID], or a comment) is the likely mistake.
// `where` names the source; the token is not echoed.
absl::StatusOr<std::string> OneToken(std::string token, absl::string_view where) {
  if (!token.empty() && (token.front() == '#' || token.find_first_of(" \t") != std::string::npos)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where,
        " is a comment or holds several words; a client's token is the token alone (the "
        "coordinator's ROLE TOKEN lines are not one)"));
  }
  return token;
}

}  // namespace

absl::StatusOr<std::string> ClientToken(const std::string& token_file) {
  if (token_file.empty()) {
    const char* env = std::getenv(kTokenEnv);
    return OneToken(std::string(env == nullptr ? "" : absl::StripAsciiWhitespace(env)),
                    absl::StrCat("$", kTokenEnv));
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
  return OneToken(std::move(token), absl::StrCat("token file ", token_file, ": its first line"));
}

std::string BearerOf(const std::string& token) { return absl::StrCat("Bearer ", token); }

}  // namespace ablate::auth
