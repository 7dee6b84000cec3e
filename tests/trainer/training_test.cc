// The trainer's data path, configuration, training loop (overfit, later
// stages, resume after a kill), temperature calibration, import/export and
// verification, on tiny models and clips.
#include "billnet/trainer/training.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "billnet/model.h"
#include "billnet/session.h"
#include "billnet/trainer/billnet_model.h"
#include "billnet/trainer/data.h"
#include "billnet/trainer/evaluate.h"
#include "test_util.h"

namespace billnet::trainer {
namespace {

namespace fs = std::filesystem;

fs::path TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() /
               ("billnet_training_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// ---- Preprocessing -----------------------------------------------------------------

TEST(Data, CropKeepsTheCentreAndAreaScaleAverages) {
  // 176 x 100 with 21-pixel red side bands around a blue centre: the 4:3
  // centre crop (133 x 100, from x = 21) leaves only blue.
  const int w = 176, h = 100;
  std::vector<uint8_t> src(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &src[(size_t(y) * w + x) * 3];
      const bool side = x < 21 || x >= 21 + 133;
      p[0] = side ? 255 : 0;
      p[1] = 0;
      p[2] = side ? 0 : 200;
    }
  std::vector<uint8_t> dst(128 * 96 * 3);
  CropAndAreaScale(src.data(), w, h, dst.data(), 128, 96);
  for (size_t i = 0; i < dst.size(); i += 3) {
    ASSERT_EQ(dst[i], 0) << "pixel " << i / 3;
    ASSERT_EQ(dst[i + 2], 200) << "pixel " << i / 3;
  }
  // 2 x 2 -> 1 x 1 is the mean of the four pixels, rounded.
  const uint8_t quad[12] = {0, 10, 255, 100, 11, 255, 50, 12, 0, 51, 13, 0};
  uint8_t one[3];
  CropAndAreaScale(quad, 2, 2, one, 1, 1);
  EXPECT_EQ(one[0], 50);   // (0 + 100 + 50 + 51) / 4 = 50.25
  EXPECT_EQ(one[1], 12);   // 11.5 rounds to nearest, half away from zero
  EXPECT_EQ(one[2], 128);  // 127.5
}

TEST(Data, ResampleTakesTheNearestFrameTiesToTheEarlier) {
  std::vector<double> ts;
  for (int f = 0; f < 12; ++f) ts.push_back(f / 12.0);
  EXPECT_EQ(ResampleIndices(ts, 6), (std::vector<int>{0, 2, 4, 6, 8, 10}));
  // Ticks at 0, 0.5, 1.0 between frames at 0 and 1: the tie goes to frame 0.
  EXPECT_EQ(ResampleIndices({0.0, 1.0}, 2), (std::vector<int>{0, 0, 1}));
  // Jittered 30 fps -> 6 fps picks the nearest frame to every 1/6 s.
  std::vector<double> j = {0.0, 0.034, 0.066, 0.1, 0.135, 0.166, 0.2, 0.232, 0.268, 0.3, 0.334};
  EXPECT_EQ(ResampleIndices(j, 6), (std::vector<int>{0, 5, 10}));
  // A gap repeats the frame before it while it is the nearest.
  EXPECT_EQ(ResampleIndices({0.0, 1.0 / 6, 1.0}, 6), (std::vector<int>{0, 1, 1, 1, 2, 2, 2}));
  EXPECT_TRUE(ResampleIndices({}, 6).empty());
}

Clip Ramp(int frames, int h = 4, int w = 4) {
  Clip c;
  c.frames = frames;
  c.height = h;
  c.width = w;
  c.label = 3;
  for (int f = 0; f < frames; ++f) c.rgb.insert(c.rgb.end(), size_t(h) * w * 3, uint8_t(f));
  return c;
}

TEST(Data, WindowsRepeatTheLastFrameAndCountRealFrames) {
  const Clip c = Ramp(10);
  Window w = CutWindow(c, 4, 8, 4, 25, 0);
  EXPECT_EQ(w.real_frames, 6);
  for (int f = 0; f < 8; ++f) EXPECT_EQ(w.rgb[size_t(f) * 48], std::min(4 + f, 9)) << f;
  EXPECT_EQ(w.step_labels, (std::vector<int>{3, 3, 3, 3}));
  Window capped = CutWindow(c, 0, 8, 4, 25, 0, /*real_limit=*/5);
  EXPECT_EQ(capped.real_frames, 5);
  EXPECT_EQ(capped.rgb[size_t(7) * 48], 4);
  EXPECT_EQ(CentreStart(c, 8), 1);
  EXPECT_EQ(CentreStart(Ramp(5), 8), 0);
}

TEST(Data, StreamStepsAreLabelledByTheGestureUnderWayOrJustEnded) {
  Clip s = Ramp(16);
  s.label = -1;
  s.frame_labels.assign(16, 25);
  for (int f = 4; f < 8; ++f) s.frame_labels[f] = 7;
  // Steps of 2 frames; step s ends at frame 2s+1.
  EXPECT_EQ(StepLabels(s, 0, 16, 8, 25, 0), (std::vector<int>{25, 25, 7, 7, 25, 25, 25, 25}));
  EXPECT_EQ(StepLabels(s, 0, 16, 8, 25, 3), (std::vector<int>{25, 25, 7, 7, 7, 25, 25, 25}));
}

TEST(Data, SynthDataIsDeterministicPerSeedAndAtTheModelGeometry) {
  SynthDataSpec spec;
  spec.seed = 5;
  spec.clips_per_class = 1;
  spec.labels = {0, 25};
  spec.streams = 1;
  spec.threads = 2;
  const ClipGeometry g{24, 32, 6};
  std::vector<Clip> a = MakeSynthData(spec, g), b = MakeSynthData(spec, g);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].label, 0);
  EXPECT_EQ(a[1].label, 25);
  EXPECT_EQ(a[2].label, -1);
  EXPECT_EQ(a[2].frame_labels.size(), size_t(a[2].frames));
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].rgb, b[i].rgb) << i;
    EXPECT_EQ(a[i].height, 24);
    EXPECT_EQ(a[i].width, 32);
    EXPECT_EQ(a[i].rgb.size(), a[i].frame_bytes() * a[i].frames);
  }
  // Jester-like 28-40 frames at 12 fps become 14-20 at 6 fps.
  EXPECT_GE(a[0].frames, 14);
  EXPECT_LE(a[0].frames, 20);
  spec.seed = 6;
  EXPECT_NE(MakeSynthData(spec, g)[0].rgb, a[0].rgb);
  spec.labels = {27};
  EXPECT_THROW(MakeSynthData(spec, g), std::invalid_argument);
}

// ---- Configuration ------------------------------------------------------------------

TEST(Config, JsonRoundTripAndErrorsNameTheKey) {
  TrainConfig c = TrainConfig::Default();
  c.stages[2].epochs = 7;
  c.train.synth.labels = {1, 2};
  TrainConfig back = TrainConfig::Default();
  ASSERT_TRUE(FromJson(ToJson(c), &back).ok());
  EXPECT_EQ(ToJson(back), ToJson(c));
  EXPECT_EQ(back.stages[0].learning_rate, 5e-4);  // the paper's S1 rate
  EXPECT_EQ(back.stages[4].learning_rate, 1e-6);

  nlohmann::json j = ToJson(c);
  j["bacth_size"] = 3;
  Status s = FromJson(j, &back);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bacth_size"), std::string::npos) << s.message();

  j = ToJson(c);
  j["stages"][1]["learning_rate"] = "fast";
  s = FromJson(j, &back);
  EXPECT_NE(s.message().find("stages[1].learning_rate"), std::string::npos) << s.message();

  j = ToJson(c);
  j["first_stage"] = 4;
  j["last_stage"] = 2;
  EXPECT_FALSE(FromJson(j, &back).ok());
  j = ToJson(c);
  j["topology"]["groups"] = 3;  // 8 channels do not split into 3 groups
  j["topology"]["base_channels"] = 8;
  EXPECT_FALSE(FromJson(j, &back).ok());
  EXPECT_EQ(LoadTrainConfig("/nonexistent/config.json", &back).code(), StatusCode::kNotFound);
  // The training knobs: default, a value read back, a bad value named.
  struct Knob {
    const char* key;
    nlohmann::json fallback, good, bad;
  };
  const Knob knobs[] = {
      {"import_latent_weight", 0.0, 0.05, -1},
      {"bsn_anneal_epochs", 0, 1, c.stages[3].epochs + 1},  // at most S4's epochs
      {"s3_threshold_pull", 0.0, 0.5, -1},
      {"bsn_scale", "std", "rms", "mad"},
      {"s3_norm_lr_scale", 1.0, 30.0, 0},
  };
  for (const Knob& k : knobs) {
    SCOPED_TRACE(k.key);
    EXPECT_EQ(ToJson(TrainConfig::Default())[k.key], k.fallback);
    j = ToJson(c);
    j[k.key] = k.good;
    ASSERT_TRUE(FromJson(j, &back).ok());
    EXPECT_EQ(ToJson(back)[k.key], k.good);
    j[k.key] = k.bad;
    s = FromJson(j, &back);
    EXPECT_NE(s.message().find(k.key), std::string::npos) << s.message();
  }
}

TEST(Config, CurriculumRampsTheSceneDifficultyOverStageOneOnly) {
  DataSource d;
  d.synth.difficulty = 0.2;
  EXPECT_DOUBLE_EQ(EpochDifficulty(d, 1, 0), 0.2);  // no curriculum: fixed
  EXPECT_DOUBLE_EQ(EpochDifficulty(d, 3, 9), 0.2);
  d.curriculum_epochs = 4;
  EXPECT_DOUBLE_EQ(EpochDifficulty(d, 1, 0), 0.2);
  EXPECT_DOUBLE_EQ(EpochDifficulty(d, 1, 2), 0.6);
  EXPECT_DOUBLE_EQ(EpochDifficulty(d, 1, 4), 1.0);
  EXPECT_DOUBLE_EQ(EpochDifficulty(d, 1, 40), 1.0);
  EXPECT_DOUBLE_EQ(EpochDifficulty(d, 2, 0), 1.0);

  TrainConfig c = TrainConfig::Default();
  nlohmann::json j = ToJson(c);
  j["train"]["difficulty"] = 1.5;
  Status s = FromJson(j, &c);
  EXPECT_NE(s.message().find("train.difficulty"), std::string::npos) << s.message();
  j["train"]["difficulty"] = 0.0;
  j["train"]["curriculum_epochs"] = -1;
  s = FromJson(j, &c);
  EXPECT_NE(s.message().find("curriculum_epochs"), std::string::npos) << s.message();
  j["train"]["curriculum_epochs"] = 6;
  ASSERT_TRUE(FromJson(j, &c).ok());
  EXPECT_EQ(c.train.curriculum_epochs, 6);
  EXPECT_EQ(c.train.synth.difficulty, 0.0);
  // A class curriculum comes first: its phases keep the epoch's clip count,
  // and the difficulty ramp starts after them.
  nlohmann::json phases = nlohmann::json::array();
  phases.push_back({{"epochs", 2}, {"labels", {0, 1, 2, 3}}});
  phases.push_back({{"epochs", 1}, {"labels", {0, 1, 2, 3, 4, 5, 6, 7, 8}}});
  j["train"]["class_curriculum"] = phases;
  j["train"]["clips_per_class"] = 4;
  ASSERT_TRUE(FromJson(j, &c).ok());
  ASSERT_EQ(c.train.class_curriculum.size(), 2u);
  TrainConfig back = TrainConfig::Default();
  ASSERT_TRUE(FromJson(ToJson(c), &back).ok());
  EXPECT_EQ(ToJson(back), ToJson(c));
  SynthDataSpec e0 = EpochSynthSpec(c.train, 1, 1), e2 = EpochSynthSpec(c.train, 1, 2),
                e3 = EpochSynthSpec(c.train, 1, 3);
  EXPECT_EQ(e0.labels, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(e0.clips_per_class, 27);  // 4 x 27 clips over 4 classes
  EXPECT_EQ(e2.labels.size(), 9u);
  EXPECT_EQ(e2.clips_per_class, 12);
  EXPECT_TRUE(e3.labels.empty());  // all classes
  EXPECT_EQ(e3.clips_per_class, 4);
  EXPECT_DOUBLE_EQ(e3.difficulty, 0.0);
  EXPECT_DOUBLE_EQ(EpochDifficulty(c.train, 1, 6), 0.5);  // 3 of 6 ramp epochs
  EXPECT_TRUE(EpochSynthSpec(c.train, 2, 0).labels.empty());
  j["train"]["class_curriculum"][1]["labels"] = {3, 27};
  s = FromJson(j, &c);
  EXPECT_NE(s.message().find("class_curriculum[1].labels"), std::string::npos) << s.message();
  j["train"]["class_curriculum"][1]["labels"] = {3};
  j["train"]["class_curriculum"][1]["epochs"] = 0;
  EXPECT_FALSE(FromJson(j, &c).ok());

  // The difficulty reaches the renderer: a plain scene differs from the full one.
  SynthDataSpec spec;
  spec.clips_per_class = 1;
  spec.labels = {3};
  spec.threads = 1;
  const ClipGeometry g{24, 32, 6};
  const std::vector<Clip> full = MakeSynthData(spec, g);
  spec.difficulty = 0;
  const std::vector<Clip> plain = MakeSynthData(spec, g);
  ASSERT_EQ(full.size(), 1u);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(full[0].frames, plain[0].frames);
  EXPECT_NE(full[0].rgb, plain[0].rgb);
}

TEST(Calibration, RecoversTheTemperatureOfSampledLabels) {
  // Labels drawn from softmax(z); scores = 3 z: the best T is about 3.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0, 2);
  const int k = 5, rows = 4000;
  std::vector<float> scores;
  std::vector<int> labels;
  for (int r = 0; r < rows; ++r) {
    std::vector<double> z(k), p(k);
    double sum = 0;
    for (int i = 0; i < k; ++i) sum += p[i] = std::exp(z[i] = normal(rng));
    std::discrete_distribution<int> pick(p.begin(), p.end());
    labels.push_back(pick(rng));
    for (int i = 0; i < k; ++i) scores.push_back(float(3 * z[i]));
  }
  const double t = CalibrateTemperature(scores, labels, k);
  EXPECT_NEAR(t, 3.0, 0.3);
  EXPECT_EQ(CalibrateTemperature({}, {}, k), 1.0);
}

// ---- Import / export -----------------------------------------------------------------

TEST(Import, ExportImportExportGivesTheSameFileWeights) {
  const TopologyPlan plan = *BuildPlan(testing::TinyTopology());
  for (Stage s : {Stage::kS1, Stage::kS2, Stage::kS3, Stage::kS4, Stage::kS5}) {
    torch::manual_seed(11);
    BillnetModel a(plan);
    // Non-trivial BN statistics.
    for (auto& [name, bn] : a->norms()) {
      bn->running_mean.uniform_(-3, 3);
      bn->running_var.uniform_(0.5, 4);
      bn->weight.data().uniform_(-2, 2);
      bn->bias.data().uniform_(-1, 1);
    }
    auto first = ExportStage(*a, s, ModelInfo{});
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    BillnetModel b(plan);
    ASSERT_TRUE(ImportWeights(*b, **first).ok());
    EXPECT_EQ(b->stage(), s);
    ModelWeights wa = ExportWeights(*a, s), wb = ExportWeights(*b, s);
    EXPECT_EQ(wa.conv, wb.conv) << StageName(s);
    for (auto& [name, p] : wa.norm) {
      const NormParams& q = wb.norm.at(name);
      EXPECT_EQ(p.threshold, q.threshold) << name << " " << StageName(s);
      EXPECT_EQ(p.polarity, q.polarity) << name << " " << StageName(s);
      EXPECT_EQ(p.shift, q.shift) << name << " " << StageName(s);
      for (size_t i = 0; i < p.scale.size(); ++i) {
        EXPECT_NEAR(p.scale[i], q.scale[i], 1e-5 * std::abs(p.scale[i]) + 1e-7) << name;
        EXPECT_NEAR(p.offset[i], q.offset[i], 1e-5 * std::abs(p.offset[i]) + 1e-7) << name;
      }
    }
    EXPECT_EQ(wa.lstm_ih, wb.lstm_ih);
    EXPECT_EQ(wa.dense, wb.dense);
  }
  // A file of another topology is refused.
  TopologyConfig other = testing::TinyTopology();
  other.lstm_units = 8;
  auto m = testing::RandomModel(Stage::kS3, 1, other);
  BillnetModel c(plan);
  EXPECT_FALSE(ImportWeights(*c, *m).ok());
}

// ---- Training -------------------------------------------------------------------------

// A tiny 27-class model on 48 x 64 clips: every block of BILLNET, quick to
// train, with a 3 x 4 GAP area (smaller ones leave binary stages too little).
// Imported norms hold in eval mode only; ReestimateNorms makes training mode
// (batch statistics) compute the file's function on the windows it saw,
// and leaves eval mode as it was. (S4/S5 norms are BSN: a positive scale
// before the Heaviside, whose output does not depend on it.)
TEST(Import, ReestimatedNormsMakeTrainingModeComputeTheFilesFunction) {
  const TopologyPlan plan = *BuildPlan(testing::TinyTopology());
  const TopologyConfig& tc = plan.config;
  torch::manual_seed(5);
  const torch::Tensor video =
      torch::randint(0, 256, {4, tc.frames, tc.height, tc.width, 3}, torch::kUInt8);
  torch::NoGradGuard ng;
  for (Stage s : {Stage::kS1, Stage::kS2, Stage::kS3}) {
    // A "trained" model: random affine, running statistics of the data.
    torch::manual_seed(12);
    BillnetModel a(plan);
    a->set_stage(s);
    for (auto& [name, bn] : a->norms()) {
      bn->weight.uniform_(0.5, 2);
      bn->bias.uniform_(-0.2, 0.2);
      torch::nn::BatchNorm3d m = bn;
      m->options.momentum(1.0);
    }
    a->train();
    a->forward(video);
    auto file = ExportStage(*a, s, ModelInfo{});
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    BillnetModel b(plan), c(plan);
    ASSERT_TRUE(ImportWeights(*b, **file).ok());
    ASSERT_TRUE(ImportWeights(*c, **file).ok());
    auto logits = [&](BillnetModel& m, bool training) {
      m->train(training);
      return m->forward(video).logits.to(torch::kFloat64);
    };
    const torch::Tensor want = logits(b, false);
    const double scale = want.abs().max().item<double>();
    ASSERT_GT(scale, 1e-3) << StageName(s);
    auto worst = [&](const torch::Tensor& got) {
      return (got - want).abs().max().item<double>() / scale;
    };
    EXPECT_GT(worst(logits(c, true)), 1e-2) << StageName(s);  // imported as is: differs
    ReestimateNorms(*b, [&] { b->forward(video); });
    EXPECT_LT(worst(logits(b, false)), 1e-4) << StageName(s);  // eval mode unchanged
    EXPECT_LT(worst(logits(b, true)), 1e-4) << StageName(s);   // training mode agrees
  }
}

// In S3-S5 a norm feeds a Heaviside: rescaling its channels to |gamma| = 1
// keeps every output (eval and training mode) and brings the pre-activations
// into the straight-through window |y| <= 1, which a norm in integer units
// (as imported from an S3 file) leaves nearly empty.
TEST(Import, NormalizedBinaryNormScalesKeepTheFunctionAndOpenTheSteWindow) {
  const TopologyPlan plan = *BuildPlan(testing::TinyTopology());
  const TopologyConfig& tc = plan.config;
  torch::manual_seed(5);
  const torch::Tensor video =
      torch::randint(0, 256, {4, tc.frames, tc.height, tc.width, 3}, torch::kUInt8);
  torch::NoGradGuard ng;
  for (Stage s : {Stage::kS3, Stage::kS4, Stage::kS5}) {
    torch::manual_seed(12);
    BillnetModel a(plan);
    a->set_stage(s);
    a->train();
    a->forward(video);  // running statistics of the data
    for (auto& [name, bn] : a->norms()) {
      bn->weight.uniform_(20, 60);  // integer units, as an S3 file's thresholds come back
      bn->bias.uniform_(-10, 10);
      torch::nn::BatchNorm3d m = bn;
      m->options.momentum(0.0);  // later training-mode passes keep the running statistics
    }
    const auto window_share = [&](BillnetModel& m) {
      // Share of the first norm's pre-activations inside |y| <= 1 in training
      // mode, from its input statistics and parameters (y = gamma x^ + beta).
      const auto& bn = m->norm("stem.norm");
      if (s == Stage::kS3) {
        torch::Tensor z = torch::randn({4096, 1});
        return ((z * bn->weight.view({1, -1}) + bn->bias.view({1, -1})).abs() <= 1)
            .to(torch::kFloat64).mean().item<double>();
      }
      return -1.0;
    };
    a->eval();
    const torch::Tensor eval_before = a->forward(video).logits;
    a->train();
    const torch::Tensor train_before = a->forward(video).logits;
    const double share_before = window_share(a);
    NormalizeBinaryNormScales(*a);
    for (auto& [name, bn] : a->norms())
      EXPECT_TRUE(torch::allclose(bn->weight.abs(), torch::ones_like(bn->weight)))
          << StageName(s) << " " << name;
    a->eval();
    EXPECT_TRUE(torch::equal(a->forward(video).logits, eval_before)) << StageName(s);
    a->train();
    EXPECT_TRUE(torch::equal(a->forward(video).logits, train_before)) << StageName(s);
    if (s == Stage::kS3) {
      EXPECT_LT(share_before, 0.1);
      EXPECT_GT(window_share(a), 0.1);
    }
  }
  // S1/S2: nothing changes.
  BillnetModel f(plan);
  f->set_stage(Stage::kS2);
  const torch::Tensor g = f->norm("stem.norm")->weight.clone();
  f->norm("stem.norm")->weight.mul_(7);
  NormalizeBinaryNormScales(*f);
  EXPECT_TRUE(torch::equal(f->norm("stem.norm")->weight, g * 7));
}

// From S2 on only the signs (and the dense weights' ternary pattern) of the
// latent weights count: shrinking them keeps every output exactly.
TEST(Import, ShrunkBinaryLatentWeightsKeepTheFunction) {
  const TopologyPlan plan = *BuildPlan(testing::TinyTopology());
  const TopologyConfig& tc = plan.config;
  torch::manual_seed(6);
  const torch::Tensor video =
      torch::randint(0, 256, {3, tc.frames, tc.height, tc.width, 3}, torch::kUInt8);
  torch::NoGradGuard ng;
  for (Stage s : {Stage::kS2, Stage::kS3, Stage::kS4, Stage::kS5}) {
    torch::manual_seed(13);
    BillnetModel a(plan);
    a->set_stage(s);
    a->eval();
    // Imported weights are exactly +-1 (0 for the dense ternary zeros).
    for (auto& [name, conv] : a->convs()) {
      torch::nn::Conv3d c = conv;
      c->weight.copy_(torch::where(c->weight >= 0, 1.0, -1.0));
    }
    a->dense.copy_(torch::round(a->dense.clamp(-1, 1) * 1.5).clamp(-1, 1));
    const torch::Tensor before = a->forward(video).logits;
    ShrinkBinaryLatentWeights(*a, 0.01);
    EXPECT_TRUE(torch::equal(a->forward(video).logits, before)) << StageName(s);
    EXPECT_NEAR(a->conv("stem.conv")->weight.abs().max().item<double>(), 0.01, 1e-9)
        << StageName(s);
  }
  BillnetModel f(plan);  // S1: float weights count as they are
  const torch::Tensor w = f->dense.clone();
  ShrinkBinaryLatentWeights(*f, 0.01);
  EXPECT_TRUE(torch::equal(f->dense, w));
}

TrainConfig TinyConfig(const fs::path& dir) {
  TrainConfig c = TrainConfig::Default();
  c.name = "tiny";
  c.topology = testing::TinyTopology();
  c.topology.classes = 27;
  c.topology.height = 48;
  c.topology.width = 64;
  c.repo = (dir / "repo").string();
  c.checkpoint_dir = (dir / "ckpt").string();
  c.train.synth.seed = 3;
  c.train.synth.clips_per_class = 2;
  c.train.synth.labels = {0, 1, 2, 3};
  c.train.synth.streams = 2;
  c.train.fresh_each_epoch = false;
  c.test = c.train;  // overfitting: test on the training clips
  c.test.synth.streams = 0;
  c.calibration = c.test;
  c.batch_size = 8;
  c.threads = 1;
  c.log_every = 0;
  c.write_curves = false;
  c.seed = 9;
  for (StageSchedule& s : c.stages) {
    s.learning_rate = 3e-3;
    s.epochs = 2;
    s.decay_epochs = 1;
    s.run_epochs = 1;
  }
  return c;
}

std::vector<torch::Tensor> Params(const std::string& checkpoint, const TrainConfig& c) {
  BillnetModel m(*BuildPlan(c.topology));
  torch::serialize::InputArchive a;
  a.load_from(checkpoint);
  m->load(a);
  std::vector<torch::Tensor> out;
  for (const auto& t : m->parameters()) out.push_back(t.detach().clone());
  for (const auto& t : m->buffers()) out.push_back(t.detach().clone());
  return out;
}

TEST(Training, TinyModelOverfitsInS1AndEveryLaterStageTrainsAndVerifies) {
  const fs::path dir = TempDir("overfit");
  TrainConfig c = TinyConfig(dir);
  // One step per epoch: BN's running statistics need some epochs to follow
  // the weights, so eval-mode accuracy lags the training steps.
  c.stages[0].epochs = 80;
  c.stages[0].decay_epochs = 10;
  for (int st = 1; st < 5; ++st) {
    c.stages[st].epochs = 30;
    c.stages[st].learning_rate = 1e-3;
  }
  c.train.synth.streams = 0;  // runs are covered by the resume test
  std::vector<EpochMetrics> epochs;
  TrainCallbacks cb;
  cb.on_epoch = [&](const EpochMetrics& m) { epochs.push_back(m); };
  Status s = Train(c, cb);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(epochs.size(), 80u + 4 * 30);
  // S1 learns the 8 clips.
  EXPECT_GE(epochs[79].test_top1, 0.99) << epochs[79].test_loss;
  EXPECT_LT(epochs[79].train_loss, epochs[0].train_loss * 0.5);
  for (const EpochMetrics& m : epochs) EXPECT_TRUE(std::isfinite(m.train_loss)) << m.stage;
  // S2 (binary weights) relearns them after the quantization shock.
  EXPECT_GE(epochs[80 + 29].test_top1, 0.5);
  // S3 and S4 (binary activations: little capacity at n = 8) still reduce
  // their loss after the shock of their quantization.
  for (int stage = 3; stage <= 4; ++stage) {
    const size_t first = 80 + (stage - 2) * 30;
    double tail = 0;
    for (size_t e = first + 25; e < first + 30; ++e) tail += epochs[e].train_loss / 5;
    EXPECT_LT(tail, epochs[first].train_loss - 0.05) << "S" << stage;
  }
  // Every exported file loads, carries its metadata, and the engine equals the
  // trainer on it (DESIGN.md 2.6).
  SynthDataSpec data = c.test.synth;
  std::vector<Clip> clips =
      MakeSynthData(data, ClipGeometry{c.topology.height, c.topology.width, 6});
  for (int stage = 1; stage <= 5; ++stage) {
    const fs::path file =
        fs::path(c.repo) / "tiny" / "1" / ("s" + std::to_string(stage) + ".safetensors");
    auto m = Model::LoadFile(file.string());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    const ModelInfo& info = (*m)->info();
    EXPECT_EQ(int(info.stage), stage);
    EXPECT_EQ(info.frame_rate, 6);
    EXPECT_GT(info.temperature, 0);
    EXPECT_EQ(info.labels.size(), 27u);
    auto prov = nlohmann::json::parse(info.provenance);
    EXPECT_EQ(prov["data"]["train"]["seed"], 3);
    EXPECT_TRUE(prov.contains("test_top1"));
    auto rep = VerifyModel(*m, clips);
    ASSERT_TRUE(rep.ok()) << rep.status().ToString();
    EXPECT_TRUE(rep->ok()) << "S" << stage << ": "
                           << (rep->messages.empty() ? "" : rep->messages[0]);
    EXPECT_EQ(rep->windows, int(clips.size()));
    if (stage == 5) {
      EXPECT_EQ(rep->identical_windows, rep->windows);
    }
    // The engine's accuracy on the exported file equals the trainer's.
    auto eval = EvaluateEngine(*m, clips, 2);
    ASSERT_TRUE(eval.ok()) << eval.status().ToString();
    EXPECT_EQ(eval->predicted.size(), clips.size());
    if (stage <= 2) {
      EXPECT_GE(eval->top1, 0.5) << "S" << stage;
    }
  }
  fs::remove_all(dir);
}

// The parameters in the checkpoints of two runs are equal.
void ExpectSameCheckpointWeights(const TrainConfig& a, const TrainConfig& b) {
  std::vector<torch::Tensor> pa =
      Params((fs::path(a.checkpoint_dir) / "checkpoint.pt").string(), a);
  std::vector<torch::Tensor> pb =
      Params((fs::path(b.checkpoint_dir) / "checkpoint.pt").string(), b);
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
}

TEST(Training, ResumeAfterAKillGivesTheSameWeightsAsAnUninterruptedRun) {
  const fs::path dir = TempDir("resume");
  // Fresh synthetic clips every epoch: the replayed epochs must render the same.
  TrainConfig a = TinyConfig(dir / "a");
  a.train.fresh_each_epoch = true;
  a.first_stage = 1;
  a.last_stage = 2;
  a.stages[0].epochs = 3;
  ASSERT_TRUE(Train(a).ok());

  TrainConfig b = TinyConfig(dir / "b");
  b.train.fresh_each_epoch = true;
  b.first_stage = 1;
  b.last_stage = 2;
  b.stages[0].epochs = 3;
  // Killed during S1's second epoch (after the first epoch's checkpoint) ...
  std::atomic<bool> cancel{false};
  TrainCallbacks cb;
  cb.on_epoch = [&](const EpochMetrics& m) {
    if (m.stage == 1 && m.epoch == 0) cancel = true;
  };
  cb.cancel = &cancel;
  Status s = Train(b, cb);
  EXPECT_EQ(s.code(), StatusCode::kCancelled) << s.ToString();
  EXPECT_FALSE(fs::exists(fs::path(b.repo) / "tiny" / "1" / "s1.safetensors"));
  // ... and run again: it continues, it does not restart.
  int epochs_run = 0;
  TrainCallbacks count;
  count.on_epoch = [&](const EpochMetrics&) { ++epochs_run; };
  ASSERT_TRUE(Train(b, count).ok());
  EXPECT_EQ(epochs_run, 2 + 2);  // S1 epochs 2-3, S2 epochs 1-2
  ExpectSameCheckpointWeights(a, b);
  // The stage files are the same bytes.
  for (const char* f : {"s1.safetensors", "s2.safetensors"}) {
    auto ma = Model::LoadFile((fs::path(a.repo) / "tiny" / "1" / f).string());
    auto mb = Model::LoadFile((fs::path(b.repo) / "tiny" / "1" / f).string());
    ASSERT_TRUE(ma.ok() && mb.ok());
    EXPECT_EQ((*ma)->info().checksum, (*mb)->info().checksum) << f;
  }
  // A finished version is not trained again.
  epochs_run = 0;
  ASSERT_TRUE(Train(b, count).ok());
  EXPECT_EQ(epochs_run, 0);
  fs::remove_all(dir);
}

// S3 with the threshold pull and the norms in their own Adam group
// (s3_norm_lr_scale): a killed run resumes to the same weights (both groups'
// state is checkpointed).
TEST(Training, S3WithItsOwnNormGroupResumesToTheSameWeights) {
  const fs::path dir = TempDir("resume_s3");
  auto config = [&](const char* name) {
    TrainConfig c = TinyConfig(dir / name);
    c.first_stage = 1;
    c.last_stage = 3;
    c.stages[0].epochs = 1;
    c.stages[1].epochs = 1;
    c.stages[2].epochs = 2;
    c.s3_threshold_pull = 1.0;
    c.s3_norm_lr_scale = 10;
    return c;
  };
  TrainConfig a = config("a");
  Status sa = Train(a);
  ASSERT_TRUE(sa.ok()) << sa.ToString();
  TrainConfig b = config("b");
  std::atomic<bool> cancel{false};
  TrainCallbacks cb;
  cb.on_epoch = [&](const EpochMetrics& m) {
    if (m.stage == 3 && m.epoch == 0) cancel = true;
  };
  cb.cancel = &cancel;
  EXPECT_EQ(Train(b, cb).code(), StatusCode::kCancelled);
  ASSERT_TRUE(Train(b).ok());
  ExpectSameCheckpointWeights(a, b);
  fs::remove_all(dir);
}

TEST(Training, ANewMachineContinuesFromTheCommittedStageFiles) {
  const fs::path dir = TempDir("stagefiles");
  TrainConfig c = TinyConfig(dir);
  c.last_stage = 2;
  ASSERT_TRUE(Train(c).ok());
  // Lose the checkpoints (a fresh clone has only the stage files) and ask for S3.
  fs::remove_all(c.checkpoint_dir);
  c.last_stage = 3;
  std::vector<int> stages;
  TrainCallbacks cb;
  cb.on_epoch = [&](const EpochMetrics& m) { stages.push_back(m.stage); };
  ASSERT_TRUE(Train(c, cb).ok());
  EXPECT_EQ(stages, (std::vector<int>{3, 3}));
  EXPECT_TRUE(fs::exists(fs::path(c.repo) / "tiny" / "1" / "s3.safetensors"));
  // A checkpoint of another model in the folder is refused with a clear error.
  TrainConfig other = c;
  other.name = "other";
  Status s = Train(other);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("another model"), std::string::npos) << s.message();
  fs::remove_all(dir);
}

TEST(Training, InitFromStartsANewVersionFromAnotherVersionsWeights) {
  const fs::path dir = TempDir("initfrom");
  TrainConfig a = TinyConfig(dir);
  a.last_stage = 1;
  ASSERT_TRUE(Train(a).ok());
  const fs::path a_s1 = fs::path(a.repo) / "tiny" / "1" / "s1.safetensors";
  // Version 2 with S1 at 0 epochs exports its starting weights as they are.
  TrainConfig b = a;
  b.version = "2";
  b.checkpoint_dir = (dir / "ckpt2").string();
  b.stages[0].epochs = 0;
  auto weights = [](const fs::path& file) {
    auto m = Model::LoadFile(file.string());
    EXPECT_TRUE(m.ok()) << m.status().message();
    return (*m)->weights().conv;
  };
  ASSERT_TRUE(Train(b).ok());
  const fs::path b_s1 = fs::path(b.repo) / "tiny" / "2" / "s1.safetensors";
  EXPECT_NE(weights(b_s1), weights(a_s1));  // the seed's random start
  fs::remove_all(b.checkpoint_dir);
  fs::remove_all(b_s1.parent_path());
  b.init_from = a_s1.string();
  ASSERT_TRUE(Train(b).ok());
  EXPECT_EQ(weights(b_s1), weights(a_s1));
  auto m = Model::LoadFile(b_s1.string());
  ASSERT_TRUE(m.ok());
  EXPECT_NE((*m)->info().provenance.find(a_s1.string()), std::string::npos);

  // Errors name the file: missing, a later stage than the one it starts, another topology.
  fs::remove_all(b.checkpoint_dir);
  fs::remove_all(b_s1.parent_path());
  b.init_from = (dir / "missing.safetensors").string();
  Status s = Train(b);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("missing.safetensors"), std::string::npos) << s.message();
  TrainConfig c = a;
  c.version = "3";
  c.checkpoint_dir = (dir / "ckpt3").string();
  c.first_stage = c.last_stage = 2;
  c.stages[1].epochs = 0;
  c.init_from = a_s1.string();
  ASSERT_TRUE(Train(c).ok());  // S1 weights start S2
  const fs::path c_s2 = fs::path(c.repo) / "tiny" / "3" / "s2.safetensors";
  b.init_from = c_s2.string();
  s = Train(b);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("s2.safetensors"), std::string::npos) << s.message();
  b.init_from = a_s1.string();
  b.topology.lstm_units += 8;
  s = Train(b);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("topology"), std::string::npos) << s.message();
  fs::remove_all(dir);
}

TEST(Training, BadDataIsAClearError) {
  const fs::path dir = TempDir("bad");
  TrainConfig c = TinyConfig(dir);
  c.topology.classes = 3;  // the data has labels 0..3
  Status s = Train(c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("label 3"), std::string::npos) << s.message();
  c = TinyConfig(dir);
  c.train.kind = "jester";
  c.train.dir = (dir / "missing").string();
  EXPECT_FALSE(Train(c).ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace billnet::trainer
