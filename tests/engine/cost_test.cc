// The cost report against the paper's Table I (DESIGN.md section 2.3).
#include <gtest/gtest.h>

#include "billnet/cost.h"

namespace billnet {
namespace {

struct PaperRow {
  Stage stage;
  double size_mb, gbops;
};
constexpr PaperRow kTableI[] = {{Stage::kS1, 32.23, 718.89},
                                {Stage::kS2, 1.01, 24.54},
                                {Stage::kS3, 1.01, 8.53},
                                {Stage::kS4, 1.01, 6.39},
                                {Stage::kS5, 1.01, 6.34}};

TEST(Cost, Billnet2xParameterCountIsTheDesignCount) {
  auto plan = BuildPlan(Billnet2x());
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(ComputeCost(*plan, Stage::kS1).params, 1002336);
  EXPECT_EQ(ComputeCost(*plan, Stage::kS5).weight_bits, 1005792);
  EXPECT_EQ(plan->steps, 8);
  EXPECT_EQ(plan->gap_channels, 256);
  EXPECT_EQ(plan->gap_area, 48);
}

TEST(Cost, ReproducesTableIWithinTenPercent) {
  auto plan = BuildPlan(Billnet2x());
  ASSERT_TRUE(plan.ok());
  for (const auto& row : kTableI) {
    SCOPED_TRACE(StageName(row.stage));
    const CostReport r = ComputeCost(*plan, row.stage);
    EXPECT_NEAR(r.weight_memory_mbit / row.size_mb, 1.0, 0.10);
    EXPECT_NEAR(r.gbops / row.gbops, 1.0, 0.10);
  }
}

TEST(Cost, StageDifferencesFollowTheCountingRules) {
  auto plan = BuildPlan(Billnet2x());
  ASSERT_TRUE(plan.ok());
  const double s3 = ComputeCost(*plan, Stage::kS3).gbops;
  const double s4 = ComputeCost(*plan, Stage::kS4).gbops;
  const double s5 = ComputeCost(*plan, Stage::kS5).gbops;
  // S3 -> S4 removes the BNs: 2,064,384 normalized elements x 1024 BOPs.
  EXPECT_NEAR((s3 - s4) * 1e9, 2064384.0 * 1024, 1.0);
  // S4 -> S5: the LSTM's 1,572,864 MACs go from 32-bit to 1-bit inputs, and
  // the dense layer's 27,648 MACs from 32-bit to 2-bit (ternary h) inputs.
  EXPECT_NEAR((s4 - s5) * 1e9, 1572864.0 * 31 + 27648.0 * 2 * 30, 1.0);
}

TEST(Cost, LayerTableCoversEveryConvolution) {
  auto plan = BuildPlan(Billnet2x());
  ASSERT_TRUE(plan.ok());
  const CostReport r = ComputeCost(*plan, Stage::kS5);
  int convs = 0;
  for (const auto& l : r.layers) convs += l.kind == "conv";
  // stem + 3 CFs x 3 + 3 MORs x 6
  EXPECT_EQ(convs, 1 + 3 * 3 + 3 * 6);
  // The second pointwise of CF(256->256) sees +-221,184 (DESIGN.md 2.1).
  bool found = false;
  for (const auto& l : r.layers)
    if (l.name == "mor2.a.pw2") {
      EXPECT_EQ(l.input_range, "[-221184, 221184]");
      EXPECT_EQ(l.input_bits_true, 19);
      found = true;
    }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace billnet
