// Placeholder removed once real tests exist.
#include <gtest/gtest.h>
#include "core/config.h"
TEST(Smoke, EmbeddedConfigLoads) {
  kiln::Config c = kiln::load_config("", {});
  EXPECT_EQ(c.model.name, "cnn");
}
