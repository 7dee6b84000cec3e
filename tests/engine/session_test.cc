#include <gtest/gtest.h>

#include "billnet/session.h"
#include "test_util.h"

namespace billnet {
namespace {

using testing::RandomModel;
using testing::RandomWindow;

TEST(Session, EveryStageRunsAndGivesProbabilities) {
  for (int s = 1; s <= 5; ++s) {
    SCOPED_TRACE("stage s" + std::to_string(s));
    auto m = RandomModel(Stage(s), 11);
    ASSERT_TRUE(m);
    Session session(m);
    const auto w = RandomWindow(*m, 3);
    Response r;
    ASSERT_TRUE(session.Run(w.data(), w.size(), &r).ok());
    EXPECT_EQ(r.steps, m->plan().steps);
    EXPECT_EQ(r.classes, 5);
    ASSERT_EQ(r.probabilities.size(), size_t(r.steps * r.classes));
    for (int t = 0; t < r.steps; ++t) {
      double sum = 0;
      for (int k = 0; k < r.classes; ++k) sum += r.probabilities[t * r.classes + k];
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
    EXPECT_EQ(r.scores_are_integers, s == 5);
  }
}

}  // namespace
}  // namespace billnet
