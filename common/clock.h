// Time, passed in: components that stamp or wait take a Clock so tests can hold time still.
#ifndef ABLATE_COMMON_CLOCK_H_
#define ABLATE_COMMON_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace ablate {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The system's clock; lives for the program's life.
Clock& RealClock();

google::protobuf::Timestamp ToProto(absl::Time t);
absl::Time FromProto(const google::protobuf::Timestamp& t);

}  // namespace ablate

#endif  // ABLATE_COMMON_CLOCK_H_
