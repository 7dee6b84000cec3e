// The reference runner: executes a Model's plan block by block.
// S1-S2 run in float; S3-S5 run the convolution part on integers and bits
// (uint8 0/1 activations, int32 sums); S5 also runs the QLSTM and the dense
// layer on integers.
#include "billnet/session.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "fast_runner.h"
#include "kernels/fast/isa.h"
#include "kernels/reference.h"
#include "prepared.h"

namespace billnet {

KernelChoice KernelChoiceFromEnvironment() {
  const char* v = std::getenv("BILLNET_KERNELS");
  if (v == nullptr || *v == 0) return KernelChoice::kFast;
  const std::string s = v;
  if (s == "reference") return KernelChoice::kReference;
  if (s == "fast") return KernelChoice::kFast;
  static std::once_flag warned;
  std::call_once(warned, [&] {
    std::fprintf(stderr,
                 "billnet: BILLNET_KERNELS='%s' is not 'reference' or 'fast'; using 'fast'\n",
                 s.c_str());
  });
  return KernelChoice::kFast;
}

const char* KernelVariant() {
  if (KernelChoiceFromEnvironment() == KernelChoice::kReference) return "reference";
  switch (FastIsaFromEnvironment()) {
    case FastIsa::kAvx512:
      return "fast/avx512";
    case FastIsa::kAvx2:
      return "fast/avx2";
    case FastIsa::kPortable:
      break;
  }
  return "fast/portable";
}

namespace {

class Tracer {
 public:
  explicit Tracer(std::vector<TracedTensor>* out) : out_(out) {}
  bool on() const { return out_ != nullptr; }
  template <typename T>
  void Add(const std::string& name, const Shape4& s, const T* data) {
    if (!out_) return;
    TracedTensor t;
    t.name = name;
    t.shape = {s.t, s.h, s.w, s.c};
    const int64_t n = s.elements();
    t.is_integer = std::is_integral_v<T>;
    if (t.is_integer)
      t.ints.assign(data, data + n);
    else
      t.floats.assign(data, data + n);
    out_->push_back(std::move(t));
  }

 private:
  std::vector<TracedTensor>* out_;
};

// Float (S1-S2) or integer (S3-S5) convolution part. Act: activation type
// between blocks; Val: values inside a CF; W: prepared weight type.
template <bool kInt>
struct ConvPart {
  using Act = std::conditional_t<kInt, uint8_t, float>;
  using Val = std::conditional_t<kInt, int32_t, float>;

  const Model& m;
  Tracer& tr;

  static const auto& Weights(const PreparedConv& pc) {
    if constexpr (kInt)
      return pc.wi;
    else
      return pc.wf;
  }

  template <typename In>
  std::vector<Val> Conv(const ConvSpec& c, const PreparedConv& pc, const In* in) {
    std::vector<Val> out(c.out.elements());
    Conv3dReference(c, in, Weights(pc).data(), out.data());
    tr.Add(c.name, c.out, out.data());
    return out;
  }

  // The three convolutions of a CF: pw1 -> gconv -> pw2, no nonlinearity.
  std::vector<Val> Cf(const ConvSpec* cs, const PreparedConv* pc, const Act* in) {
    std::vector<Val> a = Conv(cs[0], pc[0], in);
    std::vector<Val> b = Conv(cs[1], pc[1], a.data());
    return Conv(cs[2], pc[2], b.data());
  }

  std::vector<Val> Pool(const BlockSpec& b, const std::vector<Val>& x) {
    std::vector<Val> out(b.out.elements());
    MaxPool1x2x2Reference(b.pre_pool, x.data(), out.data());
    tr.Add(b.name + ".pool", b.out, out.data());
    return out;
  }

  std::vector<Act> Norm(const NormSpec& n, const NormParams& p, const std::vector<Val>& x) {
    std::vector<Act> out(n.at.elements());
    if constexpr (kInt) {
      if (m.stage() == Stage::kS3)
        NormThresholdReference(n.at.positions(), n.channels, x.data(), p.threshold.data(),
                               p.polarity.data(), out.data());
      else
        HeavisideReference(n.at.elements(), x.data(), out.data());
    } else {
      NormReluReference(n.at.positions(), n.channels, x.data(), p.scale.data(), p.offset.data(),
                        out.data());
    }
    tr.Add(n.name, n.at, out.data());
    return out;
  }

  // Runs every convolutional block; returns the GAP output [steps][channels]
  // (float means, or bit counts).
  std::vector<Val> Run(const std::vector<Val>& input) {
    const TopologyPlan& plan = m.plan();
    const Model::Prepared& prep = m.prepared();
    std::vector<Act> x;
    for (size_t bi = 0; bi < plan.blocks.size(); ++bi) {
      const BlockSpec& b = plan.blocks[bi];
      const auto& pc = prep.convs[bi];
      const auto& pn = prep.norms[bi];
      switch (b.kind) {
        case BlockKind::kStem: {
          std::vector<Val> y = Conv(b.convs[0], pc[0], input.data());
          x = Norm(b.norms[0], *pn[0], Pool(b, y));
          break;
        }
        case BlockKind::kCf: {
          std::vector<Val> y = Cf(&b.convs[0], &pc[0], x.data());
          x = Norm(b.norms[0], *pn[0], b.pool ? Pool(b, y) : y);
          break;
        }
        case BlockKind::kMor: {
          std::vector<Act> a = Norm(b.norms[0], *pn[0], Cf(&b.convs[0], &pc[0], x.data()));
          std::vector<Act> i1 = Norm(b.norms[1], *pn[1], Cf(&b.convs[3], &pc[3], a.data()));
          std::vector<uint8_t> select(int64_t(b.in.t) * b.in.c);
          std::vector<Act> out(b.out.elements());
          if constexpr (kInt) {
            TgapBitsReference(b.in, x.data(), select.data());
            MuxOrBitsReference(b.in, x.data(), i1.data(), select.data(), out.data());
          } else {
            TgapFloatReference(b.in, x.data(), select.data());
            MuxOrFloatReference(b.in, x.data(), i1.data(), select.data(), out.data());
          }
          tr.Add(b.name + ".select", Shape4{b.in.t, 1, 1, b.in.c}, select.data());
          tr.Add(b.name, b.out, out.data());
          x = std::move(out);
          break;
        }
        case BlockKind::kGap: {
          std::vector<Val> g(int64_t(b.in.t) * b.in.c);
          if constexpr (kInt)
            GapBitsReference(b.in, x.data(), g.data());
          else
            GapFloatReference(b.in, x.data(), g.data());
          tr.Add("gap", b.out, g.data());
          return g;
        }
        case BlockKind::kLstm:
        case BlockKind::kDense:
          break;
      }
    }
    return {};
  }
};

}  // namespace

Session::Session(std::shared_ptr<const Model> model, KernelChoice kernels)
    : model_(std::move(model)) {
  Reset();
  if (kernels == KernelChoice::kDefault) kernels = KernelChoiceFromEnvironment();
  fast_ = kernels == KernelChoice::kFast && StageHasBinaryActivations(model_->stage()) &&
          model_->prepared().runners;
  if (fast_) fast_isa_ = int(FastIsaFromEnvironment());
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::Reset() {
  const int u = model_->info().topology.lstm_units;
  h_.assign(u, 0.f);
  c_.assign(u, 0.f);
}

namespace {

// Runners borrowed from a model's pool for one call, given back at its end.
class RunnerLease {
 public:
  RunnerLease(FastRunnerPool& pool, FastIsa isa, ThreadPool* threads, int n)
      : pool_(pool), n_(n) {
    if (n_ > kInline) heap_.resize(size_t(n_));
    pool_.Borrow(isa, threads ? threads->slots() : 1, data(), n_);
  }
  ~RunnerLease() { pool_.GiveBack(data(), n_); }
  RunnerLease(const RunnerLease&) = delete;
  RunnerLease& operator=(const RunnerLease&) = delete;
  FastRunner& operator[](int i) { return *data()[i]; }

 private:
  static constexpr int kInline = 16;  // more only with more than 15 helper threads
  FastRunner** data() { return n_ > kInline ? heap_.data() : inline_; }
  FastRunnerPool& pool_;
  int n_;
  FastRunner* inline_[kInline] = {};
  std::vector<FastRunner*> heap_;
};

}  // namespace

Status Session::Run(const uint8_t* rgb, size_t size, Response* out,
                    std::vector<TracedTensor>* trace, ThreadPool* pool) {
  const Model& m = *model_;
  if (rgb == nullptr || size != m.window_bytes())
    return InvalidArgument("window of " + std::to_string(size) + " bytes; model '" + m.info().name +
                           "' takes " + std::to_string(m.window_bytes()) + " (" +
                           std::to_string(m.info().topology.frames) + " frames of " +
                           std::to_string(m.info().topology.height) + "x" +
                           std::to_string(m.info().topology.width) + " RGB)");
  if (fast_) {
    RunnerLease runner(*m.prepared().runners, FastIsa(fast_isa_), trace ? nullptr : pool, 1);
    runner[0].Run(rgb, h_, c_, out, trace, pool);
    return Status::Ok();
  }
  const TopologyPlan& plan = m.plan();
  const Model::Prepared& prep = m.prepared();
  const Stage stage = m.stage();
  Tracer tr(trace);
  const int steps = plan.steps, ni = plan.gap_channels, u = plan.config.lstm_units,
            k = plan.config.classes, area = plan.gap_area;
  const Shape4 in_shape{plan.config.frames, plan.config.height, plan.config.width, 3};

  Response r;
  r.steps = steps;
  r.classes = k;
  r.scores.resize(int64_t(steps) * k);
  if (!StageHasBinaryActivations(stage)) {
    std::vector<float> input(size);
    for (size_t i = 0; i < size; ++i) input[i] = float(2 * int(rgb[i]) - 255) / 255.f;
    ConvPart<false> part{m, tr};
    std::vector<float> feat = part.Run(input);
    for (int t = 0; t < steps; ++t) {
      LstmStepFloatReference(ni, u, prep.lstm_ih_f.data(), prep.lstm_hh_f.data(),
                             feat.data() + int64_t(t) * ni, h_.data(), c_.data());
      DenseFloatReference(u, k, prep.dense_f.data(), h_.data(), r.scores.data() + t * k);
    }
  } else {
    std::vector<int32_t> input(size);
    for (size_t i = 0; i < size; ++i) input[i] = 2 * int32_t(rgb[i]) - 255;
    tr.Add("input", in_shape, input.data());
    ConvPart<true> part{m, tr};
    std::vector<int32_t> counts = part.Run(input);
    if (stage == Stage::kS5) {
      std::vector<int8_t> h(u), c(u);
      for (int j = 0; j < u; ++j) h[j] = int8_t(h_[j]), c[j] = int8_t(c_[j]);
      r.integer_scores.resize(r.scores.size());
      r.scores_are_integers = true;
      for (int t = 0; t < steps; ++t) {
        QlstmStepReference(ni, u, area, prep.lstm_ih_i.data(), prep.lstm_hh_i.data(),
                           counts.data() + int64_t(t) * ni, h.data(), c.data());
        tr.Add("lstm.h." + std::to_string(t), Shape4{1, 1, 1, u}, h.data());
        tr.Add("lstm.c." + std::to_string(t), Shape4{1, 1, 1, u}, c.data());
        DenseIntReference(u, k, prep.dense_i.data(), h.data(), r.integer_scores.data() + t * k);
      }
      for (size_t i = 0; i < r.scores.size(); ++i) r.scores[i] = float(r.integer_scores[i]);
      for (int j = 0; j < u; ++j) h_[j] = h[j], c_[j] = c[j];
    } else {
      std::vector<float> x(ni);
      for (int t = 0; t < steps; ++t) {
        for (int j = 0; j < ni; ++j) x[j] = float(counts[int64_t(t) * ni + j]) / float(area);
        LstmStepFloatReference(ni, u, prep.lstm_ih_f.data(), prep.lstm_hh_f.data(), x.data(),
                               h_.data(), c_.data());
        DenseFloatReference(u, k, prep.dense_f.data(), h_.data(), r.scores.data() + t * k);
      }
    }
  }
  tr.Add("scores", Shape4{steps, 1, 1, k}, r.scores.data());
  ComputeProbabilities(m.info().temperature, &r);
  *out = std::move(r);
  return Status::Ok();
}

void ComputeProbabilities(double temperature, Response* r) {
  const int k = r->classes;
  r->probabilities.assign(r->scores.size(), 0.f);
  r->top_class.assign(r->steps, 0);
  r->top_probability.assign(r->steps, 0.f);
  for (int t = 0; t < r->steps; ++t) {
    const float* s = r->scores.data() + int64_t(t) * k;
    int best = 0;
    for (int j = 1; j < k; ++j)
      if (s[j] > s[best]) best = j;
    double sum = 0;
    for (int j = 0; j < k; ++j) sum += std::exp((double(s[j]) - s[best]) / temperature);
    for (int j = 0; j < k; ++j)
      r->probabilities[int64_t(t) * k + j] =
          float(std::exp((double(s[j]) - s[best]) / temperature) / sum);
    r->top_class[t] = best;
    r->top_probability[t] = r->probabilities[int64_t(t) * k + best];
  }
}

// State blob: "BNST", version 1, stage, 2 reserved bytes, units (u32 LE), then
// h and c: float32 LE in S1-S4, int8 in S5.
std::vector<uint8_t> Session::ExportState() const {
  const bool q = model_->stage() == Stage::kS5;
  const uint32_t u = uint32_t(h_.size());
  std::vector<uint8_t> out = {'B', 'N', 'S', 'T', 1, uint8_t(model_->stage()), 0, 0};
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(u >> (8 * i)));
  for (const auto* v : {&h_, &c_})
    for (float x : *v) {
      if (q) {
        out.push_back(uint8_t(int8_t(x)));
      } else {
        uint32_t bits;
        std::memcpy(&bits, &x, 4);
        for (int i = 0; i < 4; ++i) out.push_back(uint8_t(bits >> (8 * i)));
      }
    }
  return out;
}

Status Session::ImportState(const uint8_t* data, size_t size) {
  const bool q = model_->stage() == Stage::kS5;
  const size_t u = h_.size();
  const size_t want = 12 + 2 * u * (q ? 1 : 4);
  if (size != want || !data || std::memcmp(data, "BNST", 4) != 0 || data[4] != 1)
    return InvalidArgument("LSTM state blob of " + std::to_string(size) +
                           " bytes is not a version-1 state of " + std::to_string(want) + " bytes");
  if (data[5] != uint8_t(model_->stage()))
    return InvalidArgument("LSTM state is for stage s" + std::to_string(int(data[5])) +
                           ", the model is " + StageName(model_->stage()));
  uint32_t units = 0;
  for (int i = 0; i < 4; ++i) units |= uint32_t(data[8 + i]) << (8 * i);
  if (units != u)
    return InvalidArgument("LSTM state has " + std::to_string(units) + " units, the model " +
                           std::to_string(u));
  std::vector<float> h(u), c(u);
  const uint8_t* p = data + 12;
  for (auto* v : {&h, &c})
    for (size_t j = 0; j < u; ++j) {
      if (q) {
        const int8_t s = int8_t(*p++);
        if (s < -1 || s > 1) return InvalidArgument("S5 LSTM state value outside {-1,0,1}");
        (*v)[j] = s;
      } else {
        uint32_t bits = 0;
        for (int i = 0; i < 4; ++i) bits |= uint32_t(*p++) << (8 * i);
        float x;
        std::memcpy(&x, &bits, 4);
        if (!std::isfinite(x)) return InvalidArgument("LSTM state value is not finite");
        (*v)[j] = x;
      }
    }
  h_ = std::move(h);
  c_ = std::move(c);
  return Status::Ok();
}

Status RunBatch(Session* const* sessions, const uint8_t* const* windows, size_t count,
                Response* responses, ThreadPool* pool) {
  // Repeats: pairwise for the batch sizes servers use (no allocation), a set
  // beyond.
  std::set<const Session*> seen;
  auto repeated = [&](size_t i) {
    if (count > 64) return !seen.insert(sessions[i]).second;
    for (size_t k = 0; k < i; ++k)
      if (sessions[k] == sessions[i]) return true;
    return false;
  };
  for (size_t i = 0; i < count; ++i) {
    if (!sessions[i])
      return InvalidArgument("batch entry " + std::to_string(i) + " has no session");
    if (repeated(i))
      return InvalidArgument("batch entry " + std::to_string(i) +
                             " repeats a session (one window per session per batch)");
    if (!windows[i]) return InvalidArgument("batch entry " + std::to_string(i) + " has no window");
  }
  const bool threaded = pool != nullptr && pool->helpers() > 0 && count >= 2;
  if (!threaded) {
    for (size_t i = 0; i < count; ++i) {
      Session& s = *sessions[i];
      Status st = s.Run(windows[i], s.model().window_bytes(), &responses[i], nullptr, pool);
      if (!st.ok()) return st.WithContext("batch entry " + std::to_string(i));
    }
    return Status::Ok();
  }
  // Fast-path entries of one model and variant (the server's batches) borrow
  // a runner per pool slot, up front, so how many a model holds does not
  // depend on how the threads happened to interleave.
  const Session& s0 = *sessions[0];
  bool shared = s0.fast_;
  for (size_t i = 1; i < count && shared; ++i)
    shared = sessions[i]->fast_ && sessions[i]->model_ == s0.model_ &&
             sessions[i]->fast_isa_ == s0.fast_isa_;
  std::optional<RunnerLease> runners;
  if (shared)
    runners.emplace(*s0.model_->prepared().runners, FastIsa(s0.fast_isa_), pool, pool->slots());
  auto run = [&](size_t i, int slot) {
    Session& s = *sessions[i];
    if (!runners) return s.Run(windows[i], s.model().window_bytes(), &responses[i], nullptr, pool);
    (*runners)[slot].Run(windows[i], s.h_, s.c_, &responses[i], nullptr, pool);
    return Status::Ok();
  };
  // One window per item; a window whose thread finds the others busy splits
  // its rows only over threads that come free (nested ParallelFor).
  // The lowest failing entry's status; nothing is allocated unless one fails.
  std::mutex mu;
  size_t bad = count;
  Status first;
  pool->ParallelFor(
      int64_t(count),
      [&](int64_t i, int slot) {
        Status s = run(size_t(i), slot);
        if (s.ok()) return;
        std::lock_guard<std::mutex> lock(mu);
        if (size_t(i) < bad) bad = size_t(i), first = std::move(s);
      },
      1);
  if (bad < count) return first.WithContext("batch entry " + std::to_string(bad));
  return Status::Ok();
}

}  // namespace billnet

namespace billnet {

int RealSteps(int steps, int frames, int real_frames) {
  if (real_frames <= 0) return 0;
  if (real_frames >= frames) return steps;
  return int((int64_t(real_frames) * steps + frames - 1) / frames);
}

StatusOr<ClipLabel> ClassifyClip(const std::vector<Response>& windows,
                                 const std::vector<int>& real_frames, int frames) {
  if (windows.empty()) return InvalidArgument("clip has no window");
  if (windows.size() != real_frames.size())
    return InvalidArgument("clip: " + std::to_string(windows.size()) + " windows but " +
                           std::to_string(real_frames.size()) + " real-frame counts");
  const int k = windows[0].classes;
  if (k < 1) return InvalidArgument("clip: windows have " + std::to_string(k) + " classes");
  ClipLabel out;
  std::vector<double> sum(k, 0.0);
  for (size_t i = 0; i < windows.size(); ++i) {
    const Response& r = windows[i];
    if (r.classes != k) return InvalidArgument("clip: windows disagree on the class count");
    if (r.steps < 0 || r.probabilities.size() != size_t(r.steps) * size_t(k))
      return InvalidArgument("clip: window " + std::to_string(i) + " has " +
                             std::to_string(r.probabilities.size()) +
                             " probabilities, not steps x classes");
    const int n = RealSteps(r.steps, frames, real_frames[i]);
    for (int t = 0; t < n; ++t)
      for (int j = 0; j < k; ++j) sum[j] += r.probabilities[int64_t(t) * k + j];
    out.steps_used += n;
  }
  if (out.steps_used == 0) return InvalidArgument("clip has no real frame");
  out.mean_probabilities.resize(k);
  for (int j = 0; j < k; ++j) out.mean_probabilities[j] = float(sum[j] / out.steps_used);
  for (int j = 1; j < k; ++j)
    if (sum[j] > sum[out.label]) out.label = j;
  out.probability = out.mean_probabilities[out.label];
  return out;
}

}  // namespace billnet
