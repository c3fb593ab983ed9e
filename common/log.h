// One logger for every Ablate binary: lines on stderr as
//   2026-11-23T14:33:49.123Z I coordinator.cc:42] worker connected worker_id=w1 slots=2
// Use key=value for anything a machine may read. Thread-safe: each line is written whole.
#ifndef ABLATE_COMMON_LOG_H_
#define ABLATE_COMMON_LOG_H_

#include <sstream>

namespace ablate::internal {

enum class LogLevel { kInfo, kWarning, kError };

class LogLine {
 public:
  LogLine(LogLevel level, const char* file, int line);
  ~LogLine();  // writes the line
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace ablate::internal

#define ABLATE_LOG_INFO ::ablate::internal::LogLevel::kInfo
#define ABLATE_LOG_WARNING ::ablate::internal::LogLevel::kWarning
#define ABLATE_LOG_ERROR ::ablate::internal::LogLevel::kError
// ABLATE_LOG(INFO) << "worker connected worker_id=" << id;
#define ABLATE_LOG(severity) \
  ::ablate::internal::LogLine(ABLATE_LOG_##severity, __FILE__, __LINE__).stream()

#endif  // ABLATE_COMMON_LOG_H_
