#include "coordinator/service/worker_service.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/service/call_auth.h"
#include "coordinator/service/grpc_status.h"

namespace ablate::coordinator {
namespace {

// Ends a call at once with `status`: a Connect refused before it got a WorkerStream.
class Refusal final : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage> {
 public:
  explicit Refusal(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

WorkerServiceImpl::WorkerServiceImpl(Store& store, Scheduler& scheduler, Telemetry& telemetry,
                                     const auth::Authenticator* authenticator,
                                     WorkerServiceOptions options)
    : options_(options),
      authenticator_(authenticator),
      manager_(store, scheduler, telemetry, options.heartbeat_interval_ms, options.log_tails) {}

WorkerServiceImpl::~WorkerServiceImpl() { Stop(); }

void WorkerServiceImpl::Shutdown() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (const auto& [stream, opened] : streams_) stream->Close("coordinator is stopping");
}

void WorkerServiceImpl::Stop() { manager_.Stop(); }

grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* WorkerServiceImpl::Connect(
    grpc::CallbackServerContext* context) {
  absl::StatusOr<auth::Principal> caller =
      AuthorizeCall(authenticator_, *context, auth::Access::kWorker, "WorkerService.Connect");
  if (!caller.ok()) return new Refusal(ToGrpcStatus(caller.status()));
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return new Refusal(grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator is stopping"));
  }
  if (streams_.size() >= static_cast<size_t>(options_.max_streams)) {
    ABLATE_LOG(WARNING) << "worker stream refused open_streams=" << streams_.size();
    return new Refusal(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("the coordinator holds its limit of ", options_.max_streams,
                                  " worker streams; retry later or raise the limit")));
  }
  // The stream leaves the set when its call is done, before it can be freed; that cannot
  // happen before this handler returns.
  WorkerStream::Started started = WorkerStream::Start(
      context, manager_, options_.stream, caller->worker_id, [this](WorkerStream* stream) {
        absl::MutexLock done_lock(&mu_);
        streams_.erase(stream);
      });
  std::string authorization;
  if (auto it = context->client_metadata().find("authorization");
      it != context->client_metadata().end()) {
    authorization.assign(it->second.data(), it->second.size());
  }
  streams_[started.stream] = {caller->worker_id, std::move(authorization)};
  return started.reactor;
}

std::vector<std::string> WorkerServiceImpl::CloseRevoked() {
  if (authenticator_ == nullptr) return {};
  absl::MutexLock lock(&mu_);
  std::vector<std::string> closed;
  for (const auto& [stream, opened] : streams_) {
    absl::StatusOr<auth::Principal> now =
        authenticator_->Check(opened.authorization, auth::Access::kWorker, "WorkerService.Connect");
    if (now.ok() && now->worker_id == opened.worker_id) continue;
    ABLATE_LOG(WARNING) << "worker stream closed: its token was revoked worker_id="
                        << opened.worker_id;
    stream->Close(
        "this worker's token was revoked (the coordinator's token file no longer "
        "grants it)");
    closed.push_back(opened.worker_id);
  }
  return closed;
}

}  // namespace ablate::coordinator
