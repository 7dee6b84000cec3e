// What `stream` sends: the bytes of one connection's Stream call, and what a
// reconnect resends (DESIGN.md section 3, state tokens).
//
//   PassthroughUplink  the file's bytes untouched; a reconnect resends them
//                      from the start (the server decodes and discards the
//                      frames the token covers).
//   PacedPassthroughUplink  the file's packets remuxed into Matroska, paced
//                      by their timestamps (--passthrough --realtime).
//   EncodingUplink     source (file, lavfi graph, capture device) -> decoder
//                      -> media::ModelFrameStream -> encoder (Matroska), frame
//                      by frame as the writer asks; model frame n is sent at
//                      n / fps. Frames not yet covered by an acknowledged
//                      window are kept (RGB), so a reconnect re-encodes from
//                      the frame the token covers with the original
//                      timestamps.
//
// Thread-safety: Begin/Next from the writer thread (one connection at a
// time); Ack/SentAt/Stop from the reader thread.
#ifndef BILLNET_CLIENT_SRC_UPLINK_H_
#define BILLNET_CLIENT_SRC_UPLINK_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "billnet/media/byte_io.h"
#include "billnet/media/decoder.h"
#include "billnet/media/encoder.h"
#include "billnet/media/pipeline.h"
#include "billnet/media/remux.h"
#include "billnet/status.h"

namespace billnet::client {

// Seconds to wait before sending a frame at source time `ts` when the frame
// at `origin_ts` was sent at wall time `origin_wall` and it is now `now`
// (0 when late).
double PacingDelay(double origin_wall, double origin_ts, double now, double ts);

// Paces frames by their timestamps (--realtime) against an injected clock.
class Pacer {
 public:
  using Clock = std::function<double()>;              // seconds, monotonic
  using Sleep = std::function<bool(double seconds)>;  // false: interrupted
  Pacer(Clock clock, Sleep sleep) : clock_(std::move(clock)), sleep_(std::move(sleep)) {}

  // Waits until source time `ts` is due; the first call after construction
  // or Rebase() only sets the origin. Returns false if the sleep was
  // interrupted.
  bool Wait(double ts);
  // The next Wait starts a new origin (after a reconnect: no burst to catch
  // up with the outage).
  void Rebase() { has_origin_ = false; }

 private:
  Clock clock_;
  Sleep sleep_;
  bool has_origin_ = false;
  double origin_wall_ = 0, origin_ts_ = 0;
};

class Uplink {
 public:
  virtual ~Uplink() = default;
  // Starts the bytes of a new connection. covered_ts < 0: from the start;
  // else resume after a window whose last source timestamp was covered_ts.
  virtual Status Begin(double covered_ts) = 0;
  // The next chunk (at most max_bytes); false at the end of the source.
  virtual StatusOr<bool> Next(size_t max_bytes, std::string* chunk) = 0;
  // A window whose last frame is at source time last_ts arrived.
  virtual void Ack(double last_ts) { (void)last_ts; }
  // Seconds (steady clock) since the frame at last_ts was handed to the
  // writer, if known (the client's round trip).
  virtual std::optional<double> SinceSent(double last_ts) const {
    (void)last_ts;
    return std::nullopt;
  }
  // Interrupts a pacing wait (the call ended).
  virtual void Stop() {}
};

class PassthroughUplink : public Uplink {
 public:
  // Reads `path` (a file, a FIFO or a URL: media::IsUrl, opened with
  // `timeout_s`) as the writer asks. Every byte read is kept: a reconnect
  // resends them from the first.
  explicit PassthroughUplink(std::string path, double timeout_s = 10)
      : path_(std::move(path)), timeout_s_(timeout_s) {}
  Status Begin(double) override;
  StatusOr<bool> Next(size_t max_bytes, std::string* chunk) override;

 private:
  std::string path_;
  double timeout_s_;
  std::unique_ptr<std::ifstream> in_;
  std::unique_ptr<media::ByteSource> url_;
  bool eof_ = false;
  std::string bytes_;  // read so far
  size_t offset_ = 0;  // sent on this connection
};

// --passthrough --realtime on a file: the file remuxed once, without
// re-encoding, into Matroska (media::RemuxLooped, one pass), its bytes sent
// packet by packet when a live encoder would have emitted each (the packet's
// send time). A reconnect resends from the start: packets whose presentation
// time the token covers go out at once, pacing resumes after them.
class PacedPassthroughUplink : public Uplink {
 public:
  // An error names the file (NotFound when missing). `clock` and `sleep`
  // replace the steady clock and the interruptible sleep (tests).
  static StatusOr<std::unique_ptr<PacedPassthroughUplink>> Open(const std::string& path,
                                                                Pacer::Clock clock = {},
                                                                Pacer::Sleep sleep = {});
  Status Begin(double covered_ts) override;
  StatusOr<bool> Next(size_t max_bytes, std::string* chunk) override;
  void Stop() override;

  const media::LoopedVideo& video() const { return video_; }

 private:
  PacedPassthroughUplink(media::LoopedVideo video, Pacer::Clock clock, Pacer::Sleep sleep);
  bool Sleep(double seconds);

  media::LoopedVideo video_;
  Pacer pacer_;
  double covered_ts_ = -1;
  size_t next_packet_ = 0;  // the next packet to release
  size_t released_ = 0;     // bytes released (up to a packet's end)
  size_t offset_ = 0;       // bytes sent on this connection
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

struct SourceSpec {
  std::string url;     // what FFmpeg opens
  std::string format;  // input format (lavfi, v4l2, ...); empty: probe
  std::map<std::string, std::string> format_options;
  std::string name;  // for messages
};

struct EncodingOptions {
  media::ModelTarget target;
  media::VideoCodec codec = media::VideoCodec::kFfv1;
  int64_t max_frames = -1;  // model frames; -1: the whole source
  bool realtime = false;
  // A capture device: after a reconnect its timestamps are shifted so that the
  // model timeline continues without the outage's gap (frames captured
  // meanwhile are lost, as in any live stream).
  bool live = false;
};

class EncodingUplink : public Uplink {
 public:
  // Opens the source (the decoder); an error names the source.
  static StatusOr<std::unique_ptr<EncodingUplink>> Open(const SourceSpec& source,
                                                        const EncodingOptions& options);
  ~EncodingUplink() override;

  Status Begin(double covered_ts) override;
  StatusOr<bool> Next(size_t max_bytes, std::string* chunk) override;
  void Ack(double last_ts) override;
  std::optional<double> SinceSent(double last_ts) const override;
  void Stop() override;

  int64_t source_frames() const { return decoder_->frames_decoded(); }
  int64_t model_frames() const { return next_index_; }
  // Frames kept for a resume (tests).
  size_t kept_frames() const;

 private:
  struct Kept {
    int64_t index;
    std::vector<uint8_t> rgb;
    std::chrono::steady_clock::time_point sent;
  };
  EncodingUplink(const SourceSpec& source, const EncodingOptions& options,
                 std::unique_ptr<media::VideoDecoder> decoder);
  Status Encode(int64_t index, const uint8_t* rgb);
  // Decodes until at least one new model frame was encoded or the source ends.
  Status Produce();
  bool Sleep(double seconds);

  SourceSpec source_;
  EncodingOptions options_;
  std::unique_ptr<media::VideoDecoder> decoder_;
  media::ModelFrameStream frames_;
  Pacer pacer_;
  std::unique_ptr<media::MemoryByteSink> sink_;
  std::unique_ptr<media::VideoEncoder> encoder_;
  std::string pending_;
  int64_t next_index_ = 0;  // the next new model frame's index
  int64_t replay_ = 0;      // the next kept frame to resend
  bool source_done_ = false;
  bool finished_ = false;   // encoder trailer written
  bool rebase_ts_ = false;  // live: close the gap at the next frame
  double ts_offset_ = 0;    // live: subtracted from source timestamps
  double last_source_ts_ = 0;
  bool has_source_ts_ = false;
  int connections_ = 0;

  mutable std::mutex mu_;  // kept_, stop_
  std::condition_variable cv_;
  std::deque<Kept> kept_;
  bool stop_ = false;
};

}  // namespace billnet::client

#endif  // BILLNET_CLIENT_SRC_UPLINK_H_
