#include "cli/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

namespace ablate::cli {
namespace {

// The handler may only call async-signal-safe functions: it writes a buffer filled before.
std::array<char, 512> message;
std::atomic<size_t> message_size{0};

void SayAndExit(int) {
  const size_t size = message_size.load();
  // A leading newline ends a progress line the view may have left open.
  (void)!write(STDERR_FILENO, "\n", 1);
  (void)!write(STDERR_FILENO, message.data(), size);
  _exit(128 + SIGINT);
}

}  // namespace

void SayOnInterrupt(std::string_view text) {
  message_size.store(0);  // a signal meanwhile writes nothing half-copied
  const size_t size = std::min(text.size(), message.size() - 1);
  std::memcpy(message.data(), text.data(), size);
  message[size] = '\n';
  message_size.store(size + 1);
  struct sigaction action = {};
  action.sa_handler = SayAndExit;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
}

}  // namespace ablate::cli
