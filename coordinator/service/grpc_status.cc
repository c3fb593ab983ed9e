#include "coordinator/service/grpc_status.h"

#include <string>

namespace ablate::coordinator {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode takes its values from the canonical codes gRPC uses, one for one.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace ablate::coordinator
