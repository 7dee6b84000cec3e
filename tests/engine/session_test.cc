#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

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

// ---------------------------------------------------------------------------
// LSTM state, export/import, errors, batching, clip labels, probabilities.

namespace billnet {
namespace {

using testing::TinyInfo;
using testing::TinyTopology;

// Runs one window; fails the test on error.
Response RunOk(Session& s, const std::vector<uint8_t>& w) {
  Response r;
  const Status st = s.Run(w.data(), w.size(), &r);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return r;
}

// Bitwise-identical responses (scores, integer scores, probabilities, tops).
::testing::AssertionResult SameResponse(const Response& a, const Response& b) {
  if (a.steps != b.steps || a.classes != b.classes)
    return ::testing::AssertionFailure() << "shapes differ";
  if (a.scores != b.scores) return ::testing::AssertionFailure() << "scores differ";
  if (a.integer_scores != b.integer_scores)
    return ::testing::AssertionFailure() << "integer scores differ";
  if (a.scores_are_integers != b.scores_are_integers)
    return ::testing::AssertionFailure() << "scores_are_integers differs";
  if (a.probabilities != b.probabilities)
    return ::testing::AssertionFailure() << "probabilities differ";
  if (a.top_class != b.top_class || a.top_probability != b.top_probability)
    return ::testing::AssertionFailure() << "top classes differ";
  return ::testing::AssertionSuccess();
}

bool AllZero(const std::vector<float>& v) {
  for (float x : v)
    if (x != 0.f) return false;
  return true;
}

std::shared_ptr<const Model> ModelWithTemperature(Stage stage, uint64_t seed, double temperature) {
  auto plan = BuildPlan(TinyTopology());
  EXPECT_TRUE(plan.ok());
  ModelInfo info = TinyInfo(stage);
  info.temperature = temperature;
  auto m = Model::FromParts(info, RandomWeights(*plan, stage, seed));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

TEST(Session, LstmStateIsCarriedAndResetRestoresAFreshSession) {
  for (int s = 1; s <= 5; ++s) {
    bool observed = false;
    for (uint64_t seed = 1; seed <= 6 && !observed; ++seed) {
      SCOPED_TRACE("stage s" + std::to_string(s) + " seed " + std::to_string(seed));
      auto m = RandomModel(Stage(s), seed);
      ASSERT_TRUE(m);
      const auto a = RandomWindow(*m, 1000 + seed), b = RandomWindow(*m, 2000 + seed);
      Session carried(m), fresh(m);
      EXPECT_TRUE(AllZero(carried.h()) && AllZero(carried.c()));
      RunOk(carried, a);
      const bool state_after_a = !AllZero(carried.h()) || !AllZero(carried.c());
      const Response ab = RunOk(carried, b);
      const Response b_fresh = RunOk(fresh, b);
      // A then B differs from B alone exactly when A left a state behind...
      if (ab.scores != b_fresh.scores) {
        EXPECT_TRUE(state_after_a);
        observed = true;
      }
      // ... and Reset() makes the session fresh again, bit for bit.
      carried.Reset();
      EXPECT_TRUE(AllZero(carried.h()) && AllZero(carried.c()));
      ASSERT_EQ(carried.h().size(), size_t(TinyTopology().lstm_units));
      EXPECT_TRUE(SameResponse(RunOk(carried, b), b_fresh));
      EXPECT_EQ(carried.h(), fresh.h());
      EXPECT_EQ(carried.c(), fresh.c());
    }
    EXPECT_TRUE(observed) << "stage s" << s << ": no seed showed the carried state";
  }
}

TEST(Session, ExportImportStateRoundTrip) {
  for (int s = 1; s <= 5; ++s) {
    SCOPED_TRACE("stage s" + std::to_string(s));
    auto m = RandomModel(Stage(s), 21);
    ASSERT_TRUE(m);
    const auto a = RandomWindow(*m, 1), b = RandomWindow(*m, 2), c = RandomWindow(*m, 3);
    Session src(m);
    RunOk(src, a);
    const std::vector<uint8_t> blob = src.ExportState();
    const size_t u = TinyTopology().lstm_units;
    EXPECT_EQ(blob.size(), 12 + 2 * u * (s == 5 ? 1 : 4));
    ASSERT_GE(blob.size(), 6u);
    EXPECT_EQ(std::string(blob.begin(), blob.begin() + 4), "BNST");
    EXPECT_EQ(blob[5], s);
    // Into a fresh session and into one with another state: both take it.
    Session dst(m), busy(m);
    RunOk(busy, c);
    ASSERT_TRUE(dst.ImportState(blob.data(), blob.size()).ok());
    ASSERT_TRUE(busy.ImportState(blob.data(), blob.size()).ok());
    EXPECT_EQ(dst.h(), src.h());
    EXPECT_EQ(dst.c(), src.c());
    EXPECT_EQ(dst.ExportState(), blob);
    const Response want = RunOk(src, b);
    EXPECT_TRUE(SameResponse(RunOk(dst, b), want));
    EXPECT_TRUE(SameResponse(RunOk(busy, b), want));
    EXPECT_EQ(dst.h(), src.h());
    EXPECT_EQ(dst.c(), src.c());
  }
}

TEST(Session, ImportStateRejectsForeignOrDamagedBlobs) {
  const size_t u = TinyTopology().lstm_units;
  for (int s = 1; s <= 5; ++s) {
    SCOPED_TRACE("stage s" + std::to_string(s));
    auto m = RandomModel(Stage(s), 31);
    ASSERT_TRUE(m);
    Session session(m);
    RunOk(session, RandomWindow(*m, 5));
    const std::vector<float> h = session.h(), c = session.c();
    const std::vector<uint8_t> good = session.ExportState();
    auto rejected = [&](const std::vector<uint8_t>& blob, const std::string& what) {
      SCOPED_TRACE(what);
      const Status st = session.ImportState(blob.empty() ? nullptr : blob.data(), blob.size());
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
      EXPECT_FALSE(st.message().empty());
      EXPECT_EQ(session.h(), h) << "state changed by a rejected import";
      EXPECT_EQ(session.c(), c) << "state changed by a rejected import";
    };
    // Another stage's blob: as exported (S1-S4 blobs have the same size), and
    // with only the stage byte changed (so the size fits).
    for (int o = 1; o <= 5; ++o) {
      if (o == s) continue;
      auto other = RandomModel(Stage(o), 31);
      ASSERT_TRUE(other);
      Session os(other);
      RunOk(os, RandomWindow(*other, 5));
      rejected(os.ExportState(), "exported by stage s" + std::to_string(o));
      std::vector<uint8_t> relabeled = good;
      relabeled[5] = uint8_t(o);
      rejected(relabeled, "stage byte s" + std::to_string(o));
    }
    {
      // An out-of-range stage byte is named as a number in the message.
      std::vector<uint8_t> relabeled = good;
      relabeled[5] = 200;
      const Status st = session.ImportState(relabeled.data(), relabeled.size());
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
      EXPECT_NE(st.message().find("200"), std::string::npos) << st.message();
      rejected(relabeled, "stage byte 200");
    }
    // Wrong sizes.
    rejected({}, "empty");
    rejected(std::vector<uint8_t>(good.begin(), good.begin() + 12), "header only");
    rejected(std::vector<uint8_t>(good.begin(), good.end() - 1), "one byte short");
    {
      std::vector<uint8_t> longer = good;
      longer.push_back(0);
      rejected(longer, "one byte long");
    }
    {
      const Status st = session.ImportState(nullptr, good.size());
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << "null data";
    }
    // A different unit count (in the header, the size unchanged).
    {
      std::vector<uint8_t> units = good;
      units[8] = uint8_t(u + 1);
      rejected(units, "units field");
    }
    // Bad magic and version.
    for (int i = 0; i < 4; ++i) {
      std::vector<uint8_t> bad = good;
      bad[i] ^= 0x20;
      rejected(bad, "magic byte " + std::to_string(i));
    }
    {
      std::vector<uint8_t> bad = good;
      bad[4] = 2;
      rejected(bad, "version 2");
    }
    // Values: S5 only {-1, 0, 1}; S1-S4 finite floats.
    if (s == 5) {
      for (size_t at : {size_t(12), size_t(12 + u - 1), size_t(12 + u), size_t(12 + 2 * u - 1)})
        for (uint8_t v : {uint8_t(2), uint8_t(0xFE), uint8_t(0x7F), uint8_t(0x80)}) {
          std::vector<uint8_t> bad = good;
          bad[at] = v;
          rejected(bad, "S5 value " + std::to_string(int(int8_t(v))) + " at byte " +
                            std::to_string(at));
        }
    } else {
      for (uint32_t bits : {0x7fc00000u, 0x7f800000u, 0xff800000u}) {  // NaN, +inf, -inf
        std::vector<uint8_t> bad = good;
        const size_t at = 12 + 4 * u;  // first c value
        for (int i = 0; i < 4; ++i) bad[at + i] = uint8_t(bits >> (8 * i));
        rejected(bad, "non-finite c[0]");
      }
    }
    // The good blob still imports.
    EXPECT_TRUE(session.ImportState(good.data(), good.size()).ok());
  }
}

TEST(Session, RunRejectsAWrongWindowSizeAndKeepsTheState) {
  for (int s = 1; s <= 5; ++s) {
    SCOPED_TRACE("stage s" + std::to_string(s));
    auto m = RandomModel(Stage(s), 41);
    ASSERT_TRUE(m);
    const auto a = RandomWindow(*m, 1), b = RandomWindow(*m, 2);
    Session session(m), reference(m);
    RunOk(session, a);
    RunOk(reference, a);
    const std::vector<float> h = session.h(), c = session.c();
    std::vector<uint8_t> big = b;
    big.push_back(0);
    for (size_t size : {size_t(0), b.size() - 1, b.size() + 1, b.size() / 2}) {
      SCOPED_TRACE("size " + std::to_string(size));
      Response r;
      const Status st = session.Run(big.data(), size, &r);
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
      EXPECT_NE(st.message().find(std::to_string(m->window_bytes())), std::string::npos)
          << "the message names the expected size: " << st.message();
      EXPECT_EQ(session.h(), h);
      EXPECT_EQ(session.c(), c);
    }
    {
      Response r;
      EXPECT_EQ(session.Run(nullptr, b.size(), &r).code(), StatusCode::kInvalidArgument);
    }
    EXPECT_TRUE(SameResponse(RunOk(session, b), RunOk(reference, b)));
  }
}

TEST(RunBatch, EqualsSeparateRunsAndRejectsARepeatedSession) {
  for (int s = 1; s <= 5; ++s) {
    SCOPED_TRACE("stage s" + std::to_string(s));
    auto m = RandomModel(Stage(s), 51);
    // A second model (another stage) in the same batch.
    auto other = RandomModel(Stage(s % 5 + 1), 52);
    ASSERT_TRUE(m && other);
    Session b0(m), b1(m), b2(other), s0(m), s1(m), s2(other);
    Session* batch[3] = {&b0, &b1, &b2};
    Session* single[3] = {&s0, &s1, &s2};
    for (int round = 0; round < 2; ++round) {  // the second round carries state
      SCOPED_TRACE("round " + std::to_string(round));
      std::vector<std::vector<uint8_t>> w;
      for (int i = 0; i < 3; ++i)
        w.push_back(RandomWindow(i == 2 ? *other : *m, 100 * round + i));
      const uint8_t* ptrs[3] = {w[0].data(), w[1].data(), w[2].data()};
      Response out[3];
      ASSERT_TRUE(RunBatch(batch, ptrs, 3, out).ok());
      for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE("entry " + std::to_string(i));
        EXPECT_TRUE(SameResponse(out[i], RunOk(*single[i], w[i])));
        EXPECT_EQ(batch[i]->h(), single[i]->h());
        EXPECT_EQ(batch[i]->c(), single[i]->c());
      }
    }
    // A repeated session, a null session or a null window: InvalidArgument,
    // and no session has run.
    const auto w = RandomWindow(*m, 9);
    const uint8_t* ptrs[3] = {w.data(), w.data(), w.data()};
    std::vector<std::vector<float>> h, c;
    for (Session* x : batch) h.push_back(x->h()), c.push_back(x->c());
    Response out[3];
    Session* repeated[3] = {&b0, &b1, &b0};
    const Status st = RunBatch(repeated, ptrs, 3, out);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
    EXPECT_NE(st.message().find("repeats"), std::string::npos) << st.message();
    Session* with_null[2] = {&b0, nullptr};
    EXPECT_EQ(RunBatch(with_null, ptrs, 2, out).code(), StatusCode::kInvalidArgument);
    const uint8_t* null_window[2] = {w.data(), nullptr};
    EXPECT_EQ(RunBatch(batch, null_window, 2, out).code(), StatusCode::kInvalidArgument);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(batch[i]->h(), h[i]) << "entry " << i << " ran in a rejected batch";
      EXPECT_EQ(batch[i]->c(), c[i]) << "entry " << i << " ran in a rejected batch";
    }
    EXPECT_TRUE(RunBatch(batch, ptrs, 0, out).ok());  // an empty batch
  }
}

TEST(RealSteps, StepsCoveringARealFrame) {
  // BILLNET 2x: 16 frames, 8 steps, each step covers 2 frames.
  EXPECT_EQ(RealSteps(8, 16, 0), 0);
  EXPECT_EQ(RealSteps(8, 16, 1), 1);
  EXPECT_EQ(RealSteps(8, 16, 2), 1);
  EXPECT_EQ(RealSteps(8, 16, 3), 2);
  EXPECT_EQ(RealSteps(8, 16, 15), 8);
  EXPECT_EQ(RealSteps(8, 16, 16), 8);
  EXPECT_EQ(RealSteps(8, 16, 17), 8);
  EXPECT_EQ(RealSteps(8, 16, -1), 0);
  // Against the definition: step t covers frames [t f / s, (t + 1) f / s);
  // it counts when its first frame, t f / s, is before real_frames.
  for (auto [steps, frames] : {std::pair{8, 16}, {4, 8}, {3, 8}, {5, 16}, {1, 1}, {4, 4}}) {
    for (int r = 0; r <= frames; ++r) {
      int want = 0;
      for (int t = 0; t < steps; ++t) want += int64_t(t) * frames < int64_t(r) * steps;
      EXPECT_EQ(RealSteps(steps, frames, r), want)
          << "steps " << steps << " frames " << frames << " real " << r;
    }
  }
}

Response HandResponse(int steps, int classes, const std::vector<float>& probabilities) {
  Response r;
  r.steps = steps;
  r.classes = classes;
  r.probabilities = probabilities;
  r.scores.assign(probabilities.size(), 0.f);
  return r;
}

TEST(ClassifyClip, MeanOverRealStepsIgnoresPaddingTiesToLowestIndex) {
  // 4 steps per window of 8 frames, 3 classes.
  const Response w0 = HandResponse(4, 3, {0.5f, 0.3f, 0.2f, 0.5f, 0.3f, 0.2f,  //
                                          0.2f, 0.6f, 0.2f, 0.2f, 0.6f, 0.2f});
  // The padded tail: 3 real frames -> steps 0 and 1; steps 2 and 3 cover
  // only padding and vote for class 2, which would win if they counted.
  const Response w1 = HandResponse(4, 3, {0.1f, 0.8f, 0.1f, 0.6f, 0.3f, 0.1f,  //
                                          0.f, 0.f, 1.f, 0.f, 0.f, 1.f});
  auto clip = ClassifyClip({w0, w1}, {8, 3}, 8);
  ASSERT_TRUE(clip.ok()) << clip.status().ToString();
  EXPECT_EQ(clip->steps_used, 6);
  EXPECT_EQ(clip->label, 1);
  ASSERT_EQ(clip->mean_probabilities.size(), 3u);
  EXPECT_NEAR(clip->mean_probabilities[0], 2.1 / 6, 1e-6);
  EXPECT_NEAR(clip->mean_probabilities[1], 2.9 / 6, 1e-6);
  EXPECT_NEAR(clip->mean_probabilities[2], 1.0 / 6, 1e-6);
  EXPECT_EQ(clip->probability, clip->mean_probabilities[1]);
  // Had the padding counted, class 2 would win (3.0 / 8 > 2.9 / 8).
  auto all = ClassifyClip({w0, w1}, {8, 8}, 8);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->label, 2);
  EXPECT_EQ(all->steps_used, 8);
  // A window of padding only adds nothing.
  auto extra = ClassifyClip({w0, w1, w1}, {8, 3, 0}, 8);
  ASSERT_TRUE(extra.ok());
  EXPECT_EQ(extra->steps_used, 6);
  EXPECT_EQ(extra->label, 1);
  EXPECT_EQ(extra->mean_probabilities, clip->mean_probabilities);

  // Ties go to the lowest index.
  const Response tie01 = HandResponse(1, 3, {0.4f, 0.4f, 0.2f});
  const Response tie12 = HandResponse(1, 3, {0.2f, 0.4f, 0.4f});
  auto t01 = ClassifyClip({tie01}, {2}, 2);
  auto t12 = ClassifyClip({tie12, tie12}, {2, 1}, 2);
  ASSERT_TRUE(t01.ok() && t12.ok());
  EXPECT_EQ(t01->label, 0);
  EXPECT_EQ(t12->label, 1);

  // Errors.
  EXPECT_EQ(ClassifyClip({}, {}, 8).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ClassifyClip({w0}, {8, 8}, 8).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ClassifyClip({w0, w1}, {0, 0}, 8).status().code(), StatusCode::kInvalidArgument);
  const Response two_classes = HandResponse(4, 2, std::vector<float>(8, 0.5f));
  EXPECT_EQ(ClassifyClip({w0, two_classes}, {8, 8}, 8).status().code(),
            StatusCode::kInvalidArgument);  // class counts differ
  // A response whose probabilities are not steps x classes is refused, not
  // read out of bounds.
  const Response short_probs = HandResponse(4, 3, std::vector<float>(6, 0.5f));
  EXPECT_EQ(ClassifyClip({w0, short_probs}, {8, 8}, 8).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ClassifyClip({HandResponse(4, 0, {})}, {8}, 8).status().code(),
            StatusCode::kInvalidArgument);  // no class
  Response negative_steps = HandResponse(1, 3, {0.2f, 0.3f, 0.5f});
  negative_steps.steps = -1;
  EXPECT_EQ(ClassifyClip({negative_steps}, {8}, 8).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ClassifyClip, OfEngineResponses) {
  auto m = RandomModel(Stage::kS5, 61);
  ASSERT_TRUE(m);
  Session session(m);
  std::vector<Response> windows;
  for (int i = 0; i < 3; ++i) windows.push_back(RunOk(session, RandomWindow(*m, 70 + i)));
  const int frames = m->info().topology.frames, steps = windows[0].steps, k = windows[0].classes;
  const std::vector<int> real = {frames, frames, 1};  // the last window: 1 real frame
  auto clip = ClassifyClip(windows, real, frames);
  ASSERT_TRUE(clip.ok()) << clip.status().ToString();
  std::vector<double> sum(k, 0);
  int used = 0;
  for (int i = 0; i < 3; ++i) {
    const int n = i < 2 ? steps : 1;
    used += n;
    for (int t = 0; t < n; ++t)
      for (int j = 0; j < k; ++j) sum[j] += windows[i].probabilities[t * k + j];
  }
  EXPECT_EQ(clip->steps_used, used);
  const int best = int(std::max_element(sum.begin(), sum.end()) - sum.begin());  // first max
  EXPECT_EQ(clip->label, best);
  for (int j = 0; j < k; ++j) EXPECT_NEAR(clip->mean_probabilities[j], sum[j] / used, 1e-6);
}

TEST(Session, S5ScoresAreIntegersAndEqualIntegerScores) {
  for (int s = 1; s <= 5; ++s) {
    SCOPED_TRACE("stage s" + std::to_string(s));
    auto m = RandomModel(Stage(s), 71);
    ASSERT_TRUE(m);
    Session session(m);
    for (int i = 0; i < 2; ++i) {
      const Response r = RunOk(session, RandomWindow(*m, 80 + i));
      ASSERT_EQ(r.scores.size(), size_t(r.steps * r.classes));
      if (s < 5) {
        EXPECT_FALSE(r.scores_are_integers);
        EXPECT_TRUE(r.integer_scores.empty());
        continue;
      }
      EXPECT_TRUE(r.scores_are_integers);
      ASSERT_EQ(r.integer_scores.size(), r.scores.size());
      const int u = m->info().topology.lstm_units;
      for (size_t j = 0; j < r.scores.size(); ++j) {
        EXPECT_EQ(r.scores[j], float(r.integer_scores[j])) << j;
        EXPECT_EQ(r.scores[j], std::round(r.scores[j])) << j;
        EXPECT_LE(std::abs(r.integer_scores[j]), u) << "ternary weights times ternary h";
      }
    }
  }
}

TEST(Session, ProbabilitiesUseTheModelTemperatureAndTopTiesGoLow) {
  int ties = 0;
  for (int s = 1; s <= 5; ++s) {
    std::vector<float> scores_at_t1;
    for (double temperature : {1.0, 0.25, 3.5}) {
      SCOPED_TRACE("stage s" + std::to_string(s) + " T " + std::to_string(temperature));
      auto m = ModelWithTemperature(Stage(s), 81, temperature);
      ASSERT_TRUE(m);
      EXPECT_EQ(m->info().temperature, temperature);
      Session session(m);
      for (int i = 0; i < 3; ++i) {
        const Response r = RunOk(session, RandomWindow(*m, 90 + i));
        if (i == 0) {
          // The temperature changes probabilities only, never the scores.
          if (scores_at_t1.empty()) scores_at_t1 = r.scores;
          EXPECT_EQ(r.scores, scores_at_t1);
        }
        for (int t = 0; t < r.steps; ++t) {
          const float* sc = &r.scores[t * r.classes];
          double mx = sc[0], z = 0;
          int best = 0;
          for (int k = 1; k < r.classes; ++k)
            if (sc[k] > sc[best]) best = k;
          for (int k = 0; k < r.classes; ++k) mx = std::max(mx, double(sc[k]));
          for (int k = 0; k < r.classes; ++k) z += std::exp((sc[k] - mx) / temperature);
          for (int k = 0; k < r.classes; ++k)
            EXPECT_NEAR(r.probabilities[t * r.classes + k],
                        std::exp((sc[k] - mx) / temperature) / z, 1e-6)
                << "t=" << t << " k=" << k;
          EXPECT_EQ(r.top_class[t], best) << "t=" << t;
          EXPECT_EQ(r.top_probability[t], r.probabilities[t * r.classes + best]);
          for (int k = best + 1; k < r.classes; ++k) ties += sc[k] == sc[best];
        }
      }
    }
  }
  EXPECT_GT(ties, 0) << "S5's integer scores should have produced a tied top class";
}

TEST(ComputeProbabilities, HandValues) {
  Response r;
  r.steps = 3;
  r.classes = 3;
  const float l3 = float(2 * std::log(3.0));
  r.scores = {0, l3, 0,  // T = 2: e^0, e^ln3, e^0 -> 1/5, 3/5, 1/5
              5, 5, 1,   // tie of classes 0 and 1 -> top 0
              1, 3, 3};  // tie of 1 and 2 -> top 1
  ComputeProbabilities(2.0, &r);
  EXPECT_NEAR(r.probabilities[0], 0.2, 1e-6);
  EXPECT_NEAR(r.probabilities[1], 0.6, 1e-6);
  EXPECT_NEAR(r.probabilities[2], 0.2, 1e-6);
  EXPECT_EQ(r.top_class, (std::vector<int>{1, 0, 1}));
  const double e = std::exp(-2.0);  // (1 - 5) / 2
  EXPECT_NEAR(r.probabilities[3], 1 / (2 + e), 1e-6);
  EXPECT_NEAR(r.probabilities[5], e / (2 + e), 1e-6);
  EXPECT_EQ(r.top_probability[1], r.probabilities[3]);
  // Large scores do not overflow (the maximum is subtracted first).
  Response big;
  big.steps = 1;
  big.classes = 2;
  big.scores = {1e6f, 1e6f - 1};
  ComputeProbabilities(1.0, &big);
  EXPECT_NEAR(big.probabilities[0], 1 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_TRUE(std::isfinite(big.probabilities[1]));
}

}  // namespace
}  // namespace billnet
