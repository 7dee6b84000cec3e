// A decoded video frame (an owned reference to an FFmpeg AVFrame) and the
// limits every media/ component enforces.
//
// Ownership: a DecodedFrame owns one reference to its AVFrame's buffers
// (refcounted by FFmpeg); Clone() adds a reference without copying pixels.
// Thread-safety: a DecodedFrame is a value; distinct frames are independent
// (clones share read-only pixel buffers, which is safe).
#ifndef BILLNET_MEDIA_FRAME_H_
#define BILLNET_MEDIA_FRAME_H_

#include <cstdint>
#include <memory>
#include <string>

#include "billnet/status.h"

struct AVFrame;  // FFmpeg's; include <libavutil/frame.h> to look inside

namespace billnet::media {

// DESIGN.md section 3: frames up to 8K are accepted, above 64 megapixels
// refused (ResourceExhausted, naming the size).
inline constexpr int64_t kMaxFramePixels = 64LL * 1000 * 1000;
// Any single dimension above this is refused too (FFmpeg's own limit is
// higher; no camera or codec we serve comes near it).
inline constexpr int kMaxFrameDimension = 32768;

// OK when width x height is a frame size media/ accepts.
Status CheckFrameSize(int width, int height, int64_t max_pixels = kMaxFramePixels);

struct AvFrameDeleter {
  void operator()(AVFrame* frame) const;
};
using AvFramePtr = std::unique_ptr<AVFrame, AvFrameDeleter>;

class DecodedFrame {
 public:
  DecodedFrame();  // empty (no AVFrame)
  DecodedFrame(AvFramePtr frame, double timestamp_s);
  DecodedFrame(DecodedFrame&&) noexcept;
  DecodedFrame& operator=(DecodedFrame&&) noexcept;
  ~DecodedFrame();

  bool empty() const { return frame_ == nullptr; }
  int width() const;
  int height() const;
  // FFmpeg's name of the pixel format ("yuv420p", "rgb24", ...).
  const char* pixel_format_name() const;
  // Presentation time in seconds (section 2.5: best_effort_timestamp x
  // time_base; see VideoDecoder for frames without one).
  double timestamp() const { return timestamp_; }
  void set_timestamp(double t) { timestamp_ = t; }

  // A new reference to the same pixels (no copy). ResourceExhausted if FFmpeg
  // cannot allocate the frame header.
  StatusOr<DecodedFrame> Clone() const;

  // The underlying frame; owned by this object.
  AVFrame* av_frame() { return frame_.get(); }
  const AVFrame* av_frame() const { return frame_.get(); }

  // Wraps an RGB24 image (copied) as a frame, full range, no colour matrix.
  static StatusOr<DecodedFrame> FromRgb24(const uint8_t* rgb, int width, int height,
                                          size_t stride_bytes, double timestamp_s);

 private:
  AvFramePtr frame_;
  double timestamp_ = 0;
};

// FFmpeg's log verbosity for the whole process (FFmpeg logs to stderr).
enum class LogLevel { kQuiet, kError, kWarning, kInfo };
void SetLogLevel(LogLevel level);

}  // namespace billnet::media

#endif  // BILLNET_MEDIA_FRAME_H_
