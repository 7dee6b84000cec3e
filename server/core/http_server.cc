#include "core/http_server.h"

#include <CivetServer.h>
#include <civetweb.h>

#include <stdexcept>

namespace billnet::server {

// One CivetWeb handler for every URI ("**"): exact paths are looked up in the
// handler map; anything else is a 404 written here (CivetWeb's own error page
// needs a document root, which this server does not have).
class HttpServer::Dispatcher : public CivetHandler {
 public:
  explicit Dispatcher(HttpServer* server) : server_(server) {}

  bool handleGet(CivetServer*, mg_connection* conn) override { return Serve(conn, true); }
  bool handleHead(CivetServer*, mg_connection* conn) override { return Serve(conn, false); }

 private:
  bool Serve(mg_connection* conn, bool with_body) {
    const mg_request_info* info = mg_get_request_info(conn);
    HttpRequest req;
    req.method = info->request_method ? info->request_method : "";
    req.path = info->local_uri ? info->local_uri : "";
    req.query = info->query_string ? info->query_string : "";
    Handler handler;
    {
      std::lock_guard<std::mutex> lock(server_->mu_);
      auto it = server_->handlers_.find(req.path);
      if (it != server_->handlers_.end()) handler = it->second;
    }
    HttpResponse resp;
    if (!handler) {
      resp = {404, "text/plain; charset=utf-8", "not found: " + req.path + "\n"};
    } else {
      try {
        resp = handler(req);
      } catch (const std::exception& e) {
        resp = {500, "text/plain; charset=utf-8", std::string("handler failed: ") + e.what()};
      }
    }
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
              resp.status, mg_get_response_code_text(conn, resp.status), resp.content_type.c_str(),
              resp.body.size());
    if (with_body && !resp.body.empty()) mg_write(conn, resp.body.data(), resp.body.size());
    return true;
  }

  HttpServer* server_;
};

HttpServer::HttpServer() = default;

HttpServer::~HttpServer() { Stop(); }

void HttpServer::AddHandler(const std::string& path, Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  handlers_[path] = std::move(handler);
}

Status HttpServer::Start(const std::string& address, int threads) {
  if (server_) return InvalidArgument("HTTP server already started");
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 >= address.size())
    return InvalidArgument("HTTP address '" + address + "' is not HOST:PORT");
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  for (char c : port)
    if (c < '0' || c > '9') return InvalidArgument("HTTP address '" + address + "': bad port");
  if (host == "localhost") host = "127.0.0.1";
  const std::string listen =
      (host.empty() || host == "0.0.0.0" || host == "*") ? port : host + ":" + port;
  std::vector<std::string> options = {
      "listening_ports",   listen, "num_threads", std::to_string(threads < 1 ? 1 : threads),
      "enable_keep_alive", "no"};
  mg_init_library(0);
  try {
    server_ = std::make_unique<CivetServer>(options);
  } catch (const std::exception& e) {
    return Unsupported("HTTP server cannot listen on '" + address + "': " + e.what());
  }
  const std::vector<int> ports = server_->getListeningPorts();
  port_ = ports.empty() ? 0 : ports[0];
  dispatcher_ = std::make_unique<Dispatcher>(this);
  server_->addHandler("**", dispatcher_.get());
  return Status::Ok();
}

void HttpServer::Stop() {
  if (server_) server_->close();
  server_.reset();
  dispatcher_.reset();
}

}  // namespace billnet::server
