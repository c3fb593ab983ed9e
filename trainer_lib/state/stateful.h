// A piece of a run's state (model weights, optimizer state, data position, progress, random
// generators) that writes itself into a checkpoint folder and reads itself back. A checkpoint
// is "save every piece" (trainer_lib/train/checkpoint.h), so a piece can later change how it
// stores itself (a sharded optimizer writing one file per rank) without touching the rest.
//
// Thread-safety: a piece is saved or loaded by one thread at a time, like the state it wraps.
#ifndef ABLATE_TRAINER_LIB_STATE_STATEFUL_H_
#define ABLATE_TRAINER_LIB_STATE_STATEFUL_H_

#include <filesystem>
#include <string>

#include "absl/status/status.h"

namespace ablate::train {

class Stateful {
 public:
  virtual ~Stateful() = default;

  // A short name, unique within a checkpoint, that prefixes the piece's files ("model").
  virtual std::string Name() const = 0;

  // Writes the piece's files, named <Name()>.*, into the existing folder `dir`; the caller
  // flushes them to disk. ResourceExhausted naming the file when the disk is full
  // ("...: no space left on device"), Internal naming the file for other I/O errors.
  virtual absl::Status Save(const std::filesystem::path& dir) = 0;

  // Reads back what Save wrote into `dir`, whose files the caller has verified are whole.
  // DataLoss naming what does not fit (a tensor's shape, a parameter this run lacks) and
  // leaving the piece unchanged where it can.
  virtual absl::Status Load(const std::filesystem::path& dir) = 0;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_STATE_STATEFUL_H_
