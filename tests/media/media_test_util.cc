#include "media_test_util.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "billnet/media/byte_io.h"

namespace billnet::media::testing {

std::vector<uint8_t> MakeClip(int frames, int width, int height) {
  std::vector<uint8_t> rgb(static_cast<size_t>(frames) * width * height * 3);
  const int bw = std::max(2, width / 8), bh = std::max(2, height / 8);
  const int bx = (width - bw) / 2, by = (height - bh) / 2;
  for (int i = 0; i < frames; ++i) {
    uint8_t* f = rgb.data() + static_cast<size_t>(i) * width * height * 3;
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        uint8_t* p = f + (static_cast<size_t>(y) * width + x) * 3;
        if (x >= bx && x < bx + bw && y >= by && y < by + bh) {
          p[0] = p[1] = p[2] = static_cast<uint8_t>(FrameTag(i));
          continue;
        }
        p[0] = static_cast<uint8_t>(40 + (x * 160) / width);
        p[1] = static_cast<uint8_t>(40 + (y * 160) / height);
        p[2] = static_cast<uint8_t>(60 + 60 * std::sin((x + 3.0 * i) * 0.15));
      }
    }
  }
  return rgb;
}

int ReadTag(const uint8_t* rgb, int width, int height, int max_frames) {
  const int bw = std::max(1, width / 16), bh = std::max(1, height / 16);
  const int bx = (width - bw) / 2, by = (height - bh) / 2;
  double sum = 0;
  for (int y = by; y < by + bh; ++y) {
    for (int x = bx; x < bx + bw; ++x) {
      const uint8_t* p = rgb + (static_cast<size_t>(y) * width + x) * 3;
      sum += (p[0] + p[1] + p[2]) / 3.0;
    }
  }
  const double mean = sum / (bw * bh);
  int best = -1;
  double best_d = 1e9;
  for (int i = 0; i < max_frames; ++i) {
    const double d = std::fabs(mean - FrameTag(i));
    if (d < best_d) {
      best_d = d;
      best = i;
    }
  }
  return best;
}

namespace {
Status EncodeInto(VideoEncoder& enc, const std::vector<uint8_t>& rgb, int frames,
                  const EncoderOptions& o, const std::vector<double>& timestamps) {
  const size_t fb = static_cast<size_t>(o.width) * o.height * 3;
  for (int i = 0; i < frames; ++i) {
    std::optional<double> ts;
    if (!timestamps.empty()) ts = timestamps[i];
    BILLNET_RETURN_IF_ERROR(enc.AddFrame(rgb.data() + fb * i, 0, ts));
  }
  return enc.Finish();
}
}  // namespace

StatusOr<std::vector<uint8_t>> EncodeToMemory(const std::vector<uint8_t>& rgb, int frames,
                                              const EncoderOptions& options, bool seekable,
                                              const std::vector<double>& timestamps) {
  MemoryByteSink sink(seekable);
  BILLNET_ASSIGN_OR_RETURN(auto enc, VideoEncoder::Open(&sink, options));
  BILLNET_RETURN_IF_ERROR(EncodeInto(*enc, rgb, frames, options, timestamps));
  enc.reset();
  return sink.Take();
}

Status EncodeToFile(const std::string& path, const std::vector<uint8_t>& rgb, int frames,
                    const EncoderOptions& options) {
  BILLNET_ASSIGN_OR_RETURN(auto enc, VideoEncoder::Open(path, options));
  return EncodeInto(*enc, rgb, frames, options, {});
}

double Psnr(const uint8_t* a, const uint8_t* b, size_t n) {
  double se = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    se += d * d;
  }
  if (se == 0) return 99;
  return 10 * std::log10(255.0 * 255.0 * n / se);
}

std::string TempDir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path p =
      fs::temp_directory_path() / ("billnet_media_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace billnet::media::testing
