// `stream` (docs/client.md): one Stream call per connection, resumed with the
// last state token when the connection drops; line-per-window output, JSON,
// or the live terminal view; heat map and events timeline at the end.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "billnet/media/byte_io.h"
#include "billnet/viz/charts.h"
#include "billnet/viz/png.h"
#include "client_impl.h"
#include "uplink.h"
#include "view.h"

namespace billnet::client {

using nlohmann::json;

namespace {

// A URL's last path component without query or fragment ("cam1" for
// rtsp://host/live/cam1?x=1); the host when the path is empty.
std::string UrlStreamId(const std::string& url) {
  std::string rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find_first_of("?#"));
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t slash = rest.rfind('/');
  return slash == std::string::npos ? rest : rest.substr(slash + 1);
}

json ModelJson(const v1::ModelId& m) {
  return {{"name", m.name()}, {"version", m.version()}, {"stage", StageName(m.stage())}};
}

std::string StatusText(const grpc::Status& st) {
  std::string code;
  switch (st.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      code = "unavailable";
      break;
    case grpc::StatusCode::CANCELLED:
      code = "cancelled";
      break;
    case grpc::StatusCode::UNKNOWN:
      code = "unknown";
      break;
    default:
      code = "status " + std::to_string(int(st.error_code()));
  }
  return st.error_message().empty() ? code : code + ": " + st.error_message();
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

struct Client::StreamRun {
  std::unique_ptr<Uplink> uplink;
  v1::StreamConfig config;  // without the token
  std::string token;        // the last window's state token
  double covered_ts = -1;   // the last window's last source timestamp
  int connections = 0;
  bool cancelled = false;  // --duration reached (we cancelled)
  bool progress = false;   // the current connection delivered a window
  std::vector<std::string> labels;
  v1::ModelId model;
  std::deque<v1::WindowResult> recent;  // for --heatmap
  std::vector<ViewEvent> events;
  double last_ts = 0;
  v1::StreamSummary summary;
  bool have_summary = false;
  // Live view.
  bool live = false;
  LiveState view;
  int view_lines = 0;
  double first_window_wall = -1;
  int64_t frames_after_first = 0;
};

void Client::DrawLive(StreamRun* run) {
  int lines = 0;
  out_ << RenderLiveView(run->view, run->view_lines, &lines);
  out_.flush();
  run->view_lines = lines;
}

grpc::Status Client::StreamOnce(StreamRun* run, bool* lost, std::string* local_error) {
  *lost = false;
  run->progress = false;
  const bool resuming = !run->token.empty();
  v1::StreamRequest first;
  *first.mutable_config() = run->config;
  if (resuming) first.mutable_config()->set_state_token(run->token);
  // With a token: from the frame it covers; without one (lost before the
  // first window): from the start.
  if (Status b = run->uplink->Begin(resuming ? run->covered_ts : -1); !b.ok()) {
    *local_error = b.message();
    return grpc::Status(grpc::StatusCode::INTERNAL, b.message());
  }
  ++run->connections;

  grpc::ClientContext ctx;
  auto stream = stub_->Stream(&ctx);
  std::atomic<bool> reader_done{false};
  std::string writer_error;
  std::thread writer([&] {
    if (!stream->Write(first)) return;
    v1::StreamRequest req;
    std::string chunk;
    for (;;) {
      auto more = run->uplink->Next(o_.chunk_bytes, &chunk);
      if (!more.ok()) {
        if (!reader_done) {
          writer_error = more.status().message();
          ctx.TryCancel();
        }
        return;
      }
      if (!*more) break;
      req.set_chunk(std::move(chunk));
      if (!stream->Write(req)) return;
    }
    stream->WritesDone();
  });

  v1::StreamResponse resp;
  while (stream->Read(&resp)) {
    if (resp.has_started()) {
      const auto& s = resp.started();
      run->model = s.model();
      run->labels.assign(s.labels().begin(), s.labels().end());
      if (resuming) {
        if (s.resumed())
          err_ << "billnet-client: resumed at window " << s.next_sequence() << "\n";
        else
          err_ << "billnet-client: the server could not resume ("
               << (s.state_reset_reason().empty() ? std::string("no reason given")
                                                  : s.state_reset_reason())
               << "); the stream starts fresh\n";
      }
      if (o_.json) {
        json j = {{"type", "started"},  {"model", ModelJson(s.model())}, {"frames", s.frames()},
                  {"width", s.width()}, {"height", s.height()},          {"fps", s.fps()}};
        if (resuming) {
          j["resumed"] = s.resumed();
          j["next_sequence"] = s.next_sequence();
          if (!s.state_reset_reason().empty()) j["state_reset_reason"] = s.state_reset_reason();
        }
        out_ << j.dump() << "\n";
      } else if (run->live) {
        run->view.model = ModelName(s.model());
        run->view.status.clear();
        DrawLive(run);
      } else if (run->connections == 1) {
        out_ << "streaming " << o_.source << " to " << ModelName(s.model()) << " (" << s.frames()
             << " frames of " << s.width() << "x" << s.height() << " at " << s.fps()
             << " fps per window)\n";
      }
    }
    if (resp.has_window() && !run->cancelled) {
      const v1::WindowResult& w = resp.window();
      run->progress = true;
      if (!w.state_token().empty()) {
        run->token = w.state_token();
        run->covered_ts = w.last_source_ts();
      }
      std::optional<double> since = run->uplink->SinceSent(w.last_source_ts());
      run->uplink->Ack(w.last_source_ts());
      run->last_ts = std::max(run->last_ts, w.last_source_ts());
      if (!o_.heatmap.empty()) {
        run->recent.push_back(w);
        if (int(run->recent.size()) > o_.heatmap_windows) run->recent.pop_front();
      }
      if (run->live) {
        LiveState& v = run->view;
        ++v.windows;
        v.sequence = w.sequence();
        int best = 0;
        float best_p = -1;
        for (int c = 0; c < w.classes(); ++c) {
          float sum = 0;
          for (int st = 0; st < w.steps(); ++st) {
            const int i = st * w.classes() + c;
            if (i < w.probabilities_size()) sum += w.probabilities(i);
          }
          const float mean = w.steps() > 0 ? sum / float(w.steps()) : 0;
          if (mean > best_p) best_p = mean, best = c;
        }
        v.label = best < int(run->labels.size()) ? run->labels[size_t(best)]
                                                 : "class " + std::to_string(best);
        v.probability = best_p;
        v.source_s = w.last_source_ts();
        const double now = Now();
        if (run->first_window_wall < 0) {
          run->first_window_wall = now;
        } else {
          run->frames_after_first += w.real_frames();
          if (now > run->first_window_wall)
            v.fps = double(run->frames_after_first) / (now - run->first_window_wall);
        }
        if (w.timings().total_s() > 0) {
          v.latency_ms = w.timings().total_s() * 1000;
          v.latency_from_server = true;
        } else {
          v.latency_ms = since ? *since * 1000 : -1;
          v.latency_from_server = false;
        }
      } else {
        PrintWindow(w, run->labels);
      }
      if (o_.duration_s > 0 && w.last_source_ts() >= o_.duration_s) {
        run->cancelled = true;
        ctx.TryCancel();
      }
    }
    for (const auto& e : resp.events()) {
      run->events.push_back(
          {e.label_name(), e.label(), e.start_s(), e.end_s(), double(e.confidence())});
      if (run->live) {
        run->view.events.push_back(run->events.back());
        if (run->view.events.size() > kLiveEvents) run->view.events.pop_front();
      } else {
        PrintEvent(e);
      }
    }
    if (run->live && (resp.has_window() || resp.events_size() > 0)) DrawLive(run);
    if (resp.has_summary()) {
      run->summary = resp.summary();
      run->have_summary = true;
    }
  }
  reader_done = true;
  run->uplink->Stop();
  writer.join();
  grpc::Status st = stream->Finish();
  if (!writer_error.empty()) {
    *local_error = writer_error;
    return st;
  }
  // Never a call we cancelled ourselves.
  *lost = !run->cancelled && ResumableStreamStatus(st);
  return st;
}

bool ResumableStreamStatus(const grpc::Status& st) {
  switch (st.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:  // the server went away or drains
    case grpc::StatusCode::CANCELLED:    // a shutdown before a file stream finished
    case grpc::StatusCode::UNKNOWN:      // no gRPC status: a proxy's upstream died
      return true;
    default:
      return false;
  }
}

int Client::Stream() {
  StreamRun run;
  SourceSpec spec;
  spec.name = o_.source;
  spec.url = o_.source;
  bool lavfi = false, device = false;
  if (o_.source.rfind("lavfi:", 0) == 0) {
    lavfi = true;
    spec.url = o_.source.substr(6);
    spec.format = "lavfi";
  } else if (o_.source.rfind("v4l2:", 0) == 0) {
    device = true;
    spec.url = o_.source.substr(5);
    spec.format = "v4l2";
  } else if (o_.source.rfind("/dev/", 0) == 0) {
    device = true;
    spec.format = "v4l2";
  }
  const bool url = !lavfi && !device && media::IsUrl(o_.source);
  const bool live_url = url && media::IsLiveUrl(o_.source);
  if (!o_.input_format.empty()) {
    spec.format = o_.input_format;
    if (!lavfi && !url) device = true;
  }
  if (!o_.video_size.empty()) spec.format_options["video_size"] = o_.video_size;
  if (o_.capture_fps > 0) {
    std::ostringstream f;
    f << o_.capture_fps;
    spec.format_options["framerate"] = f.str();
  }
  std::error_code ec;
  if (device && spec.url.rfind("/dev/", 0) == 0 && !std::filesystem::exists(spec.url, ec)) {
    err_ << "billnet-client: no such capture device: " << spec.url << " (" << spec.format
         << "; is a camera connected? see --input-format)\n";
    return kExitNotFound;
  }
  if ((lavfi || device) && o_.passthrough) {
    err_ << "billnet-client: --passthrough needs a file, not " << o_.source << "\n";
    return kExitUsage;
  }
  if (o_.realtime && o_.passthrough && url) {
    err_ << "billnet-client: --realtime with --passthrough needs a file, not a URL (a live URL "
            "arrives at its own pace; drop --passthrough to pace client-side)\n";
    return kExitUsage;
  }
  if (lavfi && o_.duration_s <= 0) {
    o_.duration_s = 10;
    err_ << "billnet-client: no --duration for " << o_.source << ": streaming 10 s\n";
  }
  v1::StreamConfig& config = run.config;
  if (!FillModel(config.mutable_model())) return kExitUsage;
  config.set_stream_id(lavfi    ? std::string("lavfi")
                       : device ? std::filesystem::path(spec.url).filename().string()
                       : url    ? UrlStreamId(o_.source)
                                : std::filesystem::path(o_.source).filename().string());
  config.set_mode(device || live_url ? v1::STREAM_MODE_LIVE : v1::STREAM_MODE_FILE);
  v1::EventOptions* ev = config.mutable_events();
  if (o_.event_smoothing) ev->set_smoothing(*o_.event_smoothing);
  if (o_.event_enter) ev->set_enter_threshold(*o_.event_enter);
  if (o_.event_exit) ev->set_exit_threshold(*o_.event_exit);
  if (o_.event_min_duration) ev->set_min_duration_s(*o_.event_min_duration);
  if (o_.background_labels_set) {
    ev->set_replace_background_labels(true);
    for (const auto& l : o_.background_labels)
      if (!l.empty()) ev->add_background_labels(l);
  }

  if (o_.passthrough) {
    if (!url && !std::filesystem::is_regular_file(o_.source, ec) &&
        !std::filesystem::is_fifo(o_.source, ec)) {
      err_ << "billnet-client: no such file: " << o_.source << "\n";
      return kExitNotFound;
    }
    if (o_.realtime) {
      auto paced = PacedPassthroughUplink::Open(o_.source);
      if (!paced.ok()) {
        err_ << "billnet-client: " << o_.source << ": " << paced.status().message() << "\n";
        return paced.status().code() == StatusCode::kNotFound ? kExitNotFound : kExitError;
      }
      if (!Connect()) return kExitUnreachable;
      run.uplink = std::move(*paced);
    } else {
      auto uplink = std::make_unique<PassthroughUplink>(o_.source, o_.timeout_s);
      if (url) {  // open it now: a missing resource is the source's fault, not the server's
        if (Status s = uplink->Begin(0); !s.ok()) {
          err_ << "billnet-client: " << s.message() << "\n";
          return s.code() == StatusCode::kNotFound ? kExitNotFound : kExitError;
        }
      }
      if (!Connect()) return kExitUnreachable;
      run.uplink = std::move(uplink);
    }
  } else {
    auto codec = media::ParseVideoCodec(o_.codec);
    if (!codec.ok()) {
      err_ << "billnet-client: bad --codec '" << o_.codec << "': " << codec.status().message()
           << "\n";
      return kExitUsage;
    }
    if (!lavfi && !device && !url && !std::filesystem::is_regular_file(o_.source, ec) &&
        !std::filesystem::is_fifo(o_.source, ec)) {
      err_ << "billnet-client: no such file: " << o_.source << "\n";
      return kExitNotFound;
    }
    if (!Connect()) return kExitUnreachable;
    v1::ModelInfoRequest req;
    *req.mutable_model() = config.model();
    v1::ModelInfoResponse info;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, o_.timeout_s);
    grpc::Status st = stub_->GetModelInfo(&ctx, req, &info);
    if (!st.ok()) return Fail("GetModelInfo", st);
    EncodingOptions eo;
    eo.target.height = info.height();
    eo.target.width = info.width();
    eo.target.fps = info.fps();
    eo.codec = *codec;
    eo.realtime = o_.realtime;
    eo.live = device;
    eo.max_frames = o_.duration_s > 0
                        ? std::max<int64_t>(1, int64_t(std::llround(o_.duration_s * info.fps())))
                        : -1;
    auto up = EncodingUplink::Open(spec, eo);
    if (!up.ok()) {
      err_ << "billnet-client: cannot open " << (device ? "capture device " : "") << o_.source
           << ": " << up.status().message() << "\n";
      return up.status().code() == StatusCode::kNotFound ? kExitNotFound : kExitError;
    }
    if (!o_.json && !(o_.live_view || o_.out_is_terminal))
      out_ << "client side: model frames of " << eo.target.width << "x" << eo.target.height
           << " at " << eo.target.fps << " fps, " << o_.codec << "/matroska"
           << (o_.realtime ? ", paced in real time" : "") << "\n";
    run.uplink = std::move(*up);
  }
  run.live = !o_.json && (o_.live_view || o_.out_is_terminal);
  run.view.source = o_.source;

  int code = kExitOk;
  int attempt = 0;
  auto deadline = std::chrono::steady_clock::now();
  for (;;) {
    bool lost = false;
    std::string local_error;
    const grpc::Status st = StreamOnce(&run, &lost, &local_error);
    if (!local_error.empty()) {
      err_ << "billnet-client: " << o_.source << ": " << local_error << "\n";
      code = kExitError;
      break;
    }
    if (st.ok() || run.cancelled) break;
    if (lost && o_.reconnect_s <= 0) {
      err_ << "billnet-client: connection lost: " << StatusText(st)
           << "; not resuming (--reconnect-seconds 0)\n";
      code = kExitUnreachable;
      break;
    }
    if (!lost) {
      code = Fail("Stream of " + o_.source, st);
      break;
    }
    // The bounded time starts at the first loss after a connection that made
    // progress.
    if (attempt == 0 || run.progress)
      deadline = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(int64_t(o_.reconnect_s * 1000));
    ++attempt;
    err_ << "billnet-client: connection lost: " << StatusText(st) << "; reconnecting (attempt "
         << attempt << ")\n";
    if (run.live) {
      run.view.status = "reconnecting (attempt " + std::to_string(attempt) + ")";
      DrawLive(&run);
    }
    const auto backoff = std::chrono::milliseconds(
        int64_t(std::min(5000.0, 200.0 * std::pow(2.0, std::min(attempt - 1, 10)))));
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      err_ << "billnet-client: gave up reconnecting after " << o_.reconnect_s << " s\n";
      Fail("Stream of " + o_.source, st);
      code = kExitUnreachable;
      break;
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(backoff, deadline - now));
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero() ||
        !WaitConnected(std::chrono::system_clock::now() +
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(left))) {
      err_ << "billnet-client: gave up reconnecting after " << o_.reconnect_s << " s\n";
      Fail("Stream of " + o_.source, st);
      code = kExitUnreachable;
      break;
    }
  }
  if (run.cancelled && !o_.json) out_ << "stopped after " << o_.duration_s << " s of the source\n";
  if (!o_.heatmap.empty() && !run.recent.empty()) {
    std::vector<const v1::WindowResult*> windows;
    for (const auto& w : run.recent) windows.push_back(&w);
    const int hm = WriteHeatMap(windows, run.model, run.labels,
                                "windows " + std::to_string(run.recent.front().sequence()) + "-" +
                                    std::to_string(run.recent.back().sequence()));
    if (code == kExitOk) code = hm;
  }
  if (!o_.timeline.empty() && (code == kExitOk || run.last_ts > 0)) {
    const int tl = WriteTimeline(run);
    if (code == kExitOk) code = tl;
  }
  if (run.cancelled || code != kExitOk) return code;
  if (run.have_summary) {
    const v1::StreamSummary& summary = run.summary;
    if (o_.json) {
      out_ << json{{"type", "summary"},
                   {"windows", summary.windows()},
                   {"source_frames", summary.source_frames()},
                   {"undecoded_frames", summary.undecoded_frames()},
                   {"model_frames", summary.model_frames()},
                   {"padded_windows", summary.padded_windows()},
                   {"dropped_windows", summary.dropped_windows()},
                   {"bytes", summary.bytes_received()},
                   {"connections", run.connections}}
                  .dump()
           << "\n";
    } else {
      out_ << "done: " << summary.windows() << " windows"
           << (run.connections > 1
                   ? " on the last of " + std::to_string(run.connections) + " connections"
                   : "")
           << ", " << summary.source_frames() << " source frames decoded"
           << (summary.undecoded_frames() > 0
                   ? " (" + std::to_string(summary.undecoded_frames()) + " left undecoded)"
                   : "")
           << ", " << summary.model_frames()
           << " model frames\n";
    }
  }
  return code;
}

int Client::WriteTimeline(const StreamRun& run) {
  const std::string title =
      std::filesystem::path(o_.source).filename().string() + ": gesture events";
  const viz::Canvas canvas = viz::Timeline(TimelineFromEvents(run.events, run.last_ts, title));
  const std::string e = viz::WritePng(o_.timeline, canvas.data(), canvas.width(), canvas.height());
  if (!e.empty()) {
    err_ << "billnet-client: " << e << "\n";
    return kExitError;
  }
  if (!o_.json) out_ << "timeline: " << o_.timeline << " (" << run.events.size() << " events)\n";
  return kExitOk;
}

// One window: the class with the highest mean probability over its steps.
void Client::PrintWindow(const v1::WindowResult& w, const std::vector<std::string>& labels) {
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
    json j = {{"type", "window"},
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
    out_ << "window " << std::setw(4) << w.sequence() << "  " << std::fixed << std::setprecision(2)
         << std::setw(7) << w.first_source_ts() << "-" << std::setw(7) << w.last_source_ts()
         << " s  " << label << " (" << std::setprecision(3) << best_p << ")  latency "
         << std::setprecision(1) << w.timings().total_s() * 1000 << " ms" << std::defaultfloat
         << (w.padded() ? "  padded" : "")
         << (w.state_reset() ? "  state reset: " + w.state_reset_reason() : "") << "\n";
  }
  out_.flush();
}

void Client::PrintEvent(const v1::GestureEvent& e) {
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

}  // namespace billnet::client
