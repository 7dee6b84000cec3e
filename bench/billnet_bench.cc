// billnet-bench: the whole model, per stage and batch size, one thread
// (issue 7 part 4; docs/performance.md "Whole model, roofline and libtorch").
//   - engine: S1-S2 on the reference float path, S3-S5 on the fast path,
//     random weights (RandomWeights, as `billnet-model random`), batch 1
//     (Session::Run) and batch N (RunBatch): CPU time per clip, clips/s/core;
//   - S5 per layer (each convolution alone, bench/layer_kernels.h) against a
//     roofline measured on this CPU (bench/roofline.h): `limit_fraction`;
//   - libtorch's float forward of the same topology (bench/torch_baseline.h):
//     `speedup_vs_libtorch`;
//   - with --threads N > 1, S3-S5 again on a billnet::ThreadPool of N - 1
//     helpers (rows split within a window, a batch's windows spread): wall
//     time per clip and clips/s, in their own table and JSON "threaded".
// Times are process CPU time (per core, robust to other load), medians of
// repetitions; wall times are reported beside them.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench_timer.h"
#include "billnet/cost.h"
#include "billnet/model.h"
#include "billnet/session.h"
#include "billnet/thread_pool.h"
#include "billnet/viz/charts.h"
#include "billnet/viz/png.h"
#include "layer_kernels.h"
#include "roofline.h"
#include "torch_baseline.h"

namespace billnet::bench {
namespace {

using Json = nlohmann::ordered_json;

struct Options {
  TopologyConfig topology = Billnet2x();
  std::vector<int> stages{1, 2, 3, 4, 5};
  std::vector<int> batches{1, 8};
  int repetitions = 5;
  int reference_repetitions = 3;  // S1-S2 (about 0.45 s per clip for BILLNET 2x)
  double min_time = 0.1;          // CPU seconds per repetition (at least one call)
  bool layers = true;
  bool libtorch = true;
  std::string isa;  // roofline ISA; "" = best
  std::string plot;
  uint64_t seed = 1;
  bool json = false;
  int threads = 1;       // > 1: also the threaded runs
  bool variants = true;  // S3-S5 also on every other kernel variant the CPU has
};

// Sets BILLNET_FAST_ISA for its lifetime (sessions read it when built), then
// restores it.
class ScopedFastIsa {
 public:
  explicit ScopedFastIsa(FastIsa isa) {
    if (const char* v = std::getenv("BILLNET_FAST_ISA")) old_ = v;
    setenv("BILLNET_FAST_ISA", FastIsaName(isa), 1);
  }
  ~ScopedFastIsa() {
    if (old_)
      setenv("BILLNET_FAST_ISA", old_->c_str(), 1);
    else
      unsetenv("BILLNET_FAST_ISA");
  }
  ScopedFastIsa(const ScopedFastIsa&) = delete;
  ScopedFastIsa& operator=(const ScopedFastIsa&) = delete;

 private:
  std::optional<std::string> old_;
};

std::string ReadFirst(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (key.empty() || line.rfind(key, 0) == 0) {
      const size_t colon = key.empty() ? std::string::npos : line.find(':');
      return colon == std::string::npos ? line
                                        : line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "";
}

Json MachineJson() {
  Json m;
  m["cpu"] = ReadFirst("/proc/cpuinfo", "model name");
  m["cores_online"] = sysconf(_SC_NPROCESSORS_ONLN);
  std::vector<std::string> features;
  __builtin_cpu_init();
#define FEATURE(f) \
  if (__builtin_cpu_supports(f)) features.push_back(f);
  FEATURE("avx2")
  FEATURE("avx512f")
  FEATURE("avx512bw")
  FEATURE("avx512vnni")
  FEATURE("avx512vpopcntdq")
  FEATURE("avx512vbmi")
  FEATURE("avxvnni")
#undef FEATURE
  m["features"] = features;
  m["load_average_at_start"] = ReadFirst("/proc/loadavg", "");
  return m;
}

// The BLAS libraries mapped into this process (libtorch calls whatever
// libblas.so.3 the alternatives system points to: DESIGN.md section 6).
std::vector<std::string> BlasLibrariesLoaded() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  std::vector<std::string> libs;
  while (std::getline(in, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.find("blas") != std::string::npos &&
        std::find(libs.begin(), libs.end(), path) == libs.end())
      libs.push_back(path);
  }
  return libs;
}

// The engine's kernel set for the integer stages: "reference", "fast/avx2"
// (the variant of kernels/fast/isa.h; BILLNET_FAST_ISA forces one) or, for
// the portable variant on x86-64 with GCC, the x86-64 level whose clone the
// loader picks (the same rule the ifunc resolver applies: the highest level
// the CPU supports).
std::string KernelName() {
  std::string k = KernelVariant();
  if (k != "fast") return k;
  const FastIsa isa = FastIsaFromEnvironment();
  if (isa != FastIsa::kPortable) return k + "/" + FastIsaName(isa);
  k += "/portable";
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return k + "/x86-64-v4";
  if (__builtin_cpu_supports("x86-64-v3")) return k + "/x86-64-v3";
  if (__builtin_cpu_supports("x86-64-v2")) return k + "/x86-64-v2";
  return k + "/x86-64";
#else
  return k;
#endif
}

ModelInfo Info(const TopologyConfig& topo, Stage stage) {
  ModelInfo info;
  info.name = "billnet-bench";
  info.stage = stage;
  info.topology = topo;
  if (topo.classes == 27) {
    info.labels = JesterLabels();
  } else {
    for (int i = 0; i < topo.classes; ++i) info.labels.push_back("class " + std::to_string(i));
  }
  return info;
}

struct StageResult {
  Stage stage;
  int batch = 1;
  int threads = 1;
  std::string kernels;
  Timing per_call;  // one call = `batch` clips
  double cpu_ms_per_clip() const { return 1e3 * per_call.cpu_s / batch; }
  double wall_ms_per_clip() const { return 1e3 * per_call.wall_s / batch; }
};

// Times whole windows of one stage at one batch size. Sessions use
// KernelChoice::kDefault, so BILLNET_KERNELS applies as in the server.
StatusOr<StageResult> RunStage(const TopologyPlan& plan, Stage stage, int batch, const Options& opt,
                               ThreadPool* pool = nullptr) {
  auto model = Model::FromParts(Info(plan.config, stage), RandomWeights(plan, stage, opt.seed));
  if (!model.ok()) return model.status();
  std::vector<Session> sessions;
  for (int i = 0; i < batch; ++i) sessions.emplace_back(*model);
  std::vector<Session*> session_ptrs;
  for (auto& s : sessions) session_ptrs.push_back(&s);
  const size_t bytes = (*model)->window_bytes();
  std::vector<std::vector<uint8_t>> windows(batch, std::vector<uint8_t>(bytes));
  std::vector<const uint8_t*> window_ptrs;
  uint32_t x = uint32_t(opt.seed) * 2654435761u + 1;
  for (auto& w : windows) {
    for (auto& v : w) v = uint8_t((x = x * 1664525u + 1013904223u) >> 24);
    window_ptrs.push_back(w.data());
  }
  std::vector<Response> responses(batch);
  Status status;
  auto call = [&] {
    Status s = batch == 1 ? sessions[0].Run(window_ptrs[0], bytes, &responses[0], nullptr, pool)
                          : RunBatch(session_ptrs.data(), window_ptrs.data(), size_t(batch),
                                     responses.data(), pool);
    if (!s.ok()) status = s;
  };
  call();  // first call: response vectors, caches
  if (!status.ok()) return status;
  const bool reference = stage <= Stage::kS2 || std::string(sessions[0].kernels()) == "reference";
  StageResult r;
  r.stage = stage;
  r.batch = batch;
  r.threads = pool ? pool->slots() : 1;
  r.kernels = sessions[0].kernels();
  r.per_call = TimeCalls(call, reference ? opt.reference_repetitions : opt.repetitions,
                         reference ? 0.0 : opt.min_time);
  if (!status.ok()) return status;
  return r;
}

struct LayerResult {
  LayerCost cost;
  bool has_op = false;
  RoofOp op = RoofOp::kInt32Add;
  std::string kernel;   // fast kernel timed ("" = not timed alone)
  double cpu_us = 0;    // measured, median (0 = not timed)
  double limit_us = 0;  // roofline lower bound
  // The same layer on every kernel variant (--variants): name -> (kernel, us).
  std::vector<std::pair<std::string, std::pair<std::string, double>>> by_variant;
};

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (size_t k = 0; k < rows.size(); ++k) {
    std::string line;
    for (size_t i = 0; i < rows[k].size(); ++i) {
      const bool left = i == 0;
      const std::string& s = rows[k][i];
      const std::string pad(width[i] - s.size(), ' ');
      line += (i ? "  " : "") + (left ? s + pad : pad + s);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
    if (k == 0) {
      size_t total = 0;
      for (size_t w : width) total += w + 2;
      std::printf("%s\n", std::string(total - 2, '-').c_str());
    }
  }
}

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string WritePlot(const std::string& path, const std::vector<LayerResult>& layers,
                      const std::string& title) {
  viz::Series measured{.name = "measured (fast kernel alone)"}, limit{.name = "roofline bound"};
  measured.markers = true;
  limit.markers = true;
  limit.dashed = true;
  int i = 0;
  std::string names;
  for (const auto& l : layers) {
    if (l.cpu_us <= 0) continue;
    measured.x.push_back(i);
    measured.y.push_back(l.cpu_us);
    limit.x.push_back(i);
    limit.y.push_back(l.limit_us);
    ++i;
  }
  viz::LineChartSpec spec;
  spec.width = 1100;
  spec.height = 520;
  spec.title = title;
  spec.x_title = "convolution, in execution order (stem, cf1.pw1, cf1.gconv, cf1.pw2, ...)";
  viz::Panel p;
  p.y_title = "CPU time per clip (us)";
  p.series = {measured, limit};
  p.y_min = 0;
  spec.panels = {p};
  const viz::Canvas canvas = viz::LineChart(spec);
  return viz::WritePng(path, canvas.data(), canvas.width(), canvas.height());
}

int Run(const Options& opt) {
  auto plan_or = BuildPlan(opt.topology);
  if (!plan_or.ok()) {
    std::fprintf(stderr, "billnet-bench: %s\n", plan_or.status().ToString().c_str());
    return 2;
  }
  const TopologyPlan& plan = *plan_or;
  const std::string kernel = KernelName();
  Json out;
  out["machine"] = MachineJson();
  out["kernel"] = kernel;
  out["topology"] = {{"base_channels", plan.config.base_channels},
                     {"groups", plan.config.groups},
                     {"lstm_units", plan.config.lstm_units},
                     {"classes", plan.config.classes},
                     {"tail_mor_blocks", plan.config.tail_mor_blocks},
                     {"frames", plan.config.frames},
                     {"height", plan.config.height},
                     {"width", plan.config.width}};
  out["clock"] = "process CPU time per clip, median of repetitions (wall time beside it)";
  out["threads"] = 1;
  out["repetitions"] = opt.repetitions;
  if (!opt.json) {
    std::printf("billnet-bench: %s, %d core(s) online, features:",
                out["machine"]["cpu"].get<std::string>().c_str(),
                int(sysconf(_SC_NPROCESSORS_ONLN)));
    for (const auto& f : out["machine"]["features"])
      std::printf(" %s", f.get<std::string>().c_str());
    std::printf("\nload average at start: %s\n",
                out["machine"]["load_average_at_start"].get<std::string>().c_str());
    std::printf(
        "topology n=%d g=%d lstm=%d classes=%d tail MORs=%d, input %dx%dx%dx3; kernels %s; one "
        "thread\n\n",
        plan.config.base_channels, plan.config.groups, plan.config.lstm_units, plan.config.classes,
        plan.config.tail_mor_blocks, plan.config.frames, plan.config.height, plan.config.width,
        kernel.c_str());
    std::fflush(stdout);
  }

  // ------------------------------------------------------------ engine stages
  std::vector<StageResult> stages;
  for (int s : opt.stages) {
    if (s < 1 || s > 5) {
      std::fprintf(stderr, "billnet-bench: --stages: %d is not a stage (1..5)\n", s);
      return 2;
    }
    for (int b : opt.batches) {
      if (b < 1 || b > 256) {
        std::fprintf(stderr, "billnet-bench: --batch: %d is not in [1, 256]\n", b);
        return 2;
      }
      auto r = RunStage(plan, Stage(s), b, opt);
      if (!r.ok()) {
        std::fprintf(stderr, "billnet-bench: stage s%d batch %d: %s\n", s, b,
                     r.status().ToString().c_str());
        return 1;
      }
      stages.push_back(*r);
    }
  }
  Json jstages = Json::array();
  std::vector<std::vector<std::string>> rows{
      {"stage", "batch", "kernels", "ms/clip (CPU)", "ms/clip (wall)", "clips/s/core", "GMAC/s"}};
  for (const auto& r : stages) {
    const CostReport cost = ComputeCost(plan, r.stage);
    int64_t macs = 0;
    for (const auto& l : cost.layers)
      if (l.kind != "norm") macs += l.macs;
    const double gmacs = double(macs) / (r.cpu_ms_per_clip() * 1e-3) * 1e-9;
    jstages.push_back({{"stage", StageName(r.stage)},
                       {"batch", r.batch},
                       {"kernels", r.kernels},
                       {"cpu_ms_per_clip", r.cpu_ms_per_clip()},
                       {"wall_ms_per_clip", r.wall_ms_per_clip()},
                       {"clips_per_s_per_core", 1e3 / r.cpu_ms_per_clip()},
                       {"macs_per_clip", macs},
                       {"gmacs_per_s", gmacs},
                       {"calls_timed", r.per_call.calls}});
    rows.push_back({StageName(r.stage), std::to_string(r.batch), r.kernels,
                    Fmt("%.2f", r.cpu_ms_per_clip()), Fmt("%.2f", r.wall_ms_per_clip()),
                    Fmt("%.1f", 1e3 / r.cpu_ms_per_clip()), Fmt("%.2f", gmacs)});
  }
  out["stages"] = jstages;
  if (!opt.json) {
    std::printf("Engine, whole window (%d frames), per stage and batch\n", plan.config.frames);
    PrintTable(rows);
    std::printf("\n");
    std::fflush(stdout);
  }

  // ------------------------------------------------------------ variants
  // The integer stages on every kernel variant this CPU has, in the same run
  // (the rows above are the variant the engine picks).
  const bool fast_kernels = KernelChoiceFromEnvironment() == KernelChoice::kFast;
  if (opt.variants && fast_kernels) {
    Json jvariants = Json::array();
    std::vector<std::vector<std::string>> vrows{
        {"stage", "batch", "variant", "ms/clip (CPU)", "clips/s/core", "vs default"}};
    for (FastIsa isa : SupportedFastIsas())
      for (int s : opt.stages) {
        if (s < 3) continue;  // S1-S2 run the reference kernels
        for (int b : opt.batches) {
          StatusOr<StageResult> r = [&] {
            ScopedFastIsa scoped(isa);
            return RunStage(plan, Stage(s), b, opt);
          }();
          if (!r.ok()) {
            std::fprintf(stderr, "billnet-bench: stage s%d batch %d, variant %s: %s\n", s, b,
                         FastIsaName(isa), r.status().ToString().c_str());
            return 1;
          }
          double dflt = 0;
          for (const auto& o : stages)
            if (o.stage == r->stage && o.batch == b) dflt = o.cpu_ms_per_clip();
          const double ratio = dflt > 0 ? r->cpu_ms_per_clip() / dflt : 0;
          jvariants.push_back({{"stage", StageName(r->stage)},
                               {"batch", b},
                               {"variant", std::string("fast/") + FastIsaName(isa)},
                               {"cpu_ms_per_clip", r->cpu_ms_per_clip()},
                               {"wall_ms_per_clip", r->wall_ms_per_clip()},
                               {"ratio_vs_default", ratio}});
          vrows.push_back({StageName(r->stage), std::to_string(b),
                           std::string("fast/") + FastIsaName(isa),
                           Fmt("%.2f", r->cpu_ms_per_clip()),
                           Fmt("%.1f", 1e3 / r->cpu_ms_per_clip()), Fmt("%.2f", ratio)});
        }
      }
    out["variants"] = jvariants;
    if (!opt.json) {
      std::printf(
          "Engine per kernel variant (S3-S5; \"vs default\": CPU time against the rows "
          "above, %s)\n",
          kernel.c_str());
      PrintTable(vrows);
      std::printf("\n");
      std::fflush(stdout);
    }
  }

  // ------------------------------------------------------------ threaded
  if (opt.threads > 1) {
    ThreadPool pool(opt.threads - 1);
    Json jthreaded = Json::array();
    std::vector<std::vector<std::string>> trows{
        {"stage", "batch", "threads", "ms/clip (wall)", "clips/s", "vs 1 thread (wall)"}};
    for (int s : opt.stages) {
      if (s < 3) continue;  // S1-S2 run the reference kernels, one thread
      for (int b : opt.batches) {
        auto r = RunStage(plan, Stage(s), b, opt, &pool);
        if (!r.ok()) {
          std::fprintf(stderr, "billnet-bench: stage s%d batch %d, %d threads: %s\n", s, b,
                       opt.threads, r.status().ToString().c_str());
          return 1;
        }
        double one = 0;
        for (const auto& o : stages)
          if (o.stage == r->stage && o.batch == b) one = o.wall_ms_per_clip();
        const double ratio = one > 0 ? r->wall_ms_per_clip() / one : 0;
        jthreaded.push_back({{"stage", StageName(r->stage)},
                             {"batch", b},
                             {"threads", r->threads},
                             {"wall_ms_per_clip", r->wall_ms_per_clip()},
                             {"clips_per_s", 1e3 / r->wall_ms_per_clip()},
                             {"wall_ratio_vs_one_thread", ratio}});
        trows.push_back({StageName(r->stage), std::to_string(b), std::to_string(r->threads),
                         Fmt("%.2f", r->wall_ms_per_clip()),
                         Fmt("%.1f", 1e3 / r->wall_ms_per_clip()), Fmt("%.2f", ratio)});
      }
    }
    out["threaded"] = jthreaded;
    if (!opt.json) {
      std::printf("Engine on %d threads (billnet::ThreadPool), wall time\n", opt.threads);
      PrintTable(trows);
      std::printf("\n");
      std::fflush(stdout);
    }
  }

  // ------------------------------------------------------------ roofline
  const std::vector<InstructionRate> rates = MeasureInstructionRates(opt.isa, opt.repetitions);
  Json jrates = Json::array();
  for (const auto& ir : rates)
    jrates.push_back({{"op", RoofOpName(ir.op)},
                      {"isa", ir.isa},
                      {"instruction", ir.instruction},
                      {"macs_per_group", ir.macs_per_group},
                      {"instructions_per_group", ir.instructions_per_group},
                      {"gmacs_per_s", ir.macs_per_s * 1e-9}});
  const CostReport s5_cost = ComputeCost(plan, Stage::kS5);
  const auto convs = PlanConvs(plan);
  std::vector<LayerResult> layers;
  double limit_us = 0;
  for (const auto& lc : s5_cost.layers) {
    LayerResult l;
    l.cost = lc;
    l.has_op = NarrowestOp(lc, &l.op);
    if (!l.has_op) continue;  // norms (elided in S5)
    l.limit_us = 1e6 * double(lc.macs) / rates[int(l.op)].macs_per_s;
    limit_us += l.limit_us;
    if (opt.layers)
      for (const auto& pc : convs)
        if (pc.conv->name == lc.name) {
          LayerKernel k(pc, true, opt.seed + 2, FastIsaFromEnvironment());
          const Timing t = TimeCalls([&] { k.Run(); }, opt.repetitions, 0.02);
          l.kernel = k.kernel();
          l.cpu_us = 1e6 * t.cpu_s;
          if (opt.variants && fast_kernels)
            for (FastIsa isa : SupportedFastIsas()) {
              LayerKernel kv(pc, true, opt.seed + 2, isa);
              const Timing tv = TimeCalls([&] { kv.Run(); }, opt.repetitions, 0.02);
              l.by_variant.push_back(
                  {std::string("fast/") + FastIsaName(isa), {kv.kernel(), 1e6 * tv.cpu_s}});
            }
        }
    layers.push_back(l);
  }
  Json jlayers = Json::array();
  std::vector<std::vector<std::string>> variant_layer_rows;
  std::vector<std::vector<std::string>> lrows{{"S5 layer", "MACs", "input", "bits", "roofline op",
                                               "fast kernel", "us (CPU)", "GMAC/s", "bound us",
                                               "bound/meas"}};
  double layers_us = 0;
  std::map<int, std::pair<int64_t, double>> by_width;  // bits -> (MACs, us) of timed layers
  for (const auto& l : layers) {
    const double gmacs = l.cpu_us > 0 ? double(l.cost.macs) / l.cpu_us * 1e-3 : 0;
    layers_us += l.cpu_us;
    if (l.cpu_us > 0) {
      auto& w = by_width[int(std::ceil(l.cost.input_bits_true))];
      w.first += l.cost.macs;
      w.second += l.cpu_us;
    }
    Json j{{"name", l.cost.name},
           {"kind", l.cost.kind},
           {"macs", l.cost.macs},
           {"input_range", l.cost.input_range},
           {"input_bits", l.cost.input_bits_true},
           {"roofline_op", RoofOpName(l.op)},
           {"roofline_instruction", rates[int(l.op)].instruction},
           {"limit_us", l.limit_us}};
    if (l.cpu_us > 0) {
      j["fast_kernel"] = l.kernel;
      j["cpu_us"] = l.cpu_us;
      j["gmacs_per_s"] = gmacs;
      j["limit_fraction"] = l.limit_us / l.cpu_us;
      Json jv = Json::array();
      for (const auto& [variant, kv] : l.by_variant)
        jv.push_back({{"variant", variant}, {"fast_kernel", kv.first}, {"cpu_us", kv.second}});
      if (!l.by_variant.empty()) j["by_variant"] = jv;
    } else {
      j["fast_kernel"] = nullptr;  // not timed alone: inside the whole-window time
      j["cpu_us"] = nullptr;
    }
    jlayers.push_back(j);
    lrows.push_back({l.cost.name, std::to_string(l.cost.macs), l.cost.input_range,
                     Fmt("%.3g", l.cost.input_bits_true), RoofOpName(l.op),
                     l.cpu_us > 0 ? l.kernel
                     : opt.layers ? "(in window)"
                                  : "(not timed)",
                     l.cpu_us > 0 ? Fmt("%.0f", l.cpu_us) : "-",
                     l.cpu_us > 0 ? Fmt("%.2f", gmacs) : "-", Fmt("%.1f", l.limit_us),
                     l.cpu_us > 0 ? Fmt("%.3f", l.limit_us / l.cpu_us) : "-"});
  }
  out["layers"] = jlayers;
  // Per layer on every variant, one column each (the layers timed above).
  if (!opt.json && !layers.empty() && !layers[0].by_variant.empty()) {
    std::vector<std::vector<std::string>> vrows{{"S5 layer"}};
    for (const auto& [variant, kv] : layers[0].by_variant) vrows[0].push_back(variant + " us");
    for (const auto& l : layers) {
      if (l.by_variant.empty()) continue;
      std::vector<std::string> row{l.cost.name};
      for (const auto& [variant, kv] : l.by_variant) row.push_back(Fmt("%.0f", kv.second));
      vrows.push_back(row);
    }
    variant_layer_rows = vrows;
  }
  Json jwidth = Json::array();
  for (const auto& [bits, w] : by_width)
    jwidth.push_back({{"input_bits", bits},
                      {"macs", w.first},
                      {"cpu_us", w.second},
                      {"gmacs_per_s", double(w.first) / w.second * 1e-3}});
  out["macs_per_s_by_input_width"] = jwidth;

  std::optional<double> s5_b1_ms, s5_best_ms;
  for (const auto& r : stages)
    if (r.stage == Stage::kS5) {
      if (r.batch == 1) s5_b1_ms = r.cpu_ms_per_clip();
      if (!s5_best_ms || r.cpu_ms_per_clip() < *s5_best_ms) s5_best_ms = r.cpu_ms_per_clip();
    }
  const double limit_ms = limit_us * 1e-3;
  const std::optional<double> s5_ms = s5_b1_ms ? s5_b1_ms : s5_best_ms;
  out["roofline"] = {{"isa", rates.empty() ? "" : rates[0].isa},
                     {"instructions", jrates},
                     {"limit_ms_per_clip", limit_ms},
                     {"layers_timed_sum_ms", layers_us * 1e-3}};
  out["limit_fraction"] = s5_ms ? Json(limit_ms / *s5_ms) : Json(nullptr);
  out["limit_fraction_basis"] = s5_b1_ms     ? "S5 batch 1"
                                : s5_best_ms ? "S5 best batch"
                                             : "S5 not run";
  if (!opt.json) {
    std::printf("Roofline instruction mixes (%s, register-only loops, this CPU)\n",
                rates.empty() ? "" : rates[0].isa.c_str());
    std::vector<std::vector<std::string>> rrows{{"op", "instructions", "MACs/group", "GMAC/s"}};
    for (const auto& ir : rates)
      rrows.push_back({RoofOpName(ir.op), ir.instruction, std::to_string(ir.macs_per_group),
                       Fmt("%.1f", ir.macs_per_s * 1e-9)});
    PrintTable(rrows);
    std::printf("\nS5 per layer: each convolution's fast kernel alone (%s), against its bound\n",
                opt.layers ? "timed" : "not timed: --no-layers");
    PrintTable(lrows);
    if (!variant_layer_rows.empty()) {
      std::printf("\nS5 per layer on every kernel variant (CPU us, same kernels' setup)\n");
      PrintTable(variant_layer_rows);
    }
    std::printf("\nMACs/s by input width (timed S5 layers)\n");
    std::vector<std::vector<std::string>> wrows{{"input bits", "MACs", "us (CPU)", "GMAC/s"}};
    for (const auto& [bits, w] : by_width)
      wrows.push_back({std::to_string(bits), std::to_string(w.first), Fmt("%.0f", w.second),
                       Fmt("%.2f", double(w.first) / w.second * 1e-3)});
    PrintTable(wrows);
    std::printf("\nroofline limit %.3f ms per clip; timed layers sum %.3f ms", limit_ms,
                layers_us * 1e-3);
    if (s5_ms)
      std::printf("; S5 whole window %.3f ms: limit_fraction %.3f (target >= 0.70)\n", *s5_ms,
                  limit_ms / *s5_ms);
    else
      std::printf("; S5 not run: no limit_fraction\n");
    std::fflush(stdout);
  }
  if (!opt.plot.empty() && opt.layers) {
    const std::string err =
        WritePlot(opt.plot, layers, "S5 per layer vs roofline (" + kernel + ", one thread)");
    if (!err.empty()) std::fprintf(stderr, "billnet-bench: --plot: %s\n", err.c_str());
  }

  // ------------------------------------------------------------ libtorch
  Json jtorch;
  jtorch["available"] = TorchBaselineAvailable();
  jtorch["version"] = TorchVersion();
  std::optional<double> torch_best;
  std::map<int, double> torch_best_by_batch;
  if (!TorchBaselineAvailable()) {
    jtorch["note"] = "billnet-bench was built without libtorch (trainer not built)";
  } else if (!opt.libtorch) {
    jtorch["note"] = "skipped (--no-libtorch)";
  } else {
    jtorch["config"] = TorchConfigSummary();
    const auto results = RunTorchBaseline(plan, opt.batches, opt.repetitions, opt.min_time);
    Json jv = Json::array();
    std::vector<std::vector<std::string>> trows{
        {"libtorch variant", "batch", "ms/clip (CPU)", "ms/clip (wall)", "clips/s/core"}};
    for (const auto& r : results) {
      Json j{{"variant", r.variant}, {"batch", r.batch}, {"implemented", r.ok}};
      if (r.ok) {
        j["cpu_ms_per_clip"] = r.cpu_ms_per_clip;
        j["wall_ms_per_clip"] = r.wall_ms_per_clip;
        if (!torch_best || r.cpu_ms_per_clip < *torch_best) torch_best = r.cpu_ms_per_clip;
        auto it = torch_best_by_batch.find(r.batch);
        if (it == torch_best_by_batch.end() || r.cpu_ms_per_clip < it->second)
          torch_best_by_batch[r.batch] = r.cpu_ms_per_clip;
        trows.push_back({r.variant, std::to_string(r.batch), Fmt("%.2f", r.cpu_ms_per_clip),
                         Fmt("%.2f", r.wall_ms_per_clip), Fmt("%.1f", 1e3 / r.cpu_ms_per_clip)});
      } else {
        j["error"] = r.error;
        trows.push_back({r.variant, std::to_string(r.batch), "failed: " + r.error, "", ""});
      }
      jv.push_back(j);
    }
    jtorch["variants"] = jv;
    jtorch["blas_libraries"] = BlasLibrariesLoaded();
    if (!opt.json) {
      std::printf("\nlibtorch %s float forward, same topology, one thread; BLAS loaded:",
                  TorchVersion().c_str());
      for (const auto& b : jtorch["blas_libraries"])
        std::printf(" %s", b.get<std::string>().c_str());
      std::printf("\n%s\n", jtorch["config"].get<std::string>().c_str());
      PrintTable(trows);
    }
  }
  out["libtorch"] = jtorch;
  Json speedup_by_batch = Json::object();
  for (const auto& r : stages)
    if (r.stage == Stage::kS5 && torch_best_by_batch.count(r.batch))
      speedup_by_batch[std::to_string(r.batch)] =
          torch_best_by_batch[r.batch] / r.cpu_ms_per_clip();
  out["speedup_vs_libtorch"] =
      torch_best && s5_best_ms ? Json(*torch_best / *s5_best_ms) : Json(nullptr);
  out["speedup_vs_libtorch_by_batch"] = speedup_by_batch;
  out["speedup_basis"] =
      "best libtorch ms/clip (any variant, any batch) / best engine S5 ms/clip (any batch), CPU "
      "time";
  out["load_average_at_end"] = ReadFirst("/proc/loadavg", "");
  // Said plainly, in both outputs (issue 7 part 4 asks for them).
  const std::vector<std::string> not_implemented{

      "a fast float path for S1-S2: they run the reference kernels",
      "the LSTM and dense layers timed alone: they are inside the whole-window time"};
  out["not_implemented"] = not_implemented;

  if (opt.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("\nspeedup_vs_libtorch (best vs best, per core): %s",
                out["speedup_vs_libtorch"].is_null()
                    ? "n/a (libtorch unavailable or S5 not run)"
                    : Fmt("%.2f", out["speedup_vs_libtorch"].get<double>()).c_str());
    for (const auto& [b, v] : speedup_by_batch.items())
      std::printf("; batch %s: %.2f", b.c_str(), v.get<double>());
    std::printf("\nlimit_fraction (S5): %s\nload average at end: %s\n",
                out["limit_fraction"].is_null()
                    ? "n/a"
                    : Fmt("%.3f", out["limit_fraction"].get<double>()).c_str(),
                out["load_average_at_end"].get<std::string>().c_str());
    std::printf("not implemented:\n");
    for (const auto& n : not_implemented) std::printf("  - %s\n", n.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace billnet::bench

int main(int argc, char** argv) {
  billnet::bench::Options opt;
  CLI::App app{
      "billnet-bench: the whole BILLNET model per stage and batch size on one thread, S5 per "
      "layer against a roofline measured on this CPU, and libtorch's float forward of the same "
      "topology. Defaults: BILLNET 2x, stages 1-5, batches 1 and 8 (about 2-5 minutes)."};
  auto& t = opt.topology;
  app.add_option("--stages", opt.stages, "stages to run, 1..5 (default: all)")->delimiter(',');
  app.add_option("--batch", opt.batches, "batch sizes (default: 1,8)")->delimiter(',');
  app.add_option("--repetitions", opt.repetitions, "repetitions per figure, median (default 5)");
  app.add_option("--reference-repetitions", opt.reference_repetitions,
                 "repetitions for S1-S2 and reference kernels (default 3)");
  app.add_option("--min-time", opt.min_time,
                 "CPU seconds per repetition of the fast stages and libtorch (default 0.1)");
  app.add_flag("!--no-layers", opt.layers, "skip the per-layer timing (the roofline stays)");
  app.add_flag("!--no-libtorch", opt.libtorch, "skip the libtorch baseline");
  app.add_option("--isa", opt.isa, "roofline instruction set: avx512, avx2, scalar (default: best)")
      ->check(CLI::IsMember({"avx512", "avx2", "scalar"}));
  app.add_option("--plot", opt.plot, "write a PNG of S5 per-layer time vs roofline");
  app.add_option("--seed", opt.seed, "seed of the random weights and inputs (default 1)");
  app.add_option("--threads", opt.threads,
                 "also run S3-S5 on this many threads (a billnet::ThreadPool; default 1: no)")
      ->check(CLI::Range(1, 256));
  app.add_option("--base-channels", t.base_channels, "n (default 64)");
  app.add_option("--groups", t.groups, "g (default 4)");
  app.add_option("--lstm-units", t.lstm_units, "4m (default 128)");
  app.add_option("--classes", t.classes, "classes (default 27)");
  app.add_option("--tail-mor-blocks", t.tail_mor_blocks, "MOR(4n) blocks (default 2)");
  app.add_option("--frames", t.frames, "input frames (default 16)");
  app.add_option("--height", t.height, "input height (default 96)");
  app.add_option("--width", t.width, "input width (default 128)");
  app.add_flag("!--no-variants", opt.variants,
               "skip S3-S5 on the other kernel variants (portable, avx2, avx512 where supported)");
  app.add_flag("--json", opt.json, "print one JSON object instead of tables");
  CLI11_PARSE(app, argc, argv);
  return billnet::bench::Run(opt);
}
