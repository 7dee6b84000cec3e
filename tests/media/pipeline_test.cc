// decode -> resample -> convert -> window, as the trainer, the server and the
// client run it; JPEG helpers.
#include "billnet/media/pipeline.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "billnet/media/encoder.h"
#include "billnet/media/image.h"
#include "billnet/media/windower.h"
#include "media_test_util.h"

namespace billnet::media {
namespace {

using testing::MakeClip;
using testing::ReadTag;

DecodedFrame Ref(const DecodedFrame& f) {
  StatusOr<DecodedFrame> c = f.Clone();
  EXPECT_TRUE(c.ok());
  return std::move(c).value();
}

TEST(Pipeline, RgbClipAt12FpsBecomesEveryOtherFrameAt6) {
  const std::vector<uint8_t> rgb = MakeClip(36, 176, 100);
  StatusOr<ModelFrames> m = RgbFramesToModelFrames(rgb.data(), 36, 176, 100, 12, ModelTarget{});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->frames, 18);
  EXPECT_EQ(m->height, 96);
  EXPECT_EQ(m->width, 128);
  EXPECT_EQ(m->rgb.size(), 18u * 96 * 128 * 3);
  for (int k = 0; k < 18; ++k) {
    EXPECT_EQ(ReadTag(m->rgb.data() + m->frame_bytes() * k, 128, 96, 36), 2 * k);
    EXPECT_NEAR(m->source_ts[k], 2 * k / 12.0, 1e-9);
  }
  // Frame by frame, the same bytes as the converter on the chosen frame.
  FrameConverter conv(128, 96);
  std::vector<uint8_t> one(conv.frame_bytes());
  ASSERT_TRUE(conv.ConvertRgb24(rgb.data() + 176 * 100 * 3 * 10, 176, 100, 0, one.data()).ok());
  EXPECT_EQ(0, std::memcmp(one.data(), m->rgb.data() + m->frame_bytes() * 5, one.size()));
}

TEST(Pipeline, DecodeFileToModelFramesFrom30FpsH264) {
  const std::string dir = testing::TempDir("pipeline");
  const std::vector<uint8_t> rgb = MakeClip(40, 176, 100);
  EncoderOptions o;
  o.width = 176;
  o.height = 100;
  o.fps = 30;
  const std::string path = dir + "/clip.mp4";
  ASSERT_TRUE(testing::EncodeToFile(path, rgb, 40, o).ok());
  StatusOr<ModelFrames> m = DecodeFileToModelFrames(path, ModelTarget{96, 128, 6});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->source_frames + m->undecoded_frames, 40);
  EXPECT_EQ(m->info.codec, "h264");
  ASSERT_EQ(m->frames, 8);  // t_last = 39/30 s: ticks 0 .. 7
  StatusOr<ModelFrames> ref = RgbFramesToModelFrames(rgb.data(), 40, 176, 100, 30, {});
  ASSERT_TRUE(ref.ok());
  ASSERT_EQ(ref->frames, 8);
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(ReadTag(m->rgb.data() + m->frame_bytes() * k, 128, 96, 40), 5 * k);
    EXPECT_NEAR(m->source_ts[k], 5 * k / 30.0, 1e-3);
  }
  EXPECT_GE(testing::Psnr(m->rgb.data(), ref->rgb.data(), m->rgb.size()), 30);
  // A missing file is a clear NotFound naming it.
  StatusOr<ModelFrames> missing = DecodeFileToModelFrames(dir + "/nope.mp4", ModelTarget{});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("nope.mp4"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Pipeline, OutputFrameLimit) {
  const std::vector<uint8_t> rgb = MakeClip(12, 64, 48);
  EncoderOptions o;
  o.codec = VideoCodec::kFfv1;
  o.container = "nut";
  o.width = 64;
  o.height = 48;
  o.fps = 6;
  auto bytes = testing::EncodeToMemory(rgb, 12, o);
  ASSERT_TRUE(bytes.ok());
  MemoryByteSource src{std::span<const uint8_t>(*bytes)};
  PipelineOptions po;
  po.max_output_frames = 5;
  StatusOr<ModelFrames> m = DecodeSourceToModelFrames(&src, ModelTarget{24, 32, 6}, po);
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
}

// The server's path: bytes -> decoder -> ModelFrameStream -> Windower, with a
// state export after the first window and a resume that resends from an
// earlier frame: no window repeated or skipped, identical pixels (lossless
// transport).
TEST(Pipeline, StreamResumeGivesIdenticalWindows) {
  constexpr int kFrames = 40;
  const std::vector<uint8_t> rgb = MakeClip(kFrames, 64, 48);
  EncoderOptions o;
  o.codec = VideoCodec::kFfv1;
  o.container = "nut";
  o.width = 64;
  o.height = 48;
  o.fps = 12;
  auto bytes = testing::EncodeToMemory(rgb, kFrames, o, /*seekable=*/false);
  ASSERT_TRUE(bytes.ok());
  const ModelTarget target{24, 32, 6};
  constexpr int kWindow = 4;

  auto decode_frames = [&](std::vector<DecodedFrame>* out) {
    MemoryByteSource src{std::span<const uint8_t>(*bytes), false};
    auto dec = VideoDecoder::Open(&src);
    ASSERT_TRUE(dec.ok());
    for (;;) {
      DecodedFrame f;
      StatusOr<bool> got = (*dec)->Next(&f);
      ASSERT_TRUE(got.ok());
      if (!*got) break;
      out->push_back(std::move(f));
    }
  };
  std::vector<DecodedFrame> frames;
  decode_frames(&frames);
  ASSERT_EQ(frames.size(), static_cast<size_t>(kFrames));

  // Undisturbed run.
  std::vector<Window> all;
  {
    ModelFrameStream stream(target);
    Windower w(kWindow, target.height, target.width);
    auto emit = [&](const ModelFrame& m) -> Status {
      if (auto win = w.Add(m.rgb, m.source_timestamp)) all.push_back(std::move(*win));
      return Status::Ok();
    };
    for (auto& f : frames) ASSERT_TRUE(stream.Push(Ref(f), emit).ok());
    ASSERT_TRUE(stream.Flush(emit).ok());
    if (auto win = w.Finish()) all.push_back(std::move(*win));
  }
  ASSERT_EQ(all.size(), 5u);  // 20 model frames (t_last = 39/12): 5 windows of 4
  EXPECT_FALSE(all.back().padded);

  // Interrupted after window 1: the token carries the phase at that window's
  // end; the client resends from a key frame two frames before.
  std::vector<Window> resumed;
  ResamplerPhase phase;
  double covered_ts = 0;
  {
    ModelFrameStream stream(target);
    Windower w(kWindow, target.height, target.width);
    bool stop = false;
    auto emit = [&](const ModelFrame& m) -> Status {
      if (stop) return Status::Ok();
      if (auto win = w.Add(m.rgb, m.source_timestamp)) {
        resumed.push_back(std::move(*win));
        if (resumed.size() == 2) {
          stop = true;
          phase = stream.phase();
          phase.next_tick = m.tick + 1;
          phase.last_taken_ts = m.source_timestamp;
          covered_ts = m.source_timestamp;
        }
      }
      return Status::Ok();
    };
    for (auto& f : frames) {
      if (stop) break;
      ASSERT_TRUE(stream.Push(Ref(f), emit).ok());
    }
  }
  ASSERT_EQ(resumed.size(), 2u);
  {
    ModelFrameStream stream(target);
    ASSERT_TRUE(stream.Restore(phase).ok());
    Windower w(kWindow, target.height, target.width, /*first_sequence=*/2);
    auto emit = [&](const ModelFrame& m) -> Status {
      if (auto win = w.Add(m.rgb, m.source_timestamp)) resumed.push_back(std::move(*win));
      return Status::Ok();
    };
    size_t start = 0;
    while (start + 1 < frames.size() && frames[start + 1].timestamp() <= covered_ts) ++start;
    start = start >= 2 ? start - 2 : 0;
    for (size_t i = start; i < frames.size(); ++i) {
      ASSERT_TRUE(stream.Push(Ref(frames[i]), emit).ok());
    }
    ASSERT_TRUE(stream.Flush(emit).ok());
    if (auto win = w.Finish()) resumed.push_back(std::move(*win));
    EXPECT_EQ(stream.frames_dropped(), 2);
  }
  ASSERT_EQ(resumed.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(resumed[i].sequence, all[i].sequence);
    EXPECT_EQ(resumed[i].rgb, all[i].rgb) << "window " << i;
    EXPECT_EQ(resumed[i].source_ts, all[i].source_ts) << "window " << i;
  }
}

TEST(Image, JpegRoundTrip) {
  const std::vector<uint8_t> rgb = MakeClip(1, 176, 100);
  StatusOr<std::vector<uint8_t>> jpeg = EncodeJpeg(rgb.data(), 176, 100);
  ASSERT_TRUE(jpeg.ok()) << jpeg.status().ToString();
  EXPECT_EQ((*jpeg)[0], 0xFF);
  EXPECT_EQ((*jpeg)[1], 0xD8);
  StatusOr<DecodedFrame> f = DecodeImage(*jpeg);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->width(), 176);
  EXPECT_EQ(f->height(), 100);
  EXPECT_STREQ(f->pixel_format_name(), "yuvj420p");
  StatusOr<RgbImage> img = ToRgb24(*f);
  ASSERT_TRUE(img.ok());
  EXPECT_GE(testing::Psnr(img->rgb.data(), rgb.data(), rgb.size()), 32);
  // Lower quality, smaller file.
  StatusOr<std::vector<uint8_t>> small = EncodeJpeg(rgb.data(), 176, 100, 0, 20);
  ASSERT_TRUE(small.ok());
  EXPECT_LT(small->size(), jpeg->size());
  EXPECT_FALSE(EncodeJpeg(rgb.data(), 176, 100, 0, 1).ok());
}

TEST(Image, BadImagesAreErrors) {
  const std::vector<uint8_t> rgb = MakeClip(1, 64, 48);
  StatusOr<std::vector<uint8_t>> jpeg = EncodeJpeg(rgb.data(), 64, 48);
  ASSERT_TRUE(jpeg.ok());
  // Not an image at all.
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_EQ(DecodeImage(text).status().code(), StatusCode::kUnsupported);
  EXPECT_FALSE(DecodeImage({}).ok());
  // A JPEG signature followed by garbage.
  std::vector<uint8_t> garbage = {0xFF, 0xD8, 0xFF};
  for (int i = 0; i < 500; ++i) garbage.push_back(static_cast<uint8_t>(i * 37));
  EXPECT_FALSE(DecodeImage(garbage).ok());
  // Truncated JPEGs: an error or a picture, never a crash.
  for (size_t n = 3; n < jpeg->size(); n += 7) {
    std::vector<uint8_t> cut(jpeg->begin(), jpeg->begin() + n);
    StatusOr<DecodedFrame> f = DecodeImage(cut);
    if (f.ok()) {
      EXPECT_EQ(f->width(), 64);
    } else {
      EXPECT_FALSE(f.status().message().empty());
    }
  }
  EXPECT_EQ(ReadImageFile("/nonexistent/x.jpg").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace billnet::media
