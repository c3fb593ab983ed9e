#include "coordinator/service/sweep_service.h"

#include <utility>

#include "coordinator/service/grpc_status.h"

namespace ablate::coordinator {
namespace {

template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

SweepServiceImpl::SweepServiceImpl(SweepApi& api) : api_(api) {}

void SweepServiceImpl::Shutdown() { stopping_ = true; }

grpc::Status SweepServiceImpl::SubmitSweep(grpc::ServerContext*,
                                           const v1::SubmitSweepRequest* request,
                                           v1::SubmitSweepResponse* response) {
  return Reply(api_.SubmitSweep(*request), response);
}

grpc::Status SweepServiceImpl::GetSweep(grpc::ServerContext*, const v1::GetSweepRequest* request,
                                        v1::Sweep* response) {
  return Reply(api_.GetSweep(*request), response);
}

grpc::Status SweepServiceImpl::ListSweeps(grpc::ServerContext*,
                                          const v1::ListSweepsRequest* request,
                                          v1::ListSweepsResponse* response) {
  return Reply(api_.ListSweeps(*request), response);
}

grpc::Status SweepServiceImpl::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                                        v1::ListJobsResponse* response) {
  return Reply(api_.ListJobs(*request), response);
}

grpc::Status SweepServiceImpl::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                      v1::GetJobResponse* response) {
  return Reply(api_.GetJob(*request), response);
}

grpc::Status SweepServiceImpl::Cancel(grpc::ServerContext*, const v1::CancelRequest* request,
                                      v1::CancelResponse* response) {
  return Reply(api_.Cancel(*request), response);
}

grpc::Status SweepServiceImpl::WatchSweep(grpc::ServerContext* context,
                                          const v1::WatchSweepRequest* request,
                                          grpc::ServerWriter<v1::SweepSnapshot>* writer) {
  absl::Status status = api_.Watch(
      *request, [writer](const v1::SweepSnapshot& snapshot) { return writer->Write(snapshot); },
      [this, context] { return stopping_.load() || context->IsCancelled(); });
  if (!status.ok()) return ToGrpcStatus(status);
  if (context->IsCancelled()) return grpc::Status::CANCELLED;
  if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator is stopping");
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::ListWorkers(grpc::ServerContext*,
                                           const v1::ListWorkersRequest* request,
                                           v1::ListWorkersResponse* response) {
  return Reply(api_.ListWorkers(*request), response);
}

}  // namespace ablate::coordinator
