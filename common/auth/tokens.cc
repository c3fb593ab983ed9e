#include "common/auth/tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ablate::auth {
namespace {

// Short tokens can be guessed; 16 characters of hex already give 64 bits.
constexpr size_t kMinTokenLength = 16;

bool PrintableWithoutSpace(absl::string_view s) {
  for (char c : s) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "user") return Role::kUser;
  if (name == "worker") return Role::kWorker;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", name, "' (expected viewer, user or worker)"));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read token file ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kUser:
      return "user";
    case Role::kWorker:
      return "worker";
  }
  return "unknown";
}

absl::string_view RolesFor(Access access) {
  switch (access) {
    case Access::kRead:
      return "viewer or user";
    case Access::kWrite:
      return "user";
    case Access::kWorker:
      return "worker";
  }
  return "none";
}

bool Allows(Role role, Access access) {
  switch (access) {
    case Access::kRead:
      return role == Role::kViewer || role == Role::kUser;
    case Access::kWrite:
      return role == Role::kUser;
    case Access::kWorker:
      return role == Role::kWorker;
  }
  return false;
}

TokenTable::Digest TokenTable::DigestOf(absl::string_view token) {
  Digest digest{};
  unsigned int length = 0;
  EVP_Digest(token.data(), token.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text) {
  TokenTable table;
  absl::flat_hash_set<std::string> seen;  // digests, as bytes
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    // A '#' after a blank starts a comment (a token holds no blank, so it cannot be in one).
    for (size_t at = line.find('#'); at != absl::string_view::npos; at = line.find('#', at + 1)) {
      if (at == 0 || absl::ascii_isspace(static_cast<unsigned char>(line[at - 1]))) {
        line = line.substr(0, at);
        break;
      }
    }
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto bad = [line_number](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("token file line ", line_number, ": ", why));
    };
    if (fields.size() < 2 || fields.size() > 3) {
      return bad(absl::StrCat("expected ROLE TOKEN [WORKER_ID], found ", fields.size(),
                              fields.size() == 1 ? " word" : " words",
                              " (a comment starts with '#' after a blank)"));
    }
    absl::StatusOr<Role> role = ParseRole(fields[0]);
    if (!role.ok()) return bad(role.status().message());
    absl::string_view token = fields[1];
    if (token.size() < kMinTokenLength || !PrintableWithoutSpace(token)) {
      return bad(
          absl::StrCat("a token must be at least ", kMinTokenLength, " printable characters"));
    }
    Entry entry{DigestOf(token), Principal{*role, ""}};
    if (*role == Role::kWorker) {
      if (fields.size() != 3) return bad("a worker token must name its worker id");
      entry.principal.worker_id = std::string(fields[2]);
    } else if (fields.size() == 3) {
      return bad(
          absl::StrCat("only a worker token names a worker id, not a ", fields[0], " token"));
    }
    if (!seen.insert(std::string(entry.digest.begin(), entry.digest.end())).second) {
      return bad("this token is already granted on an earlier line");
    }
    table.entries_.push_back(std::move(entry));
  }
  return table;
}

const Principal* TokenTable::Find(absl::string_view token) const {
  const Digest digest = DigestOf(token);
  const Principal* found = nullptr;
  // Every entry is compared, so the time taken does not depend on where a match is.
  for (const Entry& entry : entries_) {
    bool equal = CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0;
    if (equal) found = &entry.principal;
  }
  return found;
}

bool TokenTable::GrantsWorker(absl::string_view worker_id) const {
  // Worker ids are not secret, so an early return leaks nothing.
  return std::any_of(entries_.begin(), entries_.end(), [worker_id](const Entry& entry) {
    return entry.principal.role == Role::kWorker && entry.principal.worker_id == worker_id;
  });
}

Authenticator::Authenticator(TokenTable table) : Authenticator(std::string(), std::move(table)) {}

Authenticator::Authenticator(std::string path, TokenTable table)
    : path_(std::move(path)), table_(std::make_shared<const TokenTable>(std::move(table))) {}

namespace {

// The table of the token file at `path`. A file of no token is refused: it would leave nobody,
// the operator included, able to call the coordinator, and is more often a mistake (an empty
// Secret, the wrong file) than a wish.
absl::StatusOr<TokenTable> ReadTable(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<TokenTable> table = TokenTable::Parse(*text);
  if (!table.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", table.status().message()));
  }
  if (table->size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": holds no token, so nobody could call the coordinator; give each caller a line "
        "ROLE TOKEN [WORKER_ID]"));
  }
  return table;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromFile(std::string path) {
  absl::StatusOr<TokenTable> table = ReadTable(path);
  if (!table.ok()) return table.status();
  return std::unique_ptr<Authenticator>(new Authenticator(std::move(path), *std::move(table)));
}

absl::Status Authenticator::Reload() {
  if (path_.empty()) return absl::OkStatus();
  absl::StatusOr<TokenTable> table = ReadTable(path_);
  if (!table.ok()) return table.status();
  auto fresh = std::make_shared<const TokenTable>(*std::move(table));
  absl::MutexLock lock(&mu_);
  table_ = std::move(fresh);
  return absl::OkStatus();
}

bool Authenticator::GrantsWorker(absl::string_view worker_id) const {
  absl::MutexLock lock(&mu_);
  return table_->GrantsWorker(worker_id);
}

absl::StatusOr<Principal> Authenticator::Check(absl::string_view authorization, Access access,
                                               absl::string_view what) const {
  std::shared_ptr<const TokenTable> table;
  {
    absl::MutexLock lock(&mu_);
    table = table_;
  }
  // The scheme's name is case-insensitive (RFC 7235, section 2.1).
  absl::string_view token = authorization;
  constexpr absl::string_view kScheme = "bearer ";
  const bool bearer = absl::StartsWithIgnoreCase(token, kScheme);
  if (bearer) token.remove_prefix(kScheme.size());
  if (!bearer || token.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        what, " needs a bearer token of role ", RolesFor(access),
        " (Authorization: Bearer TOKEN; clients read it from --token-file or ", "ABLATE_TOKEN)"));
  }
  const Principal* principal = table->Find(token);
  if (principal == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat(
        what, " needs a bearer token of role ", RolesFor(access), "; the token given is unknown"));
  }
  if (!Allows(principal->role, access)) {
    return absl::PermissionDeniedError(absl::StrCat(what, " needs a token of role ",
                                                    RolesFor(access), "; this token's role is ",
                                                    RoleName(principal->role)));
  }
  return *principal;
}

}  // namespace ablate::auth
