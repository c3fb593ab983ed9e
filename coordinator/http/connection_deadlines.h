// ConnectionDeadlines bounds the time an HTTP client may take to send a request. httplib's own
// read timeout applies to each read alone, so a client sending one header byte every few
// seconds holds a server thread for as long as it likes, and a handful of such clients take
// every thread from everyone else. Here each connection gets a deadline when it opens and again
// after each plain response: by then its next request (line, headers and any body) must have
// been read, or its socket is shut down and the thread goes back to the pool.
//  - A GET or HEAD request clears the deadline once its headers are read, so an event stream
//    (GET .../events) may last; its connection is closed after the stream ends rather than kept
//    alive unwatched.
//  - Other methods keep the deadline until the response starts, covering the body.
// httplib 0.11 offers no hook between accepting a connection and reading it, so the server's
// task queue (one thread per connection, as httplib's own pool) is replaced: each task is
// enqueued on the accepting thread right after accept(), and the socket just accepted is found
// there as the one connected socket on the HTTP port this object does not know yet (listed in
// /proc/self/fd). It is watched through a duplicate of its descriptor, closed only after the
// connection is forgotten, so a shut-down never reaches a descriptor number the kernel reused.
//
// Thread safety: NewServer, Start and Stop are called by the owner from one thread; the task
// queue and the handler hooks run on httplib's threads; a watcher thread started by Start()
// enforces the deadlines.
#ifndef ABLATE_COORDINATOR_HTTP_CONNECTION_DEADLINES_H_
#define ABLATE_COORDINATOR_HTTP_CONNECTION_DEADLINES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace ablate::coordinator {
namespace internal {
class WatchedPool;
}  // namespace internal

// PEM files for serving HTTPS; both empty serves plain HTTP.
struct HttpTls {
  std::string cert_file;
  std::string key_file;
};

class ConnectionDeadlines {
 public:
  // `request_timeout`: how long a connection may take to send one request, from the moment it
  // opens or its previous plain response starts.
  explicit ConnectionDeadlines(absl::Duration request_timeout);
  ~ConnectionDeadlines();  // Stop()s
  ConnectionDeadlines(const ConnectionDeadlines&) = delete;
  ConnectionDeadlines& operator=(const ConnectionDeadlines&) = delete;

  // An httplib server (HTTPS when `tls` names files) serving each connection on one of
  // `threads` threads, its connections watched once Start() is told the port. It must not
  // outlive this object. InvalidArgument when the certificate or key cannot be loaded.
  absl::StatusOr<std::unique_ptr<httplib::Server>> NewServer(const HttpTls& tls, size_t threads);

  // Starts the watcher thread, which shuts down connections past their deadline; `port` is
  // the server's bound port, by which accepted sockets are found.
  void Start(int port);
  // Joins the watcher. Idempotent.
  void Stop();

  // The server's pre-routing handler calls this once a request's headers are read: a GET or
  // HEAD no longer has a deadline.
  void RequestRead(const httplib::Request& req);
  // Its post-routing handler calls this as the response starts: a plain response renews the
  // deadline for the connection's next request; a streamed one keeps none and closes the
  // connection when it ends.
  void ResponseStarting(httplib::Response& res);

 private:
  friend class internal::WatchedPool;

  // Called on the accepting thread: the duplicate descriptor now watched, or -1 when the new
  // socket was not found (it is then served unwatched).
  int WatchNewest();
  void Forget(int watch_fd);
  void Enforce();

  struct Watched {
    uint64_t inode;       // the socket's identity, which outlives a reused descriptor number
    absl::Time deadline;  // by when its request must have been read
  };

  const absl::Duration request_timeout_;
  absl::Mutex mu_;
  int port_ ABSL_GUARDED_BY(mu_) = 0;
  // Duplicate descriptor -> its connection.
  absl::flat_hash_map<int, Watched> watched_ ABSL_GUARDED_BY(mu_);
  // Sockets seen on a scan that are not HTTP connections (gRPC, listeners), not looked at again.
  absl::flat_hash_set<uint64_t> foreign_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_HTTP_CONNECTION_DEADLINES_H_
