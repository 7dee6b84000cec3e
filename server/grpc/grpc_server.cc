#include "grpc/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "grpc/services.h"

namespace billnet::server {

namespace {

StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(std::string(what) + " '" + path + "' cannot be opened");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  if (pem.find("-----BEGIN ") == std::string::npos)
    return InvalidArgument(std::string(what) + " '" + path + "' is not PEM (no -----BEGIN line)");
  return pem;
}

}  // namespace

StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsServerCredentials(
    const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file) {
  grpc::SslServerCredentialsOptions o;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  BILLNET_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(cert_file, "TLS certificate file"));
  BILLNET_ASSIGN_OR_RETURN(pair.private_key, ReadPem(key_file, "TLS key file"));
  o.pem_key_cert_pairs.push_back(std::move(pair));
  if (!client_ca_file.empty()) {
    BILLNET_ASSIGN_OR_RETURN(o.pem_root_certs, ReadPem(client_ca_file, "TLS client CA file"));
    o.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(o);
}

GrpcServer::GrpcServer(ServiceCore* core, GrpcServerOptions options)
    : core_(core), options_(std::move(options)) {}

GrpcServer::~GrpcServer() {
  if (server_ && !shut_down_) Shutdown(std::chrono::milliseconds(0));
}

Status GrpcServer::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  gesture_ = std::make_unique<GestureServiceImpl>(core_, options_.default_events);
  admin_ = std::make_unique<ModelAdminImpl>(&core_->repository());
  grpc::ServerBuilder builder;
  std::string listen = options_.listen;
  if (listen.rfind("localhost:", 0) == 0) listen = "127.0.0.1:" + listen.substr(10);
  builder.AddListeningPort(
      listen, options_.credentials ? options_.credentials : grpc::InsecureServerCredentials(),
      &port_);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  builder.RegisterService(gesture_.get());
  builder.RegisterService(admin_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return InvalidArgument("gRPC server cannot listen on '" + options_.listen + "'");
  }
  if (auto* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(kGestureService, true);
    health->SetServingStatus(kModelAdmin, true);
  }
  spdlog::info("grpc listening address={} port={} tls={} max_message_bytes={}", options_.listen,
               port_, options_.credentials ? "on" : "off", options_.max_message_bytes);
  return Status::Ok();
}

void GrpcServer::Shutdown(std::chrono::milliseconds drain_timeout) {
  if (!server_ || shut_down_) return;
  shut_down_ = true;
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
  core_->BeginDrain();
  if (!core_->WaitForStreams(Clock::now() + drain_timeout)) {
    spdlog::warn("drain timeout: cancelling streams={}", core_->active_streams());
    core_->CancelAll("server shut down before the stream finished");
  }
  core_->WaitForStreams(Clock::now() + std::chrono::seconds(30));
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  spdlog::info("grpc server stopped");
}

void GrpcServer::Wait() {
  if (server_) server_->Wait();
}

}  // namespace billnet::server
