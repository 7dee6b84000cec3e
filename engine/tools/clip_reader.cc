#include "clip_reader.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace billnet {
namespace fs = std::filesystem;

namespace {

StatusOr<std::vector<uint8_t>> ReadAll(const std::string& path, uintmax_t limit) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return NotFound("clip '" + path + "': " + ec.message());
  if (size > limit)
    return ResourceExhausted("clip '" + path + "': " + std::to_string(size) +
                             " bytes is over the " + std::to_string(limit) + "-byte limit");
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> bytes(size);
  if (size && !f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(size)))
    return NotFound("clip '" + path + "': read failed");
  return bytes;
}

// Binary PPM: "P6" ws width ws height ws maxval(255) single-ws data.
Status ReadPpm(const std::string& path, int height, int width, std::vector<uint8_t>* out) {
  BILLNET_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadAll(path, 256u << 20));
  size_t pos = 0;
  auto token = [&]() -> std::string {
    while (pos < bytes.size()) {
      if (bytes[pos] == '#') {
        while (pos < bytes.size() && bytes[pos] != '\n') ++pos;
      } else if (std::isspace(bytes[pos])) {
        ++pos;
      } else {
        break;
      }
    }
    std::string t;
    while (pos < bytes.size() && !std::isspace(bytes[pos]) && t.size() < 16) t += char(bytes[pos++]);
    return t;
  };
  const std::string magic = token(), ws = token(), hs = token(), ms = token();
  if (magic != "P6") return Unsupported("frame '" + path + "': not a binary PPM (P6) file");
  int w = 0, h = 0, maxval = 0;
  try {
    w = std::stoi(ws), h = std::stoi(hs), maxval = std::stoi(ms);
  } catch (...) {
    return Corruption("frame '" + path + "': bad PPM header");
  }
  if (maxval != 255) return Unsupported("frame '" + path + "': PPM maxval must be 255");
  if (w != width || h != height)
    return Unsupported("frame '" + path + "' is " + std::to_string(w) + "x" + std::to_string(h) +
                       ", the model takes " + std::to_string(width) + "x" +
                       std::to_string(height) + " (scaling needs media/, not implemented here)");
  ++pos;  // the single whitespace after maxval
  const size_t need = size_t(w) * h * 3;
  if (pos > bytes.size() || bytes.size() - pos < need)
    return Corruption("frame '" + path + "': truncated pixel data");
  out->insert(out->end(), bytes.begin() + pos, bytes.begin() + pos + need);
  return Status::Ok();
}

}  // namespace

StatusOr<Clip> ReadClip(const std::string& path, int height, int width) {
  Clip clip;
  clip.height = height;
  clip.width = width;
  const size_t frame_bytes = size_t(height) * width * 3;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.path().extension() == ".ppm") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    if (files.empty()) return NotFound("clip '" + path + "': no .ppm frames in the folder");
    for (const auto& f : files) BILLNET_RETURN_IF_ERROR(ReadPpm(f, height, width, &clip.rgb));
    clip.frames = int(files.size());
    return clip;
  }
  BILLNET_ASSIGN_OR_RETURN(clip.rgb, ReadAll(path, 4ull << 30));
  if (clip.rgb.empty() || clip.rgb.size() % frame_bytes != 0)
    return InvalidArgument("clip '" + path + "': " + std::to_string(clip.rgb.size()) +
                           " bytes is not a whole number of " + std::to_string(width) + "x" +
                           std::to_string(height) + " rgb24 frames (" +
                           std::to_string(frame_bytes) + " bytes each)");
  clip.frames = int(clip.rgb.size() / frame_bytes);
  return clip;
}

std::vector<std::vector<uint8_t>> CutWindows(const Clip& clip, int frames,
                                             std::vector<int>* real_frames) {
  const size_t fb = size_t(clip.height) * clip.width * 3;
  std::vector<std::vector<uint8_t>> out;
  real_frames->clear();
  for (int start = 0; start < clip.frames; start += frames) {
    const int real = std::min(frames, clip.frames - start);
    std::vector<uint8_t> w(fb * frames);
    for (int i = 0; i < frames; ++i) {
      const int src = start + std::min(i, real - 1);
      std::copy_n(clip.rgb.begin() + fb * src, fb, w.begin() + fb * i);
    }
    out.push_back(std::move(w));
    real_frames->push_back(real);
  }
  return out;
}

Clip MovingDiscClip(int frames, int height, int width) {
  Clip c;
  c.frames = frames, c.height = height, c.width = width;
  c.rgb.resize(size_t(frames) * height * width * 3);
  const double r = 0.18 * height;
  for (int f = 0; f < frames; ++f) {
    const double cx = width * (0.85 - 0.7 * f / std::max(1, frames - 1)), cy = 0.5 * height;
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        uint8_t* p = &c.rgb[((size_t(f) * height + y) * width + x) * 3];
        const bool in = std::hypot(x - cx, y - cy) < r;
        const int g = 70 + 60 * y / height;
        p[0] = in ? 230 : g;
        p[1] = in ? 190 : g;
        p[2] = in ? 160 : g + 10;
      }
  }
  return c;
}

}  // namespace billnet
