// Bad input never crashes the decoder: garbage, truncations and bit flips of
// valid clips give an error or a clean result (a libFuzzer-style loop run in
// the normal build, seeded, a few hundred iterations); oversized frames are
// refused; byte-source and byte-sink errors surface with their message.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "billnet/media/byte_io.h"
#include "billnet/media/decoder.h"
#include "billnet/media/encoder.h"
#include "billnet/media/pipeline.h"
#include "decode_fuzz_target.h"
#include "media_test_util.h"

namespace billnet::media {
namespace {

class QuietFfmpeg : public ::testing::Environment {
 public:
  void SetUp() override {
    if (std::getenv("BILLNET_MEDIA_TEST_LOG") == nullptr) SetLogLevel(LogLevel::kQuiet);
  }
};
const auto* const kQuiet = ::testing::AddGlobalTestEnvironment(new QuietFfmpeg);

std::vector<std::vector<uint8_t>> SeedClips() {
  const std::vector<uint8_t> rgb = testing::MakeClip(8, 48, 32);
  std::vector<std::vector<uint8_t>> out;
  const std::pair<VideoCodec, const char*> cases[] = {
      {VideoCodec::kH264, "mp4"},    {VideoCodec::kH264, "mpegts"}, {VideoCodec::kH264, "matroska"},
      {VideoCodec::kVp9, "webm"},    {VideoCodec::kMjpeg, "nut"},   {VideoCodec::kFfv1, "matroska"},
      {VideoCodec::kRawVideo, "nut"}};
  for (const auto& [codec, container] : cases) {
    EncoderOptions o;
    o.codec = codec;
    o.container = container;
    o.width = 48;
    o.height = 32;
    o.fps = 8;
    auto bytes = testing::EncodeToMemory(rgb, 8, o);
    EXPECT_TRUE(bytes.ok()) << container << ": " << bytes.status().ToString();
    if (bytes.ok()) out.push_back(std::move(*bytes));
  }
  return out;
}

TEST(Robustness, SeedClipsDecodeCleanly) {
  for (const auto& clip : SeedClips()) {
    const DecodeFuzzResult r = DecodeFuzzInput(clip.data(), clip.size());
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.frames, 8);
  }
}

TEST(Robustness, GarbageIsAnError) {
  std::mt19937 rng(1234);
  for (size_t size : {0, 1, 4, 100, 4096, 100000}) {
    std::vector<uint8_t> bytes(size);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    const DecodeFuzzResult r = DecodeFuzzInput(bytes.data(), bytes.size());
    EXPECT_FALSE(r.status.ok()) << size;
    EXPECT_FALSE(r.status.message().empty());
  }
  // Garbage with a container hint: same.
  std::vector<uint8_t> bytes(5000, 0x47);  // MPEG-TS sync bytes everywhere
  MemoryByteSource src{std::span<const uint8_t>(bytes), false};
  DecoderOptions o;
  o.format_hint = "mpegts";
  auto d = VideoDecoder::Open(&src, o);
  EXPECT_FALSE(d.ok());
  o.format_hint = "not-a-format";
  EXPECT_EQ(VideoDecoder::Open(&src, o).status().code(), StatusCode::kInvalidArgument);
}

TEST(Robustness, TruncatedClipsEndCleanlyOrFail) {
  int errors = 0, clean = 0;
  for (const auto& clip : SeedClips()) {
    for (int i = 1; i <= 12; ++i) {
      const size_t n = clip.size() * i / 13;
      const DecodeFuzzResult r = DecodeFuzzInput(clip.data(), n);
      (r.status.ok() ? clean : errors)++;
      if (r.status.ok()) {
        EXPECT_LE(r.frames, 8);
      }
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_GT(clean + errors, 80);
}

TEST(Robustness, BitFlipsNeverCrash) {
  const std::vector<std::vector<uint8_t>> seeds = SeedClips();
  std::mt19937 rng(20261123);
  int errors = 0;
  // More with BILLNET_MEDIA_FUZZ_ITERATIONS (e.g. in a sanitizer build).
  const char* env = std::getenv("BILLNET_MEDIA_FUZZ_ITERATIONS");
  const int iterations = env != nullptr ? std::atoi(env) : 350;
  for (int it = 0; it < iterations; ++it) {
    std::vector<uint8_t> bytes = seeds[it % seeds.size()];
    const int flips = 1 + static_cast<int>(rng() % 16);
    for (int f = 0; f < flips; ++f) {
      const size_t pos = rng() % bytes.size();
      switch (rng() % 3) {
        case 0:
          bytes[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 1:
          bytes[pos] = static_cast<uint8_t>(rng());
          break;
        default:
          bytes[pos] = 0xFF;
          break;
      }
    }
    const DecodeFuzzResult r = DecodeFuzzInput(bytes.data(), bytes.size());
    if (!r.status.ok()) {
      ++errors;
      ASSERT_FALSE(r.status.message().empty()) << "iteration " << it;
    }
  }
  RecordProperty("errors", errors);
}

TEST(Robustness, OversizedRawVideoIsRefused) {
  // A raw video stream declared 10000x10000 (100 megapixels).
  std::vector<uint8_t> bytes(10000, 0x80);
  MemoryByteSource src{std::span<const uint8_t>(bytes)};
  DecoderOptions o;
  o.format_hint = "rawvideo";
  o.format_options = {{"video_size", "10000x10000"}, {"pixel_format", "rgb24"}};
  auto d = VideoDecoder::Open(&src, o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kResourceExhausted) << d.status().ToString();
  EXPECT_NE(d.status().message().find("10000x10000"), std::string::npos);
  EXPECT_NE(d.status().message().find("64 megapixels"), std::string::npos);

  // 8K is accepted (this short buffer then fails as a truncated frame, or ends).
  MemoryByteSource src8k{std::span<const uint8_t>(bytes)};
  o.format_options = {{"video_size", "7680x4320"}, {"pixel_format", "gray"}};
  auto d8k = VideoDecoder::Open(&src8k, o);
  ASSERT_TRUE(d8k.ok()) << d8k.status().ToString();
  EXPECT_EQ((*d8k)->info().width, 7680);
  DecodedFrame f;
  StatusOr<bool> next = (*d8k)->Next(&f);
  if (!next.ok()) {
    EXPECT_NE(next.status().code(), StatusCode::kResourceExhausted);
  }
}

TEST(Robustness, OversizedMatroskaHeaderIsRefused) {
  // A valid 256x256 raw-video (yuv420p) Matroska file whose header is patched
  // to declare 10000x10000 (PixelWidth 0xB0, PixelHeight 0xBA, 2-byte values).
  const std::vector<uint8_t> rgb = testing::MakeClip(1, 256, 256);
  EncoderOptions o;
  o.codec = VideoCodec::kRawVideo;
  o.pixel_format = "yuv420p";
  o.container = "matroska";
  o.width = 256;
  o.height = 256;
  o.fps = 1;
  auto bytes = testing::EncodeToMemory(rgb, 1, o);
  ASSERT_TRUE(bytes.ok());
  int patched = 0;
  for (size_t i = 0; i + 3 < bytes->size() && patched < 2; ++i) {
    auto& b = *bytes;
    if ((b[i] == 0xB0 || b[i] == 0xBA) && b[i + 1] == 0x82 && b[i + 2] == 0x01 &&
        b[i + 3] == 0x00) {
      b[i + 2] = 0x27;  // 0x2710 = 10000
      b[i + 3] = 0x10;
      ++patched;
    }
  }
  ASSERT_EQ(patched, 2);
  MemoryByteSource src{std::span<const uint8_t>(*bytes)};
  auto d = VideoDecoder::Open(&src);
  Status s = d.ok() ? Status::Ok() : d.status();
  if (d.ok()) {  // refused at the latest when the first frame arrives
    DecodedFrame f;
    StatusOr<bool> next = (*d)->Next(&f);
    s = next.ok() ? Internal("decoded") : next.status();
  }
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
}

TEST(Robustness, FrameSizeLimits) {
  EXPECT_TRUE(CheckFrameSize(7680, 4320).ok());
  EXPECT_TRUE(CheckFrameSize(8000, 8000).ok());  // exactly 64 MP
  EXPECT_EQ(CheckFrameSize(8001, 8000).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(CheckFrameSize(40000, 10).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(CheckFrameSize(0, 10).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckFrameSize(-5, 10).code(), StatusCode::kInvalidArgument);
}

// A source that fails after some bytes, like a broken connection.
class FailingSource : public ByteSource {
 public:
  FailingSource(const std::vector<uint8_t>& bytes, size_t fail_at)
      : bytes_(bytes), fail_at_(fail_at) {}
  StatusOr<size_t> Read(uint8_t* data, size_t size) override {
    if (pos_ >= fail_at_) return Cancelled("connection reset by peer");
    const size_t n = std::min({size, fail_at_ - pos_, bytes_.size() - pos_});
    std::memcpy(data, bytes_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const std::vector<uint8_t>& bytes_;
  size_t fail_at_;
  size_t pos_ = 0;
};

TEST(Robustness, ByteSourceErrorsSurface) {
  const std::vector<uint8_t> rgb = testing::MakeClip(30, 64, 48);
  EncoderOptions o;
  o.container = "mpegts";
  o.width = 64;
  o.height = 48;
  o.fps = 10;
  auto bytes = testing::EncodeToMemory(rgb, 30, o, false);
  ASSERT_TRUE(bytes.ok());
  for (size_t fail_at : {size_t{0}, size_t{500}, bytes->size() / 2}) {
    FailingSource src(*bytes, fail_at);
    Status s;
    auto d = VideoDecoder::Open(&src, {}, "grpc stream");
    if (!d.ok()) {
      s = d.status();
    } else {
      DecodedFrame f;
      for (;;) {
        StatusOr<bool> next = (*d)->Next(&f);
        if (!next.ok()) {
          s = next.status();
          break;
        }
        if (!*next) break;
      }
    }
    ASSERT_FALSE(s.ok()) << fail_at;
    EXPECT_EQ(s.code(), StatusCode::kCancelled) << s.ToString();
    EXPECT_NE(s.message().find("connection reset by peer"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("grpc stream"), std::string::npos) << s.ToString();
  }
}

class FailingSink : public ByteSink {
 public:
  Status Write(const uint8_t*, size_t size) override {
    written_ += size;
    if (written_ > 2000) return ResourceExhausted("disk full");
    return Status::Ok();
  }

 private:
  size_t written_ = 0;
};

TEST(Robustness, ByteSinkErrorsSurface) {
  const std::vector<uint8_t> rgb = testing::MakeClip(30, 64, 48);
  FailingSink sink;
  EncoderOptions o;
  o.codec = VideoCodec::kRawVideo;
  o.container = "nut";
  o.width = 64;
  o.height = 48;
  auto e = VideoEncoder::Open(&sink, o);
  Status s = e.ok() ? Status::Ok() : e.status();
  for (int i = 0; e.ok() && s.ok() && i < 30; ++i) s = (*e)->AddFrame(rgb.data() + i * 64 * 48 * 3);
  if (s.ok() && e.ok()) s = (*e)->Finish();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("disk full"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace billnet::media
