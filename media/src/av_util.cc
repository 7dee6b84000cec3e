#include "av_util.h"

#include <cerrno>

namespace billnet::media::internal {

std::string AvErrorText(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  if (av_strerror(err, buf, sizeof(buf)) < 0) {
    return "unknown FFmpeg error " + std::to_string(err);
  }
  return buf;
}

Status AvError(int err, const std::string& where) {
  StatusCode code = StatusCode::kCorruption;
  if (err == AVERROR(ENOMEM)) {
    code = StatusCode::kResourceExhausted;
  } else if (err == AVERROR(ENOENT) || err == AVERROR_HTTP_NOT_FOUND ||
             err == AVERROR(ECONNREFUSED) || err == AVERROR(EHOSTUNREACH) ||
             err == AVERROR(ENETUNREACH) || err == AVERROR(ETIMEDOUT)) {
    // A source that cannot be had: no such file, HTTP 404, a host that refuses
    // or does not answer.
    code = StatusCode::kNotFound;
  } else if (err == AVERROR_DECODER_NOT_FOUND || err == AVERROR_DEMUXER_NOT_FOUND ||
             err == AVERROR_ENCODER_NOT_FOUND || err == AVERROR_MUXER_NOT_FOUND ||
             err == AVERROR_PROTOCOL_NOT_FOUND || err == AVERROR_STREAM_NOT_FOUND ||
             err == AVERROR_OPTION_NOT_FOUND || err == AVERROR(ENOSYS) ||
             err == AVERROR_PATCHWELCOME) {
    code = StatusCode::kUnsupported;
  } else if (err == AVERROR(EINVAL)) {
    code = StatusCode::kInvalidArgument;
  }
  return Status(code, where + ": " + AvErrorText(err));
}

AvFramePtr MakeFrame() { return AvFramePtr(av_frame_alloc()); }
AvPacketPtr MakePacket() { return AvPacketPtr(av_packet_alloc()); }

int SwsColorspaceFor(AVColorSpace colorspace) {
  switch (colorspace) {
    case AVCOL_SPC_BT709:
      return SWS_CS_ITU709;
    case AVCOL_SPC_FCC:
      return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M:
      return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      return SWS_CS_BT2020;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
    default:
      return SWS_CS_ITU601;  // also unspecified / reserved / unknown
  }
}

AVPixelFormat UnJpegFormat(AVPixelFormat f, bool* was_jpeg) {
  AVPixelFormat out = f;
  switch (f) {
    case AV_PIX_FMT_YUVJ420P:
      out = AV_PIX_FMT_YUV420P;
      break;
    case AV_PIX_FMT_YUVJ422P:
      out = AV_PIX_FMT_YUV422P;
      break;
    case AV_PIX_FMT_YUVJ444P:
      out = AV_PIX_FMT_YUV444P;
      break;
    case AV_PIX_FMT_YUVJ440P:
      out = AV_PIX_FMT_YUV440P;
      break;
    case AV_PIX_FMT_YUVJ411P:
      out = AV_PIX_FMT_YUV411P;
      break;
    default:
      break;
  }
  if (was_jpeg != nullptr) *was_jpeg = out != f;
  return out;
}

}  // namespace billnet::media::internal
