#include "billnet/media/byte_io.h"

#include "av_util.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

namespace billnet::media {

StatusOr<size_t> MemoryByteSource::Read(uint8_t* data, size_t size) {
  const size_t n = std::min(size, bytes_.size() - position_);
  if (n > 0) std::memcpy(data, bytes_.data() + position_, n);
  position_ += n;
  return n;
}

Status MemoryByteSource::Seek(int64_t offset) {
  if (!seekable_) return Unsupported("memory source opened as not seekable");
  if (offset < 0 || static_cast<uint64_t>(offset) > bytes_.size()) {
    return InvalidArgument("seek to " + std::to_string(offset) + " outside 0.." +
                           std::to_string(bytes_.size()));
  }
  position_ = static_cast<size_t>(offset);
  return Status::Ok();
}

Status MemoryByteSink::Write(const uint8_t* data, size_t size) {
  if (position_ + size > bytes_.size()) bytes_.resize(position_ + size);
  if (size > 0) std::memcpy(bytes_.data() + position_, data, size);
  position_ += size;
  return Status::Ok();
}

Status MemoryByteSink::Seek(int64_t offset) {
  if (!seekable_) return Unsupported("memory sink opened as not seekable");
  if (offset < 0 || offset > static_cast<int64_t>(std::numeric_limits<uint32_t>::max())) {
    return InvalidArgument("seek to " + std::to_string(offset));
  }
  position_ = static_cast<size_t>(offset);
  if (position_ > bytes_.size()) bytes_.resize(position_);
  return Status::Ok();
}

namespace {
struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
}  // namespace

StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    const int err = errno;
    const std::string text = "'" + path + "': " + std::strerror(err);
    return err == ENOENT ? NotFound(text) : Corruption(text);
  }
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0) out.insert(out.end(), buf, buf + n);
  if (std::ferror(f.get())) return Corruption("'" + path + "': read error");
  return out;
}

Status WriteFileBytes(const std::string& path, std::span<const uint8_t> bytes) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  if (!f) return InvalidArgument("'" + path + "': " + std::strerror(errno));
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    return ResourceExhausted("'" + path + "': write failed: " + std::strerror(errno));
  }
  if (std::fclose(f.release()) != 0) {
    return ResourceExhausted("'" + path + "': close failed: " + std::strerror(errno));
  }
  return Status::Ok();
}

bool IsUrl(std::string_view s) {
  const size_t colon = s.find("://");
  if (colon == std::string_view::npos || colon == 0) return false;
  if (!std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (size_t i = 1; i < colon; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

bool IsLiveUrl(std::string_view url) {
  if (!IsUrl(url)) return false;
  std::string scheme(url.substr(0, url.find("://")));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* live : {"rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "srt", "tcp"})
    if (scheme == live) return true;
  return false;
}

StatusOr<std::unique_ptr<UrlByteSource>> UrlByteSource::Open(const std::string& url,
                                                               double timeout_s) {
  AVDictionary* raw = nullptr;
  const std::string us = std::to_string(static_cast<int64_t>(timeout_s * 1e6));
  av_dict_set(&raw, "rw_timeout", us.c_str(), 0);
  av_dict_set(&raw, "timeout", us.c_str(), 0);
  std::unique_ptr<AVDictionary, internal::AvDictionaryDeleter> options(raw);
  AVIOContext* io = nullptr;
  raw = options.release();
  const int err = avio_open2(&io, url.c_str(), AVIO_FLAG_READ, nullptr, &raw);
  options.reset(raw);
  if (err < 0) {
    return internal::AvError(err, "opening " + url);
  }
  return std::unique_ptr<UrlByteSource>(new UrlByteSource(url, io));
}

UrlByteSource::~UrlByteSource() {
  AVIOContext* io = static_cast<AVIOContext*>(io_);
  avio_closep(&io);
}

StatusOr<size_t> UrlByteSource::Read(uint8_t* data, size_t size) {
  const int want = static_cast<int>(std::min<size_t>(size, std::numeric_limits<int>::max()));
  const int n = avio_read(static_cast<AVIOContext*>(io_), data, want);
  if (n == AVERROR_EOF || n == 0) return size_t{0};
  if (n < 0) return internal::AvError(n, "reading " + url_);
  return static_cast<size_t>(n);
}

}  // namespace billnet::media
