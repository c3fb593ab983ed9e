// Bearer tokens and the roles they grant on the coordinator.
//
// Roles:
//   viewer  reads sweeps, jobs, metrics and workers (Access::kRead)
//   user    what a viewer may, and submits, cancels and retries sweeps (kRead, kWrite)
//   worker  WorkerService only (kWorker); the token is bound to one worker id, so a worker can
//           speak for itself and no other
//
// The token file holds one grant per line, `ROLE TOKEN [WORKER_ID]`, fields separated by
// spaces or tabs; a worker's line must name its worker id and no other role's line may. Blank
// lines and lines starting with '#' are ignored. A token is at least 16 characters of
// printable ASCII without spaces; one token has one grant. Example:
//   # role   token                              worker id
//   user     2f6c0b1e6d5a4c83a1b7e0d9f4c2a6b8
//   viewer   9d1e7c3a5b2f4e6081c9a7d3b5e2f1c0
//   worker   c4a9e2b7d1f6038e5a7c2b9d4e1f6a3c   gpu-node-01
//
// Tokens are never kept, logged or echoed: the table holds their SHA-256 digests, and a
// presented token's digest is compared with every entry with CRYPTO_memcmp (constant time),
// so neither the comparison nor the position of a match leaks through timing. Error messages
// name line numbers, never tokens.
//
// Thread safety: a TokenTable is immutable after Parse and safe to share. An Authenticator is
// safe for concurrent use; Reload() swaps its table atomically (calls in flight finish with
// the table they started with).
#ifndef ABLATE_COMMON_AUTH_TOKENS_H_
#define ABLATE_COMMON_AUTH_TOKENS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace ablate::auth {

enum class Role { kViewer, kUser, kWorker };

// What a call needs.
enum class Access {
  kRead,    // viewer or user
  kWrite,   // user: submit, cancel, retry
  kWorker,  // worker: WorkerService
};

// "viewer", "user", "worker".
absl::string_view RoleName(Role role);
// The roles that may make a call needing `access`, as a message says it: "viewer or user".
absl::string_view RolesFor(Access access);
bool Allows(Role role, Access access);

// Who presented a token.
struct Principal {
  Role role = Role::kViewer;
  std::string worker_id;  // for Role::kWorker: the only id this token may speak for
};

class TokenTable {
 public:
  // Parses the token file's text (format above). InvalidArgument naming the first bad line.
  static absl::StatusOr<TokenTable> Parse(absl::string_view text);

  // The grant of `token`; nullptr when no line holds it. Takes the same time whatever the
  // token and wherever its line is.
  const Principal* Find(absl::string_view token) const;
  // Whether a worker token of the table is bound to `worker_id`.
  bool GrantsWorker(absl::string_view worker_id) const;
  size_t size() const { return entries_.size(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  struct Entry {
    Digest digest;
    Principal principal;
  };
  static Digest DigestOf(absl::string_view token);

  std::vector<Entry> entries_;
};

// The coordinator's gatekeeper: a token table loaded from a file, reloaded on demand.
class Authenticator {
 public:
  // Reads and parses `path`. NotFound or InvalidArgument naming the file.
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromFile(std::string path);
  // A fixed table (tests, or tokens that came from the environment); Reload() keeps it.
  explicit Authenticator(TokenTable table);

  // Reads the file again and, when it parses, replaces the table; otherwise keeps the old one
  // and returns why.
  absl::Status Reload();

  // Checks `authorization`, the value of an Authorization header or gRPC metadata
  // ("Bearer TOKEN"), for a call `what` (as "Cancel") needing `access`. Unauthenticated when
  // no token or an unknown one was given; PermissionDenied when its role may not make the
  // call. Both messages name the roles that may.
  absl::StatusOr<Principal> Check(absl::string_view authorization, Access access,
                                  absl::string_view what) const;

  // Whether the current table holds a worker token bound to `worker_id`: whether a worker of
  // that id could connect now (the coordinator asks after a reload, for each disconnected
  // worker whose stream's token it does not know).
  bool GrantsWorker(absl::string_view worker_id) const;

 private:
  Authenticator(std::string path, TokenTable table);

  const std::string path_;  // empty for a fixed table
  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ablate::auth

#endif  // ABLATE_COMMON_AUTH_TOKENS_H_
