// Frames no tick takes, left undecoded (VideoDecoder::SetFrameFilter with
// ModelFrameStream::MayTake): the model frames must not change, only the
// decoding work.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <ostream>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "billnet/media/byte_io.h"
#include "billnet/media/decoder.h"
#include "billnet/media/pipeline.h"
#include "media_test_util.h"

namespace billnet::media {
namespace {

using testing::MakeClip;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct FilterCase {
  const char* name;
  double source_fps;
  double model_fps;
  bool b_frames;
  bool jitter;  // irregular timestamps (a variable-rate source)
  int frames;
};

void PrintTo(const FilterCase& c, std::ostream* os) { *os << c.name; }

class FrameFilterTest : public ::testing::TestWithParam<FilterCase> {};

std::vector<uint8_t> EncodeCase(const FilterCase& c, const std::vector<uint8_t>& rgb) {
  EncoderOptions o;
  o.width = 64;
  o.height = 48;
  o.fps = c.source_fps;
  o.zerolatency = !c.b_frames;
  o.container = "matroska";
  std::vector<double> ts;
  if (c.jitter) {
    o.time_base_den = 1000;
    double t = 0;
    for (int i = 0; i < c.frames; ++i) {
      ts.push_back(t);
      t += (1.0 + 0.45 * std::sin(i * 1.7)) / c.source_fps;  // 0.55 .. 1.45 intervals
      t = std::round(t * 1000) / 1000;
    }
  }
  StatusOr<std::vector<uint8_t>> bytes = testing::EncodeToMemory(rgb, c.frames, o, true, ts);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : std::vector<uint8_t>{};
}

StatusOr<ModelFrames> Decode(const std::vector<uint8_t>& bytes, double model_fps, bool skip) {
  MemoryByteSource src{std::span<const uint8_t>(bytes)};
  PipelineOptions po;
  po.skip_untaken_frames = skip;
  return DecodeSourceToModelFrames(&src, ModelTarget{24, 32, model_fps}, po);
}

TEST_P(FrameFilterTest, SameModelFramesWithLessDecoding) {
  const FilterCase& c = GetParam();
  const std::vector<uint8_t> rgb = MakeClip(c.frames, 64, 48);
  const std::vector<uint8_t> bytes = EncodeCase(c, rgb);
  ASSERT_FALSE(bytes.empty());
  StatusOr<ModelFrames> all = Decode(bytes, c.model_fps, false);
  StatusOr<ModelFrames> some = Decode(bytes, c.model_fps, true);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  EXPECT_EQ(all->source_frames, c.frames);
  EXPECT_EQ(all->undecoded_frames, 0);
  ASSERT_GT(all->frames, 4);
  ASSERT_EQ(some->frames, all->frames);
  EXPECT_EQ(some->source_ts, all->source_ts);
  EXPECT_TRUE(some->rgb == all->rgb) << "the model frames' pixels differ";
  EXPECT_EQ(some->source_frames + some->undecoded_frames, c.frames);
  if (c.b_frames && c.model_fps < c.source_fps / 2) {
    // x264 makes some frames non-reference B-frames (how many depends on
    // the content: 12 of 60 on this clip), and most lie between ticks.
    EXPECT_GE(some->undecoded_frames, c.frames / 10);
  } else if (!c.b_frames) {
    EXPECT_EQ(some->undecoded_frames, 0);  // every frame is a reference
  }
}

INSTANTIATE_TEST_SUITE_P(
    Sources, FrameFilterTest,
    ::testing::Values(FilterCase{"h264_30fps_to_6", 30, 6, true, false, 90},
                      FilterCase{"h264_25fps_to_6", 25, 6, true, false, 75},
                      FilterCase{"h264_30fps_to_7", 30, 7, true, false, 90},
                      FilterCase{"h264_12fps_to_6", 12, 6, true, false, 48},
                      FilterCase{"h264_variable_rate_to_6", 30, 6, true, true, 90},
                      FilterCase{"h264_zerolatency", 30, 6, false, false, 60}),
    [](const ::testing::TestParamInfo<FilterCase>& i) { return std::string(i.param.name); });

// Codecs our encoder does not write, from the ffmpeg CLI (skipped where it or
// the encoder is missing): B-frames (MPEG-4, MPEG-2) and HEVC's sub-layer
// non-reference pictures.
struct CliCase {
  const char* name;
  const char* encoder_args;
};

void PrintTo(const CliCase& c, std::ostream* os) { *os << c.name; }

class FrameFilterCliTest : public ::testing::TestWithParam<CliCase> {};

TEST_P(FrameFilterCliTest, SameModelFramesWithLessDecoding) {
  const CliCase& c = GetParam();
  const std::string dir = testing::TempDir(std::string("filter_") + c.name);
  const std::string path = dir + "/clip.mkv";
  const std::string cmd =
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=160x120:rate=30 -t 3 " +
      std::string(c.encoder_args) + " " + path + " 2>/dev/null";
  if (std::system(cmd.c_str()) != 0 || !std::filesystem::exists(path)) {
    GTEST_SKIP() << "ffmpeg CLI or its encoder is missing: " << cmd;
  }
  PipelineOptions all_options;
  all_options.skip_untaken_frames = false;
  StatusOr<ModelFrames> all = DecodeFileToModelFrames(path, ModelTarget{24, 32, 6}, all_options);
  StatusOr<ModelFrames> some = DecodeFileToModelFrames(path, ModelTarget{24, 32, 6});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  EXPECT_EQ(all->source_frames, 90);
  ASSERT_EQ(some->frames, all->frames);
  EXPECT_EQ(some->source_ts, all->source_ts);
  EXPECT_TRUE(some->rgb == all->rgb) << "the model frames' pixels differ";
  EXPECT_GE(some->undecoded_frames, 90 / 5);
  EXPECT_EQ(some->source_frames + some->undecoded_frames, 90);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, FrameFilterCliTest,
    ::testing::Values(
        CliCase{"hevc", "-c:v libx265 -preset veryfast -x265-params log-level=error"},
        CliCase{"mpeg4", "-c:v mpeg4 -bf 2 -q:v 4"},
        CliCase{"mpeg2", "-c:v mpeg2video -bf 2 -q:v 4"}),
    [](const ::testing::TestParamInfo<CliCase>& i) { return std::string(i.param.name); });

TEST(ModelFrameStreamMayTake, OnlyFramesNearerToATickThanTheirNeighbours) {
  ModelFrameStream stream(ModelTarget{24, 32, 6});
  // Before the first frame the ticks are unknown: every frame may be taken.
  EXPECT_TRUE(stream.MayTake(0.0, 0.1, 0.2));
  auto emit = [](const ModelFrame&) { return Status::Ok(); };
  std::vector<uint8_t> rgb(8 * 8 * 3, 100);
  ASSERT_TRUE(stream.PushRgb24(rgb.data(), 8, 8, 0, 1.0, emit).ok());  // t0 = 1.0
  const double f = 1.0 / 30;  // a 30 fps source; ticks at 1.0 + k / 6
  EXPECT_FALSE(stream.MayTake(1.0 + f, 1.0 + 2 * f, 1.0 + 3 * f));  // 1.067: between ticks
  EXPECT_TRUE(stream.MayTake(1.0 + 4 * f, 1.0 + 5 * f, 1.0 + 6 * f));  // 1.1667: on a tick
  EXPECT_FALSE(stream.MayTake(1.0 + 3 * f, 1.0 + 4 * f, 1.0 + 5 * f));  // 1.133: 1.167 is nearer
  EXPECT_TRUE(stream.MayTake(1.0 + 2 * f, 1.0 + 4 * f, 1.0 + 6 * f));  // wider cell holds 1.1667
  EXPECT_TRUE(stream.MayTake(1.0 + f, 1.0 + 2 * f, kInf));             // no later neighbour
  EXPECT_TRUE(stream.MayTake(-kInf, 1.0 + 2 * f, 1.0 + 3 * f));        // no earlier one: t0
  EXPECT_FALSE(stream.MayTake(0.5, 0.6, 0.7));                         // before t0
  // A tie between two frames goes to the earlier one, and the check keeps a
  // margin: a frame whose cell edge is a tick may be taken.
  EXPECT_TRUE(stream.MayTake(1.0 + 4 * f, 1.0 + 6 * f, 1.0 + 7 * f));  // edge at 1.1667
}

// The timestamps of the frames Next() returns, in order; `after` runs after
// each with the number returned so far.
std::vector<double> ReturnedTimestamps(VideoDecoder& dec,
                                       const std::function<void(size_t)>& after = {}) {
  std::vector<double> out;
  for (;;) {
    DecodedFrame f;
    StatusOr<bool> got = dec.Next(&f);
    if (!got.ok()) {
      ADD_FAILURE() << got.status().ToString();
      break;
    }
    if (!*got) break;
    out.push_back(f.timestamp());
    if (after) after(out.size());
  }
  return out;
}

TEST(VideoDecoderFrameFilter, ReferenceFramesAreDecodedWhateverTheAnswer) {
  constexpr int kFrames = 60;
  const std::vector<uint8_t> rgb = MakeClip(kFrames, 64, 48);
  const std::vector<uint8_t> bytes = EncodeCase(FilterCase{"", 30, 6, true, false, kFrames}, rgb);
  ASSERT_FALSE(bytes.empty());
  MemoryByteSource src{std::span<const uint8_t>(bytes)};
  auto dec = VideoDecoder::Open(&src);
  ASSERT_TRUE(dec.ok()) << dec.status().ToString();
  std::vector<double> asked;
  (*dec)->SetFrameFilter([&asked](double previous_s, double t, double next_s) {
    EXPECT_LT(previous_s, t);
    EXPECT_LT(t, next_s);
    asked.push_back(t);
    return false;  // nothing wanted
  });
  const std::vector<double> returned = ReturnedTimestamps(**dec);
  // The key frame is never offered; reference frames (P, and B-frames others
  // refer to) come out in order anyway; the non-reference ones do not.
  ASSERT_FALSE(returned.empty());
  EXPECT_EQ(returned.front(), 0.0);
  for (double t : asked) EXPECT_NE(t, 0.0);
  EXPECT_GE((*dec)->frames_undecoded(), kFrames / 10);
  EXPECT_LT((*dec)->frames_undecoded(), kFrames);
  EXPECT_EQ(int64_t(returned.size()) + (*dec)->frames_undecoded(), kFrames);
  EXPECT_EQ((*dec)->frames_decoded(), int64_t(returned.size()));
  for (size_t i = 1; i < returned.size(); ++i) EXPECT_LT(returned[i - 1], returned[i]);
}

TEST(VideoDecoderFrameFilter, NotAskedFromASkipUntilAFrameCameOut) {
  constexpr int kFrames = 90;
  const std::vector<uint8_t> rgb = MakeClip(kFrames, 64, 48);
  EncoderOptions o;
  o.width = 64;
  o.height = 48;
  o.fps = 30;
  o.container = "matroska";
  o.gop = 30;  // key frames at 0, 1 and 2 s
  StatusOr<std::vector<uint8_t>> bytes = testing::EncodeToMemory(rgb, kFrames, o, false);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  MemoryByteSource src{std::span<const uint8_t>(*bytes), false};
  auto dec = VideoDecoder::Open(&src);
  ASSERT_TRUE(dec.ok()) << dec.status().ToString();
  bool returned_since_skip = true;
  int asked_while_paused = 0, asked = 0;
  (*dec)->SetFrameFilter([&](double, double, double) {
    ++asked;
    if (!returned_since_skip) ++asked_while_paused;
    return false;
  });
  const std::vector<double> returned = ReturnedTimestamps(**dec, [&](size_t count) {
    returned_since_skip = true;
    if (count == 5) {
      (*dec)->SkipToKeyFrame(1.0);
      returned_since_skip = false;
    }
  });
  ASSERT_GT(returned.size(), 6u);
  EXPECT_GE(returned[5], 1.0 - 1e-6);  // the first key frame at or after 1 s
  EXPECT_GT(asked, 0);
  // The packets sent in the Next() call that returned the key frame were not
  // offered: the caller had no chance to restart its ticks.
  EXPECT_EQ(asked_while_paused, 0);
}

}  // namespace
}  // namespace billnet::media
