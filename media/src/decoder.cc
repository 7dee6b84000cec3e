#include "billnet/media/decoder.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <vector>

#include "av_util.h"

extern "C" {
#include <libavdevice/avdevice.h>
}

namespace billnet::media {

using internal::AvError;

namespace {

double ToSeconds(int64_t value, AVRational tb) {
  return static_cast<double>(value) * tb.num / tb.den;
}

}  // namespace

class VideoDecoder::Impl {
 public:
  Impl(std::string name, ByteSource* source) : name_(std::move(name)), source_(source) {}

  Status Open(const std::string& url, const DecoderOptions& options);
  StatusOr<bool> Next(DecodedFrame* frame);

  const StreamInfo& info() const { return info_; }
  int64_t decoded() const { return decoded_; }
  void SkipToKeyFrame(double not_before_s) {
    skip_ = true;
    filter_paused_ = true;
    skip_flush_ = true;
    skip_not_before_ = not_before_s;
  }
  int64_t skipped() const { return skipped_; }
  void SetFrameFilter(FrameFilter wanted) { filter_ = std::move(wanted); }
  int64_t undecoded() const { return undecoded_; }

 private:
  static int ReadCallback(void* opaque, uint8_t* buf, int size);
  static int64_t SeekCallback(void* opaque, int64_t offset, int whence);

  // SetFrameFilter: whether the codec may discard `packet`'s frame.
  bool MayDiscard(const AVPacket& packet) const;
  // After sending a packet: what the filter needs to know about it.
  void NoteSent(const AVPacket& packet, bool offered);
  // A frame came out: offered packets before it in presentation order were
  // discarded.
  void NoteReturned(const AVFrame& frame);
  void ForgetFiltered() {
    certain_count_ = 0;
    offered_count_ = 0;
  }

  Status Fail(Status s) {
    error_ = s;
    return s;
  }
  // An FFmpeg error during `step`; a ByteSource error, if that caused it,
  // takes precedence.
  Status FfmpegError(int err, const std::string& step) {
    if (!source_status_.ok()) return Fail(source_status_.WithContext(name_ + ": " + step));
    return Fail(AvError(err, name_ + ": " + step));
  }

  std::string name_;
  ByteSource* source_;  // not owned; null for URLs
  Status source_status_;
  int64_t source_position_ = 0;
  int64_t max_pixels_ = kMaxFramePixels;

  // Destruction order matters: the format context before its custom AVIO.
  internal::AvioContextPtr io_;
  internal::AvInputContextPtr format_;
  internal::AvCodecContextPtr codec_;
  internal::AvPacketPtr packet_;
  int stream_index_ = -1;
  AVRational time_base_{1, 1};
  double frame_interval_ = 1.0 / 25;
  StreamInfo info_;

  bool demux_eof_ = false;
  bool finished_ = false;
  Status error_;
  bool have_timestamp_ = false;
  double last_timestamp_ = 0;
  int64_t decoded_ = 0;

  // SkipToKeyFrame: discard until a key packet at or after the target.
  bool skip_ = false;
  bool skip_flush_ = false;  // the codec's held frames are still to be discarded
  double skip_not_before_ = 0;
  int64_t skipped_ = 0;
  int64_t in_codec_ = 0;  // packets sent minus frames received (frames the codec holds)

  // SetFrameFilter.
  static constexpr int kTracked = 32;
  FrameFilter filter_;
  bool filter_codec_ = false;     // the codec discards non-reference frames on AVDISCARD_NONREF
  bool filter_paused_ = false;    // from a skip until the first frame after it is returned
  bool filter_stopped_ = false;   // a frame's timestamp was not its packet's pts
  std::array<int64_t, kTracked> certain_{};  // pts of recent packets sent without discard
  int certain_count_ = 0, certain_next_ = 0;
  std::array<int64_t, kTracked> offered_{};  // pts of packets sent with discard, not yet resolved
  int offered_count_ = 0;
  int64_t undecoded_ = 0;
};

bool VideoDecoder::Impl::MayDiscard(const AVPacket& packet) const {
  if (!filter_ || !filter_codec_ || filter_paused_ || filter_stopped_) return false;
  if (packet.pts == AV_NOPTS_VALUE || (packet.flags & AV_PKT_FLAG_KEY) != 0) return false;
  if (offered_count_ == kTracked) return false;
  int64_t previous = std::numeric_limits<int64_t>::min();
  int64_t next = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < certain_count_; ++i) {
    const int64_t c = certain_[i];
    if (c < packet.pts && c > previous) previous = c;
    if (c > packet.pts && c < next) next = c;
  }
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const double previous_s =
      previous == std::numeric_limits<int64_t>::min() ? -kInf : ToSeconds(previous, time_base_);
  const double next_s =
      next == std::numeric_limits<int64_t>::max() ? kInf : ToSeconds(next, time_base_);
  return !filter_(previous_s, ToSeconds(packet.pts, time_base_), next_s);
}

void VideoDecoder::Impl::NoteSent(const AVPacket& packet, bool offered) {
  if (packet.pts == AV_NOPTS_VALUE) return;
  if (offered) {
    offered_[offered_count_++] = packet.pts;
  } else {
    certain_[certain_next_] = packet.pts;
    certain_next_ = (certain_next_ + 1) % kTracked;
    certain_count_ = std::min(certain_count_ + 1, kTracked);
  }
}

void VideoDecoder::Impl::NoteReturned(const AVFrame& frame) {
  if (frame.pts == AV_NOPTS_VALUE || frame.best_effort_timestamp != frame.pts) {
    filter_stopped_ = true;
  }
  if (filter_paused_ && !skip_ && !skip_flush_) filter_paused_ = false;
  int kept = 0;
  for (int i = 0; i < offered_count_; ++i) {
    const int64_t pts = offered_[i];
    if (frame.pts != AV_NOPTS_VALUE && pts < frame.pts) {
      ++undecoded_;  // would have come out before this frame
      in_codec_ = std::max<int64_t>(0, in_codec_ - 1);
    } else if (pts != frame.pts) {
      offered_[kept++] = pts;
    }
  }
  offered_count_ = kept;
}

int VideoDecoder::Impl::ReadCallback(void* opaque, uint8_t* buf, int size) {
  auto* self = static_cast<Impl*>(opaque);
  if (size <= 0) return 0;
  StatusOr<size_t> n = self->source_->Read(buf, static_cast<size_t>(size));
  if (!n.ok()) {
    self->source_status_ = n.status();
    return AVERROR_EXTERNAL;
  }
  if (*n == 0) return AVERROR_EOF;
  if (*n > static_cast<size_t>(size)) {
    self->source_status_ = Internal("byte source returned more bytes than asked for");
    return AVERROR_EXTERNAL;
  }
  self->source_position_ += static_cast<int64_t>(*n);
  return static_cast<int>(*n);
}

int64_t VideoDecoder::Impl::SeekCallback(void* opaque, int64_t offset, int whence) {
  auto* self = static_cast<Impl*>(opaque);
  whence &= ~AVSEEK_FORCE;
  const int64_t size = self->source_->size();
  if (whence == AVSEEK_SIZE) return size >= 0 ? size : AVERROR(ENOSYS);
  int64_t target;
  switch (whence) {
    case SEEK_SET:
      target = offset;
      break;
    case SEEK_CUR:
      target = self->source_position_ + offset;
      break;
    case SEEK_END:
      if (size < 0) return AVERROR(ENOSYS);
      target = size + offset;
      break;
    default:
      return AVERROR(EINVAL);
  }
  if (Status s = self->source_->Seek(target); !s.ok()) return AVERROR(EIO);
  self->source_position_ = target;
  return target;
}

namespace {

void RegisterOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    avdevice_register_all();
    avformat_network_init();
  });
}

}  // namespace

Status VideoDecoder::Impl::Open(const std::string& url, const DecoderOptions& options) {
  RegisterOnce();
  max_pixels_ = options.max_pixels;
  if (options.threads < 0 || options.threads > 64) {
    return InvalidArgument(name_ + ": decoder threads must be in 0..64");
  }
  const AVInputFormat* input_format = nullptr;
  if (!options.format_hint.empty()) {
    input_format = av_find_input_format(options.format_hint.c_str());
    if (input_format == nullptr) {
      return InvalidArgument(name_ + ": unknown container format '" + options.format_hint + "'");
    }
  }

  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) return ResourceExhausted(name_ + ": avformat_alloc_context failed");
  raw->probesize = std::max<int64_t>(options.probesize, 32);
  raw->max_analyze_duration = std::max<int64_t>(options.analyzeduration_us, 0);
  if (source_ != nullptr) {
    const int buffer_size = std::max(options.avio_buffer_size, 4096);
    auto* buffer = static_cast<uint8_t*>(av_malloc(buffer_size));
    if (buffer == nullptr) {
      avformat_free_context(raw);
      return ResourceExhausted(name_ + ": AVIO buffer allocation failed");
    }
    const bool seekable = source_->seekable();
    io_.reset(avio_alloc_context(buffer, buffer_size, /*write_flag=*/0, this, &ReadCallback,
                                 nullptr, seekable ? &SeekCallback : nullptr));
    if (!io_) {
      av_free(buffer);
      avformat_free_context(raw);
      return ResourceExhausted(name_ + ": avio_alloc_context failed");
    }
    io_->seekable = seekable ? AVIO_SEEKABLE_NORMAL : 0;
    raw->pb = io_.get();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  }

  internal::AvDictionary format_options;
  for (const auto& [key, value] : options.format_options) {
    av_dict_set(&format_options.ptr, key.c_str(), value.c_str(), 0);
  }
  // avformat_open_input frees the context on failure.
  if (int err = avformat_open_input(&raw, source_ != nullptr ? nullptr : url.c_str(), input_format,
                                    &format_options.ptr);
      err < 0) {
    return FfmpegError(err, "open");
  }
  format_.reset(raw);

  // Sizes the container declares, before probing (a probe that fails on an
  // oversized frame leaves the size unset).
  const unsigned streams = format_->nb_streams;
  std::vector<std::pair<int, int>> declared(streams);
  for (unsigned i = 0; i < streams; ++i) {
    declared[i] = {format_->streams[i]->codecpar->width, format_->streams[i]->codecpar->height};
  }
  // Probe with the same limits the decoder will have: every stream's probing
  // decoder refuses oversized frames and runs on one thread.
  std::vector<internal::AvDictionary> stream_options(streams);
  std::vector<AVDictionary*> stream_option_ptrs(streams, nullptr);
  for (unsigned i = 0; i < streams; ++i) {
    av_dict_set_int(&stream_options[i].ptr, "max_pixels", max_pixels_, 0);
    av_dict_set_int(&stream_options[i].ptr, "threads", 1, 0);
    stream_option_ptrs[i] = stream_options[i].ptr;
  }
  int err =
      avformat_find_stream_info(format_.get(), streams > 0 ? stream_option_ptrs.data() : nullptr);
  for (unsigned i = 0; i < streams; ++i) stream_options[i].ptr = stream_option_ptrs[i];
  if (err < 0) return FfmpegError(err, "find stream info");

  const AVCodec* codec = nullptr;
  err = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (err == AVERROR_STREAM_NOT_FOUND) return Fail(InvalidArgument(name_ + ": no video stream"));
  if (err == AVERROR_DECODER_NOT_FOUND) {
    return Fail(Unsupported(name_ + ": no decoder for the video codec"));
  }
  if (err < 0) return FfmpegError(err, "find video stream");
  stream_index_ = err;
  AVStream* stream = format_->streams[stream_index_];
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    if (static_cast<int>(i) != stream_index_) format_->streams[i]->discard = AVDISCARD_ALL;
  }
  const AVCodecParameters* par = stream->codecpar;
  const auto [declared_w, declared_h] =
      static_cast<unsigned>(stream_index_) < streams ? declared[stream_index_] : std::pair{0, 0};
  for (const auto& [w, h] :
       {std::pair{par->width, par->height}, std::pair{declared_w, declared_h}}) {
    if (w > 0 || h > 0) {
      if (Status s = CheckFrameSize(w, h, max_pixels_); !s.ok()) return Fail(s.WithContext(name_));
    }
  }

  codec_.reset(avcodec_alloc_context3(codec));
  if (!codec_) return Fail(ResourceExhausted(name_ + ": avcodec_alloc_context3 failed"));
  if ((err = avcodec_parameters_to_context(codec_.get(), par)) < 0) {
    return FfmpegError(err, "codec parameters");
  }
  codec_->pkt_timebase = stream->time_base;
  codec_->max_pixels = max_pixels_;
  codec_->thread_count = options.threads;
  if ((err = avcodec_open2(codec_.get(), codec, nullptr)) < 0) {
    return FfmpegError(err, std::string("open decoder '") + codec->name + "'");
  }
  packet_ = internal::MakePacket();
  if (!packet_) return Fail(ResourceExhausted(name_ + ": av_packet_alloc failed"));

  time_base_ = stream->time_base;
  if (time_base_.num <= 0 || time_base_.den <= 0) time_base_ = AVRational{1, AV_TIME_BASE};
  const AVRational rate = av_guess_frame_rate(format_.get(), stream, nullptr);
  if (rate.num > 0 && rate.den > 0) frame_interval_ = static_cast<double>(rate.den) / rate.num;
  if (!(frame_interval_ > 1e-4 && frame_interval_ < 100)) frame_interval_ = 1.0 / 25;

  info_.container = format_->iformat->name;
  info_.codec = avcodec_get_name(par->codec_id);
  const char* pix = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
  info_.pixel_format = pix != nullptr ? pix : "";
  info_.width = par->width;
  info_.height = par->height;
  if (stream->avg_frame_rate.num > 0 && stream->avg_frame_rate.den > 0) {
    info_.frame_rate = av_q2d(stream->avg_frame_rate);
  }
  if (stream->start_time != AV_NOPTS_VALUE)
    info_.start_time = ToSeconds(stream->start_time, time_base_);
  if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
    info_.duration = ToSeconds(stream->duration, time_base_);
  } else if (format_->duration != AV_NOPTS_VALUE && format_->duration > 0) {
    info_.duration = static_cast<double>(format_->duration) / AV_TIME_BASE;
  }
  info_.stream_index = stream_index_;
  // Codecs whose decoders drop exactly the frames no other frame refers to on
  // AVDISCARD_NONREF (H.264 nal_ref_idc 0, HEVC sub-layer non-reference
  // pictures, MPEG-2 and MPEG-4 part 2 B-frames), each tested
  // (frame_filter_test.cc).
  switch (par->codec_id) {
    case AV_CODEC_ID_H264:
    case AV_CODEC_ID_HEVC:
    case AV_CODEC_ID_MPEG4:
    case AV_CODEC_ID_MPEG2VIDEO:
      filter_codec_ = true;
      break;
    default:
      filter_codec_ = false;
  }
  return Status::Ok();
}

StatusOr<bool> VideoDecoder::Impl::Next(DecodedFrame* out) {
  if (!error_.ok()) return error_;
  if (finished_) return false;
  if (out->empty()) {
    AvFramePtr f = internal::MakeFrame();
    if (!f) return Fail(ResourceExhausted(name_ + ": av_frame_alloc failed"));
    *out = DecodedFrame(std::move(f), 0);
  }
  AVFrame* frame = out->av_frame();
  if (skip_flush_) {
    // What the codec holds was decoded from packets before the skip: stale.
    skip_flush_ = false;
    if (!demux_eof_) {
      avcodec_flush_buffers(codec_.get());
      skipped_ += std::max<int64_t>(0, in_codec_);
      in_codec_ = 0;
    }
    ForgetFiltered();
  }
  for (;;) {
    int err = avcodec_receive_frame(codec_.get(), frame);
    if (err == 0) {
      in_codec_ = std::max<int64_t>(0, in_codec_ - 1);
      if (Status s = CheckFrameSize(frame->width, frame->height, max_pixels_); !s.ok()) {
        av_frame_unref(frame);
        return Fail(s.WithContext(name_ + ": frame " + std::to_string(decoded_)));
      }
      if (frame->format < 0) {
        av_frame_unref(frame);
        return Fail(Corruption(name_ + ": decoder produced a frame without pixel format"));
      }
      double t;
      if (frame->best_effort_timestamp != AV_NOPTS_VALUE) {
        t = ToSeconds(frame->best_effort_timestamp, time_base_);
      } else {
        t = have_timestamp_ ? last_timestamp_ + frame_interval_ : 0.0;
      }
      have_timestamp_ = true;
      last_timestamp_ = t;
      NoteReturned(*frame);
      out->set_timestamp(t);
      ++decoded_;
      return true;
    }
    if (err == AVERROR_EOF || (err == AVERROR(EAGAIN) && demux_eof_)) {
      // Drained (or the decoder still asks for input after the end): done.
      // Offered frames that never came out were discarded.
      finished_ = true;
      undecoded_ += offered_count_;
      offered_count_ = 0;
      return false;
    }
    if (err != AVERROR(EAGAIN)) return FfmpegError(err, "decode");
    err = av_read_frame(format_.get(), packet_.get());
    if (err == AVERROR_EOF) {
      if (!source_status_.ok()) return FfmpegError(err, "read");
      demux_eof_ = true;
      if ((err = avcodec_send_packet(codec_.get(), nullptr)) < 0 && err != AVERROR_EOF) {
        return FfmpegError(err, "flush decoder");
      }
      continue;
    }
    if (err < 0) return FfmpegError(err, "read");
    if (packet_->stream_index != stream_index_) {
      av_packet_unref(packet_.get());
      continue;
    }
    if (skip_) {
      const int64_t ts = packet_->pts != AV_NOPTS_VALUE ? packet_->pts : packet_->dts;
      const bool key = (packet_->flags & AV_PKT_FLAG_KEY) != 0;
      if (!key || (ts != AV_NOPTS_VALUE && ToSeconds(ts, time_base_) < skip_not_before_)) {
        av_packet_unref(packet_.get());
        ++skipped_;
        continue;
      }
      skip_ = false;
    }
    const bool offer = MayDiscard(*packet_);
    codec_->skip_frame = offer ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
    err = avcodec_send_packet(codec_.get(), packet_.get());
    if (err == 0) NoteSent(*packet_, offer);
    av_packet_unref(packet_.get());
    if (err == 0) ++in_codec_;
    if (err < 0 && err != AVERROR(EAGAIN)) return FfmpegError(err, "decode");
  }
}

VideoDecoder::VideoDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VideoDecoder::~VideoDecoder() = default;

StatusOr<std::unique_ptr<VideoDecoder>> VideoDecoder::Open(const std::string& url,
                                                           const DecoderOptions& options) {
  auto impl = std::make_unique<Impl>("'" + url + "'", nullptr);
  BILLNET_RETURN_IF_ERROR(impl->Open(url, options));
  return std::unique_ptr<VideoDecoder>(new VideoDecoder(std::move(impl)));
}

StatusOr<std::unique_ptr<VideoDecoder>> VideoDecoder::Open(ByteSource* source,
                                                           const DecoderOptions& options,
                                                           const std::string& name) {
  if (source == nullptr) return InvalidArgument(name + ": null byte source");
  auto impl = std::make_unique<Impl>(name, source);
  BILLNET_RETURN_IF_ERROR(impl->Open("", options));
  return std::unique_ptr<VideoDecoder>(new VideoDecoder(std::move(impl)));
}

const StreamInfo& VideoDecoder::info() const { return impl_->info(); }
StatusOr<bool> VideoDecoder::Next(DecodedFrame* frame) {
  if (frame == nullptr) return InvalidArgument("VideoDecoder::Next: null frame");
  return impl_->Next(frame);
}
int64_t VideoDecoder::frames_decoded() const { return impl_->decoded(); }
void VideoDecoder::SkipToKeyFrame(double not_before_s) { impl_->SkipToKeyFrame(not_before_s); }
int64_t VideoDecoder::frames_skipped() const { return impl_->skipped(); }
void VideoDecoder::SetFrameFilter(FrameFilter wanted) { impl_->SetFrameFilter(std::move(wanted)); }
int64_t VideoDecoder::frames_undecoded() const { return impl_->undecoded(); }

}  // namespace billnet::media
