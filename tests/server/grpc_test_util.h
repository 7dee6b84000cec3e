// An in-process billnet server on loopback (gRPC + the metrics HTTP server)
// and a client for it, for the gRPC tests.
#ifndef BILLNET_TESTS_SERVER_GRPC_TEST_UTIL_H_
#define BILLNET_TESTS_SERVER_GRPC_TEST_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "billnet/v1/gesture_service.grpc.pb.h"
#include "billnet/v1/model_admin.grpc.pb.h"
#include "core/http_server.h"
#include "grpc/grpc_server.h"
#include "server_test_util.h"

namespace billnet::server::testing {

struct GrpcHarness {
  explicit GrpcHarness(const std::string& repo, CoreOptions core_options = {},
                       GrpcServerOptions grpc_options = {},
                       std::unique_ptr<InferenceBackend> backend = nullptr, bool with_http = false);
  ~GrpcHarness();

  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }

  CoreHarness core;
  std::unique_ptr<GrpcServer> server;
  HttpServer http;  // started with_http (CivetWeb takes ~2 s to stop)
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::GestureService::Stub> stub;
  std::unique_ptr<v1::ModelAdmin::Stub> admin;
};

struct ClientStream {
  std::vector<v1::StreamResponse> responses;
  grpc::Status status;
  std::vector<v1::WindowResult> windows() const;
  std::vector<v1::GestureEvent> events() const;
};

// Streams `bytes` after `config` in chunks and reads every response. With
// cancel_after_windows > 0 the client cancels the call once it has read that
// many windows (a dropped connection).
ClientStream StreamBytes(v1::GestureService::Stub* stub, const v1::StreamConfig& config,
                         const std::vector<uint8_t>& bytes, size_t chunk = 4096,
                         int cancel_after_windows = 0);

void ExpectSameWindow(const v1::WindowResult& got, const ExpectedWindow& want);

// GET http://127.0.0.1:port/path: the status code and body (-1 on a socket error).
int HttpGet(int port, const std::string& path, std::string* body);

}  // namespace billnet::server::testing

#endif  // BILLNET_TESTS_SERVER_GRPC_TEST_UTIL_H_
