#include "scene.h"

#include <algorithm>
#include <cmath>

#include "portable_math.h"

namespace billnet::synth {
namespace {

using portable::kPi;
using portable::kTwoPi;

// Sub-stream tags: each part of the look has its own generator, so adding a
// draw to one part leaves the others unchanged.
enum : uint64_t {
  kTagTiming = 1,
  kTagBackground,
  kTagHand,
  kTagPerson,
  kTagDistractors,
  kTagCamera,
  kTagLighting,
  kTagSensor,
  kTagSimplify,
};

Rgb Hsv(double h, double s, double v) {
  h = (h - std::floor(h)) * 6;
  const int i = static_cast<int>(h) % 6;
  const double f = h - std::floor(h);
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  double r, g, b;
  switch (i) {
    case 0:
      r = v;
      g = t;
      b = p;
      break;
    case 1:
      r = q;
      g = v;
      b = p;
      break;
    case 2:
      r = p;
      g = v;
      b = t;
      break;
    case 3:
      r = p;
      g = q;
      b = v;
      break;
    case 4:
      r = t;
      g = p;
      b = v;
      break;
    default:
      r = v;
      g = p;
      b = q;
      break;
  }
  return {static_cast<float>(r), static_cast<float>(g), static_cast<float>(b)};
}

// A colour with uniform hue, saturation and value in the given ranges. (Draws
// are separate statements: C++ leaves the order of function arguments
// unspecified, and compilers differ.)
Rgb RandomHsv(Rng& rng, double s_lo, double s_hi, double v_lo, double v_hi) {
  const double h = rng.Uniform();
  const double s = rng.Uniform(s_lo, s_hi);
  const double v = rng.Uniform(v_lo, v_hi);
  return Hsv(h, s, v);
}

// Walls, furniture, clothes: mostly muted, sometimes saturated.
Rgb RoomColour(Rng& rng) {
  const double h = rng.Uniform();
  const double s = rng.Bernoulli(0.7) ? rng.Uniform(0.0, 0.3) : rng.Uniform(0.3, 0.85);
  return Hsv(h, s, rng.Uniform(0.15, 0.95));
}

Rgb SkinColour(Rng& rng) {
  static constexpr float kAnchors[5][3] = {{0.96f, 0.80f, 0.70f},
                                           {0.90f, 0.70f, 0.56f},
                                           {0.78f, 0.57f, 0.42f},
                                           {0.60f, 0.40f, 0.27f},
                                           {0.38f, 0.24f, 0.16f}};
  const double t = rng.Uniform() * 4;
  const int i = std::min(3, static_cast<int>(t));
  const float f = static_cast<float>(t - i);
  Rgb c = Mix({kAnchors[i][0], kAnchors[i][1], kAnchors[i][2]},
              {kAnchors[i + 1][0], kAnchors[i + 1][1], kAnchors[i + 1][2]}, f);
  c = c * static_cast<float>(rng.Uniform(0.9, 1.08));
  c.r *= static_cast<float>(rng.Uniform(0.97, 1.03));
  c.b *= static_cast<float>(rng.Uniform(0.93, 1.06));
  return c;
}

Rgb HairColour(Rng& rng) {
  static constexpr float kAnchors[4][3] = {
      {0.08f, 0.06f, 0.05f}, {0.30f, 0.20f, 0.12f}, {0.70f, 0.58f, 0.38f}, {0.62f, 0.62f, 0.6f}};
  const int i = rng.Choose({0.45, 0.35, 0.12, 0.08});
  return Rgb{kAnchors[i][0], kAnchors[i][1], kAnchors[i][2]} *
         static_cast<float>(rng.Uniform(0.8, 1.2));
}

double Clamp(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

// Value noise in [-1, 1] on a unit lattice.
float ValueNoise(uint64_t seed, double x, double y) {
  const double fx0 = std::floor(x), fy0 = std::floor(y);
  const int64_t ix = static_cast<int64_t>(fx0), iy = static_cast<int64_t>(fy0);
  auto corner = [seed](int64_t cx, int64_t cy) {
    return HashUnitFloat(Mix64(seed ^ Mix64(static_cast<uint64_t>(cx) * 0x9E3779B97F4A7C15ull +
                                            static_cast<uint64_t>(cy))));
  };
  const float tx = static_cast<float>(x - fx0), ty = static_cast<float>(y - fy0);
  const float sx = tx * tx * (3 - 2 * tx), sy = ty * ty * (3 - 2 * ty);
  const float a = corner(ix, iy), b = corner(ix + 1, iy);
  const float c = corner(ix, iy + 1), d = corner(ix + 1, iy + 1);
  const float top = a + (b - a) * sx, bottom = c + (d - c) * sx;
  return 2 * (top + (bottom - top) * sy) - 1;
}

// Separable box blur of radius r (pixels), in place.
void BoxBlur(Canvas* c, int r) {
  if (r < 1) return;
  const int w = c->width, h = c->height;
  std::vector<float> tmp(c->rgb.size());
  const float inv = 1.0f / (2 * r + 1);
  for (int j = 0; j < h; ++j) {
    for (int i = 0; i < w; ++i) {
      for (int k = 0; k < 3; ++k) {
        float s = 0;
        for (int d = -r; d <= r; ++d) s += c->at(std::clamp(i + d, 0, w - 1), j)[k];
        tmp[(static_cast<size_t>(j) * w + i) * 3 + k] = s * inv;
      }
    }
  }
  for (int j = 0; j < h; ++j) {
    for (int i = 0; i < w; ++i) {
      for (int k = 0; k < 3; ++k) {
        float s = 0;
        for (int d = -r; d <= r; ++d)
          s += tmp[(static_cast<size_t>(std::clamp(j + d, 0, h - 1)) * w + i) * 3 + k];
        c->at(i, j)[k] = s * inv;
      }
    }
  }
}

// out = round(255 * clamp(src * field * gain + noise)); restrict lets the
// compiler vectorize (a uint8_t store may otherwise alias the floats).
void Quantize(const float* __restrict src, const float* __restrict field,
              const float* __restrict noise, float gain, size_t n, uint8_t* __restrict out) {
  for (size_t i = 0; i < n; ++i) {
    const float v = std::min(1.f, std::max(0.f, src[i] * field[i] * gain + noise[i]));
    out[i] = static_cast<uint8_t>(static_cast<int>(v * 255 + 0.5f));
  }
}

}  // namespace

Wobble Wobble::Sample(Rng& rng, double amplitude, double min_hz, double max_hz) {
  Wobble w;
  double weights[3], total = 0;
  for (double& x : weights) total += (x = rng.Uniform(0.2, 1.0));
  for (int i = 0; i < 3; ++i) {
    w.amp[i] = amplitude * weights[i] / total;
    w.freq[i] = rng.LogUniform(min_hz, max_hz);
    w.phase[i] = rng.Uniform(0, kTwoPi);
  }
  return w;
}

double Wobble::At(double t) const {
  double s = 0;
  for (int i = 0; i < 3; ++i) {
    if (amp[i] != 0) s += amp[i] * portable::Sin(kTwoPi * freq[i] * t + phase[i]);
  }
  return s;
}

Articulation SampleRestArticulation(Rng& rng) {
  Articulation a;
  const double base = rng.Uniform(0.2, 0.55);
  const double slope = rng.Uniform(0.0, 0.06);
  for (int i = 0; i < 4; ++i) a.curl[i] = Clamp(base + rng.Uniform(-0.12, 0.12) + i * slope, 0, 1);
  a.spread = rng.Uniform(0.0, 0.35);
  a.thumb_abduct = rng.Uniform(0.2, 0.8);
  a.thumb_flex = rng.Uniform(0.0, 0.5);
  a.thumb_curl = rng.Uniform(0.0, 0.4);
  a.thumb_base_v = rng.Uniform(-0.4, -0.2);
  a.index_tilt = 0;
  return a;
}

HandPose SampleRestPose(Rng& rng, double aspect, double scale) {
  HandPose p;
  p.present = true;
  p.x = rng.Uniform(0.22, 0.78) * aspect;
  p.y = rng.Uniform(0.4, 0.72);
  p.scale = scale;
  p.angle = Clamp(0.17 * rng.Normal(), -0.45, 0.45);
  p.pitch = rng.Uniform(-0.25, 0.3);
  p.art = SampleRestArticulation(rng);
  return p;
}

Look SampleLook(uint64_t seed, double aspect, double duration_s, double difficulty) {
  Look look;
  look.aspect = aspect;
  {
    Rng rng(DeriveSeed(seed, kTagTiming));
    const int jester_frames = rng.UniformInt(28, 40);
    look.duration = duration_s > 0 ? duration_s : jester_frames / 12.0;
    look.gesture_start = rng.Uniform(0.1, 0.3) * look.duration;
  }
  {
    Rng rng(DeriveSeed(seed, kTagHand));
    HandLook& h = look.hand;
    const Rgb skin = SkinColour(rng);
    h.skin = skin;
    if (rng.Bernoulli(0.04)) h.skin = RandomHsv(rng, 0, 0.7, 0.3, 0.95);  // a glove
    h.mirror = rng.Sign();
    const double len = rng.Uniform(0.92, 1.08);
    const double base_len[4] = {1.55, 1.7, 1.6, 1.25};
    for (int i = 0; i < 4; ++i) h.finger_length[i] = base_len[i] * len * rng.Uniform(0.97, 1.03);
    h.finger_width = rng.Uniform(0.85, 1.2);
    h.palm_length = rng.Uniform(0.9, 1.12);
    const double scale = rng.LogUniform(0.075, 0.13);
    look.rest = SampleRestPose(rng, aspect, scale);
    h.elbow_anchor_x = look.rest.x;
    h.elbow_dx = rng.Uniform(-0.25, 0.25) + 0.12 * h.mirror;
    h.elbow_y = rng.Uniform(1.25, 1.6);
    look.hand_enters = rng.Bernoulli(0.12);
    look.edge_blur = rng.Uniform(0.006, 0.018);
    look.tremor_x = Wobble::Sample(rng, rng.Uniform(0.002, 0.008), 0.3, 1.5);
    look.tremor_y = Wobble::Sample(rng, rng.Uniform(0.002, 0.008), 0.3, 1.5);
    look.tremor_angle = Wobble::Sample(rng, rng.Uniform(0.01, 0.05), 0.3, 1.5);
    look.tremor_scale = Wobble::Sample(rng, rng.Uniform(0.005, 0.025), 0.2, 1.0);
    const bool bare_arm = rng.Bernoulli(0.35);
    h.sleeve = bare_arm ? skin * static_cast<float>(rng.Uniform(0.92, 1.02)) : RoomColour(rng);
    const bool sleeve_is_shirt = !bare_arm && rng.Bernoulli(0.7);
    // The person wears the sleeve's colour when sleeve_is_shirt.
    Rng prng(DeriveSeed(seed, kTagPerson));
    PersonLook& p = look.person;
    p.present = prng.Bernoulli(0.65);
    p.x = prng.Uniform(0.3, 0.7) * aspect;
    p.shoulder_y = prng.Uniform(0.6, 0.95);
    p.half_width = prng.Uniform(0.25, 0.45);
    p.head_ry = prng.Uniform(0.14, 0.24);
    p.head_rx = p.head_ry * prng.Uniform(0.72, 0.85);
    p.shirt = RoomColour(prng);
    if (sleeve_is_shirt && p.present) p.shirt = h.sleeve;
    p.skin = skin * static_cast<float>(prng.Uniform(0.93, 1.05));
    p.hair = HairColour(prng);
    p.sway_x = Wobble::Sample(prng, prng.Uniform(0.0, 0.012), 0.1, 0.6);
    p.sway_y = Wobble::Sample(prng, prng.Uniform(0.0, 0.006), 0.1, 0.6);
  }
  {
    Rng rng(DeriveSeed(seed, kTagBackground));
    BackgroundLook& b = look.background;
    b.kind = rng.Choose({0.25, 0.45, 0.3});
    b.c0 = RoomColour(rng);
    b.c1 = rng.Bernoulli(0.5) ? RoomColour(rng) : b.c0 * static_cast<float>(rng.Uniform(0.5, 1.3));
    double s, c;
    portable::SinCos(rng.Uniform(0, kTwoPi), &s, &c);
    b.gx = c;
    b.gy = s;
    b.rcx = rng.Uniform(0, aspect);
    b.rcy = rng.Uniform(0, 1);
    b.rr = rng.Uniform(0.5, 1.5);
    b.noise_amp = rng.Bernoulli(0.75) ? rng.Uniform(0.01, 0.12) : 0;
    b.noise_cell = rng.LogUniform(0.01, 0.3);
    b.octaves = rng.UniformInt(1, 3);
    b.noise_tint = {static_cast<float>(rng.Uniform(0.7, 1)),
                    static_cast<float>(rng.Uniform(0.7, 1)),
                    static_cast<float>(rng.Uniform(0.7, 1))};
    b.noise_seed = rng.Next();
    if (rng.Bernoulli(0.2)) {
      b.stripe_amp = rng.Uniform(0.02, 0.1);
      b.stripe_period = rng.LogUniform(0.02, 0.3);
      const double a =
          rng.Bernoulli(0.6) ? (rng.Bernoulli(0.5) ? 0 : kPi / 2) : rng.Uniform(0, kPi);
      portable::SinCos(a, &s, &c);
      b.stripe_nx = c;
      b.stripe_ny = s;
    }
    const int n = rng.UniformInt(0, 7);
    for (int i = 0; i < n; ++i) {
      ClutterItem item;
      item.kind = static_cast<ClutterItem::Kind>(rng.Choose({0.5, 0.3, 0.2}));
      item.x = rng.Uniform(-0.1, aspect + 0.1);
      item.y = rng.Uniform(-0.1, 1.1);
      item.hx = rng.LogUniform(0.02, 0.35);
      item.hy = item.kind == ClutterItem::Kind::kBar ? rng.Uniform(0.004, 0.015)
                                                     : item.hx * rng.LogUniform(0.3, 3);
      item.angle = rng.Bernoulli(0.6) ? (rng.Bernoulli(0.5) ? 0 : kPi / 2) : rng.Uniform(0, kPi);
      item.rounding = rng.Uniform(0, 0.5) * std::min(item.hx, item.hy);
      item.colour = RoomColour(rng);
      item.lit = rng.Bernoulli(0.3);
      b.clutter.push_back(item);
    }
    b.defocus = rng.Bernoulli(0.4) ? rng.Uniform(0.005, 0.02) : 0;
  }
  {
    Rng rng(DeriveSeed(seed, kTagLighting));
    look.gain = rng.Uniform(0.75, 1.2);
    look.cast = {static_cast<float>(rng.Uniform(0.9, 1.1)),
                 static_cast<float>(rng.Uniform(0.9, 1.1)),
                 static_cast<float>(rng.Uniform(0.9, 1.1))};
    switch (rng.Choose({0.5, 0.3, 0.2})) {
      case 1:
        look.gain_wobble = Wobble::Sample(rng, rng.Uniform(0.02, 0.1), 0.1, 1.0);
        break;
      case 2:
        look.step_time = rng.Uniform(0.05, 0.95) * look.duration;
        look.step_size = rng.Sign();
        look.step_size *= rng.Uniform(0.06, 0.2);
        look.step_length = rng.Uniform(0.15, 0.6);
        break;
      default:
        break;
    }
    look.light_gradient = rng.Bernoulli(0.5) ? rng.Uniform(0, 0.3) : 0;
    double s, c;
    portable::SinCos(rng.Uniform(0, kTwoPi), &s, &c);
    look.light_gx = c;
    look.light_gy = s;
    look.vignette = rng.Bernoulli(0.5) ? rng.Uniform(0, 0.35) : 0;
    Light& L = look.light;
    const double z = rng.Uniform(0.45, 0.9);
    portable::SinCos(rng.Uniform(0, kTwoPi), &s, &c);
    const double r = std::sqrt(1 - z * z);
    L.x = static_cast<float>(r * c);
    L.y = static_cast<float>(r * s);
    if (rng.Bernoulli(0.7)) L.y = -std::fabs(L.y);  // mostly from above
    L.z = static_cast<float>(z);
    L.ambient = static_cast<float>(rng.Uniform(0.45, 0.7));
    L.diffuse = static_cast<float>(rng.Uniform(0.3, 0.6));
  }
  {
    Rng rng(DeriveSeed(seed, kTagCamera));
    const double shake = rng.Bernoulli(0.65) ? rng.Uniform(0.001, 0.012) : 0;
    look.camera_x = Wobble::Sample(rng, shake, 0.3, 3.0);
    look.camera_y = Wobble::Sample(rng, shake * rng.Uniform(0.5, 1.0), 0.3, 3.0);
    const double slow = rng.Bernoulli(0.3) ? rng.Uniform(0.003, 0.025) : 0;
    look.camera_slow_x = Wobble::Sample(rng, slow, 0.03, 0.2);
    look.camera_slow_y = Wobble::Sample(rng, slow * 0.5, 0.03, 0.2);
  }
  {
    Rng rng(DeriveSeed(seed, kTagSensor));
    look.luma_noise = rng.LogUniform(0.8, 8.0) / 255;
    look.chroma_noise = rng.Uniform(0.0, 3.0) / 255;
    look.sensor_blur = rng.Bernoulli(0.3);
    look.noise_seed = rng.Next();
  }
  {
    Rng rng(DeriveSeed(seed, kTagDistractors));
    const int n = rng.Choose({0.62, 0.3, 0.08});
    for (int i = 0; i < n; ++i) {
      DistractorLook d;
      d.kind = static_cast<DistractorLook::Kind>(rng.Choose({0.45, 0.2, 0.2, 0.15}));
      d.hx = rng.LogUniform(0.03, 0.15);
      d.hy = d.hx * rng.LogUniform(0.5, 2.0);
      d.ellipse = rng.Bernoulli(0.5);
      d.colour = RoomColour(rng);
      d.angle = rng.Uniform(0, kPi);
      d.in_front = rng.Bernoulli(0.3);
      double s, c;
      switch (d.kind) {
        case DistractorLook::Kind::kMovingBlob: {
          const double speed = rng.Uniform(0.08, 0.5);
          portable::SinCos(rng.Uniform(0, kTwoPi), &s, &c);
          d.vx = speed * c;
          d.vy = speed * s;
          const double mx = rng.Uniform(0, aspect), my = rng.Uniform(0, 1);
          const double t_mid = rng.Uniform(0, look.duration);
          d.x = mx - d.vx * t_mid;
          d.y = my - d.vy * t_mid;
          d.spin = rng.Uniform(-1.5, 1.5);
          break;
        }
        case DistractorLook::Kind::kSwingingBlob:
          d.x = rng.Uniform(0, aspect);
          d.y = rng.Uniform(0, 1);
          d.swing = rng.Uniform(0.02, 0.1);
          d.swing_hz = rng.Uniform(0.3, 1.5);
          portable::SinCos(rng.Uniform(0, kPi), &s, &c);
          d.swing_dx = c;
          d.swing_dy = s;
          break;
        case DistractorLook::Kind::kSecondHand: {
          d.in_front = false;
          HandLook& hl = d.hand_look;
          hl.skin = rng.Bernoulli(0.5) ? look.hand.skin * static_cast<float>(rng.Uniform(0.9, 1.1))
                                       : SkinColour(rng);
          hl.sleeve = rng.Bernoulli(0.4) ? hl.skin : RoomColour(rng);
          hl.mirror = rng.Sign();
          d.hand = SampleRestPose(rng, aspect, look.rest.scale * rng.Uniform(0.6, 1.0));
          d.hand.x = rng.Uniform(0.05, 0.95) * aspect;
          d.hand.y = rng.Uniform(0.45, 0.95);
          d.hand.angle = rng.Uniform(-1.0, 1.0);
          hl.elbow_anchor_x = d.hand.x;
          hl.elbow_dx = rng.Uniform(-0.3, 0.3);
          hl.elbow_y = rng.Uniform(1.2, 1.6);
          d.drift_x = Wobble::Sample(rng, rng.Uniform(0.005, 0.03), 0.1, 0.6);
          d.drift_y = Wobble::Sample(rng, rng.Uniform(0.005, 0.03), 0.1, 0.6);
          d.drift_angle = Wobble::Sample(rng, rng.Uniform(0.02, 0.15), 0.1, 0.6);
          break;
        }
        case DistractorLook::Kind::kScreen: {
          d.in_front = false;
          d.x = rng.Uniform(0, aspect);
          d.y = rng.Uniform(0, 0.7);
          d.hx = rng.Uniform(0.05, 0.2);
          d.hy = d.hx * rng.Uniform(0.5, 0.8);
          d.screen_period = rng.Uniform(0.3, 1.2);
          const int k = static_cast<int>(look.duration / d.screen_period) + 2;
          for (int j = 0; j < k && j < 4096; ++j) {
            d.screen_colours.push_back(RandomHsv(rng, 0, 0.8, 0.3, 1));
          }
          break;
        }
      }
      look.distractors.push_back(d);
    }
  }
  if (difficulty < 1) SimplifyLook(seed, difficulty, &look);
  return look;
}

void SimplifyLook(uint64_t seed, double difficulty, Look* look) {
  const double d = Clamp(difficulty, 0, 1);
  if (d >= 1) return;
  Rng rng(DeriveSeed(seed, kTagSimplify));
  auto scale = [d](Wobble& w) {
    for (double& a : w.amp) a *= d;
  };
  // What moves besides the hand.
  std::vector<DistractorLook> kept;
  for (const DistractorLook& x : look->distractors)
    if (rng.Bernoulli(d)) kept.push_back(x);
  look->distractors = std::move(kept);
  scale(look->camera_x);
  scale(look->camera_y);
  scale(look->camera_slow_x);
  scale(look->camera_slow_y);
  scale(look->gain_wobble);
  look->step_size *= d;
  // What clutters the frame.
  if (!rng.Bernoulli(d)) look->person.present = false;
  scale(look->person.sway_x);
  scale(look->person.sway_y);
  BackgroundLook& b = look->background;
  std::vector<ClutterItem> clutter;
  for (const ClutterItem& x : b.clutter)
    if (rng.Bernoulli(d)) clutter.push_back(x);
  b.clutter = std::move(clutter);
  b.noise_amp *= d;
  b.stripe_amp *= d;
  look->light_gradient *= d;
  look->vignette *= d;
  look->luma_noise *= 0.25 + 0.75 * d;
  look->chroma_noise *= d;
  // A larger hand: up to 1.5x its drawn size at difficulty 0.
  look->rest.scale *= 1 + 0.5 * (1 - d);
}

void CameraOffset(const Look& look, double t, double* x, double* y) {
  *x = Clamp(look.camera_x.At(t) + look.camera_slow_x.At(t), -kMaxCameraOffset, kMaxCameraOffset);
  *y = Clamp(look.camera_y.At(t) + look.camera_slow_y.At(t), -kMaxCameraOffset, kMaxCameraOffset);
}

void BakeBackground(const Look& look, int width, int height, int margin, Canvas* out) {
  const BackgroundLook& b = look.background;
  out->Resize(width + 2 * margin, height + 2 * margin, -margin, -margin);
  const double ppu = height;  // pixels per scene unit
  const double extent = 0.5 * (look.aspect * std::fabs(b.gx) + std::fabs(b.gy));
  for (int j = 0; j < out->height; ++j) {
    const double y = (j + out->origin_y + 0.5) / ppu;
    for (int i = 0; i < out->width; ++i) {
      const double x = (i + out->origin_x + 0.5) / ppu;
      Rgb c = b.c0;
      if (b.kind == 1) {
        const double t =
            Clamp01(0.5 + ((x - look.aspect / 2) * b.gx + (y - 0.5) * b.gy) / (2 * extent));
        c = Mix(b.c0, b.c1, static_cast<float>(t));
      } else if (b.kind == 2) {
        const double dx = x - b.rcx, dy = y - b.rcy;
        c = Mix(b.c0, b.c1, static_cast<float>(Clamp01(std::sqrt(dx * dx + dy * dy) / b.rr)));
      }
      if (b.noise_amp > 0) {
        float n = 0, weight = 1, total = 0;
        double cell = b.noise_cell;
        for (int o = 0; o < b.octaves; ++o) {
          n += weight * ValueNoise(b.noise_seed + o, x / cell, y / cell);
          total += weight;
          weight *= 0.5f;
          cell *= 0.5;
        }
        c = c + b.noise_tint * static_cast<float>(b.noise_amp * n / total);
      }
      if (b.stripe_amp > 0) {
        const double ph = (x * b.stripe_nx + y * b.stripe_ny) / b.stripe_period;
        const double tri = std::fabs(ph - std::floor(ph) - 0.5) * 4 - 1;
        c = c + Rgb{1, 1, 1} * static_cast<float>(b.stripe_amp * tri);
      }
      float* p = out->at(i, j);
      p[0] = c.r;
      p[1] = c.g;
      p[2] = c.b;
    }
  }
  const View view{static_cast<float>(ppu), 0, 0};
  for (const ClutterItem& item : b.clutter) {
    Material m;
    m.colour = item.colour;
    m.lit = item.lit;
    m.light = look.light;
    m.edge = 1.0f;
    const float px = view.X(item.x), py = view.Y(item.y);
    const float hx = static_cast<float>(item.hx * ppu), hy = static_cast<float>(item.hy * ppu);
    Shape s;
    switch (item.kind) {
      case ClutterItem::Kind::kEllipse:
        s = Shape::Ellipse(px, py, hx, hy, static_cast<float>(item.angle));
        break;
      case ClutterItem::Kind::kBox:
      case ClutterItem::Kind::kBar:
        s = Shape::Box(px, py, hx, hy, static_cast<float>(item.angle),
                       static_cast<float>(item.rounding * ppu));
        break;
    }
    DrawShape(s, m, out);
  }
  BoxBlur(out, static_cast<int>(b.defocus * ppu + 0.5));
}

void DrawScreens(const Look& look, double t, const View& view, Canvas* canvas) {
  const float ppu = view.pixels_per_unit;
  for (const DistractorLook& d : look.distractors) {
    if (d.kind != DistractorLook::Kind::kScreen || d.screen_colours.empty()) continue;
    const double k = t / d.screen_period;
    const size_t n = d.screen_colours.size();
    const size_t i = std::min(n - 1, static_cast<size_t>(std::max(0.0, std::floor(k))));
    const size_t j = std::min(n - 1, i + 1);
    const double f = MinJerk((k - std::floor(k) - 0.8) / 0.2);  // quick cut
    Material m;
    m.lit = false;
    m.colour = {0.06f, 0.06f, 0.07f};
    const float px = view.X(d.x), py = view.Y(d.y);
    DrawShape(Shape::Box(px, py, static_cast<float>(d.hx * 1.08 * ppu),
                         static_cast<float>((d.hy + d.hx * 0.08) * ppu), 0, 1.0f),
              m, canvas);
    m.colour = Mix(d.screen_colours[i], d.screen_colours[j], static_cast<float>(f));
    DrawShape(
        Shape::Box(px, py, static_cast<float>(d.hx * ppu), static_cast<float>(d.hy * ppu), 0, 0.5f),
        m, canvas);
  }
}

void PersonSway(const Look& look, double t, double* dx, double* dy) {
  *dx = look.person.sway_x.At(t);
  *dy = look.person.sway_y.At(t);
}

void BakePerson(const Look& look, int width, int height, int margin, Canvas* canvas,
                std::vector<float>* alpha) {
  canvas->Resize(width + 2 * margin, height + 2 * margin, -margin, -margin);
  alpha->assign(static_cast<size_t>(canvas->width) * canvas->height, 0.f);
  const PersonLook& p = look.person;
  if (!p.present) return;
  const View view{static_cast<float>(height), 0, 0};
  const float ppu = view.pixels_per_unit;
  const double x = p.x, sy = p.shoulder_y;
  const double hw = p.half_width, r = 0.3 * hw;
  Material m;
  m.light = look.light;
  m.edge = static_cast<float>(std::max(0.75, look.edge_blur * ppu));
  // Torso.
  const float qx[4] = {view.X(x - hw + r), view.X(x + hw - r), view.X(x + 1.15 * hw - r),
                       view.X(x - 1.15 * hw + r)};
  const float qy[4] = {view.Y(sy + r), view.Y(sy + r), view.Y(sy + 1.2), view.Y(sy + 1.2)};
  m.colour = p.shirt;
  DrawShape(Shape::RoundedQuad(qx, qy, static_cast<float>(r * ppu)), m, canvas, alpha);
  // Neck, hair, head, eyes, mouth.
  const double head_y = sy - 0.02 - p.head_ry * 0.95;
  m.colour = p.skin * 0.88f;
  DrawShape(Shape::Capsule(view.X(x), view.Y(sy + 0.02), view.X(x), view.Y(head_y),
                           static_cast<float>(p.head_rx * 0.5 * ppu)),
            m, canvas, alpha);
  m.colour = p.hair;
  DrawShape(Shape::Ellipse(view.X(x), view.Y(head_y - p.head_ry * 0.12),
                           static_cast<float>(p.head_rx * 1.08 * ppu),
                           static_cast<float>(p.head_ry * 1.05 * ppu), 0),
            m, canvas, alpha);
  m.colour = p.skin;
  DrawShape(Shape::Ellipse(view.X(x), view.Y(head_y), static_cast<float>(p.head_rx * ppu),
                           static_cast<float>(p.head_ry * ppu), 0),
            m, canvas, alpha);
  Material flat = m;
  flat.lit = false;
  flat.colour = p.skin * 0.35f;
  for (double side : {-1.0, 1.0}) {
    DrawShape(Shape::Ellipse(view.X(x + side * 0.38 * p.head_rx), view.Y(head_y - 0.1 * p.head_ry),
                             static_cast<float>(0.1 * p.head_rx * ppu),
                             static_cast<float>(0.07 * p.head_ry * ppu), 0),
              flat, canvas, alpha);
  }
  flat.colour = p.skin * 0.6f;
  DrawShape(Shape::Ellipse(view.X(x), view.Y(head_y + 0.5 * p.head_ry),
                           static_cast<float>(0.3 * p.head_rx * ppu),
                           static_cast<float>(0.06 * p.head_ry * ppu), 0),
            flat, canvas, alpha);
}

void DrawDistractors(const Look& look, double t, const View& view, bool in_front, Canvas* canvas) {
  const float ppu = view.pixels_per_unit;
  const float edge = static_cast<float>(std::max(0.75, look.edge_blur * ppu));
  for (const DistractorLook& d : look.distractors) {
    if (d.in_front != in_front || d.kind == DistractorLook::Kind::kScreen) continue;
    if (d.kind == DistractorLook::Kind::kSecondHand) {
      HandPose pose = d.hand;
      pose.x += d.drift_x.At(t);
      pose.y += d.drift_y.At(t);
      pose.angle += d.drift_angle.At(t);
      DrawHand(pose, d.hand_look, look.light, view, edge, canvas, nullptr);
      continue;
    }
    double x = d.x, y = d.y, angle = d.angle;
    if (d.kind == DistractorLook::Kind::kMovingBlob) {
      x += d.vx * t;
      y += d.vy * t;
      angle += d.spin * t;
    } else {
      const double s = d.swing * portable::Sin(portable::kTwoPi * d.swing_hz * t);
      x += s * d.swing_dx;
      y += s * d.swing_dy;
    }
    Material m;
    m.colour = d.colour;
    m.light = look.light;
    m.edge = edge;
    const float px = view.X(x), py = view.Y(y);
    const float hx = static_cast<float>(d.hx * ppu), hy = static_cast<float>(d.hy * ppu);
    const Shape s =
        d.ellipse ? Shape::Ellipse(px, py, hx, hy, static_cast<float>(angle))
                  : Shape::Box(px, py, hx, hy, static_cast<float>(angle), 0.3f * std::min(hx, hy));
    DrawShape(s, m, canvas);
  }
}

std::vector<float> LightingField(const Look& look, int width, int height) {
  std::vector<float> field(static_cast<size_t>(width) * height * 3);
  const double ppu = height;
  const double half_diag2 = 0.25 * (look.aspect * look.aspect + 1);
  for (int j = 0; j < height; ++j) {
    const double y = (j + 0.5) / ppu - 0.5;
    for (int i = 0; i < width; ++i) {
      const double x = (i + 0.5) / ppu - look.aspect / 2;
      const double g = 1 + look.light_gradient * (x * look.light_gx + y * look.light_gy);
      const double v = 1 - look.vignette * (x * x + y * y) / half_diag2;
      float* f = &field[(static_cast<size_t>(j) * width + i) * 3];
      f[0] = static_cast<float>(g * v * look.cast.r);
      f[1] = static_cast<float>(g * v * look.cast.g);
      f[2] = static_cast<float>(g * v * look.cast.b);
    }
  }
  return field;
}

void FinishFrame(const Look& look, int frame_index, double t, const std::vector<float>& field,
                 Canvas* canvas, std::vector<float>* scratch, uint8_t* out) {
  const int w = canvas->width, h = canvas->height;
  const size_t n = static_cast<size_t>(w) * h;
  std::vector<float>& tmp = *scratch;
  tmp.resize(n * 3);
  if (look.sensor_blur) {  // [1 2 1] / 4, separable
    for (int j = 0; j < h; ++j) {
      for (int i = 0; i < w; ++i) {
        const float* l = canvas->at(std::max(i - 1, 0), j);
        const float* c = canvas->at(i, j);
        const float* r = canvas->at(std::min(i + 1, w - 1), j);
        float* o = &tmp[(static_cast<size_t>(j) * w + i) * 3];
        for (int k = 0; k < 3; ++k) o[k] = 0.25f * (l[k] + 2 * c[k] + r[k]);
      }
    }
    for (int j = 0; j < h; ++j) {
      const int ju = std::max(j - 1, 0), jd = std::min(j + 1, h - 1);
      for (int i = 0; i < w; ++i) {
        const float* u = &tmp[(static_cast<size_t>(ju) * w + i) * 3];
        const float* c = &tmp[(static_cast<size_t>(j) * w + i) * 3];
        const float* d = &tmp[(static_cast<size_t>(jd) * w + i) * 3];
        float* o = canvas->at(i, j);
        for (int k = 0; k < 3; ++k) o[k] = 0.25f * (u[k] + 2 * c[k] + d[k]);
      }
    }
  }
  double gain = look.gain * (1 + look.gain_wobble.At(t));
  if (look.step_time >= 0) {
    gain *= 1 + look.step_size * MinJerk((t - look.step_time) / look.step_length);
  }
  // Sensor noise from one hash per pixel: five 12-bit uniforms; the sum of
  // two (triangular) is luma noise, one per channel (uniform) chroma noise.
  const float luma = static_cast<float>(look.luma_noise * 2.449489742783178 / 4096);  // sqrt(6)
  const float chroma =
      static_cast<float>(look.chroma_noise * 3.4641016151377544 / 8192);  // sqrt(12)
  const uint64_t frame_seed = Mix64(look.noise_seed ^ (static_cast<uint64_t>(frame_index) << 20));
  for (size_t p = 0; p < n; ++p) {
    const uint64_t bits = Mix64(frame_seed + p);
    const int u0 = static_cast<int>(bits & 4095), u1 = static_cast<int>((bits >> 12) & 4095);
    const float l = static_cast<float>(u0 + u1 - 4095) * luma;
    for (int k = 0; k < 3; ++k) {
      const int uc = static_cast<int>((bits >> (24 + 12 * k)) & 4095);
      tmp[p * 3 + k] = l + static_cast<float>(2 * uc - 4095) * chroma;
    }
  }
  Quantize(canvas->rgb.data(), field.data(), tmp.data(), static_cast<float>(gain), n * 3, out);
}

}  // namespace billnet::synth
