// billnet-client against an in-process server on loopback: classify equals the
// engine's ClassifyClip, the heat map is a PNG of the right size, stream gives
// the windows the server's test helpers predict, clear errors.
#include "billnet/client/client.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "billnet/viz/charts.h"
#include "billnet/viz/png.h"
#include "grpc_test_util.h"
#include "client_test_util.h"

namespace billnet::client {
namespace {

using media::VideoCodec;
using server::testing::EncodeClip;
using server::testing::ExpectedWindows;
using server::testing::GrpcHarness;
using server::testing::TempDir;

using testing::Client;
using testing::Repo;
using testing::Result;
using testing::WriteClip;

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST(ClientClassifyTest, JsonLabelEqualsTheEngineAndTheHeatMapIsAPng) {
  GrpcHarness h(Repo("client_classify"));
  const std::string dir = TempDir("client_classify_files");
  const auto clip = EncodeClip(VideoCodec::kH264, "mp4", 50, 64, 48, 12, /*seekable=*/true);
  const std::string file = WriteClip(dir, "clip.mp4", clip);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  std::vector<Response> responses;
  std::vector<int> real;
  for (const auto& w : want) {
    responses.push_back(w.response);
    real.push_back(w.real_frames);
  }
  auto label = ClassifyClip(responses, real, 8);
  ASSERT_TRUE(label.ok());

  const std::string png = dir + "/heat.png";
  Result r = Client({"--server", h.address(), "classify", file, "--json", "--heatmap", png});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto lines = JsonLines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  const auto& j = lines[0];
  EXPECT_EQ(j["label"], "class" + std::to_string(label->label));
  EXPECT_EQ(j["label_index"], label->label);
  EXPECT_FLOAT_EQ(j["probability"].get<float>(), label->probability);
  EXPECT_EQ(j["windows"], int(want.size()));

  // classes rows x (windows * steps) columns, laid out as the client does.
  const viz::DecodedPng img = viz::ReadPng(png);
  ASSERT_TRUE(img.ok()) << img.error;
  viz::HeatMapSpec spec;
  spec.rows = 5;
  const int steps = want[0].response.steps;
  spec.cols = int(want.size()) * steps;
  spec.values.assign(size_t(spec.rows * spec.cols), 0.5);
  for (int c = 0; c < 5; ++c) spec.row_labels.push_back("class" + std::to_string(c));
  spec.mark_column_max = true;
  spec.title = "clip.mp4: class" + std::to_string(label->label);
  spec.x_title = "step (" + std::to_string(steps) + " per window)";
  spec.colorbar_title = "probability";
  viz::HeatMapLayout layout;
  const viz::Canvas expected = viz::HeatMap(spec, &layout);
  EXPECT_EQ(img.width, expected.width());
  EXPECT_EQ(img.height, expected.height());
  EXPECT_EQ(layout.cells.h, 5 * layout.cell_height);
  EXPECT_GE(layout.cells.w, spec.cols);

  // The text form names the label too.
  Result t = Client({"--server", h.address(), "classify", file});
  ASSERT_EQ(t.code, kExitOk) << t.err;
  EXPECT_NE(t.out.find("class" + std::to_string(label->label)), std::string::npos) << t.out;
}

TEST(ClientClassifyTest, UnknownModelIsNotFound) {
  GrpcHarness h(Repo("client_unknown_model"));
  const std::string dir = TempDir("client_unknown_model_files");
  const std::string file =
      WriteClip(dir, "clip.mkv", EncodeClip(VideoCodec::kMjpeg, "matroska", 20));
  Result r = Client({"--server", h.address(), "classify", file, "--model", "nope"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
}

TEST(ClientStreamTest, FileGivesThePredictedWindows) {
  GrpcHarness h(Repo("client_stream"));
  const std::string dir = TempDir("client_stream_files");
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  const std::string file = WriteClip(dir, "clip.mkv", clip);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  ASSERT_GE(want.size(), 2u);

  Result r = Client(
      {"--server", h.address(), "stream", file, "--passthrough", "--json", "--chunk", "1000"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  std::vector<nlohmann::json> windows;
  int summaries = 0;
  for (const auto& j : JsonLines(r.out)) {
    if (j["type"] == "window") windows.push_back(j);
    if (j["type"] == "summary") {
      ++summaries;
      EXPECT_EQ(j["windows"], int(want.size()));
    }
  }
  EXPECT_EQ(summaries, 1);
  ASSERT_EQ(windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(windows[i]["sequence"], want[i].sequence);
    EXPECT_EQ(windows[i]["padded"], want[i].padded);
    // The window's label: highest mean probability over its steps.
    const Response& resp = want[i].response;
    ASSERT_EQ(windows[i]["top_label"].size(), size_t(resp.steps));
    int best = -1;
    float best_p = -1;
    for (int c = 0; c < resp.classes; ++c) {
      float sum = 0;
      for (int st = 0; st < resp.steps; ++st)
        sum += resp.probabilities[size_t(st * resp.classes + c)];
      if (sum / float(resp.steps) > best_p) best_p = sum / float(resp.steps), best = c;
    }
    EXPECT_EQ(windows[i]["label_index"], best);
    EXPECT_EQ(windows[i]["label"], "class" + std::to_string(best));
    EXPECT_FLOAT_EQ(windows[i]["probability"].get<float>(), best_p);
  }

  // The heat map of the last 2 windows: classes x 2 * steps.
  const std::string png = dir + "/last.png";
  Result hm = Client({"--server", h.address(), "stream", file, "--passthrough", "--heatmap", png,
                      "--heatmap-windows", "2"});
  ASSERT_EQ(hm.code, kExitOk) << hm.err;
  const viz::DecodedPng img = viz::ReadPng(png);
  ASSERT_TRUE(img.ok()) << img.error;
  viz::HeatMapSpec spec;
  spec.rows = 5;
  spec.cols = 2 * want[0].response.steps;
  spec.values.assign(size_t(spec.rows * spec.cols), 0.5);
  for (int c = 0; c < 5; ++c) spec.row_labels.push_back("class" + std::to_string(c));
  spec.mark_column_max = true;
  spec.title = "windows " + std::to_string(want.size() - 2) + "-" + std::to_string(want.size() - 1);
  spec.x_title = "step (" + std::to_string(want[0].response.steps) + " per window)";
  spec.colorbar_title = "probability";
  const viz::Canvas expected = viz::HeatMap(spec);
  EXPECT_EQ(img.width, expected.width());
  EXPECT_EQ(img.height, expected.height());

  // Text mode prints one line per window.
  Result t = Client({"--server", h.address(), "stream", file, "--passthrough"});
  ASSERT_EQ(t.code, kExitOk) << t.err;
  size_t lines = 0;
  for (size_t p = t.out.find("window "); p != std::string::npos; p = t.out.find("window ", p + 1))
    ++lines;
  EXPECT_EQ(lines, want.size()) << t.out;
}

// Client-side scaling/resampling + lossless FFV1 gives the server the same
// model frames as its own decoding of the original file: the same windows.
TEST(ClientStreamTest, ClientSideEncodingEqualsPassthrough) {
  GrpcHarness h(Repo("client_stream_encode"));
  const std::string dir = TempDir("client_stream_encode_files");
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  const std::string file = WriteClip(dir, "clip.mkv", clip);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  Result pass = Client({"--server", h.address(), "stream", file, "--passthrough", "--json"});
  ASSERT_EQ(pass.code, kExitOk) << pass.err;
  Result enc = Client({"--server", h.address(), "stream", file, "--json"});
  ASSERT_EQ(enc.code, kExitOk) << enc.err;
  auto windows = [](const std::string& out) {
    std::vector<nlohmann::json> w;
    for (const auto& j : JsonLines(out))
      if (j["type"] == "window") w.push_back(j);
    return w;
  };
  const auto a = windows(pass.out), b = windows(enc.out);
  ASSERT_EQ(a.size(), want.size());
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i]["sequence"], a[i]["sequence"]);
    EXPECT_EQ(b[i]["label_index"], a[i]["label_index"]) << i;
    EXPECT_EQ(b[i]["probability"], a[i]["probability"]) << i;
    EXPECT_EQ(b[i]["top_label"], a[i]["top_label"]) << i;
    EXPECT_EQ(b[i]["padded"], a[i]["padded"]) << i;
  }
}

TEST(ClientStreamTest, LavfiSourceWorksHeadless) {
  GrpcHarness h(Repo("client_lavfi"));
  // 3 s of testsrc2 at the tiny model's 6 fps: 18 model frames, 8 per window.
  Result r = Client({"--server", h.address(), "stream", "lavfi:testsrc2=size=64x48:rate=12",
                     "--duration", "3", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  int windows = 0;
  for (const auto& j : JsonLines(r.out)) windows += j["type"] == "window";
  EXPECT_EQ(windows, 3) << r.out;
}

TEST(ClientInfoTest, InfoLabelsAndModelsList) {
  GrpcHarness h(Repo("client_info"));
  Result info = Client({"--server", h.address(), "info", "--json"});
  ASSERT_EQ(info.code, kExitOk) << info.err;
  const auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["model"]["name"], "tiny");
  EXPECT_EQ(j["frames"], 8);
  EXPECT_EQ(j["classes"], 5);
  Result labels = Client({"--server", h.address(), "labels", "--json"});
  ASSERT_EQ(labels.code, kExitOk) << labels.err;
  EXPECT_EQ(nlohmann::json::parse(labels.out).size(), 5u);
  Result list = Client({"--server", h.address(), "models", "list", "--json"});
  ASSERT_EQ(list.code, kExitOk) << list.err;
  EXPECT_EQ(nlohmann::json::parse(list.out)["models"][0]["name"], "tiny");
  Result load = Client({"--server", h.address(), "models", "load", "tiny", "--stage", "s1"});
  EXPECT_EQ(load.code, kExitOk) << load.err;
  Result bad = Client({"--server", h.address(), "models", "load", "nope"});
  EXPECT_EQ(bad.code, kExitNotFound) << bad.err;
  Result health = Client({"--server", h.address(), "health", "--json"});
  ASSERT_EQ(health.code, kExitOk) << health.err;
  EXPECT_EQ(nlohmann::json::parse(health.out)["status"], "SERVING");
  Result service =
      Client({"--server", h.address(), "health", "--service", "billnet.v1.GestureService"});
  EXPECT_EQ(service.code, kExitOk) << service.err;
  EXPECT_NE(service.out.find("SERVING"), std::string::npos);
}

// ---- TLS ---------------------------------------------------------------------

// A test CA, a server certificate for 127.0.0.1 and localhost, a client
// certificate, and an unrelated CA, made with the openssl command (EC keys:
// fast). Empty when openssl is missing or fails.
struct TestPki {
  std::string dir, ca, server_cert, server_key, client_cert, client_key, other_ca;
};

TestPki MakeTestPki(const std::string& name) {
  TestPki p;
  p.dir = TempDir(name);
  std::ofstream(p.dir + "/server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  const std::string d = p.dir + "/";
  const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      "cd " + p.dir + " && " +
      "openssl req -x509" + key + " -keyout ca.key -out ca.pem -days 2 -subj /CN=billnet-test-ca"
      " && openssl req -x509" + key + " -keyout other.key -out other.pem -days 2"
      " -subj /CN=another-ca"
      " && openssl req" + key + " -keyout server.key -out server.csr -subj /CN=localhost"
      " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
      " -out server.pem -days 2 -extfile server.ext"
      " && openssl req" + key + " -keyout client.key -out client.csr -subj /CN=camera-1"
      " && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
      " -out client.pem -days 2";
  if (std::system(("(" + script + ") > " + d + "openssl.log 2>&1").c_str()) != 0) return {};
  p.ca = d + "ca.pem";
  p.other_ca = d + "other.pem";
  p.server_cert = d + "server.pem";
  p.server_key = d + "server.key";
  p.client_cert = d + "client.pem";
  p.client_key = d + "client.key";
  return p;
}

server::GrpcServerOptions TlsOptions(const TestPki& p, bool require_client_cert) {
  server::GrpcServerOptions o;
  auto creds = server::TlsServerCredentials(p.server_cert, p.server_key,
                                            require_client_cert ? p.ca : "");
  EXPECT_TRUE(creds.ok()) << creds.status().ToString();
  if (creds.ok()) o.credentials = *creds;
  return o;
}

TEST(ClientTlsTest, TlsServerAcceptsOnlyClientsThatTrustIt) {
  const TestPki p = MakeTestPki("client_tls");
  ASSERT_FALSE(p.ca.empty()) << "openssl failed (scripts/setup installs it)";
  GrpcHarness h(Repo("client_tls_repo"), {}, TlsOptions(p, false));
  Result ok = Client({"--server", h.address(), "--tls-ca", p.ca, "info", "--json"});
  ASSERT_EQ(ok.code, kExitOk) << ok.err;
  EXPECT_EQ(nlohmann::json::parse(ok.out)["model"]["name"], "tiny");
  // By name: the certificate also carries localhost.
  Result by_name = Client({"--server", h.address(), "--tls-ca", p.ca, "--tls-server-name",
                           "localhost", "health"});
  EXPECT_EQ(by_name.code, kExitOk) << by_name.err;
  // Plaintext, another CA, or a name the certificate lacks: no connection.
  Result plain = Client({"--server", h.address(), "--timeout", "2", "info"});
  EXPECT_EQ(plain.code, kExitUnreachable) << plain.err;
  Result other = Client({"--server", h.address(), "--timeout", "2", "--tls-ca", p.other_ca, "info"});
  EXPECT_EQ(other.code, kExitUnreachable) << other.err;
  Result wrong_name = Client({"--server", h.address(), "--timeout", "2", "--tls-ca", p.ca,
                              "--tls-server-name", "elsewhere.example", "info"});
  EXPECT_EQ(wrong_name.code, kExitUnreachable) << wrong_name.err;
  // Bad TLS options are named.
  Result missing = Client({"--server", h.address(), "--tls-ca", p.dir + "/none.pem", "info"});
  EXPECT_EQ(missing.code, kExitNotFound);
  EXPECT_NE(missing.err.find("--tls-ca " + p.dir + "/none.pem"), std::string::npos) << missing.err;
  Result not_pem = Client({"--server", h.address(), "--tls-ca", p.dir + "/server.ext", "info"});
  EXPECT_EQ(not_pem.code, kExitUsage);
  EXPECT_NE(not_pem.err.find("not a PEM file"), std::string::npos) << not_pem.err;
  Result half = Client({"--server", h.address(), "--tls-cert", p.client_cert, "info"});
  EXPECT_EQ(half.code, kExitUsage);
  EXPECT_NE(half.err.find("--tls-cert and --tls-key"), std::string::npos) << half.err;
}

TEST(ClientTlsTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  const TestPki p = MakeTestPki("client_mtls");
  ASSERT_FALSE(p.ca.empty()) << "openssl failed (scripts/setup installs it)";
  GrpcHarness h(Repo("client_mtls_repo"), {}, TlsOptions(p, true));
  Result no_cert = Client({"--server", h.address(), "--timeout", "2", "--tls-ca", p.ca, "info"});
  EXPECT_EQ(no_cert.code, kExitUnreachable) << no_cert.err;
  Result with_cert = Client({"--server", h.address(), "--tls-ca", p.ca, "--tls-cert",
                             p.client_cert, "--tls-key", p.client_key, "info"});
  EXPECT_EQ(with_cert.code, kExitOk) << with_cert.err;
  // A clip streams over mutual TLS too.
  const std::string dir = TempDir("client_mtls_files");
  const std::string file =
      WriteClip(dir, "clip.mkv", EncodeClip(VideoCodec::kMjpeg, "matroska", 20));
  Result stream = Client({"--server", h.address(), "--tls-ca", p.ca, "--tls-cert", p.client_cert,
                          "--tls-key", p.client_key, "stream", file, "--json"});
  EXPECT_EQ(stream.code, kExitOk) << stream.err;
  EXPECT_NE(stream.out.find("\"window\""), std::string::npos);
}

TEST(ClientTlsTest, ServerCredentialsNameTheBadFile) {
  const std::string dir = TempDir("server_tls_files");
  std::ofstream(dir + "/garbage.pem") << "not a certificate";
  auto missing = server::TlsServerCredentials(dir + "/none.pem", dir + "/none.key", "");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir + "/none.pem"), std::string::npos);
  auto garbage = server::TlsServerCredentials(dir + "/garbage.pem", dir + "/garbage.pem", "");
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.status().message().find("is not PEM"), std::string::npos);
}

TEST(ClientErrorTest, MissingFile) {
  Result r = Client({"--server", "127.0.0.1:1", "classify", "/nonexistent/clip.mp4"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_NE(r.err.find("no such file: /nonexistent/clip.mp4"), std::string::npos) << r.err;
  Result s =
      Client({"--server", "127.0.0.1:1", "stream", "/nonexistent/clip.mp4", "--passthrough"});
  EXPECT_EQ(s.code, kExitNotFound);
}

TEST(ClientErrorTest, UnreachableServerFromTheBinary) {
  const std::string dir = TempDir("client_unreachable");
  const std::string file = WriteClip(dir, "clip.mkv", {1, 2, 3});
  const std::string cmd = std::string(BILLNET_CLIENT_BIN) +
                          " --server 127.0.0.1:1 --timeout 1 classify " + file + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string text;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) text.append(buf, n);
  const int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kExitUnreachable);
  EXPECT_NE(text.find("cannot reach the server at 127.0.0.1:1"), std::string::npos) << text;
}

// A minimal HTTP/1.1 file server on loopback for URL sources: GET of a file
// in `dir` (with "Range: bytes=N-" as 206), 404 otherwise; one connection at a
// time, closed after each response.
class HttpFileServer {
 public:
  explicit HttpFileServer(std::string dir) : dir_(std::move(dir)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("HttpFileServer: cannot listen");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~HttpFileServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string Url(const std::string& name) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + name;
  }

 private:
  void Serve() {
    for (;;) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, size_t(n));
      }
      std::istringstream line(req);
      std::string method, path;
      line >> method >> path;
      std::ifstream in(dir_ + path, std::ios::binary);
      std::string body, head;
      if (method != "GET" || path.find("..") != std::string::npos || !in) {
        body = "not found";
        head = "HTTP/1.1 404 Not Found\r\n";
      } else {
        std::ostringstream ss;
        ss << in.rdbuf();
        body = ss.str();
        const size_t total = body.size();
        const size_t r = req.find("Range: bytes=");
        size_t from = 0;
        if (r != std::string::npos) from = std::strtoull(req.c_str() + r + 13, nullptr, 10);
        if (from > 0 && from < total) {
          body = body.substr(from);
          head = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(from) +
                 "-" + std::to_string(total - 1) + "/" + std::to_string(total) + "\r\n";
        } else {
          head = "HTTP/1.1 200 OK\r\n";
        }
        head += "Accept-Ranges: bytes\r\n";
      }
      head += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
      const std::string out = head + body;
      for (size_t off = 0; off < out.size();) {
        const ssize_t n = ::send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += size_t(n);
      }
      ::close(c);
    }
  }
  std::string dir_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(ClientUrlTest, HttpSourceGivesTheFilesResponses) {
  GrpcHarness h(Repo("client_url"));
  const std::string dir = TempDir("client_url_files");
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  const std::string file = WriteClip(dir, "clip.mkv", clip);
  HttpFileServer http(dir);
  const std::string url = http.Url("clip.mkv");
  auto windows = [](const std::string& out) {
    std::vector<nlohmann::json> w;
    for (const auto& j : JsonLines(out))
      if (j["type"] == "window") w.push_back(j);
    return w;
  };
  for (const char* mode : {"--passthrough", "--codec=ffv1"}) {
    Result a = Client({"--server", h.address(), "stream", file, mode, "--json"});
    Result b = Client({"--server", h.address(), "stream", url, mode, "--json"});
    ASSERT_EQ(a.code, kExitOk) << a.err;
    ASSERT_EQ(b.code, kExitOk) << b.err;
    const auto wa = windows(a.out), wb = windows(b.out);
    ASSERT_EQ(wa.size(), wb.size()) << mode;
    ASSERT_GT(wa.size(), 0u);
    for (size_t i = 0; i < wa.size(); ++i) {
      EXPECT_EQ(wb[i]["sequence"], wa[i]["sequence"]) << mode << i;
      EXPECT_EQ(wb[i]["probability"], wa[i]["probability"]) << mode << i;
      EXPECT_EQ(wb[i]["top_label"], wa[i]["top_label"]) << mode << i;
      EXPECT_EQ(wb[i]["first_ts"], wa[i]["first_ts"]) << mode << i;
      EXPECT_EQ(wb[i]["padded"], wa[i]["padded"]) << mode << i;
    }
  }
  Result ca = Client({"--server", h.address(), "classify", file, "--json"});
  Result cb = Client({"--server", h.address(), "classify", url, "--json"});
  ASSERT_EQ(cb.code, kExitOk) << cb.err;
  EXPECT_EQ(JsonLines(cb.out).at(0)["mean_probabilities"],
            JsonLines(ca.out).at(0)["mean_probabilities"]);

  // A missing resource and a host that refuses: exit 4 naming the URL.
  for (const std::string& bad : {http.Url("missing.mkv"), std::string("http://127.0.0.1:1/x.mkv")}) {
    Result c = Client({"--server", h.address(), "classify", bad});
    EXPECT_EQ(c.code, kExitNotFound) << c.err;
    EXPECT_NE(c.err.find(bad), std::string::npos) << c.err;
    for (const char* mode : {"--passthrough", "--codec=ffv1"}) {
      Result s = Client({"--server", h.address(), "stream", bad, mode});
      EXPECT_EQ(s.code, kExitNotFound) << mode << s.err;
      EXPECT_NE(s.err.find(bad), std::string::npos) << s.err;
    }
  }
}

TEST(ClientErrorTest, BadCommandLine) {
  EXPECT_EQ(Client({"frobnicate"}).code, kExitUsage);
  EXPECT_EQ(Client({"classify"}).code, kExitUsage);
}

}  // namespace
}  // namespace billnet::client
