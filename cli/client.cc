#include "cli/client.h"

#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/auth/client_token.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace ablate::cli {
namespace {

std::chrono::system_clock::time_point After(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

// The short cause inside gRPC's transport error text, which is long and changes between
// gRPC versions ("failed to connect to all addresses; last error: UNKNOWN: ipv4:...: Failed
// to connect to remote host: Connection refused").
std::string TransportCause(const grpc::Status& status, bool tls) {
  const std::string message = absl::AsciiStrToLower(status.error_message());
  if (absl::StrContains(message, "connection refused")) return "connection refused";
  if (absl::StrContains(message, "http1.x")) {
    return "it answers HTTP/1, not gRPC: is that the coordinator's web port? the CLI needs its "
           "gRPC port, --listen's, 7070 by default";
  }
  if (absl::StrContains(message, "dns") || absl::StrContains(message, "resolve")) {
    return "cannot resolve the host name";
  }
  if (absl::StrContains(message, "connection reset") || absl::StrContains(message, "closed")) {
    // A coordinator that serves TLS closes a plaintext connection without a word.
    return tls ? "the connection was closed"
               : "the connection was closed; if the coordinator serves TLS, pass --tls-ca";
  }
  return status.error_message();
}

}  // namespace

Client::Client(std::string address, const std::string& token,
               const std::shared_ptr<grpc::ChannelCredentials>& credentials, bool tls)
    : address_(std::move(address)),
      authorization_(token.empty() ? "" : auth::BearerOf(token)),
      tls_(credentials != nullptr && tls) {
  grpc::ChannelArguments args;
  // A sweep's job list grows with its grid (pages of kPageSize jobs); the 4 MB default would cap
  // a page of large specs. Bounded all the same, so a broken or hostile server cannot make the
  // CLI allocate without limit.
  args.SetMaxReceiveMessageSize(kMaxReplyBytes);
  // A watch reconnecting to a restarted coordinator should find it within seconds, not after
  // gRPC's default backoff has grown to two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  channel_ = grpc::CreateCustomChannel(
      address_, credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(), args);
  stub_ = v1::SweepService::NewStub(channel_);
}

void Client::Prepare(grpc::ClientContext& context) const {
  if (!authorization_.empty()) context.AddMetadata("authorization", authorization_);
}

absl::Status Client::AwaitConnection() {
  const auto deadline = After(kConnectTimeout);
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY && state != GRPC_CHANNEL_TRANSIENT_FAILURE &&
         state != GRPC_CHANNEL_SHUTDOWN) {
    if (!channel_->WaitForStateChange(state, deadline)) {
      return Unreachable(absl::StrCat("no answer within ", absl::FormatDuration(kConnectTimeout)));
    }
    state = channel_->GetState(/*try_to_connect=*/true);
  }
  return absl::OkStatus();
}

absl::Status Client::Unreachable(absl::string_view cause) const {
  // Something answered HTTP/1 there: the question whether the coordinator runs would mislead.
  const bool answered = absl::StrContains(cause, "HTTP/1");
  return absl::UnavailableError(absl::StrCat("ablate: cannot reach the coordinator at ", address_,
                                             " (", cause, "); ",
                                             answered ? "" : "is ablate-coordinator running? ",
                                             "set --coordinator or ABLATE_COORDINATOR"));
}

absl::Status Client::CallError(absl::string_view method, const grpc::Status& status) const {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return Unreachable(TransportCause(status, tls_));
  }
  // gRPC's codes are numbered as absl's. A message that names the call already (the
  // coordinator's token checks do) is not prefixed with it twice.
  const std::string& message = status.error_message();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StartsWith(message, absl::StrCat(method, " "))
                          ? absl::StrCat("ablate: ", message)
                          : absl::StrCat("ablate: ", method, ": ", message));
}

template <typename Request, typename Response>
absl::StatusOr<Response> Client::Call(
    absl::string_view method,
    grpc::Status (v1::SweepService::Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
    const Request& request) {
  if (absl::Status connected = AwaitConnection(); !connected.ok()) return connected;
  grpc::ClientContext context;
  Prepare(context);
  // Fail at once rather than queue while the channel is down, so an unreachable coordinator
  // is reported instead of waited for.
  context.set_wait_for_ready(false);
  context.set_deadline(After(kCallTimeout));
  Response response;
  grpc::Status status = (stub_.get()->*rpc)(&context, request, &response);
  if (!status.ok()) return CallError(method, status);
  return response;
}

absl::StatusOr<v1::SubmitSweepResponse> Client::SubmitSweep(const v1::SubmitSweepRequest& request) {
  return Call("SubmitSweep", &v1::SweepService::Stub::SubmitSweep, request);
}

absl::StatusOr<v1::ListSweepsResponse> Client::ListSweeps() {
  return Call("ListSweeps", &v1::SweepService::Stub::ListSweeps, v1::ListSweepsRequest());
}

absl::StatusOr<v1::Sweep> Client::GetSweep(const std::string& sweep_id) {
  v1::GetSweepRequest request;
  request.set_sweep_id(sweep_id);
  return Call("GetSweep", &v1::SweepService::Stub::GetSweep, request);
}

absl::StatusOr<v1::GetJobResponse> Client::GetJob(const v1::GetJobRequest& request) {
  return Call("GetJob", &v1::SweepService::Stub::GetJob, request);
}

absl::StatusOr<v1::JobLog> Client::GetJobLog(const std::string& job_id, uint64_t attempt_id) {
  v1::GetJobLogRequest request;
  request.set_job_id(job_id);
  request.set_attempt_id(attempt_id);
  return Call("GetJobLog", &v1::SweepService::Stub::GetJobLog, request);
}

absl::StatusOr<v1::ListJobsResponse> Client::ListJobs(const std::string& sweep_id,
                                                      uint32_t page_size,
                                                      const std::string& page_token) {
  v1::ListJobsRequest request;
  request.set_sweep_id(sweep_id);
  request.set_page_size(page_size);
  request.set_page_token(page_token);
  return Call("ListJobs", &v1::SweepService::Stub::ListJobs, request);
}

absl::Status Client::ForEachPage(const std::string& sweep_id,
                                 const std::function<void(const v1::ListJobsResponse&)>& on_page) {
  std::string token;
  do {
    absl::StatusOr<v1::ListJobsResponse> page = ListJobs(sweep_id, kPageSize, token);
    if (!page.ok()) return page.status();
    on_page(*page);
    token = page->next_page_token();
  } while (!token.empty());
  return absl::OkStatus();
}

absl::StatusOr<v1::ListWorkersResponse> Client::ListWorkers() {
  return Call("ListWorkers", &v1::SweepService::Stub::ListWorkers, v1::ListWorkersRequest());
}

absl::StatusOr<v1::WhoAmIResponse> Client::WhoAmI() {
  return Call("WhoAmI", &v1::SweepService::Stub::WhoAmI, v1::WhoAmIRequest());
}

absl::StatusOr<v1::CancelResponse> Client::Cancel(const std::string& id) {
  v1::CancelRequest request;
  request.set_id(id);
  return Call("Cancel", &v1::SweepService::Stub::Cancel, request);
}

absl::StatusOr<v1::RetryJobsResponse> Client::RetryJobs(const v1::RetryJobsRequest& request) {
  return Call("RetryJobs", &v1::SweepService::Stub::RetryJobs, request);
}

absl::Status Client::WatchSweep(const std::string& sweep_id,
                                const std::function<void(const v1::SweepSnapshot&)>& on_snapshot) {
  if (absl::Status connected = AwaitConnection(); !connected.ok()) return connected;
  grpc::ClientContext context;
  Prepare(context);
  context.set_wait_for_ready(false);
  v1::WatchSweepRequest request;
  request.set_sweep_id(sweep_id);
  std::unique_ptr<grpc::ClientReader<v1::SweepSnapshot>> reader =
      stub_->WatchSweep(&context, request);
  v1::SweepSnapshot snapshot;
  while (reader->Read(&snapshot)) on_snapshot(snapshot);
  grpc::Status status = reader->Finish();
  if (!status.ok()) return CallError("WatchSweep", status);
  return absl::OkStatus();
}

}  // namespace ablate::cli
