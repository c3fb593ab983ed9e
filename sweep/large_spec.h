// A sweep spec large enough to measure expansion and submission: 1,000 seeds x 100 learning
// rates, 100,000 cells, each a distinct config. For tests and benchmarks only.
#ifndef ABLATE_SWEEP_LARGE_SPEC_H_
#define ABLATE_SWEEP_LARGE_SPEC_H_

#include "ablate/v1/sweep.pb.h"

namespace ablate::sweep {

v1::SweepSpec HundredThousandCellSpec();

}  // namespace ablate::sweep

#endif  // ABLATE_SWEEP_LARGE_SPEC_H_
