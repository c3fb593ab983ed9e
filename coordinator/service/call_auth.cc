#include "coordinator/service/call_auth.h"

namespace ablate::coordinator {

absl::StatusOr<auth::Principal> AuthorizeCall(const auth::Authenticator* authenticator,
                                              const grpc::ServerContextBase& context,
                                              auth::Access access, absl::string_view what) {
  if (authenticator == nullptr) return auth::Principal{};
  absl::string_view authorization;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  return authenticator->Check(authorization, access, what);
}

}  // namespace ablate::coordinator
