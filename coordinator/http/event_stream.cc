#include "coordinator/http/event_stream.h"

#include <httplib.h>

#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/http/json_reply.h"
#include "google/protobuf/util/json_util.h"

namespace ablate::coordinator {
namespace {

// How long a disconnected EventSource waits before it reconnects (the standard leaves the
// default to the browser; Chromium's is 3 s).
constexpr char kRetry[] = "retry: 2000\n\n";

// The version a reconnecting client holds: the Last-Event-ID header its EventSource sends, or
// ?last_event_id= for clients that cannot set headers. nullopt for none or one that is not a
// version, which then starts a fresh watch.
std::optional<int64_t> LastEventId(const httplib::Request& req) {
  std::string text = req.get_header_value("Last-Event-ID");
  if (text.empty()) text = req.get_param_value("last_event_id");
  int64_t version = 0;
  if (text.empty() || !absl::SimpleAtoi(text, &version)) return std::nullopt;
  return version;
}

}  // namespace

EventWriter::EventWriter(Write write, Clock& clock, absl::Duration keep_alive)
    : write_(std::move(write)), clock_(clock), keep_alive_(keep_alive) {}

bool EventWriter::Open() { return Send(kRetry); }

bool EventWriter::Event(const v1::SweepSnapshot& snapshot) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(snapshot, &json).ok()) return false;
  // The printer escapes newlines inside strings, so the JSON is one `data:` line.
  return Send(absl::StrCat("id: ", snapshot.version(), "\ndata: ", json, "\n\n"));
}

bool EventWriter::KeepAliveIfQuiet() {
  if (clock_.Now() - last_write_ < keep_alive_) return true;
  return Send(": keep-alive\n\n");
}

bool EventWriter::Send(absl::string_view text) {
  last_write_ = clock_.Now();
  return write_(text);
}

EventStreams::EventStreams(SweepApi& api, Clock& clock, EventStreamOptions options)
    : api_(api), clock_(clock), options_(options) {}

void EventStreams::Serve(const httplib::Request& req, httplib::Response& res) {
  v1::WatchSweepRequest request;
  request.set_sweep_id(req.matches[1]);
  // The status line goes out before the first event, so an unknown sweep is answered here.
  v1::GetSweepRequest get;
  get.set_sweep_id(request.sweep_id());
  if (absl::StatusOr<v1::Sweep> sweep = api_.GetSweep(get); !sweep.ok()) {
    return ReplyError(sweep.status(), res);
  }
  if (stopping_) return ReplyError(absl::UnavailableError("the coordinator is stopping"), res);
  if (open_.fetch_add(1) >= options_.max_streams) {
    open_.fetch_sub(1);
    return ReplyError(absl::UnavailableError(absl::StrCat(
                          options_.max_streams,
                          " event streams are open, the most this coordinator serves; poll "
                          "the JSON API instead")),
                      res);
  }
  SweepApi::WatchOptions watch;
  watch.resume_after = LastEventId(req);
  watch.poll = options_.poll;
  res.set_header("Cache-Control", "no-cache");
  // The provider runs once, on this request's thread, for the whole stream; httplib sends
  // each write as one chunk. The releaser runs when the response is done, written or not.
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, request, watch](size_t, httplib::DataSink& sink) {
        EventWriter writer(
            [&sink](absl::string_view text) { return sink.write(text.data(), text.size()); },
            clock_, options_.keep_alive);
        if (!writer.Open()) return false;
        absl::Status watched = api_.Watch(
            request, [&writer](const v1::SweepSnapshot& s) { return writer.Event(s); },
            [this, &writer, &sink] {
              return stopping_.load() || !sink.is_writable() || !writer.KeepAliveIfQuiet();
            },
            watch);
        if (!watched.ok()) {
          ABLATE_LOG(WARNING) << "event stream ended sweep_id=" << request.sweep_id()
                              << " status=\"" << watched.message() << "\"";
        }
        sink.done();
        return true;
      },
      [this](bool) { open_.fetch_sub(1); });
}

}  // namespace ablate::coordinator
