// Bearer tokens for tests that run the real binaries: fixed values, so a test can hand them to
// the CLI (ABLATE_TOKEN), to workers and to gRPC or HTTP clients, and a token file granting
// them, for the coordinator's --token-file.
#ifndef ABLATE_TESTS_SUPPORT_TOKENS_H_
#define ABLATE_TESTS_SUPPORT_TOKENS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/channel.h"

namespace ablate::test {

inline constexpr char kUserToken[] = "test-user-token-0123456789";
inline constexpr char kViewerToken[] = "test-viewer-token-0123456789";

// The token of role worker bound to `worker_id`.
std::string WorkerToken(const std::string& worker_id);

// Writes a token file at `path` granting kUserToken (user), kViewerToken (viewer) and
// WorkerToken(id) for each of `worker_ids`.
absl::Status WriteTokenFile(const std::string& path, const std::vector<std::string>& worker_ids);

// The environment a client process needs to send `token`: {ABLATE_TOKEN: token}.
std::map<std::string, std::string> TokenEnv(const std::string& token);

// A channel to `address` (insecure) whose every call carries `token` as its bearer token; an
// empty token sends none.
std::shared_ptr<grpc::Channel> TokenChannel(const std::string& address, const std::string& token);

}  // namespace ablate::test

#endif  // ABLATE_TESTS_SUPPORT_TOKENS_H_
