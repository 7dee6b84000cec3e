#include "core/serve_status.h"

namespace billnet::server {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kCancelled:
      return "CANCELLED";
    case Code::kUnknown:
      return "UNKNOWN";
    case Code::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case Code::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case Code::kNotFound:
      return "NOT_FOUND";
    case Code::kAlreadyExists:
      return "ALREADY_EXISTS";
    case Code::kPermissionDenied:
      return "PERMISSION_DENIED";
    case Code::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case Code::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case Code::kAborted:
      return "ABORTED";
    case Code::kOutOfRange:
      return "OUT_OF_RANGE";
    case Code::kUnimplemented:
      return "UNIMPLEMENTED";
    case Code::kInternal:
      return "INTERNAL";
    case Code::kUnavailable:
      return "UNAVAILABLE";
    case Code::kDataLoss:
      return "DATA_LOSS";
    case Code::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

std::string ServeStatus::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code)) + ": " + message;
}

ServeStatus FromEngine(const Status& status, const std::string& context) {
  if (status.ok()) return ServeStatus::Ok();
  Code code = Code::kUnknown;
  switch (status.code()) {
    case StatusCode::kOk:
      return ServeStatus::Ok();
    case StatusCode::kInvalidArgument:
    case StatusCode::kCorruption:
    case StatusCode::kUnsupported:
      code = Code::kInvalidArgument;
      break;
    case StatusCode::kResourceExhausted:
      code = Code::kResourceExhausted;
      break;
    case StatusCode::kNotFound:
      code = Code::kNotFound;
      break;
    case StatusCode::kInternal:
      code = Code::kInternal;
      break;
    case StatusCode::kCancelled:
      code = Code::kCancelled;
      break;
  }
  std::string message = status.ToString();
  if (!context.empty()) message = context + ": " + message;
  return ServeStatus(code, std::move(message));
}

}  // namespace billnet::server
