// Encoder -> decoder round trips for every codec/container pair we serve:
// frame counts, timestamps, sizes, exact pixels for lossless codecs and a PSNR
// bound for lossy ones; memory AVIO equals file decoding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "billnet/media/byte_io.h"
#include "billnet/media/decoder.h"
#include "billnet/media/encoder.h"
#include "billnet/media/image.h"
#include "media_test_util.h"

namespace billnet::media {
namespace {

using testing::EncodeToFile;
using testing::EncodeToMemory;
using testing::MakeClip;
using testing::Psnr;

struct DecodedClip {
  std::vector<std::vector<uint8_t>> rgb;
  std::vector<double> ts;
  std::vector<std::string> pixel_formats;
  int width = 0, height = 0;
  StreamInfo info;
};

StatusOr<DecodedClip> DecodeAll(std::unique_ptr<VideoDecoder> decoder) {
  DecodedClip out;
  out.info = decoder->info();
  DecodedFrame frame;
  for (;;) {
    BILLNET_ASSIGN_OR_RETURN(const bool got, decoder->Next(&frame));
    if (!got) break;
    BILLNET_ASSIGN_OR_RETURN(RgbImage img, ToRgb24(frame));
    out.width = img.width;
    out.height = img.height;
    out.rgb.push_back(std::move(img.rgb));
    out.ts.push_back(frame.timestamp());
    out.pixel_formats.push_back(frame.pixel_format_name());
  }
  return out;
}

StatusOr<DecodedClip> DecodeMemory(const std::vector<uint8_t>& bytes, bool seekable = true,
                                   const DecoderOptions& options = {}) {
  MemoryByteSource source{std::span<const uint8_t>(bytes), seekable};
  BILLNET_ASSIGN_OR_RETURN(auto decoder, VideoDecoder::Open(&source, options, "test"));
  return DecodeAll(std::move(decoder));
}

struct CodecCase {
  std::string name;
  VideoCodec codec;
  std::string container;
  std::string pixel_format;  // empty: the codec's default
  double min_psnr;           // 0: lossless, pixels must be equal
  int width = 64, height = 48;
};

void PrintTo(const CodecCase& c, std::ostream* os) { *os << c.name; }

class CodecRoundTrip : public ::testing::TestWithParam<CodecCase> {};

TEST_P(CodecRoundTrip, FramesTimestampsAndPixelsSurvive) {
  const CodecCase& c = GetParam();
  constexpr int kFrames = 18;
  constexpr double kFps = 12;
  const std::vector<uint8_t> rgb = MakeClip(kFrames, c.width, c.height);
  EncoderOptions o;
  o.codec = c.codec;
  o.container = c.container;
  o.pixel_format = c.pixel_format;
  o.width = c.width;
  o.height = c.height;
  o.fps = kFps;
  StatusOr<std::vector<uint8_t>> bytes = EncodeToMemory(rgb, kFrames, o);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  ASSERT_GT(bytes->size(), 100u);

  StatusOr<DecodedClip> d = DecodeMemory(*bytes);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->rgb.size(), static_cast<size_t>(kFrames)) << c.name;
  EXPECT_EQ(d->width, c.width);
  EXPECT_EQ(d->height, c.height);
  EXPECT_EQ(d->info.width, c.width);
  EXPECT_EQ(d->info.codec, VideoCodecName(c.codec));
  EXPECT_NEAR(d->info.frame_rate, kFps, 0.01) << c.name;
  for (int i = 0; i < kFrames; ++i) {
    EXPECT_NEAR(d->ts[i] - d->ts[0], i / kFps, 1e-3) << c.name << " frame " << i;
  }
  if (c.container != "mpegts") {
    EXPECT_NEAR(d->ts[0], 0.0, 1e-3) << c.name;
  }

  const size_t fb = static_cast<size_t>(c.width) * c.height * 3;
  for (int i = 0; i < kFrames; ++i) {
    const uint8_t* want = rgb.data() + fb * i;
    if (c.min_psnr == 0) {
      ASSERT_EQ(0, std::memcmp(d->rgb[i].data(), want, fb)) << c.name << " frame " << i;
    } else {
      EXPECT_GE(Psnr(d->rgb[i].data(), want, fb), c.min_psnr) << c.name << " frame " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Media, CodecRoundTrip,
    ::testing::Values(
        CodecCase{"h264_mp4", VideoCodec::kH264, "mp4", "", 30},
        CodecCase{"h264_mpegts", VideoCodec::kH264, "mpegts", "", 30},
        CodecCase{"h264_matroska", VideoCodec::kH264, "matroska", "", 30},
        CodecCase{"h264_176x100", VideoCodec::kH264, "mp4", "", 30, 176, 100},
        CodecCase{"vp9_webm", VideoCodec::kVp9, "webm", "", 28},
        CodecCase{"mjpeg_matroska", VideoCodec::kMjpeg, "matroska", "", 30},
        CodecCase{"mjpeg_nut", VideoCodec::kMjpeg, "nut", "", 30},
        CodecCase{"ffv1_bgr0_matroska", VideoCodec::kFfv1, "matroska", "", 0},
        CodecCase{"ffv1_bgr0_nut_odd_size", VideoCodec::kFfv1, "nut", "", 0, 65, 37},
        CodecCase{"ffv1_gbrp10_nut", VideoCodec::kFfv1, "nut", "gbrp10le", 40},
        CodecCase{"ffv1_yuv444p_matroska", VideoCodec::kFfv1, "matroska", "yuv444p", 40},
        CodecCase{"rawvideo_rgb24_nut", VideoCodec::kRawVideo, "nut", "", 0},
        CodecCase{"rawvideo_yuv420p_matroska", VideoCodec::kRawVideo, "matroska", "yuv420p", 30},
        CodecCase{"rawvideo_yuv420p_nut", VideoCodec::kRawVideo, "nut", "yuv420p", 30}),
    [](const ::testing::TestParamInfo<CodecCase>& info) { return info.param.name; });

TEST(Decoder, MemoryAvioEqualsFile) {
  const std::string dir = testing::TempDir("mem_vs_file");
  const std::vector<uint8_t> rgb = MakeClip(12, 64, 48);
  for (const char* container : {"mp4", "mpegts", "matroska"}) {
    EncoderOptions o;
    o.container = container;
    o.width = 64;
    o.height = 48;
    o.fps = 12;
    const std::string path = dir + "/clip." + container;
    ASSERT_TRUE(EncodeToFile(path, rgb, 12, o).ok());
    auto file_dec = VideoDecoder::Open(path);
    ASSERT_TRUE(file_dec.ok()) << file_dec.status().ToString();
    StatusOr<DecodedClip> from_file = DecodeAll(std::move(*file_dec));
    ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
    StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(path);
    ASSERT_TRUE(bytes.ok());
    StatusOr<DecodedClip> from_memory = DecodeMemory(*bytes);
    ASSERT_TRUE(from_memory.ok()) << from_memory.status().ToString();
    EXPECT_EQ(from_file->rgb, from_memory->rgb) << container;
    EXPECT_EQ(from_file->ts, from_memory->ts) << container;
    EXPECT_EQ(from_file->rgb.size(), 12u) << container;
  }
  std::filesystem::remove_all(dir);
}

TEST(Decoder, StreamsFromNonSeekableSourcesAndSinks) {
  // What the client sends and the server receives: no seeking either side.
  const std::vector<uint8_t> rgb = MakeClip(16, 64, 48);
  for (const char* container : {"mp4", "mpegts", "matroska", "nut"}) {
    EncoderOptions o;
    o.container = container;
    o.width = 64;
    o.height = 48;
    o.fps = 6;
    o.zerolatency = true;
    StatusOr<std::vector<uint8_t>> bytes = EncodeToMemory(rgb, 16, o, /*seekable=*/false);
    ASSERT_TRUE(bytes.ok()) << container << ": " << bytes.status().ToString();
    StatusOr<DecodedClip> d = DecodeMemory(*bytes, /*seekable=*/false);
    ASSERT_TRUE(d.ok()) << container << ": " << d.status().ToString();
    ASSERT_EQ(d->rgb.size(), 16u) << container;
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(testing::ReadTag(d->rgb[i].data(), 64, 48, 16), i) << container;
    }
  }
}

TEST(Decoder, FaststartMp4File) {
  const std::string dir = testing::TempDir("faststart");
  const std::vector<uint8_t> rgb = MakeClip(6, 64, 48);
  EncoderOptions o;
  o.width = 64;
  o.height = 48;
  o.fps = 6;
  o.faststart = true;
  const std::string path = dir + "/clip.mp4";
  Status s = EncodeToFile(path, rgb, 6, o);
  ASSERT_TRUE(s.ok()) << s.ToString();
  StatusOr<std::vector<uint8_t>> bytes = ReadFileBytes(path);
  ASSERT_TRUE(bytes.ok());
  // moov before mdat, so a non-seekable reader can decode it.
  const std::string text(bytes->begin(), bytes->end());
  EXPECT_LT(text.find("moov"), text.find("mdat"));
  StatusOr<DecodedClip> d = DecodeMemory(*bytes, /*seekable=*/false);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->rgb.size(), 6u);
  // faststart needs a file.
  MemoryByteSink sink;
  EXPECT_EQ(VideoEncoder::Open(&sink, o).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

TEST(Decoder, VariableFrameRateTimestampsAreKept) {
  const std::vector<double> ts = {0.0, 0.031, 0.100, 0.140, 0.215, 0.250, 0.600, 0.633};
  const std::vector<uint8_t> rgb = MakeClip(static_cast<int>(ts.size()), 64, 48);
  const std::pair<VideoCodec, const char*> cases[] = {
      {VideoCodec::kFfv1, "matroska"}, {VideoCodec::kFfv1, "nut"}, {VideoCodec::kH264, "mp4"}};
  for (const auto& [codec, container] : cases) {
    EncoderOptions o;
    o.codec = codec;
    o.container = container;
    o.width = 64;
    o.height = 48;
    o.fps = 30;
    o.time_base_den = 1000;
    StatusOr<std::vector<uint8_t>> bytes =
        EncodeToMemory(rgb, static_cast<int>(ts.size()), o, true, ts);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    StatusOr<DecodedClip> d = DecodeMemory(*bytes);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_EQ(d->ts.size(), ts.size()) << container;
    for (size_t i = 0; i < ts.size(); ++i) EXPECT_NEAR(d->ts[i], ts[i], 1e-6) << container;
  }
}

TEST(Encoder, RejectsBadOptionsClearly) {
  MemoryByteSink sink;
  EncoderOptions o;
  o.width = 64;
  o.height = 48;
  o.container = "no-such-container";
  StatusOr<std::unique_ptr<VideoEncoder>> e = VideoEncoder::Open(&sink, o);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("no-such-container"), std::string::npos);
  o.container = "mp4";
  o.codec = VideoCodec::kFfv1;  // MP4 cannot hold FFV1
  e = VideoEncoder::Open(&sink, o);
  EXPECT_EQ(e.status().code(), StatusCode::kUnsupported) << e.status().ToString();
  o.codec = VideoCodec::kRawVideo;  // raw RGB has no Matroska mapping
  o.container = "matroska";
  EXPECT_EQ(VideoEncoder::Open(&sink, o).status().code(), StatusCode::kUnsupported);
  o.container = "mp4";
  o.codec = VideoCodec::kH264;
  o.pixel_format = "not-a-format";
  EXPECT_EQ(VideoEncoder::Open(&sink, o).status().code(), StatusCode::kInvalidArgument);
  o.pixel_format = "";
  o.width = 0;
  EXPECT_FALSE(VideoEncoder::Open(&sink, o).ok());
  o.width = 64;
  o.fps = 0;
  EXPECT_EQ(VideoEncoder::Open(&sink, o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseVideoCodec("h265").ok());
  EXPECT_EQ(*ParseVideoCodec("vp9"), VideoCodec::kVp9);
}

TEST(Encoder, TimestampsMustIncrease) {
  MemoryByteSink sink;
  EncoderOptions o;
  o.codec = VideoCodec::kFfv1;
  o.container = "matroska";
  o.width = 16;
  o.height = 16;
  o.fps = 10;
  auto e = VideoEncoder::Open(&sink, o);
  ASSERT_TRUE(e.ok());
  std::vector<uint8_t> frame(16 * 16 * 3, 100);
  EXPECT_TRUE((*e)->AddFrame(frame.data(), 0, 0.5).ok());
  EXPECT_EQ((*e)->AddFrame(frame.data(), 0, 0.5).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*e)->AddFrame(frame.data()).ok());  // next default slot after 0.5
  EXPECT_TRUE((*e)->Finish().ok());
  EXPECT_EQ((*e)->AddFrame(frame.data()).code(), StatusCode::kInvalidArgument);
}

TEST(Decoder, ReportsStreamInfo) {
  const std::vector<uint8_t> rgb = MakeClip(4, 32, 24);
  EncoderOptions o;
  o.codec = VideoCodec::kRawVideo;
  o.container = "nut";
  o.width = 32;
  o.height = 24;
  o.fps = 4;
  auto bytes = EncodeToMemory(rgb, 4, o);
  ASSERT_TRUE(bytes.ok());
  MemoryByteSource source{std::span<const uint8_t>(*bytes)};
  auto d = VideoDecoder::Open(&source);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->info().codec, "rawvideo");
  EXPECT_EQ((*d)->info().container, "nut");
  EXPECT_EQ((*d)->info().pixel_format, "rgb24");
  EXPECT_GT((*d)->info().duration, 0.7);
  EXPECT_LE((*d)->info().duration, 1.0);
}

}  // namespace
}  // namespace billnet::media

namespace billnet::media {
namespace {

TEST(Encoder, SameInputSameBytes) {
  // Across encoders in one process, also concurrently (x264's AVX-512 code
  // varied; see EncoderOptions::deterministic), in every container.
  const std::vector<uint8_t> rgb = MakeClip(30, 64, 48);
  const std::pair<VideoCodec, const char*> cases[] = {
      {VideoCodec::kH264, "mp4"}, {VideoCodec::kH264, "matroska"},  {VideoCodec::kH264, "mpegts"},
      {VideoCodec::kVp9, "webm"}, {VideoCodec::kMjpeg, "matroska"}, {VideoCodec::kFfv1, "nut"}};
  for (const auto& [codec, container] : cases) {
    EncoderOptions o;
    o.codec = codec;
    o.container = container;
    o.width = 64;
    o.height = 48;
    o.fps = 12;
    auto first = EncodeToMemory(rgb, 30, o);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    for (int round = 0; round < 4; ++round) {
      StatusOr<std::vector<uint8_t>> other = Internal("not run");
      std::thread t([&] { other = EncodeToMemory(rgb, 30, o); });
      auto again = EncodeToMemory(rgb, 30, o);
      t.join();
      ASSERT_TRUE(again.ok() && other.ok());
      EXPECT_EQ(*again, *first) << container << " round " << round;
      EXPECT_EQ(*other, *first) << container << " round " << round;
    }
  }
}

}  // namespace
}  // namespace billnet::media

namespace billnet::media {
namespace {

TEST(ByteIo, MemorySourceAndSink) {
  std::vector<uint8_t> bytes = {1, 2, 3, 4, 5};
  MemoryByteSource borrowed(bytes);  // lvalue: borrowed
  uint8_t buf[8];
  ASSERT_EQ(*borrowed.Read(buf, 3), 3u);
  EXPECT_EQ(buf[2], 3);
  ASSERT_EQ(*borrowed.Read(buf, 8), 2u);
  EXPECT_EQ(*borrowed.Read(buf, 8), 0u);  // end
  EXPECT_TRUE(borrowed.Seek(1).ok());
  EXPECT_EQ(*borrowed.Read(buf, 1), 1u);
  EXPECT_EQ(buf[0], 2);
  EXPECT_FALSE(borrowed.Seek(6).ok());
  MemoryByteSource owned(std::vector<uint8_t>{9, 8}, /*seekable=*/false);  // rvalue: owned
  EXPECT_EQ(owned.size(), -1);
  EXPECT_FALSE(owned.Seek(0).ok());
  ASSERT_EQ(*owned.Read(buf, 8), 2u);
  EXPECT_EQ(buf[1], 8);

  MemoryByteSink sink;
  const uint8_t a[] = {1, 2, 3};
  ASSERT_TRUE(sink.Write(a, 3).ok());
  ASSERT_TRUE(sink.Seek(1).ok());
  ASSERT_TRUE(sink.Write(a, 1).ok());
  EXPECT_EQ(sink.bytes(), (std::vector<uint8_t>{1, 1, 3}));
  MemoryByteSink stream(/*seekable=*/false);
  EXPECT_FALSE(stream.Seek(0).ok());

  const std::string dir = testing::TempDir("byteio");
  ASSERT_TRUE(WriteFileBytes(dir + "/f.bin", bytes).ok());
  EXPECT_EQ(*ReadFileBytes(dir + "/f.bin"), bytes);
  EXPECT_EQ(ReadFileBytes(dir + "/none").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(WriteFileBytes(dir + "/no/such/dir/f", bytes).ok());
  std::filesystem::remove_all(dir);
}

TEST(ByteIo, UrlsAndTheirSources) {
  EXPECT_TRUE(IsUrl("http://host/a.mp4"));
  EXPECT_TRUE(IsUrl("rtsp://10.0.0.2:554/cam?x=1"));
  EXPECT_TRUE(IsUrl("srt+x.y-z://h"));
  EXPECT_FALSE(IsUrl("clip.mp4"));
  EXPECT_FALSE(IsUrl("/dev/video0"));
  EXPECT_FALSE(IsUrl("lavfi:testsrc2"));
  EXPECT_FALSE(IsUrl("dir/with://odd"));
  EXPECT_FALSE(IsUrl("://x"));
  EXPECT_FALSE(IsUrl("1http://x"));
  EXPECT_TRUE(IsLiveUrl("RTSP://cam/1"));
  EXPECT_TRUE(IsLiveUrl("udp://239.0.0.1:1234"));
  EXPECT_FALSE(IsLiveUrl("https://host/a.mp4"));
  EXPECT_FALSE(IsLiveUrl("file.mp4"));

  // FFmpeg's file protocol reads a file through the same source.
  const std::string dir = testing::TempDir("byteio_url");
  std::vector<uint8_t> bytes(100000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 7);
  ASSERT_TRUE(WriteFileBytes(dir + "/f.bin", bytes).ok());
  auto source = UrlByteSource::Open("file://" + dir + "/f.bin");
  ASSERT_TRUE(source.ok()) << source.status().message();
  std::vector<uint8_t> got, buf(4096);
  for (;;) {
    auto n = (*source)->Read(buf.data(), buf.size());
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + long(*n));
  }
  EXPECT_EQ(got, bytes);
  auto missing = UrlByteSource::Open("file://" + dir + "/none");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir + "/none"), std::string::npos);
  auto refused = UrlByteSource::Open("http://127.0.0.1:1/x", 2);
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound) << refused.status().message();
  EXPECT_EQ(UrlByteSource::Open("nosuchscheme://x").status().code(), StatusCode::kUnsupported);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace billnet::media
