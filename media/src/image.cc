#include "billnet/media/image.h"

#include <cstring>

#include "av_util.h"
#include "billnet/media/byte_io.h"
#include "billnet/media/converter.h"

namespace billnet::media {

using internal::AvError;

StatusOr<std::vector<uint8_t>> EncodeJpeg(const uint8_t* rgb, int width, int height,
                                          size_t stride_bytes, int qscale) {
  BILLNET_RETURN_IF_ERROR(CheckFrameSize(width, height).WithContext("EncodeJpeg"));
  if (stride_bytes == 0) stride_bytes = static_cast<size_t>(width) * 3;
  if (rgb == nullptr || stride_bytes < static_cast<size_t>(width) * 3) {
    return InvalidArgument("EncodeJpeg: null image or stride below width * 3");
  }
  if (qscale < 2 || qscale > 31) return InvalidArgument("EncodeJpeg: qscale must be in 2..31");
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
  if (codec == nullptr) return Unsupported("EncodeJpeg: no MJPEG encoder");
  internal::AvCodecContextPtr c(avcodec_alloc_context3(codec));
  if (!c) return ResourceExhausted("EncodeJpeg: avcodec_alloc_context3 failed");
  c->width = width;
  c->height = height;
  c->pix_fmt = AV_PIX_FMT_YUVJ420P;
  c->color_range = AVCOL_RANGE_JPEG;
  c->time_base = AVRational{1, 25};
  c->flags |= AV_CODEC_FLAG_QSCALE | AV_CODEC_FLAG_BITEXACT;  // no version comment
  c->global_quality = FF_QP2LAMBDA * qscale;
  c->thread_count = 1;
  if (int err = avcodec_open2(c.get(), codec, nullptr); err < 0) {
    return AvError(err, "EncodeJpeg: open encoder");
  }
  AvFramePtr frame = internal::MakeFrame();
  internal::AvPacketPtr packet = internal::MakePacket();
  if (!frame || !packet) return ResourceExhausted("EncodeJpeg: allocation failed");
  frame->format = AV_PIX_FMT_YUVJ420P;
  frame->width = width;
  frame->height = height;
  frame->color_range = AVCOL_RANGE_JPEG;
  if (int err = av_frame_get_buffer(frame.get(), 0); err < 0) {
    return AvError(err, "EncodeJpeg: frame buffer");
  }
  internal::SwsContextPtr sws(
      sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P,
                     SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT | SWS_FULL_CHR_H_INP, nullptr,
                     nullptr, nullptr));
  if (!sws) return Internal("EncodeJpeg: swscale context");
  sws_setColorspaceDetails(sws.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1,
                           sws_getCoefficients(SWS_CS_ITU601), 1, 0, 1 << 16, 1 << 16);
  std::vector<uint8_t> padded_rgb;
  int padded_stride = 0;
  const uint8_t* padded = internal::PaddedRows(rgb, stride_bytes, static_cast<size_t>(width) * 3,
                                               height, &padded_rgb, &padded_stride);
  const uint8_t* src[4] = {padded, nullptr, nullptr, nullptr};
  const int src_stride[4] = {padded_stride, 0, 0, 0};
  sws_scale(sws.get(), src, src_stride, 0, height, frame->data, frame->linesize);
  frame->pts = 0;
  frame->quality = c->global_quality;
  if (int err = avcodec_send_frame(c.get(), frame.get()); err < 0) {
    return AvError(err, "EncodeJpeg: encode");
  }
  if (int err = avcodec_send_frame(c.get(), nullptr); err < 0) {
    return AvError(err, "EncodeJpeg: flush");
  }
  if (int err = avcodec_receive_packet(c.get(), packet.get()); err < 0) {
    return AvError(err, "EncodeJpeg: receive packet");
  }
  return std::vector<uint8_t>(packet->data, packet->data + packet->size);
}

StatusOr<DecodedFrame> DecodeImage(std::span<const uint8_t> bytes) {
  AVCodecID id = AV_CODEC_ID_NONE;
  const char* kind = "";
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
    id = AV_CODEC_ID_MJPEG;
    kind = "JPEG";
  } else if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0) {
    id = AV_CODEC_ID_PNG;
    kind = "PNG";
  } else if (bytes.size() >= 2 && bytes[0] == 'B' && bytes[1] == 'M') {
    id = AV_CODEC_ID_BMP;
    kind = "BMP";
  } else {
    return Unsupported("not a JPEG, PNG or BMP image (" + std::to_string(bytes.size()) + " bytes)");
  }
  const std::string where = std::string("decode ") + kind;
  if (bytes.size() > static_cast<size_t>(INT32_MAX - AV_INPUT_BUFFER_PADDING_SIZE)) {
    return ResourceExhausted(where + ": image too large");
  }
  const AVCodec* codec = avcodec_find_decoder(id);
  if (codec == nullptr) return Unsupported(where + ": no decoder");
  internal::AvCodecContextPtr c(avcodec_alloc_context3(codec));
  if (!c) return ResourceExhausted(where + ": avcodec_alloc_context3 failed");
  c->max_pixels = kMaxFramePixels;
  c->thread_count = 1;
  c->err_recognition = AV_EF_EXPLODE;  // a damaged image is an error, not a concealed frame
  if (int err = avcodec_open2(c.get(), codec, nullptr); err < 0) {
    return AvError(err, where + ": open decoder");
  }
  internal::AvPacketPtr packet = internal::MakePacket();
  AvFramePtr frame = internal::MakeFrame();
  if (!packet || !frame) return ResourceExhausted(where + ": allocation failed");
  // Decoders may read up to AV_INPUT_BUFFER_PADDING_SIZE past the end.
  if (int err = av_new_packet(packet.get(), static_cast<int>(bytes.size())); err < 0) {
    return AvError(err, where + ": packet");
  }
  std::memcpy(packet->data, bytes.data(), bytes.size());
  if (int err = avcodec_send_packet(c.get(), packet.get()); err < 0) return AvError(err, where);
  if (int err = avcodec_send_packet(c.get(), nullptr); err < 0 && err != AVERROR_EOF) {
    return AvError(err, where);
  }
  int err = avcodec_receive_frame(c.get(), frame.get());
  if (err == AVERROR_EOF || err == AVERROR(EAGAIN)) {
    return Corruption(where + ": no picture in the data");
  }
  if (err < 0) return AvError(err, where);
  BILLNET_RETURN_IF_ERROR(CheckFrameSize(frame->width, frame->height).WithContext(where));
  if ((frame->decode_error_flags != 0) || (frame->flags & AV_FRAME_FLAG_CORRUPT) != 0) {
    return Corruption(where + ": the picture is damaged");
  }
  return DecodedFrame(std::move(frame), 0);
}

StatusOr<DecodedFrame> ReadImageFile(const std::string& path) {
  BILLNET_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(path));
  StatusOr<DecodedFrame> frame = DecodeImage(bytes);
  if (!frame.ok()) return frame.status().WithContext("'" + path + "'");
  return frame;
}

StatusOr<RgbImage> ToRgb24(const DecodedFrame& frame) {
  if (frame.empty()) return InvalidArgument("ToRgb24: empty frame");
  RgbImage image;
  image.width = frame.width();
  image.height = frame.height();
  image.rgb.resize(static_cast<size_t>(image.width) * image.height * 3);
  FrameConverter converter(image.width, image.height);
  BILLNET_RETURN_IF_ERROR(converter.Convert(frame, image.rgb.data()));
  return image;
}

}  // namespace billnet::media
