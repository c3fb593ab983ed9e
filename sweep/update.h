// An edited spec set against the jobs of the stored sweep it updates (`ablate submit
// --update`). A cell's identity is its resolved config (JobSpec.config_hash): a cell the
// sweep holds is the same cell whatever its position in the grid or the spelling of its
// values, and a cell whose config changed is a new cell. A stored job is matched by its config
// normalized as an expansion normalizes one now (WithoutExplicitDefaults, train_config.h), so
// a job stored by a release that kept a setting written at its default, or a dense job's
// attention_args, is still its cell's and keeps its id. With tuning, a cell's later trials
// and final jobs (which the spec does not list) are kept while its search and first-rung
// trials are unchanged, and dropped with them otherwise. Pure; safe from any thread.
#ifndef ABLATE_SWEEP_UPDATE_H_
#define ABLATE_SWEEP_UPDATE_H_

#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "sweep/grid.h"

namespace ablate::sweep {

struct Update {
  // The spec's jobs the sweep lacks, as jobs of the stored sweep: its sweep_id, indexes after
  // the stored ones (in the spec's expansion order), ids and checkpoint dirs named as
  // ExpandSweep names them but under the stored sweep's id, never equal to a stored job's id.
  std::vector<v1::JobSpec> added;
  std::vector<std::string> reused;   // stored job ids whose config the spec still has
  std::vector<std::string> dropped;  // stored job ids whose config the spec no longer has
};

// `expansion` is ExpandSweep(spec); `stored` the specs of every job of sweep `sweep_id`.
Update UpdateOf(const std::string& sweep_id, const std::vector<v1::JobSpec>& stored,
                const v1::SweepSpec& spec, Expansion expansion);

}  // namespace ablate::sweep

#endif  // ABLATE_SWEEP_UPDATE_H_
