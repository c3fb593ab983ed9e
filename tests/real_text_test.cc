// Real text through the whole data path, with the real programs: scripts/prepare_cmake_docs.sh
// trains a 256-id byte-level BPE with Hugging Face's tokenizers (scripts/train_tokenizer.py)
// and prepares a dataset with it (scripts/prepare_data.py), as `make demo` does; then
// `ablate-train train` trains the tiny model on that dataset.
//
// The text is CMake's reference documentation, about 2.5 MB of English in 1,900
// reStructuredText files under /usr/share/cmake-<version>/Help. It comes with Debian's
// cmake-data package, which every machine that builds Ablate has (cmake depends on it). Its
// copyright file (/usr/share/doc/cmake-data/copyright) puts these files under the BSD
// 3-clause license, which permits use and redistribution with or without modification.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/event_pipe.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"

namespace ablate {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Runs a command to completion: its exit code, and what it wrote to stderr in `err`.
int RunToEnd(const std::vector<std::string>& argv, std::string* err) {
  absl::StatusOr<std::unique_ptr<test::Subprocess>> process = test::Subprocess::Start(argv);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return -1;
  absl::StatusOr<int> code = (*process)->WaitFor(absl::Seconds(300));
  EXPECT_TRUE(code.ok()) << argv[1] << ": " << code.status();
  *err = (*process)->Stderr();
  return code.ok() ? *code : -1;
}

std::string TinyJob(const std::string& dataset) {
  return absl::StrCat(R"({"job_id": "real-text", "config": {
    "model": "tiny", "attention": "dense", "optimizer": "adamw", "context_length": 64,
    "batch_size": 16, "steps": 60, "warmup_steps": 5, "learning_rate": 0.01,
    "min_lr_ratio": 0.1, "weight_decay": 0.1, "grad_clip": 1.0, "log_every": 5,
    "eval_every": 0, "eval_batches": 4, "precision": "fp32", "gpus": 0, "cpu_threads": 1,
    "seed": 1, "data_seed": 1, "optimizer_args": {"beta2": 0.95},
    "dataset": ")",
                      dataset, R"("}})");
}

// Trains with `ablate-train train --job FILE --events-fd 3 --checkpoint-dir DIR/checkpoints`,
// descriptor 3 open on a file, and returns the events it wrote and its exit code.
std::vector<v1::TrainerEvent> Train(const fs::path& dir, const std::string& dataset, int* code) {
  const fs::path job = dir / "job.json";
  const fs::path events = dir / "events.bin";
  std::ofstream(job) << TinyJob(dataset);
  absl::StatusOr<std::string> bin = test::BinDir();
  EXPECT_TRUE(bin.ok()) << bin.status();
  absl::StatusOr<std::unique_ptr<test::Subprocess>> trainer = test::Subprocess::Start(
      {"/bin/sh", "-c",
       "exec \"$0\" train --job \"$1\" --events-fd 3 --checkpoint-dir \"$3\" 3>\"$2\"",
       *bin + "/ablate-train", job.string(), events.string(), (dir / "checkpoints").string()});
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  absl::StatusOr<int> exit = (*trainer)->WaitFor(absl::Seconds(300));
  EXPECT_TRUE(exit.ok()) << exit.status();
  *code = exit.ok() ? *exit : -1;

  std::vector<v1::TrainerEvent> out;
  const int fd = ::open(events.c_str(), O_RDONLY | O_CLOEXEC);
  EventReader reader(fd);
  while (true) {
    absl::StatusOr<std::optional<v1::TrainerEvent>> event = reader.Next();
    EXPECT_TRUE(event.ok()) << event.status();
    if (!event.ok() || !event->has_value()) break;
    out.push_back(**event);
  }
  ::close(fd);
  return out;
}

std::vector<double> Values(const std::vector<v1::TrainerEvent>& events, const std::string& name) {
  std::vector<double> values;
  for (const v1::TrainerEvent& e : events) {
    for (const v1::MetricPoint& p : e.metrics().points()) {
      if (p.name() == name) values.push_back(p.value());
    }
  }
  return values;
}

class RealTextTest : public testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = test::MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
};

TEST_F(RealTextTest, TheTinyModelLearnsPreparedCMakeDocumentation) {
  const fs::path data = dir_ / "cmake-docs";
  std::string progress;
  ASSERT_EQ(RunToEnd({"/bin/bash", "scripts/prepare_cmake_docs.sh", data.string()}, &progress), 0)
      << progress;
  EXPECT_THAT(progress, HasSubstr("documents"));
  EXPECT_TRUE(fs::exists(data / "tokenizer.json"));

  int code = -1;
  const std::vector<v1::TrainerEvent> events = Train(dir_, data.string(), &code);
  EXPECT_EQ(code, 0);
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_finished());
  EXPECT_TRUE(events.back().finished().ok()) << events.back().finished().error();
  const std::vector<double> loss = Values(events, "train/loss");
  ASSERT_GE(loss.size(), 2u);
  // From about ln(256) = 5.5 nats, uniform over the vocabulary, to well below it in 60 steps
  // (to about 4.2 on CMake 3.25's text); single batches are noisy, so the last three are
  // averaged.
  EXPECT_GT(loss.front(), 4.8);
  ASSERT_GE(loss.size(), 6u);
  const double last = (loss[loss.size() - 1] + loss[loss.size() - 2] + loss[loss.size() - 3]) / 3;
  EXPECT_LT(last, loss.front() - 0.6);
  EXPECT_LT(events.back().finished().final_eval_loss(), std::log(256.0) - 1.0);

  // Its export names the dataset's document separator as the end token, for generate().
  std::string err;
  ASSERT_EQ(RunToEnd({*test::BinDir() + "/ablate-train", "export", "--checkpoint",
                      (dir_ / "checkpoints").string(), "--out", (dir_ / "export").string()},
                     &err),
            0)
      << err;
  const nlohmann::json manifest = nlohmann::json::parse(std::ifstream(data / "dataset.json"));
  const nlohmann::json exported = nlohmann::json::parse(std::ifstream(dir_ / "export/config.json"));
  ASSERT_TRUE(manifest.contains("eos_id"));
  EXPECT_EQ(exported.value("eos_token_id", -1), manifest["eos_id"].get<int>());
  EXPECT_FALSE(exported.contains("bos_token_id"));
  // It carries the tokenizer that prepared the data, for AutoTokenizer.
  const auto contents = [](const fs::path& path) {
    std::ostringstream bytes;
    bytes << std::ifstream(path, std::ios::binary).rdbuf();
    return bytes.str();
  };
  EXPECT_EQ(contents(dir_ / "export/tokenizer.json"), contents(data / "tokenizer.json"));

  // eval reads a split at the width its dataset.json gives: the same ids as uint32, in a
  // dataset whose manifest says 4 bytes, give the same loss, though the vocabulary of 256
  // would say 2.
  const fs::path wide = dir_ / "wide";
  fs::create_directories(wide);
  std::ifstream narrow_file(data / "valid.bin", std::ios::binary);
  std::ofstream wide_file(wide / "valid.bin", std::ios::binary);
  for (uint16_t id = 0; narrow_file.read(reinterpret_cast<char*>(&id), sizeof(id));) {
    const uint32_t widened = id;
    wide_file.write(reinterpret_cast<const char*>(&widened), sizeof(widened));
  }
  wide_file.close();
  nlohmann::json wide_manifest = manifest;
  wide_manifest["token_bytes"] = 4;
  std::ofstream(wide / "dataset.json") << wide_manifest.dump();
  auto eval = [&](const fs::path& tokens) {
    absl::StatusOr<std::unique_ptr<test::Subprocess>> process = test::Subprocess::Start(
        {*test::BinDir() + "/ablate-train", "eval", "--model", (dir_ / "export").string(),
         "--tokens", tokens.string(), "--context", "64", "--batches", "4"});
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return std::string();
    EXPECT_EQ((*process)->WaitFor(absl::Seconds(120)).value_or(-1), 0) << (*process)->Stderr();
    return (*process)->Stdout();
  };
  const std::string narrow_loss = eval(data / "valid.bin");
  EXPECT_THAT(narrow_loss, ::testing::StartsWith("loss "));
  EXPECT_EQ(eval(wide / "valid.bin"), narrow_loss);

  // A tokenizer changed since it prepared the data would map the ids to other text: exported
  // again, the directory has none, not even the earlier export's.
  std::ofstream(data / "tokenizer.json", std::ios::app) << "\n";
  ASSERT_EQ(RunToEnd({*test::BinDir() + "/ablate-train", "export", "--checkpoint",
                      (dir_ / "checkpoints").string(), "--out", (dir_ / "export").string()},
                     &err),
            0)
      << err;
  EXPECT_FALSE(fs::exists(dir_ / "export/tokenizer.json"));
}

TEST_F(RealTextTest, ADirectoryWithoutAManifestFailsTheJobAtSetup) {
  const fs::path data = dir_ / "unprepared";
  fs::create_directories(data);
  std::ofstream(data / "train.bin") << "ab";
  int code = -1;
  const std::vector<v1::TrainerEvent> events = Train(dir_, data.string(), &code);
  EXPECT_EQ(code, 3);  // permanent: a retry would meet the same dataset
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_finished());
  EXPECT_FALSE(events.back().finished().ok());
  EXPECT_EQ(events.back().finished().steps(), 0);
  EXPECT_THAT(events.back().finished().error(), HasSubstr((data / "dataset.json").string()));
  EXPECT_THAT(events.back().finished().error(), HasSubstr("no manifest"));
}

}  // namespace
}  // namespace ablate
