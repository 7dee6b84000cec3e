// Metrics: the one object that owns every metric family of the server
// (prometheus-cpp), created at start; the hot path only increments series it
// was handed when a model was loaded (no metric is created per window).
//
// Families (all prefixed billnet_; labels model, version, stage unless said,
// never a stream id):
//   billnet_active_streams                  gauge
//   billnet_windows_total                   counter  results sent
//   billnet_frames_total                    counter  source frames decoded
//   billnet_decode_errors_total             counter  streams ended by bad input
//   billnet_engine_failures_total           counter  windows whose engine run failed
//   billnet_dropped_windows_total           counter  live windows dropped under overload
//   billnet_skipped_frames_total            counter  live source frames skipped (decoder behind)
//   billnet_undecoded_frames_total          counter  source frames no model frame takes, left
//                                           undecoded (non-reference frames)
//   billnet_refused_streams_total{reason}   counter  limit, draining, unknown_model, bad_request
//   billnet_calls_total{call,code}          counter  Stream and Classify calls ended, by the
//                                           gRPC status code the client got (no model labels)
//   billnet_window_latency_seconds{phase}   histogram phase = decode (per source frame),
//                                           queue, inference, total (per window)
//   billnet_model_loads_total / billnet_model_load_failures_total / billnet_model_swaps_total
//   billnet_model_info{model,version,stage,checksum} = 1 per loaded model
//   billnet_model_active{model,version,stage} = 1 for the active model of a name, else 0
//   billnet_kernel_variant_info{variant} = 1
//   billnet_build_info{version,revision,compiler} = 1
//   billnet_process_start_time_seconds      gauge    Unix time the Metrics object was made
// Every label set of a model is created when the model is first seen (the
// repository scan at start, a load), so untouched counters export 0; the
// reason, call and code series exist from the start.
//
// Thread-safety: every method may be called from any thread.
#ifndef BILLNET_SERVER_CORE_METRICS_H_
#define BILLNET_SERVER_CORE_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/serve_status.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace billnet::server {

// Every series of one (model, version, stage). Pointers stay valid as long as
// the Metrics object.
struct ModelSeries {
  std::string model, version, stage;  // label values ("billnet2x", "3", "s5")
  prometheus::Gauge* active_streams = nullptr;
  prometheus::Counter* windows = nullptr;
  prometheus::Counter* frames = nullptr;
  prometheus::Counter* decode_errors = nullptr;
  prometheus::Counter* engine_failures = nullptr;
  prometheus::Counter* dropped_windows = nullptr;
  prometheus::Counter* skipped_frames = nullptr;
  prometheus::Counter* undecoded_frames = nullptr;
  prometheus::Counter* loads = nullptr;
  prometheus::Counter* load_failures = nullptr;
  prometheus::Counter* swaps = nullptr;
  prometheus::Histogram* decode = nullptr;  // per source frame
  prometheus::Histogram* queue = nullptr;
  prometheus::Histogram* inference = nullptr;
  prometheus::Histogram* total = nullptr;
};

enum class RefuseReason { kLimit, kDraining, kUnknownModel, kBadRequest };
const char* RefuseReasonName(RefuseReason reason);  // "limit", ...

// The calls counted by billnet_calls_total.
enum class CallKind { kStream, kClassify };
const char* CallKindName(CallKind call);  // "stream", "classify"

// What billnet_build_info says (set at configure time).
struct BuildInfo {
  std::string version;   // the project's version, "0.1.0"
  std::string revision;  // git revision of the source tree, or "unknown"
  std::string compiler;  // "GNU 12.2.0"
};
const BuildInfo& GetBuildInfo();

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Bucket boundaries of every latency histogram, in seconds (0.05 among them).
  static const std::vector<double>& LatencyBuckets();

  // Every series of a model, created on the first call (stage as "s1".."s5").
  ModelSeries* Series(const std::string& model, uint32_t version, int stage);

  void Refused(RefuseReason reason);
  // A Stream or Classify call ended with `code` (refused ones included): the
  // denominator of an error ratio. The transport calls it once per call.
  void CallEnded(CallKind call, Code code);
  // billnet_model_info for a loaded model (loaded = false removes it).
  void SetModelInfo(const std::string& model, uint32_t version, int stage,
                    const std::string& checksum, bool loaded);
  void SetActive(const std::string& model, uint32_t version, int stage, bool active);

  // The text exposition format of every family.
  std::string Serialize() const;
  // The registry every family lives in: /metrics and the dashboard read it.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // billnet_process_start_time_seconds (Unix seconds).
  double start_time() const { return start_time_; }

  // Helpers so callers need not include prometheus headers.
  static void Inc(prometheus::Counter* c, double v = 1);
  static void Add(prometheus::Gauge* g, double v);
  static void Observe(prometheus::Histogram* h, double v);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>* active_streams_;
  prometheus::Family<prometheus::Counter>* windows_;
  prometheus::Family<prometheus::Counter>* frames_;
  prometheus::Family<prometheus::Counter>* decode_errors_;
  prometheus::Family<prometheus::Counter>* engine_failures_;
  prometheus::Family<prometheus::Counter>* calls_;
  prometheus::Family<prometheus::Counter>* dropped_;
  prometheus::Family<prometheus::Counter>* skipped_;
  prometheus::Family<prometheus::Counter>* undecoded_;
  prometheus::Family<prometheus::Counter>* refused_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Family<prometheus::Counter>* loads_;
  prometheus::Family<prometheus::Counter>* load_failures_;
  prometheus::Family<prometheus::Counter>* swaps_;
  prometheus::Family<prometheus::Gauge>* model_info_;
  prometheus::Family<prometheus::Gauge>* model_active_;
  prometheus::Family<prometheus::Gauge>* kernel_variant_;
  double start_time_ = 0;

  std::mutex mu_;
  std::map<std::tuple<std::string, uint32_t, int>, std::unique_ptr<ModelSeries>> series_;
  std::map<std::tuple<std::string, uint32_t, int>, prometheus::Gauge*> info_;
  std::map<RefuseReason, prometheus::Counter*> refused_by_reason_;
  std::map<std::pair<CallKind, Code>, prometheus::Counter*> calls_by_code_;
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_METRICS_H_
