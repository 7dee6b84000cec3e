#include "load.h"

#include <absl/status/status.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <sstream>
#include <thread>

#include "billnet/v1/gesture_service.grpc.pb.h"
#include "billnet/viz/charts.h"
#include "billnet/viz/png.h"
#include "source.h"

namespace billnet::load {
namespace {

namespace v1 = billnet::v1;
using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// The most a chunk carries; more bytes due at once go in several writes.
constexpr size_t kMaxChunk = 64 * 1024;

struct Options {
  std::string server = "127.0.0.1:50051";
  int streams = 1;
  double duration_s = 10;
  std::string source;
  bool scaled = false;
  bool json = false;
  int server_pid = 0;
  std::string model;
  std::string container = "matroska";
  int noise = 12;       // generated full-resolution clips: ~1.1 Mbit/s; scaled ones are clean
  int connections = 0;  // 0: one per stream, at most 64
  double timeout_s = 10;
  double grace_s = 0;   // 0: max(10 s, 3 windows)
  double sample_s = 1;  // memory sampling interval
  std::string plot;
  std::string label;  // written into the report; --plot draws one curve per label
  double plot_y_max_ms = 0;  // 0: the data's range
  bool plot_steady = false;  // plot the reports' `steady` figures
  std::vector<std::string> results;
};

double Seconds(Clock::time_point t, Clock::time_point origin) {
  return std::chrono::duration<double>(t - origin).count();
}

// VmRSS of `pid` in MiB (/proc/PID/status).
std::optional<double> ReadRssMb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return std::nullopt;
}

// User + system CPU seconds of `pid` (/proc/PID/stat fields 14 and 15).
std::optional<double> ReadCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(paren + 2));  // from field 3 (state)
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stod(f);
    if (i == 15) stime = std::stod(f);
  }
  if (!fields) return std::nullopt;
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The 1-minute load average (/proc/loadavg): how busy the machine was.
std::optional<double> ReadLoadAverage() {
  std::ifstream in("/proc/loadavg");
  double load = 0;
  if (in >> load) return load;
  return std::nullopt;
}

// CPU seconds the hypervisor gave to other guests while this machine's vCPUs
// wanted to run (/proc/stat, all CPUs: the "steal" column), when it counts
// them. A server that slows down while steal rises is not the server's fault.
std::optional<double> ReadStealSeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t v[8] = {};
  if (!(in >> cpu) || cpu != "cpu") return std::nullopt;
  for (uint64_t& x : v)
    if (!(in >> x)) return std::nullopt;
  const long hz = ::sysconf(_SC_CLK_TCK);
  return hz > 0 ? std::optional<double>(double(v[7]) / double(hz)) : std::nullopt;
}

double SelfCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// One window as the load generator saw it.
struct WindowSample {
  double total_s = 0, decode_s = 0, queue_s = 0, inference_s = 0;
  double e2e_s = -1;  // < 0: not measured (padded windows)
  double at_s = 0;    // when its result arrived, seconds since the origin
  int64_t dropped_before = 0;  // windows of its stream dropped just before it
};

// What every stream shares, read-only.
struct Shared {
  const media::LoopedVideo* video = nullptr;
  size_t packets = 0;  // sent per stream: those due before the duration ends
  // (presentation timestamp, packet index), sorted: a window's last frame ->
  // the packet that carried it.
  std::vector<std::pair<double, size_t>> by_pts;
  Clock::time_point origin;

  size_t PacketAt(double pts) const {
    auto it = std::lower_bound(by_pts.begin(), by_pts.end(), std::pair{pts, size_t{0}});
    if (it == by_pts.end() || (it != by_pts.begin() && pts - (it - 1)->first < it->first - pts))
      --it;
    return it->second;
  }
};

// One live stream: a callback-API bidirectional call. The scheduler thread
// marks bytes due (Due) and the end of the input (InputDone); gRPC's threads
// run the reactions. One write at a time; the request message and its chunk
// buffer are reused (no allocation per packet once warm).
//
// A hold keeps the call alive until this side has half-closed or given up,
// so the scheduler never starts an operation on a finished call.
class LoadStream final : public grpc::ClientBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  using DoneCallback = std::function<void()>;

  LoadStream(const Shared* shared, DoneCallback on_done)
      : shared_(shared), on_done_(std::move(on_done)), sent_at_(shared->packets, -1.0) {
    windows_.reserve(256);
  }

  // Scheduler thread, once.
  void Start(v1::GestureService::Stub* stub, const v1::StreamConfig& config) {
    stub->async()->Stream(&context_, this);
    *request_.mutable_config() = config;
    writing_ = true;
    StartWrite(&request_);
    StartRead(&response_);
    AddHold();
    StartCall();
  }

  // Packet `k` is due now: everything up to its end goes out.
  void Due(size_t k, double now) {
    std::unique_lock lock(mu_);
    due_ = shared_->video->packets[k].end;
    sent_at_[k] = now;
    Pump(std::move(lock));
  }

  // No more packets: half-close after the last write.
  void InputDone() {
    std::unique_lock lock(mu_);
    input_done_ = true;
    Pump(std::move(lock));
  }

  // The scheduler gave up waiting for the end: the stream counts as lost.
  void Cancel() {
    cancelled_ = true;
    context_.TryCancel();
  }

  // Read after the call is done.
  const std::vector<WindowSample>& windows() const { return windows_; }
  const grpc::Status& status() const { return status_; }
  bool started() const { return started_; }
  bool cancelled() const { return cancelled_; }
  bool has_summary() const { return has_summary_; }
  int64_t dropped_windows() const { return dropped_; }

 private:
  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    writing_ = false;
    if (!ok) closed_ = true;
    Pump(std::move(lock));
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::unique_lock lock(mu_);
      closed_ = true;  // the server ended the call: nothing more to write
      Pump(std::move(lock));
      return;
    }
    const double now = Seconds(Clock::now(), shared_->origin);
    if (response_.has_started()) started_ = true;
    if (response_.has_window()) {
      const v1::WindowResult& w = response_.window();
      WindowSample s;
      s.at_s = now;
      s.dropped_before = w.dropped_before();
      s.total_s = w.timings().total_s();
      s.decode_s = w.timings().decode_s();
      s.queue_s = w.timings().queue_s();
      s.inference_s = w.timings().inference_s();
      if (!w.padded()) {
        const size_t k = shared_->PacketAt(w.last_source_ts());
        std::lock_guard lock(mu_);
        if (k < sent_at_.size() && sent_at_[k] >= 0) s.e2e_s = now - sent_at_[k];
      }
      windows_.push_back(s);
      dropped_ += w.dropped_before();
    }
    if (response_.has_summary()) {
      has_summary_ = true;
      dropped_ = response_.summary().dropped_windows();
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    status_ = status;
    on_done_();  // last: the owner may destroy this stream from here on
  }

  // Starts the next write, the half-close, or releases the hold; unlocks.
  void Pump(std::unique_lock<std::mutex> lock) {
    enum class Op { kNone, kWrite, kWritesDone, kRelease } op = Op::kNone;
    if (!writing_ && holding_) {
      if (!closed_ && sent_ < due_) {
        const size_t n = std::min(due_ - sent_, kMaxChunk);
        request_.set_chunk(shared_->video->bytes.data() + sent_, n);
        sent_ += n;
        writing_ = true;
        op = Op::kWrite;
      } else if (!closed_ && input_done_) {
        closed_ = true;
        holding_ = false;
        op = Op::kWritesDone;
      } else if (closed_) {
        holding_ = false;
        op = Op::kRelease;
      }
    }
    lock.unlock();
    switch (op) {
      case Op::kWrite:
        StartWrite(&request_);
        break;
      case Op::kWritesDone:
        StartWritesDone();
        RemoveHold();
        break;
      case Op::kRelease:
        RemoveHold();
        break;
      case Op::kNone:
        break;
    }
  }

  const Shared* shared_;
  DoneCallback on_done_;
  grpc::ClientContext context_;
  v1::StreamRequest request_;
  v1::StreamResponse response_;

  std::mutex mu_;  // the fields below
  size_t due_ = 0, sent_ = 0;
  bool writing_ = false, input_done_ = false, closed_ = false, holding_ = true;
  std::vector<double> sent_at_;  // per packet: seconds since origin, -1 before

  // Reactions only (serialized by gRPC), read after OnDone.
  std::vector<WindowSample> windows_;
  bool started_ = false, has_summary_ = false;
  int64_t dropped_ = 0;
  grpc::Status status_;
  std::atomic<bool> cancelled_{false};
};

// gRPC's codes are absl's canonical codes, so absl names them.
std::string StatusText(const grpc::Status& s) {
  return absl::StatusCodeToString(absl::StatusCode(int(s.error_code()))) + ": " +
         s.error_message();
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& server, int index) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // A connection of its own (channels with equal arguments share one).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("billnet.load.connection", index);
  return grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args);
}

struct Event {
  double at;  // seconds since origin
  int stream;
  int64_t packet;  // -1: start the call
  bool operator>(const Event& o) const { return at > o.at; }
};

int Run(const Options& o, std::ostream& out, std::ostream& err) {
  const int connections = std::clamp(o.connections > 0 ? o.connections : o.streams, 1, 64);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::GestureService::Stub>> stubs;
  const auto connect_deadline =
      std::chrono::system_clock::now() + std::chrono::milliseconds(int64_t(o.timeout_s * 1000));
  for (int i = 0; i < connections; ++i) {
    channels.push_back(MakeChannel(o.server, i));
    if (!channels.back()->WaitForConnected(connect_deadline)) {
      err << "billnet-load: cannot reach the server at " << o.server << " (no connection within "
          << o.timeout_s << " s; is billnet-server running? see --server)\n";
      return kExitUnreachable;
    }
    stubs.push_back(v1::GestureService::NewStub(channels.back()));
  }

  // The model's window: frames and rate (and, scaled, the geometry).
  v1::ModelInfoRequest info_request;
  info_request.mutable_model()->set_name(o.model);
  v1::ModelInfoResponse info;
  grpc::ClientContext info_context;
  info_context.set_deadline(std::chrono::system_clock::now() +
                            std::chrono::milliseconds(int64_t(o.timeout_s * 1000)));
  if (grpc::Status s = stubs[0]->GetModelInfo(&info_context, info_request, &info); !s.ok()) {
    err << "billnet-load: GetModelInfo failed: " << StatusText(s) << "\n";
    return s.error_code() == grpc::NOT_FOUND ? kExitNotFound : kExitError;
  }
  if (info.frames() <= 0 || !(info.fps() > 0)) {
    err << "billnet-load: model info of '" << info.model().name() << "' has no window length or "
        << "frame rate\n";
    return kExitError;
  }
  const double window_s = info.frames() / info.fps();

  SourceOptions so;
  so.file = o.source;
  so.scaled = o.scaled;
  so.noise = o.noise;
  if (o.scaled) {
    so.width = info.width(), so.height = info.height(), so.fps = info.fps();
    so.noise = 0;  // the client's area scaling averages a camera's noise away
  }
  so.container = o.container;
  so.min_duration_s = o.duration_s + 1;
  StatusOr<Source> source = PrepareSource(so);
  if (!source.ok()) {
    err << "billnet-load: " << source.status().ToString() << "\n";
    return source.status().code() == StatusCode::kNotFound ? kExitNotFound : kExitError;
  }
  const media::LoopedVideo& video = source->video;

  Shared shared;
  shared.video = &video;
  while (shared.packets < video.packets.size() &&
         video.packets[shared.packets].send_s < o.duration_s)
    ++shared.packets;
  for (size_t k = 0; k < shared.packets; ++k) shared.by_pts.push_back({video.packets[k].pts_s, k});
  std::sort(shared.by_pts.begin(), shared.by_pts.end());

  std::mutex done_mu;
  std::condition_variable done_cv;
  int done = 0;
  auto on_done = [&] {
    std::lock_guard lock(done_mu);
    ++done;
    done_cv.notify_all();
  };
  std::vector<std::unique_ptr<LoadStream>> streams;
  for (int i = 0; i < o.streams; ++i)
    streams.push_back(std::make_unique<LoadStream>(&shared, on_done));

  v1::StreamConfig config;
  config.mutable_model()->set_name(o.model);
  config.set_mode(v1::STREAM_MODE_LIVE);
  config.set_container_hint(video.container);

  // Memory and CPU over time.
  json rss_series = json::array();
  std::optional<double> rss_first, rss_last, rss_max;
  // Steal per sampling interval, in cores.
  json steal_series = json::array();
  std::optional<double> steal_prev = ReadStealSeconds();
  const std::optional<double> steal0 = steal_prev;
  double steal_prev_t = 0;
  auto sample = [&](double t) {
    // Over 0.1 s at least: over less, one 10 ms tick would read as more than a
    // tenth of a core.
    if (std::optional<double> st = ReadStealSeconds();
        st && steal_prev && t >= steal_prev_t + 0.1) {
      steal_series.push_back({std::round(t * 10) / 10,
                              std::round((*st - *steal_prev) / (t - steal_prev_t) * 1000) / 1000});
      steal_prev = st;
      steal_prev_t = t;
    }
    if (o.server_pid <= 0) return;
    if (std::optional<double> mb = ReadRssMb(o.server_pid)) {
      rss_series.push_back({std::round(t * 10) / 10, std::round(*mb * 10) / 10});
      if (!rss_first) rss_first = mb;
      rss_last = mb;
      rss_max = std::max(rss_max.value_or(0), *mb);
    }
  };
  const std::optional<double> server_cpu0 =
      o.server_pid > 0 ? ReadCpuSeconds(o.server_pid) : std::nullopt;
  const double self_cpu0 = SelfCpuSeconds();
  const std::optional<double> load_average0 = ReadLoadAverage();

  // Stream i starts i/N of a window period after the first, so the streams'
  // windows end evenly spread over the period.
  shared.origin = Clock::now();
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events;
  std::vector<double> start_at(o.streams);
  for (int i = 0; i < o.streams; ++i) {
    start_at[i] = 0.05 + window_s * i / o.streams;
    events.push({start_at[i], i, -1});
  }
  double next_sample = 0;
  // How late the scheduler marks each event due (a stream's start or a
  // packet): the generator's own pacing error, which bursts the server's input.
  std::vector<double> send_lag;
  while (!events.empty()) {
    const double next = std::min(events.top().at, next_sample);
    std::this_thread::sleep_until(shared.origin + std::chrono::duration_cast<Clock::duration>(
                                                      std::chrono::duration<double>(next)));
    const double now = Seconds(Clock::now(), shared.origin);
    if (now >= next_sample) {
      sample(now);
      next_sample += o.sample_s;
    }
    while (!events.empty() && events.top().at <= now) {
      const Event e = events.top();
      events.pop();
      send_lag.push_back(now - e.at);
      LoadStream* s = streams[e.stream].get();
      if (e.packet < 0) {
        s->Start(stubs[e.stream % connections].get(), [&] {
          v1::StreamConfig c = config;
          c.set_stream_id("load-" + std::to_string(e.stream));
          return c;
        }());
      } else {
        s->Due(size_t(e.packet), now);
      }
      const size_t k = size_t(e.packet + 1);
      if (k < shared.packets) {
        events.push({start_at[e.stream] + video.packets[k].send_s, e.stream, int64_t(k)});
      } else {
        s->InputDone();
      }
    }
  }
  // The last windows: wait for every call's end (a grace period, then cancel).
  const double input_end = Seconds(Clock::now(), shared.origin);
  const double grace_s = o.grace_s > 0 ? o.grace_s : std::max(10.0, 3 * window_s);
  for (bool cancelled = false;;) {
    std::unique_lock lock(done_mu);
    if (done_cv.wait_for(lock, std::chrono::duration<double>(o.sample_s),
                         [&] { return done == o.streams; }))
      break;
    lock.unlock();
    const double now = Seconds(Clock::now(), shared.origin);
    sample(now);
    if (!cancelled && now > input_end + grace_s) {
      for (auto& s : streams) s->Cancel();
      cancelled = true;
    }
  }
  const double elapsed = Seconds(Clock::now(), shared.origin) - start_at[0];
  sample(elapsed + start_at[0]);
  const double self_cpu = SelfCpuSeconds() - self_cpu0;
  std::optional<double> server_cpu;
  if (server_cpu0) {
    if (auto c = ReadCpuSeconds(o.server_pid)) server_cpu = *c - *server_cpu0;
  }

  // The report.
  std::vector<double> total, e2e, decode, queue, inference;
  // Per second of the run (from the first stream's start): windows answered,
  // windows dropped and the latency tail, to tell a start-up transient from
  // a steady state.
  const int seconds = std::max(1, int(std::ceil(elapsed)));
  std::vector<std::vector<double>> total_by_second(seconds);
  std::vector<int64_t> dropped_by_second(seconds, 0);
  // The steady state: every stream live and past its first window period,
  // none ended. It starts one window period after the last stream's start
  // (the calls' set-up is over) and ends when the first stream's input ends:
  // from there each stream's padded tail window comes between two regular
  // ones, and since every stream ends within one period, the last period
  // carries up to twice the steady window rate, which no N live streams do.
  const double steady_from = start_at.back() + window_s;
  const double steady_to = start_at[0] + o.duration_s;
  std::vector<double> steady_total;
  int64_t steady_dropped = 0;
  int64_t windows = 0, dropped = 0;
  int lost = 0;
  json errors = json::array();
  for (int i = 0; i < o.streams; ++i) {
    const LoadStream& s = *streams[i];
    for (const WindowSample& w : s.windows()) {
      total.push_back(w.total_s);
      decode.push_back(w.decode_s);
      queue.push_back(w.queue_s);
      inference.push_back(w.inference_s);
      if (w.e2e_s >= 0) e2e.push_back(w.e2e_s);
      const int second = std::clamp(int(w.at_s - start_at[0]), 0, seconds - 1);
      total_by_second[second].push_back(w.total_s);
      dropped_by_second[second] += w.dropped_before;
      if (w.at_s >= steady_from && w.at_s < steady_to) {
        steady_total.push_back(w.total_s);
        steady_dropped += w.dropped_before;
      }
    }
    windows += int64_t(s.windows().size());
    dropped += s.dropped_windows();
    if (!s.status().ok()) {
      ++lost;
      std::ostringstream e;
      e << "stream " << i << ": ";
      if (s.cancelled()) {
        e << "not finished " << grace_s << " s after its input ended (cancelled)";
      } else {
        e << StatusText(s.status());
      }
      if (errors.size() < 5) errors.push_back(e.str());
    }
  }
  auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0.0 : sum / double(v.size());
  };
  auto round6 = [](double x) { return std::round(x * 1e6) / 1e6; };
  auto optional_json = [](const std::optional<double>& v) {
    return v ? json(std::round(*v * 10) / 10) : json(nullptr);
  };
  const double source_fps = video.fps > 0 ? video.fps : info.fps();
  json r;
  r["streams"] = o.streams;
  r["duration_s"] = o.duration_s;
  r["scaled"] = o.scaled;
  if (!o.label.empty()) r["label"] = o.label;
  r["source"] = {
      {"description", source->description},
      {"codec", video.codec},
      {"width", video.width},
      {"height", video.height},
      {"fps", source_fps},
      {"container", video.container},
      {"pass_s", round6(video.pass_s)},
      {"kbit_per_s", std::round(8.0 * double(video.packets[shared.packets - 1].end) /
                                std::max(video.packets[shared.packets - 1].send_s, 1e-3) / 1000)}};
  r["model"] = {{"name", info.model().name()},
                {"version", info.model().version()},
                {"stage", "S" + std::to_string(int(info.model().stage()))},
                {"kernel", info.kernel_variant()}};
  r["window_s"] = round6(window_s);
  r["windows"] = windows;
  // Full windows and a padded tail per stream, none dropped.
  r["windows_expected"] = int64_t(std::ceil(o.duration_s / window_s - 1e-9)) * o.streams;
  r["windows_per_s"] = std::round(double(windows) / elapsed * 1000) / 1000;
  r["p50_s"] = round6(Quantile(total, 0.5));
  r["p99_s"] = round6(Quantile(total, 0.99));
  r["max_s"] = round6(Quantile(total, 1));
  r["e2e_p50_s"] = round6(Quantile(e2e, 0.5));
  r["e2e_p99_s"] = round6(Quantile(e2e, 0.99));
  r["send_lag_p99_s"] = round6(Quantile(send_lag, 0.99));
  r["send_lag_max_s"] = round6(Quantile(send_lag, 1));
  r["dropped_windows"] = dropped;
  r["lost_streams"] = lost;
  r["errors"] = errors;
  r["phases"] = {{"decode_s_mean", round6(mean(decode))},
                 {"decode_s_per_frame", round6(mean(decode) / (window_s * source_fps))},
                 {"queue_s_p50", round6(Quantile(queue, 0.5))},
                 {"queue_s_p99", round6(Quantile(queue, 0.99))},
                 {"inference_s_p50", round6(Quantile(inference, 0.5))},
                 {"inference_s_p99", round6(Quantile(inference, 0.99))}};
  if (steady_to - steady_from >= window_s) {
    r["steady"] = {{"from_s", round6(steady_from - start_at[0])},
                   {"to_s", round6(steady_to - start_at[0])},
                   {"windows", steady_total.size()},
                   {"dropped_windows", steady_dropped},
                   {"p50_s", round6(Quantile(steady_total, 0.5))},
                   {"p99_s", round6(Quantile(steady_total, 0.99))},
                   {"max_s", round6(Quantile(steady_total, 1))}};
  } else {
    r["steady"] = nullptr;  // too short a run to have one
  }
  json timeline = json::array();
  for (int t = 0; t < seconds; ++t) {
    std::vector<double>& v = total_by_second[t];
    timeline.push_back({{"t_s", t},
                        {"windows", v.size()},
                        {"dropped", dropped_by_second[t]},
                        {"p99_s", round6(Quantile(v, 0.99))},
                        {"max_s", round6(Quantile(v, 1))}});
  }
  r["timeline"] = timeline;
  r["server_rss_mb"] = optional_json(rss_last);
  r["server_rss_mb_start"] = optional_json(rss_first);
  r["server_rss_mb_max"] = optional_json(rss_max);
  r["server_rss_mb_series"] = rss_series;
  r["server_cpu_cores"] =
      server_cpu ? json(std::round(*server_cpu / elapsed * 1000) / 1000) : json(nullptr);
  // Server CPU per window: decode, scaling, engine and everything else.
  r["server_cpu_s_per_window"] =
      server_cpu && windows > 0 ? json(round6(*server_cpu / double(windows))) : json(nullptr);
  r["load_cpu_cores"] = std::round(self_cpu / elapsed * 1000) / 1000;
  const std::optional<double> steal1 = ReadStealSeconds();
  r["host_steal_cores"] = steal0 && steal1
                              ? json(std::round((*steal1 - *steal0) / elapsed * 1000) / 1000)
                              : json(nullptr);
  r["host_steal_series"] = steal_series;
  r["load_average_1m"] = {optional_json(load_average0), optional_json(ReadLoadAverage())};
  r["elapsed_s"] = std::round(elapsed * 1000) / 1000;
  r["grace_s"] = grace_s;

  if (o.json) {
    out << r.dump() << "\n";
    return kExitOk;
  }
  auto ms = [](double s) { return std::to_string(int(std::lround(s * 1000))) + " ms"; };
  auto one = [](double v) {  // one decimal
    std::ostringstream o;
    o << std::fixed << std::setprecision(1) << v;
    return o.str();
  };
  out << o.streams << " live streams x " << o.duration_s << " s of " << source->description
      << " -> " << o.server << " (" << info.model().name() << " v" << info.model().version() << " S"
      << int(info.model().stage()) << ")\n"
      << "windows " << windows << " (" << r["windows_per_s"].get<double>() << "/s), dropped "
      << dropped << ", lost streams " << lost << "\n"
      << "window latency p50 " << ms(r["p50_s"]) << ", p99 " << ms(r["p99_s"]) << ", max "
      << ms(r["max_s"]) << "; end to end p50 " << ms(r["e2e_p50_s"]) << ", p99 "
      << ms(r["e2e_p99_s"]) << "\n";
  if (!r["steady"].is_null()) {
    const json& st = r["steady"];
    out << "steady state (" << one(st["from_s"].get<double>()) << "-"
        << one(st["to_s"].get<double>()) << " s, all streams live): windows "
        << st["windows"].get<int64_t>() << ", dropped " << st["dropped_windows"].get<int64_t>()
        << ", p50 " << ms(st["p50_s"]) << ", p99 " << ms(st["p99_s"]) << ", max " << ms(st["max_s"])
        << "\n";
  }
  if (rss_last) {
    out << "server memory " << one(*rss_first) << " -> " << one(*rss_last) << " MiB (max "
        << one(*rss_max) << ")\n";
  }
  if (!r["host_steal_cores"].is_null()) {
    out << "CPU taken by the hypervisor (steal) " << r["host_steal_cores"].get<double>()
        << " cores\n";
  }
  for (const auto& e : errors) out << e.get<std::string>() << "\n";
  return kExitOk;
}

// p99 (and p50) window latency against the number of streams, one curve per
// report label, else per kind of stream, from report objects (one per line);
// repeated runs of a stream count are drawn as their medians (CurvePoints).
int Plot(const Options& o, std::ostream& out, std::ostream& err) {
  // Curve name -> reports, in the order the names first appear.
  std::vector<std::pair<std::string, std::vector<json>>> runs;
  for (const std::string& path : o.results) {
    std::ifstream in(path);
    if (!in) {
      err << "billnet-load: no such file: " << path << "\n";
      return kExitNotFound;
    }
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json r = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (r.is_discarded() || !r.contains("streams") || !r.contains("p99_s")) {
        err << "billnet-load: " << path << ":" << line_no << ": not a billnet-load report\n";
        return kExitError;
      }
      const std::string name = r.value("label", std::string(r.value("scaled", false)
                                                                  ? "client-scaled"
                                                                  : "640x480 30 fps"));
      auto it = std::find_if(runs.begin(), runs.end(),
                             [&](const auto& run) { return run.first == name; });
      if (it == runs.end()) it = runs.insert(runs.end(), {name, {}});
      it->second.push_back(std::move(r));
    }
  }
  if (runs.empty()) {
    err << "billnet-load: --plot: no reports in the result files\n";
    return kExitError;
  }
  viz::Panel latency{"window latency (ms)", {}};
  viz::Panel answered{"windows answered (%)", {}};
  answered.height_weight = 0.45;
  answered.y_min = 0;
  answered.y_max = 100;
  double x_max = 0;
  std::string names;
  for (size_t curve = 0; curve < runs.size(); ++curve) {
    auto& [kind, reports] = runs[curve];
    names += (curve ? ", " : "") + kind;
    std::vector<RunPoint> points;
    for (const json& r : reports) {
      RunPoint p;
      p.streams = r["streams"].get<double>();
      if (o.plot_steady) {
        const json st = r.value("steady", json());
        if (!st.is_object() || !st.contains("p99_s") || !st.contains("windows")) {
          err << "billnet-load: --plot-steady: a report of " << r["streams"]
              << " streams has no steady-state figures (a run too short, or an older "
                 "billnet-load)\n";
          return kExitError;
        }
        p.p99_ms = 1000 * st["p99_s"].get<double>();
        p.p50_ms = 1000 * st.value("p50_s", 0.0);
        const double answered = st["windows"].get<double>();
        const double sent = answered + st.value("dropped_windows", 0.0);
        if (sent > 0) p.answered_pct = 100 * answered / sent;
        points.push_back(p);
        continue;
      }
      p.p99_ms = 1000 * r["p99_s"].get<double>();
      p.p50_ms = 1000 * r["p50_s"].get<double>();
      // Windows the streams got back against what they sent video for
      // (dropped windows and lost streams both lower it).
      const double window_s = r.value("window_s", 0.0), duration_s = r.value("duration_s", 0.0);
      const double expected =
          window_s > 0 ? p.streams * std::ceil(duration_s / window_s - 1e-9) : 0;
      if (expected > 0) p.answered_pct = std::min(100.0, 100 * r.value("windows", 0.0) / expected);
      points.push_back(p);
    }
    viz::Series p99{kind + " p99"}, p50{kind + " p50"}, share{kind};
    p99.color = p50.color = share.color = viz::PaletteColor(int(curve));
    p99.markers = p50.markers = share.markers = true;
    p50.dashed = true;
    for (const CurvePoint& c : CurvePoints(points)) {
      p99.x.push_back(c.streams), p99.y.push_back(c.p99_ms);
      p50.x.push_back(c.streams), p50.y.push_back(c.p50_ms);
      if (c.answered_pct >= 0) share.x.push_back(c.streams), share.y.push_back(c.answered_pct);
      x_max = std::max(x_max, c.streams);
    }
    latency.series.push_back(p99);
    latency.series.push_back(p50);
    answered.series.push_back(share);
  }
  viz::Series target{"target p99 (50 ms)", {0, x_max}, {50, 50}};
  target.color = viz::Rgb{200, 40, 40};
  target.dashed = true;
  target.line_width = 1;
  latency.series.push_back(target);
  latency.y_min = 0;
  if (o.plot_y_max_ms > 0) latency.y_max = o.plot_y_max_ms;  // higher points are clipped
  viz::LineChartSpec spec;
  spec.width = 960;
  spec.height = 640;
  spec.title = o.plot_steady
                   ? "billnet-server: window latency against concurrent live streams (steady state)"
                   : "billnet-server: window latency against concurrent live streams";
  spec.x_title = "concurrent streams";
  spec.x_min = 0;
  spec.x_max = x_max;
  spec.panels = {latency, answered};
  const viz::Canvas canvas = viz::LineChart(spec);
  if (std::string e = viz::WritePng(o.plot, canvas.data(), canvas.width(), canvas.height());
      !e.empty()) {
    err << "billnet-load: " << e << "\n";
    return kExitError;
  }
  out << "wrote " << o.plot << " (" << names << ")\n";
  return kExitOk;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

std::vector<CurvePoint> CurvePoints(const std::vector<RunPoint>& runs) {
  std::vector<RunPoint> sorted = runs;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const RunPoint& a, const RunPoint& b) { return a.streams < b.streams; });
  std::vector<CurvePoint> points;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    std::vector<double> p50, p99, answered;
    for (; j < sorted.size() && sorted[j].streams == sorted[i].streams; ++j) {
      p50.push_back(sorted[j].p50_ms);
      p99.push_back(sorted[j].p99_ms);
      if (sorted[j].answered_pct >= 0) answered.push_back(sorted[j].answered_pct);
    }
    CurvePoint c;
    c.streams = sorted[i].streams;
    c.p50_ms = Median(p50);
    c.p99_ms = Median(p99);
    c.answered_pct = answered.empty() ? -1 : Median(answered);
    c.runs = int(j - i);
    points.push_back(c);
    i = j;
  }
  return points;
}

double Quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = size_t(std::ceil(std::clamp(q, 0.0, 1.0) * double(values.size())));
  return values[std::max<size_t>(rank, 1) - 1];
}

int RunLoad(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Options o;
  CLI::App app{"billnet-load: N concurrent live streams against billnet-server, paced in real time",
               "billnet-load"};
  app.add_option("--server", o.server, "Server address HOST:PORT")->capture_default_str();
  app.add_option("--streams", o.streams, "Concurrent live streams")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "Seconds of video each stream sends")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--source", o.source,
                 "Video every stream replays (looped); default: a generated clip");
  app.add_flag("--scaled", o.scaled,
               "Streams the client already scaled: a generated clip at the model's geometry and "
               "frame rate, H.264 zerolatency (default: 640x480 30 fps H.264 with B-frames); "
               "with --source, marks the file as such in the report");
  app.add_option("--server-pid", o.server_pid, "Read the server's memory and CPU from /proc");
  app.add_option("--model", o.model, "Model name (default: the server's default)");
  app.add_option("--noise", o.noise,
                 "Sensor noise (+-levels) in the generated full-resolution clip")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--container", o.container, "Container the streams send")
      ->check(CLI::IsMember({"matroska", "mpegts", "nut"}))
      ->capture_default_str();
  app.add_option("--connections", o.connections,
                 "gRPC connections the streams share (default: one per stream, at most 64)")
      ->check(CLI::Range(1, 64));
  app.add_option("--timeout", o.timeout_s, "Seconds to wait for the server")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--grace", o.grace_s,
                 "Seconds to wait for a stream's end after its input ended; then it is cancelled "
                 "and counted lost (default: 10 or 3 windows, the longer)")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--sample-interval", o.sample_s, "Seconds between memory samples")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  app.add_flag("--json", o.json, "Print one JSON object");
  app.add_option("--label", o.label,
                 "A name for this run in the report (e.g. the server's flags); --plot draws one "
                 "curve per label");
  app.add_option("--plot", o.plot,
                 "Write the p99 latency against streams of RESULTS (report lines) to this PNG; "
                 "repeated runs of a stream count are drawn as their medians");
  app.add_flag("--plot-steady", o.plot_steady,
               "With --plot: draw each report's steady-state figures (all streams live) instead "
               "of the whole run's");
  app.add_option("--plot-y-max", o.plot_y_max_ms,
                 "With --plot: top of the latency axis in ms (higher points are clipped)")
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("RESULTS", o.results, "With --plot: files of --json reports, one per line");
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (!o.plot.empty()) {
    if (o.results.empty()) {
      err << "billnet-load: --plot needs result files\n";
      return kExitUsage;
    }
    return Plot(o, out, err);
  }
  if (!o.results.empty()) {
    err << "billnet-load: result files are only read with --plot\n";
    return kExitUsage;
  }
  std::error_code ec;
  if (!o.source.empty() && !std::filesystem::is_regular_file(o.source, ec)) {
    err << "billnet-load: no such file: " << o.source << "\n";
    return kExitNotFound;
  }
  return Run(o, out, err);
}

}  // namespace billnet::load
