#include "core/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <cmath>

#include "billnet/session.h"
#include "billnet/topology.h"

#ifndef BILLNET_VERSION
#define BILLNET_VERSION "unknown"
#endif
#ifndef BILLNET_GIT_REVISION
#define BILLNET_GIT_REVISION "unknown"
#endif
#ifndef BILLNET_COMPILER
#define BILLNET_COMPILER "unknown"
#endif

namespace billnet::server {

const char* RefuseReasonName(RefuseReason reason) {
  switch (reason) {
    case RefuseReason::kLimit:
      return "limit";
    case RefuseReason::kDraining:
      return "draining";
    case RefuseReason::kUnknownModel:
      return "unknown_model";
    case RefuseReason::kBadRequest:
      return "bad_request";
  }
  return "unknown";
}

const char* CallKindName(CallKind call) {
  return call == CallKind::kStream ? "stream" : "classify";
}

const BuildInfo& GetBuildInfo() {
  static const BuildInfo kInfo = {BILLNET_VERSION, BILLNET_GIT_REVISION, BILLNET_COMPILER};
  return kInfo;
}

const std::vector<double>& Metrics::LatencyBuckets() {
  static const std::vector<double> kBuckets = {0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01,
                                               0.02,    0.035,  0.05,  0.075, 0.1,   0.2,
                                               0.5,     1,      2.5,   5};
  return kBuckets;
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  auto& r = *registry_;
  active_streams_ = &BuildGauge()
                         .Name("billnet_active_streams")
                         .Help("Streams being served, by the model they run on")
                         .Register(r);
  windows_ =
      &BuildCounter().Name("billnet_windows_total").Help("Window results produced").Register(r);
  frames_ =
      &BuildCounter().Name("billnet_frames_total").Help("Source video frames decoded").Register(r);
  decode_errors_ = &BuildCounter()
                        .Name("billnet_decode_errors_total")
                        .Help("Streams and clips ended by input the decoder rejected")
                        .Register(r);
  engine_failures_ = &BuildCounter()
                          .Name("billnet_engine_failures_total")
                          .Help("Windows whose engine run failed (their stream ended INTERNAL)")
                          .Register(r);
  calls_ = &BuildCounter()
                .Name("billnet_calls_total")
                .Help("Stream and Classify calls ended, refused ones included, by gRPC status code")
                .Register(r);
  dropped_ = &BuildCounter()
                  .Name("billnet_dropped_windows_total")
                  .Help("Live-stream windows dropped under overload (gaps in sequence numbers)")
                  .Register(r);
  skipped_ = &BuildCounter()
                  .Name("billnet_skipped_frames_total")
                  .Help(
                      "Live-stream source frames not decoded: the decoder was behind real time "
                      "and skipped to a key frame")
                  .Register(r);
  undecoded_ = &BuildCounter()
                    .Name("billnet_undecoded_frames_total")
                    .Help(
                        "Source frames left undecoded because no model frame takes them and no "
                        "other frame refers to them")
                    .Register(r);
  refused_ = &BuildCounter()
                  .Name("billnet_refused_streams_total")
                  .Help("Streams and calls refused before they started, by reason")
                  .Register(r);
  latency_ = &BuildHistogram()
                  .Name("billnet_window_latency_seconds")
                  .Help(
                      "Latency by phase: decode (per source frame), queue, inference, total "
                      "(decoder output of a window's last frame to its response being sent)")
                  .Register(r);
  loads_ = &BuildCounter()
                .Name("billnet_model_loads_total")
                .Help("Model files loaded and validated")
                .Register(r);
  load_failures_ = &BuildCounter()
                        .Name("billnet_model_load_failures_total")
                        .Help("Model loads that failed (the active model stayed)")
                        .Register(r);
  swaps_ = &BuildCounter()
                .Name("billnet_model_swaps_total")
                .Help("Activations of a model (hot swaps), by the model activated")
                .Register(r);
  model_info_ =
      &BuildGauge().Name("billnet_model_info").Help("1 for every loaded model").Register(r);
  model_active_ = &BuildGauge()
                       .Name("billnet_model_active")
                       .Help("1 for the active model of each name, 0 for other known ones")
                       .Register(r);
  kernel_variant_ = &BuildGauge()
                         .Name("billnet_kernel_variant_info")
                         .Help("The engine's kernel variant")
                         .Register(r);
  kernel_variant_->Add({{"variant", KernelVariant()}}).Set(1);
  for (RefuseReason reason : {RefuseReason::kLimit, RefuseReason::kDraining,
                              RefuseReason::kUnknownModel, RefuseReason::kBadRequest})
    refused_by_reason_[reason] = &refused_->Add({{"reason", RefuseReasonName(reason)}});
  for (CallKind call : {CallKind::kStream, CallKind::kClassify})
    for (int c = int(Code::kOk); c <= int(Code::kUnauthenticated); ++c)  // gRPC's 17 codes
      calls_by_code_[{call, Code(c)}] =
          &calls_->Add({{"call", CallKindName(call)}, {"code", CodeName(Code(c))}});
  const BuildInfo& build = GetBuildInfo();
  BuildGauge()
      .Name("billnet_build_info")
      .Help("1; the server's version, source revision and compiler")
      .Register(r)
      .Add({{"version", build.version}, {"revision", build.revision}, {"compiler", build.compiler}})
      .Set(1);
  // Whole milliseconds: the text format prints it back exactly.
  start_time_ =
      std::round(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                     .count() *
                 1000) /
      1000;
  BuildGauge()
      .Name("billnet_process_start_time_seconds")
      .Help("Start time of the server process, Unix seconds")
      .Register(r)
      .Add({})
      .Set(start_time_);
}

Metrics::~Metrics() = default;

ModelSeries* Metrics::Series(const std::string& model, uint32_t version, int stage) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_tuple(model, version, stage);
  auto it = series_.find(key);
  if (it != series_.end()) return it->second.get();
  auto s = std::make_unique<ModelSeries>();
  s->model = model;
  s->version = std::to_string(version);
  s->stage = StageName(Stage(stage));
  const prometheus::Labels l = {{"model", s->model}, {"version", s->version}, {"stage", s->stage}};
  s->active_streams = &active_streams_->Add(l);
  s->windows = &windows_->Add(l);
  s->frames = &frames_->Add(l);
  s->decode_errors = &decode_errors_->Add(l);
  s->engine_failures = &engine_failures_->Add(l);
  s->dropped_windows = &dropped_->Add(l);
  s->skipped_frames = &skipped_->Add(l);
  s->undecoded_frames = &undecoded_->Add(l);
  s->loads = &loads_->Add(l);
  s->load_failures = &load_failures_->Add(l);
  s->swaps = &swaps_->Add(l);
  const auto phase = [&](const char* p) {
    prometheus::Labels pl = l;
    pl["phase"] = p;
    return &latency_->Add(pl, LatencyBuckets());
  };
  s->decode = phase("decode");
  s->queue = phase("queue");
  s->inference = phase("inference");
  s->total = phase("total");
  model_active_->Add(l).Set(0);
  ModelSeries* out = s.get();
  series_.emplace(key, std::move(s));
  return out;
}

void Metrics::Refused(RefuseReason reason) { refused_by_reason_.at(reason)->Increment(); }

void Metrics::CallEnded(CallKind call, Code code) {
  auto it = calls_by_code_.find({call, code});
  if (it != calls_by_code_.end()) it->second->Increment();
}

void Metrics::SetModelInfo(const std::string& model, uint32_t version, int stage,
                           const std::string& checksum, bool loaded) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_tuple(model, version, stage);
  auto it = info_.find(key);
  if (it != info_.end()) {
    model_info_->Remove(it->second);
    info_.erase(it);
  }
  if (!loaded) return;
  auto& g = model_info_->Add({{"model", model},
                              {"version", std::to_string(version)},
                              {"stage", StageName(Stage(stage))},
                              {"checksum", checksum}});
  g.Set(1);
  info_[key] = &g;
}

void Metrics::SetActive(const std::string& model, uint32_t version, int stage, bool active) {
  model_active_
      ->Add({{"model", model},
             {"version", std::to_string(version)},
             {"stage", StageName(Stage(stage))}})
      .Set(active ? 1 : 0);
}

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void Metrics::Inc(prometheus::Counter* c, double v) {
  if (c) c->Increment(v);
}
void Metrics::Add(prometheus::Gauge* g, double v) {
  if (g) g->Increment(v);
}
void Metrics::Observe(prometheus::Histogram* h, double v) {
  if (h) h->Observe(v);
}

}  // namespace billnet::server
