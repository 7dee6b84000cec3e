// The trainer's readers: a mini Jester dataset written with the writer and
// read back (labels, frame counts, pixels through the shared path), every
// bad-row case as a warning naming the id (or an error when strict), video
// files and video lists.
#include "billnet/trainer/jester_reader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "billnet/media/encoder.h"
#include "billnet/media/pipeline.h"
#include "billnet/synth/renderer.h"
#include "billnet/trainer/jester_writer.h"
#include "media_test_util.h"

namespace billnet::trainer {
namespace {

namespace fs = std::filesystem;

constexpr ClipGeometry kGeometry{48, 64, 6};
constexpr int kFrames = 14;  // at 12 fps: t_last = 13/12 s -> 7 model frames

synth::RenderedClip Render(int label, uint64_t seed) {
  synth::RenderOptions o;
  o.width = 88;
  o.height = 50;
  o.frames = kFrames;
  return synth::RenderClip(label, seed, o);
}

void WriteText(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

// 3 classes x 2 clips (ids 11..16), one of them in the flat DIR/<id> layout.
class JesterReader : public ::testing::Test {
 protected:
  void SetUp() override {
    media::SetLogLevel(media::LogLevel::kQuiet);
    dir_ = media::testing::TempDir("jester");
    const std::vector<std::string>& names = synth::SynthClassNames();
    std::vector<JesterRow> rows;
    int id = 11;
    for (int i = 0; i < 2; ++i) {
      for (int label : {0, 20, 23}) {  // Swiping Left, Thumb Up, Stop Sign
        const synth::RenderedClip c = Render(label, 100 + id);
        const std::string folder = id == 16 ? (fs::path(dir_) / "16").string()
                                            : JesterFrameFolder(dir_, std::to_string(id));
        ASSERT_TRUE(WriteJesterFrames(folder, c.rgb.data(), c.frames, c.width, c.height).ok());
        rows.push_back({std::to_string(id), names[label]});
        labels_.push_back(label);
        clips_.push_back(c);
        ++id;
      }
    }
    ASSERT_TRUE(WriteJesterCsv(JesterSplitCsv(dir_, "train"), rows).ok());
    ASSERT_TRUE(WriteLinesAtomically(JesterLabelsCsv(dir_), names).ok());
    rows_ = rows;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_;
  std::vector<int> labels_;
  std::vector<synth::RenderedClip> clips_;
  std::vector<JesterRow> rows_;
};

TEST_F(JesterReader, ReadsClipsWithLabelsAndFrames) {
  StatusOr<JesterSplit> s = LoadJesterSplit(dir_, "train", kGeometry);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->warnings.empty()) << s->warnings[0];
  EXPECT_EQ(s->labels.size(), 27u);
  ASSERT_EQ(s->clips.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    const Clip& c = s->clips[i];
    EXPECT_EQ(c.id, std::to_string(11 + i));
    EXPECT_EQ(c.label, labels_[i]);
    EXPECT_EQ(c.frames, 7);
    EXPECT_EQ(c.height, 48);
    EXPECT_EQ(c.width, 64);
    ASSERT_EQ(c.rgb.size(), 7u * 48 * 64 * 3);
    // The same as the in-memory path from the renderer's frames, up to JPEG.
    StatusOr<media::ModelFrames> ref = media::RgbFramesToModelFrames(
        clips_[i].rgb.data(), clips_[i].frames, 88, 50, 12, media::ModelTarget{48, 64, 6});
    ASSERT_TRUE(ref.ok());
    ASSERT_EQ(ref->frames, 7);
    EXPECT_GE(media::testing::Psnr(c.rgb.data(), ref->rgb.data(), c.rgb.size()), 28) << i;
  }
  // Threads and max_clips.
  JesterOptions o;
  o.threads = 3;
  StatusOr<JesterSplit> p = LoadJesterSplit(dir_, "train", kGeometry, o);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->clips.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(p->clips[i].rgb, s->clips[i].rgb);
  o.max_clips = 4;
  p = LoadJesterSplit(dir_, "train", kGeometry, o);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->clips.size(), 4u);
  EXPECT_EQ(p->clips[3].id, "14");
  // Another rate: 12 fps keeps every frame.
  p = LoadJesterSplit(dir_, "train", ClipGeometry{48, 64, 12});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->clips[0].frames, kFrames);
}

TEST_F(JesterReader, WithoutLabelsCsvUsesJesterNames) {
  fs::remove(JesterLabelsCsv(dir_));
  StatusOr<JesterSplit> s = LoadJesterSplit(dir_, "train", kGeometry);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->labels, JesterLabelNames());
  EXPECT_EQ(s->clips.size(), 6u);
}

TEST_F(JesterReader, EveryBadRowIsAWarningNamingIt) {
  fs::create_directories(JesterFrameFolder(dir_, "902"));  // empty folder
  fs::create_directories(JesterFrameFolder(dir_, "903"));  // a corrupt JPEG
  const std::vector<uint8_t> rgb(88 * 50 * 3, 128);
  ASSERT_TRUE(WriteJesterFrames(JesterFrameFolder(dir_, "903"), rgb.data(), 1, 88, 50).ok());
  WriteText(fs::path(JesterFrameFolder(dir_, "903")) / "00002.jpg", "this is not a jpeg");
  std::ofstream csv(JesterSplitCsv(dir_, "train"), std::ios::app);
  csv << "900;Swiping Left\n"  // missing folder
      << "901;Waving Hello\n"  // unknown label
      << "902;Thumb Up\n"      // empty folder
      << "903;Stop Sign\n"     // corrupt JPEG
      << "1;2;3\n"             // malformed
      << "../etc;Thumb Up\n"   // unsafe id
      << "12;Thumb Up\n"       // duplicate id
      << "\n";                 // blank lines are fine
  csv.close();
  StatusOr<JesterSplit> s = LoadJesterSplit(dir_, "train", kGeometry);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->clips.size(), 6u);
  ASSERT_EQ(s->warnings.size(), 7u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"id 901", "unknown label 'Waving Hello'"},
      {"1;2;3", "malformed"},
      {"../etc", "malformed"},
      {"id 12", "duplicate"},
      {"id 900", "no frame folder"},
      {"id 902", "no JPEG frames"},
      {"id 903", "00002.jpg"}};
  for (const auto& [who, what] : expected) {
    bool found = false;
    for (const std::string& w : s->warnings) {
      found |= w.find(who) != std::string::npos && w.find(what) != std::string::npos;
    }
    EXPECT_TRUE(found) << who << " / " << what << "\n  first warning: " << s->warnings[0];
  }
  // Strict: the first bad row is the error.
  JesterOptions strict;
  strict.strict = true;
  StatusOr<JesterSplit> e = LoadJesterSplit(dir_, "train", kGeometry, strict);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("901"), std::string::npos) << e.status().ToString();
  // Strict, with only load-time problems left: names the folder's id.
  std::ofstream(JesterSplitCsv(dir_, "train"), std::ios::trunc)
      << "11;Swiping Left\n903;Stop Sign\n";
  e = LoadJesterSplit(dir_, "train", kGeometry, strict);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("id 903"), std::string::npos) << e.status().ToString();
}

TEST_F(JesterReader, TestSplitWithoutLabels) {
  std::ofstream(JesterSplitCsv(dir_, "test")) << "11\n12\n";
  StatusOr<JesterSplit> s = LoadJesterSplit(dir_, "test", kGeometry);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->clips.size(), 2u);
  EXPECT_EQ(s->clips[0].label, kUnlabelled);
  JesterOptions o;
  o.require_labels = true;
  s = LoadJesterSplit(dir_, "test", kGeometry, o);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->clips.empty());
  EXPECT_EQ(s->warnings.size(), 2u);
  EXPECT_NE(s->warnings[0].find("id 11"), std::string::npos);
}

TEST_F(JesterReader, MissingSplitIsAnError) {
  StatusOr<JesterSplit> s = LoadJesterSplit(dir_, "validation", kGeometry);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("jester-v1-validation.csv"), std::string::npos);
  EXPECT_FALSE(LoadJesterSplit(dir_, "train", ClipGeometry{0, 64, 6}).ok());
}

TEST_F(JesterReader, VideoFilesAndLists) {
  // Two clips as H.264 MP4 and MPEG-TS, listed with names and an index.
  const fs::path vdir = fs::path(dir_) / "videos";
  fs::create_directories(vdir);
  const char* files[] = {"a.mp4", "b.ts"};
  const char* containers[] = {"mp4", "mpegts"};
  for (int i = 0; i < 2; ++i) {
    media::EncoderOptions o;
    o.container = containers[i];
    o.width = 88;
    o.height = 50;
    o.fps = 12;
    ASSERT_TRUE(
        media::testing::EncodeToFile((vdir / files[i]).string(), clips_[i].rgb, kFrames, o).ok());
  }
  StatusOr<Clip> c = LoadVideoClip((vdir / "a.mp4").string(), 3, kGeometry);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->id, "a.mp4");
  EXPECT_EQ(c->label, 3);
  EXPECT_EQ(c->frames, 7);
  EXPECT_EQ(LoadVideoClip((vdir / "none.mp4").string(), 0, kGeometry).status().code(),
            StatusCode::kNotFound);

  WriteText(vdir / "index.csv",
            "a.mp4;Swiping Left;0.5;1.0\n"
            "b.ts;20\n"
            "missing.mp4;Thumb Up\n"
            "a.mp4;Not A Label\n");
  StatusOr<JesterSplit> list = LoadVideoList((vdir / "index.csv").string(), kGeometry);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->clips.size(), 2u);
  EXPECT_EQ(list->clips[0].label, 0);
  EXPECT_EQ(list->clips[1].label, 20);
  EXPECT_EQ(list->clips[1].id, "b.ts");
  ASSERT_EQ(list->warnings.size(), 2u);
  EXPECT_NE(list->warnings[0].find("Not A Label"), std::string::npos);
  EXPECT_NE(list->warnings[1].find("missing.mp4"), std::string::npos);
  JesterOptions strict;
  strict.strict = true;
  EXPECT_FALSE(LoadVideoList((vdir / "index.csv").string(), kGeometry, strict).ok());
}

}  // namespace
}  // namespace billnet::trainer
