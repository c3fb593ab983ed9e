// Turning the end of a trainer's log into part of a one-line exit reason. Reasons travel in
// proto string fields, which must hold valid UTF-8, while a log holds whatever bytes the
// trainer printed. Stateless; safe from any thread.
#ifndef ABLATE_WORKER_LOG_TAIL_H_
#define ABLATE_WORKER_LOG_TAIL_H_

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace ablate::worker {

// The last `lines` non-empty lines of the file's last 4 KiB, trimmed and joined with " | ";
// longer than `max_bytes`, only its end is kept, after "...". Valid UTF-8. Empty when the file
// is missing or blank.
std::string LogTail(const std::filesystem::path& path, size_t lines, size_t max_bytes);

// `text` with each byte that does not begin a well-formed UTF-8 sequence replaced by '?'.
std::string ToValidUtf8(std::string_view text);

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_LOG_TAIL_H_
