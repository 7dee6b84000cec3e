// The fast integer path (S3-S5) next to the reference, BILLNET 2x, batch 1,
// one thread, random weights: whole window per stage, then per layer (each
// convolution of the plan through its fast kernel and through the reference
// kernel, with MACs/s). Run (docs/performance.md has the full command):
//   build/bench/engine_fast_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
// Figures from one run only compare with each other (docs/performance.md).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "billnet/model.h"
#include "billnet/session.h"
#include "kernels/fast/bitpack.h"
#include "kernels/fast/fast_kernels.h"
#include "kernels/reference.h"
#include "rng.h"

namespace billnet {
namespace {

std::shared_ptr<const Model> Billnet2xModel(Stage stage) {
  static std::shared_ptr<const Model> cache[6];
  auto& m = cache[int(stage)];
  if (!m) {
    auto plan = BuildPlan(Billnet2x());
    ModelInfo info;
    info.stage = stage;
    info.labels = JesterLabels();
    auto loaded = Model::FromParts(info, RandomWeights(*plan, stage, 1));
    if (loaded.ok()) m = *loaded;
  }
  return m;
}

// range(0): stage 3..5; range(1): 0 reference, 1 fast.
void BM_Window(benchmark::State& state) {
  const Stage stage = Stage(state.range(0));
  const KernelChoice choice = state.range(1) ? KernelChoice::kFast : KernelChoice::kReference;
  auto model = Billnet2xModel(stage);
  if (!model) {
    state.SkipWithError("cannot build the model");
    return;
  }
  Session session(model, choice);
  std::vector<uint8_t> window(model->window_bytes());
  for (size_t i = 0; i < window.size(); ++i) window[i] = uint8_t(i * 2654435761u >> 24);
  Response r;
  for (auto _ : state) {
    Status s = session.Run(window.data(), window.size(), &r);
    benchmark::DoNotOptimize(r.scores.data());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetLabel(std::string(StageName(stage)) + " " + session.kernels());
  state.counters["windows/s"] =
      benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Window)
    ->ArgsProduct({{3, 4, 5}, {0, 1}})
    ->ArgNames({"stage", "fast"})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

// ---------------------------------------------------------------- per layer

struct LayerRef {
  const ConvSpec* conv;
  int role;  // 0 stem / grouped (int16 taps), 1 first pointwise (bits), 2 second pointwise
};

std::vector<LayerRef> Layers(const TopologyPlan& plan) {
  std::vector<LayerRef> out;
  for (const auto& b : plan.blocks)
    for (size_t i = 0; i < b.convs.size(); ++i)
      out.push_back({&b.convs[i], b.kind == BlockKind::kStem ? 0
                                  : i % 3 == 0               ? 1
                                  : i % 3 == 1               ? 0
                                                             : 2});
  return out;
}

const TopologyPlan& Plan2x() {
  static const TopologyPlan plan = *BuildPlan(Billnet2x());
  return plan;
}

// range(0): index into the plan's convolutions; range(1): 0 reference, 1 fast.
void BM_Layer(benchmark::State& state) {
  const auto layers = Layers(Plan2x());
  const LayerRef& l = layers[state.range(0)];
  const ConvSpec& c = *l.conv;
  const bool fast = state.range(1) != 0;
  Rng rng(3);
  const int cig = c.ci / c.groups;
  // Inputs in the layer's range (DESIGN.md 2.1); +-1 weights.
  const int32_t range = l.role == 0 && c.ci == 3 ? 255 : c.ci * 2;
  std::vector<int8_t> w(c.weight_count());
  for (auto& v : w) v = rng.Below(2) ? 1 : -1;
  std::vector<int32_t> in32(c.in.elements());
  std::vector<uint8_t> in8(c.in.elements());
  for (size_t i = 0; i < in32.size(); ++i) {
    in8[i] = uint8_t(rng.Below(2));
    in32[i] =
        l.role == 2 ? int32_t(rng.Below(2001)) - 1000 : int32_t(rng.Below(2 * range + 1)) - range;
  }
  std::vector<int32_t> out(c.out.elements());
  std::string kernel;
  if (!fast) {
    kernel = "Conv3dReference";
    for (auto _ : state) {
      if (l.role == 1)
        Conv3dReference(c, in8.data(), w.data(), out.data());
      else
        Conv3dReference(c, in32.data(), w.data(), out.data());
      benchmark::DoNotOptimize(out.data());
    }
  } else if (l.role == 0) {
    kernel = "ConvRowInt16Portable";
    const Shape4 ps = PaddedInputShape(c);
    std::vector<int16_t> padded(ps.elements(), 0);
    for (int t = 0; t < c.in.t; ++t)
      for (int y = 0; y < c.in.h; ++y)
        for (int x = 0; x < c.in.w; ++x)
          for (int k = 0; k < c.ci; ++k)
            padded[((int64_t(t + c.pt) * ps.h + y + c.ph) * ps.w + x + c.pw) * c.ci + k] =
                int16_t(in32[((int64_t(t) * c.in.h + y) * c.in.w + x) * c.ci + k]);
    const int k = c.kt * c.kh * c.kw * cig, kpad = ConvRowLength(k);
    std::vector<int16_t> rows(int64_t(c.co) * kpad, 0), col(int64_t(c.groups) * kpad, 0);
    for (int o = 0; o < c.co; ++o)
      for (int j = 0; j < k; ++j) rows[int64_t(o) * kpad + j] = w[int64_t(o) * k + j];
    for (auto _ : state) {
      for (int t = 0; t < c.out.t; ++t)
        for (int y = 0; y < c.out.h; ++y)
          ConvRowInt16Portable(c, padded.data(), t, y, rows.data(), kpad, col.data(),
                               out.data() + (int64_t(t) * c.out.h + y) * c.out.w * c.co);
      benchmark::DoNotOptimize(out.data());
    }
  } else if (l.role == 1) {
    kernel = "PointwiseBinaryPortable";
    const int words = WordsFor(c.ci);
    std::vector<BitWord> bits(c.in.positions() * words), wpos(int64_t(c.co) * words, 0);
    PackBitsPortable(c.in.positions(), c.ci, in8.data(), bits.data());
    for (int o = 0; o < c.co; ++o)
      for (int i = 0; i < c.ci; ++i)
        if (w[int64_t(o) * c.ci + i] > 0)
          wpos[int64_t(o) * words + i / 64] |= BitWord(1) << (i % 64);
    std::vector<int16_t> out16(c.out.elements());
    for (auto _ : state) {
      PointwiseBinaryPortable(c.in.positions(), words, bits.data(), c.co, wpos.data(), out16.data(),
                              c.co);
      benchmark::DoNotOptimize(out16.data());
    }
  } else {
    kernel = "PointwiseInt32Portable";
    std::vector<int32_t> mask(w.size());
    for (size_t i = 0; i < w.size(); ++i) mask[i] = w[i] > 0 ? -1 : 0;
    for (auto _ : state) {
      PointwiseInt32Portable(c.in.positions(), c.ci, in32.data(), c.co, mask.data(), out.data());
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetLabel(c.name + " " + kernel);
  state.counters["MACs/s"] = benchmark::Counter(double(c.macs()) * double(state.iterations()),
                                                benchmark::Counter::kIsRate);
}

void LayerArgs(benchmark::internal::Benchmark* b) {
  const int n = int(Layers(Plan2x()).size());
  for (int i = 0; i < n; ++i)
    for (int fast : {0, 1}) b->Args({i, fast});
}
BENCHMARK(BM_Layer)
    ->Apply(LayerArgs)
    ->ArgNames({"layer", "fast"})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.2);

}  // namespace
}  // namespace billnet

BENCHMARK_MAIN();
