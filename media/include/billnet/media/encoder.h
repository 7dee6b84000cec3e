// VideoEncoder: RGB24 frames -> an encoded, muxed video, to a file or to a
// ByteSink (custom AVIO write callback). Used by billnet-synth, the client
// (which streams what it encodes), the load generator and tests.
//
// Codecs: H.264 (libx264), MJPEG, FFV1, VP9 (libvpx-vp9), rawvideo.
// Containers (FFmpeg muxer names): "mp4", "matroska", "mpegts", "webm", "nut"
// (and any other muxer that accepts the codec).
//
// Colour: RGB is converted to the codec's YUV format with the BT.601 or BT.709
// matrix (limited range; full range for MJPEG), and the stream signals that
// matrix and range unless signal_color is false (then it signals nothing and
// decoders assume BT.601). RGB pixel formats (rgb24, gbrp) are stored as is.
//
// Streaming: on a non-seekable sink MP4 is written fragmented (empty moov,
// one fragment per key frame) and Matroska/WebM without an index; MPEG-TS
// and NUT are streamable anyway. faststart needs a file output.
//
// Errors: Status naming the output and the step, with av_strerror text.
// Ownership: the encoder owns every FFmpeg object; a sink must outlive it.
// Thread-safety: one thread per encoder.
#ifndef BILLNET_MEDIA_ENCODER_H_
#define BILLNET_MEDIA_ENCODER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "billnet/media/byte_io.h"
#include "billnet/status.h"

namespace billnet::media {

enum class VideoCodec { kH264, kMjpeg, kFfv1, kVp9, kRawVideo };
enum class ColorMatrix { kBt601, kBt709 };

// "h264", "mjpeg", "ffv1", "vp9", "rawvideo".
const char* VideoCodecName(VideoCodec codec);
StatusOr<VideoCodec> ParseVideoCodec(const std::string& name);

struct EncoderOptions {
  VideoCodec codec = VideoCodec::kH264;
  std::string container = "mp4";
  int width = 0, height = 0;  // of the frames passed to AddFrame
  double fps = 30;            // nominal rate; frame i is at i / fps by default
  // Time base of the stream's timestamps as 1 / time_base_den seconds; 0: the
  // frame rate (exact for integer rates). Set it (e.g. 1000) to give frames
  // explicit timestamps that are not multiples of 1 / fps.
  int time_base_den = 0;
  // Codec pixel format; empty: yuv420p (H.264, VP9), yuvj420p (MJPEG),
  // bgr0 (FFV1's lossless 8-bit RGB; FFmpeg 5.1's FFV1 has gbrp only from 9
  // bits up), rgb24 (rawvideo).
  std::string pixel_format;
  ColorMatrix matrix = ColorMatrix::kBt601;
  bool signal_color = true;

  // H.264: x264 preset and CRF; zerolatency (tune) disables B-frames and
  // lookahead; otherwise b_frames (x264's default 3 when -1).
  std::string h264_preset = "veryfast";
  bool zerolatency = false;
  int crf = 23;
  int b_frames = -1;
  // Key frame interval in frames (0: the codec's default, 250 for x264).
  int gop = 0;
  // MJPEG quality scale 2 (best) .. 31.
  int mjpeg_qscale = 3;
  // VP9: CRF 0-63 (lossless when vp9_lossless), realtime speed 8.
  int vp9_crf = 32;
  bool vp9_lossless = false;

  // Same input, same bytes: bit-exact muxing and coding flags (no random
  // Matroska segment id, no version strings), and on CPUs with AVX-512
  // x264 runs its AVX2 code (its AVX-512 kernels varied between runs on
  // identical input; the AVX2 output equals x264's C code, so it is the same
  // on every x86 machine).
  bool deterministic = true;

  bool faststart = false;  // MP4 file output only: moov before mdat
  int threads = 1;         // encoder threads
};

class VideoEncoder {
 public:
  static StatusOr<std::unique_ptr<VideoEncoder>> Open(const std::string& path,
                                                      const EncoderOptions& options);
  // `sink` must outlive the encoder; `name` appears in error messages.
  static StatusOr<std::unique_ptr<VideoEncoder>> Open(ByteSink* sink, const EncoderOptions& options,
                                                      const std::string& name = "memory");
  ~VideoEncoder();
  VideoEncoder(const VideoEncoder&) = delete;
  VideoEncoder& operator=(const VideoEncoder&) = delete;

  // Encodes one frame: height rows of width x 3 bytes, `stride_bytes` apart
  // (0: width * 3). `timestamp_s` defaults to frames_added() / fps; given
  // timestamps must increase by at least one time-base unit.
  Status AddFrame(const uint8_t* rgb, size_t stride_bytes = 0,
                  std::optional<double> timestamp_s = std::nullopt);

  // Drains the encoder and writes the trailer. Required for a complete file;
  // destroying an unfinished encoder frees everything and leaves whatever was
  // written so far (an incomplete file or sink contents).
  Status Finish();

  int64_t frames_added() const;

  class Impl;

 private:
  explicit VideoEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace billnet::media

#endif  // BILLNET_MEDIA_ENCODER_H_
