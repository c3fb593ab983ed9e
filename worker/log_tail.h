// Reading the end of a trainer's log: as part of a one-line exit reason (LogTail), and as the
// lines the dashboard shows (ReadLogLines). Both travel in proto string fields, which must hold
// valid UTF-8, while a log holds whatever bytes the trainer printed. Stateless; safe from any
// thread.
#ifndef ABLATE_WORKER_LOG_TAIL_H_
#define ABLATE_WORKER_LOG_TAIL_H_

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ablate::worker {

// The last `lines` non-empty lines of the file's last 4 KiB, trimmed and joined with " | ";
// longer than `max_bytes`, only its end is kept, after "...". Valid UTF-8. Empty when the file
// is missing or blank.
std::string LogTail(const std::filesystem::path& path, size_t lines, size_t max_bytes);

// The end of a log as whole lines (worker.proto's LogTail).
struct LogLines {
  std::vector<std::string> lines;  // oldest first, without "\n" or "\r\n"; valid UTF-8
  bool truncated = false;          // the file holds bytes before the first line kept
};

// The last `max_lines` lines within the file's last `max_bytes` bytes. A line that starts
// before that window is left out (unless it is the only one there, when its end is kept); a
// last line without its newline yet, which the trainer may still be writing, is kept as it
// stands. Empty when the file is missing or empty.
LogLines ReadLogLines(const std::filesystem::path& path, size_t max_lines, size_t max_bytes);

// `text` with each byte that does not begin a well-formed UTF-8 sequence replaced by '?'.
std::string ToValidUtf8(std::string_view text);

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_LOG_TAIL_H_
