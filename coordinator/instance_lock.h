// One coordinator per database. InstanceLock holds an exclusive flock(2) on a file beside the
// database ("<db>.lock") for the coordinator's life, and writes into it who holds it (pid,
// host, ports), so a second coordinator started on the same database refuses to start and says
// which process to look for. Two coordinators on one database would each requeue the other's
// attempts when their leases look expired, and run one job twice into one checkpoint folder.
//
// The kernel drops the lock with the process's last descriptor of the file, however the
// process ends (SIGKILL included): a stale file never blocks the next coordinator.
//
// Thread safety: none needed; one owner, the CoordinatorServer.
#ifndef ABLATE_COORDINATOR_INSTANCE_LOCK_H_
#define ABLATE_COORDINATOR_INSTANCE_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ablate::coordinator {

class InstanceLock {
 public:
  // Takes the lock of the database at `db_path` (a file path; ":memory:" needs no lock and
  // gets none: nullptr). FailedPrecondition naming the holder when a live process holds it:
  // "database runs/ablate.db is in use by another coordinator (pid=4242 host=node-1
  // grpc=7070 http=8080); stop it first". Internal when the lock file cannot be opened.
  static absl::StatusOr<std::unique_ptr<InstanceLock>> Acquire(const std::string& db_path);

  ~InstanceLock();  // unlocks and closes
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

  // Records the ports this coordinator listens on, for the message a second one shows.
  absl::Status Describe(int grpc_port, int http_port);

  const std::string& path() const { return path_; }

 private:
  InstanceLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  absl::Status Write(const std::string& text);

  const std::string path_;
  const int fd_;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_INSTANCE_LOCK_H_
