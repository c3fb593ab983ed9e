// The coordinator over TLS on loopback, with certificates this test makes with the openssl
// command: the CLI submits and lists a sweep over gRPC with TLS, the HTTP API answers over
// HTTPS, and a client that does not trust the CA, speaks plaintext, or (under mutual TLS)
// shows no certificate gets nothing.
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate {
namespace {

using ::testing::HasSubstr;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

Result RunProcess(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env = {}) {
  absl::StatusOr<std::unique_ptr<test::Subprocess>> process = test::Subprocess::Start(argv, env);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return {};
  absl::StatusOr<int> code = (*process)->WaitFor(absl::Seconds(30));
  EXPECT_TRUE(code.ok()) << code.status();
  return {code.ok() ? *code : -1, (*process)->Stdout(), (*process)->Stderr()};
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> bin_dir = test::BinDir();
    ASSERT_TRUE(bin_dir.ok()) << bin_dir.status();
    bin_dir_ = *bin_dir;
    absl::StatusOr<std::string> dir = test::MakeTempDir();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    MakeCa("ca");
    MakeCa("other-ca");
    Sign("ca", "server", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    Sign("ca", "client", "extendedKeyUsage=clientAuth");
    Sign("other-ca", "stranger", "extendedKeyUsage=clientAuth");
  }

  void TearDown() override {
    coordinator_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string File(const std::string& name) const { return absl::StrCat(dir_, "/", name); }

  void OpenSsl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    const Result r = RunProcess(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // A self-signed CA: NAME.pem and NAME.key.
  void MakeCa(const std::string& name) {
    OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", File(name + ".key"), "-out", File(name + ".pem"), "-days", "2", "-subj",
             "/CN=" + name});
  }

  // NAME.pem and NAME.key, signed by CA with the extension line `extension`.
  void Sign(const std::string& ca, const std::string& name, const std::string& extension) {
    std::ofstream(File(name + ".ext")) << extension << "\n";
    OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", File(name + ".key"), "-out", File(name + ".csr"), "-subj",
             "/CN=localhost"});
    OpenSsl({"x509", "-req", "-in", File(name + ".csr"), "-CA", File(ca + ".pem"), "-CAkey",
             File(ca + ".key"), "-CAcreateserial", "-out", File(name + ".pem"), "-days", "2",
             "-extfile", File(name + ".ext")});
  }

  void StartCoordinator(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--tls-cert", File("server.pem"), "--tls-key",
                                     File("server.key")};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<test::TestCoordinator>> coordinator =
        test::TestCoordinator::Start(bin_dir_, dir_, args);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
  }

  // `ablate --coordinator ADDRESS args...` with the user token.
  Result Ablate(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> argv = {bin_dir_ + "/ablate", "--coordinator",
                                     coordinator_->grpc_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::map<std::string, std::string> full = env;
    full["ABLATE_TOKEN"] = test::kUserToken;
    return RunProcess(argv, full);
  }

  std::string bin_dir_;
  std::string dir_;
  std::unique_ptr<test::TestCoordinator> coordinator_;
};

constexpr char kSweep[] = "name: tls-sweep\ngrid:\n  seed: [1, 2]\nfixed:\n  steps: 10\n";

TEST_F(TlsTest, ASweepIsSubmittedAndListedOverTls) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  const std::string sweep = File("sweep.yaml");
  std::ofstream(sweep) << kSweep;
  const Result submitted = Ablate({"--tls-ca", File("ca.pem"), "submit", sweep});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  // The CA may come from the environment as well.
  const Result listed = Ablate({"ls"}, {{"ABLATE_TLS_CA", File("ca.pem")}});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("tls-sweep"));

  // Plaintext, or TLS trusting another CA, reaches nothing; plaintext is told of --tls-ca.
  const Result plain = Ablate({"ls"});
  EXPECT_EQ(plain.exit_code, 3);
  EXPECT_THAT(plain.err, HasSubstr("if the coordinator serves TLS, pass --tls-ca"));
  EXPECT_NE(Ablate({"--tls-ca", File("other-ca.pem"), "ls"}).exit_code, 0);
}

TEST_F(TlsTest, TheHttpApiIsServedOverHttps) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  httplib::SSLClient https("127.0.0.1", coordinator_->http_port());
  https.set_ca_cert_path(File("ca.pem"));
  https.enable_server_certificate_verification(true);
  httplib::Result health = https.Get("/healthz");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  httplib::Result sweeps =
      https.Get("/api/v1/sweeps", {{"Authorization", absl::StrCat("Bearer ", test::kUserToken)}});
  ASSERT_TRUE(sweeps);
  EXPECT_EQ(sweeps->status, 200);

  httplib::Client plain("127.0.0.1", coordinator_->http_port());
  plain.set_read_timeout(5, 0);
  httplib::Result refused = plain.Get("/healthz");
  EXPECT_TRUE(!refused || refused->status != 200);
}

TEST_F(TlsTest, MutualTlsAcceptsOnlyClientsTheCaSigned) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator({"--tls-client-ca", File("ca.pem")}));
  const std::vector<std::string> ls = {"--tls-ca", File("ca.pem"), "ls"};
  const Result signed_client =
      Ablate(ls, {{"ABLATE_TLS_CERT", File("client.pem")}, {"ABLATE_TLS_KEY", File("client.key")}});
  EXPECT_EQ(signed_client.exit_code, 0) << signed_client.err;
  EXPECT_NE(Ablate(ls).exit_code, 0);  // no certificate
  EXPECT_NE(Ablate(ls, {{"ABLATE_TLS_CERT", File("stranger.pem")},
                        {"ABLATE_TLS_KEY", File("stranger.key")}})
                .exit_code,
            0);
}

}  // namespace
}  // namespace ablate
