// A run's checkpoints, in the folder a job names (JobSpec.checkpoint_dir):
//   <dir>/step-00000040/   one file or more per piece (model.pt, optimizer.pt, ...) and
//                          MANIFEST, written last: each file's SHA-256, size and name
// A checkpoint is "save every piece": each Stateful piece writes and reads its own files, so
// pieces can change how they store themselves (sharded, say) without touching this.
//
// Invariants:
//  1. A folder step-N is complete. It is written as <dir>/.tmp-step-N, every file and the
//     folder flushed to disk, then renamed into place and the parent flushed, so a crash or
//     SIGKILL at any moment leaves the previous checkpoints and at most a .tmp- folder.
//  2. Saving never removes a complete checkpoint before its successor is in place; after a
//     save the newest `keep` step folders remain and no .tmp- folder does.
//  3. Loading verifies the MANIFEST before any piece reads a byte. A folder that fails (torn
//     or corrupted on disk after the fact) is renamed step-N.corrupt, kept for inspection and
//     never loaded again, and the next older one is tried.
// One process uses a folder at a time (the job's single trainer); not thread-safe.
#ifndef ABLATE_TRAINER_LIB_TRAIN_CHECKPOINT_H_
#define ABLATE_TRAINER_LIB_TRAIN_CHECKPOINT_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "trainer_lib/state/stateful.h"

namespace ablate::train {

class CheckpointDir {
 public:
  // `keep` >= 1 newest checkpoints are kept.
  CheckpointDir(std::filesystem::path dir, int keep) : dir_(std::move(dir)), keep_(keep) {}

  // Writes step `step` of every piece and removes checkpoints beyond the newest `keep`.
  // Returns its folder; if `dir` already holds this step's, keeps it. Errors name the path:
  // ResourceExhausted ("...: no space left on device") when the disk is full, Internal for
  // other I/O errors; either way the partial folder is removed and older checkpoints remain.
  absl::StatusOr<std::filesystem::path> Save(int64_t step,
                                             const std::vector<Stateful*>& pieces);

  struct Loaded {
    int64_t step = 0;
    std::filesystem::path path;
  };

  // Loads the newest complete checkpoint into every piece, in order (put the piece that
  // checks the run's configuration first), or returns nullopt when there is none (or `dir`
  // does not exist). Appends to `skipped` one line per newer checkpoint set aside as
  // unreadable, naming it and why, for the run's log. A piece's own error (a configuration that differs, a model that does not fit) is returned as is:
  // it is not corruption, and an older checkpoint would fail the same way.
  absl::StatusOr<std::optional<Loaded>> LoadLatest(const std::vector<Stateful*>& pieces,
                                                   std::vector<std::string>& skipped);

  // The folder of the newest checkpoint that verifies, without loading or moving anything:
  // for readers such as an export, which then load the pieces they need from it (ModelState's
  // model.pt). NotFound when there is none.
  absl::StatusOr<std::filesystem::path> NewestComplete() const;

 private:
  absl::Status Prune(const std::filesystem::path& newest);

  const std::filesystem::path dir_;
  const int keep_;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_CHECKPOINT_H_
