// billnet-synth end to end: the Jester layout, videos, streams, determinism
// per seed, read back with the trainer's readers; bad options fail clearly.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "billnet/media/byte_io.h"
#include "billnet/synth/renderer.h"
#include "billnet/trainer/jester_reader.h"
#include "media_test_util.h"

namespace billnet::trainer {
namespace {

namespace fs = std::filesystem;

struct ToolRun {
  int code = 0;
  std::string err;
};

// Runs billnet-synth; its stderr goes to a file in `dir`.
ToolRun RunTool(const std::string& dir, const std::string& args) {
  const std::string err_file = (fs::path(dir) / "stderr.txt").string();
  const std::string cmd = std::string(BILLNET_SYNTH_TOOL) + " " + args + " 2>" + err_file;
  ToolRun r;
  const int status = std::system(cmd.c_str());
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

std::vector<std::string> Lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::vector<uint8_t> Bytes(const fs::path& p) {
  StatusOr<std::vector<uint8_t>> b = media::ReadFileBytes(p.string());
  return b.ok() ? *b : std::vector<uint8_t>{};
}

class SynthTool : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = media::testing::TempDir("synth_tool"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(SynthTool, WritesTheJesterLayoutVideosAndStreams) {
  const std::string a = dir_ + "/a";
  const std::string common =
      " --clips-per-class 1 --width 64 --height 48 --video-formats mp4,ts --streams 1"
      " --stream-gestures 2 --quiet";
  ToolRun r = RunTool(dir_, "--out " + a + " --seed 7 --threads 2" + common);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string>& names = synth::SynthClassNames();
  EXPECT_EQ(Lines(fs::path(a) / "jester-v1-labels.csv"), names);
  const std::vector<std::string> rows = Lines(fs::path(a) / "jester-v1-train.csv");
  ASSERT_EQ(rows.size(), 27u);
  for (int c = 0; c < 27; ++c) {
    EXPECT_EQ(rows[c], std::to_string(1 + c) + ";" + names[c]);
    EXPECT_TRUE(fs::exists(fs::path(a) / "20bn-jester-v1" / std::to_string(1 + c) / "00001.jpg"));
    EXPECT_TRUE(fs::exists(fs::path(a) / "videos" / (std::to_string(1 + c) + ".mp4")));
    EXPECT_TRUE(fs::exists(fs::path(a) / "videos" / (std::to_string(1 + c) + ".ts")));
  }
  const std::vector<std::string> index = Lines(fs::path(a) / "videos" / "index.csv");
  ASSERT_EQ(index.size(), 54u);
  EXPECT_EQ(index[0].rfind("1.mp4;Swiping Left;", 0), 0u) << index[0];
  EXPECT_TRUE(fs::exists(fs::path(a) / "streams" / "1.mp4"));
  const std::vector<std::string> segments = Lines(fs::path(a) / "streams" / "segments.csv");
  ASSERT_EQ(segments.size(), 2u);
  EXPECT_EQ(segments[0].rfind("1.mp4;", 0), 0u);

  // Read back through the trainer's readers.
  StatusOr<JesterSplit> split = LoadJesterSplit(a, "train", ClipGeometry{48, 64, 6});
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  ASSERT_EQ(split->clips.size(), 27u);
  EXPECT_TRUE(split->warnings.empty());
  for (int c = 0; c < 27; ++c) {
    EXPECT_EQ(split->clips[c].label, c);
    EXPECT_GE(split->clips[c].frames, 14);  // 28-40 frames at 12 fps
    EXPECT_LE(split->clips[c].frames, 20);
  }
  JesterOptions o;
  o.threads = 2;
  StatusOr<JesterSplit> videos =
      LoadVideoList((fs::path(a) / "videos" / "index.csv").string(), ClipGeometry{48, 64, 6}, o);
  ASSERT_TRUE(videos.ok()) << videos.status().ToString();
  ASSERT_EQ(videos->clips.size(), 54u);
  EXPECT_TRUE(videos->warnings.empty());
  EXPECT_EQ(videos->clips[1].label, 0);
  EXPECT_EQ(videos->clips[1].frames, split->clips[0].frames);

  // Deterministic per seed (threads change nothing); another seed differs.
  const std::string b = dir_ + "/b";
  r = RunTool(dir_, "--out " + b + " --seed 7 --threads 1" + common);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f :
       {"jester-v1-train.csv", "20bn-jester-v1/5/00003.jpg", "videos/9.mp4", "videos/9.ts",
        "videos/index.csv", "streams/1.mp4", "streams/segments.csv"}) {
    EXPECT_EQ(Bytes(fs::path(a) / f), Bytes(fs::path(b) / f)) << f;
  }
  const std::string c = dir_ + "/c";
  r = RunTool(dir_, "--out " + c + " --seed 8 --clips-per-class 1 --width 64 --height 48 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(Bytes(fs::path(a) / "20bn-jester-v1/5/00001.jpg"),
            Bytes(fs::path(c) / "20bn-jester-v1/5/00001.jpg"));

  // A second split into the same folder needs other ids.
  r = RunTool(dir_, "--out " + a +
                        " --seed 9 --clips-per-class 1 --width 64 --height 48 --quiet"
                        " --split test");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  r = RunTool(dir_, "--out " + a +
                        " --seed 9 --clips-per-class 1 --width 64 --height 48 --quiet"
                        " --split test --first-id 1001 --videos");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(fs::path(a) / "jester-v1-test.csv")[0], "1001;Swiping Left");
  EXPECT_EQ(Lines(fs::path(a) / "videos" / "index.csv").size(), 54u + 27u);  // merged
}

TEST_F(SynthTool, BadOptionsFailWithAMessage) {
  const std::string o = " --out " + dir_ + "/x";
  const std::pair<std::string, std::string> cases[] = {
      {"--clips-per-class 1 --seed 1", "--out"},  // missing --out
      {o + " --clips-per-class 1", "--seed"},
      {o + " --clips-per-class 1 --seed 4294967296", "--seed"},
      {o + " --clips-per-class -2 --seed 1", "--clips-per-class"},
      {o + " --clips-per-class 0 --seed 1", "nothing to do"},
      {o + " --clips-per-class 1 --seed 1 --video-formats avi", "avi"},
      {o + " --clips-per-class 1 --seed 1 --videos --width 63", "even"},
      {o + " --clips-per-class 1 --seed 1 --width 4", "width"},
      {o + " --clips-per-class 1 --seed 1 --fps 0", "fps"},
      {o + " --clips-per-class 1 --seed 1 --split a/b", "--split"},
      {o + " --clips-per-class 1 --seed 1 --threads 0", "--threads"},
      {o + " --clips-per-class 1 --seed 1 --jpeg-qscale 1", "--jpeg-qscale"},
      {o + " --clips-per-class 1 --seed 1 --no-such-flag", "no-such-flag"},
  };
  for (const auto& [args, needle] : cases) {
    const ToolRun r = RunTool(dir_, args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
  }
  EXPECT_FALSE(fs::exists(dir_ + "/x/jester-v1-train.csv"));
}

}  // namespace
}  // namespace billnet::trainer
