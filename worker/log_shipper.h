// The LogShipper decides which attempts' log tails the worker sends, and when (worker.proto's
// LogTail, which the coordinator keeps for the dashboard's Job view):
//  - rank 0's log of a running attempt is read at most every `interval`, and its tail is sent
//    when its lines changed since the tail last written on the current stream;
//  - an attempt that ended is read once more at once, so that its last lines arrive, and then
//    no more while the stream lasts;
//  - on a new stream every tail the worker still holds is sent again, since the coordinator
//    keeps running attempts' tails in memory only and may have restarted.
// A tail is at most `max_lines` lines of the log's last `max_bytes` bytes (log_tail.h), so
// neither the stream nor the coordinator's memory grows with a chatty trainer.
//
// Not thread-safe: one thread (the session's sender) uses it, and does the file reads Due()
// makes outside any lock the trainers' callbacks need.
#ifndef ABLATE_WORKER_LOG_SHIPPER_H_
#define ABLATE_WORKER_LOG_SHIPPER_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "ablate/v1/worker.pb.h"
#include "absl/time/time.h"

namespace ablate::worker {

struct LogShipperOptions {
  absl::Duration interval = absl::Seconds(5);  // between two reads of a running attempt's log
  size_t max_lines = 200;
  size_t max_bytes = 64 << 10;
};

class LogShipper {
 public:
  // An attempt the worker holds, and rank 0's log of it.
  struct Target {
    std::string job_id;
    uint64_t attempt_id = 0;
    std::filesystem::path log;
    bool ended = false;  // its trainer exited: the log is complete
  };

  explicit LogShipper(LogShipperOptions options) : options_(options) {}

  // The tails due at `now` among `targets`, the attempts the worker holds (any other is
  // forgotten), as messages to write on stream number `generation`; a generation other than
  // the last call's makes every tail due again. A log with no lines yet is not sent.
  std::vector<v1::WorkerMessage> Due(const std::vector<Target>& targets, absl::Time now,
                                     uint64_t generation);
  // `message`, one that Due() returned, was written on its stream.
  void Written(const v1::WorkerMessage& message);
  // When Due() will next read a log it knows of; InfiniteFuture when none is waiting.
  absl::Time NextRead() const;

 private:
  struct State {
    absl::Time next_read = absl::InfinitePast();
    bool ended = false;
    bool written = false;  // a tail of it was written on the current stream
    size_t written_hash = 0;
    size_t due_hash = 0;  // of the tail Due() last returned
  };

  const LogShipperOptions options_;
  uint64_t generation_ = 0;
  std::map<uint64_t, State> states_;  // by attempt id
};

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_LOG_SHIPPER_H_
