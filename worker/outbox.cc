#include "worker/outbox.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "common/log.h"
#include "google/protobuf/io/coded_stream.h"

namespace ablate::worker {
namespace {

// Metric points and log lines may be dropped when nothing else can be done (invariant 4);
// the other reports decide a job's state and are few per attempt.
bool Droppable(const v1::WorkerMessage& message) {
  if (!message.has_job_event()) return false;
  const v1::TrainerEvent& event = message.job_event().event();
  return event.has_metrics() || event.has_log();
}

bool WriteAll(int fd, const std::string& bytes, uint64_t offset) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool ReadAll(int fd, char* out, size_t size, uint64_t offset) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Outbox::Outbox(size_t capacity, std::filesystem::path spill_path)
    : capacity_(std::max<size_t>(1, capacity)), spill_path_(std::move(spill_path)) {
  // One left by a worker that was killed holds reports of attempts no trainer runs any more.
  std::error_code error;
  std::filesystem::remove(spill_path_, error);
}

Outbox::~Outbox() {
  if (!file_.valid()) return;
  std::error_code error;
  std::filesystem::remove(spill_path_, error);
}

Outbox::Entry Outbox::MakeEntry(v1::WorkerMessage message) {
  Entry entry{0, 0, std::move(message)};
  if (entry.message.has_job_event()) {
    entry.attempt_id = entry.message.job_event().attempt_id();
    entry.sequence = entry.message.job_event().sequence();
  } else {
    entry.attempt_id = entry.message.attempt_ended().attempt_id();
    entry.sequence = entry.message.attempt_ended().sequence();
  }
  return entry;
}

void Outbox::LeaveFile(const Entry& entry) {
  --file_count_;
  auto it = attempts_.find(entry.attempt_id);
  if (it == attempts_.end()) return;
  it->second.file_first = entry.sequence + 1;
  if (entry.sequence <= it->second.acked) --acked_in_file_;
}

bool Outbox::Acked(const Entry& entry) const {
  auto it = attempts_.find(entry.attempt_id);
  return it == attempts_.end() || entry.sequence <= it->second.acked;
}

void Outbox::Push(v1::WorkerMessage report) {
  uint64_t attempt_id = 0;
  if (report.has_job_event()) {
    attempt_id = report.job_event().attempt_id();
  } else if (report.has_attempt_ended()) {
    attempt_id = report.attempt_ended().attempt_id();
  } else {
    return;
  }
  AttemptState& attempt = attempts_[attempt_id];
  const uint64_t sequence = attempt.next_sequence++;
  if (report.has_job_event()) {
    report.mutable_job_event()->set_sequence(sequence);
  } else {
    report.mutable_attempt_ended()->set_sequence(sequence);
    attempt.ended = sequence;
  }
  Entry entry = MakeEntry(std::move(report));
  if (file_count_ == 0 && memory_.size() < capacity_) {
    memory_.push_back(std::move(entry));
    return;
  }
  if (!spill_failed_ && Spill(entry)) return;
  if (!spill_failed_) StopSpilling();
  PushToMemory(std::move(entry));
}

void Outbox::PushToMemory(Entry entry) {
  if (memory_.size() >= capacity_) {
    auto victim = std::find_if(memory_.begin(), memory_.end(),
                               [](const Entry& e) { return Droppable(e.message); });
    const bool drop_new = victim == memory_.end() && Droppable(entry.message);
    if (victim != memory_.end() || drop_new) {
      ++dropped_;
      ABLATE_LOG(WARNING) << "outbox full, report dropped events_dropped=" << dropped_
                          << " events_unacked=" << unacked();
    }
    if (drop_new) return;
    if (victim != memory_.end()) {
      if (static_cast<size_t>(victim - memory_.begin()) < send_index_) --send_index_;
      memory_.erase(victim);
    }
  }
  memory_.push_back(std::move(entry));
}

bool Outbox::Spill(const Entry& entry) {
  if (!file_.valid()) {
    file_ = UniqueFd(open(spill_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!file_.valid()) {
      ABLATE_LOG(ERROR) << "cannot open the outbox spill file path=" << spill_path_.string()
                        << " error=\"" << std::strerror(errno) << "\"";
      return false;
    }
  }
  const std::string body = entry.message.SerializeAsString();
  std::string bytes(
      google::protobuf::io::CodedOutputStream::VarintSize32(static_cast<uint32_t>(body.size())),
      '\0');
  google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
      static_cast<uint32_t>(body.size()), reinterpret_cast<uint8_t*>(bytes.data()));
  bytes += body;
  if (!WriteAll(file_.get(), bytes, file_write_offset_)) {
    ABLATE_LOG(ERROR) << "cannot write the outbox spill file path=" << spill_path_.string()
                      << " error=\"" << std::strerror(errno) << "\"";
    // A partial write past the end is never read: the offsets still end before it.
    return false;
  }
  if (file_count_ == 0) {
    ABLATE_LOG(WARNING) << "outbox spilling to file path=" << spill_path_.string()
                        << " events_in_memory=" << memory_.size();
  }
  file_write_offset_ += bytes.size();
  ++file_count_;
  AttemptState& attempt = attempts_[entry.attempt_id];
  if (attempt.file_first > attempt.file_last) attempt.file_first = entry.sequence;
  attempt.file_last = entry.sequence;
  ++spilled_;
  return true;
}

std::optional<Outbox::Entry> Outbox::ReadSpilled(uint64_t& offset) {
  // A varint32 takes at most 5 bytes; read what the file holds of them.
  char head[5];
  const size_t head_size =
      static_cast<size_t>(std::min<uint64_t>(sizeof(head), file_write_offset_ - offset));
  uint32_t size = 0;
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(head),
                                               static_cast<int>(head_size));
  v1::WorkerMessage message;
  std::string body;
  bool ok = head_size > 0 && ReadAll(file_.get(), head, head_size, offset) &&
            input.ReadVarint32(&size) &&
            offset + static_cast<uint64_t>(input.CurrentPosition()) + size <= file_write_offset_;
  if (ok) {
    body.resize(size);
    ok = ReadAll(file_.get(), body.data(), size, offset + input.CurrentPosition()) &&
         message.ParseFromString(body);
  }
  if (!ok) {
    ABLATE_LOG(ERROR) << "cannot read the outbox spill file path=" << spill_path_.string()
                      << " offset=" << offset;
    return std::nullopt;
  }
  offset += static_cast<uint64_t>(input.CurrentPosition()) + size;
  return MakeEntry(std::move(message));
}

std::optional<v1::WorkerMessage> Outbox::NextToSend() {
  if (send_index_ < memory_.size()) return memory_[send_index_++].message;
  while (file_send_offset_ < file_write_offset_) {
    std::optional<Entry> entry = ReadSpilled(file_send_offset_);
    if (!entry.has_value()) {
      StopSpilling();  // counts what could not be read
      return NextToSend();
    }
    if (!Acked(*entry)) return std::move(entry->message);
  }
  return std::nullopt;
}

bool Outbox::HasUnsent() const {
  return send_index_ < memory_.size() || file_send_offset_ < file_write_offset_;
}

void Outbox::Rewind() {
  send_index_ = 0;
  file_send_offset_ = file_read_offset_;
}

bool Outbox::Ack(uint64_t attempt_id, uint64_t sequence) {
  auto it = attempts_.find(attempt_id);
  if (it == attempts_.end()) return false;
  AttemptState& attempt = it->second;
  const bool advanced = sequence > attempt.acked;
  if (advanced) {
    const uint64_t first = std::max(attempt.acked + 1, attempt.file_first);
    const uint64_t last = std::min(sequence, attempt.file_last);
    if (first <= last) acked_in_file_ += last - first + 1;
    attempt.acked = sequence;
    size_t kept = 0;
    size_t sent_kept = 0;
    for (size_t i = 0; i < memory_.size(); ++i) {
      if (memory_[i].attempt_id == attempt_id && memory_[i].sequence <= sequence) continue;
      if (i < send_index_) ++sent_kept;
      if (kept != i) memory_[kept] = std::move(memory_[i]);
      ++kept;
    }
    memory_.resize(kept);
    send_index_ = sent_kept;
  }
  // Read before Refill(): emptying the file forgets the finished attempts, this one with them,
  // which leaves `attempt` dangling.
  const bool ended = attempt.ended != 0 && attempt.acked >= attempt.ended;
  if (advanced) Refill();
  if (ended && file_count_ == 0) ForgetFinishedAttempts();
  return ended;
}

void Outbox::Refill() {
  while (memory_.size() < capacity_ && file_count_ > 0) {
    const uint64_t offset = file_read_offset_;
    std::optional<Entry> entry = ReadSpilled(file_read_offset_);
    if (!entry.has_value()) return StopSpilling();
    LeaveFile(*entry);
    // Sent from the file since the last Rewind(): it joins the sent part of memory, which is
    // then all of memory, since the file is sent only after memory.
    const bool sent = send_index_ == memory_.size() && file_send_offset_ > offset;
    file_send_offset_ = std::max(file_send_offset_, file_read_offset_);
    if (Acked(*entry)) continue;
    memory_.push_back(*std::move(entry));
    if (sent) ++send_index_;
  }
  if (file_count_ == 0) ResetFile();
}

void Outbox::StopSpilling() {
  spill_failed_ = true;
  // Everything sent stays sent: the reports read back keep their place in the order.
  const bool file_sending = send_index_ == memory_.size();
  const uint64_t send_offset = file_send_offset_;
  while (file_count_ > 0) {
    const uint64_t offset = file_read_offset_;
    std::optional<Entry> entry =
        file_read_offset_ < file_write_offset_ ? ReadSpilled(file_read_offset_) : std::nullopt;
    if (!entry.has_value()) {
      dropped_ += file_count_ - acked_in_file_;
      ABLATE_LOG(ERROR) << "outbox spill file unreadable, reports lost count="
                        << file_count_ - acked_in_file_ << " events_dropped=" << dropped_;
      break;
    }
    LeaveFile(*entry);
    if (Acked(*entry)) continue;
    memory_.push_back(*std::move(entry));
    if (file_sending && send_offset > offset) send_index_ = memory_.size();
  }
  ResetFile();
  file_ = UniqueFd();
  std::error_code error;
  std::filesystem::remove(spill_path_, error);
  ABLATE_LOG(ERROR) << "outbox no longer spills; metrics may be dropped past the memory bound"
                    << " capacity=" << capacity_ << " events_unacked=" << unacked();
}

void Outbox::ResetFile() {
  if (file_.valid() && file_write_offset_ > 0 && ftruncate(file_.get(), 0) != 0) {
    ABLATE_LOG(WARNING) << "cannot truncate the outbox spill file path=" << spill_path_.string();
  }
  file_read_offset_ = file_send_offset_ = file_write_offset_ = 0;
  file_count_ = acked_in_file_ = 0;
  for (auto& [attempt_id, attempt] : attempts_) {
    attempt.file_first = 1;
    attempt.file_last = 0;
  }
  ForgetFinishedAttempts();
}

void Outbox::ForgetFinishedAttempts() {
  // Safe only while the file holds nothing: a spilled report of a forgotten attempt would
  // read as acknowledged.
  for (auto it = attempts_.begin(); it != attempts_.end();) {
    const AttemptState& attempt = it->second;
    const bool done = attempt.ended != 0 && attempt.acked >= attempt.ended;
    it = done ? attempts_.erase(it) : std::next(it);
  }
}

}  // namespace ablate::worker
