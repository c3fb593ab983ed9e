#include "coordinator/service/sweep_service.h"

#include <string>
#include <utility>

#include "coordinator/service/call_auth.h"
#include "coordinator/service/grpc_status.h"

namespace ablate::coordinator {
namespace {

template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

// Runs `handler` when the call's token may make `what`; else answers why not.
template <typename Handler>
grpc::Status Authorized(const auth::Authenticator* authenticator, grpc::ServerContext* context,
                        auth::Access access, absl::string_view what, Handler handler) {
  absl::StatusOr<auth::Principal> caller = AuthorizeCall(authenticator, *context, access, what);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return handler();
}

}  // namespace

SweepServiceImpl::SweepServiceImpl(SweepApi& api, const auth::Authenticator* authenticator)
    : api_(api), authenticator_(authenticator) {}

void SweepServiceImpl::Shutdown() { stopping_ = true; }

grpc::Status SweepServiceImpl::SubmitSweep(grpc::ServerContext* context,
                                           const v1::SubmitSweepRequest* request,
                                           v1::SubmitSweepResponse* response) {
  return Authorized(authenticator_, context, auth::Access::kWrite, "SubmitSweep",
                    [&] { return Reply(api_.SubmitSweep(*request), response); });
}

grpc::Status SweepServiceImpl::GetSweep(grpc::ServerContext* context,
                                        const v1::GetSweepRequest* request, v1::Sweep* response) {
  return Authorized(authenticator_, context, auth::Access::kRead, "GetSweep",
                    [&] { return Reply(api_.GetSweep(*request), response); });
}

grpc::Status SweepServiceImpl::ListSweeps(grpc::ServerContext* context,
                                          const v1::ListSweepsRequest* request,
                                          v1::ListSweepsResponse* response) {
  return Authorized(authenticator_, context, auth::Access::kRead, "ListSweeps",
                    [&] { return Reply(api_.ListSweeps(*request), response); });
}

grpc::Status SweepServiceImpl::ListJobs(grpc::ServerContext* context,
                                        const v1::ListJobsRequest* request,
                                        v1::ListJobsResponse* response) {
  return Authorized(authenticator_, context, auth::Access::kRead, "ListJobs",
                    [&] { return Reply(api_.ListJobs(*request), response); });
}

grpc::Status SweepServiceImpl::GetJob(grpc::ServerContext* context,
                                      const v1::GetJobRequest* request,
                                      v1::GetJobResponse* response) {
  return Authorized(authenticator_, context, auth::Access::kRead, "GetJob",
                    [&] { return Reply(api_.GetJob(*request), response); });
}

grpc::Status SweepServiceImpl::GetJobLog(grpc::ServerContext* context,
                                         const v1::GetJobLogRequest* request,
                                         v1::JobLog* response) {
  return Authorized(authenticator_, context, auth::Access::kRead, "GetJobLog",
                    [&] { return Reply(api_.GetJobLog(*request), response); });
}

grpc::Status SweepServiceImpl::Cancel(grpc::ServerContext* context,
                                      const v1::CancelRequest* request,
                                      v1::CancelResponse* response) {
  return Authorized(authenticator_, context, auth::Access::kWrite, "Cancel",
                    [&] { return Reply(api_.Cancel(*request), response); });
}

grpc::Status SweepServiceImpl::RetryJobs(grpc::ServerContext* context,
                                         const v1::RetryJobsRequest* request,
                                         v1::RetryJobsResponse* response) {
  return Authorized(authenticator_, context, auth::Access::kWrite, "RetryJobs",
                    [&] { return Reply(api_.RetryJobs(*request), response); });
}

grpc::Status SweepServiceImpl::WatchSweep(grpc::ServerContext* context,
                                          const v1::WatchSweepRequest* request,
                                          grpc::ServerWriter<v1::SweepSnapshot>* writer) {
  absl::StatusOr<auth::Principal> caller =
      AuthorizeCall(authenticator_, *context, auth::Access::kRead, "WatchSweep");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::Status status = api_.Watch(
      *request, [writer](const v1::SweepSnapshot& snapshot) { return writer->Write(snapshot); },
      [this, context] { return stopping_.load() || context->IsCancelled(); });
  if (!status.ok()) return ToGrpcStatus(status);
  if (context->IsCancelled()) return grpc::Status::CANCELLED;
  if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator is stopping");
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::ListWorkers(grpc::ServerContext* context,
                                           const v1::ListWorkersRequest* request,
                                           v1::ListWorkersResponse* response) {
  return Authorized(authenticator_, context, auth::Access::kRead, "ListWorkers",
                    [&] { return Reply(api_.ListWorkers(*request), response); });
}

grpc::Status SweepServiceImpl::WhoAmI(grpc::ServerContext* context,
                                      const v1::WhoAmIRequest* /*request*/,
                                      v1::WhoAmIResponse* response) {
  absl::StatusOr<auth::Principal> caller =
      AuthorizeCall(authenticator_, *context, auth::Access::kRead, "WhoAmI");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  // AuthorizeCall's Principal without an authenticator is a default one, not the caller's.
  response->set_role(authenticator_ == nullptr ? "user"
                                               : std::string(auth::RoleName(caller->role)));
  return grpc::Status::OK;
}

}  // namespace ablate::coordinator
