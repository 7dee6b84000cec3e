// ServeStatus: how a call or stream of the service ends, in gRPC's codes (the
// same numbers as grpc::StatusCode) without depending on gRPC, so the core is
// testable without sockets. FromEngine() is the one mapping from the engine's
// and media's Status; grpc/convert.h maps ServeStatus to grpc::Status.
#ifndef BILLNET_SERVER_CORE_SERVE_STATUS_H_
#define BILLNET_SERVER_CORE_SERVE_STATUS_H_

#include <string>
#include <utility>

#include "billnet/status.h"

namespace billnet::server {

enum class Code {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

const char* CodeName(Code code);  // "INVALID_ARGUMENT", ...

struct ServeStatus {
  Code code = Code::kOk;
  std::string message;

  ServeStatus() = default;
  ServeStatus(Code c, std::string m) : code(c), message(std::move(m)) {}
  static ServeStatus Ok() { return {}; }
  bool ok() const { return code == Code::kOk; }
  std::string ToString() const;  // "INVALID_ARGUMENT: ..."
};

// Engine/media Status -> service status. Bad data from a client (InvalidArgument,
// Corruption, Unsupported) is INVALID_ARGUMENT; ResourceExhausted (a frame above
// the pixel limit, out of memory) RESOURCE_EXHAUSTED; NotFound NOT_FOUND;
// Cancelled CANCELLED; Internal INTERNAL. `context` prefixes the message.
ServeStatus FromEngine(const Status& status, const std::string& context = "");

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_SERVE_STATUS_H_
