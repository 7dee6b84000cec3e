// billnet-client (docs/client.md).
#include "billnet/client/client.h"

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "billnet/media/byte_io.h"
#include "billnet/media/encoder.h"
#include "billnet/media/pipeline.h"
#include "billnet/v1/gesture_service.grpc.pb.h"
#include "billnet/v1/model_admin.grpc.pb.h"
#include "billnet/viz/charts.h"
#include "billnet/viz/png.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace billnet::client {
namespace {

using nlohmann::json;

struct Options {
  std::string server = "127.0.0.1:50051";
  double timeout_s = 10;  // deadline of unary calls and of the connection
  std::string model;
  uint32_t version = 0;
  std::string stage;  // s1..s5 or empty
  bool json = false;
  // classify
  std::string file;
  std::string heatmap;
  // stream
  std::string source;
  double duration_s = 0;
  bool passthrough = false;
  std::string codec = "ffv1";  // client-side encoding (not --passthrough)
  size_t chunk_bytes = 64 * 1024;
  int heatmap_windows = 8;  // stream --heatmap: the last N windows
};

// Unary calls carry at most this much video (the server's default message
// limit is 64 MiB).
constexpr size_t kMaxUnaryBytes = 60u << 20;
constexpr size_t kUnaryChunk = 1u << 20;

bool ParseStage(const std::string& s, v1::Stage* stage) {
  if (s.empty()) {
    *stage = v1::STAGE_UNSPECIFIED;
    return true;
  }
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l.size() == 2 && l[0] == 's' && l[1] >= '1' && l[1] <= '5') {
    *stage = v1::Stage(l[1] - '0');
    return true;
  }
  return false;
}

std::string StageName(v1::Stage s) {
  if (s >= v1::STAGE_S1 && s <= v1::STAGE_S5) return "S" + std::to_string(int(s));
  return "unspecified";
}

std::string ModelName(const v1::ModelId& m) {
  return m.name() + " v" + std::to_string(m.version()) + " " + StageName(m.stage());
}

json ModelJson(const v1::ModelId& m) {
  return {{"name", m.name()}, {"version", m.version()}, {"stage", StageName(m.stage())}};
}

class Client {
 public:
  Client(Options o, std::ostream& out, std::ostream& err) : o_(o), out_(out), err_(err) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(o.server, grpc::InsecureChannelCredentials(), args);
    stub_ = v1::GestureService::NewStub(channel_);
    admin_ = v1::ModelAdmin::NewStub(channel_);
  }

  // Waits for the connection (up to the timeout); false with a message when
  // the server cannot be reached.
  bool Connect() {
    const auto deadline =
        std::chrono::system_clock::now() + std::chrono::milliseconds(int64_t(o_.timeout_s * 1000));
    if (channel_->WaitForConnected(deadline)) return true;
    err_ << "billnet-client: cannot reach the server at " << o_.server << " (no connection within "
         << o_.timeout_s << " s; is billnet-server running? see --server)\n";
    return false;
  }

  // A message for a failed call and the exit code for it.
  int Fail(const std::string& what, const grpc::Status& st) {
    err_ << "billnet-client: " << what << " failed: ";
    int code = kExitError;
    switch (st.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
        err_ << "server unavailable at " << o_.server;
        code = kExitUnreachable;
        break;
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        err_ << "no answer within the deadline";
        code = kExitUnreachable;
        break;
      case grpc::StatusCode::NOT_FOUND:
        err_ << "not found";
        code = kExitNotFound;
        break;
      case grpc::StatusCode::INVALID_ARGUMENT:
        err_ << "invalid argument";
        break;
      default:
        err_ << "status " << int(st.error_code());
    }
    if (!st.error_message().empty()) err_ << ": " << st.error_message();
    err_ << "\n";
    return code;
  }

  void SetDeadline(grpc::ClientContext* ctx, double seconds) {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(int64_t(seconds * 1000)));
  }

  bool FillModel(v1::ModelRef* ref) {
    v1::Stage stage;
    if (!ParseStage(o_.stage, &stage)) {
      err_ << "billnet-client: bad --stage '" << o_.stage << "' (s1..s5)\n";
      return false;
    }
    ref->set_name(o_.model);
    ref->set_version(o_.version);
    ref->set_stage(stage);
    return true;
  }

  bool ReadFile(const std::string& path, std::string* bytes) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      err_ << "billnet-client: no such file: " << path << "\n";
      return false;
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (!in) {
      err_ << "billnet-client: cannot read " << path << "\n";
      return false;
    }
    *bytes = ss.str();
    return true;
  }

  // The labels of the model that computed a result (GetModelInfo).
  std::vector<std::string> Labels(const v1::ModelId& id, int classes) {
    v1::ModelInfoRequest req;
    req.mutable_model()->set_name(id.name());
    req.mutable_model()->set_version(id.version());
    req.mutable_model()->set_stage(id.stage());
    v1::ModelInfoResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, o_.timeout_s);
    std::vector<std::string> labels;
    if (stub_->GetModelInfo(&ctx, req, &resp).ok() && resp.labels_size() == classes)
      labels.assign(resp.labels().begin(), resp.labels().end());
    for (int c = int(labels.size()); c < classes; ++c)
      labels.push_back("class " + std::to_string(c));
    return labels;
  }

  int Classify() {
    std::string bytes;
    if (!ReadFile(o_.file, &bytes)) return kExitNotFound;
    if (bytes.size() > kMaxUnaryBytes) {
      err_ << "billnet-client: " << o_.file << " is " << bytes.size()
           << " bytes, more than a unary call carries (" << kMaxUnaryBytes
           << "); use 'stream' for long videos\n";
      return kExitError;
    }
    if (!Connect()) return kExitUnreachable;
    v1::ClassifyRequest req;
    if (!FillModel(req.mutable_model())) return kExitUsage;
    // Large clips go as several chunks of the request (the server
    // concatenates video and chunks).
    if (bytes.size() <= kUnaryChunk) {
      req.set_video(bytes);
    } else {
      for (size_t off = 0; off < bytes.size(); off += kUnaryChunk)
        req.add_chunks(bytes.substr(off, kUnaryChunk));
    }
    v1::ClassifyResponse resp;
    grpc::ClientContext ctx;
    // Inference of a whole clip takes longer than an ordinary call.
    SetDeadline(&ctx, std::max(o_.timeout_s, 10.0) * 6);
    grpc::Status st = stub_->Classify(&ctx, req, &resp);
    if (!st.ok()) return Fail("Classify of " + o_.file, st);

    if (o_.json) {
      json j = {{"file", o_.file},
                {"label", resp.label_name()},
                {"label_index", resp.label()},
                {"probability", resp.probability()},
                {"windows", resp.windows_size()},
                {"steps_used", resp.steps_used()},
                {"model", ModelJson(resp.model())},
                {"mean_probabilities", std::vector<float>(resp.mean_probabilities().begin(),
                                                          resp.mean_probabilities().end())}};
      if (!o_.heatmap.empty()) j["heatmap"] = o_.heatmap;
      out_ << j.dump() << "\n";
    } else {
      out_ << o_.file << ": " << resp.label_name() << " (" << std::fixed << std::setprecision(3)
           << resp.probability() << std::defaultfloat << "), " << resp.windows_size()
           << " windows, " << resp.steps_used() << " steps, model " << ModelName(resp.model())
           << "\n";
    }
    if (!o_.heatmap.empty()) {
      std::vector<const v1::WindowResult*> windows;
      for (const auto& w : resp.windows()) windows.push_back(&w);
      return WriteHeatMap(
          windows, resp.model(), {},
          std::filesystem::path(o_.file).filename().string() + ": " + resp.label_name());
    }
    return kExitOk;
  }

  // The class-temporal response of windows: classes x (steps of all windows),
  // row labels from `labels` or else GetModelInfo of `model`.
  int WriteHeatMap(const std::vector<const v1::WindowResult*>& windows, const v1::ModelId& model,
                   std::vector<std::string> labels, const std::string& title) {
    if (windows.empty()) {
      err_ << "billnet-client: no windows, no heat map\n";
      return kExitError;
    }
    const int classes = windows[0]->classes();
    int cols = 0;
    for (const auto* w : windows) cols += w->steps();
    viz::HeatMapSpec spec;
    spec.rows = classes;
    spec.cols = cols;
    spec.values.assign(size_t(classes) * cols, std::nan(""));
    int col = 0;
    for (const auto* w : windows) {
      for (int s = 0; s < w->steps(); ++s, ++col)
        for (int c = 0; c < classes; ++c) {
          const int i = s * w->classes() + c;
          if (c < w->classes() && i < w->probabilities_size())
            spec.values[size_t(c) * cols + col] = w->probabilities(i);
        }
    }
    if (int(labels.size()) != classes) labels = Labels(model, classes);
    spec.row_labels = std::move(labels);
    spec.mark_column_max = true;
    spec.title = title;
    spec.x_title = "step (" + std::to_string(windows[0]->steps()) + " per window)";
    spec.colorbar_title = "probability";
    const viz::Canvas canvas = viz::HeatMap(spec);
    const std::string e = viz::WritePng(o_.heatmap, canvas.data(), canvas.width(), canvas.height());
    if (!e.empty()) {
      err_ << "billnet-client: " << e << "\n";
      return kExitError;
    }
    if (!o_.json) out_ << "heat map: " << o_.heatmap << "\n";
    return kExitOk;
  }

  int Stream() {
    const bool lavfi = o_.source.rfind("lavfi:", 0) == 0;
    if (o_.source.rfind("/dev/", 0) == 0) {
      err_ << "billnet-client: capture devices (" << o_.source
           << ") are not supported yet; use a file or lavfi:<graph>\n";
      return kExitError;
    }
    if (lavfi && o_.passthrough) {
      err_ << "billnet-client: --passthrough needs a file, not " << o_.source << "\n";
      return kExitUsage;
    }
    if (lavfi && o_.duration_s <= 0) {
      o_.duration_s = 10;
      err_ << "billnet-client: no --duration for " << o_.source << ": streaming 10 s\n";
    }
    std::string bytes;
    if (o_.passthrough) {
      if (!ReadFile(o_.source, &bytes)) return kExitNotFound;
      if (!Connect()) return kExitUnreachable;
    } else {
      std::error_code ec;
      if (!lavfi && !std::filesystem::is_regular_file(o_.source, ec)) {
        err_ << "billnet-client: no such file: " << o_.source << "\n";
        return kExitNotFound;
      }
      if (!Connect()) return kExitUnreachable;
      const int code = EncodeForModel(&bytes);
      if (code != kExitOk) return code;
    }

    v1::StreamRequest first;
    v1::StreamConfig* config = first.mutable_config();
    if (!FillModel(config->mutable_model())) return kExitUsage;
    config->set_stream_id(lavfi ? std::string("lavfi")
                                : std::filesystem::path(o_.source).filename().string());
    config->set_mode(v1::STREAM_MODE_FILE);

    grpc::ClientContext ctx;
    auto stream = stub_->Stream(&ctx);
    std::thread writer([&] {
      if (!stream->Write(first)) return;
      v1::StreamRequest req;
      for (size_t off = 0; off < bytes.size(); off += o_.chunk_bytes) {
        req.set_chunk(bytes.substr(off, o_.chunk_bytes));
        if (!stream->Write(req)) return;
      }
      stream->WritesDone();
    });

    std::vector<std::string> labels;
    v1::StreamResponse resp;
    bool cancelled = false;
    int64_t windows = 0;
    v1::StreamSummary summary;
    bool have_summary = false;
    std::deque<v1::WindowResult> recent;  // the last --heatmap-windows windows
    v1::ModelId model;
    while (stream->Read(&resp)) {
      if (resp.has_started()) model = resp.started().model();
      if (resp.has_started()) {
        const auto& s = resp.started();
        labels.assign(s.labels().begin(), s.labels().end());
        if (o_.json) {
          out_ << json{{"type", "started"},    {"model", ModelJson(s.model())},
                       {"frames", s.frames()}, {"width", s.width()},
                       {"height", s.height()}, {"fps", s.fps()}}
                      .dump()
               << "\n";
        } else {
          out_ << "streaming " << o_.source << " to " << ModelName(s.model()) << " (" << s.frames()
               << " frames of " << s.width() << "x" << s.height() << " at " << s.fps()
               << " fps per window)\n";
        }
      }
      if (resp.has_window() && !cancelled) {
        PrintWindow(resp.window(), labels);
        if (!o_.heatmap.empty()) {
          recent.push_back(resp.window());
          if (int(recent.size()) > o_.heatmap_windows) recent.pop_front();
        }
        ++windows;
        if (o_.duration_s > 0 && resp.window().last_source_ts() >= o_.duration_s) {
          cancelled = true;
          ctx.TryCancel();
        }
      }
      for (const auto& e : resp.events()) PrintEvent(e);
      if (resp.has_summary()) {
        summary = resp.summary();
        have_summary = true;
      }
    }
    writer.join();
    grpc::Status st = stream->Finish();
    int code = kExitOk;
    if (cancelled) {
      if (!o_.json) out_ << "stopped after " << o_.duration_s << " s of the source\n";
    } else if (!st.ok()) {
      code = Fail("Stream of " + o_.source, st);
    }
    if (!o_.heatmap.empty() && !recent.empty()) {
      std::vector<const v1::WindowResult*> windows;
      for (const auto& w : recent) windows.push_back(&w);
      const int hm = WriteHeatMap(windows, model, labels,
                                  "windows " + std::to_string(recent.front().sequence()) + "-" +
                                      std::to_string(recent.back().sequence()));
      if (code == kExitOk) code = hm;
    }
    if (cancelled || code != kExitOk) return code;
    if (have_summary) {
      if (o_.json) {
        out_ << json{{"type", "summary"},
                     {"windows", summary.windows()},
                     {"source_frames", summary.source_frames()},
                     {"model_frames", summary.model_frames()},
                     {"padded_windows", summary.padded_windows()},
                     {"dropped_windows", summary.dropped_windows()},
                     {"bytes", summary.bytes_received()}}
                    .dump()
             << "\n";
      } else {
        out_ << "done: " << summary.windows() << " windows, " << summary.source_frames()
             << " source frames, " << summary.model_frames() << " model frames\n";
      }
    }
    return code;
  }

  // Client-side mode: asks the server for the model's geometry and frame rate,
  // decodes the file and scales/crops/resamples it with media's pipeline, and
  // encodes the model frames (FFV1 lossless by default) into Matroska in
  // memory. The frames are at exact multiples of 1 / fps from 0, so the
  // server's resampler keeps every one.
  int EncodeForModel(std::string* bytes) {
    auto codec = media::ParseVideoCodec(o_.codec);
    if (!codec.ok()) {
      err_ << "billnet-client: bad --codec '" << o_.codec << "': " << codec.status().message()
           << "\n";
      return kExitUsage;
    }
    v1::ModelInfoRequest req;
    if (!FillModel(req.mutable_model())) return kExitUsage;
    v1::ModelInfoResponse info;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, o_.timeout_s);
    grpc::Status st = stub_->GetModelInfo(&ctx, req, &info);
    if (!st.ok()) return Fail("GetModelInfo", st);
    media::ModelTarget target;
    target.height = info.height();
    target.width = info.width();
    target.fps = info.fps();
    media::DecoderOptions dopt;
    std::string path = o_.source;
    if (path.rfind("lavfi:", 0) == 0) {
      // An FFmpeg filter graph as the input (libavdevice's lavfi).
      path = path.substr(6);
      dopt.format_hint = "lavfi";
    }
    auto decoder = media::VideoDecoder::Open(path, dopt);
    if (!decoder.ok()) {
      err_ << "billnet-client: cannot open " << o_.source << ": " << decoder.status().message()
           << "\n";
      return kExitError;
    }
    media::EncoderOptions eo;
    eo.codec = *codec;
    eo.container = "matroska";
    eo.width = target.width;
    eo.height = target.height;
    eo.fps = target.fps;
    eo.crf = 0;
    eo.mjpeg_qscale = 2;
    media::MemoryByteSink sink(/*seekable=*/false);
    auto enc = media::VideoEncoder::Open(&sink, eo, "client stream");
    if (!enc.ok()) {
      err_ << "billnet-client: encoder: " << enc.status().message() << "\n";
      return kExitError;
    }
    // Decode -> scale/crop -> resample to the model's rate -> encode, frame
    // by frame, up to --duration seconds of model frames.
    const int64_t max_frames =
        o_.duration_s > 0 ? std::max<int64_t>(1, int64_t(std::llround(o_.duration_s * target.fps)))
                          : -1;
    media::ModelFrameStream frames(target);
    int64_t encoded = 0;
    const media::ModelFrameStream::Emit emit = [&](const media::ModelFrame& f) -> Status {
      if (max_frames >= 0 && encoded >= max_frames) return Status();
      ++encoded;
      return (*enc)->AddFrame(f.rgb);
    };
    Status s;
    media::DecodedFrame frame;
    while (s.ok() && (max_frames < 0 || encoded < max_frames)) {
      auto more = (*decoder)->Next(&frame);
      if (!more.ok()) {
        s = more.status();
        break;
      }
      if (!*more) break;
      s = frames.Push(std::move(frame), emit);
    }
    if (s.ok()) s = frames.Flush(emit);
    if (s.ok()) s = (*enc)->Finish();
    if (!s.ok()) {
      err_ << "billnet-client: " << o_.source << ": " << s.message() << "\n";
      return kExitError;
    }
    if (encoded == 0) {
      err_ << "billnet-client: " << o_.source << " has no video frames\n";
      return kExitError;
    }
    const std::vector<uint8_t> out = sink.Take();
    bytes->assign(out.begin(), out.end());
    if (!o_.json)
      out_ << "client side: " << (*decoder)->frames_decoded() << " source frames -> " << encoded
           << " model frames of " << target.width << "x" << target.height << " at " << target.fps
           << " fps, " << bytes->size() << " bytes " << o_.codec << "/matroska\n";
    return kExitOk;
  }

  // One window: the class with the highest mean probability over its steps.
  void PrintWindow(const v1::WindowResult& w, const std::vector<std::string>& labels) {
    int best = -1;
    float best_p = -1;
    for (int c = 0; c < w.classes(); ++c) {
      float sum = 0;
      for (int s = 0; s < w.steps(); ++s) {
        const int i = s * w.classes() + c;
        if (i < w.probabilities_size()) sum += w.probabilities(i);
      }
      const float mean = w.steps() > 0 ? sum / float(w.steps()) : 0;
      if (mean > best_p) best_p = mean, best = c;
    }
    const std::string label = best >= 0 && best < int(labels.size())
                                  ? labels[size_t(best)]
                                  : "class " + std::to_string(best);
    if (o_.json) {
      json j = {
          {"type", "window"},
          {"sequence", w.sequence()},
          {"label", label},
          {"label_index", best},
          {"probability", best_p},
          {"first_ts", w.first_source_ts()},
          {"last_ts", w.last_source_ts()},
          {"latency_s", w.timings().total_s()},
          {"padded", w.padded()},
          {"top_label", std::vector<std::string>(w.top_label().begin(), w.top_label().end())}};
      if (w.state_reset()) j["state_reset"] = w.state_reset_reason();
      out_ << j.dump() << "\n";
    } else {
      out_ << "window " << std::setw(4) << w.sequence() << "  " << std::fixed
           << std::setprecision(2) << std::setw(7) << w.first_source_ts() << "-" << std::setw(7)
           << w.last_source_ts() << " s  " << label << " (" << std::setprecision(3) << best_p
           << ")  latency " << std::setprecision(1) << w.timings().total_s() * 1000 << " ms"
           << std::defaultfloat << (w.padded() ? "  padded" : "")
           << (w.state_reset() ? "  state reset: " + w.state_reset_reason() : "") << "\n";
    }
  }

  void PrintEvent(const v1::GestureEvent& e) {
    if (o_.json) {
      out_ << json{{"type", "event"},          {"label", e.label_name()},
                   {"label_index", e.label()}, {"start_s", e.start_s()},
                   {"end_s", e.end_s()},       {"confidence", e.confidence()}}
                  .dump()
           << "\n";
    } else {
      out_ << "gesture: " << e.label_name() << " " << std::fixed << std::setprecision(2)
           << e.start_s() << "-" << e.end_s() << " s (" << std::setprecision(3) << e.confidence()
           << ")" << std::defaultfloat << "\n";
    }
  }

  int Info(bool labels_only) {
    if (!Connect()) return kExitUnreachable;
    v1::ModelInfoRequest req;
    if (!FillModel(req.mutable_model())) return kExitUsage;
    v1::ModelInfoResponse r;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, o_.timeout_s);
    grpc::Status st = stub_->GetModelInfo(&ctx, req, &r);
    if (!st.ok()) return Fail("GetModelInfo", st);
    const std::vector<std::string> labels(r.labels().begin(), r.labels().end());
    if (labels_only) {
      if (o_.json)
        out_ << json(labels).dump() << "\n";
      else
        for (size_t i = 0; i < labels.size(); ++i) out_ << i << "\t" << labels[i] << "\n";
      return kExitOk;
    }
    json j = {{"model", ModelJson(r.model())},
              {"active", r.active()},
              {"frames", r.frames()},
              {"height", r.height()},
              {"width", r.width()},
              {"fps", r.fps()},
              {"steps", r.steps()},
              {"classes", r.classes()},
              {"temperature", r.temperature()},
              {"parameters", r.parameters()},
              {"weight_bits", r.weight_bits()},
              {"gbops", r.gbops()},
              {"kernel_variant", r.kernel_variant()},
              {"checksum", r.checksum()},
              {"labels", labels}};
    if (o_.json) {
      out_ << j.dump() << "\n";
    } else {
      out_ << "model:       " << ModelName(r.model()) << (r.active() ? " (active)" : "") << "\n"
           << "input:       " << r.frames() << " frames x " << r.height() << " x " << r.width()
           << " x 3 at " << r.fps() << " fps\n"
           << "output:      " << r.steps() << " steps x " << r.classes() << " classes\n"
           << "parameters:  " << r.parameters() << " (" << r.weight_bits() / 8 << " bytes)\n"
           << "GBOPs:       " << r.gbops() << "\n"
           << "kernels:     " << r.kernel_variant() << "\n"
           << "checksum:    " << r.checksum() << "\n";
    }
    return kExitOk;
  }

  // grpc.health.v1: the server as a whole ("") or one service.
  int Health(const std::string& service) {
    if (!Connect()) return kExitUnreachable;
    auto health = grpc::health::v1::Health::NewStub(channel_);
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse r;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, o_.timeout_s);
    grpc::Status st = health->Check(&ctx, req, &r);
    if (!st.ok()) return Fail("Health check", st);
    const std::string status =
        grpc::health::v1::HealthCheckResponse::ServingStatus_Name(r.status());
    if (o_.json)
      out_ << json{{"service", service}, {"status", status}}.dump() << "\n";
    else
      out_ << (service.empty() ? "server" : service) << ": " << status << "\n";
    return r.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk : kExitError;
  }

  int ModelsList() {
    if (!Connect()) return kExitUnreachable;
    v1::ListModelsResponse r;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, o_.timeout_s);
    grpc::Status st = admin_->ListModels(&ctx, v1::ListModelsRequest(), &r);
    if (!st.ok()) return Fail("ListModels", st);
    if (o_.json) {
      json models = json::array();
      for (const auto& m : r.models()) {
        json versions = json::array();
        for (const auto& v : m.versions()) {
          json stages = json::array();
          for (const auto& s : v.stages())
            stages.push_back(
                {{"stage", StageName(s.stage())}, {"loaded", s.loaded()}, {"active", s.active()}});
          versions.push_back(
              {{"version", v.version()}, {"complete", v.complete()}, {"stages", stages}});
        }
        models.push_back({{"name", m.name()},
                          {"active", ModelJson(m.active())},
                          {"follows_latest", m.follows_latest()},
                          {"versions", versions}});
      }
      out_ << json{{"repository", r.repository()},
                   {"default_model", r.default_model()},
                   {"models", models}}
                  .dump()
           << "\n";
      return kExitOk;
    }
    out_ << "repository " << r.repository() << ", default model " << r.default_model() << "\n";
    for (const auto& m : r.models()) {
      out_ << m.name() << ": active " << ModelName(m.active())
           << (m.follows_latest() ? " (follows latest)" : "") << "\n";
      for (const auto& v : m.versions()) {
        out_ << "  v" << v.version() << (v.complete() ? "" : " (incomplete)") << ":";
        for (const auto& s : v.stages())
          out_ << " " << StageName(s.stage()) << (s.loaded() ? "[loaded]" : "")
               << (s.active() ? "[active]" : "");
        out_ << "\n";
      }
    }
    return kExitOk;
  }

  int ModelsLoad() {
    if (!Connect()) return kExitUnreachable;
    v1::LoadModelRequest req;
    if (!FillModel(req.mutable_model())) return kExitUsage;
    v1::LoadModelResponse r;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, std::max(o_.timeout_s, 30.0));
    grpc::Status st = admin_->Load(&ctx, req, &r);
    if (!st.ok()) return Fail("Load", st);
    if (o_.json)
      out_ << json{{"model", ModelJson(r.model())}, {"checksum", r.checksum()}}.dump() << "\n";
    else
      out_ << "loaded " << ModelName(r.model()) << " " << r.checksum() << "\n";
    return kExitOk;
  }

  int ModelsActivate() {
    if (!Connect()) return kExitUnreachable;
    v1::ActivateModelRequest req;
    if (!FillModel(req.mutable_model())) return kExitUsage;
    v1::ActivateModelResponse r;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, std::max(o_.timeout_s, 30.0));
    grpc::Status st = admin_->Activate(&ctx, req, &r);
    if (!st.ok()) return Fail("Activate", st);
    if (o_.json)
      out_ << json{{"previous", ModelJson(r.previous())}, {"active", ModelJson(r.active())}}.dump()
           << "\n";
    else
      out_ << "active " << ModelName(r.active()) << " (was " << ModelName(r.previous()) << ")\n";
    return kExitOk;
  }

  int ModelsUnload() {
    if (!Connect()) return kExitUnreachable;
    v1::UnloadModelRequest req;
    if (!FillModel(req.mutable_model())) return kExitUsage;
    v1::UnloadModelResponse r;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, o_.timeout_s);
    grpc::Status st = admin_->Unload(&ctx, req, &r);
    if (!st.ok()) return Fail("Unload", st);
    if (!o_.json) out_ << "unloaded\n";
    return kExitOk;
  }

 private:
  Options o_;
  std::ostream& out_;
  std::ostream& err_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::GestureService::Stub> stub_;
  std::unique_ptr<v1::ModelAdmin::Stub> admin_;
};

void AddModelOptions(CLI::App* app, Options* o) {
  app->add_option("--model", o->model, "Model name (default: the server's default model)");
  app->add_option("--version", o->version, "Model version (0: the active one)");
  app->add_option("--stage", o->stage, "Model stage s1..s5 (default: the active one)");
}

}  // namespace

int RunClient(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Options o;
  CLI::App app{"billnet-client: streams video to billnet-server and prints the gestures",
               "billnet-client"};
  app.set_help_all_flag("--help-all");
  app.require_subcommand(1);
  app.add_option("--server", o.server, "Server address HOST:PORT")->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "Seconds to wait for the server")->capture_default_str();
  app.add_flag("--json", o.json, "Print JSON");

  CLI::App* classify = app.add_subcommand("classify", "Classify a whole clip (unary call)");
  classify->add_option("FILE", o.file, "Video file")->required();
  classify->add_option("--heatmap", o.heatmap, "Write the class-temporal response as PNG");
  classify->add_flag("--json", o.json, "Print JSON");
  AddModelOptions(classify, &o);

  CLI::App* stream = app.add_subcommand("stream", "Stream a video and print each window");
  stream->add_option("SOURCE", o.source, "Video file or lavfi:<filter graph>")->required();
  stream->add_option("--duration", o.duration_s, "Stop after this many seconds of the source");
  stream->add_flag("--passthrough", o.passthrough, "Send the file's bytes untouched");
  stream
      ->add_option("--codec", o.codec,
                   "Client-side encoding: ffv1 (lossless), mjpeg, h264, vp9, rawvideo")
      ->capture_default_str();
  stream->add_option("--chunk", o.chunk_bytes, "Bytes per chunk")->capture_default_str();
  stream->add_flag("--json", o.json, "Print one JSON object per window");
  stream->add_option("--heatmap", o.heatmap,
                     "At the end, write the last windows' class-temporal response as PNG");
  stream->add_option("--heatmap-windows", o.heatmap_windows, "How many windows the heat map shows")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  AddModelOptions(stream, &o);

  CLI::App* info = app.add_subcommand("info", "Model geometry, frame rate, size and cost");
  info->add_flag("--json", o.json, "Print JSON");
  AddModelOptions(info, &o);
  CLI::App* labels = app.add_subcommand("labels", "The model's class labels");
  labels->add_flag("--json", o.json, "Print JSON");
  AddModelOptions(labels, &o);

  std::string health_service;
  CLI::App* health = app.add_subcommand("health", "grpc.health.v1 check (exit 0 when SERVING)");
  health->add_option("--service", health_service,
                     "Service name (e.g. billnet.v1.GestureService); empty: the server");
  health->add_flag("--json", o.json, "Print JSON");

  CLI::App* models = app.add_subcommand("models", "The server's model repository");
  models->require_subcommand(1);
  CLI::App* list = models->add_subcommand("list", "List models, versions and stages");
  list->add_flag("--json", o.json, "Print JSON");
  CLI::App* load = models->add_subcommand("load", "Load a model");
  CLI::App* activate = models->add_subcommand("activate", "Make a model the active one");
  CLI::App* unload = models->add_subcommand("unload", "Unload a model (version and stage)");
  for (CLI::App* a : {load, activate, unload}) {
    a->add_option("NAME", o.model, "Model name")->required();
    a->add_option("--version", o.version, "Model version");
    a->add_option("--stage", o.stage, "Model stage s1..s5");
    a->add_flag("--json", o.json, "Print JSON");
  }

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    return code == 0 ? kExitOk : kExitUsage;
  }

  Client client(o, out, err);
  if (*classify) return client.Classify();
  if (*stream) return client.Stream();
  if (*info) return client.Info(false);
  if (*labels) return client.Info(true);
  if (*health) return client.Health(health_service);
  if (*list) return client.ModelsList();
  if (*load) return client.ModelsLoad();
  if (*activate) return client.ModelsActivate();
  if (*unload) return client.ModelsUnload();
  err << "billnet-client: no command\n";
  return kExitUsage;
}

}  // namespace billnet::client
