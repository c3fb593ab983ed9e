#include "common/auth/tls.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "gtest/gtest.h"

namespace ablate::auth {
namespace {

using ::testing::HasSubstr;

std::string Write(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(TlsTest, NoFilesIsPlaintext) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server = GrpcServerCredentials({});
  ASSERT_TRUE(server.ok());
  EXPECT_NE(*server, nullptr);
  unsetenv(kTlsCaEnv);
  EXPECT_TRUE(GrpcChannelCredentials("").ok());
}

TEST(TlsTest, EveryMistakeNamesItsFlag) {
  const std::string not_pem = Write("not.pem", "hello\n");
  EXPECT_EQ(GrpcServerCredentials({"/no/such.pem", not_pem, ""}).status().message(),
            "--tls-cert: cannot read /no/such.pem");
  EXPECT_THAT(std::string(GrpcServerCredentials({not_pem, not_pem, ""}).status().message()),
              HasSubstr("--tls-cert: " + not_pem + " holds no PEM block"));
  EXPECT_EQ(GrpcServerCredentials({not_pem, "", ""}).status().message(),
            "--tls-cert and --tls-key are given together");
  EXPECT_EQ(GrpcServerCredentials({"", "", not_pem}).status().message(),
            "--tls-client-ca needs --tls-cert and --tls-key");
  EXPECT_EQ(GrpcChannelCredentials("/no/ca.pem").status().message(),
            "--tls-ca: cannot read /no/ca.pem");
  setenv(kTlsCaEnv, "/no/env-ca.pem", 1);
  EXPECT_EQ(GrpcChannelCredentials("").status().message(), "--tls-ca: cannot read /no/env-ca.pem");
  unsetenv(kTlsCaEnv);
}

}  // namespace
}  // namespace ablate::auth
