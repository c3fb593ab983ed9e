// libFuzzer target: a sweep file's text through the whole edge a user's file meets, the
// YAML limits, the reader and every validation rule, then the grid's expansion when it is
// small enough to expand quickly. Anything but a returned Status (a crash, a sanitizer report,
// an input that takes seconds) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "sweep/grid.h"
#include "sweep/sweep_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ablate::v1::SweepSpec> spec = ablate::sweep::ParseSweepYaml(yaml, "fuzz.yaml");
  if (!spec.ok()) return 0;
  uint64_t cells = 1;
  for (const ablate::v1::Dimension& dimension : spec->grid()) {
    cells *= static_cast<uint64_t>(dimension.values_size());
    if (cells > 4096) return 0;
  }
  (void)ablate::sweep::ExpandSweep(*spec);
  return 0;
}
