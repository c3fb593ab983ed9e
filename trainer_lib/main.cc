// ablate-train: runs one training job, alone or as a worker's child process.
//
//   ablate-train train --job FILE [--events-fd N] [--checkpoint-dir DIR] [--allow-config-change]
//                      [--profile-dir DIR [--profile-first-step N] [--profile-steps N]]
//   ablate-train eval --model DIR --tokens FILE [--context N] [--token-bytes 2|4] [--batches N]
//   ablate-train export --checkpoint DIR --out DIR [--model NAME] [--shard-bytes N]
//
// eval prints one line, "loss L tokens N": the mean next-token cross-entropy (nats) of the
// Hugging Face model directory DIR on the token file (see trainer_lib/tools/eval.h). export
// writes a checkpoint as a Hugging Face model directory of the model the checkpoint records,
// or of NAME (a catalog name or hf:PATH) when given (see trainer_lib/tools/export.h).
//
// With --profile-dir, the steps N+1..N+M (--profile-first-step N, default 3, skipping
// warm-up; --profile-steps M, default 2) are recorded with PyTorch's profiler: DIR/trace.json
// for a trace viewer and DIR/kernels.tsv, the time per kernel (trainer_lib/train/step_profiler.h).
//
// FILE holds a JobSpec (or a bare TrainConfig) in protobuf's JSON mapping. With --events-fd,
// length-delimited TrainerEvents go to that descriptor and, unless it is stdout, their progress
// lines to stdout too (the worker's trainer.log); without it, progress lines go to stdout only. SIGTERM or SIGINT
// stops the run at the next step boundary, after a checkpoint, so a preempted job resumes where
// it stopped.
//
// Exit codes: 0 done; 1 training, eval or export failed (TrainerFinished or one line on stderr
// says why) in a way a retry may not meet; 2 bad arguments or job file (one line on stderr);
// 3 training failed in a way a retry would meet again (train::IsPermanent: a full disk, a
// diverged run, a refused checkpoint); 128 + signal when training was stopped by SIGTERM (143)
// or SIGINT (130).
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/trainer_exit.h"
#include "trainer_lib/tools/eval.h"
#include "trainer_lib/tools/export.h"
#include "trainer_lib/train/event_sink.h"
#include "trainer_lib/train/job_file.h"
#include "trainer_lib/train/run_status.h"
#include "trainer_lib/train/trainer.h"

namespace {

ablate::train::StopRequest stop_request{0};

extern "C" void OnStopSignal(int signal) { stop_request.store(signal); }

int BadUsage(const std::string& problem) {
  std::cerr << "ablate-train: " << problem << "\n";
  return ablate::kTrainerBadUsage;
}

int Failed(const absl::Status& status) {
  std::cerr << "ablate-train: " << status.message() << "\n";
  return ablate::kTrainerFailed;
}

int Eval(const std::string& model_dir, const ablate::train::EvalOptions& options) {
  absl::StatusOr<ablate::train::EvalResult> result =
      ablate::train::EvaluateModelDir(model_dir, options);
  if (!result.ok()) return Failed(result.status());
  std::printf("loss %.6f tokens %lld\n", result->loss, static_cast<long long>(result->tokens));
  return 0;
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
  train->footer(
      "A TrainConfig's fields, their units and defaults are in proto/ablate/v1/config.proto "
      "(examples/job-tiny.json is a JobSpec). Without a checkpoint directory (the JobSpec's "
      "checkpoint_dir or --checkpoint-dir) the run keeps no checkpoint and cannot resume.");
  train->add_option("--events-fd", events_fd,
                    "Write length-delimited TrainerEvents to this open descriptor");
  train->add_option("--checkpoint-dir", checkpoint_dir,
                    "Where checkpoints are written and resumed from (overrides the job's)");
  train->add_flag("--allow-config-change", allow_config_change,
                  "Resume from a checkpoint written under other settings");
  ablate::train::RunOptions run_options;
  ablate::train::ProfileOptions& profile = run_options.profile;
  profile.first_step = 3;
  profile.steps = 2;
  std::string profile_dir;
  train->add_option("--profile-dir", profile_dir,
                    "Record some steps with PyTorch's profiler; write trace.json and kernels.tsv "
                    "(time per kernel) here");
  train->add_option("--profile-first-step", profile.first_step,
                    "Steps to run before the profiled ones (warm-up)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  train->add_option("--profile-steps", profile.steps, "How many steps to profile")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  CLI::App* eval = app.add_subcommand("eval", "Mean next-token loss of a model on a token file");
  std::string model_dir;
  ablate::train::EvalOptions eval_options;
  eval->add_option("--model", model_dir, "Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  eval->add_option("--tokens", eval_options.tokens_path,
                   "Token file: little-endian uint16/32 (a prepared dataset's .bin)")
      ->required()
      ->check(CLI::ExistingFile);
  eval->add_option("--context", eval_options.context, "Tokens predicted per window")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  eval->add_option("--token-bytes", eval_options.token_bytes,
                   "Bytes per token id (default: the dataset.json beside the file says; "
                   "else 2 when vocab_size <= 65536, else 4)")
      ->check(CLI::IsMember({2, 4}));
  eval->add_option("--batches", eval_options.max_windows,
                   "Evaluate at most this many windows (default: all)")
      ->check(CLI::PositiveNumber);

  CLI::App* export_command =
      app.add_subcommand("export",
                         "Write a checkpoint as a Hugging Face model directory, with the "
                         "tokenizer that prepared its dataset");
  ablate::train::ExportOptions export_options;
  export_command->add_option("--checkpoint", export_options.checkpoint,
                             "A job's checkpoint directory or one step-N folder in it")
      ->required()
      ->check(CLI::ExistingDirectory);
  export_command->add_option(
      "--model", export_options.model,
      "The job's model, a catalog name or hf:PATH (default: the one the checkpoint records)");
  export_command->add_option("--out", export_options.out, "Model directory to write")
      ->required();
  export_command->add_option("--shard-bytes", export_options.shard_bytes,
                             "Largest safetensors file before sharding (default: 5 GB)")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return BadUsage(e.what());
  }
  if (eval->parsed()) return Eval(model_dir, eval_options);
  if (export_command->parsed()) {
    const absl::StatusOr<ablate::train::ExportResult> done =
        ablate::train::ExportCheckpoint(export_options);
    if (!done.ok()) return Failed(done.status());
    std::cout << "exported " << done->folder << " to " << export_options.out
              << " (config.json and safetensors weights, float32)\n";
    if (done->tokenizer_files.empty()) {
      std::cout << "no tokenizer copied: " << done->tokenizer_note << "\n";
    } else {
      std::cout << "copied the dataset's tokenizer: "
                << absl::StrJoin(done->tokenizer_files, ", ") << "\n";
    }
    return 0;
  }

  absl::StatusOr<ablate::v1::JobSpec> job = ablate::train::ReadJobFile(job_path);
  if (!job.ok()) return BadUsage(std::string(job.status().message()));
  if (!checkpoint_dir.empty()) job->set_checkpoint_dir(checkpoint_dir);
  if (job->checkpoint_dir().empty()) {
    std::cerr << "ablate-train: note: no checkpoint directory (the job file's checkpoint_dir or "
                 "--checkpoint-dir): the run keeps no checkpoint, not even its last\n";
  }
  if (allow_config_change) job->mutable_config()->set_allow_config_change(true);
  if (profile_dir.empty()) {
    profile.steps = 0;
  } else {
    profile.dir = profile_dir;
    if (profile.first_step + profile.steps > job->config().steps()) {
      return BadUsage("--profile-first-step " + std::to_string(profile.first_step) +
                      " + --profile-steps " + std::to_string(profile.steps) +
                      " is more than the job's " + std::to_string(job->config().steps()) +
                      " steps");
    }
  }
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

  std::unique_ptr<ablate::train::EventSink> pipe;
  std::unique_ptr<ablate::train::EventSink> console;
  std::unique_ptr<ablate::train::EventSink> events;
  if (events_fd == STDOUT_FILENO) {
    // Events on stdout itself (as tests read them): nothing else may be written there.
    events = std::make_unique<ablate::train::PipeEventSink>(events_fd);
  } else if (events_fd >= 0) {
    // The worker reads the pipe and keeps stdout as the attempt's log.
    pipe = std::make_unique<ablate::train::PipeEventSink>(events_fd);
    console = std::make_unique<ablate::train::ConsoleEventSink>(std::cout);
    events = std::make_unique<ablate::train::TeeEventSink>(*pipe, *console);
  } else {
    // Ranks other than 0 of a multi-rank job keep stdout free and log to stderr.
    const char* rank = std::getenv("RANK");
    const bool follower = rank != nullptr && std::string(rank) != "0" && *rank != '\0';
    events = std::make_unique<ablate::train::ConsoleEventSink>(follower ? std::cerr : std::cout);
  }
  const absl::Status status = ablate::train::Run(*job, *events, stop_request, run_options);
  if (status.ok()) return 0;
  if (const int signal = ablate::train::StopSignalOf(status); signal != 0) {
    return ablate::kTrainerStoppedBySignal + signal;
  }
  const bool permanent = ablate::train::IsPermanent(status);
  ABLATE_LOG(ERROR) << "training failed job_id=" << job->job_id() << " permanent=" << permanent
                    << " error=" << status;
  return permanent ? ablate::kTrainerFailedPermanently : ablate::kTrainerFailed;
}
