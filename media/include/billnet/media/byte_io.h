// Byte sources and sinks: where a decoder reads encoded video from and where an
// encoder writes it to, when that is not a file (DESIGN.md section 3: the
// server decodes gRPC chunks from memory through a custom AVIOContext).
//
// Ownership: a VideoDecoder / VideoEncoder opened on a source or sink holds a
// raw pointer to it; the caller keeps the object alive until the decoder or
// encoder is destroyed.
//
// Thread-safety: a source or sink is used by the one thread that drives its
// decoder or encoder. An implementation may block in Read() until more bytes
// arrive (e.g. fed by another thread); unblock it by returning 0 (end) or an
// error.
#ifndef BILLNET_MEDIA_BYTE_IO_H_
#define BILLNET_MEDIA_BYTE_IO_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "billnet/status.h"

namespace billnet::media {

class ByteSource {
 public:
  virtual ~ByteSource() = default;

  // Reads up to `size` (> 0) bytes into `data`. Returns the number read (> 0),
  // 0 at the end of the stream, or an error, which the decoder reports
  // unchanged (with where it happened as context).
  virtual StatusOr<size_t> Read(uint8_t* data, size_t size) = 0;

  // Random access, for containers that need it (MP4 with the index at the
  // end). A non-seekable source is read strictly forward.
  virtual bool seekable() const { return false; }
  // Total size in bytes, or -1 when unknown.
  virtual int64_t size() const { return -1; }
  // Moves the read position to `offset` bytes from the start.
  virtual Status Seek(int64_t offset) { return Unsupported("byte source is not seekable"); }
};

// A source over bytes in memory: borrowed from a span or an lvalue vector
// (the caller keeps them alive), or owned when a vector is moved in. Seekable
// unless constructed non-seekable, which tests use to behave like a network
// stream.
class MemoryByteSource : public ByteSource {
 public:
  explicit MemoryByteSource(std::span<const uint8_t> bytes, bool seekable = true)
      : bytes_(bytes), seekable_(seekable) {}
  explicit MemoryByteSource(std::vector<uint8_t>&& owned, bool seekable = true)
      : owned_(std::move(owned)), bytes_(owned_), seekable_(seekable) {}
  MemoryByteSource(const MemoryByteSource&) = delete;
  MemoryByteSource& operator=(const MemoryByteSource&) = delete;

  StatusOr<size_t> Read(uint8_t* data, size_t size) override;
  bool seekable() const override { return seekable_; }
  int64_t size() const override { return seekable_ ? static_cast<int64_t>(bytes_.size()) : -1; }
  Status Seek(int64_t offset) override;

  size_t position() const { return position_; }

 private:
  std::vector<uint8_t> owned_;
  std::span<const uint8_t> bytes_;
  bool seekable_;
  size_t position_ = 0;
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  // Writes all `size` bytes or fails.
  virtual Status Write(const uint8_t* data, size_t size) = 0;
  // Random access lets MP4 and Matroska write their index at the end; on a
  // non-seekable sink the encoder uses streamable variants (fragmented MP4).
  virtual bool seekable() const { return false; }
  virtual Status Seek(int64_t offset) { return Unsupported("byte sink is not seekable"); }
};

// A sink that collects the bytes in a vector (seekable unless told otherwise).
class MemoryByteSink : public ByteSink {
 public:
  explicit MemoryByteSink(bool seekable = true) : seekable_(seekable) {}

  Status Write(const uint8_t* data, size_t size) override;
  bool seekable() const override { return seekable_; }
  Status Seek(int64_t offset) override;

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> Take() { return std::move(bytes_); }

 private:
  std::vector<uint8_t> bytes_;
  size_t position_ = 0;
  bool seekable_;
};

// Whether `s` names a URL ("scheme://...": http, https, rtsp, rtmp, udp,
// srt, file, ...) rather than a file path.
bool IsUrl(std::string_view s);
// Whether a URL's scheme carries a live feed (rtsp, rtmp, udp, rtp, srt,
// tcp): no end to wait for and no going back.
bool IsLiveUrl(std::string_view url);

// A source over a URL through FFmpeg's protocols, read forward. Open fails
// naming the URL and FFmpeg's reason: NotFound when the resource cannot be
// had (HTTP 404, no such file, connection refused, no answer within
// `timeout_s`), Unsupported for a scheme this FFmpeg lacks.
class UrlByteSource : public ByteSource {
 public:
  static StatusOr<std::unique_ptr<UrlByteSource>> Open(const std::string& url,
                                                       double timeout_s = 10);
  ~UrlByteSource() override;
  UrlByteSource(const UrlByteSource&) = delete;
  UrlByteSource& operator=(const UrlByteSource&) = delete;

  StatusOr<size_t> Read(uint8_t* data, size_t size) override;

 private:
  UrlByteSource(std::string url, void* io) : url_(std::move(url)), io_(io) {}
  std::string url_;
  void* io_;  // AVIOContext (kept out of this header)
};

// Whole-file helpers (NotFound / Corruption with the path and errno text).
StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path);
Status WriteFileBytes(const std::string& path, std::span<const uint8_t> bytes);

}  // namespace billnet::media

#endif  // BILLNET_MEDIA_BYTE_IO_H_
