#include "billnet/media/converter.h"

#include <cstring>
#include <vector>

#include "av_util.h"

namespace billnet::media {

using internal::SwsContextPtr;

CropRect CenterCrop(int in_width, int in_height, int out_width, int out_height) {
  CropRect r{0, 0, in_width, in_height};
  if (in_width <= 0 || in_height <= 0 || out_width <= 0 || out_height <= 0) return r;
  const int64_t lhs = static_cast<int64_t>(in_width) * out_height;
  const int64_t rhs = static_cast<int64_t>(in_height) * out_width;
  if (lhs > rhs) {  // wider than the target: keep the height
    const int64_t w = (2 * static_cast<int64_t>(in_height) * out_width + out_height) /
                      (2 * static_cast<int64_t>(out_height));
    r.width = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(w, in_width)));
    r.x = (in_width - r.width) / 2;
  } else if (lhs < rhs) {  // taller: keep the width
    const int64_t h = (2 * static_cast<int64_t>(in_width) * out_height + out_width) /
                      (2 * static_cast<int64_t>(out_width));
    r.height = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(h, in_height)));
    r.y = (in_height - r.height) / 2;
  }
  return r;
}

namespace {

// Exact, CPU-independent arithmetic: the trainer, the server and the client
// must produce the same bytes from the same frame.
constexpr int kSwsFlags = SWS_AREA | SWS_ACCURATE_RND | SWS_BITEXACT | SWS_FULL_CHR_H_INT;

struct SwsKey {
  AVPixelFormat format = AV_PIX_FMT_NONE;
  int width = 0, height = 0;
  int colorspace = -1;
  int full_range = -1;
  bool operator==(const SwsKey&) const = default;
};

}  // namespace

struct FrameConverter::Cache {
  SwsKey key;
  SwsContextPtr sws;
  // Formats that cannot be cropped by pointer offsets (bit-packed, Bayer) go
  // through a full-size RGB24 copy first.
  SwsKey full_key;
  SwsContextPtr full_sws;
  std::vector<uint8_t> full_rgb;
};

FrameConverter::FrameConverter(int width, int height)
    : width_(width), height_(height), cache_(std::make_unique<Cache>()) {}
FrameConverter::~FrameConverter() = default;
FrameConverter::FrameConverter(FrameConverter&&) noexcept = default;
FrameConverter& FrameConverter::operator=(FrameConverter&&) noexcept = default;

namespace {

// Gets (or rebuilds) the cached context for `key` scaling to out_w x out_h.
Status GetContext(SwsKey key, int out_w, int out_h, int flags, bool yuv_details, SwsKey* cached,
                  SwsContextPtr* sws) {
  if (*sws && *cached == key) return Status::Ok();
  sws->reset(sws_getContext(key.width, key.height, key.format, out_w, out_h, AV_PIX_FMT_RGB24,
                            flags, nullptr, nullptr, nullptr));
  if (!*sws) {
    *cached = SwsKey{};
    const char* name = av_get_pix_fmt_name(key.format);
    return Unsupported(std::string("swscale cannot convert ") + (name ? name : "?") + " " +
                       std::to_string(key.width) + "x" + std::to_string(key.height) + " to rgb24 " +
                       std::to_string(out_w) + "x" + std::to_string(out_h));
  }
  if (yuv_details) {
    // Source: the signalled matrix and range; destination: full-range RGB.
    sws_setColorspaceDetails(sws->get(), sws_getCoefficients(key.colorspace), key.full_range,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
  }
  *cached = key;
  return Status::Ok();
}

Status CheckTarget(int width, int height) {
  if (width < 1 || height < 1 || width > kMaxFrameDimension || height > kMaxFrameDimension) {
    return InvalidArgument("converter target " + std::to_string(width) + "x" +
                           std::to_string(height) + " is out of range");
  }
  return Status::Ok();
}

}  // namespace

Status FrameConverter::ConvertRgb24(const uint8_t* rgb, int width, int height, size_t stride_bytes,
                                    uint8_t* out) {
  BILLNET_RETURN_IF_ERROR(CheckTarget(width_, height_));
  BILLNET_RETURN_IF_ERROR(CheckFrameSize(width, height));
  if (stride_bytes == 0) stride_bytes = static_cast<size_t>(width) * 3;
  if (rgb == nullptr || out == nullptr || stride_bytes < static_cast<size_t>(width) * 3) {
    return InvalidArgument("ConvertRgb24: null buffer or stride below width * 3");
  }
  const size_t row = static_cast<size_t>(width_) * 3;
  if (width == width_ && height == height_) {
    for (int y = 0; y < height; ++y) std::memcpy(out + y * row, rgb + y * stride_bytes, row);
    return Status::Ok();
  }
  const CropRect c = CenterCrop(width, height, width_, height_);
  BILLNET_RETURN_IF_ERROR(GetContext(SwsKey{AV_PIX_FMT_RGB24, c.width, c.height, 0, 1}, width_,
                                     height_, kSwsFlags, false, &cache_->key, &cache_->sws));
  std::vector<uint8_t> padded_rgb;
  int padded_stride = 0;
  const uint8_t* padded =
      internal::PaddedRows(rgb + static_cast<size_t>(c.y) * stride_bytes + c.x * 3, stride_bytes,
                           static_cast<size_t>(c.width) * 3, c.height, &padded_rgb, &padded_stride);
  const uint8_t* src[4] = {padded, nullptr, nullptr, nullptr};
  const int src_stride[4] = {padded_stride, 0, 0, 0};
  uint8_t* dst[4] = {out, nullptr, nullptr, nullptr};
  const int dst_stride[4] = {static_cast<int>(row), 0, 0, 0};
  if (sws_scale(cache_->sws.get(), src, src_stride, 0, c.height, dst, dst_stride) != height_) {
    return Internal("sws_scale (rgb24) produced fewer rows than asked");
  }
  return Status::Ok();
}

Status FrameConverter::Convert(const DecodedFrame& frame, uint8_t* out) {
  BILLNET_RETURN_IF_ERROR(CheckTarget(width_, height_));
  if (frame.empty()) return InvalidArgument("Convert: empty frame");
  if (out == nullptr) return InvalidArgument("Convert: null output");
  const AVFrame* f = frame.av_frame();
  BILLNET_RETURN_IF_ERROR(CheckFrameSize(f->width, f->height));
  const auto format = static_cast<AVPixelFormat>(f->format);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(format);
  if (desc == nullptr || (desc->flags & AV_PIX_FMT_FLAG_HWACCEL) != 0 ||
      !sws_isSupportedInput(format)) {
    return Unsupported(std::string("pixel format '") + frame.pixel_format_name() +
                       "' cannot be converted");
  }
  if (f->data[0] == nullptr) return InvalidArgument("Convert: frame has no pixel data");
  if (format == AV_PIX_FMT_RGB24) {
    if (f->linesize[0] <= 0) {  // bottom-up rows: copy through the generic path
      const size_t row = static_cast<size_t>(f->width) * 3;
      cache_->full_rgb.resize(row * f->height);
      for (int y = 0; y < f->height; ++y) {
        std::memcpy(cache_->full_rgb.data() + y * row,
                    f->data[0] + static_cast<ptrdiff_t>(y) * f->linesize[0], row);
      }
      return ConvertRgb24(cache_->full_rgb.data(), f->width, f->height, row, out);
    }
    return ConvertRgb24(f->data[0], f->width, f->height, f->linesize[0], out);
  }

  bool was_jpeg = false;
  const AVPixelFormat sws_format = internal::UnJpegFormat(format, &was_jpeg);
  const bool is_rgb = (desc->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) != 0;
  const bool is_gray = !is_rgb && desc->nb_components <= 2;
  int full_range = 0;
  if (was_jpeg || f->color_range == AVCOL_RANGE_JPEG) full_range = 1;
  if (is_gray && f->color_range != AVCOL_RANGE_MPEG) full_range = 1;
  const int colorspace = is_rgb ? 0 : internal::SwsColorspaceFor(f->colorspace);

  if ((desc->flags & (AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_BAYER)) != 0) {
    // Full-size RGB first (no scaling), then the RGB path.
    const size_t row = static_cast<size_t>(f->width) * 3;
    cache_->full_rgb.resize(row * f->height);
    BILLNET_RETURN_IF_ERROR(
        GetContext(SwsKey{sws_format, f->width, f->height, colorspace, full_range}, f->width,
                   f->height, SWS_POINT | SWS_ACCURATE_RND | SWS_BITEXACT, !is_rgb,
                   &cache_->full_key, &cache_->full_sws));
    uint8_t* dst[4] = {cache_->full_rgb.data(), nullptr, nullptr, nullptr};
    const int dst_stride[4] = {static_cast<int>(row), 0, 0, 0};
    sws_scale(cache_->full_sws.get(), f->data, f->linesize, 0, f->height, dst, dst_stride);
    return ConvertRgb24(cache_->full_rgb.data(), f->width, f->height, row, out);
  }

  CropRect c = CenterCrop(f->width, f->height, width_, height_);
  const bool planar = (desc->flags & AV_PIX_FMT_FLAG_PLANAR) != 0;
  if (!planar && desc->log2_chroma_w > 0) c.x &= ~((1 << desc->log2_chroma_w) - 1);
  if (!planar && desc->log2_chroma_h > 0) c.y &= ~((1 << desc->log2_chroma_h) - 1);

  // Plane pointers at the crop's top-left (as av_frame_apply_cropping does).
  const uint8_t* src[4] = {f->data[0], f->data[1], f->data[2], f->data[3]};
  bool offset_done[4] = {false, false, false, false};
  for (int i = 0; i < desc->nb_components; ++i) {
    const AVComponentDescriptor& comp = desc->comp[i];
    if (offset_done[comp.plane]) continue;
    const bool chroma = !is_rgb && (i == 1 || i == 2);
    const int sx = chroma ? desc->log2_chroma_w : 0;
    const int sy = chroma ? desc->log2_chroma_h : 0;
    src[comp.plane] += static_cast<ptrdiff_t>(c.y >> sy) * f->linesize[comp.plane] +
                       static_cast<ptrdiff_t>(c.x >> sx) * comp.step;
    offset_done[comp.plane] = true;
  }

  BILLNET_RETURN_IF_ERROR(GetContext(SwsKey{sws_format, c.width, c.height, colorspace, full_range},
                                     width_, height_, kSwsFlags, !is_rgb, &cache_->key,
                                     &cache_->sws));
  uint8_t* dst[4] = {out, nullptr, nullptr, nullptr};
  const int dst_stride[4] = {width_ * 3, 0, 0, 0};
  if (sws_scale(cache_->sws.get(), src, f->linesize, 0, c.height, dst, dst_stride) != height_) {
    return Internal("sws_scale produced fewer rows than asked");
  }
  return Status::Ok();
}

}  // namespace billnet::media
