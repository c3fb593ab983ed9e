#include "common/auth/tokens.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/auth/client_token.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUser[] = "user-token-0123456789";
constexpr char kViewer[] = "viewer-token-0123456789";
constexpr char kWorkerA[] = "worker-a-token-0123456789";

std::string Table() {
  return absl::StrCat("# comment\n\nuser ", kUser, "\nviewer\t", kViewer, "\nworker ", kWorkerA,
                      " node-a\n");
}

TEST(TokenTableTest, FindsEachGrantAndNothingElse) {
  absl::StatusOr<TokenTable> table = TokenTable::Parse(Table());
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 3u);
  ASSERT_NE(table->Find(kUser), nullptr);
  EXPECT_EQ(table->Find(kUser)->role, Role::kUser);
  EXPECT_EQ(table->Find(kViewer)->role, Role::kViewer);
  ASSERT_NE(table->Find(kWorkerA), nullptr);
  EXPECT_EQ(table->Find(kWorkerA)->role, Role::kWorker);
  EXPECT_EQ(table->Find(kWorkerA)->worker_id, "node-a");
  EXPECT_EQ(table->Find("user-token-012345678"), nullptr);  // a prefix
  EXPECT_EQ(table->Find(""), nullptr);
}

TEST(TokenTableTest, RefusesBadLinesByNumberWithoutEchoingTokens) {
  struct Case {
    std::string text;
    std::string why;
  };
  for (const Case& c : {
           Case{"admin abcdefghijklmnopqrstuvwxyz\n", "line 1: unknown role 'admin'"},
           Case{"user short\n", "line 1: a token must be at least 16"},
           Case{"\nworker abcdefghijklmnopqrstuvwxyz\n", "line 2: a worker token must name"},
           Case{"user abcdefghijklmnopqrstuvwxyz node\n", "only a worker token names"},
           Case{"user abcdefghijklmnopqrstuvwxyz\nviewer abcdefghijklmnopqrstuvwxyz\n",
                "line 2: this token is already granted"},
           Case{"user\n", "expected ROLE TOKEN [WORKER_ID], found 1 word"},
       }) {
    absl::StatusOr<TokenTable> table = TokenTable::Parse(c.text);
    ASSERT_FALSE(table.ok()) << c.text;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(table.status().message()), HasSubstr(c.why));
    EXPECT_THAT(std::string(table.status().message()), Not(HasSubstr("abcdefghijklmnop")));
  }
}

TEST(TokenTableTest, ACommentMayFollowALine) {
  absl::StatusOr<TokenTable> table = TokenTable::Parse(
      "# the team's tokens\n"
      "user   abcdefghijklmnopqrstuvwxyz   # alice\n"
      "worker 0123456789abcdef#not-a-comment n1\t# the first node\n");
  ASSERT_TRUE(table.ok()) << table.status();
  Authenticator auth(*std::move(table));
  EXPECT_TRUE(auth.Check(BearerOf("abcdefghijklmnopqrstuvwxyz"), Access::kWrite, "Call").ok());
  absl::StatusOr<Principal> worker =
      auth.Check(BearerOf("0123456789abcdef#not-a-comment"), Access::kWorker, "Call");
  ASSERT_TRUE(worker.ok()) << worker.status();
  EXPECT_EQ(worker->worker_id, "n1");
}

TEST(AuthenticatorTest, EveryRoleBoundary) {
  Authenticator auth(*TokenTable::Parse(Table()));
  auto code = [&](const std::string& header, Access access) {
    return auth.Check(header, access, "Call").status().code();
  };
  const std::string user = BearerOf(kUser), viewer = BearerOf(kViewer), worker = BearerOf(kWorkerA);
  EXPECT_EQ(code(user, Access::kRead), absl::StatusCode::kOk);
  EXPECT_EQ(code(user, Access::kWrite), absl::StatusCode::kOk);
  EXPECT_EQ(code(user, Access::kWorker), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(code(viewer, Access::kRead), absl::StatusCode::kOk);
  EXPECT_EQ(code(viewer, Access::kWrite), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(code(viewer, Access::kWorker), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(code(worker, Access::kRead), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(code(worker, Access::kWrite), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(code(worker, Access::kWorker), absl::StatusCode::kOk);
  EXPECT_EQ(code("", Access::kRead), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(code(kUser, Access::kRead), absl::StatusCode::kUnauthenticated);  // no "Bearer "
  EXPECT_EQ(code(absl::StrCat("bearer ", kViewer), Access::kRead), absl::StatusCode::kOk);
  EXPECT_EQ(code("Bearer not-a-known-token-at-all", Access::kRead),
            absl::StatusCode::kUnauthenticated);

  absl::Status denied = auth.Check(viewer, Access::kWrite, "Cancel").status();
  EXPECT_THAT(std::string(denied.message()), HasSubstr("Cancel needs a token of role user"));
  EXPECT_THAT(std::string(denied.message()), HasSubstr("role is viewer"));
  EXPECT_THAT(std::string(denied.message()), Not(HasSubstr(kViewer)));
}

TEST(AuthenticatorTest, ReloadRotatesTokensAndKeepsTheOldTableOnABadFile) {
  std::string path = ::testing::TempDir() + "/tokens_test_reload";
  std::ofstream(path) << "user " << kUser << "\n";
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::FromFile(path);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE((*auth)->Check(BearerOf(kUser), Access::kWrite, "Submit").ok());

  std::ofstream(path) << "user " << kViewer << "\n";
  ASSERT_TRUE((*auth)->Reload().ok());
  EXPECT_FALSE((*auth)->Check(BearerOf(kUser), Access::kWrite, "Submit").ok());
  EXPECT_TRUE((*auth)->Check(BearerOf(kViewer), Access::kWrite, "Submit").ok());

  std::ofstream(path) << "nobody x\n";
  EXPECT_FALSE((*auth)->Reload().ok());
  EXPECT_TRUE((*auth)->Check(BearerOf(kViewer), Access::kWrite, "Submit").ok());
  // A file of no token (an empty Secret): refused, the old table kept.
  std::ofstream(path) << "# rotated\n";
  const absl::Status empty = (*auth)->Reload();
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.message(), path +
                                 ": holds no token, so nobody could call the coordinator; "
                                 "give each caller a line ROLE TOKEN [WORKER_ID]");
  EXPECT_TRUE((*auth)->Check(BearerOf(kViewer), Access::kWrite, "Submit").ok());
  EXPECT_EQ(Authenticator::FromFile(path).status().message(), empty.message());
  EXPECT_EQ(std::remove(path.c_str()), 0);
}

// What the coordinator asks of a disconnected worker after a reload: whether any token still
// lets a worker of its id connect.
TEST(AuthenticatorTest, GrantsWorkerWhileSomeWorkerTokenIsBoundToTheId) {
  std::string path = ::testing::TempDir() + "/tokens_test_grants";
  std::ofstream(path) << "user " << kUser << "\nworker " << kWorkerA << " node-a\n";
  absl::StatusOr<std::unique_ptr<Authenticator>> auth = Authenticator::FromFile(path);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE((*auth)->GrantsWorker("node-a"));
  EXPECT_FALSE((*auth)->GrantsWorker("node-b"));
  EXPECT_FALSE((*auth)->GrantsWorker("node"));  // a prefix
  EXPECT_FALSE((*auth)->GrantsWorker(""));      // the user token names no worker

  // Rotated: another token now grants node-a, and node-b none.
  std::ofstream(path) << "user " << kUser << "\nworker worker-a-rotated-0123456789 node-a\n";
  ASSERT_TRUE((*auth)->Reload().ok());
  EXPECT_TRUE((*auth)->GrantsWorker("node-a"));
  // Revoked: no token grants node-a.
  std::ofstream(path) << "user " << kUser << "\nworker " << kWorkerA << " node-b\n";
  ASSERT_TRUE((*auth)->Reload().ok());
  EXPECT_FALSE((*auth)->GrantsWorker("node-a"));
  EXPECT_TRUE((*auth)->GrantsWorker("node-b"));
  EXPECT_EQ(std::remove(path.c_str()), 0);
}

TEST(ClientTokenTest, FileFirstThenEnvironment) {
  std::string path = ::testing::TempDir() + "/tokens_test_client";
  std::ofstream(path) << "  " << kUser << "  \nignored\n";
  ASSERT_EQ(setenv(kTokenEnv, kViewer, 1), 0);
  EXPECT_EQ(*ClientToken(path), kUser);
  EXPECT_EQ(*ClientToken(""), kViewer);
  ASSERT_EQ(unsetenv(kTokenEnv), 0);
  EXPECT_EQ(*ClientToken(""), "");
  EXPECT_EQ(ClientToken(path + ".missing").status().code(), absl::StatusCode::kNotFound);
  std::ofstream(path) << "\n";
  EXPECT_EQ(ClientToken(path).status().code(), absl::StatusCode::kInvalidArgument);
  // The coordinator's file, given to a client: said so, without echoing a token.
  for (const std::string& first : {absl::StrCat("user ", kUser), std::string("# tokens")}) {
    std::ofstream(path) << first << "\n" << kUser << "\n";
    const absl::Status refused = ClientToken(path).status();
    EXPECT_THAT(std::string(refused.message()),
                HasSubstr("its first line is a comment or holds several words"))
        << first;
    EXPECT_THAT(std::string(refused.message()), Not(HasSubstr(kUser))) << first;
  }
  ASSERT_EQ(setenv(kTokenEnv, absl::StrCat("user ", kUser).c_str(), 1), 0);
  EXPECT_THAT(std::string(ClientToken("").status().message()),
              HasSubstr("$ABLATE_TOKEN is a comment or holds several words"));
  ASSERT_EQ(unsetenv(kTokenEnv), 0);
  EXPECT_EQ(std::remove(path.c_str()), 0);
}

}  // namespace
}  // namespace ablate::auth
