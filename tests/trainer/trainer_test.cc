// Trainer core: quantizers, BN -> BSN conversion, and the exactness of
// ExportStage against the engine (DESIGN.md 2.6) on a tiny topology.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "billnet/fold.h"
#include "billnet/model.h"
#include "billnet/session.h"
#include "billnet/trainer/billnet_model.h"
#include "billnet/trainer/quantizers.h"
#include "test_util.h"

namespace billnet::trainer {
namespace {

std::vector<double> Vals(const torch::Tensor& t) {
  torch::Tensor d = t.detach().to(torch::kFloat64).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

torch::Tensor Probe() {
  return torch::tensor({-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0}, torch::kFloat64).requires_grad_();
}

TEST(Quantizers, SignForwardAndSteGradient) {
  torch::Tensor x = Probe();
  torch::Tensor y = SignSte(x);
  EXPECT_EQ(Vals(y), (std::vector<double>{-1, -1, -1, 1, 1, 1, 1}));  // Sign(0) = +1
  y.sum().backward();
  EXPECT_EQ(Vals(x.grad()), (std::vector<double>{0, 1, 1, 1, 1, 1, 0}));
}

TEST(Quantizers, SSignScalesValueAndGradient) {
  torch::Tensor x = Probe();
  torch::Tensor y = SSign(x, 0.5);
  EXPECT_EQ(Vals(y), (std::vector<double>{-0.5, -0.5, -0.5, 0.5, 0.5, 0.5, 0.5}));
  y.sum().backward();
  EXPECT_EQ(Vals(x.grad()), (std::vector<double>{0, 0.5, 0.5, 0.5, 0.5, 0.5, 0}));
}

TEST(Quantizers, HeavisideForwardAndSteGradient) {
  torch::Tensor x = Probe();
  torch::Tensor y = HeavisideSte(x);
  EXPECT_EQ(Vals(y), (std::vector<double>{0, 0, 0, 0, 1, 1, 1}));  // H(0) = 0
  y.sum().backward();
  EXPECT_EQ(Vals(x.grad()), (std::vector<double>{0, 1, 1, 1, 1, 1, 0}));
}

TEST(Quantizers, ClipForwardAndIdentityGradient) {
  torch::Tensor x = Probe();
  torch::Tensor y = ClipSte(x * 1.5);
  EXPECT_EQ(Vals(y), (std::vector<double>{-1, -1, -0.75, 0, 0.75, 1, 1}));
  y.sum().backward();
  EXPECT_EQ(Vals(x.grad()), std::vector<double>(7, 1.5));
}

TEST(Quantizers, TernaryThresholdZerosAndGradient) {
  // mean|w| = 2.2 / 5 = 0.44, threshold 0.308.
  torch::Tensor w = torch::tensor({0.1, -0.3, 1.0, -0.75, 0.05}, torch::kFloat64).requires_grad_();
  EXPECT_EQ(Vals(TernValues(w)), (std::vector<double>{0, 0, 1, -1, 0}));
  torch::Tensor y = STern(w, 0.25);
  EXPECT_EQ(Vals(y), (std::vector<double>{0, 0, 0.25, -0.25, 0}));
  y.sum().backward();
  EXPECT_EQ(Vals(w.grad()), std::vector<double>(5, 0.25));
  torch::Tensor big = torch::tensor({3.0, -3.0, 0.0}, torch::kFloat64).requires_grad_();
  STern(big, 1.0).sum().backward();
  EXPECT_EQ(Vals(big.grad()), (std::vector<double>{0, 0, 1}));
  EXPECT_EQ(Vals(TernValues(torch::zeros({3}, torch::kFloat64))), std::vector<double>(3, 0));
}

TEST(Quantizers, BsnShiftFromBatchNorm) {
  EXPECT_EQ(BsnShift(1.0), 0);
  EXPECT_EQ(BsnShift(0.3), -2);  // log2 0.3 = -1.74
  EXPECT_EQ(BsnShift(-5.0), 2);  // the sign is dropped: log2 5 = 2.32
  EXPECT_EQ(BsnShift(3.0), 2);   // 1.58
  EXPECT_EQ(BsnShift(0.0), -64);
  EXPECT_EQ(BsnShift(1e30), 64);
  EXPECT_EQ(Vals(BsnScale(torch::tensor({0.3, -5.0, 1.0}, torch::kFloat64))),
            (std::vector<double>{0.25, 4.0, 1.0}));

  torch::nn::BatchNorm3d bn(3);
  {
    torch::NoGradGuard ng;
    bn->weight.copy_(torch::tensor({2.0, -1.0, 0.5}));
    bn->bias.copy_(torch::tensor({0.1, 0.2, 0.3}));
    bn->running_mean.copy_(torch::tensor({1.0, 2.0, 3.0}));
    bn->running_var.copy_(torch::tensor({4.0, 0.01, 1.0}));
  }
  const FoldedNorm f = FoldBatchNorm(bn);
  // scale = gamma / sqrt(var + 1e-5): 1.0, -9.995, 0.5
  EXPECT_NEAR(f.scale[0], 2.0 / std::sqrt(4.0 + 1e-5), 1e-12);
  EXPECT_NEAR(f.offset[0], double(0.1f) - 1.0 * f.scale[0], 1e-12);  // params are float32
  EXPECT_EQ(BsnShift(f.scale[0]), 0);
  EXPECT_EQ(BsnShift(f.scale[1]), 3);  // log2 9.995 = 3.32
  EXPECT_EQ(BsnShift(f.scale[2]), -1);
}

TopologyConfig Tiny() { return billnet::testing::TinyTopology(); }

// A random model with non-trivial BN statistics, in double, eval mode.
BillnetModel RandomModel(uint64_t seed) {
  torch::manual_seed(seed);
  auto plan = BuildPlan(Tiny());
  EXPECT_TRUE(plan.ok());
  BillnetModel m(*plan);
  {
    torch::NoGradGuard ng;
    for (auto& [name, bn] : m->norms()) {
      const int64_t c = bn->weight.size(0);
      bn->weight.copy_(torch::randn({c}));  // negative gammas too: polarity -1
      bn->bias.copy_(torch::randn({c}) * 0.5);
      bn->running_mean.copy_(torch::randn({c}) * 0.5);
      bn->running_var.copy_(torch::rand({c}) * 1.5 + 0.5);
    }
  }
  m->to(torch::kFloat64);
  m->eval();
  return m;
}

torch::Tensor RandomVideo(int64_t batch) {
  const TopologyConfig c = Tiny();
  return torch::randint(0, 256, {batch, c.frames, c.height, c.width, 3}, torch::kUInt8);
}

struct Compared {
  int integer_mismatches = 0;
  double worst_relative = 0;
};

// Runs `windows` consecutive windows through torch (state chained) and the
// engine session, comparing the responses.
void CheckStage(Stage stage, uint64_t seed, int* varied, int* varied_total) {
  SCOPED_TRACE(std::string(StageName(stage)) + " seed " + std::to_string(seed));
  BillnetModel m = RandomModel(seed);
  m->set_stage(stage);
  auto model = ExportStage(*m, stage, ModelInfo{});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Session session(*model);
  torch::Tensor h, c;
  const int u = Tiny().lstm_units;
  for (int window = 0; window < 2; ++window) {
    torch::Tensor video = RandomVideo(1);
    ForwardResult fr;
    {
      torch::NoGradGuard ng;
      fr = m->forward(video, h, c);
    }
    h = fr.h;
    c = fr.c;
    Response r;
    std::vector<TracedTensor> trace;
    ASSERT_TRUE(session.Run(video.data_ptr<uint8_t>(), size_t(video.numel()), &r, &trace).ok());
    // The comparison is not vacuous: every norm's output is neither all 0 nor constant.
    for (const TracedTensor& tt : trace) {
      if (tt.name.size() < 5 || tt.name.substr(tt.name.size() - 5) != ".norm") continue;
      double lo = 1e300, hi = -1e300;
      for (int64_t v : tt.ints) lo = std::min(lo, double(v)), hi = std::max(hi, double(v));
      for (double v : tt.floats) lo = std::min(lo, v), hi = std::max(hi, v);
      ++*varied_total;
      if (hi > lo) ++*varied;
    }
    const std::vector<double> t = Vals(fr.logits);
    ASSERT_EQ(t.size(), r.scores.size());
    if (stage == Stage::kS5) {
      ASSERT_TRUE(r.scores_are_integers);
      for (size_t i = 0; i < t.size(); ++i)
        EXPECT_EQ(std::lround(t[i] * std::sqrt(double(u))), r.integer_scores[i]) << "score " << i;
      const std::vector<double> th = Vals(fr.h), tc = Vals(fr.c);
      int nonzero = 0;
      for (int j = 0; j < u; ++j) nonzero += th[j] != 0;
      if (window == 1) {
        EXPECT_GT(nonzero, 0);
      }
      for (int j = 0; j < u; ++j) {
        EXPECT_EQ(th[j], session.h()[j]) << "h " << j;
        EXPECT_EQ(tc[j], session.c()[j]) << "c " << j;
      }
    } else {
      double mag = 0;
      for (float s : r.scores) mag = std::max(mag, std::fabs(double(s)));
      ASSERT_GT(mag, 0);
      double worst = 0;
      for (size_t i = 0; i < t.size(); ++i)
        worst = std::max(worst, std::fabs(t[i] - r.scores[i]) / mag);
      if (window == 1)
        std::printf("%s seed %d: worst |torch - engine| / max|score| = %.3g (max|score| %.3g)\n",
                    StageName(stage), int(seed), worst, mag);
      for (size_t i = 0; i < t.size(); ++i)
        EXPECT_NEAR(t[i], r.scores[i], 1e-4 * mag) << "window " << window << " score " << i;
      const std::vector<double> th = Vals(fr.h);
      for (int j = 0; j < u; ++j) EXPECT_NEAR(th[j], session.h()[j], 1e-4) << "h " << j;
    }
  }
}

void CheckStageSeeds(Stage stage) {
  int varied = 0, total = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed)
    CheckStage(stage, 100 * int(stage) + seed, &varied, &total);
  // Most norms' outputs vary over the window (a few may saturate at random).
  std::printf("%s: %d of %d norm outputs vary over the window\n", StageName(stage), varied, total);
  EXPECT_GT(total, 0);
  EXPECT_GE(varied * 4, total * 3) << varied << " of " << total << " norm outputs vary";
}

TEST(Export, S1MatchesEngine) { CheckStageSeeds(Stage::kS1); }
TEST(Export, S2MatchesEngine) { CheckStageSeeds(Stage::kS2); }
TEST(Export, S3MatchesEngine) { CheckStageSeeds(Stage::kS3); }
TEST(Export, S4MatchesEngine) { CheckStageSeeds(Stage::kS4); }
TEST(Export, S5MatchesEngineBitForBit) { CheckStageSeeds(Stage::kS5); }

TEST(Export, S5FileRoundTripGivesTheSameResponse) {
  BillnetModel m = RandomModel(21);
  m->set_stage(Stage::kS5);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("trainer_test_" + std::to_string(::getpid()) + ".bnm"))
                               .string();
  ASSERT_TRUE(WriteStageFile(*m, Stage::kS5, ModelInfo{}, path).ok());
  auto loaded = Model::LoadFile(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto parts = ExportStage(*m, Stage::kS5, ModelInfo{});
  ASSERT_TRUE(parts.ok());
  torch::Tensor video = RandomVideo(1);
  Session a(*loaded), b(*parts);
  Response ra, rb;
  ASSERT_TRUE(a.Run(video.data_ptr<uint8_t>(), size_t(video.numel()), &ra).ok());
  ASSERT_TRUE(b.Run(video.data_ptr<uint8_t>(), size_t(video.numel()), &rb).ok());
  EXPECT_EQ(ra.integer_scores, rb.integer_scores);
  EXPECT_EQ((*loaded)->info().labels.size(), 5u);
}

TEST(Model, BatchCompositionDoesNotChangeResults) {
  // TGAP's m is per clip: a clip's logits do not depend on its batch mates.
  BillnetModel m = RandomModel(31);
  torch::Tensor video = RandomVideo(2);
  torch::NoGradGuard ng;
  for (Stage s : {Stage::kS1, Stage::kS3}) {
    m->set_stage(s);
    torch::Tensor both = m->forward(video).logits;
    torch::Tensor one = m->forward(video.narrow(0, 1, 1)).logits;
    EXPECT_TRUE(torch::allclose(both.narrow(0, 1, 1), one, 1e-9, 1e-12)) << StageName(s);
  }
}

// S4's offset anneal (TrainConfig::bsn_anneal_epochs): at lambda 1 a
// training-mode S4 forward computes the S3 model's function (same thresholds,
// positive gammas), at lambda 0 plain BSN; eval mode ignores lambda.
TEST(Model, BsnAnnealStartsAtTheS3FunctionAndEndsAtBsn) {
  BillnetModel m = RandomModel(51);
  {
    torch::NoGradGuard ng;
    for (auto& [name, bn] : m->norms()) bn->weight.abs_().add_(0.1);
  }
  torch::Tensor video = RandomVideo(2);
  torch::NoGradGuard ng;
  m->set_stage(Stage::kS3);
  const torch::Tensor s3 = m->forward(video).logits;
  m->set_stage(Stage::kS4);
  const torch::Tensor s4_eval = m->forward(video).logits;
  ASSERT_FALSE(torch::allclose(s3, s4_eval, 1e-6, 1e-9)) << "S3 and S4 should differ here";
  m->set_bsn_anneal(1.0);
  EXPECT_TRUE(torch::allclose(m->forward(video).logits, s4_eval, 0, 0)) << "eval ignores lambda";
  std::vector<torch::Tensor> saved_var;  // training-mode forwards update them
  for (auto& [name, bn] : m->norms()) saved_var.push_back(bn->running_var.clone());
  m->train();
  EXPECT_TRUE(torch::allclose(m->forward(video).logits, s3, 1e-9, 1e-12));
  size_t i = 0;
  for (auto& [name, bn] : m->norms()) bn->running_var.copy_(saved_var[i++]);
  m->set_bsn_anneal(0.0);
  EXPECT_TRUE(torch::allclose(m->forward(video).logits, s4_eval, 1e-9, 1e-12));
}

// The S3 threshold pull (TrainConfig::s3_threshold_pull): 0 exactly when
// every S3 boundary lies at x = 0 (beta = gamma mu / sigma), the mean squared
// distance otherwise, and gradient steps on it remove the distance.
TEST(Model, ThresholdGapPenaltyMeasuresTheDistanceToBsnAndPullsTowardIt) {
  BillnetModel m = RandomModel(61);
  {
    torch::NoGradGuard ng;
    for (auto& [name, bn] : m->norms()) bn->weight.abs_().add_(0.2);
  }
  const double before = ThresholdGapPenalty(*m).item<double>();
  EXPECT_GT(before, 0.01);
  torch::optim::Adam adam(m->parameters(), torch::optim::AdamOptions(0.01));
  for (int i = 0; i < 1000; ++i) {
    adam.zero_grad();
    ThresholdGapPenalty(*m).backward();
    adam.step();
  }
  EXPECT_LT(ThresholdGapPenalty(*m).item<double>(), 1e-3 * before);
  {
    torch::NoGradGuard ng;  // every boundary at x = 0: exactly 0
    for (auto& [name, bn] : m->norms())
      bn->bias.copy_(bn->weight * bn->running_mean / torch::sqrt(bn->running_var + 1e-5));
  }
  EXPECT_LT(ThresholdGapPenalty(*m).item<double>(), 1e-20);
}

// bsn_scale "rms" changes which values the straight-through window passes,
// never the forward: same S4 logits in training mode, and gradient still
// reaches the first layer.
TEST(Model, BsnRmsScaleKeepsTheForward) {
  BillnetModel m = RandomModel(71);
  m->set_stage(Stage::kS4);
  m->train();
  torch::Tensor video = RandomVideo(2);
  auto run = [&](bool rms, torch::Tensor* grad_norm) {
    m->set_bsn_rms(rms);
    m->zero_grad();
    ForwardResult fr = m->forward(video);
    fr.logits.sum().backward();
    *grad_norm = m->conv("stem.conv")->weight.grad().abs().sum().detach().clone();
    return fr.logits.detach().clone();
  };
  torch::Tensor g_std, g_rms;
  const torch::Tensor std_logits = run(false, &g_std);
  const torch::Tensor rms_logits = run(true, &g_rms);
  EXPECT_TRUE(torch::equal(std_logits, rms_logits));
  EXPECT_GT(g_rms.item<double>(), 0.0);
  EXPECT_TRUE(std::isfinite(g_rms.item<double>()));
}

TEST(Model, EveryStageTrainsWithFiniteGradients) {
  BillnetModel m = RandomModel(41);
  m->train();
  torch::Tensor video = RandomVideo(2);
  for (Stage s : {Stage::kS1, Stage::kS2, Stage::kS3, Stage::kS4, Stage::kS5}) {
    m->set_stage(s);
    m->zero_grad();
    ForwardResult fr = m->forward(video);
    EXPECT_EQ(fr.logits.sizes(), (std::vector<int64_t>{2, 4, 5})) << StageName(s);
    torch::Tensor target = torch::zeros({2 * 4}, torch::kLong);
    torch::Tensor loss = torch::nn::functional::cross_entropy(fr.logits.reshape({8, 5}), target);
    loss.backward();
    ASSERT_TRUE(m->dense.grad().defined());
    EXPECT_TRUE(torch::isfinite(m->dense.grad()).all().item<bool>()) << StageName(s);
    EXPECT_TRUE(torch::isfinite(m->conv("stem.conv")->weight.grad()).all().item<bool>())
        << StageName(s);
  }
}

}  // namespace
}  // namespace billnet::trainer
