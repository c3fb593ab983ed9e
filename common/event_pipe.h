// The trainer's event pipe: length-delimited TrainerEvent messages (a varint length, then the
// serialized bytes) on a file descriptor. ablate-train writes; the worker reads. Both ends
// take a descriptor they do not own. A writer or reader is used by one thread at a time.
#ifndef ABLATE_COMMON_EVENT_PIPE_H_
#define ABLATE_COMMON_EVENT_PIPE_H_

#include <optional>
#include <string>

#include "ablate/v1/trainer.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ablate {

class EventWriter {
 public:
  explicit EventWriter(int fd) : fd_(fd) {}
  // Writes one event whole, retrying short writes and EINTR. Fails with Unavailable when the
  // reader has gone (EPIPE).
  absl::Status Write(const v1::TrainerEvent& event);

 private:
  int fd_;
};

class EventReader {
 public:
  explicit EventReader(int fd) : fd_(fd) {}
  // Blocks for the next event. Returns nullopt at a clean end of stream (the writer closed the
  // pipe between messages); DataLoss when the stream ends inside a message or holds bytes that
  // do not parse.
  absl::StatusOr<std::optional<v1::TrainerEvent>> Next();

 private:
  absl::Status Fill(size_t want);  // reads until buffer_ holds `want` bytes or EOF

  int fd_;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace ablate

#endif  // ABLATE_COMMON_EVENT_PIPE_H_
