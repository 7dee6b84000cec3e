// The gRPC services over ServiceCore (callback API: no thread per call; a
// stream's decoding and inference run on the core's threads, never on gRPC's).
//   billnet.v1.GestureService: Stream, Classify, GetModelInfo
//   billnet.v1.ModelAdmin:     ListModels, Load, Activate, Unload
#ifndef BILLNET_SERVER_GRPC_SERVICES_H_
#define BILLNET_SERVER_GRPC_SERVICES_H_

#include "billnet/v1/gesture_service.grpc.pb.h"
#include "billnet/v1/model_admin.grpc.pb.h"
#include "core/events.h"
#include "core/service_core.h"

namespace billnet::server {

class GestureServiceImpl final : public v1::GestureService::CallbackService {
 public:
  // `core` outlives the service. `default_events`: unset EventOptions fields.
  GestureServiceImpl(ServiceCore* core, EventOptions default_events);

  grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* Stream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::ModelInfoRequest* request,
                                         v1::ModelInfoResponse* response) override;

 private:
  ServiceCore* core_;
  EventOptions default_events_;
};

class ModelAdminImpl final : public v1::ModelAdmin::CallbackService {
 public:
  explicit ModelAdminImpl(ModelRepository* repository);

  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* Load(grpc::CallbackServerContext* context,
                                 const v1::LoadModelRequest* request,
                                 v1::LoadModelResponse* response) override;
  grpc::ServerUnaryReactor* Activate(grpc::CallbackServerContext* context,
                                     const v1::ActivateModelRequest* request,
                                     v1::ActivateModelResponse* response) override;
  grpc::ServerUnaryReactor* Unload(grpc::CallbackServerContext* context,
                                   const v1::UnloadModelRequest* request,
                                   v1::UnloadModelResponse* response) override;

 private:
  ModelRepository* repository_;
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_GRPC_SERVICES_H_
