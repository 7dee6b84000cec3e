// Demuxing and decoding of the best video stream of a container, from a file,
// URL, capture device, or a caller's ByteSource (custom AVIOContext).
//
// Any codec and container this FFmpeg decodes, any resolution and pixel format
// up to kMaxFramePixels. Audio and other streams are ignored.
//
// Timestamps: a frame's time in seconds is its best_effort_timestamp x the
// stream's time_base, as the container has it (not shifted to start at 0:
// MPEG-TS clips often start near 1.4 s). A frame without a timestamp gets the
// previous frame's + 1 / frame rate (the stream's average rate, else its
// real base rate, else 25), the first one 0.
//
// Errors: every failure is a Status naming the input and the step ("open",
// "find stream info", "decode", ...) with FFmpeg's av_strerror text; a
// ByteSource's own error is passed through with that context. Garbage,
// truncated or oversized input gives an error or a clean end, never a crash.
// After an error the decoder is finished: further calls repeat the error.
//
// Thread-safety: one thread drives a decoder; decoders are independent.
#ifndef BILLNET_MEDIA_DECODER_H_
#define BILLNET_MEDIA_DECODER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "billnet/media/byte_io.h"
#include "billnet/media/frame.h"
#include "billnet/status.h"

namespace billnet::media {

struct DecoderOptions {
  // Container short name ("mp4", "matroska", "mpegts", "nut", "v4l2", ...);
  // empty: probe the bytes. A name FFmpeg does not know is InvalidArgument.
  std::string format_hint;
  // How much input the prober may look at before the first frame: bytes and
  // microseconds. Small enough that a live stream starts within ~0.5 s of
  // video, large enough for every container we test.
  int64_t probesize = 1 << 20;
  int64_t analyzeduration_us = 500'000;
  int64_t max_pixels = kMaxFramePixels;
  // Decoder threads (1: the server decodes many streams, one per core).
  int threads = 1;
  // Size of the custom AVIO buffer for ByteSource input.
  int avio_buffer_size = 64 * 1024;
  // Extra demuxer options (e.g. {"video_size","640x480"} for raw input or
  // capture devices), passed to avformat_open_input.
  std::map<std::string, std::string> format_options;
};

// What the opened video stream says about itself (from the container and
// the first probe; individual frames may differ).
struct StreamInfo {
  std::string container;  // e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"
  std::string codec;      // e.g. "h264", "vp9", "ffv1", "rawvideo"
  std::string pixel_format;
  int width = 0, height = 0;
  double frame_rate = 0;  // average rate when known, else 0
  double start_time = 0;  // seconds; 0 when unknown
  double duration = 0;    // seconds; 0 when unknown
  int stream_index = -1;
};

class VideoDecoder {
 public:
  // Opens `url` (a file path, "file:..", a network URL, or with format_hint a
  // device such as "/dev/video0" for "v4l2").
  static StatusOr<std::unique_ptr<VideoDecoder>> Open(const std::string& url,
                                                      const DecoderOptions& options = {});
  // Opens a stream read from `source`, which must outlive the decoder. `name`
  // is used in error messages.
  static StatusOr<std::unique_ptr<VideoDecoder>> Open(ByteSource* source,
                                                      const DecoderOptions& options = {},
                                                      const std::string& name = "stream");
  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;

  const StreamInfo& info() const;

  // Decodes the next frame in presentation order into `frame` (replacing what
  // it held). Returns true with a frame, false at the end of the stream (the
  // decoder drained), or an error.
  StatusOr<bool> Next(DecodedFrame* frame);

  // Frames returned so far.
  int64_t frames_decoded() const;

  // Live catch-up: from the next call on, Next() discards what the codec
  // still holds and every packet of the video stream until a key frame whose
  // timestamp (pts, else dts, in seconds as above) is at or after
  // `not_before_s`, and decodes from that key frame. Packets are still read
  // (demuxed), not decoded. A later call replaces the target. Frames thrown
  // away this way (packets discarded plus frames the codec held) are counted
  // in frames_skipped(); a skip that reaches the end of the input ends the
  // stream as usual.
  void SkipToKeyFrame(double not_before_s);
  int64_t frames_skipped() const;

  // Frames nobody will use need not be decoded. Before a packet goes to the
  // codec, the decoder asks `wanted(previous_s, timestamp_s, next_s)` about
  // its frame: previous_s and next_s are the nearest timestamps before and
  // after it among recent packets the codec will certainly decode (-inf /
  // +inf when none is known). On false the codec discards the frame if no
  // other frame refers to it (AVDISCARD_NONREF on a non-reference frame), and
  // Next() never returns it; reference frames are decoded and returned
  // whatever the answer. ModelFrameStream::MayTake answers for the model's
  // resampler, so a 30 fps H.264 stream with B-frames read at 6 fps leaves
  // about 2 in 5 frames undecoded with the same model frames.
  //
  // Asked only for H.264, HEVC, MPEG-4 part 2 and MPEG-2 (other codecs: every
  // frame decoded), packets with a
  // timestamp that are not key frames, not between SkipToKeyFrame() and the
  // first frame returned after it, and never again once a returned frame's
  // timestamp is not its packet's pts (a stream whose pts FFmpeg corrects:
  // the neighbours above would not be the frames' timestamps).
  using FrameFilter = std::function<bool(double previous_s, double timestamp_s, double next_s)>;
  // An empty function removes the filter.
  void SetFrameFilter(FrameFilter wanted);
  // Frames the codec discarded on the filter's word (counted once the
  // decoder has returned a later frame or drained).
  int64_t frames_undecoded() const;

  class Impl;

 private:
  explicit VideoDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace billnet::media

#endif  // BILLNET_MEDIA_DECODER_H_
