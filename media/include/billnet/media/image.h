// Single-image helpers: JPEG encode, JPEG/PNG/BMP decode (the Jester layout
// stores each clip as a folder of JPEG frames).
//
// Decoded images are DecodedFrames in the codec's own pixel format (JPEG:
// yuvj420p/yuvj444p..., full range), so they go through the same
// FrameConverter as video frames. Errors: Corruption with the decoder's text
// for bad data, Unsupported for an unknown image signature. Reentrant: each
// call uses its own codec context.
#ifndef BILLNET_MEDIA_IMAGE_H_
#define BILLNET_MEDIA_IMAGE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "billnet/media/frame.h"
#include "billnet/status.h"

namespace billnet::media {

// Encodes an RGB24 image (rows `stride_bytes` apart, 0: width * 3) as a
// baseline JPEG, 4:2:0, BT.601 full range (JFIF), quality scale 2 (best)..31.
StatusOr<std::vector<uint8_t>> EncodeJpeg(const uint8_t* rgb, int width, int height,
                                          size_t stride_bytes = 0, int qscale = 2);

// Decodes one JPEG, PNG or BMP image (chosen by its signature). The frame's
// timestamp is 0.
StatusOr<DecodedFrame> DecodeImage(std::span<const uint8_t> bytes);
StatusOr<DecodedFrame> ReadImageFile(const std::string& path);

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height x width x 3
};
// Converts a frame to RGB24 at its own size (same colour rules as
// FrameConverter, no crop, no scale).
StatusOr<RgbImage> ToRgb24(const DecodedFrame& frame);

}  // namespace billnet::media

#endif  // BILLNET_MEDIA_IMAGE_H_
