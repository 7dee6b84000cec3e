// PNG container: row filters, chunks, the atomic file write, and the decoder.
#include "billnet/viz/png.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

namespace billnet::viz {
namespace {

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
constexpr size_t kIdatChunkBytes = size_t{1} << 16;

// PNG colour type for 1..4 interleaved 8-bit channels, and back.
constexpr uint8_t kColorTypeOfChannels[5] = {0, 0, 4, 2, 6};

int ChannelsOfColorType(int color_type) {
  switch (color_type) {
    case 0:
      return 1;
    case 2:
      return 3;
    case 3:
      return 1;  // palette index
    case 4:
      return 2;
    case 6:
      return 4;
    default:
      return 0;
  }
}

void PutU32(std::vector<uint8_t>* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<uint8_t>(v >> shift));
}

uint32_t GetU32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

void PutChunk(std::vector<uint8_t>* out, const char type[4], std::span<const uint8_t> data) {
  PutU32(out, static_cast<uint32_t>(data.size()));
  const size_t type_at = out->size();
  out->insert(out->end(), type, type + 4);
  out->insert(out->end(), data.begin(), data.end());
  PutU32(out, Crc32(std::span<const uint8_t>(out->data() + type_at, 4 + data.size())));
}

uint8_t Paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return static_cast<uint8_t>(a);
  if (pb <= pc) return static_cast<uint8_t>(b);
  return static_cast<uint8_t>(c);
}

// The PNG predictor of filter `type` (0 none, 1 sub, 2 up, 3 average, 4 Paeth)
// from the left (a), upper (b) and upper-left (c) bytes.
int Predict(int type, int a, int b, int c) {
  switch (type) {
    case 1:
      return a;
    case 2:
      return b;
    case 3:
      return (a + b) >> 1;
    case 4:
      return Paeth(a, b, c);
    default:
      return 0;
  }
}

// Filters one row of `n` bytes with filter `type` into `dst`; `prev` is the
// previous (unfiltered) row or null for the first row; `bpp` bytes per pixel.
void FilterRow(int type, const uint8_t* row, const uint8_t* prev, size_t n, int bpp, uint8_t* dst) {
  for (size_t i = 0; i < n; ++i) {
    const int a = i >= static_cast<size_t>(bpp) ? row[i - bpp] : 0;
    const int b = prev ? prev[i] : 0;
    const int c = prev && i >= static_cast<size_t>(bpp) ? prev[i - bpp] : 0;
    const int pred = Predict(type, a, b, c);
    dst[i] = static_cast<uint8_t>(row[i] - pred);
  }
}

// Inverse of FilterRow, in place. Returns false for an unknown filter type.
bool UnfilterRow(int type, uint8_t* row, const uint8_t* prev, size_t n, int bpp) {
  if (type < 0 || type > 4) return false;
  for (size_t i = 0; i < n; ++i) {
    const int a = i >= static_cast<size_t>(bpp) ? row[i - bpp] : 0;
    const int b = prev ? prev[i] : 0;
    const int c = prev && i >= static_cast<size_t>(bpp) ? prev[i - bpp] : 0;
    const int pred = Predict(type, a, b, c);
    row[i] = static_cast<uint8_t>(row[i] + pred);
  }
  return true;
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

std::string TempPathFor(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const uint64_t salt =
      std::hash<std::thread::id>{}(std::this_thread::get_id()) ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  char buf[64];
  std::snprintf(buf, sizeof buf, ".tmp-%016llx-%llu", static_cast<unsigned long long>(salt),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return path + buf;
}

DecodedPng Fail(std::string message) {
  DecodedPng d;
  d.error = "png: " + std::move(message);
  return d;
}

}  // namespace

std::vector<uint8_t> EncodePng(const uint8_t* pixels, int width, int height, int channels,
                               const PngOptions& options) {
  if (!pixels || width < 1 || height < 1 || width > kMaxPngDimension || height > kMaxPngDimension ||
      channels < 1 || channels > 4) {
    return {};
  }
  const size_t stride = static_cast<size_t>(width) * channels;
  std::vector<uint8_t> filtered(static_cast<size_t>(height) * (stride + 1));
  std::vector<uint8_t> trial(stride);
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = pixels + stride * y;
    const uint8_t* prev = y > 0 ? row - stride : nullptr;
    uint8_t* dst = filtered.data() + (stride + 1) * y;
    if (options.filter != PngFilter::kAdaptive) {
      dst[0] = static_cast<uint8_t>(options.filter);
      FilterRow(dst[0], row, prev, stride, channels, dst + 1);
      continue;
    }
    // Smallest sum of |filtered byte as signed| wins (the PNG spec's heuristic).
    uint64_t best = UINT64_MAX;
    for (int type = 0; type <= 4; ++type) {
      FilterRow(type, row, prev, stride, channels, trial.data());
      uint64_t cost = 0;
      for (uint8_t v : trial) cost += v < 128 ? v : 256 - v;
      if (cost < best) {
        best = cost;
        dst[0] = static_cast<uint8_t>(type);
        std::copy(trial.begin(), trial.end(), dst + 1);
      }
    }
  }
  const std::vector<uint8_t> z = ZlibCompress(filtered, options.compress);

  std::vector<uint8_t> out(std::begin(kSignature), std::end(kSignature));
  out.reserve(z.size() + 64 + z.size() / kIdatChunkBytes * 12);
  std::vector<uint8_t> ihdr;
  PutU32(&ihdr, static_cast<uint32_t>(width));
  PutU32(&ihdr, static_cast<uint32_t>(height));
  ihdr.push_back(8);  // bit depth
  ihdr.push_back(kColorTypeOfChannels[channels]);
  ihdr.push_back(0);  // compression: deflate
  ihdr.push_back(0);  // filter method 0
  ihdr.push_back(0);  // no interlace
  PutChunk(&out, "IHDR", ihdr);
  for (size_t at = 0; at < z.size(); at += kIdatChunkBytes) {
    const size_t n = std::min(kIdatChunkBytes, z.size() - at);
    PutChunk(&out, "IDAT", std::span<const uint8_t>(z.data() + at, n));
  }
  PutChunk(&out, "IEND", {});
  return out;
}

std::string WritePng(const std::string& path, const uint8_t* pixels, int width, int height,
                     int channels, const PngOptions& options) {
  const std::vector<uint8_t> png = EncodePng(pixels, width, height, channels, options);
  if (png.empty()) {
    return "png '" + path + "': invalid image (" + std::to_string(width) + "x" +
           std::to_string(height) + ", " + std::to_string(channels) + " channels" +
           (pixels ? "" : ", no pixels") + ")";
  }
  const std::string tmp = TempPathFor(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return "png '" + path + "': cannot create the temporary file '" + tmp + "'";
  const bool wrote = std::fwrite(png.data(), 1, png.size(), f) == png.size();
  const bool closed = std::fclose(f) == 0;
  std::error_code ec;
  if (!wrote || !closed) {
    std::filesystem::remove(tmp, ec);
    return "png '" + path + "': writing " + std::to_string(png.size()) + " bytes failed";
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    return "png '" + path + "': rename from the temporary file failed: " + ec.message();
  }
  return "";
}

DecodedPng DecodePng(std::span<const uint8_t> png, size_t max_pixel_bytes) {
  if (png.size() < 8 || !std::equal(std::begin(kSignature), std::end(kSignature), png.begin())) {
    return Fail("not a PNG file (bad signature)");
  }
  size_t pos = 8;
  bool have_ihdr = false, have_iend = false;
  uint32_t width = 0, height = 0;
  int color_type = 0;
  std::vector<uint8_t> palette;  // RGB triples
  std::vector<uint8_t> idat;
  while (!have_iend) {
    if (png.size() - pos < 12) {
      return Fail("truncated at offset " + std::to_string(pos) + " (expected a chunk; no IEND)");
    }
    const uint32_t length = GetU32(&png[pos]);
    const uint8_t* type = &png[pos + 4];
    const std::string name(reinterpret_cast<const char*>(type), 4);
    if (length > png.size() - pos - 12) {
      return Fail("chunk '" + name + "' at offset " + std::to_string(pos) + ": length " +
                  std::to_string(length) + " runs past the end of the file (" +
                  std::to_string(png.size() - pos - 12) + " bytes left)");
    }
    for (int k = 0; k < 4; ++k) {
      const uint8_t ch = type[k];
      if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'))) {
        return Fail("chunk at offset " + std::to_string(pos) + ": invalid type bytes");
      }
    }
    const uint8_t* data = type + 4;
    const uint32_t stored_crc = GetU32(data + length);
    const uint32_t crc = Crc32(std::span<const uint8_t>(type, 4 + size_t{length}));
    if (crc != stored_crc) {
      return Fail("chunk '" + name + "' at offset " + std::to_string(pos) +
                  ": CRC mismatch (stored " + Hex32(stored_crc) + ", computed " + Hex32(crc) + ")");
    }
    if (!have_ihdr && name != "IHDR") return Fail("the first chunk is '" + name + "', not IHDR");
    if (name == "IHDR") {
      if (have_ihdr) return Fail("a second IHDR chunk");
      if (length != 13) return Fail("IHDR length " + std::to_string(length) + ", expected 13");
      have_ihdr = true;
      width = GetU32(data);
      height = GetU32(data + 4);
      const int depth = data[8];
      color_type = data[9];
      if (width == 0 || height == 0 || width > kMaxPngDimension || height > kMaxPngDimension) {
        return Fail("IHDR: size " + std::to_string(width) + "x" + std::to_string(height) +
                    " outside 1.." + std::to_string(kMaxPngDimension));
      }
      if (ChannelsOfColorType(color_type) == 0) {
        return Fail("IHDR: invalid colour type " + std::to_string(color_type));
      }
      if (depth != 8) {
        return Fail("IHDR: bit depth " + std::to_string(depth) + " is not supported (only 8)");
      }
      if (data[10] != 0)
        return Fail("IHDR: unknown compression method " + std::to_string(data[10]));
      if (data[11] != 0) return Fail("IHDR: unknown filter method " + std::to_string(data[11]));
      if (data[12] != 0) return Fail("IHDR: interlaced images are not supported");
    } else if (name == "PLTE") {
      if (length == 0 || length % 3 != 0 || length > 768) {
        return Fail("PLTE length " + std::to_string(length) + " is not 3..768 in steps of 3");
      }
      palette.assign(data, data + length);
    } else if (name == "IDAT") {
      idat.insert(idat.end(), data, data + length);
    } else if (name == "IEND") {
      have_iend = true;
    } else if ((type[0] & 0x20) == 0) {
      return Fail("unknown critical chunk '" + name + "'");
    }  // else: ancillary, skipped
    pos += 12 + size_t{length};
  }
  if (idat.empty()) return Fail("no IDAT chunk");
  if (color_type == 3 && palette.empty()) return Fail("palette image without PLTE");

  const int file_channels = ChannelsOfColorType(color_type);
  const int out_channels = color_type == 3 ? 3 : file_channels;
  const size_t stride = size_t{width} * file_channels;
  const size_t raw_size = (stride + 1) * height;
  const size_t pixel_bytes = size_t{width} * height * out_channels;
  if (pixel_bytes > max_pixel_bytes) {
    return Fail("image " + std::to_string(width) + "x" + std::to_string(height) + " needs " +
                std::to_string(pixel_bytes) + " bytes, above the limit of " +
                std::to_string(max_pixel_bytes));
  }
  std::vector<uint8_t> raw;
  if (std::string e = ZlibDecompress(idat, &raw, raw_size); !e.empty()) {
    return Fail("IDAT: " + e);
  }
  if (raw.size() != raw_size) {
    return Fail("IDAT: " + std::to_string(raw.size()) + " bytes of image data, expected " +
                std::to_string(raw_size));
  }
  DecodedPng d;
  d.width = static_cast<int>(width);
  d.height = static_cast<int>(height);
  d.channels = out_channels;
  std::vector<uint8_t> rows(stride * height);
  for (uint32_t y = 0; y < height; ++y) {
    const uint8_t* src = raw.data() + (stride + 1) * y;
    uint8_t* row = rows.data() + stride * y;
    std::copy(src + 1, src + 1 + stride, row);
    if (!UnfilterRow(src[0], row, y > 0 ? row - stride : nullptr, stride, file_channels)) {
      return Fail("row " + std::to_string(y) + ": unknown filter type " + std::to_string(src[0]));
    }
  }
  if (color_type != 3) {
    d.pixels = std::move(rows);
    return d;
  }
  d.pixels.resize(pixel_bytes);
  const size_t entries = palette.size() / 3;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] >= entries) {
      return Fail("pixel " + std::to_string(i) + ": palette index " + std::to_string(rows[i]) +
                  " beyond the " + std::to_string(entries) + " entries");
    }
    std::copy_n(&palette[rows[i] * size_t{3}], 3, &d.pixels[i * 3]);
  }
  return d;
}

DecodedPng ReadPng(const std::string& path, size_t max_pixel_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail("cannot open '" + path + "'");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad()) return Fail("reading '" + path + "' failed");
  DecodedPng d = DecodePng(bytes, max_pixel_bytes);
  if (!d.ok()) d.error = "png '" + path + "': " + d.error.substr(5);  // drop "png: "
  return d;
}

}  // namespace billnet::viz
