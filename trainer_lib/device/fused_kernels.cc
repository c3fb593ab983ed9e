#include "trainer_lib/device/fused_kernels.h"

#include <cstdlib>
#include <cstring>

namespace ablate::train {

bool FusedKernelsEnabled() {
#ifdef ABLATE_FUSED_KERNELS
  static const bool enabled = [] {
    const char* value = std::getenv("ABLATE_FUSED_KERNELS");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return enabled;
#else
  return false;
#endif
}

}  // namespace ablate::train
