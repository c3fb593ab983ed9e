#include "common/log.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ablate::internal {

LogLine::LogLine(LogLevel level, const char* file, int line) : level_(level) {
  const char* base = std::strrchr(file, '/');
  const char tag = level == LogLevel::kInfo ? 'I' : level == LogLevel::kWarning ? 'W' : 'E';
  stream_ << absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()) << ' '
          << tag << ' ' << (base ? base + 1 : file) << ':' << line << "] ";
}

LogLine::~LogLine() {
  stream_ << '\n';
  const std::string text = stream_.str();
  // One fwrite per line: stdio locks the stream, so lines from threads never interleave.
  // A failed write to stderr has nowhere left to be reported.
  (void)std::fwrite(text.data(), 1, text.size(), stderr);
  if (level_ != LogLevel::kInfo) (void)std::fflush(stderr);
}

}  // namespace ablate::internal
