// Loads a text corpus (TrainConfig.dataset) as byte tokens, split into train and held-out
// parts. A dataset is either "builtin:NAME", a folder NAME under the data directory
// ($ABLATE_DATA_DIR when set, else the source tree's data/), or a path to a folder; the folder
// holds train.txt and valid.txt. Stateless; safe from any thread.
#ifndef ABLATE_TRAINER_LIB_DATA_CORPUS_H_
#define ABLATE_TRAINER_LIB_DATA_CORPUS_H_

#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"

namespace ablate::train {

struct Corpus {
  at::Tensor train;  // [N_train] uint8 byte tokens, on the CPU
  at::Tensor valid;  // [N_valid] uint8, held out: a different text of the same distribution
};

// NotFound when the folder or a split file is missing or unreadable, FailedPrecondition when a
// split is empty; the message names the dataset and the file.
absl::StatusOr<Corpus> LoadCorpus(const std::string& dataset);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_DATA_CORPUS_H_
