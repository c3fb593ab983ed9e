#include "trainer_lib/train/job_file.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/did_you_mean.h"
#include "common/train_config.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace ablate::train {
namespace {

using google::protobuf::FieldDescriptor;

// The TrainConfig fields a JSON object writes out, by proto or JSON name. Proto3 scalars carry
// no presence, so this is the only way to tell "weight_decay": 0 from a missing weight_decay.
std::vector<const FieldDescriptor*> GivenFields(const google::protobuf::Struct& object) {
  std::set<const FieldDescriptor*> fields;
  const google::protobuf::Descriptor* descriptor = v1::TrainConfig::descriptor();
  for (const auto& [key, value] : object.fields()) {
    if (value.kind_case() == google::protobuf::Value::kNullValue) continue;  // JSON's "unset"
    const FieldDescriptor* field = descriptor->FindFieldByName(key);
    if (field == nullptr) field = descriptor->FindFieldByCamelcaseName(key);
    if (field != nullptr) fields.insert(field);
  }
  return {fields.begin(), fields.end()};
}

// The keys of `object` that name no field of `descriptor`, each prefixed with `path` and with
// the field it likely means: "config.learning_rte (did you mean learning_rate?)".
void AddUnknownKeys(const google::protobuf::Struct& object,
                    const google::protobuf::Descriptor* descriptor, absl::string_view path,
                    std::vector<std::string>& out) {
  std::vector<std::string> names;
  names.reserve(descriptor->field_count());
  for (int i = 0; i < descriptor->field_count(); ++i) names.push_back(descriptor->field(i)->name());
  for (const auto& [key, value] : object.fields()) {
    if (descriptor->FindFieldByName(key) == nullptr &&
        descriptor->FindFieldByCamelcaseName(key) == nullptr) {
      out.push_back(absl::StrCat(path, key, DidYouMean(key, names)));
    }
  }
}

// What a file that is neither a JobSpec nor a TrainConfig most likely got wrong: its keys
// that name no field, read as a JobSpec when it has a "config" object, else as a TrainConfig.
std::vector<std::string> UnknownKeys(const google::protobuf::Struct& object) {
  std::vector<std::string> out;
  const auto config = object.fields().find("config");
  if (config == object.fields().end() || !config->second.has_struct_value()) {
    AddUnknownKeys(object, v1::TrainConfig::descriptor(), "", out);
    return out;
  }
  AddUnknownKeys(object, v1::JobSpec::descriptor(), "", out);
  AddUnknownKeys(config->second.struct_value(), v1::TrainConfig::descriptor(), "config.", out);
  return out;
}

}  // namespace

absl::StatusOr<v1::JobSpec> ParseJobJson(const std::string& json) {
  namespace util = google::protobuf::util;
  google::protobuf::Struct object;
  if (util::Status s = util::JsonStringToMessage(json, &object); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a JSON object: ", std::string(s.message())));
  }
  v1::JobSpec job;
  v1::TrainConfig given;
  const google::protobuf::Struct* config_object = &object;
  if (util::Status as_job = util::JsonStringToMessage(json, &job); as_job.ok()) {
    given = job.config();
    auto it = object.fields().find("config");
    config_object = it != object.fields().end() && it->second.has_struct_value()
                        ? &it->second.struct_value()
                        : nullptr;
  } else if (util::Status as_config = util::JsonStringToMessage(json, &given);
             !as_config.ok()) {
    if (std::vector<std::string> unknown = UnknownKeys(object); !unknown.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          unknown.size() == 1 ? "unknown field " : "unknown fields ", absl::StrJoin(unknown, ", "),
          " (the fields of proto/ablate/v1/config.proto's TrainConfig, or of a JobSpec whose "
          "config holds them)"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "neither a JobSpec (", std::string(as_job.message()), ") nor a TrainConfig (",
        std::string(as_config.message()), ")"));
  }

  v1::TrainConfig config = DefaultTrainConfig();
  if (!job.config_hash().empty()) {
    config = std::move(given);
  } else if (config_object != nullptr) {
    config.GetReflection()->SwapFields(&config, &given, GivenFields(*config_object));
  }
  if (absl::Status s = ValidateTrainConfig(config); !s.ok()) return s;
  *job.mutable_config() = std::move(config);
  return job;
}

absl::StatusOr<v1::JobSpec> ReadJobFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the job file"));
  std::ostringstream text;
  text << in.rdbuf();
  absl::StatusOr<v1::JobSpec> job = ParseJobJson(text.str());
  if (!job.ok()) {
    return absl::Status(job.status().code(), absl::StrCat(path, ": ", job.status().message()));
  }
  return job;
}

}  // namespace ablate::train
