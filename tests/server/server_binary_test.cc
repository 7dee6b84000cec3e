// billnet-server as a process: flags and config file, ready file, /metrics,
// a stream, SIGTERM -> drain -> exit 0; bad configurations exit non-zero.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "app/config.h"
#include "grpc_test_util.h"

extern char** environ;

namespace billnet::server {
namespace {

using testing::TempDir;

struct Child {
  pid_t pid = -1;
  std::string out_path;
};

Child Spawn(const std::vector<std::string>& args, const std::string& out_path) {
  std::vector<char*> argv;
  std::vector<std::string> all = {BILLNET_SERVER_BIN};
  all.insert(all.end(), args.begin(), args.end());
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  Child c;
  c.out_path = out_path;
  EXPECT_EQ(posix_spawn(&c.pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  return c;
}

int WaitExit(pid_t pid, int timeout_s = 60) {
  for (int i = 0; i < timeout_s * 100; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

// Waits (up to 60 s) for the server's --ready-file: "GRPC_PORT METRICS_PORT".
// Leaves the ports 0 if it never appears.
void WaitReady(const std::string& path, int* grpc_port, int* http_port) {
  for (int i = 0; i < 6000 && *grpc_port == 0; ++i) {
    std::ifstream in(path);
    if (!(in >> *grpc_port >> *http_port)) *grpc_port = 0;
    if (*grpc_port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ServerConfigTest, FileThenFlagsAndValidation) {
  const std::string dir = TempDir("config");
  std::ofstream(dir + "/c.json") << R"({"listen": "0.0.0.0:6000", "max_streams": 7,
                                         "events_enter_threshold": 0.7, "log_level": "warn"})";
  ServerConfig c;
  std::string a0 = "billnet-server", a1 = "--config", a2 = dir + "/c.json", a3 = "--max-streams",
              a4 = "9";
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data()};
  EXPECT_EQ(ParseCommandLine(5, argv, &c), -1);
  EXPECT_EQ(c.listen, "0.0.0.0:6000");
  EXPECT_EQ(c.max_streams, 9);  // the flag wins
  EXPECT_FLOAT_EQ(c.events.enter_threshold, 0.7f);
  EXPECT_EQ(c.log_level, "warn");

  std::ofstream(dir + "/bad.json") << R"({"listne": "x"})";
  ServerConfig d;
  Status s = LoadConfigFile(dir + "/bad.json", &d);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("unknown key 'listne'"), std::string::npos);
  std::ofstream(dir + "/type.json") << R"({"max_streams": "many"})";
  EXPECT_FALSE(LoadConfigFile(dir + "/type.json", &d).ok());
  ServerConfig e;
  e.default_stage = "s9";
  EXPECT_FALSE(ValidateConfig(e).ok());
  e = ServerConfig{};
  e.events.exit_threshold = 0.9f;
  EXPECT_FALSE(ValidateConfig(e).ok());
  EXPECT_TRUE(ValidateConfig(ServerConfig{}).ok());
  // TLS: certificate and key together; a client CA needs both.
  e = ServerConfig{};
  e.tls_cert_file = "server.pem";
  EXPECT_FALSE(ValidateConfig(e).ok());
  e.tls_key_file = "server.key";
  EXPECT_TRUE(ValidateConfig(e).ok());
  e = ServerConfig{};
  e.tls_client_ca_file = "ca.pem";
  EXPECT_FALSE(ValidateConfig(e).ok());
}

TEST(ServerConfigTest, LoadSheddingOptions) {
  ServerConfig defaults;
  EXPECT_EQ(defaults.max_queue_wait_ms, 50);
  EXPECT_EQ(defaults.max_live_lag_ms, 1000);
  EXPECT_EQ(defaults.decode_nice, 19);
  EXPECT_FALSE(defaults.decode_all_frames);
  EXPECT_FALSE(defaults.decode_idle);

  const std::string dir = TempDir("config_shedding");
  std::ofstream(dir + "/c.json")
      << R"({"max_queue_wait_ms": 80, "max_live_lag_ms": 0, "decode_nice": 3,
             "decode_all_frames": true, "decode_idle": true})";
  ServerConfig c;
  std::string a0 = "billnet-server", a1 = "--config", a2 = dir + "/c.json",
              a3 = "--max-queue-wait-ms", a4 = "120", a5 = "--decode-nice", a6 = "0";
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data(), a5.data(), a6.data()};
  EXPECT_EQ(ParseCommandLine(7, argv, &c), -1);
  EXPECT_EQ(c.max_queue_wait_ms, 120);  // the flag wins
  EXPECT_EQ(c.max_live_lag_ms, 0);      // from the file
  EXPECT_EQ(c.decode_nice, 0);
  EXPECT_TRUE(c.decode_all_frames);
  EXPECT_TRUE(c.decode_idle);
  EXPECT_TRUE(ValidateConfig(c).ok());

  // --print-config shows them, and what it prints loads back.
  const std::string json = ConfigToJson(c);
  EXPECT_NE(json.find("\"max_queue_wait_ms\": 120"), std::string::npos) << json;
  EXPECT_NE(json.find("\"max_live_lag_ms\": 0"), std::string::npos) << json;
  EXPECT_NE(json.find("\"decode_nice\": 0"), std::string::npos) << json;
  std::ofstream(dir + "/printed.json") << json;
  ServerConfig back;
  ASSERT_TRUE(LoadConfigFile(dir + "/printed.json", &back).ok());
  EXPECT_EQ(back.max_queue_wait_ms, 120);
  EXPECT_EQ(back.max_live_lag_ms, 0);
  EXPECT_EQ(back.decode_nice, 0);
  EXPECT_TRUE(back.decode_all_frames);
  EXPECT_TRUE(back.decode_idle);
  ServerConfig flag;
  std::string f1 = "--decode-all-frames", f2 = "--decode-idle";
  char* flag_argv[] = {a0.data(), f1.data(), f2.data()};
  EXPECT_EQ(ParseCommandLine(3, flag_argv, &flag), -1);
  EXPECT_TRUE(flag.decode_all_frames);
  EXPECT_TRUE(flag.decode_idle);

  for (auto bad : {std::pair{"max_queue_wait_ms", -1}, std::pair{"max_live_lag_ms", -5},
                   std::pair{"decode_nice", 20}, std::pair{"decode_nice", -1}}) {
    ServerConfig e;
    if (std::string(bad.first) == "max_queue_wait_ms") e.max_queue_wait_ms = bad.second;
    if (std::string(bad.first) == "max_live_lag_ms") e.max_live_lag_ms = bad.second;
    if (std::string(bad.first) == "decode_nice") e.decode_nice = bad.second;
    const Status s = ValidateConfig(e);
    EXPECT_FALSE(s.ok()) << bad.first << " " << bad.second;
    EXPECT_NE(s.message().find(bad.first), std::string::npos) << s.message();
  }
  std::ofstream(dir + "/type.json") << R"({"decode_nice": "low"})";
  ServerConfig t;
  EXPECT_FALSE(LoadConfigFile(dir + "/type.json", &t).ok());
}

TEST(ServerBinaryTest, ServesStreamsAndMetricsThenDrainsOnSigterm) {
  const std::string dir = TempDir("binary");
  const std::string repo = dir + "/repo";
  testing::WriteTinyVersion(repo, "tiny", 1, 1);
  std::ofstream(dir + "/key") << "a shared replica key, 32 bytes!";
  std::ofstream(dir + "/config.json") << R"({"poll_interval_ms": 100, "log_level": "debug"})";
  Child c = Spawn({"--config", dir + "/config.json", "--listen", "127.0.0.1:0", "--metrics-listen",
                   "127.0.0.1:0", "--model-repository", repo, "--token-key-file", dir + "/key",
                   "--ready-file", dir + "/ready"},
                  dir + "/out.log");
  int grpc_port = 0, http_port = 0;
  WaitReady(dir + "/ready", &grpc_port, &http_port);
  ASSERT_GT(grpc_port, 0) << ReadAll(c.out_path);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::GestureService::NewStub(channel);
  v1::StreamConfig config;
  config.set_mode(v1::STREAM_MODE_FILE);
  const auto clip = testing::EncodeClip(media::VideoCodec::kMjpeg, "matroska", 40);
  testing::ClientStream s = testing::StreamBytes(stub.get(), config, clip);
  EXPECT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.windows().size(), 3u);
  // A new version in the repository is picked up by polling.
  testing::WriteTinyVersion(repo, "tiny", 2, 2);
  std::string body;
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(testing::HttpGet(http_port, "/metrics", &body), 200);
    if (body.find("billnet_model_active{model=\"tiny\",stage=\"s5\",version=\"2\"} 1") !=
        std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(body.find("billnet_windows_total{model=\"tiny\",stage=\"s5\",version=\"1\"} 3"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("billnet_model_swaps_total{model=\"tiny\",stage=\"s5\",version=\"2\"} 1"),
            std::string::npos);
  kill(c.pid, SIGTERM);
  EXPECT_EQ(WaitExit(c.pid), 0) << ReadAll(c.out_path);
  const std::string log = ReadAll(c.out_path);
  EXPECT_NE(log.find("token key from file"), std::string::npos) << log;
  EXPECT_NE(log.find("SIGTERM: draining"), std::string::npos);
  EXPECT_NE(log.find("stopped"), std::string::npos);
}

// `billnet-server` with no repository or model flags serves the shipped
// model (models/billnet-2x-synth, its newest complete version, S5): its info,
// and a sample clip's responses equal the engine's on the same file. Only the
// addresses are given, port 0, so parallel tests do not collide; the child
// runs in a folder without models/, so the server falls back to the source
// tree's.
TEST(ServerBinaryTest, AloneServesTheShippedModel) {
  const std::string dir = TempDir("binary_shipped");
  const std::string cwd = std::filesystem::current_path().string();
  std::filesystem::current_path(dir);
  Child c = Spawn({"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--ready-file",
                   dir + "/ready"},
                  dir + "/out.log");
  std::filesystem::current_path(cwd);
  int grpc_port = 0, http_port = 0;
  WaitReady(dir + "/ready", &grpc_port, &http_port);
  ASSERT_GT(grpc_port, 0) << ReadAll(c.out_path);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::GestureService::NewStub(channel);
  grpc::ClientContext ctx;
  v1::ModelInfoRequest req;
  v1::ModelInfoResponse info;
  ASSERT_TRUE(stub->GetModelInfo(&ctx, req, &info).ok());
  EXPECT_EQ(info.model().name(), "billnet-2x-synth");
  EXPECT_EQ(info.model().stage(), v1::STAGE_S5);
  EXPECT_EQ(info.classes(), 27);
  EXPECT_EQ(info.base_channels(), 64);
  EXPECT_EQ(info.height(), 96);
  EXPECT_EQ(info.width(), 128);
  ASSERT_EQ(info.labels_size(), 27);
  EXPECT_EQ(info.labels(0), "Swiping Left");

  const std::string file = std::string(BILLNET_SOURCE_DIR) + "/models/billnet-2x-synth/" +
                           std::to_string(info.model().version()) + "/s5.safetensors";
  auto model = Model::LoadFile(file);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::ifstream in(std::string(BILLNET_SOURCE_DIR) + "/samples/clips/01-swiping-left.mp4",
                   std::ios::binary);
  const std::vector<uint8_t> clip((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  ASSERT_FALSE(clip.empty());
  const auto want = testing::ExpectedWindows(**model, clip);
  v1::StreamConfig config;
  config.set_mode(v1::STREAM_MODE_FILE);
  testing::ClientStream s = testing::StreamBytes(stub.get(), config, clip);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  const auto w = s.windows();
  ASSERT_EQ(w.size(), want.size());
  ASSERT_FALSE(w.empty());
  for (size_t j = 0; j < w.size(); ++j) testing::ExpectSameWindow(w[j], want[j]);
  EXPECT_EQ(w[0].model().name(), "billnet-2x-synth");

  // Gesture clips get their labels: the 27 sample clips (one per class, a seed
  // no training used) through Classify. The shipped model is far from the
  // paper's accuracy (models/README.md: v2 S5 7.9% top-1 on the test split;
  // 4 of these 27 right), so this asserts well above chance (1 of 27) rather
  // than every label; a broken pipeline (colour order, geometry, frame rate,
  // windows) falls to chance.
  std::ifstream index(std::string(BILLNET_SOURCE_DIR) + "/samples/clips/index.csv");
  std::string line, right;
  int total = 0, correct = 0;
  while (std::getline(index, line)) {
    const auto semi = line.find(';');
    if (semi == std::string::npos) continue;
    const std::string name = line.substr(0, semi);
    const std::string label = line.substr(semi + 1, line.find(';', semi + 1) - semi - 1);
    std::ifstream f(std::string(BILLNET_SOURCE_DIR) + "/samples/clips/" + name, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(bytes.empty()) << name;
    grpc::ClientContext cctx;
    v1::ClassifyRequest creq;
    creq.set_video(bytes);
    v1::ClassifyResponse cresp;
    grpc::Status st = stub->Classify(&cctx, creq, &cresp);
    ASSERT_TRUE(st.ok()) << name << ": " << st.error_message();
    ++total;
    if (cresp.label_name() == label) ++correct, right += " " + name;
  }
  EXPECT_EQ(total, 27);
  EXPECT_GE(correct, 3) << "sample clips labelled right:" << right;
  std::printf("shipped model: %d of %d sample clips labelled right:%s\n", correct, total,
              right.c_str());
  kill(c.pid, SIGTERM);
  EXPECT_EQ(WaitExit(c.pid), 0) << ReadAll(c.out_path);
}

TEST(ServerBinaryTest, BadSetupsExitNonZeroWithAReason) {
  const std::string dir = TempDir("binary_bad");
  Child missing = Spawn(
      {"--model-repository", dir + "/none", "--listen", "127.0.0.1:0", "--metrics-listen", ""},
      dir + "/missing.log");
  EXPECT_EQ(WaitExit(missing.pid), 1);
  EXPECT_NE(ReadAll(missing.out_path).find("is not a directory"), std::string::npos);
  Child flag = Spawn({"--max-streams", "0"}, dir + "/flag.log");
  EXPECT_EQ(WaitExit(flag.pid), 2);
  EXPECT_NE(ReadAll(flag.out_path).find("max_streams"), std::string::npos);
  Child help = Spawn({"--help"}, dir + "/help.log");
  EXPECT_EQ(WaitExit(help.pid), 0);
  EXPECT_NE(ReadAll(help.out_path).find("--model-repository"), std::string::npos);
}

}  // namespace
}  // namespace billnet::server
