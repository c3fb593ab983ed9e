// The role check every gRPC handler runs first: reads the call's `authorization` metadata
// ("Bearer TOKEN") and asks the Authenticator whether its role may make the call. Every
// SweepService and WorkerService method calls it before anything else (service_test checks that
// each method of both services refuses an anonymous call).
//
// A null authenticator lets every call through: an in-process server built without tokens
// (tests of other concerns). The ablate-coordinator binary always has one.
//
// Thread safety: as the Authenticator's, safe from any thread.
#ifndef ABLATE_COORDINATOR_SERVICE_CALL_AUTH_H_
#define ABLATE_COORDINATOR_SERVICE_CALL_AUTH_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/auth/tokens.h"
#include "grpcpp/server_context.h"

namespace ablate::coordinator {

// The caller's grant (a default Principal when `authenticator` is null); UNAUTHENTICATED or
// PERMISSION_DENIED with a message naming the roles that may make the call `what`.
absl::StatusOr<auth::Principal> AuthorizeCall(const auth::Authenticator* authenticator,
                                              const grpc::ServerContextBase& context,
                                              auth::Access access, absl::string_view what);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SERVICE_CALL_AUTH_H_
