// ablate-train: runs one training job, alone or as a worker's child process.
//
//   ablate-train train --job FILE [--events-fd N] [--checkpoint-dir DIR] [--allow-config-change]
//
// FILE holds a JobSpec (or a bare TrainConfig) in protobuf's JSON mapping. With --events-fd,
// length-delimited TrainerEvents go to that descriptor; without it, progress lines go to
// stdout. SIGTERM or SIGINT stops the run at the next step boundary, after a checkpoint, so a
// preempted job resumes where it stopped.
//
// Exit codes: 0 trained; 1 training failed (TrainerFinished says why); 2 bad arguments or job
// file (one line on stderr); 128 + signal when stopped by SIGTERM (143) or SIGINT (130).
#include <fcntl.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "common/log.h"
#include "trainer_lib/train/event_sink.h"
#include "trainer_lib/train/job_file.h"
#include "trainer_lib/train/trainer.h"

namespace {

ablate::train::StopRequest stop_request{0};

constexpr int kFailedPermanently = 3;

extern "C" void OnStopSignal(int signal) { stop_request.store(signal); }

int BadUsage(const std::string& problem) {
  std::cerr << "ablate-train: " << problem << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Runs one Ablate training job."};
  app.require_subcommand(1);
  CLI::App* train = app.add_subcommand("train", "Train the job in a job file");
  std::string job_path;
  std::string checkpoint_dir;
  int events_fd = -1;
  bool allow_config_change = false;
  train->add_option("--job", job_path, "JobSpec or TrainConfig as protobuf JSON")->required();
  train->add_option("--events-fd", events_fd,
                    "Write length-delimited TrainerEvents to this open descriptor");
  train->add_option("--checkpoint-dir", checkpoint_dir,
                    "Where checkpoints are written and resumed from (overrides the job's)");
  train->add_flag("--allow-config-change", allow_config_change,
                  "Resume from a checkpoint written under other settings");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return BadUsage(e.what());
  }

  absl::StatusOr<ablate::v1::JobSpec> job = ablate::train::ReadJobFile(job_path);
  if (!job.ok()) return BadUsage(std::string(job.status().message()));
  if (!checkpoint_dir.empty()) job->set_checkpoint_dir(checkpoint_dir);
  if (allow_config_change) job->mutable_config()->set_allow_config_change(true);
  if (events_fd >= 0 && ::fcntl(events_fd, F_GETFD) == -1) {
    return BadUsage("--events-fd " + std::to_string(events_fd) + " is not an open descriptor");
  }

  // A reader that went away is an error Run reports, not a reason to die on SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  std::unique_ptr<ablate::train::EventSink> events;
  if (events_fd >= 0) {
    events = std::make_unique<ablate::train::PipeEventSink>(events_fd);
  } else {
    events = std::make_unique<ablate::train::ConsoleEventSink>(std::cout);
  }
  const absl::Status status = ablate::train::Run(*job, *events, stop_request);
  if (status.ok()) return 0;
  if (absl::IsCancelled(status) && stop_request.load() != 0) return 128 + stop_request.load();
  const bool permanent = ablate::train::IsPermanent(status);
  ABLATE_LOG(ERROR) << "training failed job_id=" << job->job_id() << " permanent=" << permanent
                    << " error=" << status;
  return permanent ? kFailedPermanently : 1;
}
