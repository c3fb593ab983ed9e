// An edited spec against a stored sweep: cells matched by their resolved config, whatever
// their order or spelling; new ids never collide with stored ones.
#include "sweep/update.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/grid.h"
#include "sweep/sweep_file.h"

namespace ablate::sweep {
namespace {

using ::testing::ElementsAre;

Expansion ExpandYaml(const std::string& yaml) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(yaml, "s.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  EXPECT_TRUE(expansion.ok()) << expansion.status();
  return *std::move(expansion);
}

constexpr char kOld[] = R"(name: u
grid:
  learning_rate: [1e-3, 2e-3]
  seed: [1, 2]
fixed:
  steps: 10
checkpoint_root: /ckpt
)";

// The learning rates reordered and one spelled differently, 2e-3 dropped, 4e-3 added; and
// steps changed for seed 2 only: seed-2 cells are changed cells.
constexpr char kNew[] = R"(name: u
grid:
  learning_rate: [4e-3, 0.001]
  seed: [1, 2]
fixed:
  steps: 10
overrides:
  - when: {seed: [2]}
    set: {steps: 20}
checkpoint_root: /ckpt
)";

TEST(UpdateTest, KeepsUnchangedConfigsAndAddsTheRestAfterTheStoredJobs) {
  const Expansion old_sweep = ExpandYaml(kOld);
  ASSERT_EQ(old_sweep.jobs.size(), 4u);
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(kNew, "s.yaml");
  ASSERT_TRUE(spec.ok());
  const Update update = UpdateOf(old_sweep.sweep_id, old_sweep.jobs, *spec, ExpandYaml(kNew));

  // lr 1e-3 seed 1 is the only config both hold (index 0 of the old expansion).
  EXPECT_THAT(update.reused, ElementsAre(old_sweep.jobs[0].job_id()));
  EXPECT_THAT(update.dropped, ElementsAre(old_sweep.jobs[1].job_id(), old_sweep.jobs[2].job_id(),
                                          old_sweep.jobs[3].job_id()));
  ASSERT_EQ(update.added.size(), 3u);
  std::vector<std::string> cells;
  for (size_t i = 0; i < update.added.size(); ++i) {
    const v1::JobSpec& job = update.added[i];
    EXPECT_EQ(job.sweep_id(), old_sweep.sweep_id);
    EXPECT_EQ(job.index(), 4 + i) << "indexes follow the stored jobs'";
    EXPECT_EQ(job.job_id(), absl::StrCat(old_sweep.sweep_id, "-", job.config_hash().substr(0, 6)));
    EXPECT_EQ(job.checkpoint_dir(), absl::StrCat("/ckpt/", old_sweep.sweep_id, "/", job.job_id()));
    cells.push_back(absl::StrCat(job.config().learning_rate(), "/", job.config().seed(), "/",
                                 job.config().steps()));
  }
  EXPECT_THAT(cells, ElementsAre("0.004/1/10", "0.004/2/20", "0.001/2/20"));
}

TEST(UpdateTest, TheSameSpecAddsNothing) {
  const Expansion old_sweep = ExpandYaml(kOld);
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(kOld, "s.yaml");
  ASSERT_TRUE(spec.ok());
  const Update update = UpdateOf(old_sweep.sweep_id, old_sweep.jobs, *spec, ExpandYaml(kOld));
  EXPECT_TRUE(update.added.empty());
  EXPECT_TRUE(update.dropped.empty());
  EXPECT_EQ(update.reused.size(), 4u);
}

TEST(UpdateTest, ANewIdIsLengthenedPastAStoredIdItsHashShares) {
  Expansion old_sweep = ExpandYaml(kOld);
  const Expansion edited = ExpandYaml(kNew);
  // Make a stored job's hash share the first 9 digits with the first added cell's.
  const std::string& added_hash = edited.jobs[0].config_hash();  // lr 4e-3, seed 1
  v1::JobSpec& stored = old_sweep.jobs[3];
  stored.set_config_hash(absl::StrCat(added_hash.substr(0, 9), added_hash[9] == '0' ? "1" : "0",
                                      added_hash.substr(10)));
  stored.set_job_id(absl::StrCat(old_sweep.sweep_id, "-", stored.config_hash().substr(0, 6)));
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(kNew, "s.yaml");
  ASSERT_TRUE(spec.ok());
  const Update update = UpdateOf(old_sweep.sweep_id, old_sweep.jobs, *spec, edited);
  ASSERT_FALSE(update.added.empty());
  EXPECT_EQ(update.added[0].config_hash(), added_hash);
  EXPECT_EQ(update.added[0].job_id(),
            absl::StrCat(old_sweep.sweep_id, "-", added_hash.substr(0, 10)));
  EXPECT_NE(update.added[0].job_id(), stored.job_id());
  std::set<std::string> ids;
  for (const v1::JobSpec& job : old_sweep.jobs) ids.insert(job.job_id());
  for (const v1::JobSpec& job : update.added) ids.insert(job.job_id());
  EXPECT_EQ(ids.size(), old_sweep.jobs.size() + update.added.size());
}

constexpr char kNsaVsDense[] = R"(name: n
grid:
  attention: [dense, nsa]
fixed:
  context_length: 256
  attention_args: {block_size: 16, selected_blocks: 4, window: 64}
)";

// Regression: a changed NSA argument ran the finished dense cell again, since dense configs
// carried the attention_args they ignore.
TEST(UpdateTest, AChangedNsaArgumentKeepsTheDenseJob) {
  const Expansion old_sweep = ExpandYaml(kNsaVsDense);
  ASSERT_EQ(old_sweep.jobs.size(), 2u);
  const std::string edited_yaml = absl::StrReplaceAll(kNsaVsDense, {{"window: 64", "window: 32"}});
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(edited_yaml, "s.yaml");
  ASSERT_TRUE(spec.ok());
  const Update update =
      UpdateOf(old_sweep.sweep_id, old_sweep.jobs, *spec, ExpandYaml(edited_yaml));
  EXPECT_THAT(update.reused, ElementsAre(old_sweep.jobs[0].job_id()));  // dense
  EXPECT_THAT(update.dropped, ElementsAre(old_sweep.jobs[1].job_id()));
  ASSERT_EQ(update.added.size(), 1u);
  EXPECT_EQ(update.added[0].config().attention(), "nsa");
  EXPECT_EQ(update.added[0].config().attention_args().at("window"), 32);
}

// Jobs stored by a release that kept a dense cell's attention_args and arguments written at
// their defaults in its config (and hashed it so) are the cells they are: an update of the same
// file keeps every one of them, with the id it has.
TEST(UpdateTest, JobsStoredWithExplicitDefaultsAreKept) {
  const std::string yaml = absl::StrCat(kNsaVsDense, "  optimizer_args: {beta2: 0.95}\n");
  Expansion old_sweep = ExpandYaml(yaml);
  ASSERT_EQ(old_sweep.jobs.size(), 2u);
  for (v1::JobSpec& job : old_sweep.jobs) {
    v1::TrainConfig& config = *job.mutable_config();
    ASSERT_FALSE(config.optimizer_args().contains("beta2"));
    (*config.mutable_optimizer_args())["beta2"] = 0.95;
    (*config.mutable_attention_args())["block_size"] = 16;
    (*config.mutable_attention_args())["selected_blocks"] = 4;
    (*config.mutable_attention_args())["window"] = 64;
    (*config.mutable_attention_args())["paper_selection"] = 0;
    job.set_config_hash(MessageHash(config));
    job.set_job_id(absl::StrCat(old_sweep.sweep_id, "-", job.config_hash().substr(0, 6)));
  }
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(yaml, "s.yaml");
  ASSERT_TRUE(spec.ok());
  const Expansion now = ExpandYaml(yaml);
  ASSERT_NE(now.jobs[0].job_id(), old_sweep.jobs[0].job_id()) << "the stored ids are the old ones";
  const Update update = UpdateOf(old_sweep.sweep_id, old_sweep.jobs, *spec, now);
  EXPECT_THAT(update.reused, ElementsAre(old_sweep.jobs[0].job_id(), old_sweep.jobs[1].job_id()));
  EXPECT_TRUE(update.added.empty());
  EXPECT_TRUE(update.dropped.empty());
}

}  // namespace
}  // namespace ablate::sweep
