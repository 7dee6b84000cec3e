#include "app/config.h"

#include <CLI/CLI.hpp>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "billnet/topology.h"

namespace billnet::server {

namespace {

using json = nlohmann::json;

template <typename T>
Status Get(const json& j, const char* key, T* out) {
  try {
    *out = j.get<T>();
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("config key '") + key + "': " + e.what());
  }
  return Status::Ok();
}

}  // namespace

Status LoadConfigFile(const std::string& path, ServerConfig* c) {
  std::ifstream in(path);
  if (!in) return NotFound("config file '" + path + "' cannot be opened");
  json j;
  try {
    j = json::parse(in);
  } catch (const std::exception& e) {
    return InvalidArgument("config file '" + path + "': " + e.what());
  }
  if (!j.is_object()) return InvalidArgument("config file '" + path + "' is not a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    const char* key = k.c_str();
    Status s;
    if (k == "listen")
      s = Get(v, key, &c->listen);
    else if (k == "metrics_listen")
      s = Get(v, key, &c->metrics_listen);
    else if (k == "model_repository")
      s = Get(v, key, &c->model_repository);
    else if (k == "default_model")
      s = Get(v, key, &c->default_model);
    else if (k == "default_stage")
      s = Get(v, key, &c->default_stage);
    else if (k == "poll_interval_ms")
      s = Get(v, key, &c->poll_interval_ms);
    else if (k == "inference_threads")
      s = Get(v, key, &c->inference_threads);
    else if (k == "engine_helpers")
      s = Get(v, key, &c->engine_helpers);
    else if (k == "max_batch")
      s = Get(v, key, &c->max_batch);
    else if (k == "batch_wait_us")
      s = Get(v, key, &c->batch_wait_us);
    else if (k == "max_streams")
      s = Get(v, key, &c->max_streams);
    else if (k == "max_message_bytes")
      s = Get(v, key, &c->max_message_bytes);
    else if (k == "max_queued_bytes")
      s = Get(v, key, &c->max_queued_bytes);
    else if (k == "max_pending_windows_live")
      s = Get(v, key, &c->max_pending_windows_live);
    else if (k == "max_pending_windows_file")
      s = Get(v, key, &c->max_pending_windows_file);
    else if (k == "max_frame_pixels")
      s = Get(v, key, &c->max_frame_pixels);
    else if (k == "idle_timeout_ms")
      s = Get(v, key, &c->idle_timeout_ms);
    else if (k == "max_queue_wait_ms")
      s = Get(v, key, &c->max_queue_wait_ms);
    else if (k == "max_live_lag_ms")
      s = Get(v, key, &c->max_live_lag_ms);
    else if (k == "decode_nice")
      s = Get(v, key, &c->decode_nice);
    else if (k == "decode_idle")
      s = Get(v, key, &c->decode_idle);
    else if (k == "decode_all_frames")
      s = Get(v, key, &c->decode_all_frames);
    else if (k == "drain_timeout_ms")
      s = Get(v, key, &c->drain_timeout_ms);
    else if (k == "token_key_file")
      s = Get(v, key, &c->token_key_file);
    else if (k == "tls_cert_file")
      s = Get(v, key, &c->tls_cert_file);
    else if (k == "tls_key_file")
      s = Get(v, key, &c->tls_key_file);
    else if (k == "tls_client_ca_file")
      s = Get(v, key, &c->tls_client_ca_file);
    else if (k == "log_level")
      s = Get(v, key, &c->log_level);
    else if (k == "http_threads")
      s = Get(v, key, &c->http_threads);
    else if (k == "ready_file")
      s = Get(v, key, &c->ready_file);
    else if (k == "events_smoothing")
      s = Get(v, key, &c->events.smoothing);
    else if (k == "events_enter_threshold")
      s = Get(v, key, &c->events.enter_threshold);
    else if (k == "events_exit_threshold")
      s = Get(v, key, &c->events.exit_threshold);
    else if (k == "events_min_duration_s")
      s = Get(v, key, &c->events.min_duration_s);
    else if (k == "events_background_labels")
      s = Get(v, key, &c->events.background_labels);
    else
      return InvalidArgument("config file '" + path + "': unknown key '" + k + "'");
    if (!s.ok()) return s.WithContext("config file '" + path + "'");
  }
  return Status::Ok();
}

std::string ConfigToJson(const ServerConfig& c) {
  json j = {
      {"listen", c.listen},
      {"metrics_listen", c.metrics_listen},
      {"model_repository", c.model_repository},
      {"default_model", c.default_model},
      {"default_stage", c.default_stage},
      {"poll_interval_ms", c.poll_interval_ms},
      {"inference_threads", c.inference_threads},
      {"engine_helpers", c.engine_helpers},
      {"max_batch", c.max_batch},
      {"batch_wait_us", c.batch_wait_us},
      {"max_streams", c.max_streams},
      {"max_message_bytes", c.max_message_bytes},
      {"max_queued_bytes", c.max_queued_bytes},
      {"max_pending_windows_live", c.max_pending_windows_live},
      {"max_pending_windows_file", c.max_pending_windows_file},
      {"max_frame_pixels", c.max_frame_pixels},
      {"idle_timeout_ms", c.idle_timeout_ms},
      {"max_queue_wait_ms", c.max_queue_wait_ms},
      {"max_live_lag_ms", c.max_live_lag_ms},
      {"decode_nice", c.decode_nice},
      {"decode_idle", c.decode_idle},
      {"decode_all_frames", c.decode_all_frames},
      {"drain_timeout_ms", c.drain_timeout_ms},
      {"token_key_file", c.token_key_file},
      {"tls_cert_file", c.tls_cert_file},
      {"tls_key_file", c.tls_key_file},
      {"tls_client_ca_file", c.tls_client_ca_file},
      {"log_level", c.log_level},
      {"http_threads", c.http_threads},
      {"ready_file", c.ready_file},
      {"events_smoothing", c.events.smoothing},
      {"events_enter_threshold", c.events.enter_threshold},
      {"events_exit_threshold", c.events.exit_threshold},
      {"events_min_duration_s", c.events.min_duration_s},
      {"events_background_labels", c.events.background_labels},
  };
  return j.dump(2);
}

Status ValidateConfig(const ServerConfig& c) {
  const auto range = [](const char* key, int64_t v, int64_t lo, int64_t hi) -> Status {
    if (v < lo || v > hi)
      return InvalidArgument(std::string(key) + " " + std::to_string(v) + " is outside [" +
                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return Status::Ok();
  };
  if (c.listen.empty()) return InvalidArgument("listen is empty");
  if (!ParseStage(c.default_stage).ok())
    return InvalidArgument("default_stage '" + c.default_stage + "' is not s1..s5");
  BILLNET_RETURN_IF_ERROR(range("poll_interval_ms", c.poll_interval_ms, 0, 86'400'000));
  BILLNET_RETURN_IF_ERROR(range("inference_threads", c.inference_threads, 0, 1024));
  BILLNET_RETURN_IF_ERROR(range("engine_helpers", c.engine_helpers, -1, 1024));
  BILLNET_RETURN_IF_ERROR(range("max_batch", c.max_batch, 1, 1024));
  BILLNET_RETURN_IF_ERROR(range("batch_wait_us", c.batch_wait_us, 0, 1'000'000));
  BILLNET_RETURN_IF_ERROR(range("max_streams", c.max_streams, 1, 1'000'000));
  BILLNET_RETURN_IF_ERROR(range("max_message_bytes", c.max_message_bytes, 1024, 1 << 30));
  BILLNET_RETURN_IF_ERROR(range("max_queued_bytes", c.max_queued_bytes, 1024, int64_t(1) << 32));
  BILLNET_RETURN_IF_ERROR(range("max_pending_windows_live", c.max_pending_windows_live, 1, 1024));
  BILLNET_RETURN_IF_ERROR(range("max_pending_windows_file", c.max_pending_windows_file, 1, 1024));
  BILLNET_RETURN_IF_ERROR(range("max_frame_pixels", c.max_frame_pixels, 1, int64_t(1) << 40));
  BILLNET_RETURN_IF_ERROR(range("idle_timeout_ms", c.idle_timeout_ms, 0, 86'400'000));
  BILLNET_RETURN_IF_ERROR(range("max_queue_wait_ms", c.max_queue_wait_ms, 0, 3'600'000));
  BILLNET_RETURN_IF_ERROR(range("max_live_lag_ms", c.max_live_lag_ms, 0, 3'600'000));
  BILLNET_RETURN_IF_ERROR(range("decode_nice", c.decode_nice, 0, 19));
  BILLNET_RETURN_IF_ERROR(range("drain_timeout_ms", c.drain_timeout_ms, 0, 86'400'000));
  BILLNET_RETURN_IF_ERROR(range("http_threads", c.http_threads, 1, 64));
  if (c.tls_cert_file.empty() != c.tls_key_file.empty())
    return InvalidArgument("tls_cert_file and tls_key_file go together (one is empty)");
  if (!c.tls_client_ca_file.empty() && c.tls_cert_file.empty())
    return InvalidArgument("tls_client_ca_file needs tls_cert_file and tls_key_file");
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok = level_ok || c.log_level == l;
  if (!level_ok)
    return InvalidArgument("log_level '" + c.log_level +
                           "' is not one of trace, debug, info, warn, error, off");
  return ValidateEventOptions(c.events);
}

int ParseCommandLine(int argc, char** argv, ServerConfig* c) {
  // The config file first, so flags override it.
  for (int i = 1; i < argc; ++i) {
    std::string path;
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      path = argv[i + 1];
    else if (std::strncmp(argv[i], "--config=", 9) == 0)
      path = argv[i] + 9;
    if (path.empty()) continue;
    Status s = LoadConfigFile(path, c);
    if (!s.ok()) {
      std::cerr << "billnet-server: " << s.ToString() << "\n";
      return 2;
    }
  }
  CLI::App app{
      "billnet-server: the BILLNET gesture recognition service (gRPC), with Prometheus "
      "metrics on HTTP. Flags override the --config file."};
  std::string config_path;
  bool print_config = false;
  app.add_option("--config", config_path, "JSON config file (keys: the flags' names with '_')");
  app.add_option("--listen", c->listen, "gRPC address HOST:PORT")->capture_default_str();
  app.add_option("--metrics-listen", c->metrics_listen,
                 "HTTP address for /metrics and /dashboard (empty: none)")
      ->capture_default_str();
  app.add_option("--model-repository", c->model_repository,
                 "model repository <repo>/<name>/<version>/sN.safetensors "
                 "(default: ./models, else the shipped models/)");
  app.add_option("--default-model", c->default_model, "model served when a call names none");
  app.add_option("--default-stage", c->default_stage, "stage served by default (s1..s5)")
      ->capture_default_str();
  app.add_option("--poll-interval-ms", c->poll_interval_ms,
                 "repository polling for new versions (0: off)")
      ->capture_default_str();
  app.add_option("--threads,--inference-threads", c->inference_threads,
                 "inference worker threads (0: one per core)")
      ->capture_default_str();
  app.add_option("--engine-helpers", c->engine_helpers,
                 "engine threads that split windows and batches with the inference threads "
                 "(-1: one per core but one; 0: off)")
      ->capture_default_str();
  app.add_option("--max-batch", c->max_batch, "windows per engine batch")->capture_default_str();
  app.add_option("--batch-wait-us", c->batch_wait_us, "longest wait for more windows to batch")
      ->capture_default_str();
  app.add_option("--max-streams", c->max_streams, "concurrent streams and calls")
      ->capture_default_str();
  app.add_option("--max-message-bytes", c->max_message_bytes, "largest gRPC message")
      ->capture_default_str();
  app.add_option("--max-queued-bytes", c->max_queued_bytes,
                 "per stream: received bytes not yet decoded (flow control above)")
      ->capture_default_str();
  app.add_option("--max-pending-windows-live", c->max_pending_windows_live,
                 "per live stream: windows waiting for inference before the oldest is dropped")
      ->capture_default_str();
  app.add_option("--max-pending-windows-file", c->max_pending_windows_file,
                 "per file stream: windows waiting before decoding pauses")
      ->capture_default_str();
  app.add_option("--max-frame-pixels", c->max_frame_pixels, "largest decoded frame")
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", c->idle_timeout_ms,
                 "end a stream that sends nothing this long (0: never)")
      ->capture_default_str();
  app.add_option("--max-queue-wait-ms", c->max_queue_wait_ms,
                 "live streams: drop a window that waited this long for inference (0: never)")
      ->capture_default_str();
  app.add_option("--max-live-lag-ms", c->max_live_lag_ms,
                 "live streams: a decoder this far behind real time skips to a key frame "
                 "(0: never)")
      ->capture_default_str();
  app.add_option("--decode-nice", c->decode_nice,
                 "nice value added to decode threads so decoding yields to inference (0: off)")
      ->capture_default_str();
  app.add_flag("--decode-idle", c->decode_idle,
               "run decode threads at SCHED_IDLE (only on otherwise idle cores) instead of "
               "--decode-nice: inference keeps its speed under load, live decoders skip sooner");
  app.add_flag("--decode-all-frames", c->decode_all_frames,
               "decode every source frame (default: leave non-reference frames that no model "
               "frame takes undecoded; the model frames are the same)");
  app.add_option("--drain-timeout-ms", c->drain_timeout_ms,
                 "on SIGTERM, how long file streams may run on")
      ->capture_default_str();
  app.add_option("--token-key-file", c->token_key_file,
                 "state-token HMAC key (default: $BILLNET_TOKEN_KEY_FILE, $BILLNET_TOKEN_KEY, "
                 "else a random per-process key)");
  app.add_option("--tls-cert-file", c->tls_cert_file,
                 "PEM certificate chain: serve gRPC over TLS (with --tls-key-file)");
  app.add_option("--tls-key-file", c->tls_key_file, "PEM private key of --tls-cert-file");
  app.add_option("--tls-client-ca-file", c->tls_client_ca_file,
                 "PEM CA certificates: require client certificates they sign (mutual TLS)");
  app.add_option("--log-level", c->log_level, "trace, debug, info, warn, error, off")
      ->capture_default_str();
  app.add_option("--http-threads", c->http_threads, "HTTP worker threads")->capture_default_str();
  app.add_option("--ready-file", c->ready_file, "written once serving: \"GRPC_PORT METRICS_PORT\"");
  app.add_option("--events-smoothing", c->events.smoothing, "default EMA weight of a new step")
      ->capture_default_str();
  app.add_option("--events-enter-threshold", c->events.enter_threshold)->capture_default_str();
  app.add_option("--events-exit-threshold", c->events.exit_threshold)->capture_default_str();
  app.add_option("--events-min-duration-s", c->events.min_duration_s)->capture_default_str();
  app.add_flag("--print-config", print_config, "print the effective config as JSON and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  Status s = ValidateConfig(*c);
  if (!s.ok()) {
    std::cerr << "billnet-server: " << s.message() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << ConfigToJson(*c) << "\n";
    return 0;
  }
  return -1;
}

}  // namespace billnet::server
