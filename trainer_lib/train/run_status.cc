#include "trainer_lib/train/run_status.h"

#include <csignal>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ablate::train {
namespace {

std::string SignalName(int signal) {
  if (signal == SIGTERM) return "SIGTERM";
  if (signal == SIGINT) return "SIGINT";
  return absl::StrCat("signal ", signal);
}

}  // namespace

absl::Status StoppedBy(int signal, int64_t step) {
  absl::Status cancelled =
      absl::CancelledError(absl::StrCat("terminated by ", SignalName(signal), " at step ", step));
  cancelled.SetPayload(kStopSignalPayload, absl::Cord(absl::StrCat(signal)));
  return cancelled;
}

int StopSignalOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kStopSignalPayload);
  int signal = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &signal)) return 0;
  return signal;
}

bool IsPermanent(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDeadlineExceeded:
      return false;
    default:
      return true;
  }
}

}  // namespace ablate::train
