#include "sweep/large_spec.h"

#include "absl/strings/str_format.h"

namespace ablate::sweep {

v1::SweepSpec HundredThousandCellSpec() {
  v1::SweepSpec spec;
  spec.set_name("large");
  v1::Dimension& seeds = *spec.add_grid();
  seeds.set_name("seed");
  for (int i = 0; i < 1000; ++i) seeds.add_values(absl::StrFormat("%d", i));
  v1::Dimension& rates = *spec.add_grid();
  rates.set_name("learning_rate");
  for (int i = 1; i <= 100; ++i) rates.add_values(absl::StrFormat("%de-4", i));
  return spec;
}

}  // namespace ablate::sweep
