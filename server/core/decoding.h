// The input side of a stream: the bytes a client sends (ChunkQueue, a
// blocking ByteSource fed by the gRPC layer), and the decoder that reads them,
// behind a small interface so tests can inject failing decoders (STYLE.md).
#ifndef BILLNET_SERVER_CORE_DECODING_H_
#define BILLNET_SERVER_CORE_DECODING_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "billnet/media/byte_io.h"
#include "billnet/media/decoder.h"
#include "billnet/media/frame.h"
#include "billnet/status.h"

namespace billnet::server {

using Clock = std::chrono::steady_clock;

// Frames in presentation order from one stream's bytes.
class FrameDecoder {
 public:
  virtual ~FrameDecoder() = default;
  // true with a frame, false at the end, or an error (after which the decoder
  // is finished).
  virtual StatusOr<bool> Next(media::DecodedFrame* frame) = 0;
  // Live catch-up (media::VideoDecoder::SkipToKeyFrame): the following Next()
  // calls discard input up to a key frame at or after `not_before_s`. A
  // decoder that cannot skip ignores it (the default).
  virtual void SkipToKeyFrame(double not_before_s) {}
  // Source frames discarded by skips so far.
  virtual int64_t frames_skipped() const { return 0; }
  // media::VideoDecoder::SetFrameFilter; a decoder that cannot leave frames
  // undecoded ignores it (the default).
  virtual void SetFrameFilter(media::VideoDecoder::FrameFilter wanted) {}
  // Frames left undecoded on the filter's word so far.
  virtual int64_t frames_undecoded() const { return 0; }
};

class DecoderFactory {
 public:
  virtual ~DecoderFactory() = default;
  // `source` outlives the decoder.
  virtual StatusOr<std::unique_ptr<FrameDecoder>> Open(media::ByteSource* source,
                                                       const media::DecoderOptions& options,
                                                       const std::string& name) = 0;
};

// FFmpeg through media::VideoDecoder.
std::shared_ptr<DecoderFactory> MakeFfmpegDecoderFactory();

// A bounded queue of received chunks, read by the decoder as a non-seekable
// ByteSource.
//
// Producer (the transport): Push() always takes the chunk (it is already in
// memory) and says whether there is room for more; when it says no, the
// producer stops reading from the network until the space callback runs
// (flow control: a fast client is slowed down, memory stays bounded by
// max_bytes + one message). PushBlocking() waits for room instead.
// Close() is the end of the input (half-close); Abort() breaks it.
//
// Consumer (the decoder's thread): Read() blocks until bytes arrive, the
// input ends (0) or breaks (the abort's error), or nothing arrives for
// `idle_timeout` (then idle_expired() is true and Read fails). A read returns
// bytes of one chunk at most: it takes the chunk under the lock and copies
// from it without (space is given back when a chunk is taken).
class ChunkQueue : public media::ByteSource {
 public:
  ChunkQueue(size_t max_bytes, std::chrono::milliseconds idle_timeout);

  bool Push(std::string chunk);
  // false if the queue was closed or aborted meanwhile (the chunk is dropped).
  bool PushBlocking(std::string chunk);
  void Close();
  void Abort(Status reason);
  // Called (on the consumer's thread, without locks held) when a Push that
  // returned false has room again.
  void SetSpaceCallback(std::function<void()> callback);

  StatusOr<size_t> Read(uint8_t* data, size_t size) override;

  bool idle_expired() const;
  bool closed() const;
  int64_t bytes_received() const;
  // Total time Read() spent waiting for bytes (excluded from decode time).
  std::chrono::nanoseconds blocked() const;

 private:
  const size_t max_bytes_;
  const std::chrono::milliseconds idle_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  size_t bytes_ = 0;  // queued, not yet taken by the consumer
  // The consumer's chunk: taken from chunks_ under mu_, copied out without
  // it (a decode thread at low priority holds mu_ only to take a chunk, so a
  // transport thread pushing to this stream never waits behind its copy).
  std::string reading_;
  size_t reading_offset_ = 0;
  std::atomic<bool> aborted_{false};  // Abort() was called: Read takes the locked path
  bool closed_ = false;
  bool want_space_ = false;
  bool idle_expired_ = false;
  Status abort_;
  int64_t received_ = 0;
  std::chrono::nanoseconds blocked_{0};
  std::function<void()> space_callback_;
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_DECODING_H_
