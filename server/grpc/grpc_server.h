// The gRPC server: GestureService and ModelAdmin over a ServiceCore, standard
// health checking (grpc.health.v1.Health: Check and Watch, per service) and
// server reflection, the message size limit, and the drain on shutdown.
#ifndef BILLNET_SERVER_GRPC_GRPC_SERVER_H_
#define BILLNET_SERVER_GRPC_GRPC_SERVER_H_

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>

#include <chrono>
#include <memory>
#include <string>

#include "billnet/status.h"
#include "core/events.h"
#include "core/service_core.h"

namespace billnet::server {

class GestureServiceImpl;
class ModelAdminImpl;

struct GrpcServerOptions {
  std::string listen = "127.0.0.1:50051";  // HOST:PORT; port 0 picks a free one
  std::shared_ptr<grpc::ServerCredentials> credentials;  // null: plaintext
  int max_message_bytes = 64 << 20;
  EventOptions default_events;
};

// TLS credentials from PEM files: the certificate chain and its key, and
// optionally the CA certificates that must have signed a client's certificate
// (mutual TLS). NotFound / InvalidArgument naming the file that is missing,
// unreadable or not PEM.
StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsServerCredentials(
    const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file);

class GrpcServer {
 public:
  // `core` outlives the server.
  GrpcServer(ServiceCore* core, GrpcServerOptions options);
  ~GrpcServer();  // Shutdown(0) if still running

  // Builds and starts the server (Unsupported-like InvalidArgument when it
  // cannot listen).
  Status Start();
  int port() const { return port_; }

  // Graceful shutdown: health NOT_SERVING, new streams refused (UNAVAILABLE),
  // live streams end after their last full window (UNAVAILABLE), file streams
  // run to their end for up to `drain_timeout`; what is left is cancelled;
  // then gRPC shuts down.
  void Shutdown(std::chrono::milliseconds drain_timeout);
  // Blocks until the server has shut down.
  void Wait();

  static constexpr const char* kGestureService = "billnet.v1.GestureService";
  static constexpr const char* kModelAdmin = "billnet.v1.ModelAdmin";

 private:
  ServiceCore* core_;
  GrpcServerOptions options_;
  std::unique_ptr<GestureServiceImpl> gesture_;
  std::unique_ptr<ModelAdminImpl> admin_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_GRPC_GRPC_SERVER_H_
