// Client is the CLI's connection to the coordinator's SweepService: one gRPC channel, one
// method per RPC the commands use. It turns every failure into a Status whose message is the
// single line the user sees:
//   Unavailable  "ablate: cannot reach the coordinator at HOST:PORT (connection refused); ..."
//                when no connection is made within kConnectTimeout or the connection drops;
//   otherwise    the server's code with "ablate: <Method>: <server's message>".
//
// A Client owns its channel. Not thread-safe: the CLI calls it from its one thread.
#ifndef ABLATE_CLI_CLIENT_H_
#define ABLATE_CLI_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"

namespace ablate::cli {

// How long a command waits for the coordinator to accept a connection before giving up.
inline constexpr absl::Duration kConnectTimeout = absl::Seconds(3);
// Bound on one unary call once connected; generous, since a large sweep's job list is big.
inline constexpr absl::Duration kCallTimeout = absl::Seconds(60);
// The largest reply read: a page of jobs or a job's every metric point is megabytes at most.
inline constexpr int kMaxReplyBytes = 256 << 20;

class Client {
 public:
  // Prepares a channel to `address` (HOST:PORT); nothing touches the network until a call.
  // Every call carries `token` as its bearer token when it is not empty. Null `credentials`
  // speak plaintext; `tls` says whether non-null ones speak TLS (common/auth/tls.h makes both
  // kinds), for the hint an unreachable coordinator's message gives.
  explicit Client(std::string address, const std::string& token = "",
                  const std::shared_ptr<grpc::ChannelCredentials>& credentials = nullptr,
                  bool tls = false);

  const std::string& address() const { return address_; }

  // SubmitSweepRequest's spec, update (with update_sweep) or new_sweep, as set in `request`.
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(const v1::SubmitSweepRequest& request);
  absl::StatusOr<v1::ListSweepsResponse> ListSweeps();
  absl::StatusOr<v1::Sweep> GetSweep(const std::string& sweep_id);
  // One page of the sweep's jobs (see ListJobsRequest).
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const std::string& sweep_id, uint32_t page_size,
                                                const std::string& page_token);
  // Calls `on_page` with every page of the sweep's jobs in expansion order, kPageSize jobs at
  // a time, holding one page in memory. Stops at the first failed call.
  absl::Status ForEachPage(const std::string& sweep_id,
                           const std::function<void(const v1::ListJobsResponse&)>& on_page);
  static constexpr uint32_t kPageSize = 1000;
  absl::StatusOr<v1::GetJobResponse> GetJob(const v1::GetJobRequest& request);
  // The tail of the job's newest attempt that sent one, or of attempt `attempt_id` where it is
  // not 0 (GetJobLogRequest.attempt_id).
  absl::StatusOr<v1::JobLog> GetJobLog(const std::string& job_id, uint64_t attempt_id = 0);
  absl::StatusOr<v1::CancelResponse> Cancel(const std::string& id);
  absl::StatusOr<v1::RetryJobsResponse> RetryJobs(const v1::RetryJobsRequest& request);
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers();
  // The role of this client's token. Unimplemented from a coordinator older than the call.
  absl::StatusOr<v1::WhoAmIResponse> WhoAmI();

  // Calls `on_snapshot` with every message of the sweep's watch, from the whole sweep the
  // coordinator sends at once, through the changes after it, until it closes the stream
  // because every job has ended. Has no deadline: a sweep may run for days. Unavailable, as
  // for any call, when the connection is lost (the coordinator stopped or restarted).
  absl::Status WatchSweep(const std::string& sweep_id,
                          const std::function<void(const v1::SweepSnapshot&)>& on_snapshot);

 private:
  // Waits up to kConnectTimeout for the channel to connect or fail. A failed connection is
  // left for the next call to report, since its error names the cause (refused, unknown host).
  absl::Status AwaitConnection();
  // Connects, then makes one unary call with the deadline kCallTimeout.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(absl::string_view method,
                                grpc::Status (v1::SweepService::Stub::*rpc)(grpc::ClientContext*,
                                                                            const Request&,
                                                                            Response*),
                                const Request& request);
  // The Status a failed call of `method` turns into.
  absl::Status CallError(absl::string_view method, const grpc::Status& status) const;
  absl::Status Unreachable(absl::string_view cause) const;

  // A context carrying the token, with the call options every call uses.
  void Prepare(grpc::ClientContext& context) const;

  const std::string address_;
  const std::string authorization_;  // "Bearer TOKEN", or empty
  const bool tls_;                   // the channel speaks TLS
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SweepService::Stub> stub_;
};

}  // namespace ablate::cli

#endif  // ABLATE_CLI_CLIENT_H_
