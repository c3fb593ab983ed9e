#include "coordinator/service/worker_service.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
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
        auto it = streams_.find(stream);
        if (it == streams_.end()) return;
        ended_[it->second.worker_id] = std::move(it->second.authorization);
        streams_.erase(it);
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
  auto granted = [this](const std::string& authorization, const std::string& worker_id) {
    absl::StatusOr<auth::Principal> now =
        authenticator_->Check(authorization, auth::Access::kWorker, "WorkerService.Connect");
    return now.ok() && now->worker_id == worker_id;
  };
  absl::MutexLock lock(&mu_);
  std::vector<std::string> revoked;
  absl::flat_hash_set<std::string> open;
  for (const auto& [stream, opened] : streams_) {
    open.insert(opened.worker_id);
    if (granted(opened.authorization, opened.worker_id)) continue;
    ABLATE_LOG(WARNING) << "worker stream closed: its token was revoked worker_id="
                        << opened.worker_id;
    stream->Close(
        "this worker's token was revoked (the coordinator's token file no longer "
        "grants it)");
    revoked.push_back(opened.worker_id);
  }
  // A worker with an open stream was judged by it above; one without cannot reconnect with the
  // token it last used.
  for (auto it = ended_.begin(); it != ended_.end();) {
    if (granted(it->second, it->first)) {
      ++it;
      continue;
    }
    if (!open.contains(it->first)) revoked.push_back(it->first);
    ended_.erase(it++);
  }
  return revoked;
}

}  // namespace ablate::coordinator
