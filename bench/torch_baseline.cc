// The libtorch float baseline of billnet-bench (torch_baseline.h). The model
// is written as TorchScript source generated from the TopologyPlan, so the
// same source gives all three variants: 1.13's C++ API has no tracer, and
// freezing / optimize_for_inference need a scripted module (DESIGN.md
// section 6). Weights are random (He-scaled, so activations stay O(1) and no
// denormals appear); the speed of a float forward does not depend on them.
#include "torch_baseline.h"

#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#ifdef BILLNET_BENCH_HAS_TORCH
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <torch/version.h>
#endif

#include "bench_timer.h"

namespace billnet::bench {

#ifndef BILLNET_BENCH_HAS_TORCH

bool TorchBaselineAvailable() { return false; }
std::string TorchVersion() { return "unavailable"; }
std::string TorchConfigSummary() { return ""; }
std::vector<TorchResult> RunTorchBaseline(const TopologyPlan&, const std::vector<int>&, int,
                                          double) {
  return {};
}

#else

namespace {

// The first non-empty line of an exception message (libtorch's carry
// backtraces after it).
std::string FirstLine(const std::string& what) {
  size_t start = what.find_first_not_of(" \n");
  if (start == std::string::npos) return "unknown error";
  return what.substr(start, what.find('\n', start) - start);
}

std::string Param(const std::string& name) {
  std::string p = name;
  for (char& ch : p)
    if (ch == '.') ch = '_';
  return p;
}

std::string IntList(int a, int b, int c) {
  return "[" + std::to_string(a) + ", " + std::to_string(b) + ", " + std::to_string(c) + "]";
}

// Generates the forward's source and registers its parameters on `m`.
class SourceWriter {
 public:
  SourceWriter(torch::jit::Module* m, bool onednn) : m_(m), onednn_(onednn) {}

  std::string Forward(const TopologyPlan& plan) {
    Line("def forward(self, x):");
    for (const BlockSpec& b : plan.blocks) {
      switch (b.kind) {
        case BlockKind::kStem:
          Conv(b.convs[0], "x", "x");
          if (b.pool) Pool("x");
          Norm(b.norms[0], "x");
          break;
        case BlockKind::kCf:
          Cf(&b.convs[0], "x", "x");
          if (b.pool) Pool("x");
          Norm(b.norms[0], "x");
          break;
        case BlockKind::kMor:
          // a = act(norm(CF(x))), i1 = act(norm(CF(a))), i0 = Clip(x + i1),
          // S = TGAP(x) per (time, channel), out = S ? i1 : i0.
          Cf(&b.convs[0], "x", "a");
          Norm(b.norms[0], "a");
          Cf(&b.convs[3], "a", "i1");
          Norm(b.norms[1], "i1");
          Line("    i0 = torch.clamp(x + i1, -1.0, 1.0)");
          Line("    ap = torch.mean(x, [3, 4], True)");
          Line("    s = ap > 0.5 * torch.amax(ap, [1, 2, 3, 4], True)");
          Line("    x = torch.where(s, i1, i0)");
          break;
        case BlockKind::kGap:
          Line("    x = torch.mean(x, [3, 4]).permute(0, 2, 1)");  // N x T x C
          break;
        case BlockKind::kLstm: {
          const int u = b.out.c;
          Weight("lstm_ih_t", {b.in.c, 4 * u}, b.in.c);
          Weight("lstm_hh_t", {u, 4 * u}, u);
          Line("    h = torch.zeros([x.size(0), " + std::to_string(u) + "])");
          Line("    c = torch.zeros([x.size(0), " + std::to_string(u) + "])");
          Line("    hs: List[Tensor] = []");
          Line("    for t in range(" + std::to_string(b.out.t) + "):");
          Line(
              "        z = torch.matmul(x[:, t], self.lstm_ih_t) + torch.matmul(h, "
              "self.lstm_hh_t)");
          Line("        g = z.chunk(4, 1)");
          Line("        c = torch.sigmoid(g[1]) * c + torch.sigmoid(g[0]) * torch.tanh(g[2])");
          Line("        h = torch.sigmoid(g[3]) * torch.tanh(c)");
          Line("        hs.append(h)");
          Line("    x = torch.stack(hs, 1)");
          break;
        }
        case BlockKind::kDense:
          Weight("dense_t", {b.in.c, b.out.c}, b.in.c);
          Line("    return torch.matmul(x, self.dense_t)");
          break;
      }
    }
    return src_.str();
  }

 private:
  void Line(const std::string& s) { src_ << s << "\n"; }

  void Weight(const std::string& name, std::vector<int64_t> shape, int64_t fan_in) {
    m_->register_parameter(name, torch::randn(shape) * std::sqrt(2.0 / double(fan_in)), false);
  }

  void Conv(const ConvSpec& c, const std::string& in, const std::string& out) {
    const std::string p = Param(c.name);
    Weight(p, {c.co, c.ci / c.groups, c.kt, c.kh, c.kw}, c.fan_in());
    std::string call;
    if (onednn_)
      call = "torch.mkldnn_convolution(" + in + ", self." + p + ", None, " +
             IntList(c.pt, c.ph, c.pw) + ", " + IntList(c.st, c.sh, c.sw) + ", [1, 1, 1], " +
             std::to_string(c.groups) + ")";
    else
      call = "torch.conv3d(" + in + ", self." + p + ", None, " + IntList(c.st, c.sh, c.sw) + ", " +
             IntList(c.pt, c.ph, c.pw) + ", [1, 1, 1], " + std::to_string(c.groups) + ")";
    Line("    " + out + " = " + call);
  }

  // CF = pointwise -> grouped 3x3x3 -> pointwise, no nonlinearity inside.
  void Cf(const ConvSpec* cf, const std::string& in, const std::string& out) {
    Conv(cf[0], in, out);
    Conv(cf[1], out, out);
    Conv(cf[2], out, out);
  }

  void Pool(const std::string& v) {
    Line("    " + v + " = torch.max_pool3d(" + v +
         ", [1, 2, 2], [1, 2, 2], [0, 0, 0], [1, 1, 1], False)");
  }

  void Norm(const NormSpec& n, const std::string& v) {
    const std::string p = Param(n.name);
    m_->register_buffer(p + "_g", torch::rand({n.channels}) + 0.5);
    m_->register_buffer(p + "_b", torch::randn({n.channels}) * 0.1);
    m_->register_buffer(p + "_m", torch::randn({n.channels}) * 0.1);
    m_->register_buffer(p + "_v", torch::rand({n.channels}) + 0.5);
    Line("    " + v + " = torch.relu(torch.batch_norm(" + v + ", self." + p + "_g, self." + p +
         "_b, self." + p + "_m, self." + p + "_v, False, 0.1, 1e-5, False))");
  }

  torch::jit::Module* m_;
  bool onednn_;
  std::ostringstream src_;
};

torch::jit::Module BuildModule(const TopologyPlan& plan, bool onednn) {
  torch::jit::Module m("BillnetFloat");
  SourceWriter w(&m, onednn);
  m.define(w.Forward(plan));
  m.eval();
  return m;
}

void OneThread() {
  torch::set_num_threads(1);
  try {
    at::set_num_interop_threads(1);
  } catch (const c10::Error&) {
    // Already set (a second call in the same process).
  }
  // Debian's libtorch calls the system BLAS; OpenBLAS keeps its own pool.
  using SetThreads = void (*)(int);
  if (auto* f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(1);
  at::globalContext().setUserEnabledMkldnn(true);
  at::globalContext().setFlushDenormal(true);
}

}  // namespace

bool TorchBaselineAvailable() { return true; }

std::string TorchVersion() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

std::string TorchConfigSummary() {
  // at::show_config(): a "CPU capability usage" line, a oneDNN line and one
  // long "Build settings: A=x, B=y, ..." line; keep what decides speed here.
  std::istringstream in(at::show_config());
  std::string line, out;
  while (std::getline(in, line)) {
    const size_t start = line.find_first_not_of(" -");
    if (start == std::string::npos) continue;
    line = line.substr(start);
    if (line.rfind("CPU capability", 0) == 0 || line.find("DNN") != std::string::npos) {
      if (line.rfind("Build settings", 0) != 0) out += (out.empty() ? "" : "; ") + line;
    }
    if (line.rfind("Build settings:", 0) == 0) {
      std::istringstream items(line.substr(15));
      std::string item;
      while (std::getline(items, item, ',')) {
        const size_t first = item.find_first_not_of(' ');
        if (first == std::string::npos) continue;
        item = item.substr(first);
        if (item.rfind("BLAS_INFO", 0) == 0 || item.rfind("USE_MKLDNN", 0) == 0 ||
            item.rfind("USE_OPENMP", 0) == 0)
          out += (out.empty() ? "" : "; ") + item;
      }
    }
  }
  return out;
}

std::vector<TorchResult> RunTorchBaseline(const TopologyPlan& plan, const std::vector<int>& batches,
                                          int repetitions, double min_seconds) {
  OneThread();
  torch::manual_seed(7);
  const TopologyConfig& cfg = plan.config;
  std::vector<TorchResult> results;
  for (const char* variant : {"eager", "eager_onednn", "optimize_for_inference"}) {
    const std::string name = variant;
    torch::jit::Module module;
    std::string build_error;
    try {
      module = BuildModule(plan, name == "eager_onednn");
      if (name == "optimize_for_inference")
        module = torch::jit::optimize_for_inference(module);  // freezes first
    } catch (const std::exception& e) {
      build_error = e.what();
      if (getenv("BILLNET_BENCH_DEBUG")) std::fprintf(stderr, "%s\n", e.what());
    }
    // Eager: the interpreter runs the aten ops as written, no graph passes.
    torch::jit::setGraphExecutorOptimize(name == "optimize_for_inference");
    for (int batch : batches) {
      TorchResult r;
      r.variant = name;
      r.batch = batch;
      if (!build_error.empty()) {
        r.error = FirstLine(build_error);
        results.push_back(r);
        continue;
      }
      try {
        c10::InferenceMode guard;
        torch::Tensor x =
            torch::rand({batch, TopologyConfig::kChannels, cfg.frames, cfg.height, cfg.width}) * 2 -
            1;
        std::vector<torch::jit::IValue> in{x};
        torch::Tensor y;
        // The profiling executor specializes on the first calls.
        for (int i = 0; i < 3; ++i) y = module.forward(in).toTensor();
        const Timing t =
            TimeCalls([&] { y = module.forward(in).toTensor(); }, repetitions, min_seconds);
        r.ok = y.defined() && y.size(0) == batch;
        if (!r.ok) r.error = "unexpected output shape";
        r.cpu_ms_per_clip = 1e3 * t.cpu_s / batch;
        r.wall_ms_per_clip = 1e3 * t.wall_s / batch;
      } catch (const std::exception& e) {
        r.error = FirstLine(e.what());
      }
      results.push_back(r);
    }
  }
  torch::jit::setGraphExecutorOptimize(true);
  return results;
}

#endif  // BILLNET_BENCH_HAS_TORCH

}  // namespace billnet::bench
