// Starting a trainer's process with exactly what TrainerProcess promises it (see
// trainer_process.h): its descriptors, its environment, its process group and default signal
// handling. Stateless; safe from any thread.
#ifndef ABLATE_WORKER_SPAWN_H_
#define ABLATE_WORKER_SPAWN_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ablate/v1/worker.pb.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/unique_fd.h"

namespace ablate::worker {

// The descriptor on which a trainer writes its events.
inline constexpr int kEventsFd = 3;

// Internal, with `what` and the text of `error` (an errno value).
absl::Status ErrnoError(const std::string& what, int error);

// Takes `fd` as open(), pipe() or eventfd() returned it (-1: failed, errno set) and returns it
// owned and numbered above kEventsFd, so that none of the child's dup2 actions onto 0..3
// overwrites a descriptor a later action still reads (possible when the worker was started
// with stdio closed).
absl::StatusOr<UniqueFd> AboveEventsFd(int fd);

// Where one rank of a job on several ranks stands, told to it in torchrun's variables (RANK,
// LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): the ranks meet at rank 0's c10d TCPStore
// on 127.0.0.1:master_port. All ranks of a job run on one worker, so the local rank is the rank.
struct RankPlace {
  uint32_t rank = 0;
  uint32_t world_size = 1;
  int master_port = 0;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed), for a
// job's rendezvous. Another process may take it before rank 0 binds it; rank 0 then fails to
// start and the attempt is retried with a new port. Internal with errno's text on failure.
absl::StatusOr<int> FreeLoopbackPort();

// PyTorch's caching allocator growing its segments instead of reserving new ones, as
// torchtitan's launcher sets it: without it a 1M-token NSA step on an H200 ran out of memory
// with 10 GiB reserved but free (docs/benchmarks.md).
inline constexpr absl::string_view kCudaAllocatorSettings =
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True";

// The worker's environment, without any rank variables it inherited (a worker started by a
// launcher must not pass its own rank on), plus: when `slots` holds CUDA slots,
// CUDA_VISIBLE_DEVICES naming them and CUDA_DEVICE_ORDER=PCI_BUS_ID, which makes CUDA's device
// indices the ones nvidia-smi reports and the slots carry, and kCudaAllocatorSettings unless the
// worker's environment sets PYTORCH_CUDA_ALLOC_CONF itself; when `place` spans several ranks,
// its torchrun variables.
std::vector<std::string> ChildEnvironment(const std::vector<v1::Slot>& slots,
                                          const RankPlace& place = {});

// The descriptors a child starts with; the caller keeps them, and the child gets copies.
struct ChildFds {
  int stdin_fd;   // becomes 0
  int output_fd;  // becomes 1 and 2
  int events_fd;  // becomes kEventsFd; -1: the child gets none
};

// Runs `path` with `argv` and `env` in process group `process_group`, or in a new one whose id
// is the returned pid when `process_group` is 0 (the ranks of one job share the group of rank
// 0, so one signal reaches them all), with `fds` in place, every other descriptor closed, an empty
// signal mask and every signal at its default action. The child is SIGKILLed when the calling
// thread ends, so a worker killed outright takes its trainers with it (prctl(PR_SET_PDEATHSIG): the
// signal follows the thread that forked, so call this from a thread that lives as long as the child
// may run). A failed exec is reported as an error ("cannot run <path>: No such file or directory")
// instead of a child that exits 127. The child runs only async-signal-safe calls between fork
// and exec, so this is safe in a process full of gRPC threads.
absl::StatusOr<pid_t> SpawnInGroup(const std::string& path, std::vector<std::string> argv,
                                   std::vector<std::string> env, const ChildFds& fds,
                                   pid_t process_group = 0);

}  // namespace ablate::worker

#endif  // ABLATE_WORKER_SPAWN_H_
