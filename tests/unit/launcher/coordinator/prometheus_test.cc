// The Prometheus text format: what the writer produces, the parser reads back.
#include "launcher/coordinator/prometheus.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"

namespace kiln::coord {
namespace {

TEST(Prometheus, WrittenTextParsesBack) {
  PromWriter w;
  w.family("kiln_rank_step", "gauge", "Latest step");
  w.sample("kiln_rank_step", {{"job", "a"}, {"rank", "0"}}, 120);
  w.sample("kiln_rank_step", {{"job", "we\"ird\\job\nx"}, {"rank", "1"}}, 0.1);
  w.family("kiln_x", "counter", "x");
  w.sample("kiln_x", {}, std::nan(""));
  w.sample("kiln_x", {{"k", "v"}}, -HUGE_VAL);
  EXPECT_NE(w.text().find("# TYPE kiln_rank_step gauge\n"), std::string::npos);
  EXPECT_NE(w.text().find("kiln_rank_step{job=\"a\",rank=\"0\"} 120\n"), std::string::npos);
  EXPECT_NE(w.text().find("job=\"we\\\"ird\\\\job\\nx\""), std::string::npos);

  PromText t = parse_prometheus(w.text());
  ASSERT_EQ(t.samples.size(), 4u);
  EXPECT_EQ(t.families["kiln_rank_step"].type, "gauge");
  EXPECT_EQ(t.families["kiln_x"].type, "counter");
  EXPECT_EQ(t.samples[0].labels["rank"], "0");
  EXPECT_EQ(t.samples[0].value, 120);
  EXPECT_EQ(t.samples[1].labels["job"], "we\"ird\\job\nx");
  EXPECT_EQ(t.samples[1].value, 0.1);  // shortest round-trip form
  EXPECT_TRUE(std::isnan(t.samples[2].value));
  EXPECT_EQ(t.samples[3].value, -HUGE_VAL);
}

TEST(Prometheus, MalformedTextIsRefused) {
  EXPECT_THROW(parse_prometheus("kiln_x 1"), Error);  // no final newline
  EXPECT_THROW(parse_prometheus("kiln_x{a=1} 1\n"), Error);
  EXPECT_THROW(parse_prometheus("kiln_x abc\n"), Error);
  EXPECT_THROW(parse_prometheus("# TYPE kiln_x widget\n"), Error);
  EXPECT_EQ(parse_prometheus("kiln_x 2 1700000000\n").samples.at(0).value, 2);
}

}  // namespace
}  // namespace kiln::coord
