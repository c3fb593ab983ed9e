// The one mapping from absl::Status to grpc::Status, so every handler answers a failure with
// the same code and the message a user can act on.
#ifndef ABLATE_COORDINATOR_SERVICE_GRPC_STATUS_H_
#define ABLATE_COORDINATOR_SERVICE_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace ablate::coordinator {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SERVICE_GRPC_STATUS_H_
