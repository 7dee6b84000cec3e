// FFmpeg glue shared by the media/ sources: RAII owners for every AV* object
// and the error -> Status mapping. Private to media/ (and white-box tests).
#ifndef BILLNET_MEDIA_AV_UTIL_H_
#define BILLNET_MEDIA_AV_UTIL_H_

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "billnet/media/frame.h"
#include "billnet/status.h"

namespace billnet::media::internal {

// av_strerror's text for `err`.
std::string AvErrorText(int err);
// "<where>: <av_strerror text>" with a code chosen from the error: ENOMEM ->
// ResourceExhausted, ENOENT/HTTP 404/ECONNREFUSED/EHOSTUNREACH/ENETUNREACH/
// ETIMEDOUT -> NotFound, *_NOT_FOUND/ENOSYS/PATCHWELCOME ->
// Unsupported, EINVAL -> InvalidArgument, anything else -> Corruption.
Status AvError(int err, const std::string& where);

struct AvPacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct AvCodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct SwsContextDeleter {
  void operator()(SwsContext* c) const { sws_freeContext(c); }
};
struct AvDictionaryDeleter {
  void operator()(AVDictionary* d) const { av_dict_free(&d); }
};
// A custom AVIOContext and its buffer (which FFmpeg may have reallocated).
struct AvioContextDeleter {
  void operator()(AVIOContext* io) const {
    if (io == nullptr) return;
    av_freep(&io->buffer);
    avio_context_free(&io);
  }
};
// An input format context (opened by avformat_open_input).
struct AvInputContextDeleter {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};

using AvPacketPtr = std::unique_ptr<AVPacket, AvPacketDeleter>;
using AvCodecContextPtr = std::unique_ptr<AVCodecContext, AvCodecContextDeleter>;
using SwsContextPtr = std::unique_ptr<SwsContext, SwsContextDeleter>;
using AvioContextPtr = std::unique_ptr<AVIOContext, AvioContextDeleter>;
using AvInputContextPtr = std::unique_ptr<AVFormatContext, AvInputContextDeleter>;

// An owned AVDictionary* (set with av_dict_set(&dict.ptr, ...)).
class AvDictionary {
 public:
  AvDictionary() = default;
  ~AvDictionary() { av_dict_free(&ptr); }
  AvDictionary(const AvDictionary&) = delete;
  AvDictionary& operator=(const AvDictionary&) = delete;
  AVDictionary* ptr = nullptr;
};

AvFramePtr MakeFrame();    // nullptr if out of memory
AvPacketPtr MakePacket();  // nullptr if out of memory

// YUV->RGB coefficients for swscale from a frame's colour signalling
// (converter.h documents the rule), and the source range (true = full).
int SwsColorspaceFor(AVColorSpace colorspace);

// The non-deprecated twin of a yuvj* format (yuvj420p -> yuv420p), else `f`.
AVPixelFormat UnJpegFormat(AVPixelFormat f, bool* was_jpeg = nullptr);

// swscale's SIMD readers may read past the end of a source row (and so past
// the end of a caller's tightly packed buffer). Copies `rows` rows of
// `row_bytes` from `src` (row pitch `src_stride`) into `buffer` with a
// 64-byte-aligned pitch and 64 bytes of slack after the last row; returns the
// copy's first byte and sets `*stride`.
inline const uint8_t* PaddedRows(const uint8_t* src, size_t src_stride, size_t row_bytes,
                                 int rows, std::vector<uint8_t>* buffer, int* stride) {
  const size_t pitch = (row_bytes + 63) / 64 * 64;
  buffer->resize(pitch * static_cast<size_t>(rows) + 64 + 64);
  uint8_t* base = buffer->data();
  base += (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
  for (int y = 0; y < rows; ++y)
    std::memcpy(base + pitch * y, src + src_stride * static_cast<size_t>(y), row_bytes);
  *stride = static_cast<int>(pitch);
  return base;
}

}  // namespace billnet::media::internal

#endif  // BILLNET_MEDIA_AV_UTIL_H_
