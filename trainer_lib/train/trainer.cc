#include "trainer_lib/train/trainer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/catalog.h"
#include "trainer_lib/data/dataset.h"
#include "trainer_lib/model/hf_adapter.h"
#include "trainer_lib/model/qwen3.h"
#include "trainer_lib/optim/lr_schedule.h"
#include "trainer_lib/optim/optimizer.h"
#include "trainer_lib/train/checkpoint.h"
#include "trainer_lib/train/train_step.h"

namespace ablate::train {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string SignalName(int signal) {
  if (signal == SIGTERM) return "SIGTERM";
  if (signal == SIGINT) return "SIGINT";
  return absl::StrCat("signal ", signal);
}

// LibTorch's messages carry a C++ backtrace after their first line.
std::string FirstLine(absl::string_view text) {
  return std::string(text.substr(0, text.find('\n')));
}

absl::StatusOr<torch::Device> PickDevice(const v1::TrainConfig& config) {
  if (config.gpus() == 0) return torch::Device(torch::kCPU);
  if (config.gpus() > 1) {
    return absl::UnimplementedError(absl::StrCat(
        "gpus: ", config.gpus(), " needs data parallelism, which is not implemented yet"));
  }
  // A GPU job that lands on a host without CUDA is a placement error; training it on the CPU
  // instead would only look like a very slow run.
  if (!torch::cuda::is_available()) {
    return absl::FailedPreconditionError("gpus: 1 asked for, but CUDA is not available here");
  }
  return torch::Device(torch::kCUDA, 0);
}

double WallTime() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

class Trainer {
 public:
  Trainer(const v1::JobSpec& job, EventSink& events, const StopRequest& stop)
      : config_(job.config()),
        checkpoint_dir_(job.checkpoint_dir()),
        events_(events),
        stop_(stop),
        shape_{config_.batch_size(), config_.context_length()} {}

  // Device, data, model, optimizer and the checkpoint to resume from; sends TrainerStarted.
  absl::Status Setup();
  // Steps until the end or a stop request, then the final evaluation and checkpoint.
  absl::Status Train();

  // Where the run is, for error messages: "setup" or "step N".
  std::string Where() const { return model_ ? absl::StrCat("step ", step_) : "setup"; }
  int64_t step() const { return step_; }
  double final_eval_loss() const { return final_eval_loss_; }

 private:
  absl::Status LoadData();
  absl::Status BuildModel();  // and the optimizer, resumed from a checkpoint when there is one
  absl::Status Evaluate();
  absl::Status Checkpoint();  // when a checkpoint_dir is set and this step is not saved yet
  absl::Status EmitMetrics(const std::vector<std::pair<std::string, double>>& values);

  const v1::TrainConfig& config_;
  const std::filesystem::path checkpoint_dir_;
  EventSink& events_;
  const StopRequest& stop_;
  const BatchShape shape_;
  torch::Device device_{torch::kCPU};
  std::optional<Dataset> dataset_;  // set by LoadData
  Qwen3 model_{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<TrainStep> train_step_;
  int64_t step_ = 0;         // optimizer steps done
  int64_t saved_step_ = -1;  // step of the checkpoint on disk
  double final_eval_loss_ = 0;
};

absl::Status Trainer::Setup() {
  absl::StatusOr<torch::Device> device = PickDevice(config_);
  if (!device.ok()) return device.status();
  device_ = *device;
  if (config_.cpu_threads() > 0) torch::set_num_threads(static_cast<int>(config_.cpu_threads()));
  if (absl::Status s = LoadData(); !s.ok()) return s;
  if (absl::Status s = BuildModel(); !s.ok()) return s;

  int64_t parameters = 0;
  for (const torch::Tensor& p : model_->parameters()) parameters += p.numel();
  v1::TrainerEvent event;
  v1::TrainerStarted* started = event.mutable_started();
  started->set_parameters(parameters);
  started->set_device(device_.str());
  started->set_resumed_from_step(step_);
  started->set_total_steps(config_.steps());
  return events_.Send(event);
}

absl::Status Trainer::LoadData() {
  absl::StatusOr<Dataset> dataset = Dataset::Open(config_.dataset(), shape_.context_length);
  if (!dataset.ok()) return dataset.status();
  dataset_ = *std::move(dataset);
  return absl::OkStatus();
}

absl::Status Trainer::BuildModel() {
  absl::StatusOr<v1::ModelConfig> model_config = ModelByName(config_.model());
  if (!model_config.ok()) return model_config.status();
  if (absl::Status s = dataset_->CheckVocabulary(model_config->vocab_size()); !s.ok()) return s;
  torch::manual_seed(config_.seed());
  absl::StatusOr<Qwen3> model = BuildQwen3(*model_config, config_.attention());
  if (!model.ok()) return model.status();
  if (!config_.init_from().empty()) {
    if (absl::Status s = LoadHfWeights(config_.init_from(), **model); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("init_from: ", s.message()));
    }
  }
  (*model)->to(device_);
  absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> optimizer =
      MakeOptimizer(config_, **model);
  if (!optimizer.ok()) return optimizer.status();
  optimizer_ = *std::move(optimizer);
  if (!checkpoint_dir_.empty()) {
    absl::StatusOr<int64_t> resumed =
        LoadLatestCheckpoint(checkpoint_dir_, **model, *optimizer_, device_);
    if (!resumed.ok()) return resumed.status();
    step_ = *resumed;
    if (step_ > 0) saved_step_ = step_;
  }
  model_ = *std::move(model);
  train_step_ = std::make_unique<TrainStep>(*model_, *optimizer_, config_);
  return absl::OkStatus();
}

absl::Status Trainer::Train() {
  const int64_t total = config_.steps();
  SteadyClock::time_point log_start = SteadyClock::now();
  int64_t tokens_since_log = 0;
  while (step_ < total) {
    if (const int signal = stop_.load(); signal != 0) {
      if (absl::Status s = Checkpoint(); !s.ok()) return s;
      return absl::CancelledError(
          absl::StrCat("terminated by ", SignalName(signal), " at step ", step_));
    }
    const double lr = LearningRate(config_, step_);
    const absl::StatusOr<Batch> batch = dataset_->TrainBatch(shape_, config_.data_seed(), step_);
    if (!batch.ok()) return batch.status();
    const TrainStep::Result result = train_step_->Run(batch->inputs.to(device_),
                                                      batch->targets.to(device_), lr);
    ++step_;
    tokens_since_log += shape_.batch_size * shape_.context_length;

    if (step_ % config_.log_every() == 0 || step_ == total) {
      const double loss = result.loss.item<double>();  // waits for the device
      const double seconds =
          std::chrono::duration<double>(SteadyClock::now() - log_start).count();
      absl::Status s = EmitMetrics({{"train/loss", loss},
                                    {"train/lr", lr},
                                    {"train/tokens_per_sec", tokens_since_log / seconds},
                                    {"train/grad_norm", result.grad_norm.item<double>()}});
      if (!s.ok()) return s;
      log_start = SteadyClock::now();
      tokens_since_log = 0;
    }
    const SteadyClock::time_point pause = SteadyClock::now();
    if (config_.eval_every() > 0 && step_ % config_.eval_every() == 0 && step_ < total) {
      if (absl::Status s = Evaluate(); !s.ok()) return s;
    }
    if (config_.checkpoint_every() > 0 && step_ % config_.checkpoint_every() == 0 &&
        step_ < total) {
      if (absl::Status s = Checkpoint(); !s.ok()) return s;
    }
    log_start += SteadyClock::now() - pause;  // throughput counts training time only
  }
  // The end: evaluate, then save what was evaluated.
  if (absl::Status s = Evaluate(); !s.ok()) return s;
  return Checkpoint();
}

absl::Status Trainer::Evaluate() {
  const int64_t batches = config_.eval_batches();
  double total = 0;
  for (int64_t i = 0; i < batches; ++i) {
    const absl::StatusOr<Batch> batch = dataset_->EvalBatch(shape_, i);
    if (!batch.ok()) return batch.status();
    total += train_step_->EvalLoss(batch->inputs.to(device_), batch->targets.to(device_));
  }
  final_eval_loss_ = total / static_cast<double>(batches);
  return EmitMetrics({{"eval/loss", final_eval_loss_},
                      {"eval/perplexity", std::exp(final_eval_loss_)}});
}

absl::Status Trainer::Checkpoint() {
  if (checkpoint_dir_.empty() || saved_step_ == step_) return absl::OkStatus();
  absl::StatusOr<std::filesystem::path> path =
      SaveCheckpoint(checkpoint_dir_, step_, *model_, *optimizer_);
  if (!path.ok()) return path.status();
  saved_step_ = step_;
  v1::TrainerEvent event;
  event.mutable_checkpoint()->set_step(step_);
  event.mutable_checkpoint()->set_path(path->string());
  return events_.Send(event);
}

absl::Status Trainer::EmitMetrics(const std::vector<std::pair<std::string, double>>& values) {
  v1::TrainerEvent event;
  const double now = WallTime();
  for (const auto& [name, value] : values) {
    v1::MetricPoint* point = event.mutable_metrics()->add_points();
    point->set_name(name);
    point->set_step(step_);
    point->set_value(value);
    point->set_wall_time(now);
  }
  return events_.Send(event);
}

}  // namespace

absl::Status Run(const v1::JobSpec& job, EventSink& events, const StopRequest& stop) {
  Trainer trainer(job, events, stop);
  absl::Status status;
  try {
    status = trainer.Setup();
    if (status.ok()) status = trainer.Train();
  } catch (const c10::Error& e) {
    status = absl::InternalError(
        absl::StrCat(trainer.Where(), ": ", FirstLine(e.what_without_backtrace())));
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat(trainer.Where(), ": ", FirstLine(e.what())));
  }

  v1::TrainerEvent event;
  v1::TrainerFinished* finished = event.mutable_finished();
  finished->set_ok(status.ok());
  finished->set_steps(trainer.step());
  if (status.ok()) {
    finished->set_final_eval_loss(trainer.final_eval_loss());
  } else {
    finished->set_error(FirstLine(status.message()));
  }
  // When the sink itself failed, `status` already says so.
  events.Send(event).IgnoreError();
  return status;
}

}  // namespace ablate::train
