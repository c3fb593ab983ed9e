#include "coordinator/http/request_guard.h"

#include <httplib.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ablate::coordinator {
namespace {

bool ChangesState(const std::string& method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

// "http://host:port" -> "host:port"; the whole value when it has no scheme.
absl::string_view AuthorityOf(absl::string_view origin) {
  if (size_t scheme = origin.find("://"); scheme != absl::string_view::npos) {
    origin.remove_prefix(scheme + 3);
  }
  return absl::StripSuffix(origin, "/");
}

absl::Status CheckBrowserSafety(const httplib::Request& req, const std::string& what) {
  const std::string sent = req.get_header_value("Content-Type");
  std::string type = absl::AsciiStrToLower(sent);
  if (type != "application/json" && !absl::StartsWith(type, "application/json;")) {
    // Naming what came: curl -d sends application/x-www-form-urlencoded unless told otherwise.
    return absl::InvalidArgumentError(absl::StrCat(
        what, " needs the header Content-Type: application/json (the body is JSON); this request ",
        sent.empty() ? "has none" : absl::StrCat("says '", sent, "'")));
  }
  if (req.has_header("Origin")) {
    const std::string origin_header = req.get_header_value("Origin");
    absl::string_view origin = AuthorityOf(origin_header);
    std::string host = req.get_header_value("Host");
    if (host.empty() || !absl::EqualsIgnoreCase(origin, host)) {
      return absl::PermissionDeniedError(
          absl::StrCat(what, " refused: a request from another origin (", origin,
                       ") cannot change state on ", host.empty() ? "this server" : host));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AdmitRequest(const httplib::Request& req, const auth::Authenticator* authenticator,
                          bool metrics_need_token) {
  const bool api = absl::StartsWith(req.path, "/api/");
  const bool metrics = req.path == "/metrics";
  if (!api && !(metrics && metrics_need_token)) return absl::OkStatus();
  // Another method than these changes nothing: its route answers 405.
  if (api && req.method != "GET" && req.method != "HEAD" && req.method != "POST") {
    return absl::OkStatus();
  }
  const std::string what = absl::StrCat(req.method, " ", req.path);
  const bool changes = ChangesState(req.method);
  // Who asks first: a viewer's action is refused for its role, whatever its headers.
  if (authenticator != nullptr) {
    if (absl::Status known = authenticator
                                 ->Check(req.get_header_value("Authorization"),
                                         changes ? auth::Access::kWrite : auth::Access::kRead, what)
                                 .status();
        !known.ok()) {
      return known;
    }
  }
  return changes ? CheckBrowserSafety(req, what) : absl::OkStatus();
}

}  // namespace ablate::coordinator
