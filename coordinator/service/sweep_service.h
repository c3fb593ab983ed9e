// SweepServiceImpl is SweepService over gRPC's synchronous API: each handler checks the
// caller's role (call_auth.h: reads and WhoAmI need viewer or user; SubmitSweep, Cancel and
// RetryJobs need user), then calls SweepApi and maps its Status with ToGrpcStatus. It owns nothing
// but the flag that ends running WatchSweep calls when the server stops.
//
// Thread safety: gRPC calls the handlers from many threads at once; Shutdown() may be called
// from any thread.
#ifndef ABLATE_COORDINATOR_SERVICE_SWEEP_SERVICE_H_
#define ABLATE_COORDINATOR_SERVICE_SWEEP_SERVICE_H_

#include <atomic>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "common/auth/tokens.h"
#include "coordinator/api/sweep_api.h"

namespace ablate::coordinator {

class SweepServiceImpl final : public v1::SweepService::Service {
 public:
  // `api` and `authenticator` must outlive the service; a null `authenticator` checks no
  // tokens.
  SweepServiceImpl(SweepApi& api, const auth::Authenticator* authenticator);

  // Ends every WatchSweep call within one poll of the store; later ones end at once.
  void Shutdown();

  grpc::Status SubmitSweep(grpc::ServerContext* context, const v1::SubmitSweepRequest* request,
                           v1::SubmitSweepResponse* response) override;
  grpc::Status GetSweep(grpc::ServerContext* context, const v1::GetSweepRequest* request,
                        v1::Sweep* response) override;
  grpc::Status ListSweeps(grpc::ServerContext* context, const v1::ListSweepsRequest* request,
                          v1::ListSweepsResponse* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::GetJobResponse* response) override;
  grpc::Status GetJobLog(grpc::ServerContext* context, const v1::GetJobLogRequest* request,
                         v1::JobLog* response) override;
  grpc::Status Cancel(grpc::ServerContext* context, const v1::CancelRequest* request,
                      v1::CancelResponse* response) override;
  grpc::Status RetryJobs(grpc::ServerContext* context, const v1::RetryJobsRequest* request,
                         v1::RetryJobsResponse* response) override;
  grpc::Status WatchSweep(grpc::ServerContext* context, const v1::WatchSweepRequest* request,
                          grpc::ServerWriter<v1::SweepSnapshot>* writer) override;
  grpc::Status ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;
  // The caller's role; "user" when no tokens are checked, as every call is then allowed.
  grpc::Status WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest* request,
                      v1::WhoAmIResponse* response) override;

 private:
  SweepApi& api_;
  const auth::Authenticator* const authenticator_;
  std::atomic<bool> stopping_{false};
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SERVICE_SWEEP_SERVICE_H_
