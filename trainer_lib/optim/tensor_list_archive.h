// Lists of tensors, some undefined, in a torch archive: the per-dimension Kronecker factors
// and bases of the preconditioned optimizers, whose count is the parameter's rank and whose
// entries are undefined for unpreconditioned dimensions. Stateless; safe from any thread.
#ifndef ABLATE_TRAINER_LIB_OPTIM_TENSOR_LIST_ARCHIVE_H_
#define ABLATE_TRAINER_LIB_OPTIM_TENSOR_LIST_ARCHIVE_H_

#include <string>
#include <vector>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

namespace ablate::train {

// Writes <prefix>_count and <prefix>_<i> for each defined entry.
void WriteTensorList(torch::serialize::OutputArchive& archive, const std::string& prefix,
                     const std::vector<at::Tensor>& list);

// The list WriteTensorList wrote; throws c10::Error when <prefix>_count is missing.
std::vector<at::Tensor> ReadTensorList(torch::serialize::InputArchive& archive,
                                       const std::string& prefix);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_TENSOR_LIST_ARCHIVE_H_
