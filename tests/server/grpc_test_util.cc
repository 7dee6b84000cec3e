#include "grpc_test_util.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace billnet::server::testing {

GrpcHarness::GrpcHarness(const std::string& repo, CoreOptions core_options,
                         GrpcServerOptions grpc_options, std::unique_ptr<InferenceBackend> backend,
                         bool with_http)
    : core(repo, core_options, nullptr, std::move(backend)) {
  grpc_options.listen = "127.0.0.1:0";
  server = std::make_unique<GrpcServer>(core.core.get(), grpc_options);
  Status s = server->Start();
  EXPECT_TRUE(s.ok()) << s.ToString();
  Metrics* metrics = &core.metrics;
  http.AddHandler("/metrics", [metrics](const HttpRequest&) {
    return HttpResponse{200, "text/plain; version=0.0.4", metrics->Serialize()};
  });
  if (with_http) {
    s = http.Start("127.0.0.1:0");
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  args.SetMaxSendMessageSize(256 << 20);
  channel = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
  stub = v1::GestureService::NewStub(channel);
  admin = v1::ModelAdmin::NewStub(channel);
}

GrpcHarness::~GrpcHarness() {
  server->Shutdown(std::chrono::milliseconds(0));
  http.Stop();
}

std::vector<v1::WindowResult> ClientStream::windows() const {
  std::vector<v1::WindowResult> out;
  for (const auto& r : responses)
    if (r.has_window()) out.push_back(r.window());
  return out;
}

std::vector<v1::GestureEvent> ClientStream::events() const {
  std::vector<v1::GestureEvent> out;
  for (const auto& r : responses)
    for (const auto& e : r.events()) out.push_back(e);
  return out;
}

ClientStream StreamBytes(v1::GestureService::Stub* stub, const v1::StreamConfig& config,
                         const std::vector<uint8_t>& bytes, size_t chunk,
                         int cancel_after_windows) {
  ClientStream out;
  grpc::ClientContext ctx;
  auto rw = stub->Stream(&ctx);
  std::thread writer([&] {
    v1::StreamRequest r;
    *r.mutable_config() = config;
    if (!rw->Write(r)) return;
    for (size_t off = 0; off < bytes.size(); off += chunk) {
      v1::StreamRequest c;
      c.set_chunk(bytes.data() + off, std::min(chunk, bytes.size() - off));
      if (!rw->Write(c)) return;
    }
    rw->WritesDone();
  });
  v1::StreamResponse resp;
  int windows = 0;
  while (rw->Read(&resp)) {
    out.responses.push_back(resp);
    if (resp.has_window() && ++windows == cancel_after_windows) ctx.TryCancel();
  }
  writer.join();
  out.status = rw->Finish();
  return out;
}

void ExpectSameWindow(const v1::WindowResult& got, const ExpectedWindow& want) {
  const Response& r = want.response;
  EXPECT_EQ(got.sequence(), want.sequence);
  EXPECT_EQ(got.padded(), want.padded) << "window " << want.sequence;
  EXPECT_EQ(got.real_frames(), want.real_frames) << "window " << want.sequence;
  EXPECT_EQ(got.first_source_ts(), want.first_ts) << "window " << want.sequence;
  EXPECT_EQ(got.last_source_ts(), want.last_ts) << "window " << want.sequence;
  EXPECT_EQ(got.steps(), r.steps);
  EXPECT_EQ(got.classes(), r.classes);
  EXPECT_EQ(std::vector<float>(got.scores().begin(), got.scores().end()), r.scores)
      << "window " << want.sequence;
  EXPECT_EQ(std::vector<int32_t>(got.integer_scores().begin(), got.integer_scores().end()),
            r.integer_scores)
      << "window " << want.sequence;
  EXPECT_EQ(got.scores_are_integers(), r.scores_are_integers);
  EXPECT_EQ(std::vector<float>(got.probabilities().begin(), got.probabilities().end()),
            r.probabilities);
  EXPECT_EQ(std::vector<int>(got.top_class().begin(), got.top_class().end()), r.top_class);
  EXPECT_EQ(std::vector<float>(got.top_probability().begin(), got.top_probability().end()),
            r.top_probability);
}

int HttpGet(int port, const std::string& path, std::string* body) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  const std::string req =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), 0) != ssize_t(req.size())) {
    ::close(fd);
    return -1;
  }
  std::string resp;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) resp.append(buf, size_t(n));
  ::close(fd);
  const size_t sp = resp.find(' ');
  const size_t head_end = resp.find("\r\n\r\n");
  if (sp == std::string::npos || head_end == std::string::npos) return -1;
  *body = resp.substr(head_end + 4);
  return std::atoi(resp.c_str() + sp + 1);
}

}  // namespace billnet::server::testing
