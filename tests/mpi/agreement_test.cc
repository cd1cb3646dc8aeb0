// The start-up agreement across real ranks: equal statements pass; a difference fails every
// rank with the same message naming the item, the ranks and their values.
#include "comm/agreement.h"

#include "mpi_test.h"

namespace kiln::test {
namespace {

TEST(Agreement, EqualStatementsPass) {
  Mismatches m;
  try {
    check_agreement(job(), {{"config hash", "0123456789abcdef", ""}, {"samples", "60000", ""}});
  } catch (const Error& e) {
    m.add("threw: {}", e.message());
  }
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Agreement, OneRankDifferingFailsEveryRankNamingRanksAndValues) {
  const int n = job().world(), r = job().rank();
  // Rank 1 reads another dataset; statements differ in length too.
  const std::string samples = r == 1 ? "59999" : "60000";
  std::string message;
  try {
    check_agreement(
        job(), {{"config hash", "same", ""}, {"training samples", samples, "check data.path"}});
  } catch (const Error& e) {
    message = e.message();
  }
  std::string others = n == 2 ? "rank 0" : "ranks 0, 2";
  for (int q = 3; q < n; ++q) others += fmt::format(", {}", q);
  Mismatches m;
  if (message.empty()) m.add("no error on rank {}", r);
  for (const std::string& part : {std::string("training samples:"), others + " = 60000;",
                                  std::string("rank 1 = 59999;"), std::string("check data.path")}) {
    if (message.find(part) == std::string::npos) m.add("'{}' not in: {}", part, message);
  }
  if (message.find("config hash") != std::string::npos) m.add("names an item that agreed");
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST(Agreement, EveryRankDifferentIsListedRankByRank) {
  const int n = job().world(), r = job().rank();
  std::string message;
  try {
    check_agreement(job(), {{"model", fmt::format("model-of-rank-{}", std::string(r, 'x')), ""}});
  } catch (const Error& e) {
    message = e.message();
  }
  Mismatches m;
  for (int q = 0; q < n; ++q) {
    const std::string part = fmt::format("rank {} = model-of-rank-{};", q, std::string(q, 'x'));
    if (message.find(part) == std::string::npos) m.add("'{}' not in: {}", part, message);
  }
  EXPECT_AGREED_NO_MISMATCH(m);
}

}  // namespace
}  // namespace kiln::test
