// billnet-client (docs/client.md).
#include "billnet/client/client.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
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
#include "client_impl.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace billnet::client {
namespace {

using nlohmann::json;

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

json ModelJson(const v1::ModelId& m) {
  return {{"name", m.name()}, {"version", m.version()}, {"stage", StageName(m.stage())}};
}
}  // namespace

std::string StageName(v1::Stage s) {
  if (s >= v1::STAGE_S1 && s <= v1::STAGE_S5) return "S" + std::to_string(int(s));
  return "unspecified";
}

std::string ModelName(const v1::ModelId& m) {
  return m.name() + " v" + std::to_string(m.version()) + " " + StageName(m.stage());
}

namespace {

StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(std::string(flag) + " " + path + ": cannot open the file");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  if (pem.find("-----BEGIN ") == std::string::npos)
    return InvalidArgument(std::string(flag) + " " + path + ": not a PEM file");
  return pem;
}

// The channel's credentials from the TLS options (plaintext without them).
StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(const Options& o) {
  if (o.tls_cert.empty() != o.tls_key.empty())
    return InvalidArgument("--tls-cert and --tls-key go together");
  const bool tls = o.tls || !o.tls_ca.empty() || !o.tls_cert.empty();
  if (!tls) {
    if (!o.tls_server_name.empty()) return InvalidArgument("--tls-server-name needs TLS");
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions s;
  if (!o.tls_ca.empty()) {
    BILLNET_ASSIGN_OR_RETURN(s.pem_root_certs, ReadPem(o.tls_ca, "--tls-ca"));
  }
  if (!o.tls_cert.empty()) {
    BILLNET_ASSIGN_OR_RETURN(s.pem_cert_chain, ReadPem(o.tls_cert, "--tls-cert"));
    BILLNET_ASSIGN_OR_RETURN(s.pem_private_key, ReadPem(o.tls_key, "--tls-key"));
  }
  return grpc::SslCredentials(s);
}

}  // namespace

Client::Client(Options o, std::ostream& out, std::ostream& err,
               std::shared_ptr<grpc::ChannelCredentials> credentials)
    : o_(std::move(o)), out_(out), err_(err) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // Reconnect quickly after a dropped connection (stream --reconnect-seconds).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  if (!o_.tls_server_name.empty()) args.SetSslTargetNameOverride(o_.tls_server_name);
  channel_ = grpc::CreateCustomChannel(
      o_.server, credentials ? credentials : grpc::InsecureChannelCredentials(), args);
  stub_ = v1::GestureService::NewStub(channel_);
  admin_ = v1::ModelAdmin::NewStub(channel_);
}

// Waits for the connection (up to the timeout); false with a message when
// the server cannot be reached.
bool Client::Connect() {
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::milliseconds(int64_t(o_.timeout_s * 1000));
  if (channel_->WaitForConnected(deadline)) return true;
  err_ << "billnet-client: cannot reach the server at " << o_.server << " (no connection within "
       << o_.timeout_s << " s; is billnet-server running? see --server)\n";
  return false;
}

bool Client::WaitConnected(std::chrono::system_clock::time_point deadline) {
  return channel_->WaitForConnected(deadline);
}

// A message for a failed call and the exit code for it.
int Client::Fail(const std::string& what, const grpc::Status& st) {
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

void Client::SetDeadline(grpc::ClientContext* ctx, double seconds) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(int64_t(seconds * 1000)));
}

bool Client::FillModel(v1::ModelRef* ref) {
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

bool Client::ReadFile(const std::string& path, std::string* bytes) {
  if (media::IsUrl(path)) {
    auto source = media::UrlByteSource::Open(path, o_.timeout_s);
    if (!source.ok()) {
      err_ << "billnet-client: " << source.status().message() << "\n";
      return false;
    }
    bytes->clear();
    std::string buf(1 << 16, '\0');
    for (;;) {
      auto n = (*source)->Read(reinterpret_cast<uint8_t*>(buf.data()), buf.size());
      if (!n.ok()) {
        err_ << "billnet-client: " << n.status().message() << "\n";
        return false;
      }
      if (*n == 0) break;
      bytes->append(buf.data(), *n);
      if (bytes->size() > kMaxUnaryBytes) break;  // Classify says why
    }
    return true;
  }
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
std::vector<std::string> Client::Labels(const v1::ModelId& id, int classes) {
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
  for (int c = int(labels.size()); c < classes; ++c) labels.push_back("class " + std::to_string(c));
  return labels;
}

int Client::Classify() {
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
         << resp.probability() << std::defaultfloat << "), " << resp.windows_size() << " windows, "
         << resp.steps_used() << " steps, model " << ModelName(resp.model()) << "\n";
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
int Client::WriteHeatMap(const std::vector<const v1::WindowResult*>& windows,
                         const v1::ModelId& model, std::vector<std::string> labels,
                         const std::string& title) {
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

int Client::Info(bool labels_only) {
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
int Client::Health(const std::string& service) {
  if (!Connect()) return kExitUnreachable;
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse r;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, o_.timeout_s);
  grpc::Status st = health->Check(&ctx, req, &r);
  if (!st.ok()) return Fail("Health check", st);
  const std::string status = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(r.status());
  if (o_.json)
    out_ << json{{"service", service}, {"status", status}}.dump() << "\n";
  else
    out_ << (service.empty() ? "server" : service) << ": " << status << "\n";
  return r.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk : kExitError;
}

int Client::ModelsList() {
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

int Client::ModelsLoad() {
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

int Client::ModelsActivate() {
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

int Client::ModelsUnload() {
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

namespace {

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
  app.add_flag("--tls", o.tls, "Connect with TLS, checking the server with the system's CAs");
  app.add_option("--tls-ca", o.tls_ca, "PEM CA certificates to check the server with (TLS)");
  app.add_option("--tls-cert", o.tls_cert, "PEM client certificate chain (mutual TLS)");
  app.add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-server-name", o.tls_server_name,
                 "Name the server's certificate must carry (default: the --server host)");

  CLI::App* classify = app.add_subcommand("classify", "Classify a whole clip (unary call)");
  classify->add_option("FILE", o.file, "Video file")->required();
  classify->add_option("--heatmap", o.heatmap, "Write the class-temporal response as PNG");
  classify->add_flag("--json", o.json, "Print JSON");
  AddModelOptions(classify, &o);

  CLI::App* stream = app.add_subcommand("stream", "Stream a video and print each window");
  stream
      ->add_option("SOURCE", o.source,
                   "Video file, lavfi:<filter graph>, /dev/videoN or v4l2:/dev/videoN")
      ->required();
  stream->add_option("--duration", o.duration_s, "Stop after this many seconds of the source");
  stream->add_flag("--passthrough", o.passthrough, "Send the file's bytes untouched");
  stream
      ->add_option("--codec", o.codec,
                   "Client-side encoding: ffv1 (lossless), mjpeg, h264, vp9, rawvideo")
      ->capture_default_str();
  stream->add_option("--chunk", o.chunk_bytes, "Bytes per chunk")->capture_default_str();
  stream
      ->add_option("--reconnect-seconds", o.reconnect_s,
                   "How long to keep reconnecting after a dropped connection (0: never)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  stream->add_flag("--realtime", o.realtime, "Pace a file by its timestamps (like a camera)");
  stream->add_option("--input-format", o.input_format,
                     "FFmpeg input format of SOURCE (v4l2 for /dev/video*, x11grab, ...)");
  stream->add_option("--video-size", o.video_size, "Capture size WxH (capture devices)");
  stream->add_option("--fps", o.capture_fps, "Capture frame rate (capture devices)")
      ->check(CLI::PositiveNumber);
  stream->add_flag("--live", o.live_view, "Live terminal view even when stdout is not a terminal");
  stream->add_option("--timeline", o.timeline,
                     "At the end, write the gesture events over time as PNG");
  stream->add_option("--event-smoothing", o.event_smoothing,
                     "Events: EMA weight of the newest step (server default 0.5)");
  stream->add_option("--event-enter", o.event_enter,
                     "Events: probability that starts an event (server default 0.6)");
  stream->add_option("--event-exit", o.event_exit,
                     "Events: probability below which an event ends (server default 0.4)");
  stream->add_option("--event-min-duration", o.event_min_duration,
                     "Events: shortest event in seconds (server default 0.5)");
  stream->add_option("--background-labels", o.background_labels_text,
                     "Events: classes that never form events, comma-separated (replaces the "
                     "server's list; \"\": none)");
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

  if (*stream) {
    o.background_labels_set = stream->count("--background-labels") > 0;
    std::istringstream labels_in(o.background_labels_text);
    for (std::string l; std::getline(labels_in, l, ',');)
      if (!l.empty()) o.background_labels.push_back(l);
    if (o.live_view && o.json) {
      err << "billnet-client: --live and --json exclude each other\n";
      return kExitUsage;
    }
  }
  // The live view needs a terminal: only the binary's own stdout can be one.
  o.out_is_terminal = &out == &std::cout && ::isatty(STDOUT_FILENO) == 1;
  auto credentials = ChannelCredentials(o);
  if (!credentials.ok()) {
    err << "billnet-client: " << credentials.status().message() << "\n";
    return credentials.status().code() == StatusCode::kNotFound ? kExitNotFound : kExitUsage;
  }
  Client client(o, out, err, *credentials);
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