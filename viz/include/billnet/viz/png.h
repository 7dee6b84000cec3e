// PNG encoding and decoding, standard library only (own CRC-32, Adler-32,
// deflate and inflate), so every part of the project can write images on a
// machine that has nothing but a compiler (and libtorch for the trainer).
//
// Pixels are 8 bits per sample, row-major, interleaved, no row padding:
// channels 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).
//
// The encoder filters each row with the best of PNG's five filters (smallest
// sum of absolute differences) and compresses with deflate: LZ77 over a 32 KiB
// window (hash chains) and, per block, whichever of stored, fixed-Huffman or
// dynamic-Huffman coding is smallest. Charts (large flat areas) come out small.
//
// The decoder is meant for tests and tools that check images they wrote: it
// reads non-interlaced 8-bit PNGs of colour types 0, 2, 3 (expanded to RGB),
// 4 and 6 (tRNS and other ancillary chunks are skipped), checks every chunk
// CRC, the zlib header and Adler-32, and rejects anything else with an error
// message. Every count and offset is checked
// against the bytes remaining before anything is allocated; it never crashes
// on malformed input.
//
// Thread-safety: every function is reentrant; results are plain values owned
// by the caller. Errors are returned as strings (empty on success), never
// thrown.
#ifndef BILLNET_VIZ_PNG_H_
#define BILLNET_VIZ_PNG_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace billnet::viz {

// CRC-32 (ISO-HDLC, as PNG and zip use it). Chain calls by passing the previous
// result as `crc`: Crc32(b, Crc32(a)) == Crc32(a followed by b).
// Crc32("123456789") == 0xCBF43926.
uint32_t Crc32(std::span<const uint8_t> data, uint32_t crc = 0);

// Adler-32 (zlib's checksum); chain calls like Crc32. Adler32("Wikipedia") ==
// 0x11E60398.
uint32_t Adler32(std::span<const uint8_t> data, uint32_t adler = 1);

// A zlib stream (RFC 1950/1951) of `data`. With `compress` false the stream
// uses stored blocks only.
std::vector<uint8_t> ZlibCompress(std::span<const uint8_t> data, bool compress = true);

// Inflates a zlib stream into `*out` (replacing its contents). Stored, fixed and
// dynamic Huffman blocks; the Adler-32 is checked. Fails (and leaves `*out`
// unspecified) when the stream is malformed, truncated, followed by extra bytes,
// or would inflate beyond `max_output` bytes. Returns "" on success.
std::string ZlibDecompress(std::span<const uint8_t> stream, std::vector<uint8_t>* out,
                           size_t max_output = size_t{1} << 30);

// Row filter choice for EncodePng (PNG filter types 0..4, or per-row best).
enum class PngFilter { kNone = 0, kSub, kUp, kAverage, kPaeth, kAdaptive };

struct PngOptions {
  PngFilter filter = PngFilter::kAdaptive;
  bool compress = true;  // false: stored deflate blocks only (fast, large)
};

// Largest width or height EncodePng accepts and DecodePng reads.
inline constexpr int kMaxPngDimension = 1 << 16;

// Encodes width x height pixels of `channels` (1..4) samples each, read from
// `pixels` (width * height * channels bytes, not retained). Returns the PNG
// file's bytes, or an empty vector when width or height is outside
// 1..kMaxPngDimension, channels outside 1..4, or pixels is null.
std::vector<uint8_t> EncodePng(const uint8_t* pixels, int width, int height, int channels = 3,
                               const PngOptions& options = {});

// EncodePng, then writes the file atomically: the bytes go to a temporary file
// beside `path`, which is renamed over `path` only when complete, so readers
// never see a partial image (not fsync'ed: a power loss may lose the file).
// Returns "" on success, else a message naming the path and the failure.
std::string WritePng(const std::string& path, const uint8_t* pixels, int width, int height,
                     int channels = 3, const PngOptions& options = {});

// A decoded image, or the reason decoding failed.
struct DecodedPng {
  int width = 0, height = 0;
  int channels = 0;             // 1, 2, 3 or 4 (palette images come out as 3)
  std::vector<uint8_t> pixels;  // width * height * channels bytes, row-major
  std::string error;            // empty on success
  bool ok() const { return error.empty(); }
};

// Decodes a PNG file's bytes (see the header comment for what is supported).
// Images with more than `max_pixel_bytes` of pixel data are rejected.
DecodedPng DecodePng(std::span<const uint8_t> png, size_t max_pixel_bytes = size_t{1} << 30);

// Reads and decodes the file at `path`.
DecodedPng ReadPng(const std::string& path, size_t max_pixel_bytes = size_t{1} << 30);

}  // namespace billnet::viz

#endif  // BILLNET_VIZ_PNG_H_
