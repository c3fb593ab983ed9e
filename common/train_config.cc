#include "common/train_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/attention_args.h"
#include "common/catalog.h"
#include "common/hf_config.h"
#include "common/optimizer_args.h"

namespace ablate {
namespace {

using google::protobuf::FieldDescriptor;

// The map fields a sweep sets one key at a time ("optimizer_args.beta2").
constexpr absl::string_view kArgMaps[] = {"optimizer_args.", "attention_args."};

// Why a count did not parse, for its error.
enum class CountProblem { kNone, kNotWhole, kTooLarge };

// Reads "524288", "512K" or "1M" (powers of two, as context lengths are written), and a whole
// number written with a zero fraction ("64.0", as Python's float and some YAML writers print it).
CountProblem ParseCount(absl::string_view text, uint64_t max, uint64_t& out) {
  uint64_t scale = 1;
  if (!text.empty()) {
    const char suffix = absl::ascii_toupper(static_cast<unsigned char>(text.back()));
    if (suffix == 'K') scale = uint64_t{1} << 10;
    if (suffix == 'M') scale = uint64_t{1} << 20;
    if (scale != 1) text.remove_suffix(1);
  }
  if (const size_t point = text.find('.'); point != absl::string_view::npos) {
    const absl::string_view fraction = text.substr(point + 1);
    if (point == 0 || fraction.find_first_not_of('0') != absl::string_view::npos) {
      return CountProblem::kNotWhole;
    }
    text = text.substr(0, point);
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    // Digits alone that do not fit 64 bits are a number too large, not a malformed one.
    const bool digits = !text.empty() && std::all_of(text.begin(), text.end(), absl::ascii_isdigit);
    return digits ? CountProblem::kTooLarge : CountProblem::kNotWhole;
  }
  if (value > max / scale) return CountProblem::kTooLarge;
  out = value * scale;
  return CountProblem::kNone;
}

const FieldDescriptor* Scalar(absl::string_view name) {
  const FieldDescriptor* field = v1::TrainConfig::descriptor()->FindFieldByName(std::string(name));
  // A message field (hf_model) is what expansion records, not a setting.
  if (field == nullptr || field->is_repeated() ||
      field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    return nullptr;
  }
  return field;
}

absl::Status BadValue(absl::string_view name, absl::string_view value, absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat(name, ": '", value, "' is not ", want));
}

// A count (steps, sizes, seeds) that does not parse: "is negative" says more than "not a whole
// number" for -5, which is one, and "is more than" for a number past the field's `max`.
absl::Status BadCount(absl::string_view name, absl::string_view value, CountProblem problem,
                      uint64_t max) {
  if (absl::StartsWith(value, "-")) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", value, " is negative"));
  }
  if (problem == CountProblem::kTooLarge) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", value, " is more than the field holds (at most ", max, ")"));
  }
  if (absl::StrContains(value, '.')) {
    return BadValue(name, value, "a whole number (only a zero fraction, as in 64.0, is read)");
  }
  return BadValue(name, value, "a whole number");
}

absl::Status CheckName(absl::string_view field, const std::string& value,
                       const std::vector<std::string>& known, absl::string_view what) {
  if (std::find(known.begin(), known.end(), value) != known.end()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": unknown ", what, " '", value,
                                                 "' (known: ", absl::StrJoin(known, ", "), ")"));
}

// The map and key a name like "attention_args.window" sets, or null when it names none.
google::protobuf::Map<std::string, double>* ArgMap(v1::TrainConfig& config, absl::string_view name,
                                                   std::string& key) {
  for (absl::string_view prefix : kArgMaps) {
    if (absl::StartsWith(name, prefix) && name.size() > prefix.size()) {
      key = std::string(name.substr(prefix.size()));
      return prefix == kArgMaps[0] ? config.mutable_optimizer_args()
                                   : config.mutable_attention_args();
    }
  }
  return nullptr;
}

}  // namespace

v1::TrainConfig DefaultTrainConfig() {
  v1::TrainConfig c;
  c.set_model("tiny");
  c.set_attention("dense");
  c.set_optimizer("adamw");
  c.set_context_length(128);
  c.set_seed(1);
  c.set_data_seed(1);
  c.set_learning_rate(3e-3);
  c.set_min_lr_ratio(0.1);
  c.set_warmup_steps(10);
  c.set_steps(200);
  c.set_batch_size(16);
  c.set_weight_decay(0.1);
  c.set_grad_clip(1.0);
  c.set_log_every(10);
  c.set_eval_every(0);
  c.set_eval_batches(8);
  c.set_checkpoint_every(0);
  c.set_dataset("builtin:tiny-corpus");
  c.set_precision("fp32");
  c.set_micro_batch_size(0);  // the whole batch at once
  c.set_activation_checkpointing(false);
  c.set_loss_chunk_tokens(4096);
  c.set_lr_schedule("cosine");
  c.set_decay_fraction(0.2);
  c.set_nonfinite("fail");
  c.set_keep_checkpoints(2);
  c.set_allow_config_change(false);
  return c;
}

v1::TrainConfig WithLoopDefaults(v1::TrainConfig config) {
  const v1::TrainConfig defaults = DefaultTrainConfig();
  if (config.micro_batch_size() == 0) config.set_micro_batch_size(config.batch_size());
  if (config.loss_chunk_tokens() == 0) config.set_loss_chunk_tokens(defaults.loss_chunk_tokens());
  if (config.lr_schedule().empty()) config.set_lr_schedule(defaults.lr_schedule());
  if (config.decay_fraction() == 0) config.set_decay_fraction(defaults.decay_fraction());
  if (config.nonfinite().empty()) config.set_nonfinite(defaults.nonfinite());
  if (config.keep_checkpoints() == 0) config.set_keep_checkpoints(defaults.keep_checkpoints());
  // Left at zero in DefaultTrainConfig too, so configs resolved before it existed, and their
  // hashes (job ids), stay as they were.
  if (config.divergence_evals() == 0) config.set_divergence_evals(3);
  if (config.grad_bucket_mb() == 0) config.set_grad_bucket_mb(kDefaultGradBucketMb);
  return config;
}

v1::TrainConfig WithoutExplicitDefaults(v1::TrainConfig config) {
  const v1::TrainConfig loop = WithLoopDefaults(v1::TrainConfig());
  const uint32_t share = config.batch_size() / WorldSize(config);
  if (config.micro_batch_size() == share) config.set_micro_batch_size(0);
  if (config.divergence_evals() == loop.divergence_evals()) config.set_divergence_evals(0);
  if (config.grad_bucket_mb() == loop.grad_bucket_mb()) config.set_grad_bucket_mb(0);
  if (config.optimizer_sharding() == "auto") config.clear_optimizer_sharding();
  if (config.cpu_ranks() == 1) config.set_cpu_ranks(0);
  EraseDefaultArgs(AttentionArgs(config.attention()), *config.mutable_attention_args());
  EraseDefaultArgs(OptimizerArgs(config.optimizer()), *config.mutable_optimizer_args());
  return config;
}

uint32_t WorldSize(const v1::TrainConfig& config) {
  return std::max(1u, config.gpus() > 0 ? config.gpus() : config.cpu_ranks());
}

absl::StatusOr<uint32_t> MicroBatchPerRank(const v1::TrainConfig& config, uint32_t ranks) {
  const uint32_t batch = config.batch_size();
  if (ranks == 0 || batch % ranks != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch_size: ", batch, " does not split evenly over the job's ", ranks, " ranks"));
  }
  const uint32_t rows = batch / ranks;
  const uint32_t micro =
      config.micro_batch_size() == 0 ? rows : std::min(config.micro_batch_size(), rows);
  if (micro == 0 || rows % micro != 0) {
    return absl::InvalidArgumentError(
        ranks == 1
            ? absl::StrCat("micro_batch_size: ", micro, " does not divide batch_size ", batch)
            : absl::StrCat("micro_batch_size: ", micro, " does not divide the ", rows,
                           " rows of each of ", ranks, " ranks"));
  }
  return micro;
}

bool IsTrainField(absl::string_view name) {
  for (absl::string_view prefix : kArgMaps) {
    if (absl::StartsWith(name, prefix)) return name.size() > prefix.size();
  }
  return Scalar(name) != nullptr;
}

bool IsTrainArgMap(absl::string_view name) {
  for (absl::string_view prefix : kArgMaps) {
    if (absl::StartsWith(prefix, name) && prefix.size() == name.size() + 1) return true;
  }
  return false;
}

namespace {

absl::Status SetScalarOrArgument(v1::TrainConfig& config, absl::string_view name,
                                 absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  std::string key;
  if (google::protobuf::Map<std::string, double>* args = ArgMap(config, name, key)) {
    // A boolean argument ("nesterov: true") is stored as 1 or 0; ValidateOptimizerArgs and
    // ValidateAttentionArgs check each argument's type once the optimizer or kind is known.
    double number = 0;
    if (value == "true" || value == "false") {
      number = value == "true" ? 1 : 0;
    } else if (!absl::SimpleAtod(value, &number)) {
      return BadValue(name, value, "a number, true or false");
    }
    (*args)[key] = number;
    return absl::OkStatus();
  }
  const FieldDescriptor* field = Scalar(name);
  if (field == nullptr) return absl::InvalidArgumentError(absl::StrCat(name, ": unknown setting"));
  const auto* reflection = config.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      if (value.empty()) return BadValue(name, value, "a non-empty name");
      reflection->SetString(&config, field, std::string(value));
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint64_t n = 0;
      constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
      if (const CountProblem problem = ParseCount(value, kMax, n); problem != CountProblem::kNone) {
        return BadCount(name, value, problem, kMax);
      }
      reflection->SetUInt32(&config, field, static_cast<uint32_t>(n));
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t n = 0;
      constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
      if (const CountProblem problem = ParseCount(value, kMax, n); problem != CountProblem::kNone) {
        return BadCount(name, value, problem, kMax);
      }
      reflection->SetUInt64(&config, field, n);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double d = 0;
      if (!absl::SimpleAtod(value, &d)) return BadValue(name, value, "a number");
      reflection->SetDouble(&config, field, d);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool b = false;
      if (!absl::SimpleAtob(value, &b)) return BadValue(name, value, "true or false");
      reflection->SetBool(&config, field, b);
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(name, ": cannot be set from a sweep file"));
  }
}

// Numbers whose 0 stands for WithLoopDefaults' value, said in words. A sweep that wrote 0 would
// run the default under a label that says 0, and as a job of another id than the same cell left
// unset.
absl::Status RefuseZeroThatMeansADefault(absl::string_view name, const v1::TrainConfig& config) {
  static constexpr absl::string_view kNames[] = {"micro_batch_size", "loss_chunk_tokens",
                                                 "decay_fraction",   "keep_checkpoints",
                                                 "divergence_evals", "grad_bucket_mb"};
  if (std::find(std::begin(kNames), std::end(kNames), name) == std::end(kNames) ||
      GetTrainField(config, name) != "0") {
    return absl::OkStatus();
  }
  // micro_batch_size's default is no number: the batch, capped at a rank's share.
  const std::string meaning = name == "micro_batch_size"
                                  ? "a rank's whole share of batch_size"
                                  : GetTrainField(WithLoopDefaults(v1::TrainConfig()), name);
  return absl::InvalidArgumentError(
      absl::StrCat(name, ": 0 would mean the default, ", meaning,
                   ", not zero; leave the setting out for the default",
                   name == "decay_fraction"
                       ? " (a constant rate after warmup: lr_schedule cosine, min_lr_ratio 1)"
                       : ""));
}

}  // namespace

absl::Status SetTrainField(v1::TrainConfig& config, absl::string_view name,
                           absl::string_view value) {
  if (absl::Status s = SetScalarOrArgument(config, name, value); !s.ok()) return s;
  return RefuseZeroThatMeansADefault(name, config);
}

std::string GetTrainField(const v1::TrainConfig& config, absl::string_view name) {
  for (absl::string_view prefix : kArgMaps) {
    if (!absl::StartsWith(name, prefix)) continue;
    const auto& args = prefix == kArgMaps[0] ? config.optimizer_args() : config.attention_args();
    auto it = args.find(std::string(name.substr(prefix.size())));
    return it == args.end() ? "" : absl::StrCat(it->second);
  }
  const FieldDescriptor* field = Scalar(name);
  if (field == nullptr) return "";
  const auto* reflection = config.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return reflection->GetString(config, field);
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(reflection->GetUInt32(config, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(reflection->GetUInt64(config, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(reflection->GetDouble(config, field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return reflection->GetBool(config, field) ? "true" : "false";
    default:
      return "";
  }
}

namespace {

// A config's problems, a line each, "field: text", and only the first of each field: a NaN
// learning rate is "not a finite number", not that and "outside (0, 1]" as well.
class Problems {
 public:
  template <typename... Parts>
  void Add(absl::string_view field, const Parts&... parts) {
    if (Has(field)) return;
    fields_.emplace_back(field);
    lines_.push_back(absl::StrCat(field, ": ", parts...));
  }
  // A status with a line per problem, each naming its field first ("optimizer_args.beta2:
  // ..."), as the checks this file calls write them.
  void Add(const absl::Status& status) {
    if (status.ok()) return;
    for (absl::string_view line : absl::StrSplit(status.message(), '\n')) {
      const absl::string_view field = line.substr(0, line.find(": "));
      if (Has(field)) continue;
      fields_.emplace_back(field);
      lines_.emplace_back(line);
    }
  }
  bool Has(absl::string_view field) const {
    return std::find(fields_.begin(), fields_.end(), field) != fields_.end();
  }
  bool empty() const { return lines_.empty(); }
  absl::Status ToStatus() const {
    return lines_.empty() ? absl::OkStatus()
                          : absl::InvalidArgumentError(absl::StrJoin(lines_, "\n"));
  }

 private:
  std::vector<std::string> fields_;
  std::vector<std::string> lines_;
};

}  // namespace

absl::Status ValidateTrainConfig(const v1::TrainConfig& c) {
  Problems problems;
  // No run survives a NaN or infinite setting; comparisons with NaN are false, so the range
  // checks below would let it through. Every number field, named by the field.
  const google::protobuf::Descriptor* descriptor = c.GetDescriptor();
  const google::protobuf::Reflection* reflection = c.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE && !field->is_repeated() &&
        !std::isfinite(reflection->GetDouble(c, field))) {
      problems.Add(field->name(), reflection->GetDouble(c, field), " is not a finite number");
    }
  }
  // Sizes no machine can run: they would only overflow products of them further on.
  for (const auto& [name, value, limit] :
       {std::tuple{"steps", c.steps(), kMaxSteps},
        std::tuple{"batch_size", c.batch_size(), kMaxBatch},
        std::tuple{"context_length", c.context_length(), kMaxContext},
        std::tuple{"gpus", c.gpus(), kMaxGpus},
        std::tuple{"cpu_ranks", c.cpu_ranks(), kMaxCpuRanks}}) {
    if (value > limit) problems.Add(name, value, " is more than the limit of ", limit);
  }
  if (c.gpus() > 0 && c.cpu_ranks() > 1) {
    problems.Add("cpu_ranks", c.cpu_ranks(),
                 " is for CPU jobs; this one asks for gpus: ", c.gpus());
  }
  const absl::StatusOr<v1::ModelConfig> model = ModelByName(c.model());
  if (!model.ok()) problems.Add("model", model.status().message());
  // Each kind's arguments are checked against what its name declares: only for a known name.
  const absl::Status attention =
      CheckName("attention", c.attention(), AttentionNames(), "attention");
  const absl::Status optimizer =
      CheckName("optimizer", c.optimizer(), OptimizerNames(), "optimizer");
  problems.Add(attention);
  problems.Add(optimizer);
  if (optimizer.ok()) problems.Add(ValidateOptimizerArgs(c));
  if (attention.ok()) problems.Add(ValidateAttentionArgs(c));
  if (c.context_length() == 0) problems.Add("context_length", "must be positive");
  if (c.context_length() > kLongestDenseContext && c.attention() != "nsa") {
    problems.Add("context_length", c.context_length(), " requires attention nsa (got ",
                 c.attention(), ", which takes at most ", kLongestDenseContext, ")");
  }
  if (c.steps() == 0) problems.Add("steps", "must be positive");
  if (c.batch_size() == 0) problems.Add("batch_size", "must be positive");
  if (!(c.learning_rate() > 0 && c.learning_rate() <= 1)) {
    problems.Add("learning_rate", c.learning_rate(), " is outside (0, 1]");
  }
  if (c.min_lr_ratio() < 0 || c.min_lr_ratio() > 1) {
    problems.Add("min_lr_ratio", c.min_lr_ratio(), " is outside [0, 1]");
  }
  if (c.warmup_steps() > c.steps() && !problems.Has("steps")) {
    problems.Add("warmup_steps", c.warmup_steps(), " is longer than the run (", c.steps(),
                 " steps)");
  }
  if (c.weight_decay() < 0) problems.Add("weight_decay", c.weight_decay(), " is below 0");
  if (c.grad_clip() < 0) problems.Add("grad_clip", c.grad_clip(), " is below 0");
  if (c.log_every() == 0) problems.Add("log_every", "must be positive");
  if (c.eval_batches() == 0) problems.Add("eval_batches", "must be positive");
  if (c.dataset().empty()) problems.Add("dataset", "must name a corpus");
  if (c.precision() != "fp32" && c.precision() != "bf16") {
    problems.Add("precision", "unknown precision '", c.precision(), "' (known: fp32, bf16)");
  }
  if (c.checkpoint_offload_layers() > 0) {
    if (!c.activation_checkpointing()) {
      problems.Add("checkpoint_offload_layers", c.checkpoint_offload_layers(),
                   " needs activation_checkpointing: true (it moves the checkpoints)");
    } else if (model.ok() && c.checkpoint_offload_layers() > model->num_hidden_layers()) {
      problems.Add("checkpoint_offload_layers", c.checkpoint_offload_layers(), " is more than ",
                   c.model(), "'s ", model->num_hidden_layers(), " layers");
    }
  }
  // The split is only asked of sizes that are themselves valid.
  if (!problems.Has("batch_size") && !problems.Has("gpus") && !problems.Has("cpu_ranks")) {
    problems.Add(MicroBatchPerRank(c, WorldSize(c)).status());
  }
  // Empty names below mean the default (WithLoopDefaults).
  if (!c.lr_schedule().empty()) {
    problems.Add(CheckName("lr_schedule", c.lr_schedule(), {"cosine", "wsd"}, "schedule"));
  }
  if (!(c.decay_fraction() >= 0 && c.decay_fraction() <= 1)) {
    problems.Add("decay_fraction", c.decay_fraction(), " is outside [0, 1]");
  }
  if (c.divergence_factor() != 0 && !(c.divergence_factor() > 1)) {
    problems.Add("divergence_factor", c.divergence_factor(), " must be 0 (off) or above 1");
  }
  if (!c.nonfinite().empty()) {
    problems.Add(CheckName("nonfinite", c.nonfinite(), {"fail", "skip"}, "policy"));
  }
  if (!c.optimizer_sharding().empty()) {
    problems.Add(CheckName("optimizer_sharding", c.optimizer_sharding(), {"auto", "zero1", "none"},
                           "sharding"));
  }
  return problems.ToStatus();
}

absl::Status RecordHfModel(v1::TrainConfig& config) {
  if (!absl::StartsWith(config.model(), kHfModelPrefix)) return absl::OkStatus();
  absl::StatusOr<v1::ModelConfig> model = ModelByName(config.model());
  if (!model.ok()) return model.status();
  *config.mutable_hf_model() = *std::move(model);
  return absl::OkStatus();
}

absl::StatusOr<v1::ModelConfig> ModelOfConfig(const v1::TrainConfig& config) {
  absl::StatusOr<v1::ModelConfig> model = ModelByName(config.model());
  if (!model.ok() || !config.has_hf_model()) return model;
  if (std::string differences = ModelConfigDifferences(config.hf_model(), *model);
      !differences.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("model: ", config.model(), " changed since its sweep was expanded (",
                     differences, "); submit the edited model as a new sweep or with --update"));
  }
  return model;
}

}  // namespace ablate
