// The data of a training job (TrainConfig.dataset): a training split and a held-out split of
// tokens, and the batches cut from them (batches.h says which sequences make each batch).
//
// A dataset names a directory: "builtin:NAME" is the folder NAME under the data directory
// ($ABLATE_DATA_DIR when set, else the source tree's data/); anything else is a path. The
// directory holds either
//   dataset.json, train.bin, valid.bin   a prepared dataset: token files scripts/prepare_data.py
//                                        wrote with a Hugging Face tokenizer, memory-mapped;
//   train.txt, valid.txt                 a byte corpus (builtin:tiny-corpus): each byte is a
//                                        token, vocabulary 256, read whole into memory.
// A directory with a dataset.json is a prepared dataset whatever else it holds.
//
// A Dataset is immutable after Open; every const method is safe from any number of threads.
#ifndef ABLATE_TRAINER_LIB_DATA_DATASET_H_
#define ABLATE_TRAINER_LIB_DATA_DATASET_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "trainer_lib/data/batches.h"

namespace ablate::train {

struct Batch {
  at::Tensor inputs;   // [B, T] int64, on the CPU
  at::Tensor targets;  // [B, T] int64, inputs shifted left by one token
};

class Dataset {
 public:
  // Opens `name` and checks that each split holds at least one sequence of
  // context_length + 1 tokens. Every message names the dataset and the file:
  //   NotFound             no such directory, or one with neither a dataset.json nor a
  //                        train.txt, or a split file missing;
  //   DataLoss             a malformed manifest, or a token file whose size disagrees with it;
  //   FailedPrecondition   a split too short for context_length, or an empty text split;
  //   Internal             a file that exists but cannot be read or mapped.
  // A prepared dataset's files are not hashed here (that would read them whole): the manifest's
  // sizes are checked, and every id read is checked against its vocabulary (TokenFile).
  static absl::StatusOr<Dataset> Open(const std::string& name, int64_t context_length);

  Dataset(Dataset&&) noexcept;
  Dataset& operator=(Dataset&&) noexcept;
  ~Dataset();

  // FailedPrecondition, naming the dataset, when its ids do not all fit a model whose embedding
  // has `model_vocab_size` rows.
  absl::Status CheckVocabulary(int64_t model_vocab_size) const;

  // The batch of training step `step` (TrainSequences) and evaluation batch `index`
  // (EvalSequences). FailedPrecondition, naming the file and position, when a token file holds
  // an id outside its vocabulary (a file changed after preparation).
  absl::StatusOr<Batch> TrainBatch(BatchShape shape, uint64_t data_seed, int64_t step) const;
  absl::StatusOr<Batch> EvalBatch(BatchShape shape, int64_t index) const;

  const std::string& name() const { return name_; }
  int64_t vocab_size() const { return vocab_size_; }
  // The token a prepared dataset writes after every document (its manifest's eos_id); none
  // for a byte corpus.
  std::optional<int64_t> eos_id() const { return eos_id_; }
  int64_t train_tokens() const;
  int64_t valid_tokens() const;

  // The data's identity for a run's provenance: hex SHA-256 of the text `sha256sum` prints for
  // the two split files, in the directory, train first ("<hex>  train.bin\n<hex>  valid.bin\n"
  // or the same for train.txt and valid.txt). A prepared dataset's comes from its manifest; a
  // byte corpus's is computed when it is read.
  const std::string& sha256() const { return sha256_; }

 private:
  class Split;  // one split's tokens: a TokenFile or an in-memory byte tensor

  Dataset(std::string name, int64_t vocab_size, std::optional<int64_t> eos_id,
          std::string sha256, std::unique_ptr<const Split> train,
          std::unique_ptr<const Split> valid);

  absl::StatusOr<Batch> Gather(const Split& split, const std::vector<int64_t>& sequences,
                               int64_t context_length) const;

  std::string name_;
  int64_t vocab_size_ = 0;
  std::optional<int64_t> eos_id_;
  std::string sha256_;
  std::unique_ptr<const Split> train_;
  std::unique_ptr<const Split> valid_;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_DATA_DATASET_H_
