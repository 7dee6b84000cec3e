#include "billnet/media/frame.h"

#include <cstring>

#include "av_util.h"

extern "C" {
#include <libavutil/log.h>
}

namespace billnet::media {

Status CheckFrameSize(int width, int height, int64_t max_pixels) {
  if (width <= 0 || height <= 0) {
    return InvalidArgument("frame size " + std::to_string(width) + "x" + std::to_string(height) +
                           " is not positive");
  }
  const int64_t pixels = static_cast<int64_t>(width) * height;
  if (width > kMaxFrameDimension || height > kMaxFrameDimension || pixels > max_pixels) {
    char mp[32];
    std::snprintf(mp, sizeof(mp), "%.1f", pixels / 1e6);
    return ResourceExhausted("frame " + std::to_string(width) + "x" + std::to_string(height) +
                             " (" + mp + " megapixels) exceeds the limit of " +
                             std::to_string(max_pixels / 1000000) + " megapixels and " +
                             std::to_string(kMaxFrameDimension) + " pixels per side");
  }
  return Status::Ok();
}

void AvFrameDeleter::operator()(AVFrame* frame) const { av_frame_free(&frame); }

DecodedFrame::DecodedFrame() = default;
DecodedFrame::DecodedFrame(AvFramePtr frame, double timestamp_s)
    : frame_(std::move(frame)), timestamp_(timestamp_s) {}
DecodedFrame::DecodedFrame(DecodedFrame&&) noexcept = default;
DecodedFrame& DecodedFrame::operator=(DecodedFrame&&) noexcept = default;
DecodedFrame::~DecodedFrame() = default;

int DecodedFrame::width() const { return frame_ ? frame_->width : 0; }
int DecodedFrame::height() const { return frame_ ? frame_->height : 0; }

const char* DecodedFrame::pixel_format_name() const {
  if (!frame_) return "none";
  const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame_->format));
  return name != nullptr ? name : "unknown";
}

StatusOr<DecodedFrame> DecodedFrame::Clone() const {
  if (!frame_) return DecodedFrame();
  AvFramePtr copy(av_frame_clone(frame_.get()));
  if (!copy) return ResourceExhausted("av_frame_clone: out of memory");
  return DecodedFrame(std::move(copy), timestamp_);
}

StatusOr<DecodedFrame> DecodedFrame::FromRgb24(const uint8_t* rgb, int width, int height,
                                               size_t stride_bytes, double timestamp_s) {
  BILLNET_RETURN_IF_ERROR(CheckFrameSize(width, height));
  if (stride_bytes == 0) stride_bytes = static_cast<size_t>(width) * 3;
  if (rgb == nullptr || stride_bytes < static_cast<size_t>(width) * 3) {
    return InvalidArgument("FromRgb24: null pixels or stride below width * 3");
  }
  AvFramePtr f = internal::MakeFrame();
  if (!f) return ResourceExhausted("av_frame_alloc: out of memory");
  f->format = AV_PIX_FMT_RGB24;
  f->width = width;
  f->height = height;
  f->color_range = AVCOL_RANGE_JPEG;
  f->colorspace = AVCOL_SPC_RGB;
  if (int err = av_frame_get_buffer(f.get(), 0); err < 0) {
    return internal::AvError(err, "FromRgb24: av_frame_get_buffer");
  }
  for (int y = 0; y < height; ++y) {
    std::memcpy(f->data[0] + static_cast<ptrdiff_t>(y) * f->linesize[0], rgb + y * stride_bytes,
                static_cast<size_t>(width) * 3);
  }
  return DecodedFrame(std::move(f), timestamp_s);
}

void SetLogLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kQuiet:
      av_log_set_level(AV_LOG_QUIET);
      break;
    case LogLevel::kError:
      av_log_set_level(AV_LOG_ERROR);
      break;
    case LogLevel::kWarning:
      av_log_set_level(AV_LOG_WARNING);
      break;
    case LogLevel::kInfo:
      av_log_set_level(AV_LOG_INFO);
      break;
  }
}

}  // namespace billnet::media
