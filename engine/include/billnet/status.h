// Status and StatusOr: how the engine reports errors. No exception crosses the
// engine's API; every fallible call returns one of these.
#ifndef BILLNET_STATUS_H_
#define BILLNET_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace billnet {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // the caller passed something malformed
  kCorruption,         // a file or buffer is damaged or inconsistent
  kUnsupported,        // well-formed, but not something this build handles
  kResourceExhausted,  // out of memory or another bounded resource
  kNotFound,           // a named file, tensor or model does not exist
  kInternal,           // a bug: an invariant the engine relies on broke
  kCancelled,          // the caller asked a long operation to stop
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Corruption: model 'x': ..." ; "OK" for success.
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status Corruption(std::string m) {
  return Status(StatusCode::kCorruption, std::move(m));
}
inline Status Unsupported(std::string m) {
  return Status(StatusCode::kUnsupported, std::move(m));
}
inline Status ResourceExhausted(std::string m) {
  return Status(StatusCode::kResourceExhausted, std::move(m));
}
inline Status NotFound(std::string m) {
  return Status(StatusCode::kNotFound, std::move(m));
}
inline Status Internal(std::string m) {
  return Status(StatusCode::kInternal, std::move(m));
}
inline Status Cancelled(std::string m) {
  return Status(StatusCode::kCancelled, std::move(m));
}

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& status) : status_(status) {  // NOLINT: implicit
    assert(!status.ok() && "StatusOr built from an OK status without value");
    if (status_.ok()) status_ = Internal("StatusOr: OK status without value");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace billnet

#define BILLNET_CONCAT_INNER_(a, b) a##b
#define BILLNET_CONCAT_(a, b) BILLNET_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` (a Status) is not OK.
#define BILLNET_RETURN_IF_ERROR(expr)             \
  do {                                            \
    ::billnet::Status billnet_status_ = (expr);   \
    if (!billnet_status_.ok()) return billnet_status_; \
  } while (0)

// `lhs = value of expr` (a StatusOr), or returns its Status.
#define BILLNET_ASSIGN_OR_RETURN(lhs, expr) \
  BILLNET_ASSIGN_OR_RETURN_IMPL_(BILLNET_CONCAT_(billnet_so_, __LINE__), lhs, expr)
#define BILLNET_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

#endif  // BILLNET_STATUS_H_
