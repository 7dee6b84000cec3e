// "The integer S3-S5 path equals a float evaluation of the same quantized
// model" (DESIGN.md 2.6), and the S1/S2 float path equals a double one.
//
// This file holds its own naive double-precision evaluation of a whole model,
// written from the training-graph formulas and the model's LOGICAL weights
// (Model::weights(): convolutions [co][ci/g][kt][kh][kw]), in a channel-first
// C x T x H x W layout, sharing no code with the engine's kernels or runner:
//   input v = 2x - 255 (S3-S5) or v / 255 (S1-S2), zero padding;
//   stem conv -> max-pool 1x2x2 -> norm + activation;
//   CF = pw1 -> grouped 3x3x3 (pad 1) -> pw2, no nonlinearity inside;
//   norm + activation: S1/S2 max(0, scale x + offset); S3 the folded
//   threshold with its polarity on the integer-valued sums; S4/S5 H(x) = x > 0;
//   MOR: a = act(CF(x)), I1 = act(CF(a)), S = TGAP(x) (S3+: 2 count > h w;
//   S1/S2: AP > m / 2, m = max AP over (t, c)), out = S ? I1 : Clip(x + I1);
//   GAP = count / area (mean in S1/S2);
//   LSTM: S1-S4 sigmoid/tanh (S2-S4 weights 3/sqrt(ni+no) Sign(w), dense
//   Tern(w)/sqrt(U)); S5 QLSTM with exact integer pre-activations
//   sum(w count) + area sum(w h) (the float pre-activation times area/scale > 0).
// Every traced engine tensor is compared with the evaluation's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "billnet/session.h"
#include "test_util.h"

namespace billnet {
namespace {

using testing::RandomModel;
using testing::RandomWindow;

// A C x T x H x W volume of doubles.
struct Vol {
  int c = 0, t = 0, h = 0, w = 0;
  std::vector<double> v;
  Vol() = default;
  Vol(int c_, int t_, int h_, int w_) : c(c_), t(t_), h(h_), w(w_), v(size_t(c_) * t_ * h_ * w_, 0.0) {}
  double& at(int ch, int tt, int y, int x) { return v[((size_t(ch) * t + tt) * h + y) * w + x]; }
  double at(int ch, int tt, int y, int x) const {
    return v[((size_t(ch) * t + tt) * h + y) * w + x];
  }
};

// Direct convolution from the logical weight tensor [co][ci/g][kt][kh][kw].
Vol NaiveConv(const Vol& in, const std::vector<float>& wt, const ConvSpec& s) {
  EXPECT_EQ(in.c, s.ci) << s.name;
  const int ot = (in.t + 2 * s.pt - s.kt) / s.st + 1;
  const int oh = (in.h + 2 * s.ph - s.kh) / s.sh + 1;
  const int ow = (in.w + 2 * s.pw - s.kw) / s.sw + 1;
  const int cig = s.ci / s.groups, cog = s.co / s.groups;
  EXPECT_EQ(int64_t(wt.size()), int64_t(s.co) * cig * s.kt * s.kh * s.kw) << s.name;
  Vol out(s.co, ot, oh, ow);
  for (int o = 0; o < s.co; ++o) {
    const int first_in = (o / cog) * cig;
    for (int t = 0; t < ot; ++t)
      for (int y = 0; y < oh; ++y)
        for (int x = 0; x < ow; ++x) {
          double acc = 0;
          for (int i = 0; i < cig; ++i)
            for (int a = 0; a < s.kt; ++a)
              for (int b = 0; b < s.kh; ++b)
                for (int d = 0; d < s.kw; ++d) {
                  const int it = t * s.st - s.pt + a, iy = y * s.sh - s.ph + b,
                            ix = x * s.sw - s.pw + d;
                  if (it < 0 || it >= in.t || iy < 0 || iy >= in.h || ix < 0 || ix >= in.w)
                    continue;
                  const double wv =
                      wt[(((size_t(o) * cig + i) * s.kt + a) * s.kh + b) * s.kw + d];
                  acc += wv * in.at(first_in + i, it, iy, ix);
                }
          out.at(o, t, y, x) = acc;
        }
  }
  return out;
}

Vol NaivePool(const Vol& in) {
  Vol out(in.c, in.t, in.h / 2, in.w / 2);
  for (int c = 0; c < in.c; ++c)
    for (int t = 0; t < in.t; ++t)
      for (int y = 0; y < out.h; ++y)
        for (int x = 0; x < out.w; ++x)
          out.at(c, t, y, x) = std::max({in.at(c, t, 2 * y, 2 * x), in.at(c, t, 2 * y, 2 * x + 1),
                                         in.at(c, t, 2 * y + 1, 2 * x),
                                         in.at(c, t, 2 * y + 1, 2 * x + 1)});
  return out;
}

struct Evaluation {
  std::map<std::string, Vol> tensors;  // by trace name
  double min_tgap_margin = 1e300;      // S1/S2: min |AP - m/2| / m over decisions
  std::vector<double> lstm_x;          // steps x ni (LSTM inputs)
};

class NaiveModel {
 public:
  explicit NaiveModel(const Model& m) : m_(m), plan_(m.plan()), stage_(m.stage()) {
    const int u = plan_.config.lstm_units;
    h_.assign(u, 0.0);
    c_.assign(u, 0.0);
  }

  void SetState(const std::vector<float>& h, const std::vector<float>& c) {
    h_.assign(h.begin(), h.end());
    c_.assign(c.begin(), c.end());
  }
  const std::vector<double>& h() const { return h_; }

  Evaluation Run(const std::vector<uint8_t>& rgb) {
    Evaluation ev;
    const TopologyConfig& cfg = plan_.config;
    const bool quant_act = stage_ >= Stage::kS3;
    Vol x(3, cfg.frames, cfg.height, cfg.width);
    for (int t = 0; t < cfg.frames; ++t)
      for (int y = 0; y < cfg.height; ++y)
        for (int xx = 0; xx < cfg.width; ++xx)
          for (int c = 0; c < 3; ++c) {
            const int v = 2 * int(rgb[((size_t(t) * cfg.height + y) * cfg.width + xx) * 3 + c]) - 255;
            x.at(c, t, y, xx) = quant_act ? double(v) : double(v) / 255.0;
          }
    if (quant_act) ev.tensors["input"] = x;
    const ModelWeights& w = m_.weights();
    auto conv = [&](const ConvSpec& s, const Vol& in) {
      Vol out = NaiveConv(in, w.conv.at(s.name), s);
      ev.tensors[s.name] = out;
      return out;
    };
    auto cf = [&](const ConvSpec* s, const Vol& in) {
      return conv(s[2], conv(s[1], conv(s[0], in)));
    };
    auto norm = [&](const NormSpec& n, const Vol& in) {
      Vol out = Act(w.norm.at(n.name), in);
      ev.tensors[n.name] = out;
      return out;
    };
    for (const BlockSpec& b : plan_.blocks) {
      switch (b.kind) {
        case BlockKind::kStem:
        case BlockKind::kCf: {
          Vol y = b.kind == BlockKind::kStem ? conv(b.convs[0], x) : cf(&b.convs[0], x);
          if (b.pool) {
            y = NaivePool(y);
            ev.tensors[b.name + ".pool"] = y;
          }
          x = norm(b.norms[0], y);
          break;
        }
        case BlockKind::kMor: {
          const Vol a = norm(b.norms[0], cf(&b.convs[0], x));
          const Vol i1 = norm(b.norms[1], cf(&b.convs[3], a));
          Vol sel(x.c, x.t, 1, 1);
          const double area = double(x.h) * x.w;
          std::vector<double> ap(size_t(x.c) * x.t);
          double m = 0;
          for (int c = 0; c < x.c; ++c)
            for (int t = 0; t < x.t; ++t) {
              double sum = 0;
              for (int y = 0; y < x.h; ++y)
                for (int xx = 0; xx < x.w; ++xx) sum += x.at(c, t, y, xx);
              ap[size_t(c) * x.t + t] = quant_act ? sum : sum / area;  // count or mean
              m = std::max(m, ap[size_t(c) * x.t + t]);
            }
          for (int c = 0; c < x.c; ++c)
            for (int t = 0; t < x.t; ++t) {
              const double v = ap[size_t(c) * x.t + t];
              if (quant_act) {
                sel.at(c, t, 0, 0) = 2 * v > area;  // T(AP) = AP > 0.5 with m = 1
              } else {
                sel.at(c, t, 0, 0) = v > 0.5 * m;
                ev.min_tgap_margin = std::min(
                    ev.min_tgap_margin, m > 0 ? std::fabs(v - 0.5 * m) / m : 0.0);
              }
            }
          ev.tensors[b.name + ".select"] = sel;
          Vol out(x.c, x.t, x.h, x.w);
          for (int c = 0; c < x.c; ++c)
            for (int t = 0; t < x.t; ++t)
              for (int y = 0; y < x.h; ++y)
                for (int xx = 0; xx < x.w; ++xx)
                  out.at(c, t, y, xx) =
                      sel.at(c, t, 0, 0) != 0
                          ? i1.at(c, t, y, xx)
                          : std::clamp(x.at(c, t, y, xx) + i1.at(c, t, y, xx), -1.0, 1.0);
          ev.tensors[b.name] = out;
          x = out;
          break;
        }
        case BlockKind::kGap: {
          Vol g(x.c, x.t, 1, 1);
          const double area = double(x.h) * x.w;
          EXPECT_EQ(area, plan_.gap_area);
          ev.lstm_x.assign(size_t(x.t) * x.c, 0.0);
          for (int c = 0; c < x.c; ++c)
            for (int t = 0; t < x.t; ++t) {
              double sum = 0;
              for (int y = 0; y < x.h; ++y)
                for (int xx = 0; xx < x.w; ++xx) sum += x.at(c, t, y, xx);
              // The trace holds bit counts from S3 on, means before.
              g.at(c, t, 0, 0) = quant_act ? sum : sum / area;
              ev.lstm_x[size_t(t) * x.c + c] = sum / area;  // GAP = count / area
            }
          ev.tensors["gap"] = g;
          break;
        }
        case BlockKind::kLstm:
          if (stage_ == Stage::kS5) Qlstm(&ev);
          else FloatLstm(&ev);
          break;
        case BlockKind::kDense:
          break;  // done with the LSTM, per step
      }
    }
    return ev;
  }

 private:
  Vol Act(const NormParams& p, const Vol& in) const {
    Vol out(in.c, in.t, in.h, in.w);
    for (int c = 0; c < in.c; ++c)
      for (int t = 0; t < in.t; ++t)
        for (int y = 0; y < in.h; ++y)
          for (int x = 0; x < in.w; ++x) {
            const double v = in.at(c, t, y, x);
            double r;
            if (stage_ <= Stage::kS2) {
              r = std::max(0.0, double(p.scale[c]) * v + double(p.offset[c]));  // BN + ReLU
            } else if (stage_ == Stage::kS3) {
              EXPECT_EQ(v, std::nearbyint(v));  // integer-valued sums
              r = p.polarity[c] > 0   ? v >= p.threshold[c]
                  : p.polarity[c] < 0 ? v <= p.threshold[c]
                                      : p.threshold[c];
            } else {
              r = v > 0;  // BSN has a positive scale: H(2^s x) = H(x)
            }
            out.at(c, t, y, x) = r;
          }
    return out;
  }

  static double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

  void FloatLstm(Evaluation* ev) {
    const ModelWeights& w = m_.weights();
    const int ni = plan_.gap_channels, u = plan_.config.lstm_units, k = plan_.config.classes;
    const int steps = plan_.steps;
    const bool s1 = stage_ == Stage::kS1;
    const double ls = s1 ? 1.0 : 3.0 / std::sqrt(double(ni + u));  // SSign, eq. 9
    const double ds = s1 ? 1.0 : 1.0 / std::sqrt(double(u));       // STern, eq. 10
    Vol scores(k, steps, 1, 1);
    for (int t = 0; t < steps; ++t) {
      const double* x = &ev->lstm_x[size_t(t) * ni];
      std::vector<double> z(4 * size_t(u));
      for (int r = 0; r < 4 * u; ++r) {
        double acc = 0;
        for (int j = 0; j < ni; ++j) acc += ls * double(w.lstm_ih[size_t(r) * ni + j]) * x[j];
        for (int q = 0; q < u; ++q) acc += ls * double(w.lstm_hh[size_t(r) * u + q]) * h_[q];
        z[r] = acc;
      }
      for (int q = 0; q < u; ++q) {
        const double i = Sigmoid(z[q]), f = Sigmoid(z[u + q]), g = std::tanh(z[2 * u + q]),
                     o = Sigmoid(z[3 * u + q]);
        c_[q] = f * c_[q] + i * g;
        h_[q] = o * std::tanh(c_[q]);
      }
      for (int j = 0; j < k; ++j) {
        double acc = 0;
        for (int q = 0; q < u; ++q) acc += ds * double(w.dense[size_t(j) * u + q]) * h_[q];
        scores.at(j, t, 0, 0) = acc;
      }
    }
    ev->tensors["scores"] = scores;
  }

  void Qlstm(Evaluation* ev) {
    const ModelWeights& w = m_.weights();
    const int ni = plan_.gap_channels, u = plan_.config.lstm_units, k = plan_.config.classes;
    const int steps = plan_.steps, area = plan_.gap_area;
    Vol scores(k, steps, 1, 1);
    for (int t = 0; t < steps; ++t) {
      std::vector<double> z(4 * size_t(u));
      for (int r = 0; r < 4 * u; ++r) {
        // area / scale times the float pre-activation: an exact integer.
        int64_t acc = 0;
        for (int j = 0; j < ni; ++j) {
          const int64_t count = std::llround(ev->lstm_x[size_t(t) * ni + j] * area);
          acc += int64_t(w.lstm_ih[size_t(r) * ni + j]) * count;
        }
        for (int q = 0; q < u; ++q)
          acc += int64_t(area) * int64_t(w.lstm_hh[size_t(r) * u + q]) * int64_t(h_[q]);
        z[r] = double(acc);
      }
      for (int q = 0; q < u; ++q) {
        const double i = z[q] > 0, f = z[u + q] > 0, o = z[3 * u + q] > 0;  // H
        const double g = z[2 * u + q] >= 0 ? 1 : -1;                          // Sign(0) = +1
        c_[q] = std::clamp(f * c_[q] + i * g, -1.0, 1.0);
        h_[q] = o * c_[q];
      }
      Vol hv(u, 1, 1, 1), cv(u, 1, 1, 1);
      for (int q = 0; q < u; ++q) hv.v[q] = h_[q], cv.v[q] = c_[q];
      ev->tensors["lstm.h." + std::to_string(t)] = hv;
      ev->tensors["lstm.c." + std::to_string(t)] = cv;
      for (int j = 0; j < k; ++j) {
        double acc = 0;
        for (int q = 0; q < u; ++q) acc += double(w.dense[size_t(j) * u + q]) * h_[q];
        scores.at(j, t, 0, 0) = acc;  // Tern weights, scale dropped: integer logits
      }
    }
    ev->tensors["scores"] = scores;
  }

  const Model& m_;
  const TopologyPlan& plan_;
  Stage stage_;
  std::vector<double> h_, c_;
};

// Index of (c, t, y, x) in a traced T x H x W x C tensor.
size_t TraceIndex(const TracedTensor& tt, int c, int t, int y, int x) {
  return ((size_t(t) * tt.shape[1] + y) * tt.shape[2] + x) * tt.shape[3] + c;
}

enum class Match { kExact, kScores, kClose };

// Compares one traced tensor with the evaluation's. kExact: identical values;
// kScores: within 1e-4 relative, 1e-5 absolute floor; kClose (S1/S2
// intermediates): within 1e-4 of the tensor's largest magnitude (float sums
// in another order).
::testing::AssertionResult SameTensor(const TracedTensor& tt, const Vol& ref, Match match) {
  if (tt.shape != std::vector<int64_t>{ref.t, ref.h, ref.w, ref.c})
    return ::testing::AssertionFailure()
           << tt.name << ": shape " << tt.shape[0] << "x" << tt.shape[1] << "x" << tt.shape[2]
           << "x" << tt.shape[3] << ", evaluation " << ref.t << "x" << ref.h << "x" << ref.w
           << "x" << ref.c;
  double scale = 0;
  for (double v : ref.v) scale = std::max(scale, std::fabs(v));
  int bad = 0;
  std::string first;
  for (int c = 0; c < ref.c; ++c)
    for (int t = 0; t < ref.t; ++t)
      for (int y = 0; y < ref.h; ++y)
        for (int x = 0; x < ref.w; ++x) {
          const size_t i = TraceIndex(tt, c, t, y, x);
          const double got = tt.is_integer ? double(tt.ints[i]) : tt.floats[i];
          const double want = ref.at(c, t, y, x);
          bool ok;
          switch (match) {
            case Match::kExact: ok = got == want; break;
            case Match::kScores:
              ok = std::fabs(got - want) <= std::max(1e-4 * std::fabs(want), 1e-5);
              break;
            case Match::kClose: ok = std::fabs(got - want) <= 1e-4 * std::max(scale, 1.0); break;
          }
          if (!ok && bad++ == 0)
            first = "(t=" + std::to_string(t) + " y=" + std::to_string(y) + " x=" +
                    std::to_string(x) + " c=" + std::to_string(c) + ") engine " +
                    std::to_string(got) + " evaluation " + std::to_string(want);
        }
  if (bad)
    return ::testing::AssertionFailure()
           << tt.name << ": " << bad << " of " << ref.v.size() << " values differ, first "
           << first;
  return ::testing::AssertionSuccess();
}

bool IsScores(const std::string& name) { return name == "scores"; }

// Runs `windows` consecutive windows through a session and the naive model,
// comparing every traced tensor. Returns the number of windows skipped (S1/S2
// only: a TGAP decision within 1e-4 of its threshold).
int CompareRun(Stage stage, uint64_t seed, int windows, int* compared_tensors) {
  SCOPED_TRACE(std::string("stage ") + StageName(stage) + " model seed " + std::to_string(seed));
  auto model = RandomModel(stage, seed);
  EXPECT_TRUE(model);
  if (!model) return 0;
  Session session(model);
  NaiveModel naive(*model);
  const bool int_path = stage >= Stage::kS3;
  int skipped = 0;
  for (int wi = 0; wi < windows; ++wi) {
    SCOPED_TRACE("window " + std::to_string(wi) + " (window seed " +
                 std::to_string(seed * 100 + wi) + ")");
    const auto window = RandomWindow(*model, seed * 100 + wi);
    std::vector<TracedTensor> trace;
    Response r;
    const Status st = session.Run(window.data(), window.size(), &r, &trace);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return skipped;
    Evaluation ev = naive.Run(window);
    if (!int_path && ev.min_tgap_margin < 1e-4) {
      // Float summation order can flip this TGAP decision (DESIGN 2.6): the
      // window is not compared, and the evaluation takes the engine's LSTM
      // state so that later windows are compared from the same state.
      ++skipped;
      naive.SetState(session.h(), session.c());
      continue;
    }
    // Every traced tensor has a counterpart; the evaluation has nothing the
    // trace lacks.
    std::map<std::string, int> seen;
    for (const TracedTensor& tt : trace) {
      SCOPED_TRACE("tensor " + tt.name);
      ++seen[tt.name];
      auto it = ev.tensors.find(tt.name);
      if (it == ev.tensors.end()) {
        ADD_FAILURE() << "the engine traced '" << tt.name << "', the evaluation has no such tensor";
        continue;
      }
      Match match;
      if (stage == Stage::kS5) match = Match::kExact;  // everything, scores included
      else if (IsScores(tt.name)) match = Match::kScores;
      else if (int_path || tt.is_integer) match = Match::kExact;  // S3/S4 up to GAP; selects
      else match = Match::kClose;
      EXPECT_TRUE(SameTensor(tt, it->second, match));
      ++*compared_tensors;
    }
    for (const auto& [name, vol] : ev.tensors) {
      EXPECT_EQ(seen[name], 1) << "tensor '" << name << "' traced " << seen[name] << " times";
    }
    // The response itself carries the traced scores.
    const Vol& sc = ev.tensors["scores"];
    for (int t = 0; t < r.steps; ++t)
      for (int k = 0; k < r.classes; ++k) {
        const double want = sc.at(k, t, 0, 0), got = r.scores[size_t(t) * r.classes + k];
        if (stage == Stage::kS5) {
          EXPECT_EQ(got, want);
          EXPECT_EQ(r.integer_scores[size_t(t) * r.classes + k], int32_t(want));
        } else {
          EXPECT_LE(std::fabs(got - want), std::max(1e-4 * std::fabs(want), 1e-5))
              << "t=" << t << " k=" << k;
        }
      }
    // The carried state agrees too (exactly in S5).
    for (size_t q = 0; q < session.h().size(); ++q) {
      if (stage == Stage::kS5) {
        EXPECT_EQ(double(session.h()[q]), naive.h()[q]);
      } else {
        EXPECT_NEAR(session.h()[q], naive.h()[q], 1e-5);
      }
    }
  }
  return skipped;
}

TEST(FloatEvaluation, IntegerPathOfS5EqualsIt) {
  int compared = 0;
  for (uint64_t seed : {1, 2, 3, 4}) EXPECT_EQ(CompareRun(Stage::kS5, seed, 3, &compared), 0);
  EXPECT_GT(compared, 0);
}

TEST(FloatEvaluation, IntegerPathOfS4EqualsIt) {
  int compared = 0;
  for (uint64_t seed : {1, 2, 3}) EXPECT_EQ(CompareRun(Stage::kS4, seed, 3, &compared), 0);
  EXPECT_GT(compared, 0);
}

TEST(FloatEvaluation, IntegerPathOfS3EqualsIt) {
  int compared = 0;
  for (uint64_t seed : {1, 2, 3}) EXPECT_EQ(CompareRun(Stage::kS3, seed, 3, &compared), 0);
  EXPECT_GT(compared, 0);
}

// S1/S2: float in the engine, double here. ReLU, max-pool and Clip are
// continuous, so summation-order differences move their outputs by rounding
// error only; the one discontinuous decision is TGAP's AP > m/2. Windows where
// one of those lies within 1e-4 (relative to m) of its threshold are skipped
// and counted (DESIGN 2.6); they must stay rare.
void CheckFloatStage(Stage stage) {
  int compared = 0, skipped = 0, windows = 0;
  for (uint64_t seed : {1, 2, 3}) {
    skipped += CompareRun(stage, seed, 3, &compared);
    windows += 3;
  }
  EXPECT_LE(skipped, windows / 3) << skipped << " of " << windows << " windows skipped";
  EXPECT_GT(compared, 0);
}

TEST(FloatEvaluation, FloatPathOfS2EqualsIt) { CheckFloatStage(Stage::kS2); }
TEST(FloatEvaluation, FloatPathOfS1EqualsIt) { CheckFloatStage(Stage::kS1); }

}  // namespace
}  // namespace billnet
