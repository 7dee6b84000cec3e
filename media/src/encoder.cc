#include "billnet/media/encoder.h"

#include <cmath>
#include <cstring>

#include "av_util.h"

extern "C" {
#include <libavutil/opt.h>
}

namespace billnet::media {

using internal::AvError;

const char* VideoCodecName(VideoCodec codec) {
  switch (codec) {
    case VideoCodec::kH264:
      return "h264";
    case VideoCodec::kMjpeg:
      return "mjpeg";
    case VideoCodec::kFfv1:
      return "ffv1";
    case VideoCodec::kVp9:
      return "vp9";
    case VideoCodec::kRawVideo:
      return "rawvideo";
  }
  return "unknown";
}

StatusOr<VideoCodec> ParseVideoCodec(const std::string& name) {
  for (VideoCodec c : {VideoCodec::kH264, VideoCodec::kMjpeg, VideoCodec::kFfv1, VideoCodec::kVp9,
                       VideoCodec::kRawVideo}) {
    if (name == VideoCodecName(c)) return c;
  }
  return InvalidArgument("unknown video codec '" + name +
                         "' (expected h264, mjpeg, ffv1, vp9 or rawvideo)");
}

namespace {

const char* EncoderName(VideoCodec codec) {
  switch (codec) {
    case VideoCodec::kH264:
      return "libx264";
    case VideoCodec::kMjpeg:
      return "mjpeg";
    case VideoCodec::kFfv1:
      return "ffv1";
    case VideoCodec::kVp9:
      return "libvpx-vp9";
    case VideoCodec::kRawVideo:
      return "rawvideo";
  }
  return "";
}

AVPixelFormat DefaultPixelFormat(VideoCodec codec) {
  switch (codec) {
    case VideoCodec::kH264:
    case VideoCodec::kVp9:
      return AV_PIX_FMT_YUV420P;
    case VideoCodec::kMjpeg:
      return AV_PIX_FMT_YUVJ420P;
    case VideoCodec::kFfv1:
      return AV_PIX_FMT_BGR0;  // FFV1's 8-bit RGB (no 8-bit gbrp here)
    case VideoCodec::kRawVideo:
      return AV_PIX_FMT_RGB24;
  }
  return AV_PIX_FMT_NONE;
}

bool IsMp4Family(const AVOutputFormat* f) {
  const std::string n = f->name;
  return n == "mp4" || n == "mov" || n == "ipod" || n == "ismv" || n == "3gp" || n == "psp";
}

// x264 r3095's AVX-512 kernels made the bitstream of identical input vary
// from encoder to encoder in one process (measured 2026-11: 7 of 40 encodes
// of the same 30 frames differed); its AVX2 code gives the same bytes as its
// C code. See EncoderOptions::deterministic.
bool CpuHasAvx512() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

#if LIBAVFORMAT_VERSION_MAJOR >= 61
using WriteBuffer = const uint8_t*;
#else
using WriteBuffer = uint8_t*;
#endif

}  // namespace

class VideoEncoder::Impl {
 public:
  Impl(std::string name, ByteSink* sink) : name_(std::move(name)), sink_(sink) {}
  ~Impl();

  Status Open(const std::string& path, const EncoderOptions& options);
  Status AddFrame(const uint8_t* rgb, size_t stride, std::optional<double> ts);
  Status Finish();
  int64_t frames() const { return frames_; }

 private:
  static int WriteCallback(void* opaque, WriteBuffer buf, int size);
  static int64_t SeekCallback(void* opaque, int64_t offset, int whence);
  Status FfmpegError(int err, const std::string& step) {
    if (!sink_status_.ok()) return sink_status_.WithContext(name_ + ": " + step);
    return AvError(err, name_ + ": " + step);
  }
  Status Drain();
  Status AllocateFrame();

  std::string name_;
  ByteSink* sink_;
  Status sink_status_;
  int64_t sink_position_ = 0;
  EncoderOptions options_;

  internal::AvioContextPtr io_;
  AVFormatContext* format_ = nullptr;  // owned, freed in ~Impl
  bool file_opened_ = false;
  bool header_written_ = false;
  bool finished_ = false;
  internal::AvCodecContextPtr codec_;
  AVStream* stream_ = nullptr;
  internal::SwsContextPtr sws_;
  AvFramePtr frame_;
  internal::AvPacketPtr packet_;
  bool rgb_passthrough_ = false;
  int64_t last_pts_ = -1;
  std::vector<uint8_t> padded_rgb_;  // sws_scale input with slack (PaddedRows)
  int64_t frames_ = 0;
};

VideoEncoder::Impl::~Impl() {
  if (format_ != nullptr) {
    if (file_opened_) avio_closep(&format_->pb);
    avformat_free_context(format_);
  }
}

int VideoEncoder::Impl::WriteCallback(void* opaque, WriteBuffer buf, int size) {
  auto* self = static_cast<Impl*>(opaque);
  if (size <= 0) return 0;
  Status s = self->sink_->Write(buf, static_cast<size_t>(size));
  if (!s.ok()) {
    self->sink_status_ = s;
    return AVERROR_EXTERNAL;
  }
  self->sink_position_ += size;
  return size;
}

int64_t VideoEncoder::Impl::SeekCallback(void* opaque, int64_t offset, int whence) {
  auto* self = static_cast<Impl*>(opaque);
  whence &= ~AVSEEK_FORCE;
  int64_t target;
  switch (whence) {
    case SEEK_SET:
      target = offset;
      break;
    case SEEK_CUR:
      target = self->sink_position_ + offset;
      break;
    default:
      return AVERROR(ENOSYS);  // AVSEEK_SIZE, SEEK_END: unknown
  }
  if (Status s = self->sink_->Seek(target); !s.ok()) {
    self->sink_status_ = s;
    return AVERROR(EIO);
  }
  self->sink_position_ = target;
  return target;
}

Status VideoEncoder::Impl::Open(const std::string& path, const EncoderOptions& o) {
  options_ = o;
  BILLNET_RETURN_IF_ERROR(CheckFrameSize(o.width, o.height).WithContext(name_));
  if (!(o.fps > 0 && o.fps <= 1000)) {
    return InvalidArgument(name_ + ": fps must be in (0, 1000]");
  }
  if (o.time_base_den < 0) return InvalidArgument(name_ + ": negative time_base_den");
  const AVOutputFormat* oformat = av_guess_format(o.container.c_str(), nullptr, nullptr);
  if (oformat == nullptr) {
    return InvalidArgument(name_ + ": unknown container '" + o.container + "'");
  }
  const AVCodec* codec = avcodec_find_encoder_by_name(EncoderName(o.codec));
  if (codec == nullptr) {
    return Unsupported(name_ + ": this FFmpeg has no " + EncoderName(o.codec) + " encoder");
  }
  if (avformat_query_codec(oformat, codec->id, FF_COMPLIANCE_NORMAL) == 0) {
    return Unsupported(name_ + ": container '" + o.container + "' cannot store " +
                       VideoCodecName(o.codec));
  }
  AVPixelFormat pix = DefaultPixelFormat(o.codec);
  if (!o.pixel_format.empty()) {
    pix = av_get_pix_fmt(o.pixel_format.c_str());
    if (pix == AV_PIX_FMT_NONE) {
      return InvalidArgument(name_ + ": unknown pixel format '" + o.pixel_format + "'");
    }
  }
  if (!sws_isSupportedOutput(pix)) {
    return Unsupported(name_ + ": cannot convert RGB to pixel format '" + o.pixel_format + "'");
  }
  if (o.codec == VideoCodec::kRawVideo && std::string(oformat->name) == "matroska" &&
      (av_pix_fmt_desc_get(pix)->flags & AV_PIX_FMT_FLAG_RGB) != 0) {
    return Unsupported(name_ + ": Matroska cannot store raw RGB video; use NUT, or FFV1");
  }
  if (o.faststart && (sink_ != nullptr || !IsMp4Family(oformat))) {
    return InvalidArgument(name_ + ": faststart needs an MP4 file output");
  }

  if (int err = avformat_alloc_output_context2(&format_, oformat, nullptr,
                                               sink_ == nullptr ? path.c_str() : nullptr);
      err < 0) {
    return FfmpegError(err, "create output context");
  }

  // No random ids or version strings in the container (Matroska's segment UID).
  if (o.deterministic) format_->flags |= AVFMT_FLAG_BITEXACT;

  codec_.reset(avcodec_alloc_context3(codec));
  if (!codec_) return ResourceExhausted(name_ + ": avcodec_alloc_context3 failed");
  AVCodecContext* c = codec_.get();
  c->width = o.width;
  c->height = o.height;
  c->pix_fmt = pix;
  const AVRational rate = av_d2q(o.fps, 1000000);
  c->framerate = rate;
  c->time_base = o.time_base_den > 0 ? AVRational{1, o.time_base_den} : av_inv_q(rate);
  c->thread_count = std::max(o.threads, 1);
  if (o.gop > 0) c->gop_size = o.gop;

  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(pix);
  const bool rgb_format = (desc->flags & AV_PIX_FMT_FLAG_RGB) != 0;
  bool jpeg_format = false;
  internal::UnJpegFormat(pix, &jpeg_format);
  const bool full_range = rgb_format || jpeg_format || o.codec == VideoCodec::kMjpeg;
  c->color_range = full_range ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
  if (rgb_format) {
    c->colorspace = AVCOL_SPC_RGB;
  } else if (o.signal_color) {
    const bool bt709 = o.matrix == ColorMatrix::kBt709;
    c->colorspace = bt709 ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M;
    c->color_primaries = bt709 ? AVCOL_PRI_BT709 : AVCOL_PRI_SMPTE170M;
    c->color_trc = bt709 ? AVCOL_TRC_BT709 : AVCOL_TRC_SMPTE170M;
  }
  if (oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (o.deterministic) c->flags |= AV_CODEC_FLAG_BITEXACT;

  internal::AvDictionary codec_options;
  switch (o.codec) {
    case VideoCodec::kH264:
      av_dict_set(&codec_options.ptr, "preset", o.h264_preset.c_str(), 0);
      if (o.deterministic && CpuHasAvx512()) {
        av_dict_set(&codec_options.ptr, "x264-params", "asm=AVX2", 0);
      }
      if (o.zerolatency) av_dict_set(&codec_options.ptr, "tune", "zerolatency", 0);
      av_dict_set_int(&codec_options.ptr, "crf", o.crf, 0);
      if (o.b_frames >= 0) c->max_b_frames = o.b_frames;
      break;
    case VideoCodec::kMjpeg:
      if (o.mjpeg_qscale < 2 || o.mjpeg_qscale > 31) {
        return InvalidArgument(name_ + ": mjpeg_qscale must be in 2..31");
      }
      c->flags |= AV_CODEC_FLAG_QSCALE;
      c->global_quality = FF_QP2LAMBDA * o.mjpeg_qscale;
      break;
    case VideoCodec::kVp9:
      av_dict_set(&codec_options.ptr, "deadline", "realtime", 0);
      av_dict_set(&codec_options.ptr, "cpu-used", "8", 0);
      av_dict_set_int(&codec_options.ptr, "crf", o.vp9_crf, 0);
      if (o.vp9_lossless) av_dict_set(&codec_options.ptr, "lossless", "1", 0);
      if (o.zerolatency) av_dict_set(&codec_options.ptr, "lag-in-frames", "0", 0);
      c->bit_rate = 0;
      break;
    case VideoCodec::kFfv1:
      av_dict_set(&codec_options.ptr, "level", "3", 0);
      break;
    case VideoCodec::kRawVideo:
      break;
  }
  if (int err = avcodec_open2(c, codec, &codec_options.ptr); err < 0) {
    return FfmpegError(err, std::string("open encoder ") + codec->name);
  }
  if (av_dict_count(codec_options.ptr) > 0) {
    return Internal(name_ + ": encoder ignored option '" +
                    av_dict_get(codec_options.ptr, "", nullptr, AV_DICT_IGNORE_SUFFIX)->key + "'");
  }

  stream_ = avformat_new_stream(format_, nullptr);
  if (stream_ == nullptr) return ResourceExhausted(name_ + ": avformat_new_stream failed");
  if (int err = avcodec_parameters_from_context(stream_->codecpar, c); err < 0) {
    return FfmpegError(err, "stream parameters");
  }
  stream_->time_base = c->time_base;
  if (o.codec == VideoCodec::kRawVideo && std::string(oformat->name) == "matroska") {
    // V_UNCOMPRESSED with the pixel format's FourCC as ColourSpace.
    stream_->codecpar->codec_tag = avcodec_pix_fmt_to_codec_tag(pix);
  }
  stream_->avg_frame_rate = rate;

  internal::AvDictionary mux_options;
  if (sink_ != nullptr) {
    const int buffer_size = 64 * 1024;
    auto* buffer = static_cast<uint8_t*>(av_malloc(buffer_size));
    if (buffer == nullptr) return ResourceExhausted(name_ + ": AVIO buffer allocation failed");
    const bool seekable = sink_->seekable();
    io_.reset(avio_alloc_context(buffer, buffer_size, /*write_flag=*/1, this, nullptr,
                                 &WriteCallback, seekable ? &SeekCallback : nullptr));
    if (!io_) {
      av_free(buffer);
      return ResourceExhausted(name_ + ": avio_alloc_context failed");
    }
    io_->seekable = seekable ? AVIO_SEEKABLE_NORMAL : 0;
    format_->pb = io_.get();
    format_->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (!seekable && IsMp4Family(oformat)) {
      av_dict_set(&mux_options.ptr, "movflags", "+frag_keyframe+empty_moov+default_base_moof", 0);
    }
  } else if (!(oformat->flags & AVFMT_NOFILE)) {
    if (int err = avio_open(&format_->pb, path.c_str(), AVIO_FLAG_WRITE); err < 0) {
      return FfmpegError(err, "open for writing");
    }
    file_opened_ = true;
  }
  if (o.faststart) av_dict_set(&mux_options.ptr, "movflags", "+faststart", 0);

  if (int err = avformat_write_header(format_, &mux_options.ptr); err < 0) {
    return FfmpegError(err, "write header");
  }
  header_written_ = true;

  packet_ = internal::MakePacket();
  if (!packet_) return ResourceExhausted(name_ + ": packet allocation failed");
  BILLNET_RETURN_IF_ERROR(AllocateFrame());
  rgb_passthrough_ = pix == AV_PIX_FMT_RGB24;
  if (!rgb_passthrough_) {
    const AVPixelFormat sws_pix = internal::UnJpegFormat(pix);
    sws_.reset(sws_getContext(o.width, o.height, AV_PIX_FMT_RGB24, o.width, o.height, sws_pix,
                              SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT | SWS_FULL_CHR_H_INP,
                              nullptr, nullptr, nullptr));
    if (!sws_) return Unsupported(name_ + ": swscale cannot convert rgb24 to the codec format");
    if (!rgb_format) {
      const int matrix = o.matrix == ColorMatrix::kBt709 ? SWS_CS_ITU709 : SWS_CS_ITU601;
      sws_setColorspaceDetails(sws_.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1,
                               sws_getCoefficients(matrix), full_range ? 1 : 0, 0, 1 << 16,
                               1 << 16);
    }
  }
  return Status::Ok();
}

// A new input frame with zeroed buffers: encoders (libx264) may read the
// padding right of the picture, and uninitialized padding made its output
// vary from run to run.
Status VideoEncoder::Impl::AllocateFrame() {
  frame_ = internal::MakeFrame();
  if (!frame_) return ResourceExhausted(name_ + ": frame allocation failed");
  const AVCodecContext* c = codec_.get();
  frame_->format = c->pix_fmt;
  frame_->width = c->width;
  frame_->height = c->height;
  frame_->color_range = c->color_range;
  frame_->colorspace = c->colorspace;
  frame_->color_primaries = c->color_primaries;
  frame_->color_trc = c->color_trc;
  if (int err = av_frame_get_buffer(frame_.get(), 0); err < 0) {
    return FfmpegError(err, "frame buffer");
  }
  for (AVBufferRef* buf : frame_->buf) {
    if (buf != nullptr) std::memset(buf->data, 0, buf->size);
  }
  return Status::Ok();
}

Status VideoEncoder::Impl::Drain() {
  for (;;) {
    int err = avcodec_receive_packet(codec_.get(), packet_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return Status::Ok();
    if (err < 0) return FfmpegError(err, "encode");
    av_packet_rescale_ts(packet_.get(), codec_->time_base, stream_->time_base);
    packet_->stream_index = stream_->index;
    err = av_interleaved_write_frame(format_, packet_.get());  // takes the packet's reference
    if (err < 0) return FfmpegError(err, "write packet");
  }
}

Status VideoEncoder::Impl::AddFrame(const uint8_t* rgb, size_t stride, std::optional<double> ts) {
  if (finished_) return InvalidArgument(name_ + ": AddFrame after Finish");
  if (!header_written_) return InvalidArgument(name_ + ": encoder is not open");
  const size_t row = static_cast<size_t>(options_.width) * 3;
  if (stride == 0) stride = row;
  if (rgb == nullptr || stride < row) {
    return InvalidArgument(name_ + ": null frame or stride below width * 3");
  }
  const double tb = av_q2d(codec_->time_base);
  int64_t pts;
  if (ts.has_value()) {
    if (!std::isfinite(*ts) || *ts < 0 || *ts / tb > 9e15) {
      return InvalidArgument(name_ + ": bad timestamp");
    }
    pts = std::llround(*ts / tb);
    if (pts <= last_pts_) {
      return InvalidArgument(name_ + ": timestamp " + std::to_string(*ts) +
                             " s does not increase by at least one time-base unit");
    }
  } else {
    pts = std::max<int64_t>(std::llround(static_cast<double>(frames_) / options_.fps / tb),
                            last_pts_ + 1);
  }
  if (!av_frame_is_writable(frame_.get())) {  // the encoder still holds the last one
    BILLNET_RETURN_IF_ERROR(AllocateFrame());
  }
  if (rgb_passthrough_) {
    for (int y = 0; y < options_.height; ++y) {
      std::memcpy(frame_->data[0] + static_cast<ptrdiff_t>(y) * frame_->linesize[0],
                  rgb + y * stride, row);
    }
  } else {
    int padded_stride = 0;
    const uint8_t* padded =
        internal::PaddedRows(rgb, stride, row, options_.height, &padded_rgb_, &padded_stride);
    const uint8_t* src[4] = {padded, nullptr, nullptr, nullptr};
    const int src_stride[4] = {padded_stride, 0, 0, 0};
    sws_scale(sws_.get(), src, src_stride, 0, options_.height, frame_->data, frame_->linesize);
  }
  frame_->pts = pts;
  if (options_.codec == VideoCodec::kMjpeg) frame_->quality = codec_->global_quality;
  if (int err = avcodec_send_frame(codec_.get(), frame_.get()); err < 0) {
    return FfmpegError(err, "encode");
  }
  last_pts_ = pts;
  ++frames_;
  return Drain();
}

Status VideoEncoder::Impl::Finish() {
  if (finished_) return Status::Ok();
  if (!header_written_) return InvalidArgument(name_ + ": encoder is not open");
  finished_ = true;
  if (int err = avcodec_send_frame(codec_.get(), nullptr); err < 0 && err != AVERROR_EOF) {
    return FfmpegError(err, "flush encoder");
  }
  BILLNET_RETURN_IF_ERROR(Drain());
  if (int err = av_write_trailer(format_); err < 0) return FfmpegError(err, "write trailer");
  if (format_->pb != nullptr) {
    avio_flush(format_->pb);
    if (format_->pb->error < 0) return FfmpegError(format_->pb->error, "flush output");
  }
  if (file_opened_) {
    file_opened_ = false;
    if (int err = avio_closep(&format_->pb); err < 0) return FfmpegError(err, "close");
  }
  if (!sink_status_.ok()) return sink_status_.WithContext(name_);
  return Status::Ok();
}

VideoEncoder::VideoEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VideoEncoder::~VideoEncoder() = default;

StatusOr<std::unique_ptr<VideoEncoder>> VideoEncoder::Open(const std::string& path,
                                                           const EncoderOptions& options) {
  auto impl = std::make_unique<Impl>("'" + path + "'", nullptr);
  BILLNET_RETURN_IF_ERROR(impl->Open(path, options));
  return std::unique_ptr<VideoEncoder>(new VideoEncoder(std::move(impl)));
}

StatusOr<std::unique_ptr<VideoEncoder>> VideoEncoder::Open(ByteSink* sink,
                                                           const EncoderOptions& options,
                                                           const std::string& name) {
  if (sink == nullptr) return InvalidArgument(name + ": null byte sink");
  auto impl = std::make_unique<Impl>(name, sink);
  BILLNET_RETURN_IF_ERROR(impl->Open("", options));
  return std::unique_ptr<VideoEncoder>(new VideoEncoder(std::move(impl)));
}

Status VideoEncoder::AddFrame(const uint8_t* rgb, size_t stride_bytes,
                              std::optional<double> timestamp_s) {
  return impl_->AddFrame(rgb, stride_bytes, timestamp_s);
}
Status VideoEncoder::Finish() { return impl_->Finish(); }
int64_t VideoEncoder::frames_added() const { return impl_->frames(); }

}  // namespace billnet::media
