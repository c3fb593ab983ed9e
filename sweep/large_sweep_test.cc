// The 100,000-cell spec (sweep/large_spec.h) through ExpandSweep, whose cells resolve on several
// threads: its jobs and its first invalid cell come out as a serial expansion gives them.
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/grid.h"
#include "sweep/large_spec.h"

namespace ablate::sweep {
namespace {

// A large sweep's cells resolve on two threads; its jobs come out as a serial expansion gave
// them: the digest of its 100,000 ids in order is the one of the expansion before threads.
TEST(GridTest, HundredThousandCells) {
  const v1::SweepSpec spec = HundredThousandCellSpec();
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 100000u);
  // Six hex digits collide among 100,000 hashes; ids lengthen where they would.
  absl::flat_hash_set<absl::string_view> ids;
  uint64_t digest = 14695981039346656037u;  // FNV-1a of the ids, each ended by a newline
  for (const v1::JobSpec& job : expansion->jobs) {
    ids.insert(job.job_id());
    for (const char c : job.job_id() + "\n")
      digest = (digest ^ static_cast<uint8_t>(c)) * 1099511628211u;
  }
  EXPECT_EQ(ids.size(), expansion->jobs.size());
  EXPECT_EQ(digest, 5674393773621922941u);
  EXPECT_EQ(expansion->jobs[54321].index(), 54321u);
  EXPECT_EQ(CellLabel(expansion->jobs[54321]), "seed=543 learning_rate=22e-4");
}

// Of several invalid cells, the first in run order is named, whichever thread resolved it.
TEST(GridTest, ALargeSweepNamesItsFirstInvalidCell) {
  v1::SweepSpec spec = HundredThousandCellSpec();
  v1::Override& long_context = *spec.add_overrides();
  v1::Condition& when = *long_context.add_when();
  when.set_dimension("seed");
  when.add_values("900");
  when.add_values("3");
  (*long_context.mutable_set())["context_length"] = "1M";
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_FALSE(expansion.ok());
  // The other cells the same override broke are counted after it.
  EXPECT_THAT(
      std::string(expansion.status().message()),
      ::testing::MatchesRegex("cell seed=3 learning_rate=1e-4: context_length: 1048576 "
                              "requires attention nsa \\(got dense, which takes at most 131072\\) "
                              "\\(so do cells "
                              "seed=3 learning_rate=[^,]+, seed=3 learning_rate=[^,]+, "
                              "seed=3 learning_rate=[^ ]+ and [0-9]+ more\\)"));
}

}  // namespace
}  // namespace ablate::sweep
