#include "coordinator/http/json_reply.h"

#include <httplib.h>

#include <string>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/strings/str_cat.h"
#include "coordinator/http/json_enums.h"
#include "google/protobuf/util/json_util.h"

namespace ablate::coordinator {
namespace {

constexpr char kJson[] = "application/json";

}  // namespace

// Google's HTTP mapping of the canonical codes.
int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

absl::Status ParseJsonBody(const std::string& body, google::protobuf::Message& message) {
  absl::StatusOr<std::string> expanded = ExpandEnumShortNames(body, *message.GetDescriptor());
  if (!expanded.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("the request body is not JSON of the message ",
                                                   message.GetTypeName(), ": ",
                                                   expanded.status().message()));
  }
  google::protobuf::util::Status parsed =
      google::protobuf::util::JsonStringToMessage(*expanded, &message);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("the request body is not JSON of the message ",
                                                   message.GetTypeName(), ": ",
                                                   std::string(parsed.message())));
  }
  return absl::OkStatus();
}

void ReplyError(const absl::Status& status, httplib::Response& res) {
  v1::HttpError body;
  body.set_error(std::string(status.message()));
  body.set_code(absl::StatusCodeToString(status.code()));
  std::string json;
  google::protobuf::util::MessageToJsonString(body, &json);
  res.status = HttpStatusOf(status.code());
  res.set_content(json, kJson);
}

void ReplyJson(const google::protobuf::Message& message, httplib::Response& res) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  google::protobuf::util::Status printed =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!printed.ok()) {
    ReplyError(absl::InternalError(std::string(printed.message())), res);
    return;
  }
  res.status = 200;
  res.set_content(json, kJson);
}

}  // namespace ablate::coordinator
