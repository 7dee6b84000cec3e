#include "billnet/trainer/data.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <thread>

#include "billnet/synth/renderer.h"
#include "parallel.h"

namespace billnet::trainer {

namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Coverage weights of an area resize along one axis: for each output index,
// the source indices it covers and their weights (summing to 1).
struct AxisTap {
  int first = 0;
  std::vector<double> weights;
};

std::vector<AxisTap> AreaTaps(int src_len, int out_len) {
  std::vector<AxisTap> taps(out_len);
  const double ratio = double(src_len) / out_len;
  for (int o = 0; o < out_len; ++o) {
    const double a = o * ratio, b = (o + 1) * ratio;
    const int first = int(std::floor(a));
    const int last = std::min(src_len - 1, int(std::ceil(b)) - 1);
    taps[o].first = first;
    for (int s = first; s <= last; ++s) {
      const double cover = std::min(b, double(s + 1)) - std::max(a, double(s));
      taps[o].weights.push_back(cover / ratio);
    }
  }
  return taps;
}

}  // namespace

void CropAndAreaScale(const uint8_t* src, int src_w, int src_h, uint8_t* dst, int out_w,
                      int out_h) {
  // Integer centre crop to out_w:out_h.
  int crop_w = src_w, crop_h = src_h;
  if (int64_t(src_w) * out_h > int64_t(src_h) * out_w)
    crop_w = int(std::lround(double(src_h) * out_w / out_h));
  else
    crop_h = int(std::lround(double(src_w) * out_h / out_w));
  crop_w = std::clamp(crop_w, 1, src_w);
  crop_h = std::clamp(crop_h, 1, src_h);
  const int x0 = (src_w - crop_w) / 2, y0 = (src_h - crop_h) / 2;
  const std::vector<AxisTap> tx = AreaTaps(crop_w, out_w), ty = AreaTaps(crop_h, out_h);
  // Horizontal pass over the cropped rows, then vertical.
  std::vector<double> rows(size_t(crop_h) * out_w * 3);
  for (int y = 0; y < crop_h; ++y) {
    const uint8_t* row = src + (size_t(y0 + y) * src_w + x0) * 3;
    for (int ox = 0; ox < out_w; ++ox) {
      double acc[3] = {0, 0, 0};
      const AxisTap& t = tx[ox];
      for (size_t k = 0; k < t.weights.size(); ++k)
        for (int ch = 0; ch < 3; ++ch) acc[ch] += t.weights[k] * row[(t.first + k) * 3 + ch];
      for (int ch = 0; ch < 3; ++ch) rows[(size_t(y) * out_w + ox) * 3 + ch] = acc[ch];
    }
  }
  for (int oy = 0; oy < out_h; ++oy) {
    const AxisTap& t = ty[oy];
    for (int ox = 0; ox < out_w; ++ox)
      for (int ch = 0; ch < 3; ++ch) {
        double acc = 0;
        for (size_t k = 0; k < t.weights.size(); ++k)
          acc += t.weights[k] * rows[((t.first + k) * out_w + ox) * 3 + ch];
        dst[(size_t(oy) * out_w + ox) * 3 + ch] = uint8_t(std::clamp(std::lround(acc), 0l, 255l));
      }
  }
}

std::vector<int> ResampleIndices(const std::vector<double>& ts, double fps) {
  // media/'s Resampler rule (DESIGN.md 2.5): ticks while t_k <= t_last, with
  // 1 us of slack for container time bases, ties to the earlier frame.
  constexpr double kEps = 1e-6;
  std::vector<int> out;
  if (ts.empty() || !(fps > 0)) return out;
  const double t0 = ts.front(), last = ts.back();
  size_t j = 0;  // the last frame at or before the tick
  for (int64_t k = 0;; ++k) {
    const double tick = t0 + double(k) / fps;
    if (tick > last + kEps) break;
    while (j + 1 < ts.size() && ts[j + 1] <= tick + kEps) ++j;
    size_t pick = j;
    if (j + 1 < ts.size() && ts[j + 1] - tick < tick - ts[j] - kEps) pick = j + 1;
    out.push_back(int(pick));
  }
  return out;
}

Clip ClipFromFrames(const uint8_t* rgb, int frames, int width, int height, double src_fps,
                    const ClipGeometry& g, const std::vector<int>& frame_labels) {
  std::vector<double> ts(frames);
  for (int f = 0; f < frames; ++f) ts[f] = f / src_fps;
  const std::vector<int> pick = ResampleIndices(ts, g.fps);
  Clip clip;
  clip.frames = int(pick.size());
  clip.height = g.height;
  clip.width = g.width;
  clip.rgb.resize(clip.frame_bytes() * clip.frames);
  const size_t src_frame = size_t(width) * height * 3;
  for (int i = 0; i < clip.frames; ++i) {
    CropAndAreaScale(rgb + src_frame * pick[i], width, height,
                     clip.rgb.data() + clip.frame_bytes() * i, g.width, g.height);
    if (!frame_labels.empty()) clip.frame_labels.push_back(frame_labels[pick[i]]);
  }
  return clip;
}

uint64_t SynthClipSeed(uint64_t seed, int label, int index) {
  return SplitMix(SplitMix(SplitMix(seed) ^ uint64_t(label)) ^ uint64_t(index));
}

uint64_t SynthStreamSeed(uint64_t seed, int index) {
  return SplitMix(SplitMix(SplitMix(seed) ^ 0x5354524541ull) ^ uint64_t(index));
}

std::vector<Clip> MakeSynthData(const SynthDataSpec& spec, const ClipGeometry& g) {
  if (spec.clips_per_class < 0 || spec.streams < 0)
    throw std::invalid_argument("synthetic data: clips_per_class and streams must be >= 0");
  if (g.width < 8 || g.height < 8 || !(g.fps > 0))
    throw std::invalid_argument("synthetic data: bad model geometry");
  synth::RenderOptions ro;
  ro.width = spec.source_width;
  ro.height = spec.source_height;
  ro.fps = spec.source_fps;
  ro.difficulty = spec.difficulty;
  if (std::string e = synth::CheckRenderOptions(ro); !e.empty())
    throw std::invalid_argument("synthetic data: " + e);
  std::vector<int> labels = spec.labels;
  if (labels.empty())
    for (int l = 0; l < synth::kNumClasses; ++l) labels.push_back(l);
  for (int l : labels)
    if (l < 0 || l >= synth::kNumClasses)
      throw std::invalid_argument("synthetic data: label " + std::to_string(l) + " outside 0..26");
  const int n_clips = spec.clips_per_class * int(labels.size());
  std::vector<Clip> out(size_t(n_clips) + spec.streams);
  ParallelFor(int(out.size()), spec.threads, [&](int i) {
    if (i < n_clips) {
      const int label = labels[i / spec.clips_per_class], index = i % spec.clips_per_class;
      const uint64_t seed = SynthClipSeed(spec.seed, label, index);
      synth::RenderedClip r = synth::RenderClip(label, seed, ro);
      Clip c = ClipFromFrames(r.rgb.data(), r.frames, r.width, r.height, r.fps, g);
      c.id = "synth-" + std::to_string(seed);
      c.label = label;
      out[i] = std::move(c);
    } else {
      const uint64_t seed = SynthStreamSeed(spec.seed, i - n_clips);
      synth::StreamOptions so;
      so.width = spec.source_width;
      so.height = spec.source_height;
      so.fps = spec.source_fps;
      so.gestures = spec.gestures_per_stream;
      so.difficulty = spec.difficulty;
      synth::RenderedStream r = synth::RenderStream(seed, so);
      Clip c = ClipFromFrames(r.rgb.data(), r.frames, r.width, r.height, r.fps, g, r.frame_labels);
      c.id = "stream-" + std::to_string(seed);
      c.label = -1;
      out[i] = std::move(c);
    }
  });
  return out;
}

std::vector<int> StepLabels(const Clip& clip, int start, int frames, int steps, int no_gesture,
                            int hold_frames) {
  std::vector<int> labels(steps, clip.label);
  if (clip.frame_labels.empty()) return labels;
  for (int s = 0; s < steps; ++s) {
    int f = start + ((s + 1) * frames) / steps - 1;  // the step's last frame
    f = std::clamp(f, 0, clip.frames - 1);
    int label = no_gesture;
    for (int back = 0; back <= hold_frames && f - back >= 0; ++back) {
      const int l = clip.frame_labels[f - back];
      if (l != no_gesture) {
        label = l;
        break;
      }
    }
    labels[s] = label;
  }
  return labels;
}

Window CutWindow(const Clip& clip, int start, int frames, int steps, int no_gesture,
                 int hold_frames, int real_limit) {
  Window w;
  const size_t fb = clip.frame_bytes();
  w.rgb.resize(fb * frames);
  int real = std::clamp(clip.frames - start, 0, frames);
  if (real_limit > 0) real = std::min(real, real_limit);
  if (real == 0) real = 1, start = std::max(0, clip.frames - 1);
  w.real_frames = real;
  for (int f = 0; f < frames; ++f) {
    const int src = start + std::min(f, real - 1);
    std::copy_n(clip.frame(src), fb, w.rgb.data() + fb * f);
  }
  w.step_labels = StepLabels(clip, start, frames, steps, no_gesture, hold_frames);
  return w;
}

int CentreStart(const Clip& clip, int frames) {
  return clip.frames > frames ? (clip.frames - frames) / 2 : 0;
}

}  // namespace billnet::trainer
