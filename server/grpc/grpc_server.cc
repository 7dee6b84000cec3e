#include "grpc/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include "grpc/services.h"

namespace billnet::server {

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
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port_);
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
  spdlog::info("grpc listening address={} port={} max_message_bytes={}", options_.listen, port_,
               options_.max_message_bytes);
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
