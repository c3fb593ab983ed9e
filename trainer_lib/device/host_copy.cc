#include "trainer_lib/device/host_copy.h"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

namespace ablate::train {

at::Tensor CopyToDevice(const at::Tensor& host, const c10::Device& device) {
  TORCH_CHECK(host.device().is_cpu(), "CopyToDevice: a host tensor, got one on ",
              host.device().str());
  if (!device.is_cuda()) return host.to(device);
  // Contiguous as well as page-locked: a strided source would be gathered into a temporary of
  // pageable memory first, and copied from there.
  at::Tensor staged = at::empty(host.sizes(), host.options().pinned_memory(true));
  staged.copy_(host);
  return staged.to(device, /*non_blocking=*/true);
}

}  // namespace ablate::train
