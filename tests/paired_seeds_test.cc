// Repeats pair their runs: cells of a sweep that share a seed start from the same weights and
// read the same first batch, whatever else differs (optimizer, learning rate), because the
// trainer draws initialisation from `seed` alone and batches from `data_seed` alone, and the
// sweep gives repeat r both seeds r. Checked from the sweep file through ExpandSweep to the
// trainer: the first step's loss and gradient norm are computed before any update, so they
// are equal exactly when the initial weights and the first batch are.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sweep/grid.h"
#include "sweep/sweep_file.h"
#include "trainer_lib/train/trainer.h"

namespace ablate {
namespace {

class MemorySink : public train::EventSink {
 public:
  absl::Status Send(const v1::TrainerEvent& event) override {
    for (const v1::MetricPoint& point : event.metrics().points()) {
      if (point.step() == 1 && point.name() == "train/loss") loss = point.value();
      if (point.step() == 1 && point.name() == "train/grad_norm") grad_norm = point.value();
    }
    if (event.has_finished()) ok = event.finished().ok();
    return absl::OkStatus();
  }
  double loss = -1;
  double grad_norm = -1;
  bool ok = false;
};

struct FirstStep {
  double loss;
  double grad_norm;
};

FirstStep RunFirstStep(v1::JobSpec job) {
  job.set_checkpoint_dir("");
  job.mutable_config()->set_cpu_threads(1);
  MemorySink sink;
  train::StopRequest stop{0};
  EXPECT_TRUE(train::Run(job, sink, stop).ok());
  EXPECT_TRUE(sink.ok);
  return {sink.loss, sink.grad_norm};
}

TEST(PairedSeedsTest, CellsWithTheSameSeedStartAlike) {
  absl::StatusOr<v1::SweepSpec> spec = sweep::LoadSweepFile("examples/optimizer-study.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  // One step, logged: the study's cells as they are, only shorter.
  auto& fixed = *spec->mutable_fixed();
  fixed["steps"] = "1";
  fixed["warmup_steps"] = "0";
  fixed["eval_every"] = "0";
  fixed["log_every"] = "1";
  absl::StatusOr<sweep::Expansion> expansion = sweep::ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 9u);  // adamw, muon, soap x seeds 1, 2, 3
  const v1::JobSpec& adamw1 = expansion->jobs[0];
  const v1::JobSpec& adamw2 = expansion->jobs[1];
  const v1::JobSpec& muon1 = expansion->jobs[3];
  const v1::JobSpec& soap1 = expansion->jobs[6];
  ASSERT_EQ(muon1.config().optimizer(), "muon");
  ASSERT_EQ(muon1.config().seed(), 1u);
  ASSERT_NE(muon1.config().learning_rate(), adamw1.config().learning_rate());

  const FirstStep a1 = RunFirstStep(adamw1);
  ASSERT_GT(a1.loss, 0);
  for (const v1::JobSpec* same_seed : {&muon1, &soap1}) {
    const FirstStep other = RunFirstStep(*same_seed);
    EXPECT_EQ(other.loss, a1.loss) << same_seed->config().optimizer();
    EXPECT_EQ(other.grad_norm, a1.grad_norm) << same_seed->config().optimizer();
  }
  // Another repeat is another draw of both.
  EXPECT_NE(RunFirstStep(adamw2).loss, a1.loss);
  // Each seed does its own part: only the data order, or only the initialisation, changed.
  v1::JobSpec other_data = adamw1;
  other_data.mutable_config()->set_data_seed(2);
  EXPECT_NE(RunFirstStep(other_data).loss, a1.loss);
  v1::JobSpec other_init = adamw1;
  other_init.mutable_config()->set_seed(2);
  EXPECT_NE(RunFirstStep(other_init).loss, a1.loss);
}

}  // namespace
}  // namespace ablate
