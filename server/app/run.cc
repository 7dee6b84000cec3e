// billnet-server's life cycle: logging, token key, repository, core, the HTTP
// server (/metrics, /dashboard), the gRPC server; then SIGTERM/SIGINT -> drain -> exit 0.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "app/config.h"
#include "billnet/media/frame.h"
#include "billnet/session.h"
#include "core/dashboard.h"
#include "core/http_server.h"
#include "core/metrics.h"
#include "core/repository.h"
#include "core/service_core.h"
#include "core/token.h"
#include "grpc/grpc_server.h"

#ifndef BILLNET_SHIPPED_MODELS
#define BILLNET_SHIPPED_MODELS "models"
#endif

namespace billnet::server {

namespace {

std::string RepositoryPath(const ServerConfig& c) {
  if (!c.model_repository.empty()) return c.model_repository;
  std::error_code ec;
  if (std::filesystem::is_directory("models", ec)) return "models";
  return BILLNET_SHIPPED_MODELS;
}

// One malloc arena per thread (decision 26). glibc shares at most 8 arenas
// per core between all threads, so an inference thread's malloc or free
// could wait for an arena lock held by a preempted nice-19 decode thread (up
// to ~100 ms at 48 full-resolution streams). glibc creates arenas only as
// threads first allocate and reuses those of exited threads, so the limit
// bounds nothing in practice. MALLOC_ARENA_MAX, when set, is the operator's.
void OneMallocArenaPerThread() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_ARENA_MAX")) return;
  if (mallopt(M_ARENA_MAX, 4096) != 1) spdlog::warn("mallopt(M_ARENA_MAX) refused");
#endif
}

}  // namespace

int RunServer(const ServerConfig& config) {
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  media::SetLogLevel(config.log_level == "trace" || config.log_level == "debug"
                         ? media::LogLevel::kWarning
                         : media::LogLevel::kQuiet);

  // Signals are taken by sigwait below: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  OneMallocArenaPerThread();

  auto key = LoadTokenKey(config.token_key_file);
  if (!key.ok()) {
    spdlog::critical("token key: {}", key.status().ToString());
    return 1;
  }
  if (key->ephemeral) {
    spdlog::warn(
        "token key: none configured (--token-key-file, $BILLNET_TOKEN_KEY_FILE or "
        "$BILLNET_TOKEN_KEY); using a random per-process key: state tokens resume only "
        "on this process");
  } else {
    spdlog::info("token key from {}", key->origin);
  }
  const TokenCodec tokens(key->key);

  Metrics metrics;
  RepositoryOptions ro;
  ro.root = RepositoryPath(config);
  ro.default_model = config.default_model;
  ro.default_stage = *ParseStage(config.default_stage);
  ro.poll_interval = std::chrono::milliseconds(config.poll_interval_ms);
  ModelRepository repository(ro, &metrics);
  if (Status s = repository.Init(); !s.ok()) {
    spdlog::critical("model repository: {}", s.ToString());
    return 1;
  }
  repository.StartPolling();

  CoreOptions co;
  co.max_streams = config.max_streams;
  co.pool.threads = config.inference_threads > 0
                        ? config.inference_threads
                        : int(std::max(1u, std::thread::hardware_concurrency()));
  co.pool.engine_helpers = config.engine_helpers >= 0
                               ? config.engine_helpers
                               : int(std::max(1u, std::thread::hardware_concurrency())) - 1;
  co.pool.max_batch = config.max_batch;
  co.pool.batch_wait = std::chrono::microseconds(config.batch_wait_us);
  co.limits.max_queued_bytes = size_t(config.max_queued_bytes);
  co.limits.max_pending_windows_live = config.max_pending_windows_live;
  co.limits.max_pending_windows_file = config.max_pending_windows_file;
  co.limits.max_frame_pixels = config.max_frame_pixels;
  co.limits.idle_timeout = std::chrono::milliseconds(config.idle_timeout_ms);
  co.limits.max_queue_wait = std::chrono::milliseconds(config.max_queue_wait_ms);
  co.limits.max_live_lag = std::chrono::milliseconds(config.max_live_lag_ms);
  co.limits.decode_nice = config.decode_nice;
  co.limits.decode_all_frames = config.decode_all_frames;
  co.limits.decode_idle = config.decode_idle;
  ServiceCore core(co, &repository, &metrics, &tokens);

  // Declared before the HTTP server, which calls it: destroyed after it stops.
  Dashboard dashboard(&metrics, &core.recent_streams());
  HttpServer http;
  if (!config.metrics_listen.empty()) {
    // One HTTP server on the metrics address: /metrics, /dashboard and its JSON.
    http.AddHandler("/metrics", [&metrics](const HttpRequest&) {
      return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics.Serialize()};
    });
    dashboard.AddHandlers(&http);
    dashboard.Start();
    if (Status s = http.Start(config.metrics_listen, config.http_threads); !s.ok()) {
      spdlog::critical("metrics HTTP server: {}", s.ToString());
      return 1;
    }
    spdlog::info("metrics listening address={} port={}", config.metrics_listen, http.port());
  }

  GrpcServerOptions go;
  go.listen = config.listen;
  if (!config.tls_cert_file.empty()) {
    auto creds = TlsServerCredentials(config.tls_cert_file, config.tls_key_file,
                                      config.tls_client_ca_file);
    if (!creds.ok()) {
      spdlog::critical("tls: {}", creds.status().ToString());
      return 1;
    }
    go.credentials = *creds;
  }
  go.max_message_bytes = config.max_message_bytes;
  go.default_events = config.events;
  GrpcServer grpc(&core, go);
  if (Status s = grpc.Start(); !s.ok()) {
    spdlog::critical("{}", s.ToString());
    return 1;
  }
  spdlog::info(
      "serving repository={} default_model={} kernel_variant={} inference_threads={} "
      "engine_helpers={}",
      ro.root, repository.default_model(), KernelVariant(), co.pool.threads,
      co.pool.engine_helpers);
  if (!config.ready_file.empty()) {
    const std::string tmp = config.ready_file + ".tmp";
    std::ofstream(tmp) << grpc.port() << " " << http.port() << "\n";
    std::filesystem::rename(tmp, config.ready_file);
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: draining (drain_timeout_ms={})", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               config.drain_timeout_ms);
  grpc.Shutdown(std::chrono::milliseconds(config.drain_timeout_ms));
  repository.StopPolling();
  http.Stop();
  dashboard.Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace billnet::server
