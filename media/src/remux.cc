#include "billnet/media/remux.h"

#include <algorithm>
#include <cmath>

#include "av_util.h"

namespace billnet::media {
namespace {

using internal::AvError;
using internal::AvPacketPtr;

#if LIBAVFORMAT_VERSION_MAJOR >= 61
using WriteBuffer = const uint8_t*;
#else
using WriteBuffer = uint8_t*;
#endif

struct AvOutputContextDeleter {
  void operator()(AVFormatContext* f) const { avformat_free_context(f); }
};
using AvOutputContextPtr = std::unique_ptr<AVFormatContext, AvOutputContextDeleter>;

double Seconds(int64_t value, AVRational tb) {
  return static_cast<double>(value) * tb.num / tb.den;
}

int AppendBytes(void* opaque, WriteBuffer buf, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(opaque);
  if (size > 0) out->insert(out->end(), buf, buf + size);
  return size;
}

struct ReadCursor {
  const std::vector<uint8_t>* bytes;
  size_t position = 0;
};

int ReadBytes(void* opaque, uint8_t* buf, int size) {
  auto* c = static_cast<ReadCursor*>(opaque);
  const size_t n = std::min(static_cast<size_t>(std::max(size, 0)), c->bytes->size() - c->position);
  if (n == 0) return AVERROR_EOF;
  std::copy_n(c->bytes->data() + c->position, n, buf);
  c->position += n;
  return static_cast<int>(n);
}

// A custom AVIO context over `opaque` with a 64 KiB buffer.
StatusOr<internal::AvioContextPtr> MakeIo(void* opaque, bool write, const std::string& name) {
  const int buffer_size = 64 * 1024;
  auto* buffer = static_cast<uint8_t*>(av_malloc(buffer_size));
  if (buffer == nullptr) return ResourceExhausted(name + ": AVIO buffer allocation failed");
  internal::AvioContextPtr io(avio_alloc_context(buffer, buffer_size, write ? 1 : 0, opaque,
                                                 write ? nullptr : &ReadBytes,
                                                 write ? &AppendBytes : nullptr, nullptr));
  if (!io) {
    av_free(buffer);
    return ResourceExhausted(name + ": avio_alloc_context failed");
  }
  io->seekable = 0;
  return io;
}

// The input's video packets (one pass) and its stream.
struct InputPackets {
  internal::AvInputContextPtr format;
  AVStream* stream = nullptr;
  std::vector<AvPacketPtr> packets;
};

StatusOr<InputPackets> ReadInput(const std::string& url) {
  InputPackets in;
  AVFormatContext* raw = nullptr;
  if (int err = avformat_open_input(&raw, url.c_str(), nullptr, nullptr); err < 0) {
    return AvError(err, url + ": open");
  }
  in.format.reset(raw);
  if (int err = avformat_find_stream_info(raw, nullptr); err < 0) {
    return AvError(err, url + ": find stream info");
  }
  const int index = av_find_best_stream(raw, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index < 0) return InvalidArgument(url + ": no video stream");
  in.stream = raw->streams[index];
  for (;;) {
    AvPacketPtr p = internal::MakePacket();
    if (!p) return ResourceExhausted(url + ": packet allocation failed");
    const int err = av_read_frame(raw, p.get());
    if (err == AVERROR_EOF) break;
    if (err < 0) return AvError(err, url + ": read packet");
    if (p->stream_index != index) continue;
    if (p->pts == AV_NOPTS_VALUE) {
      return InvalidArgument(url + ": video packet " + std::to_string(in.packets.size()) +
                             " has no presentation timestamp");
    }
    in.packets.push_back(std::move(p));
  }
  if (in.packets.empty()) return InvalidArgument(url + ": no video packets");
  // Containers that store no decode timestamps (Matroska with B-frames):
  // packet k decodes at the k-th presentation time, shifted so that no
  // packet decodes after it is shown.
  bool dts_ok = true;
  for (size_t i = 0; i < in.packets.size(); ++i) {
    const int64_t dts = in.packets[i]->dts;
    dts_ok = dts_ok && dts != AV_NOPTS_VALUE && dts <= in.packets[i]->pts &&
             (i == 0 || dts > in.packets[i - 1]->dts);
  }
  if (!dts_ok) {
    std::vector<int64_t> sorted;
    for (const AvPacketPtr& p : in.packets) sorted.push_back(p->pts);
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return InvalidArgument(url + ": two video packets have the same presentation timestamp");
    }
    int64_t shift = 0;
    for (size_t i = 0; i < sorted.size(); ++i)
      shift = std::max(shift, sorted[i] - in.packets[i]->pts);
    for (size_t i = 0; i < sorted.size(); ++i) in.packets[i]->dts = sorted[i] - shift;
  }
  return in;
}

// One pass in the input's time base: from the first presentation timestamp
// to the end of the last frame.
StatusOr<int64_t> PassSpan(const InputPackets& in, const std::string& url) {
  const AVRational tb = in.stream->time_base;
  AVRational rate = in.stream->avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) rate = in.stream->r_frame_rate;
  const int64_t frame = rate.num > 0 && rate.den > 0 ? av_rescale_q(1, av_inv_q(rate), tb) : 0;
  int64_t first = in.packets.front()->pts, end = first;
  for (const AvPacketPtr& p : in.packets) {
    first = std::min(first, p->pts);
    const int64_t duration = p->duration > 0 ? p->duration : frame;
    if (duration <= 0) return InvalidArgument(url + ": unknown frame duration (no frame rate)");
    end = std::max(end, p->pts + duration);
  }
  // The next pass's first packet must decode after this pass's last one.
  const int64_t dts_span = in.packets.back()->dts - in.packets.front()->dts + 1;
  return std::max(end - first, dts_span);
}

// Reads back the muxed bytes: every packet's start position and timestamps.
Status ScanOutput(const std::string& container, LoopedVideo* video) {
  const std::string name = "looped " + container;
  ReadCursor cursor{&video->bytes};
  BILLNET_ASSIGN_OR_RETURN(internal::AvioContextPtr io, MakeIo(&cursor, /*write=*/false, name));
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) return ResourceExhausted(name + ": avformat_alloc_context failed");
  raw->pb = io.get();
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  if (int err =
          avformat_open_input(&raw, nullptr, av_find_input_format(container.c_str()), nullptr);
      err < 0) {
    return AvError(err, name + ": open for reading back");
  }
  internal::AvInputContextPtr format(raw);
  AvPacketPtr p = internal::MakePacket();
  if (!p) return ResourceExhausted(name + ": packet allocation failed");
  std::vector<int64_t> starts;
  double first_pts = 0, latest_pts = 0;
  for (;;) {
    const int err = av_read_frame(raw, p.get());
    if (err == AVERROR_EOF) break;
    if (err < 0) return AvError(err, name + ": read back");
    const AVRational tb = raw->streams[p->stream_index]->time_base;
    if (p->pos < 0 || (!starts.empty() && p->pos < starts.back()) || p->pts == AV_NOPTS_VALUE) {
      return Unsupported(name +
                         ": the demuxer does not report positions and timestamps of "
                         "every packet");
    }
    LoopedPacket packet;
    packet.pts_s = Seconds(p->pts, tb);
    if (starts.empty()) first_pts = latest_pts = packet.pts_s;
    latest_pts = std::max(latest_pts, packet.pts_s);
    packet.send_s = latest_pts - first_pts;
    packet.key = (p->flags & AV_PKT_FLAG_KEY) != 0;
    starts.push_back(p->pos);
    video->packets.push_back(packet);
    av_packet_unref(p.get());
  }
  if (video->packets.empty()) return Internal(name + ": no packets read back");
  for (size_t i = 0; i < video->packets.size(); ++i) {
    video->packets[i].end =
        i + 1 < starts.size() ? static_cast<size_t>(starts[i + 1]) : video->bytes.size();
  }
  return Status::Ok();
}

}  // namespace

StatusOr<LoopedVideo> RemuxLooped(const std::string& url, const LoopOptions& options) {
  if (!(options.min_duration_s > 0 && options.min_duration_s <= 7 * 86400)) {
    return InvalidArgument(url + ": loop duration must be in (0, 1 week]");
  }
  BILLNET_ASSIGN_OR_RETURN(InputPackets in, ReadInput(url));
  BILLNET_ASSIGN_OR_RETURN(const int64_t span, PassSpan(in, url));
  const AVRational itb = in.stream->time_base;

  LoopedVideo video;
  video.container = options.container;
  video.codec = avcodec_get_name(in.stream->codecpar->codec_id);
  video.width = in.stream->codecpar->width;
  video.height = in.stream->codecpar->height;
  video.fps = in.stream->avg_frame_rate.den > 0 ? av_q2d(in.stream->avg_frame_rate) : 0;
  video.pass_s = Seconds(span, itb);
  video.passes = std::max(1, static_cast<int>(std::ceil(options.min_duration_s / video.pass_s)));
  video.input_packets = static_cast<int64_t>(in.packets.size());
  if (static_cast<double>(video.passes) * video.input_packets > 1e8) {
    return InvalidArgument(url + ": looping to " + std::to_string(options.min_duration_s) +
                           " s needs too many packets");
  }

  const std::string name = "looped " + options.container;
  AVFormatContext* raw = nullptr;
  if (avformat_alloc_output_context2(&raw, nullptr, options.container.c_str(), nullptr) < 0 ||
      raw == nullptr) {
    return InvalidArgument(url + ": unknown container '" + options.container + "'");
  }
  AvOutputContextPtr out(raw);
  BILLNET_ASSIGN_OR_RETURN(internal::AvioContextPtr io, MakeIo(&video.bytes, /*write=*/true, name));
  AVStream* ost = avformat_new_stream(raw, nullptr);
  if (ost == nullptr) return ResourceExhausted(name + ": avformat_new_stream failed");
  if (int err = avcodec_parameters_copy(ost->codecpar, in.stream->codecpar); err < 0) {
    return AvError(err, name + ": stream parameters");
  }
  ost->codecpar->codec_tag = 0;
  ost->time_base = itb;
  ost->avg_frame_rate = in.stream->avg_frame_rate;
  raw->pb = io.get();
  raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  if (int err = avformat_write_header(raw, nullptr); err < 0) {
    return AvError(err, name + ": write header");
  }
  AvPacketPtr q = internal::MakePacket();
  if (!q) return ResourceExhausted(name + ": packet allocation failed");
  const int64_t shift = -in.packets.front()->dts;  // the first decode timestamp becomes 0
  for (int pass = 0; pass < video.passes; ++pass) {
    const int64_t offset = shift + span * pass;
    for (const AvPacketPtr& p : in.packets) {
      if (int err = av_packet_ref(q.get(), p.get()); err < 0) {
        return AvError(err, name + ": packet reference");
      }
      q->pts += offset;
      q->dts += offset;
      q->pos = -1;
      q->stream_index = ost->index;
      av_packet_rescale_ts(q.get(), itb, ost->time_base);
      const int err = av_write_frame(raw, q.get());
      av_packet_unref(q.get());
      if (err < 0) return AvError(err, name + ": write packet");
    }
  }
  if (int err = av_write_trailer(raw); err < 0) return AvError(err, name + ": write trailer");
  avio_flush(io.get());
  out.reset();
  io.reset();
  BILLNET_RETURN_IF_ERROR(ScanOutput(options.container, &video));
  return video;
}

}  // namespace billnet::media
