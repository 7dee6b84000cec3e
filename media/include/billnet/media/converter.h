// FrameConverter: any decoded frame -> the model's RGB frame (DESIGN.md 2.5).
// The one piece of code the trainer's readers, the server and the client use.
//
//  1. Centre crop to the target's aspect ratio (CenterCrop below): the largest
//     centred rectangle of the target's width:height, on the full frame.
//  2. Area scaling (swscale SWS_AREA) of that rectangle to width x height,
//     rgb24 output. swscale runs bit-exact (SWS_BITEXACT | SWS_ACCURATE_RND),
//     so every CPU gives the same bytes.
//  3. YUV -> RGB by the matrix the frame signals (AVFrame::colorspace): BT.709,
//     BT.601 (BT470BG / SMPTE 170M), SMPTE 240M, FCC, BT.2020; BT.601 when it
//     signals none (unspecified, reserved, or one swscale lacks, e.g. YCgCo).
//     Range from AVFrame::color_range: full for "jpeg"/"pc" (and the yuvj*
//     formats), limited otherwise. Grey formats are full range unless they
//     signal limited. RGB inputs are copied as they are.
//
// A frame already at the target size in rgb24 is copied byte for byte.
//
// Chroma: for 4:2:x inputs cropped at an odd offset the chroma planes start at
// offset/2 (rounded down), as FFmpeg's own cropping does: every pixel format
// gets the same crop rectangle. Packed subsampled formats (yuyv422 ...) crop at
// an even x offset instead.
//
// Ownership/thread-safety: a converter owns its cached SwsContext (one per
// input format, size, matrix and range; rebuilt when they change) and is used
// by one thread at a time. Create one per stream or worker thread.
//
// Errors: InvalidArgument for an empty frame or a bad size; Unsupported for a
// pixel format swscale cannot read (e.g. hardware frames); ResourceExhausted
// for a frame above kMaxFramePixels.
#ifndef BILLNET_MEDIA_CONVERTER_H_
#define BILLNET_MEDIA_CONVERTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "billnet/media/frame.h"
#include "billnet/status.h"

namespace billnet::media {

struct CropRect {
  int x = 0, y = 0, width = 0, height = 0;
  bool operator==(const CropRect&) const = default;
};

// The centred crop of an in_width x in_height frame to out_width:out_height:
// the full height and width = round(in_height * out_width / out_height) when
// the frame is wider than the target, else the full width and height =
// round(in_width * out_height / out_width); the offset is (excess) / 2,
// rounded down. A frame of the target's aspect is not cropped.
CropRect CenterCrop(int in_width, int in_height, int out_width, int out_height);

class FrameConverter {
 public:
  // Target size of every output frame (e.g. 128 x 96). Both in [1, 32768].
  FrameConverter(int width, int height);
  ~FrameConverter();
  FrameConverter(FrameConverter&&) noexcept;
  FrameConverter& operator=(FrameConverter&&) noexcept;

  int width() const { return width_; }
  int height() const { return height_; }
  size_t frame_bytes() const { return static_cast<size_t>(width_) * height_ * 3; }

  // Converts `frame` into `out` (frame_bytes() bytes: rows of width x RGB).
  Status Convert(const DecodedFrame& frame, uint8_t* out);

  // Same for an RGB24 image (e.g. the synthetic renderer's frames):
  // `stride_bytes` between rows (>= width * 3).
  Status ConvertRgb24(const uint8_t* rgb, int width, int height, size_t stride_bytes, uint8_t* out);

 private:
  struct Cache;
  int width_, height_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace billnet::media

#endif  // BILLNET_MEDIA_CONVERTER_H_
