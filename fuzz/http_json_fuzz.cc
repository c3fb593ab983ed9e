// libFuzzer target: a request body of the JSON API decoded as each state-changing route
// decodes it (coordinator/http/json_reply.h), then a SubmitSweepRequest through the checks the
// API runs before it touches the store: its sweep file read, or its spec validated and, when
// small, expanded.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ablate/v1/sweep_service.pb.h"
#include "coordinator/http/json_reply.h"
#include "sweep/grid.h"
#include "sweep/sweep_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  ablate::v1::CancelRequest cancel;
  (void)ablate::coordinator::ParseJsonBody(body, cancel);
  ablate::v1::RetryJobsRequest retry;  // enum values by short name (json_enums.h)
  (void)ablate::coordinator::ParseJsonBody(body, retry);
  ablate::v1::SubmitSweepRequest submit;
  if (!ablate::coordinator::ParseJsonBody(body, submit).ok()) return 0;
  ablate::v1::SweepSpec spec = submit.spec();
  if (!submit.sweep_file().empty()) {
    absl::StatusOr<ablate::v1::SweepSpec> parsed =
        ablate::sweep::ParseSweepYaml(submit.sweep_file(), submit.sweep_file_name());
    if (!parsed.ok()) return 0;
    spec = *std::move(parsed);
  }
  if (!ablate::sweep::ValidateSweepSpec(spec).ok()) return 0;
  (void)ablate::sweep::SweepId(spec);
  uint64_t cells = 1;
  for (const ablate::v1::Dimension& dimension : spec.grid()) {
    cells *= static_cast<uint64_t>(dimension.values_size());
    if (cells > 4096) return 0;
  }
  (void)ablate::sweep::ExpandSweep(spec);
  return 0;
}
