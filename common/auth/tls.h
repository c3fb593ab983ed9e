// TLS credentials for Ablate's gRPC connections, read from PEM files. The coordinator serves
// TLS when given a certificate and key (--tls-cert, --tls-key) and, given a client CA too
// (--tls-client-ca), asks every gRPC client for a certificate that CA signed. A client (the
// CLI, the worker) trusts the CA file it is given (--tls-ca or $ABLATE_TLS_CA) and, for mutual
// TLS, presents its own certificate and key ($ABLATE_TLS_CERT, $ABLATE_TLS_KEY); with no CA it
// speaks plaintext, as on loopback and in tests.
// Stateless; safe from any thread.
#ifndef ABLATE_COMMON_AUTH_TLS_H_
#define ABLATE_COMMON_AUTH_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace ablate::auth {

inline constexpr char kTlsCaEnv[] = "ABLATE_TLS_CA";
inline constexpr char kTlsCertEnv[] = "ABLATE_TLS_CERT";
inline constexpr char kTlsKeyEnv[] = "ABLATE_TLS_KEY";

struct ServerTlsFiles {
  std::string cert_file;       // PEM certificate chain; empty with key_file: plaintext
  std::string key_file;        // PEM private key of the certificate
  std::string client_ca_file;  // PEM CA; not empty: clients must present a certificate it signed
};

// Plaintext credentials when cert and key are both empty; TLS ones otherwise. InvalidArgument
// naming the flag when only one of cert and key is given or a file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const ServerTlsFiles& files);

// A client's credentials: TLS trusting `ca_file` (else $ABLATE_TLS_CA) with the client
// certificate and key of $ABLATE_TLS_CERT and $ABLATE_TLS_KEY when both are set; plaintext when
// no CA is named. InvalidArgument naming the file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcChannelCredentials(
    const std::string& ca_file);

// The whole of a PEM file; InvalidArgument naming `what` (the flag) when it cannot be read or
// holds no PEM block.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& what);

}  // namespace ablate::auth

#endif  // ABLATE_COMMON_AUTH_TLS_H_
