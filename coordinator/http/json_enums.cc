#include "coordinator/http/json_enums.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace ablate::coordinator {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

// The prefix every value name of `type` shares, up to and including its last '_' ("JOB_STATE_"
// for JobState); empty where the names share none.
std::string SharedPrefix(const EnumDescriptor& type) {
  std::string prefix = type.value(0)->name();
  for (int i = 1; i < type.value_count(); ++i) {
    const std::string& name = type.value(i)->name();
    size_t n = 0;
    while (n < prefix.size() && n < name.size() && prefix[n] == name[n]) ++n;
    prefix.resize(n);
  }
  const size_t end = prefix.rfind('_');
  return end == std::string::npos ? "" : prefix.substr(0, end + 1);
}

// Writes the enum value `value` names in full, or says what it may be.
absl::Status ExpandValue(nlohmann::json& value, const EnumDescriptor& type,
                         const std::string& path) {
  const std::string name = value.get<std::string>();
  if (type.FindValueByName(name) != nullptr) return absl::OkStatus();
  const std::string prefix = SharedPrefix(type);
  const std::string full = prefix + absl::AsciiStrToUpper(name);
  if (!name.empty() && type.FindValueByName(full) != nullptr) {
    value = full;
    return absl::OkStatus();
  }
  std::vector<std::string> shorts;
  for (int i = 0; i < type.value_count(); ++i) {
    const std::string& each = type.value(i)->name();
    if (type.value(i)->number() == 0 && absl::EndsWith(each, "_UNSPECIFIED")) continue;
    shorts.push_back(absl::AsciiStrToLower(each.substr(prefix.size())));
  }
  return absl::InvalidArgumentError(absl::StrCat(path, ": '", name, "' is not a ", type.name(),
                                                 ": one of ", absl::StrJoin(shorts, ", ")));
}

// The field a JSON key names: by its JSON name (lowerCamelCase) or its proto name, as protobuf's
// parser takes either.
const FieldDescriptor* FieldNamed(const Descriptor& type, const std::string& key) {
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor* field = type.field(i);
    if (field->json_name() == key || field->name() == key) return field;
  }
  return nullptr;
}

absl::Status ExpandMessage(nlohmann::json& object, const Descriptor& type,
                           const std::string& path) {
  if (!object.is_object()) return absl::OkStatus();
  for (auto& [key, value] : object.items()) {
    const FieldDescriptor* field = FieldNamed(type, key);
    if (field == nullptr || field->is_map()) continue;
    const std::string at = path.empty() ? key : absl::StrCat(path, ".", key);
    const auto expand = [&](nlohmann::json& one, const std::string& one_at) -> absl::Status {
      if (field->enum_type() != nullptr && one.is_string()) {
        return ExpandValue(one, *field->enum_type(), one_at);
      }
      // The well-known types (Timestamp, Struct, ...) have JSON forms of their own.
      if (field->message_type() != nullptr &&
          !absl::StartsWith(field->message_type()->full_name(), "google.protobuf.")) {
        return ExpandMessage(one, *field->message_type(), one_at);
      }
      return absl::OkStatus();
    };
    if (field->is_repeated() && value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i) {
        if (absl::Status s = expand(value[i], absl::StrCat(at, "[", i, "]")); !s.ok()) return s;
      }
    } else if (absl::Status s = expand(value, at); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ExpandEnumShortNames(const std::string& body, const Descriptor& type) {
  nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return body;
  if (absl::Status s = ExpandMessage(json, type, ""); !s.ok()) return s;
  return json.dump();
}

}  // namespace ablate::coordinator
