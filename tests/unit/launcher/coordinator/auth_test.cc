// Token files, token scopes, and the bearer metadata form.
#include "launcher/coordinator/auth.h"

#include <gtest/gtest.h>

#include "coord_test_util.h"
#include "core/error.h"
#include "test_util.h"

namespace kiln::coord {
namespace {

const std::string kA = "aaaaaaaaaaaaaaaaaaaa", kB = "bbbbbbbbbbbbbbbbbbbb", kC = "cccccccccccccccc";

TEST(Auth, TokenFileHoldsEveryJobAndPerJobTokens) {
  test::TempDir dir;
  const std::string path = dir.path() + "/tokens";
  test::write_file(path, "# tokens\n" + kA + "\n\n  job-1 " + kB + "  # job 1 only\n");
  std::vector<TokenEntry> e = read_token_file(path);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].job, "");
  EXPECT_EQ(e[0].token, kA);
  EXPECT_EQ(e[1].job, "job-1");
  EXPECT_EQ(e[1].token, kB);

  TokenSet set(e);
  EXPECT_EQ(set.scope(kA), std::optional<std::string>(""));
  EXPECT_EQ(set.scope(kB), std::optional<std::string>("job-1"));
  EXPECT_EQ(set.scope(kC), std::nullopt);
  EXPECT_EQ(set.scope(kA.substr(1)), std::nullopt);
  EXPECT_EQ(set.scope(""), std::nullopt);

  EXPECT_EQ(client_token(path, "job-1"), kB);
  EXPECT_EQ(client_token(path, "job-2"), kA);
}

TEST(Auth, MalformedTokenFilesNameTheLine) {
  test::TempDir dir;
  const std::string path = dir.path() + "/tokens";
  test::write_file(path, kA + "\nshort\n");
  try {
    read_token_file(path);
    FAIL() << "a short token was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find(path + ":2"), std::string::npos) << e.message();
  }
  test::write_file(path, "job " + kA + " extra\n");
  EXPECT_THROW(read_token_file(path), Error);
  test::write_file(path, "# nothing\n");
  EXPECT_THROW(read_token_file(path), Error);
  test::write_file(path, "bad/job " + kA + "\n");
  EXPECT_THROW(read_token_file(path), Error);
}

TEST(Auth, BearerForm) {
  EXPECT_EQ(bearer_token("Bearer " + kA), kA);
  EXPECT_EQ(bearer_token("bearer " + kA), "");
  EXPECT_EQ(bearer_token("Basic " + kA), "");
  EXPECT_EQ(bearer_token("Bearer "), "");
  EXPECT_EQ(generate_token().size(), 64u);
  EXPECT_NE(generate_token(), generate_token());
}

}  // namespace
}  // namespace kiln::coord
