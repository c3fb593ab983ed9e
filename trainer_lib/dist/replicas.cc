#include "trainer_lib/dist/replicas.h"

#include <string>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "trainer_lib/state/digest.h"

namespace ablate::train::dist {

absl::Status CheckReplicasAgree(ProcessGroup* group, const std::vector<at::Tensor>& tensors,
                                int64_t step) {
  if (group == nullptr) return absl::OkStatus();
  Sha256 sha;
  for (const at::Tensor& t : tensors) {
    const at::Tensor host = t.detach().to(torch::kCPU).contiguous();
    sha.Update(host.data_ptr(), host.numel() * host.element_size());
  }
  // 60 bits of the digest fit an int64 and leave a chance collision at 2^-60.
  const int64_t word = static_cast<int64_t>(std::stoull(sha.Hex().substr(0, 15), nullptr, 16));
  const std::vector<int64_t> words = group->AllGather(word);
  for (size_t r = 1; r < words.size(); ++r) {
    if (words[r] != words[0]) {
      return absl::InternalError(
          absl::StrCat("step ", step, ": parameters of rank ", r, " differ from rank 0's"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSameValue(ProcessGroup& group, int64_t value, const char* what) {
  const std::vector<int64_t> values = group.AllGather(value);
  for (const int64_t v : values) {
    if (v == values[0]) continue;
    std::vector<std::string> parts;
    for (size_t r = 0; r < values.size(); ++r)
      parts.push_back(absl::StrCat("rank ", r, " ", values[r]));
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", absl::StrJoin(parts, ", ")));
  }
  return absl::OkStatus();
}

}  // namespace ablate::train::dist
