#include "uplink.h"

#include <algorithm>
#include <cmath>

namespace billnet::client {

double PacingDelay(double origin_wall, double origin_ts, double now, double ts) {
  return std::max(0.0, origin_wall + (ts - origin_ts) - now);
}

bool Pacer::Wait(double ts) {
  if (!has_origin_) {
    has_origin_ = true;
    origin_wall_ = clock_();
    origin_ts_ = ts;
    return true;
  }
  const double delay = PacingDelay(origin_wall_, origin_ts_, clock_(), ts);
  return delay > 0 ? sleep_(delay) : true;
}

Status PassthroughUplink::Begin(double) {
  offset_ = 0;
  if (media::IsUrl(path_)) {
    if (!url_) {
      BILLNET_ASSIGN_OR_RETURN(url_, media::UrlByteSource::Open(path_, timeout_s_));
    }
  } else if (!in_) {
    in_ = std::make_unique<std::ifstream>(path_, std::ios::binary);
    if (!*in_) return NotFound("cannot open " + path_);
  }
  return Status::Ok();
}

StatusOr<bool> PassthroughUplink::Next(size_t max_bytes, std::string* chunk) {
  if (offset_ >= bytes_.size() && !eof_ && url_) {
    std::string more(max_bytes, '\0');
    BILLNET_ASSIGN_OR_RETURN(size_t n,
                             url_->Read(reinterpret_cast<uint8_t*>(more.data()), max_bytes));
    if (n == 0) eof_ = true;
    bytes_.append(more.data(), n);
  } else if (offset_ >= bytes_.size() && !eof_) {
    std::string more(max_bytes, '\0');
    in_->read(more.data(), std::streamsize(max_bytes));
    const std::streamsize n = in_->gcount();
    if (n < std::streamsize(max_bytes)) {
      if (in_->bad()) return Internal("reading " + path_ + " failed");
      eof_ = true;
    }
    bytes_.append(more.data(), size_t(n));
  }
  if (offset_ >= bytes_.size()) return false;
  *chunk = bytes_.substr(offset_, max_bytes);
  offset_ += chunk->size();
  return true;
}

namespace {

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

StatusOr<std::unique_ptr<PacedPassthroughUplink>> PacedPassthroughUplink::Open(
    const std::string& path, Pacer::Clock clock, Pacer::Sleep sleep) {
  media::LoopOptions lo;
  lo.container = "matroska";
  lo.min_duration_s = 1e-3;  // one pass: whole passes until this long
  auto video = media::RemuxLooped(path, lo);
  if (!video.ok()) return video.status();
  if (video->packets.empty()) return InvalidArgument(path + " has no video packets");
  return std::unique_ptr<PacedPassthroughUplink>(
      new PacedPassthroughUplink(std::move(*video), std::move(clock), std::move(sleep)));
}

PacedPassthroughUplink::PacedPassthroughUplink(media::LoopedVideo video, Pacer::Clock clock,
                                               Pacer::Sleep sleep)
    : video_(std::move(video)),
      pacer_(clock ? std::move(clock) : Pacer::Clock(SteadySeconds),
             sleep ? std::move(sleep) : Pacer::Sleep([this](double s) { return Sleep(s); })) {}

bool PacedPassthroughUplink::Sleep(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stop_; });
}

void PacedPassthroughUplink::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

Status PacedPassthroughUplink::Begin(double covered_ts) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
  }
  covered_ts_ = covered_ts;
  next_packet_ = 0;
  released_ = 0;
  offset_ = 0;
  pacer_.Rebase();
  return Status::Ok();
}

StatusOr<bool> PacedPassthroughUplink::Next(size_t max_bytes, std::string* chunk) {
  const std::vector<media::LoopedPacket>& packets = video_.packets;
  if (offset_ >= released_) {
    if (next_packet_ < packets.size()) {
      const media::LoopedPacket& p = packets[next_packet_];
      if (p.pts_s > covered_ts_ && !pacer_.Wait(p.send_s))
        return Cancelled("stream stopped while pacing");
      released_ = p.end;
      ++next_packet_;
    } else {
      released_ = video_.bytes.size();  // the container's trailer
    }
  }
  if (offset_ >= released_) return false;
  const size_t n = std::min(max_bytes, released_ - offset_);
  chunk->assign(reinterpret_cast<const char*>(video_.bytes.data()) + offset_, n);
  offset_ += n;
  return true;
}

StatusOr<std::unique_ptr<EncodingUplink>> EncodingUplink::Open(const SourceSpec& source,
                                                               const EncodingOptions& options) {
  media::DecoderOptions dopt;
  dopt.format_hint = source.format;
  dopt.format_options = source.format_options;
  auto decoder = media::VideoDecoder::Open(source.url, dopt);
  if (!decoder.ok()) return decoder.status();
  return std::unique_ptr<EncodingUplink>(new EncodingUplink(source, options, std::move(*decoder)));
}

EncodingUplink::EncodingUplink(const SourceSpec& source, const EncodingOptions& options,
                               std::unique_ptr<media::VideoDecoder> decoder)
    : source_(source),
      options_(options),
      decoder_(std::move(decoder)),
      frames_(options.target),
      pacer_(SteadySeconds, [this](double s) { return Sleep(s); }) {
  // Frames no model frame takes need not be decoded (the same model frames).
  decoder_->SetFrameFilter(frames_.TakeFilter());
}

EncodingUplink::~EncodingUplink() {
  encoder_.reset();  // before its sink
}

bool EncodingUplink::Sleep(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stop_; });
}

void EncodingUplink::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

Status EncodingUplink::Begin(double covered_ts) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
    if (covered_ts >= 0) {
      replay_ = std::llround(covered_ts * options_.target.fps);
    } else {
      replay_ = kept_.empty() ? next_index_ : kept_.front().index;
    }
    while (!kept_.empty() && kept_.front().index < replay_) kept_.pop_front();
    if (!kept_.empty()) replay_ = std::max(replay_, kept_.front().index);
    replay_ = std::min(replay_, next_index_);
  }
  pacer_.Rebase();
  if (options_.live && connections_ > 0) rebase_ts_ = true;
  ++connections_;
  encoder_.reset();
  sink_ = std::make_unique<media::MemoryByteSink>(/*seekable=*/false);
  media::EncoderOptions eo;
  eo.codec = options_.codec;
  eo.container = "matroska";
  eo.width = options_.target.width;
  eo.height = options_.target.height;
  eo.fps = options_.target.fps;
  eo.crf = 0;
  eo.mjpeg_qscale = 2;
  auto enc = media::VideoEncoder::Open(sink_.get(), eo, "client stream");
  if (!enc.ok()) return enc.status();
  encoder_ = std::move(*enc);
  pending_.clear();
  finished_ = false;
  return Status::Ok();
}

Status EncodingUplink::Encode(int64_t index, const uint8_t* rgb) {
  BILLNET_RETURN_IF_ERROR(encoder_->AddFrame(rgb, 0, double(index) / options_.target.fps));
  const std::vector<uint8_t> bytes = sink_->Take();
  pending_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return Status::Ok();
}

Status EncodingUplink::Produce() {
  const int64_t before = next_index_;
  const media::ModelFrameStream::Emit emit = [&](const media::ModelFrame& f) -> Status {
    if (options_.max_frames >= 0 && next_index_ >= options_.max_frames) return Status::Ok();
    const size_t n = size_t(f.height) * size_t(f.width) * 3;
    {
      std::lock_guard<std::mutex> lock(mu_);
      kept_.push_back(
          {next_index_, std::vector<uint8_t>(f.rgb, f.rgb + n), std::chrono::steady_clock::now()});
    }
    BILLNET_RETURN_IF_ERROR(Encode(next_index_, f.rgb));
    ++next_index_;
    replay_ = next_index_;
    return Status::Ok();
  };
  media::DecodedFrame frame;
  while (next_index_ == before && !source_done_) {
    if (options_.max_frames >= 0 && next_index_ >= options_.max_frames) {
      source_done_ = true;
      break;
    }
    auto more = decoder_->Next(&frame);
    if (!more.ok()) return more.status();
    if (!*more) {
      BILLNET_RETURN_IF_ERROR(frames_.Flush(emit));
      source_done_ = true;
      break;
    }
    if (options_.live) {
      double ts = frame.timestamp() - ts_offset_;
      if (rebase_ts_ && has_source_ts_) {
        const double next = last_source_ts_ + 1.0 / options_.target.fps;
        if (ts > next) ts_offset_ += ts - next;
        ts = frame.timestamp() - ts_offset_;
      }
      rebase_ts_ = false;
      frame.set_timestamp(ts);
      last_source_ts_ = ts;
      has_source_ts_ = true;
    }
    if (options_.realtime && !pacer_.Wait(frame.timestamp()))
      return Cancelled("stream stopped while pacing");
    BILLNET_RETURN_IF_ERROR(frames_.Push(std::move(frame), emit));
  }
  return Status::Ok();
}

StatusOr<bool> EncodingUplink::Next(size_t max_bytes, std::string* chunk) {
  while (pending_.empty()) {
    if (replay_ < next_index_) {
      std::vector<uint8_t> rgb;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!kept_.empty() && replay_ < kept_.front().index) replay_ = kept_.front().index;
        if (kept_.empty() || replay_ >= next_index_) {
          replay_ = next_index_;
          continue;
        }
        Kept& k = kept_[size_t(replay_ - kept_.front().index)];
        k.sent = std::chrono::steady_clock::now();
        rgb = k.rgb;
      }
      BILLNET_RETURN_IF_ERROR(Encode(replay_, rgb.data()));
      ++replay_;
    } else if (!source_done_) {
      BILLNET_RETURN_IF_ERROR(Produce());
    } else if (!finished_) {
      BILLNET_RETURN_IF_ERROR(encoder_->Finish());
      finished_ = true;
      const std::vector<uint8_t> bytes = sink_->Take();
      pending_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    } else {
      return false;
    }
  }
  *chunk = pending_.substr(0, max_bytes);
  pending_.erase(0, chunk->size());
  return true;
}

void EncodingUplink::Ack(double last_ts) {
  const int64_t k = std::llround(last_ts * options_.target.fps);
  std::lock_guard<std::mutex> lock(mu_);
  while (!kept_.empty() && kept_.front().index < k) kept_.pop_front();
}

std::optional<double> EncodingUplink::SinceSent(double last_ts) const {
  const int64_t k = std::llround(last_ts * options_.target.fps);
  std::lock_guard<std::mutex> lock(mu_);
  if (kept_.empty() || k < kept_.front().index || k >= kept_.front().index + int64_t(kept_.size()))
    return std::nullopt;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       kept_[size_t(k - kept_.front().index)].sent)
      .count();
}

size_t EncodingUplink::kept_frames() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kept_.size();
}

}  // namespace billnet::client
