// The exit codes of `ablate-train train`, shared by the trainer that chooses them and the
// coordinator's retry rule (coordinator/scheduler/attempt_policy) that reads them. Exits by a
// signal are reported as the signal, not as a code.
#ifndef ABLATE_COMMON_TRAINER_EXIT_H_
#define ABLATE_COMMON_TRAINER_EXIT_H_

namespace ablate {

// Trained to the end.
inline constexpr int kTrainerDone = 0;
// Failed in a way another attempt may not meet (the device went away, an internal error): the
// coordinator retries while the job has attempts left.
inline constexpr int kTrainerFailed = 1;
// Bad arguments or job file: every attempt would fail the same way.
inline constexpr int kTrainerBadUsage = 2;
// Failed in a way another attempt would meet again (a full disk, a diverged run, a refused
// checkpoint): the job fails at once.
inline constexpr int kTrainerFailedPermanently = 3;
// 128 + the signal (143 for SIGTERM): stopped by that signal at a step boundary, after its
// checkpoint, by someone other than its worker (which reports the stops it makes itself), such
// as a batch system preempting the job's processes. Another attempt resumes there: the
// coordinator retries while the job has attempts left.
inline constexpr int kTrainerStoppedBySignal = 128;
inline bool StoppedBySignal(int exit_code) {
  return exit_code > kTrainerStoppedBySignal && exit_code < kTrainerStoppedBySignal + 64;
}

}  // namespace ablate

#endif  // ABLATE_COMMON_TRAINER_EXIT_H_
