// The fast integer path (S3-S5) next to the reference, BILLNET 2x, batch 1,
// one thread, random weights: whole window per stage, then per layer (each
// convolution of the plan through its fast kernel and through the reference
// kernel, with MACs/s), for every fast kernel variant this CPU supports
// (kernels/fast/isa.h: "variant" 0 reference, 1 portable, 2 avx2, 3 avx512; an
// unsupported variant is skipped). Run (docs/performance.md has the full command):
//   build/bench/engine_fast_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
// Figures from one run only compare with each other (docs/performance.md).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "billnet/model.h"
#include "billnet/session.h"
#include "kernels/fast/isa.h"
#include "layer_kernels.h"

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

// variant: 0 reference, 1 fast portable, 2 fast avx2, 3 fast avx512 (isa.h).
FastIsa VariantIsa(int64_t variant) {
  return variant == 3 ? FastIsa::kAvx512 : variant == 2 ? FastIsa::kAvx2 : FastIsa::kPortable;
}
bool VariantSupported(int64_t variant) {
  return variant == 0 || FastIsaSupported(VariantIsa(variant));
}

// range(0): stage 3..5; range(1): the variant.
void BM_Window(benchmark::State& state) {
  const Stage stage = Stage(state.range(0));
  const KernelChoice choice = state.range(1) ? KernelChoice::kFast : KernelChoice::kReference;
  if (!VariantSupported(state.range(1))) {
    state.SkipWithError("variant not supported on this CPU");
    return;
  }
  auto model = Billnet2xModel(stage);
  if (!model) {
    state.SkipWithError("cannot build the model");
    return;
  }
  // The session's runner reads BILLNET_FAST_ISA once, when it is built.
  if (state.range(1)) setenv("BILLNET_FAST_ISA", FastIsaName(VariantIsa(state.range(1))), 1);
  Session session(model, choice);
  std::vector<uint8_t> window(model->window_bytes());
  for (size_t i = 0; i < window.size(); ++i) window[i] = uint8_t(i * 2654435761u >> 24);
  Response r;
  for (auto _ : state) {
    Status s = session.Run(window.data(), window.size(), &r);
    benchmark::DoNotOptimize(r.scores.data());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetLabel(std::string(StageName(stage)) + " " + session.kernels() +
                 (state.range(1) ? std::string("/") + FastIsaName(FastIsaFromEnvironment()) : ""));
  state.counters["windows/s"] =
      benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Window)
    ->ArgsProduct({{3, 4, 5}, {0, 1, 2, 3}})
    ->ArgNames({"stage", "variant"})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

// S5 with the caches cold, as in the server, where other streams' decoding
// and other windows run between two windows of one core: before each timed
// window (outside the timing) the thread writes range(1) MiB of other data,
// and each window is a different one of 8. range(0): the variant; 0 MiB is
// the warm case of BM_Window with 8 windows. docs/performance.md compares
// them with the kernels' time inside the server.
void BM_WindowCold(benchmark::State& state) {
  if (!VariantSupported(state.range(0)) || state.range(0) == 0) {
    state.SkipWithError("variant not supported on this CPU");
    return;
  }
  // BILLNET_BENCH_MODEL=FILE: a trained S5 model file instead of random
  // weights (the kernels a layer gets can depend on its weights).
  std::shared_ptr<const Model> model;
  std::string source = "random weights";
  if (const char* path = std::getenv("BILLNET_BENCH_MODEL"); path && *path) {
    auto loaded = Model::LoadFile(path);
    if (!loaded.ok()) {
      state.SkipWithError(loaded.status().ToString().c_str());
      return;
    }
    model = *loaded;
    source = path;
  } else {
    model = Billnet2xModel(Stage::kS5);
  }
  if (!model) {
    state.SkipWithError("cannot build the model");
    return;
  }
  setenv("BILLNET_FAST_ISA", FastIsaName(VariantIsa(state.range(0))), 1);
  Session session(model, KernelChoice::kFast);
  constexpr int kWindows = 8;
  std::vector<std::vector<uint8_t>> windows(kWindows, std::vector<uint8_t>(model->window_bytes()));
  for (int w = 0; w < kWindows; ++w)
    for (size_t i = 0; i < windows[w].size(); ++i)
      windows[w][i] = uint8_t((i + 7919 * w) * 2654435761u >> 24);
  std::vector<uint8_t> other(size_t(state.range(1)) << 20);
  Response r;
  int next = 0;
  uint8_t stamp = 0;
  for (auto _ : state) {
    state.PauseTiming();
    ++stamp;
    for (size_t i = 0; i < other.size(); i += 64) other[i] = stamp;
    benchmark::ClobberMemory();
    state.ResumeTiming();
    const std::vector<uint8_t>& window = windows[next];
    next = (next + 1) % kWindows;
    Status s = session.Run(window.data(), window.size(), &r);
    benchmark::DoNotOptimize(r.scores.data());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetLabel(std::string(StageName(model->info().stage)) + " " + session.kernels() + "/" +
                 FastIsaName(FastIsaFromEnvironment()) + ", " + std::to_string(state.range(1)) +
                 " MiB between windows, " + source);
}
BENCHMARK(BM_WindowCold)
    ->ArgsProduct({{1, 2, 3}, {0, 4, 64}})
    ->ArgNames({"variant", "mib_between"})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

// One window (batch 1) or a batch of windows of distinct streams with a pool
// of range(1) helper threads: wall time, since the work spreads over threads.
// range(0): the batch size.
void BM_Threads(benchmark::State& state) {
  const int batch = int(state.range(0)), helpers = int(state.range(1));
  auto model = Billnet2xModel(Stage::kS5);
  if (!model) {
    state.SkipWithError("cannot build the model");
    return;
  }
  ThreadPool pool(helpers);
  std::vector<Session> sessions;
  for (int i = 0; i < batch; ++i) sessions.emplace_back(model, KernelChoice::kFast);
  std::vector<Session*> ss;
  for (Session& s : sessions) ss.push_back(&s);
  std::vector<uint8_t> window(model->window_bytes());
  for (size_t i = 0; i < window.size(); ++i) window[i] = uint8_t(i * 2654435761u >> 24);
  std::vector<const uint8_t*> ws(batch, window.data());
  std::vector<Response> r(batch);
  for (auto _ : state) {
    Status s = RunBatch(ss.data(), ws.data(), batch, r.data(), &pool);
    benchmark::DoNotOptimize(r[0].scores.data());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetLabel(std::string("S5 ") + KernelVariant());
  state.counters["windows/s"] =
      benchmark::Counter(double(state.iterations()) * batch, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Threads)
    ->ArgsProduct({{1, 8}, {0, 1}})
    ->ArgNames({"batch", "helpers"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

// ---------------------------------------------------------------- per layer

const TopologyPlan& Plan2x() {
  static const TopologyPlan plan = *BuildPlan(Billnet2x());
  return plan;
}

// range(0): index into the plan's convolutions; range(1): the variant.
// The layer setup is bench/layer_kernels.h (shared with billnet-bench).
void BM_Layer(benchmark::State& state) {
  if (!VariantSupported(state.range(1))) {
    state.SkipWithError("variant not supported on this CPU");
    return;
  }
  const auto layers = bench::PlanConvs(Plan2x());
  bench::LayerKernel layer(layers[state.range(0)], state.range(1) != 0, 3,
                           VariantIsa(state.range(1)));
  for (auto _ : state) {
    layer.Run();
    benchmark::DoNotOptimize(layer.output());
  }
  const ConvSpec& c = layer.conv();
  state.SetLabel(c.name + " " + layer.kernel());
  state.counters["MACs/s"] = benchmark::Counter(double(c.macs()) * double(state.iterations()),
                                                benchmark::Counter::kIsRate);
}

void LayerArgs(benchmark::internal::Benchmark* b) {
  const int n = int(bench::PlanConvs(Plan2x()).size());
  for (int i = 0; i < n; ++i)
    for (int variant : {0, 1, 2, 3}) b->Args({i, variant});
}
BENCHMARK(BM_Layer)
    ->Apply(LayerArgs)
    ->ArgNames({"layer", "variant"})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.2);

}  // namespace
}  // namespace billnet

BENCHMARK_MAIN();
