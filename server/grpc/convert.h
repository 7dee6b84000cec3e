// Between the core's types and the billnet.v1 protobuf messages, and the one
// mapping from ServeStatus to grpc::Status.
#ifndef BILLNET_SERVER_GRPC_CONVERT_H_
#define BILLNET_SERVER_GRPC_CONVERT_H_

#include <grpcpp/support/status.h>

#include <optional>
#include <string>

#include "billnet/v1/gesture_service.pb.h"
#include "billnet/v1/model_admin.pb.h"
#include "core/events.h"
#include "core/repository.h"
#include "core/serve_status.h"
#include "core/service_core.h"
#include "core/stream.h"

namespace billnet::server {

grpc::Status ToGrpc(const ServeStatus& status);

// STAGE_UNSPECIFIED -> nullopt; anything but 0..5 is INVALID_ARGUMENT.
ServeStatus FromProtoStage(v1::Stage stage, std::optional<Stage>* out);
v1::Stage ToProtoStage(Stage stage);
void ToProto(const ModelKey& key, v1::ModelId* out);

// A StreamConfig message, checked: mode, stage, sizes, event options (unset
// fields take `defaults`).
ServeStatus FromProto(const v1::StreamConfig& in, const EventOptions& defaults, StreamConfig* out);

void ToProto(const WindowOutput& w, v1::WindowResult* out);
void ToProto(const GestureEvent& e, v1::GestureEvent* out);
void ToProto(const StreamSummary& s, v1::StreamSummary* out);
void ToProto(const StartInfo& info, v1::StreamStarted* out);
void ToProto(const LoadedModel& m, bool active, v1::ModelInfoResponse* out);

}  // namespace billnet::server

#endif  // BILLNET_SERVER_GRPC_CONVERT_H_
