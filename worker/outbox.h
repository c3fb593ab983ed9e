// The worker's reports to the coordinator (JobEvent and AttemptEnded), kept from the moment
// they are produced until the coordinator acknowledges them.
//
// Invariants:
//  1. Push() numbers the reports of each attempt 1, 2, 3, ... in the order they are pushed
//     (JobEvent.sequence, AttemptEnded.sequence); an attempt's AttemptEnded is pushed last.
//  2. A report leaves the outbox only when Ack() covers it, or when it is dropped (counted in
//     dropped(), see 4). Writing it on a stream does not remove it: after Rewind() (a new
//     stream) every report still held is sent again, oldest first.
//  3. At most `capacity` reports are held in memory. Past that, new reports are appended to
//     the spill file (length-delimited WorkerMessage protobufs, append-only) and read back in
//     order, into memory as acks make room there, or straight from the file when they are
//     sent. The file is truncated whenever everything in it has been read back, and removed
//     by the destructor: it lives no longer than the process (a restarted worker's trainers
//     are gone, and their attempts are requeued by the coordinator from their checkpoints).
//  4. Nothing is dropped while the spill file can be written. When a write to it fails, the
//     outbox reads the file back into memory, stops spilling and from then on holds every
//     report in memory, dropping the oldest metrics or log line past `capacity` (never a
//     started, checkpoint, finished or AttemptEnded report); each drop is logged and counted.
//
// Not thread-safe: its owner guards it. Calls do file I/O when the spill file is in use.
#ifndef ABLATE_WORKER_OUTBOX_H_
#define ABLATE_WORKER_OUTBOX_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>

#include "ablate/v1/worker.pb.h"
#include "worker/unique_fd.h"

namespace ablate::worker {

class Outbox {
 public:
  // Removes a file left at `spill_path` by an earlier process; a new one is created only when
  // the first report spills.
  Outbox(size_t capacity, std::filesystem::path spill_path);
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;
  ~Outbox();  // removes the spill file

  // Numbers `report` (a job_event or an attempt_ended; anything else is ignored) with its
  // attempt's next sequence and keeps it.
  void Push(v1::WorkerMessage report);

  // The oldest report not yet returned since the last Rewind(), or nullopt when every report
  // held has been returned.
  std::optional<v1::WorkerMessage> NextToSend();
  bool HasUnsent() const;

  // A new stream: every report held is to be sent again, oldest first.
  void Rewind();

  // Forgets every report of `attempt_id` with a sequence <= `sequence`. Returns true when
  // that covers the attempt's AttemptEnded: the coordinator has committed the attempt's end.
  // Acks of unknown attempts, or lower than an earlier one, change nothing.
  bool Ack(uint64_t attempt_id, uint64_t sequence);

  // Reports held, in memory and in the spill file.
  size_t unacked() const { return memory_.size() + file_count_ - acked_in_file_; }
  // Reports written to the spill file since construction.
  uint64_t spilled() const { return spilled_; }
  // Reports lost since construction (see invariant 4).
  uint64_t dropped() const { return dropped_; }

 private:
  struct Entry {
    uint64_t attempt_id;
    uint64_t sequence;
    v1::WorkerMessage message;
  };
  struct AttemptState {
    uint64_t next_sequence = 1;
    uint64_t acked = 0;
    uint64_t ended = 0;  // the AttemptEnded's sequence, once pushed
    // The sequences of its reports in the spill file not yet moved to memory: a contiguous
    // range, since the file takes every report pushed while it holds any. Empty when
    // file_first > file_last.
    uint64_t file_first = 1;
    uint64_t file_last = 0;
  };

  static Entry MakeEntry(v1::WorkerMessage message);
  // Bookkeeping for `entry`, just read from the front of the spill file and leaving it.
  void LeaveFile(const Entry& entry);
  bool Acked(const Entry& entry) const;
  void PushToMemory(Entry entry);
  bool Spill(const Entry& entry);
  // Reads the entry at `offset` of the spill file; nullopt (logged) when it cannot.
  std::optional<Entry> ReadSpilled(uint64_t& offset);
  // Moves reports from the front of the spill file into memory while there is room.
  void Refill();
  // Reads the whole spill file back into memory and spills no more (invariant 4).
  void StopSpilling();
  void ResetFile();
  void ForgetFinishedAttempts();

  const size_t capacity_;
  const std::filesystem::path spill_path_;

  // The oldest reports, in order; every report in the file comes after them.
  std::deque<Entry> memory_;
  size_t send_index_ = 0;  // memory_[0, send_index_) were sent since the last Rewind()

  UniqueFd file_;
  bool spill_failed_ = false;
  uint64_t file_read_offset_ = 0;   // where the reports not yet moved to memory begin
  uint64_t file_send_offset_ = 0;   // reports before it were sent since the last Rewind()
  uint64_t file_write_offset_ = 0;  // the end of the file
  size_t file_count_ = 0;           // reports in the file not yet moved to memory
  size_t acked_in_file_ = 0;        // how many of those are acknowledged already

  std::map<uint64_t, AttemptState> attempts_;  // by attempt id
  uint64_t spilled_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_OUTBOX_H_
