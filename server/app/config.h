// billnet-server's configuration: defaults, a JSON config file, command-line
// flags (flags override the file). Every key of the file is the flag's long
// name with '_' for '-' (e.g. "metrics_listen"); unknown keys are an error.
#ifndef BILLNET_SERVER_APP_CONFIG_H_
#define BILLNET_SERVER_APP_CONFIG_H_

#include <cstdint>
#include <string>

#include "billnet/status.h"
#include "core/events.h"

namespace billnet::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";
  std::string metrics_listen = "127.0.0.1:9464";  // empty: no HTTP server
  std::string model_repository;                   // empty: ./models, else the source tree's
  std::string default_model;                      // empty: the first name with a model
  std::string default_stage = "s5";
  int poll_interval_ms = 5000;  // repository polling; 0: off
  int inference_threads = 0;    // 0: one per core
  int engine_helpers = -1;      // engine threads shared by the inference threads; -1: cores - 1
  int max_batch = 8;
  int batch_wait_us = 2000;
  int max_streams = 1000;
  int max_message_bytes = 64 << 20;
  int64_t max_queued_bytes = 4 << 20;  // per stream, received but not decoded
  int max_pending_windows_live = 2;
  int max_pending_windows_file = 2;
  int64_t max_frame_pixels = 64'000'000;
  int idle_timeout_ms = 30000;     // 0: never
  int max_queue_wait_ms = 50;      // live windows older than this when the pool would start
                                   // them are dropped; 0: never
  int max_live_lag_ms = 1000;      // a live decoder this far behind skips to a key frame; 0: never
  int decode_nice = 19;            // added to the decode threads' nice value; 0: unchanged
  bool decode_idle = false;        // decode threads at SCHED_IDLE (decode_nice then unused)
  bool decode_all_frames = false;  // false: non-reference frames no model frame takes are not decoded
  int drain_timeout_ms = 30000;    // file streams get this long on SIGTERM
  std::string token_key_file;      // empty: $BILLNET_TOKEN_KEY_FILE, $BILLNET_TOKEN_KEY, random
  // TLS for the gRPC port (empty: plaintext). Cert and key go together; a
  // client CA makes the server require and verify client certificates.
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  std::string log_level = "info";  // trace, debug, info, warn, error, off
  int http_threads = 2;
  std::string ready_file;  // written once serving: "grpc_port metrics_port\n"
  EventOptions events;     // defaults for streams that leave them unset
};

// Reads a JSON config file into `config` (only the keys it has).
Status LoadConfigFile(const std::string& path, ServerConfig* config);
// The config as JSON (what --print-config shows).
std::string ConfigToJson(const ServerConfig& config);
// Range checks; InvalidArgument naming the key.
Status ValidateConfig(const ServerConfig& config);

// Parses argv: --config FILE first, then the flags. Returns -1 to go on, or
// an exit code (0 after --help / --print-config, 2 after a bad flag).
int ParseCommandLine(int argc, char** argv, ServerConfig* config);

// Runs the server until SIGTERM/SIGINT; returns the process exit code.
int RunServer(const ServerConfig& config);

}  // namespace billnet::server

#endif  // BILLNET_SERVER_APP_CONFIG_H_
