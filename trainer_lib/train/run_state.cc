#include "trainer_lib/train/run_state.h"

#include <map>
#include <mutex>
#include <set>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/hf_config.h"
#include "common/train_config.h"
#include "google/protobuf/util/json_util.h"
#include "trainer_lib/state/archive_file.h"

namespace ablate::train {
namespace {

namespace fs = std::filesystem;
using google::protobuf::FieldDescriptor;

// Settings a resumed run may change: they move no number the run computes (beyond rounding).
const std::set<std::string>& FreeToChange() {
  static const auto* names = new std::set<std::string>{
      "log_every",        "eval_every",       "eval_batches",
      "checkpoint_every", "keep_checkpoints", "cpu_threads",
      "gpus",             "micro_batch_size", "activation_checkpointing",
      "loss_chunk_tokens", "allow_config_change", "cpu_ranks",
      "optimizer_sharding", "grad_bucket_mb",   "checkpoint_offload_layers"};
  return *names;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

absl::Status FromJson(const fs::path& path, google::protobuf::Message& message) {
  std::string json;
  if (absl::Status s = ReadTextFile(path, json); !s.ok()) return absl::DataLossError(s.message());
  if (!google::protobuf::util::JsonStringToMessage(json, &message).ok()) {
    return absl::DataLossError(absl::StrCat(path.string(), " does not parse"));
  }
  return absl::OkStatus();
}

std::string Shape(const torch::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]");
}

class ConfigRecordImpl : public Stateful {
 public:
  ConfigRecordImpl(const v1::TrainConfig& config, const v1::ModelConfig& model)
      : config_(config), model_(model) {}

  std::string Name() const override { return "config"; }

  absl::Status Save(const fs::path& dir) override {
    if (absl::Status s = WriteTextFile(dir / "config.json", ToJson(config_)); !s.ok()) return s;
    return WriteTextFile(dir / "model.json", ToJson(model_));
  }

  absl::Status Load(const fs::path& dir) override {
    v1::TrainConfig saved_config;
    v1::ModelConfig saved_model;
    if (absl::Status s = FromJson(dir / "config.json", saved_config); !s.ok()) return s;
    if (absl::Status s = FromJson(dir / "model.json", saved_model); !s.ok()) return s;
    // Only what changes a weight or a result: a checkpoint written before the model recorded
    // its token ids, or under another name for the same shape, resumes.
    if (std::string differences = ModelConfigDifferences(saved_model, model_);
        !differences.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", dir.string(), " holds another model, which cannot be resumed: ",
          differences));
    }
    const std::vector<std::string> changed = ConfigDifferences(saved_config, config_);
    if (!changed.empty() && !config_.allow_config_change()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", dir.string(), " was written with other settings (",
          absl::StrJoin(changed, ", "),
          "); resume with allow_config_change (ablate-train --allow-config-change) to accept "
          "them"));
    }
    return absl::OkStatus();
  }

 private:
  const v1::TrainConfig config_;
  const v1::ModelConfig model_;
};

class ModelStateImpl : public Stateful {
 public:
  ModelStateImpl(torch::nn::Module& model, const c10::Device& device)
      : model_(model), device_(device) {}

  std::string Name() const override { return "model"; }

  absl::Status Save(const fs::path& dir) override {
    torch::serialize::OutputArchive archive;
    for (const auto& [name, tensor] : Tensors()) archive.write(Key(name), tensor);
    return WriteArchive(archive, dir / "model.pt");
  }

  absl::Status Load(const fs::path& dir) override {
    const fs::path path = dir / "model.pt";
    torch::serialize::InputArchive archive;
    if (absl::Status s = ReadArchive(path, device_, archive); !s.ok()) return s;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (ours, saved)
    for (const auto& [name, tensor] : Tensors()) {
      torch::Tensor saved;
      if (!archive.try_read(Key(name), saved)) {
        return absl::DataLossError(absl::StrCat("checkpoint ", path.string(), " lacks ", name));
      }
      if (!saved.sizes().equals(tensor.sizes())) {
        return absl::DataLossError(absl::StrCat("checkpoint ", path.string(), ": ", name,
                                                " has shape ", Shape(saved),
                                                ", this model's is ", Shape(tensor)));
      }
      copies.emplace_back(tensor, saved);
    }
    torch::NoGradGuard no_grad;
    for (auto& [ours, saved] : copies) ours.copy_(saved);
    return absl::OkStatus();
  }

 private:
  // Every parameter and buffer under its dotted name.
  std::vector<std::pair<std::string, torch::Tensor>> Tensors() const {
    std::vector<std::pair<std::string, torch::Tensor>> all;
    for (const auto& item : model_.named_parameters()) all.emplace_back(item.key(), item.value());
    for (const auto& item : model_.named_buffers()) all.emplace_back(item.key(), item.value());
    return all;
  }

  // An archive key holds no dot (it would name a submodule), so dots are stored as "__",
  // which no parameter name contains.
  static std::string Key(const std::string& name) {
    return absl::StrReplaceAll(name, {{".", "__"}});
  }

  torch::nn::Module& model_;
  const c10::Device device_;
};

class CounterStateImpl : public Stateful {
 public:
  CounterStateImpl(std::string name, std::vector<std::pair<std::string, int64_t*>> counters)
      : name_(std::move(name)), counters_(std::move(counters)) {}

  std::string Name() const override { return name_; }

  absl::Status Save(const fs::path& dir) override {
    std::string text;
    for (const auto& [key, value] : counters_) absl::StrAppend(&text, key, " ", *value, "\n");
    return WriteTextFile(dir / File(), text);
  }

  absl::Status Load(const fs::path& dir) override {
    std::string text;
    if (absl::Status s = ReadTextFile(dir / File(), text); !s.ok()) {
      return absl::DataLossError(s.message());
    }
    std::map<std::string, int64_t> saved;
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(line, ' ');
      int64_t value = 0;
      if (!absl::SimpleAtoi(kv.second, &value)) {
        return absl::DataLossError(
            absl::StrCat((dir / File()).string(), ": bad line '", line, "'"));
      }
      saved[kv.first] = value;
    }
    for (const auto& [key, value] : counters_) {
      auto it = saved.find(key);
      if (it == saved.end()) {
        return absl::DataLossError(absl::StrCat((dir / File()).string(), " lacks ", key));
      }
      *value = it->second;
    }
    return absl::OkStatus();
  }

 private:
  std::string File() const { return name_ + ".txt"; }

  const std::string name_;
  const std::vector<std::pair<std::string, int64_t*>> counters_;
};

class RngStateImpl : public Stateful {
 public:
  explicit RngStateImpl(const c10::Device& device) : device_(device) {}

  std::string Name() const override { return "rng"; }

  absl::Status Save(const fs::path& dir) override {
    torch::serialize::OutputArchive archive;
    for (const auto& [key, device] : Devices()) {
      archive.write(key, at::globalContext().defaultGenerator(device).get_state());
    }
    return WriteArchive(archive, dir / "rng.pt");
  }

  absl::Status Load(const fs::path& dir) override {
    torch::serialize::InputArchive archive;
    if (absl::Status s = ReadArchive(dir / "rng.pt", torch::kCPU, archive); !s.ok()) return s;
    for (const auto& [key, device] : Devices()) {
      torch::Tensor state;
      if (!archive.try_read(key, state)) {
        return absl::DataLossError(absl::StrCat((dir / "rng.pt").string(), " lacks ", key));
      }
      at::Generator generator = at::globalContext().defaultGenerator(device);  // a handle
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(state);
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::pair<std::string, c10::Device>> Devices() const {
    std::vector<std::pair<std::string, c10::Device>> devices = {{"cpu", c10::Device(c10::kCPU)}};
    if (!device_.is_cpu()) devices.emplace_back("device", device_);
    return devices;
  }

  const c10::Device device_;
};

}  // namespace

std::unique_ptr<Stateful> ConfigRecord(const v1::TrainConfig& config,
                                       const v1::ModelConfig& model) {
  return std::make_unique<ConfigRecordImpl>(config, model);
}

namespace {

// The message `file` of checkpoint folder `dir` holds.
template <typename Message>
absl::StatusOr<Message> SavedMessage(const fs::path& dir, absl::string_view file) {
  const fs::path path = dir / std::string(file);
  if (!fs::exists(path)) {
    return absl::NotFoundError(absl::StrCat(path.string(), " does not exist"));
  }
  Message message;
  if (absl::Status s = FromJson(path, message); !s.ok()) return s;
  return message;
}

}  // namespace

absl::StatusOr<v1::ModelConfig> SavedModelConfig(const fs::path& dir) {
  return SavedMessage<v1::ModelConfig>(dir, "model.json");
}

absl::StatusOr<v1::TrainConfig> SavedTrainConfig(const fs::path& dir) {
  return SavedMessage<v1::TrainConfig>(dir, "config.json");
}

std::unique_ptr<Stateful> ModelState(torch::nn::Module& model, const c10::Device& device) {
  return std::make_unique<ModelStateImpl>(model, device);
}

std::unique_ptr<Stateful> CounterState(std::string name,
                                       std::vector<std::pair<std::string, int64_t*>> counters) {
  return std::make_unique<CounterStateImpl>(std::move(name), std::move(counters));
}

std::unique_ptr<Stateful> RngState(const c10::Device& device) {
  return std::make_unique<RngStateImpl>(device);
}

std::vector<std::string> ConfigDifferences(const v1::TrainConfig& saved,
                                           const v1::TrainConfig& now) {
  std::vector<std::string> changed;
  const google::protobuf::Descriptor* descriptor = v1::TrainConfig::descriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const std::string& name = descriptor->field(i)->name();
    if (FreeToChange().contains(name) || descriptor->field(i)->is_map()) continue;
    const std::string before = GetTrainField(saved, name), after = GetTrainField(now, name);
    if (before != after) changed.push_back(absl::StrCat(name, " ", before, " -> ", after));
  }
  // The map fields, key by key, as a sweep sets them.
  std::set<std::string> names;
  for (const v1::TrainConfig* config : {&saved, &now}) {
    for (const auto& [key, value] : config->optimizer_args()) {
      names.insert(absl::StrCat("optimizer_args.", key));
    }
    for (const auto& [key, value] : config->attention_args()) {
      names.insert(absl::StrCat("attention_args.", key));
    }
  }
  for (const std::string& name : names) {
    std::string before = GetTrainField(saved, name), after = GetTrainField(now, name);
    if (before == after) continue;
    changed.push_back(absl::StrCat(name, " ", before.empty() ? "unset" : before, " -> ",
                                   after.empty() ? "unset" : after));
  }
  return changed;
}

}  // namespace ablate::train
