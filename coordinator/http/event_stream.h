// The HTTP form of WatchSweep: GET /api/v1/sweeps/{id}/events answers a stream of
// server-sent events (the HTML standard's text/event-stream), one event per SweepSnapshot that
// SweepApi::Watch sends:
//
//   id: 4711
//   data: {"sweep": {...}, "jobs": [...], "version": "4711", "delta": true, "metrics": [...]}
//
// `id` is the snapshot's version, so a browser's EventSource that reconnects sends it back as
// Last-Event-ID and receives only what changed after it (or the whole sweep again when the
// change feed can no longer replay from there). `data` is protobuf's JSON mapping on one line.
// A comment line (": keep-alive") goes out after every EventStreamOptions::keep_alive without
// an event, so proxies keep the connection and a client that left is noticed. The stream ends
// once every job has ended; an unknown sweep is a JSON 404 as elsewhere in the API, and more
// than max_streams open streams a 503.
//
// Thread safety: Serve runs on many httplib threads at once, each holding its thread for as
// long as its stream lasts; Stop may be called from any thread.
#ifndef ABLATE_COORDINATOR_HTTP_EVENT_STREAM_H_
#define ABLATE_COORDINATOR_HTTP_EVENT_STREAM_H_

#include <atomic>
#include <functional>
#include <string>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/api/sweep_api.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace ablate::coordinator {

struct EventStreamOptions {
  // Streams open at once; each holds one of the HTTP server's threads, so this must stay
  // below HttpOptions::threads to leave threads for the JSON API.
  int max_streams = 100;
  // Longest quiet time on a stream before a keep-alive comment. Under the 30-60 s after which
  // common proxies close idle connections.
  absl::Duration keep_alive = absl::Seconds(15);
  // How often a quiet stream checks whether the server is stopping or the client left.
  absl::Duration poll = absl::Milliseconds(200);
};

// Writes one stream's events and keep-alives through `write` (false once the client is gone).
// Not thread-safe: one per stream.
class EventWriter {
 public:
  using Write = std::function<bool(absl::string_view)>;
  // `clock` must outlive the writer.
  EventWriter(Write write, Clock& clock, absl::Duration keep_alive);

  // The stream's opening: how long a client waits before reconnecting (retry:).
  bool Open();
  // One event for `snapshot`. False when the client is gone or the JSON cannot be printed.
  bool Event(const v1::SweepSnapshot& snapshot);
  // A keep-alive comment when nothing was written for keep_alive; true when nothing needed
  // writing or the write succeeded.
  bool KeepAliveIfQuiet();

 private:
  bool Send(absl::string_view text);

  const Write write_;
  Clock& clock_;
  const absl::Duration keep_alive_;
  absl::Time last_write_;
};

class EventStreams {
 public:
  // `api` and `clock` must outlive the object.
  EventStreams(SweepApi& api, Clock& clock, EventStreamOptions options);

  // The handler of GET /api/v1/sweeps/{id}/events (the id is the route's first match).
  void Serve(const httplib::Request& req, httplib::Response& res);
  // Ends every open stream within options.poll and refuses new ones. Call before stopping the
  // HTTP server, which waits for its threads.
  void Stop() { stopping_ = true; }

 private:
  SweepApi& api_;
  Clock& clock_;
  const EventStreamOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_{0};
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_HTTP_EVENT_STREAM_H_
