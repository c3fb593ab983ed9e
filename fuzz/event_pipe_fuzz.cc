// libFuzzer target: the worker's reader of the trainer's event pipe (common/event_pipe.h) on
// arbitrary bytes, read from a memory file as from the pipe, every event until the end or the
// first error.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "common/event_pipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd_create("event-pipe", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t written = 0;
  while (written < size) {
    const ssize_t n = write(fd, data + written, size - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  lseek(fd, 0, SEEK_SET);
  ablate::EventReader reader(fd);
  for (;;) {
    absl::StatusOr<std::optional<ablate::v1::TrainerEvent>> event = reader.Next();
    if (!event.ok() || !event->has_value()) break;
  }
  close(fd);
  return 0;
}
