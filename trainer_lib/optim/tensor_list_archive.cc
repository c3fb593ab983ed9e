#include "trainer_lib/optim/tensor_list_archive.h"

#include <torch/torch.h>

namespace ablate::train {

void WriteTensorList(torch::serialize::OutputArchive& archive, const std::string& prefix,
                     const std::vector<at::Tensor>& list) {
  archive.write(prefix + "_count", c10::IValue(static_cast<int64_t>(list.size())));
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].defined()) archive.write(prefix + "_" + std::to_string(i), list[i]);
  }
}

std::vector<at::Tensor> ReadTensorList(torch::serialize::InputArchive& archive,
                                       const std::string& prefix) {
  c10::IValue count;
  archive.read(prefix + "_count", count);
  std::vector<at::Tensor> list(static_cast<size_t>(count.toInt()));
  for (size_t i = 0; i < list.size(); ++i) {
    at::Tensor t;
    if (archive.try_read(prefix + "_" + std::to_string(i), t)) list[i] = t;
  }
  return list;
}

}  // namespace ablate::train
