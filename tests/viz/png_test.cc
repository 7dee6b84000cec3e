// CRC-32 / Adler-32 known answers, deflate / inflate round trips and
// rejections, PNG encode / decode round trips, one hand-made broken file per
// IHDR field, corrupted and truncated files, the atomic file write.
#include "billnet/viz/png.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace billnet::viz {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// ---------------------------------------------------------------- checksums

TEST(VizChecksum, Crc32KnownAnswers) {
  EXPECT_EQ(Crc32(Bytes("123456789")), 0xCBF43926u);
  EXPECT_EQ(Crc32(Bytes("")), 0u);
  EXPECT_EQ(Crc32(Bytes("IEND")), 0xAE426082u);  // every PNG ends with these bytes
  EXPECT_EQ(Crc32(Bytes("6789"), Crc32(Bytes("12345"))), 0xCBF43926u);  // chaining
}

TEST(VizChecksum, Adler32KnownAnswers) {
  EXPECT_EQ(Adler32(Bytes("Wikipedia")), 0x11E60398u);
  EXPECT_EQ(Adler32(Bytes("")), 1u);
  EXPECT_EQ(Adler32(Bytes("pedia"), Adler32(Bytes("Wiki"))), 0x11E60398u);
  // Long input: the modulo must be taken before 32-bit overflow (zlib's NMAX).
  const std::vector<uint8_t> ff(100000, 0xFF);
  uint32_t a = 1, b = 0;
  for (uint8_t v : ff) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  EXPECT_EQ(Adler32(ff), (b << 16) | a);
}

// ---------------------------------------------------------------- zlib

TEST(VizZlib, RoundTripsStoredAndCompressed) {
  std::string text;
  for (int i = 0; i < 500; ++i) text += "gesture " + std::to_string(i % 27) + " swiping left; ";
  const std::vector<std::vector<uint8_t>> inputs = {
      {},
      {42},
      std::vector<uint8_t>(Bytes(text).begin(), Bytes(text).end()),
      RandomBytes(100000, 7),
      std::vector<uint8_t>(70000, 0),  // > one stored block of 65535
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (bool compress : {false, true}) {
      SCOPED_TRACE("input " + std::to_string(i) + " compress " + std::to_string(compress));
      const std::vector<uint8_t> z = ZlibCompress(inputs[i], compress);
      std::vector<uint8_t> back;
      ASSERT_EQ(ZlibDecompress(z, &back), "");
      EXPECT_EQ(back, inputs[i]);
    }
  }
}

TEST(VizZlib, CompressesRepetitiveDataWellAndRandomDataBarelyGrows) {
  const std::vector<uint8_t> zeros(1 << 20, 0);
  EXPECT_LT(ZlibCompress(zeros).size(), 4096u);
  const std::vector<uint8_t> noise = RandomBytes(1 << 16, 3);
  // Incompressible blocks fall back to stored: 5 bytes per block + 6 of zlib.
  EXPECT_LE(ZlibCompress(noise).size(), noise.size() + 64);
}

TEST(VizZlib, ChoosesTheCheapestBlockType) {
  auto first_block_type = [](const std::vector<uint8_t>& z) { return (z[2] >> 1) & 3; };
  const std::string tiny = "abcabcabc";
  EXPECT_EQ(first_block_type(ZlibCompress(Bytes(tiny))), 1);  // fixed Huffman
  std::string text;
  for (int i = 0; i < 300; ++i) text += "class " + std::to_string(i * 7 % 27) + " ";
  EXPECT_EQ(first_block_type(ZlibCompress(Bytes(text))), 2);           // dynamic Huffman
  EXPECT_EQ(first_block_type(ZlibCompress(RandomBytes(5000, 1))), 0);  // stored
  EXPECT_EQ(first_block_type(ZlibCompress(Bytes(text), /*compress=*/false)), 0);
}

TEST(VizZlib, InflatesADynamicHuffmanStreamFromZlib) {
  // zlib.compress(text, 9) by CPython's zlib 1.2.x: one dynamic-Huffman block.
  const std::vector<uint8_t> z = {
      0x78, 0xDA, 0x95, 0xD1, 0x4B, 0x0A, 0x80, 0x30, 0x0C, 0x04, 0xD0, 0xAB, 0xCC, 0x11,
      0x6C, 0xFD, 0xBB, 0xF4, 0x26, 0x82, 0x51, 0x82, 0xA5, 0x4A, 0x5B, 0x15, 0x3C, 0xBD,
      0x75, 0x61, 0xD7, 0xCD, 0x2E, 0x81, 0x47, 0x98, 0x24, 0x23, 0xDB, 0xC9, 0xF1, 0x43,
      0x33, 0x2E, 0x9E, 0x69, 0x87, 0xA5, 0x70, 0xEF, 0x6E, 0xF3, 0x03, 0x56, 0xF2, 0xE1,
      0x74, 0x84, 0x02, 0xFE, 0xE6, 0x83, 0xED, 0x0A, 0x43, 0x4B, 0xC0, 0x71, 0x1A, 0xF3,
      0x35, 0x91, 0x61, 0x89, 0x05, 0x39, 0x0F, 0xB6, 0x51, 0xFD, 0x5E, 0x65, 0x79, 0x95,
      0xBC, 0xCE, 0xF2, 0x55, 0xF2, 0x65, 0x96, 0xD7, 0xC9, 0x57, 0x42, 0x5F, 0x0B, 0xF3,
      0x34, 0xC2, 0x7D, 0x5B, 0xE1, 0x3D, 0x3B, 0xE1, 0xFC, 0x5E, 0x98, 0x5F, 0x15, 0xC2,
      0x03, 0xA9, 0xBC, 0x0F, 0xEB, 0x17, 0xDD, 0x8A, 0xD9, 0x8A};
  ASSERT_EQ((z[2] >> 1) & 3, 2);  // BTYPE: dynamic Huffman
  std::string text = "Binarized video networks: ";
  for (int i = 0; i < 12; ++i) {
    if (i > 0) text += " ";
    text += "gesture " + std::to_string(i) + " swiping left pulling two fingers in " +
            std::to_string(i * i % 7);
  }
  std::vector<uint8_t> out;
  ASSERT_EQ(ZlibDecompress(z, &out), "");
  EXPECT_EQ(std::string(out.begin(), out.end()), text);
}

TEST(VizZlib, RejectsBrokenStreams) {
  const std::vector<uint8_t> data = RandomBytes(3000, 11);
  std::vector<uint8_t> text(5000);
  for (size_t i = 0; i < text.size(); ++i) text[i] = "abcabd"[i % 6];
  std::vector<uint8_t> out;
  for (const auto& input : {data, text}) {
    const std::vector<uint8_t> z = ZlibCompress(input);
    // Every truncation fails cleanly.
    for (size_t n = 0; n < z.size(); ++n) {
      EXPECT_NE(ZlibDecompress(std::span<const uint8_t>(z.data(), n), &out), "") << n;
    }
    std::vector<uint8_t> bad = z;
    bad[1] ^= 1;  // header check
    EXPECT_NE(ZlibDecompress(bad, &out), "");
    bad = z;
    bad.back() ^= 1;  // Adler-32
    EXPECT_NE(ZlibDecompress(bad, &out).find("Adler-32"), std::string::npos);
    bad = z;
    bad.push_back(0);  // trailing garbage
    EXPECT_NE(ZlibDecompress(bad, &out).find("extra"), std::string::npos);
    // Output limit.
    EXPECT_NE(ZlibDecompress(z, &out, input.size() - 1).find("limit"), std::string::npos);
    EXPECT_EQ(ZlibDecompress(z, &out, input.size()), "");
  }
  // A stored block whose NLEN is not the complement of LEN.
  const std::vector<uint8_t> nlen = {0x78, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x41, 0, 0, 0, 0};
  EXPECT_NE(ZlibDecompress(nlen, &out).find("NLEN"), std::string::npos);
  // Block type 3.
  const std::vector<uint8_t> type3 = {0x78, 0x01, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_NE(ZlibDecompress(type3, &out).find("block type"), std::string::npos);
}

TEST(VizZlib, RandomCorruptionNeverCrashes) {
  std::vector<uint8_t> text(4000);
  for (size_t i = 0; i < text.size(); ++i)
    text[i] = static_cast<uint8_t>("hello gesture "[i % 14] + i / 500);
  const std::vector<uint8_t> z = ZlibCompress(text);
  const uint32_t seed = 1234;
  std::mt19937 rng(seed);
  std::vector<uint8_t> out;
  int failures = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<uint8_t> bad = z;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k)
      bad[2 + rng() % (bad.size() - 2)] ^= static_cast<uint8_t>(1u << (rng() % 8));
    failures += ZlibDecompress(bad, &out, 1 << 16) != "";
  }
  EXPECT_GT(failures, 2900) << "seed " << seed;  // the Adler-32 catches nearly all
}

// ---------------------------------------------------------------- PNG round trips

TEST(VizPng, RoundTripsRandomImagesOfOddSizes) {
  struct Case {
    int w, h, channels;
  };
  const Case cases[] = {{1, 1, 3}, {3, 7, 3},   {640, 480, 3}, {1, 1, 1},  {5, 3, 2},
                        {7, 2, 4}, {33, 17, 4}, {2, 9, 1},     {1, 40, 3}, {40, 1, 3}};
  uint32_t seed = 100;
  for (const Case& c : cases) {
    ++seed;
    const std::vector<uint8_t> pixels = RandomBytes(size_t(c.w) * c.h * c.channels, seed);
    const std::vector<uint8_t> png = EncodePng(pixels.data(), c.w, c.h, c.channels);
    const DecodedPng d = DecodePng(png);
    ASSERT_TRUE(d.ok()) << d.error << " seed " << seed;
    EXPECT_EQ(d.width, c.w);
    EXPECT_EQ(d.height, c.h);
    EXPECT_EQ(d.channels, c.channels);
    EXPECT_EQ(d.pixels, pixels) << c.w << "x" << c.h << "x" << c.channels << " seed " << seed;
  }
}

TEST(VizPng, RoundTripsEveryFilterAndStoredMode) {
  // A smooth image with noise, so every predictor sees non-trivial neighbours.
  const int w = 23, h = 11;
  for (int channels = 1; channels <= 4; ++channels) {
    std::vector<uint8_t> pixels(size_t(w) * h * channels);
    std::mt19937 rng(channels);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int ch = 0; ch < channels; ++ch)
          pixels[(size_t(y) * w + x) * channels + ch] =
              static_cast<uint8_t>(x * 9 + y * 5 + ch * 60 + rng() % 7);
    for (PngFilter f : {PngFilter::kNone, PngFilter::kSub, PngFilter::kUp, PngFilter::kAverage,
                        PngFilter::kPaeth, PngFilter::kAdaptive}) {
      for (bool compress : {true, false}) {
        SCOPED_TRACE("channels " + std::to_string(channels) + " filter " +
                     std::to_string(static_cast<int>(f)) + " compress " + std::to_string(compress));
        const DecodedPng d = DecodePng(EncodePng(pixels.data(), w, h, channels, {f, compress}));
        ASSERT_TRUE(d.ok()) << d.error;
        EXPECT_EQ(d.pixels, pixels);
      }
    }
  }
}

TEST(VizPng, FlatImagesComeOutSmall) {
  const int w = 640, h = 480;
  std::vector<uint8_t> pixels(size_t(w) * h * 3, 255);
  for (int x = 0; x < w; ++x) {  // a few lines, like a chart
    for (int y : {100, 200, 300}) pixels[(size_t(y) * w + x) * 3] = 0;
  }
  const std::vector<uint8_t> png = EncodePng(pixels.data(), w, h);
  EXPECT_LT(png.size(), 6000u);
  EXPECT_EQ(DecodePng(png).pixels, pixels);
}

TEST(VizPng, EncodeRejectsInvalidArguments) {
  const std::vector<uint8_t> px(64, 0);
  EXPECT_TRUE(EncodePng(nullptr, 1, 1).empty());
  EXPECT_TRUE(EncodePng(px.data(), 0, 1).empty());
  EXPECT_TRUE(EncodePng(px.data(), 1, -1).empty());
  EXPECT_TRUE(EncodePng(px.data(), 1, 1, 5).empty());
  EXPECT_TRUE(EncodePng(px.data(), kMaxPngDimension + 1, 1).empty());
}

// ---------------------------------------------------------------- hand-made files

// A 2x2 grayscale PNG written byte by byte: one stored deflate block holding
// two rows (filter 0) of pixels {0x00, 0xFF} and {0x80, 0x40}.
const std::vector<uint8_t> kTinyPng = {
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A,  // signature
    0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,  // IHDR, 13 bytes
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02,  // width 2, height 2
    0x08, 0x00, 0x00, 0x00, 0x00,  // depth 8, gray, deflate, filter 0, no interlace
    0x57, 0xDD, 0x52, 0xF8,        // CRC
    0x00, 0x00, 0x00, 0x11, 0x49, 0x44, 0x41, 0x54,  // IDAT, 17 bytes
    0x78, 0x01,                                      // zlib header
    0x01, 0x06, 0x00, 0xF9, 0xFF,                    // final stored block, LEN 6, NLEN
    0x00, 0x00, 0xFF, 0x00, 0x80, 0x40,              // the two rows
    0x05, 0x42, 0x01, 0xC0,                          // Adler-32
    0x79, 0xE9, 0x09, 0xC4,                          // CRC
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44,  // IEND
    0xAE, 0x42, 0x60, 0x82,                          // CRC
};

TEST(VizPng, DecodesAHandMadeFile) {
  const DecodedPng d = DecodePng(kTinyPng);
  ASSERT_TRUE(d.ok()) << d.error;
  EXPECT_EQ(d.width, 2);
  EXPECT_EQ(d.height, 2);
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.pixels, (std::vector<uint8_t>{0x00, 0xFF, 0x80, 0x40}));
}

void AppendChunk(std::vector<uint8_t>* out, const std::string& type,
                 const std::vector<uint8_t>& data) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<uint8_t>(data.size() >> s));
  std::vector<uint8_t> body(type.begin(), type.end());
  body.insert(body.end(), data.begin(), data.end());
  out->insert(out->end(), body.begin(), body.end());
  const uint32_t crc = Crc32(body);
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<uint8_t>(crc >> s));
}

struct Ihdr {
  uint32_t width = 3, height = 2;
  uint8_t depth = 8, color = 2, compression = 0, filter = 0, interlace = 0;
};

// A PNG with valid CRCs around the given header fields and scanlines.
std::vector<uint8_t> MakePng(const Ihdr& h, const std::vector<uint8_t>& scanlines,
                             const std::vector<uint8_t>& palette = {}, bool iend = true) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  for (uint32_t v : {h.width, h.height})
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<uint8_t>(v >> s));
  ihdr.insert(ihdr.end(), {h.depth, h.color, h.compression, h.filter, h.interlace});
  AppendChunk(&png, "IHDR", ihdr);
  if (!palette.empty()) AppendChunk(&png, "PLTE", palette);
  AppendChunk(&png, "IDAT", ZlibCompress(scanlines));
  if (iend) AppendChunk(&png, "IEND", {});
  return png;
}

// Two rows of a 3x2 RGB image, filter byte 0.
std::vector<uint8_t> RgbScanlines() {
  std::vector<uint8_t> s;
  for (int y = 0; y < 2; ++y) {
    s.push_back(0);
    for (int i = 0; i < 9; ++i) s.push_back(static_cast<uint8_t>(y * 100 + i));
  }
  return s;
}

TEST(VizPng, HandMadeHelperProducesAValidFile) {
  const DecodedPng d = DecodePng(MakePng({}, RgbScanlines()));
  ASSERT_TRUE(d.ok()) << d.error;
  EXPECT_EQ(d.pixels[9], 100);
}

TEST(VizPng, RejectsEachBrokenHeaderField) {
  const std::vector<uint8_t> rows = RgbScanlines();
  struct Broken {
    const char* what;
    Ihdr h;
    const char* expect;
  };
  std::vector<Broken> cases;
  Ihdr h;
  h.width = 0;
  cases.push_back({"width 0", h, "size"});
  h = {};
  h.height = 0;
  cases.push_back({"height 0", h, "size"});
  h = {};
  h.width = 1u << 31;
  cases.push_back({"huge width", h, "size"});
  h = {};
  h.depth = 16;
  cases.push_back({"depth 16", h, "bit depth"});
  h = {};
  h.color = 5;
  cases.push_back({"colour type 5", h, "colour type"});
  h = {};
  h.compression = 1;
  cases.push_back({"compression 1", h, "compression"});
  h = {};
  h.filter = 1;
  cases.push_back({"filter method 1", h, "filter method"});
  h = {};
  h.interlace = 1;
  cases.push_back({"interlaced", h, "interlaced"});
  h = {};
  h.width = 4;  // the data holds 3 pixels per row
  cases.push_back({"width mismatch", h, "IDAT"});
  for (const Broken& b : cases) {
    const DecodedPng d = DecodePng(MakePng(b.h, rows));
    EXPECT_FALSE(d.ok()) << b.what;
    EXPECT_NE(d.error.find(b.expect), std::string::npos) << b.what << ": " << d.error;
  }
}

TEST(VizPng, RejectsStructuralDamage) {
  const std::vector<uint8_t> rows = RgbScanlines();
  auto expect_error = [](const std::vector<uint8_t>& png, const std::string& what) {
    const DecodedPng d = DecodePng(png);
    EXPECT_FALSE(d.ok()) << what;
    EXPECT_NE(d.error.find(what), std::string::npos) << d.error;
  };
  expect_error(MakePng({}, rows, {}, /*iend=*/false), "no IEND");
  std::vector<uint8_t> bad_filter = rows;
  bad_filter[10] = 5;  // filter type of row 1
  expect_error(MakePng({}, bad_filter), "filter type 5");
  // Palette image without PLTE, and with an index beyond the palette.
  Ihdr pal;
  pal.color = 3;
  const std::vector<uint8_t> idx = {0, 0, 1, 2, 0, 2, 1, 0};
  expect_error(MakePng(pal, idx), "PLTE");
  expect_error(MakePng(pal, idx, {255, 0, 0, 0, 255, 0}), "palette index 2");
  const DecodedPng ok = DecodePng(MakePng(pal, idx, {255, 0, 0, 0, 255, 0, 0, 0, 255}));
  ASSERT_TRUE(ok.ok()) << ok.error;
  EXPECT_EQ(ok.channels, 3);
  EXPECT_EQ(ok.pixels, (std::vector<uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255,  //
                                             0, 0, 255, 0, 255, 0, 255, 0, 0}));
  // Unknown critical chunk before IEND.
  std::vector<uint8_t> png = MakePng({}, rows, {}, false);
  AppendChunk(&png, "ZZZZ", {1, 2});
  AppendChunk(&png, "IEND", {});
  expect_error(png, "critical chunk 'ZZZZ'");
  // An unknown ancillary chunk is skipped.
  png = MakePng({}, rows, {}, false);
  AppendChunk(&png, "tEXt", {'a', 0, 'b'});
  AppendChunk(&png, "IEND", {});
  EXPECT_TRUE(DecodePng(png).ok());
  // Bad signature; the first chunk not IHDR.
  png = MakePng({}, rows);
  png[1] = 'Q';
  expect_error(png, "signature");
  png = MakePng({}, rows);
  std::vector<uint8_t> no_ihdr(png.begin(), png.begin() + 8);
  AppendChunk(&no_ihdr, "IEND", {});
  expect_error(no_ihdr, "not IHDR");
  // A chunk length running past the end.
  png = MakePng({}, rows);
  png[8] = 0x7F;
  expect_error(png, "runs past the end");
  // Pixel budget.
  const DecodedPng big = DecodePng(MakePng({}, rows), /*max_pixel_bytes=*/17);
  EXPECT_NE(big.error.find("limit"), std::string::npos) << big.error;
}

TEST(VizPng, RejectsCorruptedCrc) {
  std::mt19937 rng(5);
  std::vector<uint8_t> pixels = RandomBytes(13 * 11 * 3, 5);
  const std::vector<uint8_t> png = EncodePng(pixels.data(), 13, 11);
  ASSERT_TRUE(DecodePng(png).ok());
  // A bit flipped in the IHDR data, the IDAT data, or a CRC itself.
  for (size_t at : {size_t{18}, size_t{42}, size_t{30}, png.size() - 1}) {
    std::vector<uint8_t> bad = png;
    bad[at] ^= 0x10;
    const DecodedPng d = DecodePng(bad);
    EXPECT_FALSE(d.ok()) << at;
    EXPECT_NE(d.error.find("CRC mismatch"), std::string::npos) << at << ": " << d.error;
  }
}

TEST(VizPng, RejectsEveryTruncation) {
  const std::vector<uint8_t> pixels = RandomBytes(13 * 11 * 3, 6);
  const std::vector<uint8_t> png = EncodePng(pixels.data(), 13, 11);
  for (size_t n = 0; n < png.size(); ++n) {
    const DecodedPng d = DecodePng(std::span<const uint8_t>(png.data(), n));
    EXPECT_FALSE(d.ok()) << "prefix of " << n << " bytes";
    EXPECT_TRUE(d.pixels.empty());
  }
}

// ---------------------------------------------------------------- files

TEST(VizPng, WritesAtomicallyAndReadsBack) {
  const std::filesystem::path dir = std::filesystem::path(testing::TempDir()) / "viz_png_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::vector<uint8_t> pixels = RandomBytes(31 * 9 * 4, 8);
  const std::string path = (dir / "a.png").string();
  ASSERT_EQ(WritePng(path, pixels.data(), 31, 9, 4), "");
  ASSERT_EQ(WritePng(path, pixels.data(), 31, 9, 4), "");  // replaces
  const DecodedPng d = ReadPng(path);
  ASSERT_TRUE(d.ok()) << d.error;
  EXPECT_EQ(d.channels, 4);
  EXPECT_EQ(d.pixels, pixels);
  // Only the file itself is left (no temporary files).
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);

  const std::string missing = (dir / "no" / "such" / "dir.png").string();
  const std::string err = WritePng(missing, pixels.data(), 31, 9, 4);
  EXPECT_NE(err.find(missing), std::string::npos) << err;
  EXPECT_NE(WritePng(path, pixels.data(), 0, 9), "");
  EXPECT_FALSE(ReadPng(missing).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace billnet::viz
