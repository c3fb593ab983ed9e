#include "common/event_pipe.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ablate {
namespace {

constexpr size_t kMaxEventBytes = 64 << 20;  // a bound that no sane event reaches

void AppendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

}  // namespace

absl::Status EventWriter::Write(const v1::TrainerEvent& event) {
  std::string frame;
  const std::string body = event.SerializeAsString();
  AppendVarint(frame, body.size());
  frame += body;
  size_t done = 0;
  while (done < frame.size()) {
    const ssize_t n = ::write(fd_, frame.data() + done, frame.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) return absl::UnavailableError("event pipe closed by the reader");
      return absl::InternalError(absl::StrCat("event pipe write: ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status EventReader::Fill(size_t want) {
  char chunk[65536];
  while (buffer_.size() < want && !eof_) {
    const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("event pipe read: ", std::strerror(errno)));
    }
    if (n == 0) {
      eof_ = true;
    } else {
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::TrainerEvent>> EventReader::Next() {
  // The length prefix is a varint of at most 10 bytes; read until it is complete.
  uint64_t length = 0;
  size_t prefix = 0;
  for (;;) {
    if (absl::Status s = Fill(prefix + 1); !s.ok()) return s;
    if (buffer_.size() <= prefix) {
      if (prefix == 0) return std::nullopt;
      return absl::DataLossError("event pipe ended inside a length prefix");
    }
    const auto byte = static_cast<unsigned char>(buffer_[prefix]);
    length |= uint64_t{byte & 0x7fu} << (7 * prefix);
    ++prefix;
    if ((byte & 0x80) == 0) break;
    if (prefix == 10) return absl::DataLossError("event pipe holds a malformed length prefix");
  }
  if (length > kMaxEventBytes) {
    return absl::DataLossError(absl::StrCat("event pipe announces a ", length, "-byte event"));
  }
  if (absl::Status s = Fill(prefix + length); !s.ok()) return s;
  if (buffer_.size() < prefix + length) {
    return absl::DataLossError("event pipe ended inside an event");
  }
  v1::TrainerEvent event;
  if (!event.ParseFromArray(buffer_.data() + prefix, static_cast<int>(length))) {
    return absl::DataLossError("event pipe holds an event that does not parse");
  }
  buffer_.erase(0, prefix + length);
  return event;
}

}  // namespace ablate
