// The server's one HTTP server (CivetWeb), on the metrics address (DESIGN.md
// section 3): /metrics now; /dashboard and its JSON will be more handlers on
// this same object (AddHandler), never a second server.
//
// Thread-safety: handlers run on CivetWeb's threads, concurrently; AddHandler
// may be called from any thread, before or after Start; Start and Stop from
// one thread.
#ifndef BILLNET_SERVER_CORE_HTTP_SERVER_H_
#define BILLNET_SERVER_CORE_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "billnet/status.h"

class CivetServer;

namespace billnet::server {

struct HttpRequest {
  std::string method;  // "GET", ...
  std::string path;    // "/metrics"
  std::string query;   // after '?', undecoded
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  HttpServer();
  ~HttpServer();  // stops the server
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serves GET (and HEAD) requests for exactly `path`; other paths are 404.
  void AddHandler(const std::string& path, Handler handler);

  // Listens on "HOST:PORT" (HOST an IPv4 address or "localhost"; "0.0.0.0"
  // or an empty host: every interface; PORT 0: any free port) with `threads`
  // worker threads. InvalidArgument for a malformed address, Unsupported if
  // CivetWeb cannot listen (the port is taken, ...).
  Status Start(const std::string& address, int threads = 2);
  void Stop();

  // The port actually bound (after Start).
  int port() const { return port_; }

 private:
  class Dispatcher;
  std::unique_ptr<CivetServer> server_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::mutex mu_;
  std::map<std::string, Handler> handlers_;  // by exact path
  int port_ = 0;
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_HTTP_SERVER_H_
