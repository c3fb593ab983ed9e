// examples/nsa-vs-dense.yaml through the real binaries: ablate-coordinator, one ablate-worker
// running ablate-train per job, driven by the `ablate` CLI, on loopback and on CPU. Both cells
// train, NSA with the attention_args the sweep file gave it. About 20 s on 2 cores: in the long
// set.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"

namespace ablate {
namespace {

constexpr absl::Duration kSweepTimeout = absl::Minutes(15);

class NsaSweepTest : public test::ClusterTest {
 protected:
  // The example, its checkpoints moved into this test's folder.
  std::string CopyExample() {
    std::ifstream in(std::string(ABLATE_SOURCE_DIR) + "/examples/nsa-vs-dense.yaml");
    std::stringstream text;
    text << in.rdbuf();
    std::string yaml = text.str();
    const std::string root = "checkpoint_root: runs/checkpoints";
    const size_t at = yaml.find(root);
    EXPECT_NE(at, std::string::npos);
    yaml.replace(at, root.size(), absl::StrCat("checkpoint_root: ", dir_, "/checkpoints"));
    std::string path = dir_ + "/nsa-vs-dense.yaml";
    std::ofstream(path) << yaml;
    return path;
  }
};

TEST_F(NsaSweepTest, DenseAndNsaCellsBothTrain) {
  auto coordinator = test::TestCoordinator::Start(bin_dir_, dir_, {}, 0, {"nsa-1"});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = std::move(*coordinator);
  auto worker = test::StartWorker(bin_dir_, coordinator_->grpc_address(), "nsa-1", dir_ + "/worker",
                                  /*slots=*/2, {"--checkpoint-root", dir_ + "/checkpoints"});
  ASSERT_TRUE(worker.ok()) << worker.status();
  workers_.push_back(std::move(*worker));

  auto cli =
      test::Subprocess::Start({bin_dir_ + "/ablate", "--coordinator", coordinator_->grpc_address(),
                               "submit", CopyExample(), "--watch"});
  ASSERT_TRUE(cli.ok()) << cli.status();
  auto cli_exit = (*cli)->WaitFor(kSweepTimeout);
  ASSERT_TRUE(cli_exit.ok()) << cli_exit.status() << Logs();
  EXPECT_EQ(*cli_exit, 0) << (*cli)->Stdout() << (*cli)->Stderr() << Logs();

  // The jobs as a user's script reads them: `ablate status SWEEP --json`.
  const std::string out = (*cli)->Stdout();
  const std::string marker = "submitted sweep ";
  const size_t at = out.find(marker);
  ASSERT_NE(at, std::string::npos) << out;
  const size_t id_at = at + marker.size();
  const std::string sweep_id = out.substr(id_at, out.find(':', id_at) - id_at);
  auto status =
      test::Subprocess::Start({bin_dir_ + "/ablate", "--coordinator", coordinator_->grpc_address(),
                               "status", sweep_id, "--json"});
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_EQ(*(*status)->WaitFor(absl::Seconds(30)), 0) << (*status)->Stderr();
  v1::SweepSnapshot snapshot;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage((*status)->Stdout(), &snapshot).ok())
      << (*status)->Stdout();
  ASSERT_EQ(snapshot.jobs_size(), 2);
  std::map<std::string, double> final_loss;
  for (const v1::Job& job : snapshot.jobs()) {
    const v1::TrainConfig& config = job.spec().config();
    SCOPED_TRACE(config.attention());
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.message();
    EXPECT_EQ(job.step(), 80);
    ASSERT_TRUE(job.has_final_eval_loss());
    final_loss[config.attention()] = job.final_eval_loss();
    // The sweep's arguments reached the NSA job as typed values; dense, which ignores them,
    // holds none.
    if (config.attention() == "dense") {
      EXPECT_TRUE(config.attention_args().empty());
      continue;
    }
    ASSERT_EQ(config.attention_args().count("block_size"), 1u);
    EXPECT_EQ(config.attention_args().at("block_size"), 16);
    EXPECT_EQ(config.attention_args().at("window"), 64);
  }
  ASSERT_EQ(final_loss.size(), 2u);
  std::printf("final eval loss: dense %.4f, nsa %.4f\n", final_loss["dense"], final_loss["nsa"]);
  // A byte-uniform guess scores ln 256 = 5.55; both learn, and NSA stays near dense.
  EXPECT_LT(final_loss["dense"], 4.5);
  EXPECT_LT(final_loss["nsa"], 4.5);
  EXPECT_LT(final_loss["nsa"], 1.15 * final_loss["dense"]);
}

}  // namespace
}  // namespace ablate
