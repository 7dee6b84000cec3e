// The resampling rule of DESIGN.md 2.5 on hand-made timestamp sequences, a
// brute-force reference on random variable-rate sequences, bad timestamps,
// and export/restore of the phase; the Windower.
#include "billnet/media/resampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "billnet/media/windower.h"

namespace billnet::media {
namespace {

// Runs the resampler over `ts` starting at `from`; returns, per tick, the
// index (into ts) of the frame it took. Dropped frames are never taken.
struct ResampleRun {
  std::vector<int> taken;
  int64_t dropped = 0;
  Status status;
};

ResampleRun Resample(const std::vector<double>& ts, double fps, Resampler* r = nullptr,
                     size_t from = 0, int previous_index = -1) {
  Resampler local(fps);
  if (r == nullptr) r = &local;
  ResampleRun run;
  int previous = previous_index;
  const int64_t base = r->phase().next_tick;
  for (size_t i = from; i < ts.size(); ++i) {
    StatusOr<Resampler::Step> step = r->Push(ts[i]);
    if (!step.ok()) {
      run.status = step.status();
      break;
    }
    using Kind = Resampler::Step::Kind;
    if (step->kind == Kind::kDropped || step->kind == Kind::kSkipped) continue;
    if (step->kind == Kind::kAdopted) {
      previous = static_cast<int>(i);
      continue;
    }
    EXPECT_EQ(step->first_tick, base + static_cast<int64_t>(run.taken.size()));
    for (int64_t k = 0; k < step->previous_ticks; ++k) {
      run.taken.push_back(previous >= 0 ? previous : static_cast<int>(i));
    }
    for (int64_t k = 0; k < step->current_ticks; ++k) run.taken.push_back(static_cast<int>(i));
    previous = static_cast<int>(i);
  }
  run.dropped = r->dropped();
  return run;
}

// The rule, literally: for every tick t0 + k/fps <= t_last, the nearest
// frame, ties to the earlier.
std::vector<int> BruteForce(const std::vector<double>& ts, double fps) {
  std::vector<int> out;
  if (ts.empty()) return out;
  for (int64_t k = 0;; ++k) {
    const double tick = ts[0] + k / fps;
    if (tick > ts.back() + Resampler::kEpsilon) break;
    int best = 0;
    for (size_t i = 1; i < ts.size(); ++i) {
      if (std::fabs(ts[i] - tick) < std::fabs(ts[best] - tick) - Resampler::kEpsilon) {
        best = static_cast<int>(i);
      }
    }
    out.push_back(best);
  }
  return out;
}

std::vector<double> ConstantRate(int frames, double fps, double start = 0) {
  std::vector<double> ts(frames);
  for (int i = 0; i < frames; ++i) ts[i] = start + i / fps;
  return ts;
}

TEST(Resampler, Jester12To6TakesEveryOtherFrame) {
  const ResampleRun run = Resample(ConstantRate(36, 12), 6);
  ASSERT_EQ(run.taken.size(), 18u);
  for (int k = 0; k < 18; ++k) EXPECT_EQ(run.taken[k], 2 * k);
  // 35 frames: the last tick (17/6 = 2.833) is the last frame.
  EXPECT_EQ(Resample(ConstantRate(35, 12), 6).taken.size(), 18u);
  EXPECT_EQ(Resample(ConstantRate(34, 12), 6).taken.size(), 17u);
}

TEST(Resampler, ThirtyTo6TakesEveryFifthFrame) {
  const ResampleRun run = Resample(ConstantRate(90, 30, 1.4), 6);  // MPEG-TS-like start
  ASSERT_EQ(run.taken.size(), 18u);
  for (int k = 0; k < 18; ++k) EXPECT_EQ(run.taken[k], 5 * k);
}

TEST(Resampler, TwentyFiveTo6BreaksTiesToTheEarlierFrame) {
  const std::vector<double> ts = ConstantRate(75, 25);
  const ResampleRun run = Resample(ts, 6);
  ASSERT_EQ(run.taken.size(), 18u);  // t_last = 2.96 s -> ticks 0..17
  // Tick k is at 25k/6 source frames; k = 3 (12.5) and 9 (37.5), 15 (62.5)
  // are exact ties.
  const std::vector<int> want = {0,  4,  8,  12, 17, 21, 25, 29, 33,
                                 37, 42, 46, 50, 54, 58, 62, 67, 71};
  EXPECT_EQ(run.taken, want);
  EXPECT_EQ(run.taken, BruteForce(ts, 6));
}

TEST(Resampler, ExplicitTies) {
  // Ticks at 0, 0.25, 0.5; frames every 0.1 s: 0.25 is midway between 0.2
  // and 0.3 and takes 0.2.
  const ResampleRun run = Resample({0.0, 0.1, 0.2, 0.3, 0.4, 0.5}, 4);
  EXPECT_EQ(run.taken, (std::vector<int>{0, 2, 5}));
}

TEST(Resampler, UpsamplingRepeatsFrames) {
  // 2 fps source to 6 fps: each source frame serves the ticks nearest to it.
  const ResampleRun run = Resample({0.0, 0.5, 1.0}, 6);
  // Ticks 0, 1/6, ..., 1: nearest frames 0, 0, 0.5, 0.5, 0.5, 1, 1.
  EXPECT_EQ(run.taken, (std::vector<int>{0, 0, 1, 1, 1, 2, 2}));
  EXPECT_EQ(run.taken, BruteForce({0.0, 0.5, 1.0}, 6));
}

TEST(Resampler, SingleFrameGivesOneTick) {
  const ResampleRun run = Resample({3.25}, 6);
  EXPECT_EQ(run.taken, (std::vector<int>{0}));
}

TEST(Resampler, VariableFrameRateWithJitterMatchesTheRule) {
  for (uint32_t seed = 1; seed <= 50; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> jitter(-0.006, 0.006);
    std::uniform_real_distribution<double> rate(8, 40);
    const double fps_in = rate(rng);
    std::vector<double> ts;
    double t = 0.3;
    for (int i = 0; i < 80; ++i) {
      ts.push_back(t + jitter(rng));
      t += 1 / fps_in;
      if (i > 0 && ts[i] <= ts[i - 1] + 1e-3) ts[i] = ts[i - 1] + 1e-3;
    }
    const ResampleRun run = Resample(ts, 6);
    ASSERT_EQ(run.taken, BruteForce(ts, 6)) << "seed " << seed << " fps " << fps_in;
  }
}

TEST(Resampler, GapIsFilledFromBothSides) {
  // 30 fps for 1 s, nothing until 3 s, then 30 fps again.
  std::vector<double> ts = ConstantRate(30, 30);
  for (int i = 0; i < 30; ++i) ts.push_back(3.0 + i / 30.0);
  const ResampleRun run = Resample(ts, 6);
  EXPECT_EQ(run.taken, BruteForce(ts, 6));
  // The gap's midpoint is 1.983 s: ticks 1.0 .. 1.833 take 0.967 s (index
  // 29), ticks 2.0 .. 3.0 take 3.0 s (index 30).
  EXPECT_EQ(run.taken[6], 29);
  EXPECT_EQ(run.taken[11], 29);
  EXPECT_EQ(run.taken[12], 30);
  EXPECT_EQ(run.taken[17], 30);
  EXPECT_EQ(run.taken[18], 30);
}

TEST(Resampler, DropsNonIncreasingAndNonFiniteTimestamps) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Resampler r(6);
  const std::vector<double> ts = {0.0, 0.1, 0.1, 0.05, nan, 0.2, 0.3, 0.3 + 1e-7, 0.4};
  const ResampleRun run = Resample(ts, 6, &r);
  EXPECT_EQ(run.dropped, 4);
  // The clean sequence 0, 0.1, 0.2, 0.3, 0.4: ticks 0, 1/6 (0.2), 2/6 (0.3).
  EXPECT_EQ(run.taken, (std::vector<int>{0, 5, 6}));
}

TEST(Resampler, LargeJumpIsAnError) {
  Resampler r(6, ResamplerOptions{.max_gap_s = 5});
  ASSERT_TRUE(r.Push(0).ok());
  ASSERT_TRUE(r.Push(4.9).ok());
  StatusOr<Resampler::Step> s = r.Push(100);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("jump"), std::string::npos);
  EXPECT_FALSE(Resampler(0).Push(0).ok());
  EXPECT_FALSE(Resampler(-6).Push(0).ok());
}

TEST(Resampler, RestoredPhaseContinuesExactly) {
  // Several rates and split points; the resumed run starts from a "key
  // frame" at or before the last taken frame, or exactly at it.
  for (double fps_in : {5.0, 12.0, 25.0, 29.97, 30.0}) {
    std::mt19937 rng(static_cast<uint32_t>(fps_in * 100));
    std::uniform_real_distribution<double> jitter(-0.004, 0.004);
    std::vector<double> ts;
    for (int i = 0; i < 120; ++i) ts.push_back(0.7 + i / fps_in + (fps_in == 12 ? jitter(rng) : 0));
    const std::vector<int> full = Resample(ts, 6).taken;
    for (int window_end : {4, 8, 16}) {
      if (window_end >= static_cast<int>(full.size())) continue;
      // Feed until `window_end` ticks are decided, export.
      Resampler first(6);
      size_t fed = 0;
      while (first.phase().next_tick < window_end) ASSERT_TRUE(first.Push(ts[fed++]).ok());
      // The window ends at tick window_end - 1; ticks beyond it that the same
      // push decided are not covered.
      ResamplerPhase phase = first.phase();
      phase.next_tick = window_end;
      phase.last_taken_ts = ts[full[window_end - 1]];
      for (int back : {0, 1, 3}) {
        const int resume_from = std::max(0, full[window_end - 1] - back);
        Resampler second(6);
        ASSERT_TRUE(second.Restore(phase).ok());
        const ResampleRun rest = Resample(ts, 6, &second, resume_from, -1);
        std::vector<int> want(full.begin() + window_end, full.end());
        EXPECT_EQ(rest.taken, want)
            << "fps " << fps_in << " window_end " << window_end << " back " << back;
        EXPECT_EQ(second.skipped(), full[window_end - 1] - resume_from);
      }
    }
  }
}

TEST(Resampler, RestoreRejectsNonsense) {
  Resampler r(6);
  ResamplerPhase p;
  p.started = true;
  p.next_tick = -1;
  EXPECT_FALSE(r.Restore(p).ok());
  p.next_tick = 3;
  p.t0 = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(r.Restore(p).ok());
  p.t0 = 5;
  p.last_taken_ts = 1;
  EXPECT_FALSE(r.Restore(p).ok());
}

std::vector<uint8_t> Solid(int h, int w, uint8_t v) {
  return std::vector<uint8_t>(static_cast<size_t>(h) * w * 3, v);
}

TEST(Windower, CutsFullWindowsAndPadsTheTail) {
  Windower w(16, 2, 3);
  std::vector<Window> out;
  for (int i = 0; i < 40; ++i) {
    const std::vector<uint8_t> f = Solid(2, 3, static_cast<uint8_t>(i));
    if (auto win = w.Add(f.data(), 10.0 + i * 0.5)) out.push_back(std::move(*win));
  }
  EXPECT_EQ(w.pending(), 8);
  if (auto win = w.Finish()) out.push_back(std::move(*win));
  ASSERT_EQ(out.size(), 3u);
  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(out[s].sequence, s);
    EXPECT_EQ(out[s].frames, 16);
    EXPECT_EQ(out[s].rgb.size(), 16u * 2 * 3 * 3);
    EXPECT_DOUBLE_EQ(out[s].first_source_ts, 10.0 + 16 * s * 0.5);
  }
  EXPECT_FALSE(out[1].padded);
  EXPECT_EQ(out[1].real_frames, 16);
  EXPECT_DOUBLE_EQ(out[1].last_source_ts, 10.0 + 31 * 0.5);
  EXPECT_TRUE(out[2].padded);
  EXPECT_EQ(out[2].real_frames, 8);
  EXPECT_DOUBLE_EQ(out[2].last_source_ts, 10.0 + 39 * 0.5);
  EXPECT_EQ(out[2].source_ts.size(), 8u);
  // Frames 8..15 of the padded window repeat frame 7 (source frame 39).
  const size_t fb = out[2].frame_bytes();
  for (int f = 0; f < 16; ++f) {
    EXPECT_EQ(out[2].rgb[f * fb], f < 8 ? 32 + f : 39) << f;
  }
  EXPECT_FALSE(w.Finish().has_value());
}

TEST(Windower, ShortStreamAndEmptyStream) {
  Windower w(16, 1, 1, /*first_sequence=*/7);
  EXPECT_FALSE(w.Finish().has_value());  // nothing: no window
  const std::vector<uint8_t> f = Solid(1, 1, 9);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(w.Add(f.data(), i).has_value());
  auto win = w.Finish();
  ASSERT_TRUE(win.has_value());
  EXPECT_EQ(win->sequence, 7);
  EXPECT_TRUE(win->padded);
  EXPECT_EQ(win->real_frames, 5);
  EXPECT_EQ(w.next_sequence(), 8);
  // Exactly full windows: Finish adds nothing.
  Windower w2(4, 1, 1);
  for (int i = 0; i < 8; ++i) w2.Add(f.data(), i);
  EXPECT_FALSE(w2.Finish().has_value());
  EXPECT_EQ(w2.next_sequence(), 2);
}

}  // namespace
}  // namespace billnet::media
