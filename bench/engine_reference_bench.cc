// Time per window of the scalar reference engine, BILLNET 2x, per stage, one
// thread. Run: build/bench/engine_reference_bench
#include <benchmark/benchmark.h>

#include "billnet/model.h"
#include "billnet/session.h"

namespace billnet {
namespace {

void BM_ReferenceWindow(benchmark::State& state) {
  const Stage stage = Stage(state.range(0));
  auto plan = BuildPlan(Billnet2x());
  ModelInfo info;
  info.stage = stage;
  info.labels = JesterLabels();
  auto model = Model::FromParts(info, RandomWeights(*plan, stage, 1));
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return;
  }
  Session session(*model);
  std::vector<uint8_t> window((*model)->window_bytes());
  for (size_t i = 0; i < window.size(); ++i) window[i] = uint8_t(i * 2654435761u >> 24);
  Response r;
  for (auto _ : state) {
    Status s = session.Run(window.data(), window.size(), &r);
    benchmark::DoNotOptimize(r.scores.data());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetLabel(std::string(StageName(stage)) + " " + KernelVariant());
  state.counters["windows/s"] = benchmark::Counter(double(state.iterations()),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReferenceWindow)->DenseRange(1, 5)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace
}  // namespace billnet

BENCHMARK_MAIN();
