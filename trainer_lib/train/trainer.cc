#include "trainer_lib/train/trainer.h"

#include <chrono>
#include <cmath>
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
#include "common/attention_args.h"
#include "common/catalog.h"
#include "common/host_memory.h"
#include "common/model_math.h"
#include "common/train_config.h"
#include "trainer_lib/data/dataset.h"
#include "trainer_lib/device/device_stats.h"
#include "trainer_lib/device/fused_kernels.h"
#include "trainer_lib/device/host_copy.h"
#include "trainer_lib/dist/placement.h"
#include "trainer_lib/dist/process_group.h"
#include "trainer_lib/dist/replicas.h"
#include "trainer_lib/dist/zero.h"
#include "trainer_lib/model/hf_adapter.h"
#include "trainer_lib/model/qwen3.h"
#include "trainer_lib/optim/lr_schedule.h"
#include "trainer_lib/optim/optimizer.h"
#include "trainer_lib/train/checkpoint.h"
#include "trainer_lib/train/divergence.h"
#include "trainer_lib/train/model_for_data.h"
#include "trainer_lib/train/nonfinite.h"
#include "trainer_lib/train/provenance.h"
#include "trainer_lib/train/rank_memory.h"
#include "trainer_lib/train/run_status.h"
#include "trainer_lib/train/run_state.h"
#include "trainer_lib/train/step_profiler.h"
#include "trainer_lib/train/train_step.h"

namespace ablate::train {
namespace {

using SteadyClock = std::chrono::steady_clock;

// LibTorch's messages carry a C++ backtrace after their first line.
std::string FirstLine(absl::string_view text) {
  return std::string(text.substr(0, text.find('\n')));
}

double WallTime() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

class Trainer {
 public:
  Trainer(const v1::JobSpec& job, EventSink& events, const StopRequest& stop,
          const RunOptions& options)
      : config_(WithLoopDefaults(job.config())),
        checkpoint_dir_(job.checkpoint_dir()),
        checkpoints_(checkpoint_dir_, static_cast<int>(config_.keep_checkpoints())),
        events_(events, options.progress_every),
        stop_(stop),
        shape_{config_.batch_size(), config_.context_length()},
        skip_nonfinite_(config_.nonfinite() == "skip"),
        autosave_interval_(options.autosave_interval) {
    if (options.profile.steps > 0) profiler_.emplace(options.profile);
  }

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
  absl::Status BuildModel();  // and the optimizer
  absl::Status Resume();      // from the newest readable checkpoint, when there is one
  absl::Status LogStep(const TrainStep::Result& result, double lr);  // train/* metrics
  absl::Status Evaluate();
  absl::Status Checkpoint();  // when a checkpoint_dir is set and this step is not saved yet
  absl::Status Stopped(int signal);  // saves a checkpoint; Cancelled
  // What every rank agrees on at a step boundary: the stop request (a signal, 0 for none) and
  // whether RunOptions::autosave_interval has passed.
  struct StepAgreement {
    int signal = 0;
    bool autosave = false;
  };
  StepAgreement AgreeAtStep() const;
  bool Leader() const { return ranks_.rank == 0; }
  // memory/* metrics: the allocator's peak beside the plan's total; none on a CPU.
  std::vector<std::pair<std::string, double>> MemoryMetrics() const;
  absl::Status CheckFinite() const;  // FailedPrecondition naming the first non-finite step
  bool WeightsFinite() const;        // waits for the device
  absl::Status EmitMetrics(const std::vector<std::pair<std::string, double>>& values);
  absl::Status Log(const std::string& level, const std::string& text);

  const v1::TrainConfig config_;  // resolved: WithLoopDefaults
  const std::filesystem::path checkpoint_dir_;
  CheckpointDir checkpoints_;
  ProgressEventSink events_;  // RunOptions' progress_every between the run's own events
  const StopRequest& stop_;
  const BatchShape shape_;
  const bool skip_nonfinite_;  // nonfinite "skip": TrainStep leaves such steps out
  const absl::Duration autosave_interval_;  // RunOptions'
  SteadyClock::time_point last_save_;       // of the last checkpoint, or the start of Train
  torch::Device device_{torch::kCPU};
  dist::RankInfo ranks_;                       // world_size 1: one process
  std::unique_ptr<dist::ProcessGroup> group_;  // null for one process
  std::optional<Dataset> dataset_;  // set by LoadData
  v1::ModelConfig model_config_;
  Qwen3 model_{nullptr};
  std::unique_ptr<dist::ShardedOptimizer> optimizer_;  // this rank's share of the state
  bool shard_optimizer_ = false;  // the state is sharded over the ranks (else replicated)
  std::unique_ptr<TrainStep> train_step_;
  std::unique_ptr<NonFiniteWatch> nonfinite_;
  std::vector<std::unique_ptr<Stateful>> state_;  // what a checkpoint saves, in load order
  std::optional<StepProfiler> profiler_;          // when RunOptions ask for a profile
  int64_t step_ = 0;           // optimizer steps done (skipped ones included)
  int64_t skipped_steps_ = 0;  // steps left out under nonfinite "skip"
  int64_t next_batch_ = 0;     // the data position: index of the next training batch
  int64_t saved_step_ = -1;    // step of the newest checkpoint on disk
  std::vector<std::string> resume_notes_;  // checkpoints set aside, logged after TrainerStarted
  SteadyClock::time_point throughput_start_;  // since the last train/* metrics
  int64_t throughput_step_ = 0;               // step_ then
  double flops_per_token_ = 0;  // common/model_math's TrainingFlopsPerToken, MFU's numerator
  double peak_flops_ = 0;       // the device's PeakMatmulFlops; 0 (no MFU) when unknown
  int64_t planned_bytes_ = 0;   // common/model_math's PlanMemory total; 0 when it has none
  double final_eval_loss_ = 0;
  DivergenceWatch divergence_{config_.divergence_factor(), config_.divergence_evals()};
};

absl::Status Trainer::Setup() {
  absl::StatusOr<dist::RankInfo> ranks =
      dist::RankInfoFromEnvironment(static_cast<int>(WorldSize(config_)));
  if (!ranks.ok()) return ranks.status();
  ranks_ = *ranks;
  absl::StatusOr<torch::Device> device = dist::RankDevice(config_, ranks_.local_rank);
  if (!device.ok()) return device.status();
  device_ = *device;
  absl::StatusOr<std::unique_ptr<dist::ProcessGroup>> group =
      dist::ProcessGroup::Connect(ranks_, device_);
  if (!group.ok()) return group.status();
  group_ = *std::move(group);
  if (config_.cpu_threads() > 0) torch::set_num_threads(static_cast<int>(config_.cpu_threads()));
  if (absl::Status s = LoadData(); !s.ok()) return s;
  if (absl::Status s = BuildModel(); !s.ok()) return s;
  if (absl::Status s = Resume(); !s.ok()) return s;
  flops_per_token_ = TrainingFlopsPerToken(model_config_, config_.context_length(),
                                           config_.attention(), NsaShapeOf(config_));
  if (std::optional<std::string> name = DeviceName(device_); name.has_value()) {
    peak_flops_ = PeakMatmulFlops(*name);
  }
  absl::StatusOr<int64_t> planned =
      PlanRankMemory(model_config_, config_, ranks_.world_size, shard_optimizer_,
                     device_.is_cuda() && FusedKernelsEnabled(), ReadMeminfoBytes("MemAvailable"));
  if (!planned.ok()) return planned.status();
  planned_bytes_ = *planned;

  int64_t parameters = 0;
  for (const torch::Tensor& p : model_->parameters()) parameters += p.numel();
  StartFacts facts;
  facts.parameters = parameters;
  facts.device = device_.str();
  facts.resumed_from_step = step_;
  facts.data_sha256 = dataset_->sha256();
  facts.optimizer_state_bytes_per_parameter = StateBytesPerParameter(optimizer_->local());
  const v1::TrainerEvent event = StartedEvent(config_, facts);
  if (absl::Status s = events_.Send(event); !s.ok()) return s;
  for (const std::string& note : resume_notes_) {
    if (absl::Status s = Log("warning", note); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Trainer::LoadData() {
  absl::StatusOr<Dataset> dataset = Dataset::Open(config_.dataset(), shape_.context_length);
  if (!dataset.ok()) return dataset.status();
  dataset_ = *std::move(dataset);
  return absl::OkStatus();
}

absl::Status Trainer::BuildModel() {
  absl::StatusOr<v1::ModelConfig> model_config = ModelForData(config_, *dataset_);
  if (!model_config.ok()) return model_config.status();
  model_config_ = *model_config;
  // Initialisation draws from torch's generator seeded by `seed`; batches are chosen by the
  // dataset from data_seed alone (Dataset::TrainBatch), so the two never interfere.
  torch::manual_seed(config_.seed());
  absl::StatusOr<Qwen3> model =
      BuildQwen3(model_config_, config_.attention(), NsaShapeOf(config_));
  if (!model.ok()) return model.status();
  if (!config_.init_from().empty()) {
    if (absl::Status s = LoadHfWeights(config_.init_from(), **model); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("init_from: ", s.message()));
    }
  }
  model_ = *std::move(model);
  model_->to(device_);
  absl::StatusOr<bool> shard =
      dist::ShardsOptimizerState(config_, model_config_, TotalMemoryBytes(device_).value_or(0));
  if (!shard.ok()) return shard.status();
  shard_optimizer_ = *shard;
  // Replicated state is one process's optimizer on every rank: the same all-reduced gradients
  // give the same update everywhere, and rank 0's checkpoint holds the whole state.
  absl::StatusOr<std::unique_ptr<dist::ShardedOptimizer>> optimizer = dist::ShardedOptimizer::Make(
      config_, NamedParameters(*model_), shard_optimizer_ ? group_.get() : nullptr);
  if (!optimizer.ok()) return optimizer.status();
  optimizer_ = *std::move(optimizer);
  absl::StatusOr<uint32_t> micro =
      MicroBatchPerRank(config_, static_cast<uint32_t>(ranks_.world_size));
  if (!micro.ok()) return micro.status();
  v1::TrainConfig step_config = config_;
  step_config.set_micro_batch_size(static_cast<uint32_t>(*micro));
  train_step_ = std::make_unique<TrainStep>(*model_, optimizer_->local(), step_config, group_.get(),
                                            optimizer_.get());
  nonfinite_ = std::make_unique<NonFiniteWatch>(device_);

  state_.push_back(ConfigRecord(config_, model_config_));  // first: it refuses before loading
  state_.push_back(ModelState(*model_, device_));
  state_.push_back(optimizer_->State(checkpoint_dir_, device_));
  state_.push_back(
      CounterState("progress", {{"step", &step_}, {"skipped_steps", &skipped_steps_}}));
  state_.push_back(CounterState("data", {{"next_batch", &next_batch_}}));
  state_.push_back(RngState(device_));
  return absl::OkStatus();
}

absl::Status Trainer::Resume() {
  if (checkpoint_dir_.empty()) return absl::OkStatus();
  std::vector<Stateful*> pieces;
  for (const auto& piece : state_) pieces.push_back(piece.get());
  // Rank 0 loads first: it alone sets aside a corrupt checkpoint, then the others read what
  // it chose, and all must have resumed from the same step.
  if (group_ && !Leader()) group_->Barrier();
  absl::StatusOr<std::optional<CheckpointDir::Loaded>> loaded =
      checkpoints_.LoadLatest(pieces, resume_notes_);
  if (group_ && Leader()) group_->Barrier();
  if (!loaded.ok()) return loaded.status();
  if (group_) {
    if (absl::Status s = dist::CheckSameValue(*group_, step_, "resumed step"); !s.ok()) return s;
  }
  if (!loaded->has_value()) return absl::OkStatus();
  saved_step_ = step_;
  if (!resume_notes_.empty()) {
    resume_notes_.push_back(absl::StrCat("resuming from the previous checkpoint, ",
                                         (*loaded)->path.string()));
  }
  return absl::OkStatus();
}

absl::Status Trainer::Train() {
  const int64_t total = config_.steps();
  throughput_start_ = SteadyClock::now();
  last_save_ = throughput_start_;
  throughput_step_ = step_;
  while (step_ < total) {
    const StepAgreement agreed = AgreeAtStep();
    if (agreed.signal != 0) return Stopped(agreed.signal);
    if (absl::Status s = events_.Progress(step_); !s.ok()) return s;
    if (agreed.autosave && step_ > 0 && step_ > saved_step_) {
      if (absl::Status s = Checkpoint(); !s.ok()) return s;
    }
    const double lr = LearningRate(config_, step_);
    const absl::StatusOr<Batch> batch =
        dataset_->TrainBatch(shape_, config_.data_seed(), next_batch_++);
    if (!batch.ok()) return batch.status();
    const int64_t rows = shape_.batch_size / ranks_.world_size;  // this rank's share
    if (profiler_) profiler_->BeforeStep(step_, device_);
    // Copies that do not wait for the device, which may still run the previous step.
    const TrainStep::Result result = train_step_->Run(
        CopyToDevice(batch->inputs.narrow(0, ranks_.rank * rows, rows), device_),
        CopyToDevice(batch->targets.narrow(0, ranks_.rank * rows, rows), device_), lr);
    ++step_;
    if (profiler_) {
      absl::StatusOr<std::optional<std::string>> summary = profiler_->AfterStep(step_, device_);
      if (!summary.ok()) return summary.status();
      if (summary->has_value()) {
        if (absl::Status s = Log("info", **summary); !s.ok()) return s;
      }
    }
    if (result.skipped) ++skipped_steps_;
    if (!skip_nonfinite_) nonfinite_->Record(step_, result.loss, result.grad_norm);

    if (step_ % config_.log_every() == 0 || step_ == total) {
      if (absl::Status s = LogStep(result, lr); !s.ok()) return s;
    }
    const SteadyClock::time_point pause = SteadyClock::now();
    if (config_.eval_every() > 0 && step_ % config_.eval_every() == 0 && step_ < total) {
      if (absl::Status s = Evaluate(); !s.ok()) return s;
    }
    if (config_.checkpoint_every() > 0 && step_ % config_.checkpoint_every() == 0 &&
        step_ < total) {
      if (absl::Status s = Checkpoint(); !s.ok()) return s;
    }
    throughput_start_ += SteadyClock::now() - pause;  // throughput counts training time only
  }
  // The end: evaluate, then save what was evaluated.
  if (absl::Status s = Evaluate(); !s.ok()) return s;
  if (absl::Status s = Checkpoint(); !s.ok()) return s;
  if (std::optional<int64_t> peak = PeakAllocatedBytes(device_); peak.has_value()) {
    return Log("info", absl::StrCat("memory: peak allocated ", *peak, " bytes, planned ",
                                    planned_bytes_, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status Trainer::LogStep(const TrainStep::Result& result, double lr) {
  if (absl::Status s = CheckFinite(); !s.ok()) return s;  // read with the loss: no extra wait
  const double loss = result.loss.item<double>();         // waits for the device
  const double seconds =
      std::chrono::duration<double>(SteadyClock::now() - throughput_start_).count();
  const int64_t tokens = (step_ - throughput_step_) * shape_.batch_size * shape_.context_length;
  const double tokens_per_sec = static_cast<double>(tokens) / seconds;
  std::vector<std::pair<std::string, double>> metrics = {
      {"train/loss", loss},
      {"train/lr", lr},
      {"train/tokens_per_sec", tokens_per_sec},
      {"train/grad_norm", result.grad_norm.item<double>()}};
  if (skip_nonfinite_) metrics.emplace_back("train/skipped_steps", skipped_steps_);
  // Model FLOPs utilization as PaLM defines it (Chowdhery et al. 2022, appendix B), per device:
  // tokens_per_sec counts every rank's tokens.
  const double peak = peak_flops_ * ranks_.world_size;
  if (peak > 0) metrics.emplace_back("train/mfu", flops_per_token_ * tokens_per_sec / peak);
  for (auto& metric : MemoryMetrics()) metrics.push_back(std::move(metric));
  throughput_start_ = SteadyClock::now();
  throughput_step_ = step_;
  return EmitMetrics(metrics);
}

absl::Status Trainer::Stopped(int signal) {
  if (absl::Status s = Checkpoint(); !s.ok()) return s;
  return StoppedBy(signal, step_);
}

Trainer::StepAgreement Trainer::AgreeAtStep() const {
  const bool autosave = !checkpoint_dir_.empty() && config_.checkpoint_every() == 0 &&
                        autosave_interval_ > absl::ZeroDuration() &&
                        absl::FromChrono(SteadyClock::now() - last_save_) >= autosave_interval_;
  // signal * 2 + autosave: the largest over the ranks carries the largest signal, and where no
  // rank has one, whether any rank's clock says a save is due. One collective a step.
  int64_t local = int64_t{stop_.load()} * 2 + (autosave ? 1 : 0);
  // A signal may reach some ranks only, or reach them between two steps: the ranks stop at
  // the first step boundary where any of them has one, all with the same signal.
  if (group_) local = group_->Max(local);
  return {static_cast<int>(local / 2), local % 2 == 1};
}

std::vector<std::pair<std::string, double>> Trainer::MemoryMetrics() const {
  const std::optional<int64_t> peak = PeakAllocatedBytes(device_);
  if (!peak.has_value()) return {};
  return {{"memory/peak_allocated_bytes", static_cast<double>(*peak)},
          {"memory/planned_bytes", static_cast<double>(planned_bytes_)}};
}

absl::Status Trainer::CheckFinite() const {
  if (std::optional<std::string> problem = nonfinite_->FirstProblem(); problem.has_value()) {
    return absl::FailedPreconditionError(*problem);
  }
  return absl::OkStatus();
}

absl::Status Trainer::Evaluate() {
  if (absl::Status s = CheckFinite(); !s.ok()) return s;
  const int64_t batches = config_.eval_batches();
  double total = 0;
  for (int64_t i = 0; i < batches; ++i) {
    // A stop request is honoured between batches: an evaluation can take minutes.
    if (const int signal = AgreeAtStep().signal; signal != 0) return Stopped(signal);
    if (absl::Status s = events_.Progress(step_); !s.ok()) return s;
    const absl::StatusOr<Batch> batch = dataset_->EvalBatch(shape_, i);
    if (!batch.ok()) return batch.status();
    total += train_step_->EvalLoss(batch->inputs.to(device_), batch->targets.to(device_));
  }
  final_eval_loss_ = total / static_cast<double>(batches);
  if (!std::isfinite(final_eval_loss_)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "step ", step_, ": non-finite evaluation loss (", final_eval_loss_, ")"));
  }
  if (absl::Status s = EmitMetrics({{"eval/loss", final_eval_loss_},
                                    {"eval/perplexity", std::exp(final_eval_loss_)}});
      !s.ok()) {
    return s;
  }
  return divergence_.Observe(step_, final_eval_loss_);
}

absl::Status Trainer::Checkpoint() {
  if (checkpoint_dir_.empty() || saved_step_ == step_) return absl::OkStatus();
  // Never save weights that a non-finite step produced, or that an update made non-finite
  // (beta2 1 divides by zero) before any loss could show it. Checkpoints are rare enough for
  // this one wait on the device.
  if (absl::Status s = CheckFinite(); !s.ok()) return s;
  if (!WeightsFinite()) {
    return absl::FailedPreconditionError(
        absl::StrCat("step ", step_, ": non-finite weights after the update"));
  }
  if (absl::Status s = dist::CheckReplicasAgree(group_.get(), model_->parameters(), step_);
      !s.ok()) {
    return s;
  }
  std::vector<Stateful*> pieces;
  for (const auto& piece : state_) pieces.push_back(piece.get());
  // Each rank stages its optimizer shard; rank 0 writes the checkpoint (with the state the
  // ranks share) and the others wait for its outcome.
  absl::StatusOr<std::filesystem::path> path = checkpoint_dir_;
  if (absl::Status s = optimizer_->StageShard(checkpoint_dir_); !s.ok()) path = s;
  if (path.ok() && Leader()) path = checkpoints_.Save(step_, pieces);
  if (group_ && group_->Max(path.ok() ? 0 : 1) != 0 && !Leader()) {
    return absl::InternalError(absl::StrCat("step ", step_, ": rank 0 failed to checkpoint"));
  }
  if (!path.ok()) {
    return absl::Status(path.status().code(), absl::StrCat("step ", step_, ": checkpoint: ",
                                                           path.status().message()));
  }
  saved_step_ = step_;
  last_save_ = SteadyClock::now();
  if (!Leader()) return absl::OkStatus();
  v1::TrainerEvent event;
  event.mutable_checkpoint()->set_step(step_);
  event.mutable_checkpoint()->set_path(path->string());
  return events_.Send(event);
}

bool Trainer::WeightsFinite() const {
  std::vector<torch::Tensor> finite;
  for (const torch::Tensor& p : model_->parameters()) finite.push_back(torch::isfinite(p).all());
  return torch::stack(finite).all().item<bool>();
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

absl::Status Trainer::Log(const std::string& level, const std::string& text) {
  v1::TrainerEvent event;
  event.mutable_log()->set_level(level);
  event.mutable_log()->set_text(text);
  return events_.Send(event);
}

}  // namespace

absl::Status Run(const v1::JobSpec& job, EventSink& events, const StopRequest& stop,
                 const RunOptions& options) {
  Trainer trainer(job, events, stop, options);
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
