// billnet-model, run as a user runs it.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct Result {
  int exit_code;
  std::string out;
};

// Runs billnet-model with `args`; stdout and stderr together.
Result Tool(const std::string& args) {
  const std::string cmd = std::string(BILLNET_MODEL_TOOL) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("billnet_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

const char* kTiny =
    "--base-channels 8 --groups 2 --lstm-units 16 --classes 5 --tail-mor-blocks 1 "
    "--frames 8 --height 32 --width 32";

TEST_F(CliTest, InfoJsonOfBillnet2xHasTableIFigures) {
  const std::string f = Path("s5.safetensors");
  ASSERT_EQ(Tool("random --stage s5 --seed 3 -o " + f).exit_code, 0);
  Result r = Tool("info --json " + f);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["weight_memory_mbit"].get<double>(), 1.005792, 1e-9);
  EXPECT_NEAR(j["gbops"].get<double>(), 6.34, 0.634);
  EXPECT_EQ(j["stage"], "s5");
  EXPECT_EQ(j["params"], 1002336);
  EXPECT_EQ(j["labels"].size(), 27u);
  EXPECT_GT(j["layers"].size(), 20u);
}

TEST_F(CliTest, RandomIsDeterministicPerSeed) {
  const std::string a = Path("a"), b = Path("b"), c = Path("c");
  ASSERT_EQ(Tool(std::string("random --stage s3 --seed 9 -o ") + a + " " + kTiny).exit_code, 0);
  ASSERT_EQ(Tool(std::string("random --stage s3 --seed 9 -o ") + b + " " + kTiny).exit_code, 0);
  ASSERT_EQ(Tool(std::string("random --stage s3 --seed 10 -o ") + c + " " + kTiny).exit_code, 0);
  auto slurp = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  EXPECT_EQ(slurp(a), slurp(b));
  EXPECT_NE(slurp(a), slurp(c));
}

TEST_F(CliTest, RunPrintsAClipLabelForARawClip) {
  const std::string m = Path("m"), clip = Path("clip.rgb");
  ASSERT_EQ(Tool(std::string("random --stage s5 --seed 1 -o ") + m + " " + kTiny).exit_code, 0);
  ASSERT_EQ(Tool("clip -o " + clip + " --frames 20 --height 32 --width 32").exit_code, 0);
  Result r = Tool("run --json " + m + " " + clip);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["windows"].size(), 3u);  // 20 frames in windows of 8: 8, 8, 4 + padding
  EXPECT_EQ(j["windows"][2]["padded"], true);
  EXPECT_EQ(j["windows"][2]["real_frames"], 4);
  EXPECT_EQ(j["windows"][0]["scores"].size(), 4u * 5u);
  EXPECT_TRUE(j["label"].is_string());
}

// `activations`: every binary activation's share of ones; --as-s4 runs the
// same S3 weights with every threshold at 0 (S3 files only).
TEST_F(CliTest, ActivationsReportsSharesOfOnesAndTheS4Rewrite) {
  const std::string s3 = Path("s3"), s5 = Path("s5"), clip = Path("clip.rgb");
  ASSERT_EQ(Tool(std::string("random --stage s3 --seed 2 -o ") + s3 + " " + kTiny).exit_code, 0);
  ASSERT_EQ(Tool(std::string("random --stage s5 --seed 2 -o ") + s5 + " " + kTiny).exit_code, 0);
  ASSERT_EQ(Tool("clip -o " + clip + " --frames 20 --height 32 --width 32").exit_code, 0);
  Result r = Tool("activations --json --as-s4 " + s3 + " " + clip);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["windows"], 3);
  for (const char* kind : {"file", "as_s4"}) {
    SCOPED_TRACE(kind);
    const auto& ones = j[kind]["ones"];
    ASSERT_TRUE(ones.contains("stem.norm")) << r.out;
    ASSERT_TRUE(ones.contains("mor1.select")) << r.out;
    for (const auto& [name, v] : ones.items()) {
      EXPECT_GE(v.get<double>(), 0.0) << name;
      EXPECT_LE(v.get<double>(), 1.0) << name;
    }
    int windows = 0;
    for (const auto& [label, n] : j[kind]["last_step_classes"].items()) windows += n.get<int>();
    EXPECT_EQ(windows, 3);
  }
  r = Tool("activations --as-s4 " + s5 + " " + clip);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("takes an S3 model"), std::string::npos) << r.out;
}

TEST_F(CliTest, InvalidFilesFailEveryCommandWithAMessage) {
  const std::string bad = Path("bad.safetensors");
  std::ofstream(bad) << "this is not a model";
  for (const std::string cmd : {"info ", "info --json ", "validate ", "table "}) {
    Result r = Tool(cmd + bad);
    EXPECT_NE(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("bad.safetensors"), std::string::npos) << r.out;
  }
  Result r = Tool("run " + bad + " " + bad);
  EXPECT_NE(r.exit_code, 0);
  Result missing = Tool("info " + Path("nope"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("cannot open"), std::string::npos) << missing.out;
}

TEST_F(CliTest, RunRejectsAClipOfTheWrongSize) {
  const std::string m = Path("m"), clip = Path("clip.rgb");
  ASSERT_EQ(Tool(std::string("random --stage s1 --seed 1 -o ") + m + " " + kTiny).exit_code, 0);
  std::ofstream(clip) << std::string(1000, 'x');
  Result r = Tool("run " + m + " " + clip);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("not a whole number"), std::string::npos) << r.out;
}

TEST_F(CliTest, RandomRejectsATopologyThatDoesNotAddUp) {
  Result r = Tool("random --stage s5 --groups 3 -o " + Path("x"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("groups"), std::string::npos) << r.out;
}

}  // namespace
