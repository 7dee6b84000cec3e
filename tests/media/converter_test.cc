// FrameConverter: crop geometry, colour matrices and ranges, identity paths,
// context caching, and the colour signalling of encoded streams.
#include "billnet/media/converter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "av_util.h"
#include "billnet/media/byte_io.h"
#include "billnet/media/decoder.h"
#include "billnet/media/encoder.h"
#include "billnet/media/image.h"
#include "media_test_util.h"

namespace billnet::media {
namespace {

TEST(CenterCrop, Geometry) {
  // Jester-sized frames lose their sides; 4:3 frames are untouched.
  EXPECT_EQ(CenterCrop(176, 100, 128, 96), (CropRect{21, 0, 133, 100}));
  EXPECT_EQ(CenterCrop(640, 480, 128, 96), (CropRect{0, 0, 640, 480}));
  EXPECT_EQ(CenterCrop(1920, 1080, 128, 96), (CropRect{240, 0, 1440, 1080}));
  EXPECT_EQ(CenterCrop(7680, 4320, 128, 96), (CropRect{960, 0, 5760, 4320}));
  // Portrait and square frames lose top and bottom.
  EXPECT_EQ(CenterCrop(480, 640, 128, 96), (CropRect{0, 140, 480, 360}));
  EXPECT_EQ(CenterCrop(100, 100, 128, 96), (CropRect{0, 12, 100, 75}));
  // Other targets, and degenerate sizes.
  EXPECT_EQ(CenterCrop(176, 100, 176, 100), (CropRect{0, 0, 176, 100}));
  EXPECT_EQ(CenterCrop(1, 1000, 128, 96), (CropRect{0, 499, 1, 1}));
  EXPECT_EQ(CenterCrop(3, 1, 128, 96), (CropRect{1, 0, 1, 1}));
}

// A 176x100 frame whose 21-pixel left and 22-pixel right margins are red and
// whose centre is green.
std::vector<uint8_t> MarginFrame() {
  std::vector<uint8_t> rgb(176 * 100 * 3);
  for (int y = 0; y < 100; ++y) {
    for (int x = 0; x < 176; ++x) {
      uint8_t* p = &rgb[(y * 176 + x) * 3];
      const bool margin = x < 21 || x >= 154;
      p[0] = margin ? 230 : 20;
      p[1] = margin ? 20 : 200;
      p[2] = 30;
    }
  }
  return rgb;
}

TEST(FrameConverter, CentreCropRemovesTheMargins) {
  const std::vector<uint8_t> in = MarginFrame();
  FrameConverter conv(128, 96);
  std::vector<uint8_t> out(conv.frame_bytes());
  ASSERT_TRUE(conv.ConvertRgb24(in.data(), 176, 100, 0, out.data()).ok());
  for (size_t i = 0; i < out.size(); i += 3) {
    ASSERT_EQ(out[i], 20) << "pixel " << i / 3;
    ASSERT_EQ(out[i + 1], 200) << "pixel " << i / 3;
  }
  // The same frame as a decoded RGB frame, and as a 4:4:4 YUV frame.
  StatusOr<DecodedFrame> f = DecodedFrame::FromRgb24(in.data(), 176, 100, 0, 0);
  ASSERT_TRUE(f.ok());
  std::vector<uint8_t> out2(conv.frame_bytes());
  ASSERT_TRUE(conv.Convert(*f, out2.data()).ok());
  EXPECT_EQ(out, out2);

  // Through a lossless YUV 4:4:4 codec: margins gone, no red anywhere.
  EncoderOptions o;
  o.codec = VideoCodec::kFfv1;
  o.container = "nut";
  o.pixel_format = "yuv444p";
  o.width = 176;
  o.height = 100;
  o.fps = 1;
  auto bytes = testing::EncodeToMemory(in, 1, o);
  ASSERT_TRUE(bytes.ok());
  MemoryByteSource src{std::span<const uint8_t>(*bytes)};
  auto dec = VideoDecoder::Open(&src);
  ASSERT_TRUE(dec.ok());
  DecodedFrame yuv;
  ASSERT_TRUE(*(*dec)->Next(&yuv));
  EXPECT_STREQ(yuv.pixel_format_name(), "yuv444p");
  ASSERT_TRUE(conv.Convert(yuv, out2.data()).ok());
  for (size_t i = 0; i < out2.size(); i += 3) {
    ASSERT_LE(std::abs(out2[i] - 20), 3) << "pixel " << i / 3;
    ASSERT_LE(std::abs(out2[i + 1] - 200), 3) << "pixel " << i / 3;
  }
}

TEST(FrameConverter, TargetSizedRgbIsCopiedExactly) {
  std::vector<uint8_t> in = testing::MakeClip(1, 128, 96);
  FrameConverter conv(128, 96);
  std::vector<uint8_t> out(conv.frame_bytes());
  ASSERT_TRUE(conv.ConvertRgb24(in.data(), 128, 96, 0, out.data()).ok());
  EXPECT_EQ(in, out);
  // bgr0 at the target size (FFV1's RGB format) is exact too.
  EncoderOptions o;
  o.codec = VideoCodec::kFfv1;
  o.container = "matroska";
  o.width = 128;
  o.height = 96;
  o.fps = 6;
  auto bytes = testing::EncodeToMemory(in, 1, o);
  ASSERT_TRUE(bytes.ok());
  MemoryByteSource src{std::span<const uint8_t>(*bytes)};
  auto dec = VideoDecoder::Open(&src);
  ASSERT_TRUE(dec.ok());
  DecodedFrame f;
  ASSERT_TRUE(*(*dec)->Next(&f));
  EXPECT_STREQ(f.pixel_format_name(), "bgr0");
  std::fill(out.begin(), out.end(), 0);
  ASSERT_TRUE(conv.Convert(f, out.data()).ok());
  EXPECT_EQ(in, out);
}

// A w x h yuv444p (or yuvj444p) frame of one colour.
DecodedFrame UniformYuv(int y, int u, int v, AVColorSpace cs, AVColorRange range,
                        AVPixelFormat fmt = AV_PIX_FMT_YUV444P, int w = 32, int h = 24) {
  AvFramePtr f = internal::MakeFrame();
  f->format = fmt;
  f->width = w;
  f->height = h;
  f->colorspace = cs;
  f->color_range = range;
  EXPECT_EQ(av_frame_get_buffer(f.get(), 0), 0);
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(fmt);
  const int cw = -((-w) >> d->log2_chroma_w), ch = -((-h) >> d->log2_chroma_h);
  for (int r = 0; r < h; ++r) std::memset(f->data[0] + r * f->linesize[0], y, w);
  for (int r = 0; r < ch; ++r) {
    std::memset(f->data[1] + r * f->linesize[1], u, cw);
    std::memset(f->data[2] + r * f->linesize[2], v, cw);
  }
  return DecodedFrame(std::move(f), 0);
}

struct Rgb {
  double r, g, b;
};

// The textbook conversion: Kr/Kb of the matrix, limited or full range.
Rgb Expected(int y, int u, int v, double kr, double kb, bool full) {
  const double yy = full ? y : (y - 16) * 255.0 / 219.0;
  const double pb = full ? (u - 128) : (u - 128) * 255.0 / 224.0;
  const double pr = full ? (v - 128) : (v - 128) * 255.0 / 224.0;
  const double r = yy + 2 * (1 - kr) * pr;
  const double b = yy + 2 * (1 - kb) * pb;
  const double g = (yy - kr * r - kb * b) / (1 - kr - kb);
  auto clamp = [](double x) { return std::clamp(x, 0.0, 255.0); };
  return {clamp(r), clamp(g), clamp(b)};
}

TEST(FrameConverter, ColourMatrixAndRangeFollowTheSignalling) {
  constexpr double k601r = 0.299, k601b = 0.114, k709r = 0.2126, k709b = 0.0722;
  struct Case {
    const char* name;
    AVColorSpace cs;
    AVColorRange range;
    AVPixelFormat fmt;
    double kr, kb;
    bool full;
  };
  const Case cases[] = {
      {"unspecified -> BT.601", AVCOL_SPC_UNSPECIFIED, AVCOL_RANGE_UNSPECIFIED, AV_PIX_FMT_YUV444P,
       k601r, k601b, false},
      {"smpte170m", AVCOL_SPC_SMPTE170M, AVCOL_RANGE_MPEG, AV_PIX_FMT_YUV444P, k601r, k601b, false},
      {"bt470bg", AVCOL_SPC_BT470BG, AVCOL_RANGE_MPEG, AV_PIX_FMT_YUV444P, k601r, k601b, false},
      {"bt709", AVCOL_SPC_BT709, AVCOL_RANGE_MPEG, AV_PIX_FMT_YUV444P, k709r, k709b, false},
      {"bt709 full", AVCOL_SPC_BT709, AVCOL_RANGE_JPEG, AV_PIX_FMT_YUV444P, k709r, k709b, true},
      {"unspecified full", AVCOL_SPC_UNSPECIFIED, AVCOL_RANGE_JPEG, AV_PIX_FMT_YUV444P, k601r,
       k601b, true},
      {"yuvj444p (JPEG)", AVCOL_SPC_UNSPECIFIED, AVCOL_RANGE_UNSPECIFIED, AV_PIX_FMT_YUVJ444P,
       k601r, k601b, true},
      {"reserved -> BT.601", AVCOL_SPC_RESERVED, AVCOL_RANGE_MPEG, AV_PIX_FMT_YUV444P, k601r, k601b,
       false},
  };
  const int colours[][3] = {{110, 90, 190}, {180, 160, 100}, {60, 140, 120}, {128, 128, 128}};
  FrameConverter conv(16, 12);
  std::vector<uint8_t> out(conv.frame_bytes());
  for (const Case& c : cases) {
    for (const auto& yuv : colours) {
      DecodedFrame f = UniformYuv(yuv[0], yuv[1], yuv[2], c.cs, c.range, c.fmt);
      ASSERT_TRUE(conv.Convert(f, out.data()).ok()) << c.name;
      const Rgb want = Expected(yuv[0], yuv[1], yuv[2], c.kr, c.kb, c.full);
      for (size_t i = 0; i < out.size(); i += 3) {
        ASSERT_NEAR(out[i], want.r, 1.5) << c.name << " Y=" << yuv[0];
        ASSERT_NEAR(out[i + 1], want.g, 1.5) << c.name << " Y=" << yuv[0];
        ASSERT_NEAR(out[i + 2], want.b, 1.5) << c.name << " Y=" << yuv[0];
      }
    }
  }
  // The two matrices really differ for this colour (the test can tell them apart).
  const Rgb a = Expected(110, 90, 190, k601r, k601b, false);
  const Rgb b = Expected(110, 90, 190, k709r, k709b, false);
  EXPECT_GT(std::fabs(a.r - b.r), 8);
}

TEST(FrameConverter, CachedContextFollowsFormatAndSizeChanges) {
  const DecodedFrame a = UniformYuv(110, 90, 190, AVCOL_SPC_BT709, AVCOL_RANGE_MPEG);
  const DecodedFrame b =
      UniformYuv(110, 90, 190, AVCOL_SPC_SMPTE170M, AVCOL_RANGE_MPEG, AV_PIX_FMT_YUV420P, 64, 36);
  const std::vector<uint8_t> rgb = testing::MakeClip(1, 40, 30);
  FrameConverter shared(16, 12);
  std::vector<uint8_t> out(shared.frame_bytes()), fresh_out(shared.frame_bytes());
  for (int round = 0; round < 2; ++round) {
    for (int which = 0; which < 3; ++which) {
      FrameConverter fresh(16, 12);
      if (which == 2) {
        ASSERT_TRUE(shared.ConvertRgb24(rgb.data(), 40, 30, 0, out.data()).ok());
        ASSERT_TRUE(fresh.ConvertRgb24(rgb.data(), 40, 30, 0, fresh_out.data()).ok());
      } else {
        const DecodedFrame& f = which == 0 ? a : b;
        ASSERT_TRUE(shared.Convert(f, out.data()).ok());
        ASSERT_TRUE(fresh.Convert(f, fresh_out.data()).ok());
      }
      EXPECT_EQ(out, fresh_out) << "round " << round << " input " << which;
    }
  }
}

TEST(FrameConverter, OddCropOffsetsOnSubsampledFormats) {
  // 4:2:0 at 177x101 (odd sizes, odd crop offset) converts without error and
  // gives the uniform colour everywhere.
  DecodedFrame f = UniformYuv(120, 100, 150, AVCOL_SPC_SMPTE170M, AVCOL_RANGE_MPEG,
                              AV_PIX_FMT_YUV420P, 177, 101);
  FrameConverter conv(128, 96);
  std::vector<uint8_t> out(conv.frame_bytes());
  ASSERT_TRUE(conv.Convert(f, out.data()).ok());
  const Rgb want = Expected(120, 100, 150, 0.299, 0.114, false);
  for (size_t i = 0; i < out.size(); i += 3) {
    ASSERT_NEAR(out[i], want.r, 1.5);
    ASSERT_NEAR(out[i + 2], want.b, 1.5);
  }
}

TEST(FrameConverter, ManyPixelFormats) {
  // Every format a decoder commonly produces converts to the same picture.
  const std::vector<uint8_t> rgb = testing::MakeClip(1, 64, 48);
  auto src = DecodedFrame::FromRgb24(rgb.data(), 64, 48, 0, 0);
  ASSERT_TRUE(src.ok());
  FrameConverter conv(32, 24);
  std::vector<uint8_t> reference(conv.frame_bytes());
  ASSERT_TRUE(conv.Convert(*src, reference.data()).ok());
  for (AVPixelFormat fmt :
       {AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUV422P, AV_PIX_FMT_YUV444P, AV_PIX_FMT_NV12,
        AV_PIX_FMT_YUYV422, AV_PIX_FMT_GBRP, AV_PIX_FMT_BGR24, AV_PIX_FMT_RGBA,
        AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_GRAY8, AV_PIX_FMT_MONOBLACK, AV_PIX_FMT_BGR0}) {
    AvFramePtr f = internal::MakeFrame();
    f->format = fmt;
    f->width = 64;
    f->height = 48;
    ASSERT_EQ(av_frame_get_buffer(f.get(), 0), 0);
    internal::SwsContextPtr sws(sws_getContext(64, 48, AV_PIX_FMT_RGB24, 64, 48, fmt, SWS_POINT,
                                               nullptr, nullptr, nullptr));
    ASSERT_TRUE(sws) << av_get_pix_fmt_name(fmt);
    const uint8_t* s[4] = {rgb.data(), nullptr, nullptr, nullptr};
    const int ss[4] = {64 * 3, 0, 0, 0};
    sws_scale(sws.get(), s, ss, 0, 48, f->data, f->linesize);
    f->color_range = AVCOL_RANGE_MPEG;
    if (fmt == AV_PIX_FMT_GRAY8 || fmt == AV_PIX_FMT_MONOBLACK) f->color_range = AVCOL_RANGE_JPEG;
    DecodedFrame frame(std::move(f), 0);
    std::vector<uint8_t> out(conv.frame_bytes());
    Status st = conv.Convert(frame, out.data());
    ASSERT_TRUE(st.ok()) << av_get_pix_fmt_name(fmt) << ": " << st.ToString();
    const bool colourless = fmt == AV_PIX_FMT_GRAY8 || fmt == AV_PIX_FMT_MONOBLACK;
    if (!colourless && fmt != AV_PIX_FMT_PAL8) {
      EXPECT_GE(testing::Psnr(out.data(), reference.data(), out.size()), 28)
          << av_get_pix_fmt_name(fmt);
    }
  }
}

TEST(FrameConverter, RefusesBadInput) {
  FrameConverter conv(128, 96);
  std::vector<uint8_t> out(conv.frame_bytes());
  EXPECT_EQ(conv.Convert(DecodedFrame(), out.data()).code(), StatusCode::kInvalidArgument);
  std::vector<uint8_t> rgb(30);
  EXPECT_EQ(conv.ConvertRgb24(rgb.data(), 0, 10, 0, out.data()).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(conv.ConvertRgb24(rgb.data(), 10000, 10000, 0, out.data()).code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(conv.ConvertRgb24(rgb.data(), 10, 1, 5, out.data()).code(),
            StatusCode::kInvalidArgument);
  FrameConverter bad(0, 96);
  EXPECT_EQ(bad.ConvertRgb24(rgb.data(), 10, 1, 0, out.data()).code(),
            StatusCode::kInvalidArgument);
}

TEST(FrameConverter, EncodedStreamsCarryTheirMatrix) {
  // A saturated colour through H.264 with BT.709: signalled, it comes back
  // right; unsignalled, the decoder side assumes BT.601 and it comes back wrong.
  std::vector<uint8_t> rgb(64 * 48 * 3 * 4);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = 200;
    rgb[i + 1] = 60;
    rgb[i + 2] = 40;
  }
  for (bool signal : {true, false}) {
    for (const char* container : {"mp4", "matroska", "mpegts"}) {
      EncoderOptions o;
      o.container = container;
      o.width = 64;
      o.height = 48;
      o.fps = 4;
      o.matrix = ColorMatrix::kBt709;
      o.signal_color = signal;
      auto bytes = testing::EncodeToMemory(rgb, 4, o);
      ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
      MemoryByteSource src{std::span<const uint8_t>(*bytes)};
      auto dec = VideoDecoder::Open(&src);
      ASSERT_TRUE(dec.ok());
      DecodedFrame f;
      ASSERT_TRUE(*(*dec)->Next(&f));
      FrameConverter conv(32, 24);
      std::vector<uint8_t> out(conv.frame_bytes());
      ASSERT_TRUE(conv.Convert(f, out.data()).ok());
      const double err = std::abs(out[0] - 200) + std::abs(out[1] - 60) + std::abs(out[2] - 40);
      if (signal) {
        EXPECT_LE(err, 8) << container << " " << int(out[0]) << "," << int(out[1]) << ","
                          << int(out[2]);
      } else {
        EXPECT_GE(err, 15) << container;
      }
    }
  }
}

}  // namespace
}  // namespace billnet::media
