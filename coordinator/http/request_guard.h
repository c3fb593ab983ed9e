// What an HTTP request must show before any route runs; the HttpServer calls AdmitRequest from
// httplib's pre-routing handler, so no route can be added without it.
//  - GET /healthz and the web app's files (anything outside /api/ and /metrics) are open;
//  - /metrics needs a viewer or user token unless `metrics_need_token` is false;
//  - GET and HEAD under /api/ need a viewer or user token, POST a user token; another method
//    changes nothing there (its route answers 405) and passes;
//  - the token is checked first, so a wrong role is named whatever the other headers say;
//  - a state-changing request (any method but GET, HEAD and OPTIONS) must also say
//    Content-Type: application/json, and when it carries an Origin header, that origin must be
//    the Host it was sent to. A browser page of another site can neither send a JSON body nor
//    an Authorization header without a CORS preflight, which the server never grants (it sends
//    no Access-Control-* header), and a form or text/plain POST is refused here.
// Stateless; safe from any thread.
#ifndef ABLATE_COORDINATOR_HTTP_REQUEST_GUARD_H_
#define ABLATE_COORDINATOR_HTTP_REQUEST_GUARD_H_

#include "absl/status/status.h"
#include "common/auth/tokens.h"

namespace httplib {
struct Request;
}  // namespace httplib

namespace ablate::coordinator {

// OK when the request may go on to its route; else UNAUTHENTICATED (401), PERMISSION_DENIED
// (403) or INVALID_ARGUMENT (400) with a message naming what is missing (the roles that may,
// the content type). A null `authenticator` checks no tokens (in-process tests only); the
// content-type and origin checks apply regardless.
absl::Status AdmitRequest(const httplib::Request& req, const auth::Authenticator* authenticator,
                          bool metrics_need_token);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_HTTP_REQUEST_GUARD_H_
