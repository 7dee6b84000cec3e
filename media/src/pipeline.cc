#include "billnet/media/pipeline.h"

#include <cmath>
#include <cstring>

namespace billnet::media {

namespace {

// A source frame that a tick may take: the decoded frame or a copy of an RGB
// image until it is converted, then only its model frame.
struct Source {
  bool valid = false;
  double ts = 0;
  DecodedFrame frame;
  const uint8_t* rgb = nullptr;  // borrowed during a push, else points into rgb_copy
  std::vector<uint8_t> rgb_copy;
  int width = 0, height = 0;
  size_t stride = 0;
  bool converted = false;
  std::vector<uint8_t> model_rgb;

  // Keeps only what later ticks need, owned.
  void Settle() {
    if (converted) {
      frame = DecodedFrame();
      rgb = nullptr;
      rgb_copy.clear();
      rgb_copy.shrink_to_fit();
    } else if (rgb != nullptr && rgb != rgb_copy.data()) {
      const size_t row = static_cast<size_t>(width) * 3;
      rgb_copy.resize(row * height);
      for (int y = 0; y < height; ++y)
        std::memcpy(rgb_copy.data() + y * row, rgb + y * stride, row);
      rgb = rgb_copy.data();
      stride = row;
    }
  }
};

}  // namespace

struct ModelFrameStream::State {
  State(const ModelTarget& t, const ResamplerOptions& o)
      : target(t), resampler(t.fps, o), converter(t.width, t.height) {}

  Status Take(Source& s, int64_t tick, const Emit& emit) {
    if (!s.converted) {
      s.model_rgb.resize(converter.frame_bytes());
      if (s.rgb != nullptr) {
        BILLNET_RETURN_IF_ERROR(
            converter.ConvertRgb24(s.rgb, s.width, s.height, s.stride, s.model_rgb.data()));
      } else {
        BILLNET_RETURN_IF_ERROR(converter.Convert(s.frame, s.model_rgb.data()));
      }
      s.converted = true;
    }
    ModelFrame m;
    m.rgb = s.model_rgb.data();
    m.height = target.height;
    m.width = target.width;
    m.tick = tick;
    m.tick_time = resampler.TickTime(tick);
    m.source_timestamp = s.ts;
    ++out;
    return emit ? emit(m) : Status::Ok();
  }

  Status PushSource(Source current, const Emit& emit) {
    ++in;
    BILLNET_ASSIGN_OR_RETURN(const Resampler::Step step, resampler.Push(current.ts));
    using Kind = Resampler::Step::Kind;
    if (step.kind == Kind::kDropped || step.kind == Kind::kSkipped) {
      ++dropped;
      return Status::Ok();
    }
    if (step.kind == Kind::kAdopted) {
      previous = std::move(current);
      previous.Settle();
      return Status::Ok();
    }
    int64_t tick = step.first_tick;
    for (int64_t i = 0; i < step.previous_ticks; ++i, ++tick) {
      // After a resume without the last taken frame, its ticks take this one.
      BILLNET_RETURN_IF_ERROR(Take(previous.valid ? previous : current, tick, emit));
    }
    for (int64_t i = 0; i < step.current_ticks; ++i, ++tick) {
      BILLNET_RETURN_IF_ERROR(Take(current, tick, emit));
    }
    previous = std::move(current);
    previous.Settle();
    return Status::Ok();
  }

  ModelTarget target;
  Resampler resampler;
  FrameConverter converter;
  Source previous;
  int64_t in = 0, out = 0, dropped = 0;
};

ModelFrameStream::ModelFrameStream(const ModelTarget& target, const ResamplerOptions& options)
    : state_(std::make_unique<State>(target, options)) {}
ModelFrameStream::~ModelFrameStream() = default;
ModelFrameStream::ModelFrameStream(ModelFrameStream&&) noexcept = default;
ModelFrameStream& ModelFrameStream::operator=(ModelFrameStream&&) noexcept = default;

Status ModelFrameStream::Push(DecodedFrame frame, const Emit& emit) {
  if (frame.empty()) return InvalidArgument("ModelFrameStream::Push: empty frame");
  Source s;
  s.valid = true;
  s.ts = frame.timestamp();
  s.frame = std::move(frame);
  return state_->PushSource(std::move(s), emit);
}

Status ModelFrameStream::PushRgb24(const uint8_t* rgb, int width, int height, size_t stride_bytes,
                                   double timestamp_s, const Emit& emit) {
  BILLNET_RETURN_IF_ERROR(CheckFrameSize(width, height));
  if (stride_bytes == 0) stride_bytes = static_cast<size_t>(width) * 3;
  if (rgb == nullptr || stride_bytes < static_cast<size_t>(width) * 3) {
    return InvalidArgument("ModelFrameStream::PushRgb24: null image or stride below width * 3");
  }
  Source s;
  s.valid = true;
  s.ts = timestamp_s;
  s.rgb = rgb;
  s.width = width;
  s.height = height;
  s.stride = stride_bytes;
  return state_->PushSource(std::move(s), emit);
}

Status ModelFrameStream::Flush(const Emit& emit) {
  state_->resampler.Flush();
  state_->previous = Source{};
  return Status::Ok();
}

ResamplerPhase ModelFrameStream::phase() const { return state_->resampler.phase(); }

Status ModelFrameStream::Restore(const ResamplerPhase& phase) {
  BILLNET_RETURN_IF_ERROR(state_->resampler.Restore(phase));
  state_->previous = Source{};
  return Status::Ok();
}

bool ModelFrameStream::MayTake(double previous_s, double timestamp_s, double next_s) const {
  const Resampler& r = state_->resampler;
  if (!r.phase().started) return true;  // the ticks are not known yet
  // A frame with decoded neighbours at previous_s and next_s can only be
  // nearest to ticks between the midpoints; any other frame between them
  // narrows that. The margin is far wider than the resampler's kEpsilon.
  constexpr double kMargin = 1e-4;
  const double lo = (previous_s + timestamp_s) / 2 - kMargin;  // -inf with no previous
  const double hi = (timestamp_s + next_s) / 2 + kMargin;      // +inf with no next
  if (std::isnan(lo) || std::isnan(hi)) return true;
  const double first = std::ceil((lo - r.TickTime(0)) * r.fps());
  if (!(first < 9e15)) return false;  // lo beyond any tick a stream reaches
  const int64_t k = first > 0 ? static_cast<int64_t>(first) : 0;
  return r.TickTime(k) <= hi;
}

VideoDecoder::FrameFilter ModelFrameStream::TakeFilter() const {
  return [this](double previous_s, double timestamp_s, double next_s) {
    return MayTake(previous_s, timestamp_s, next_s);
  };
}

const ModelTarget& ModelFrameStream::target() const { return state_->target; }
int64_t ModelFrameStream::frames_in() const { return state_->in; }
int64_t ModelFrameStream::frames_out() const { return state_->out; }
int64_t ModelFrameStream::frames_dropped() const { return state_->dropped; }

namespace {

Status CheckTarget(const ModelTarget& t) {
  if (t.width < 1 || t.height < 1 || t.width > kMaxFrameDimension ||
      t.height > kMaxFrameDimension || !(t.fps > 0 && t.fps <= 1000)) {
    return InvalidArgument("model target " + std::to_string(t.width) + "x" +
                           std::to_string(t.height) + " at " + std::to_string(t.fps) +
                           " fps is out of range");
  }
  return Status::Ok();
}

ModelFrameStream::Emit Collector(ModelFrames* out, int64_t max_frames) {
  return [out, max_frames](const ModelFrame& m) -> Status {
    if (max_frames > 0 && out->frames >= max_frames) {
      return ResourceExhausted("more than " + std::to_string(max_frames) + " model frames");
    }
    out->rgb.insert(out->rgb.end(), m.rgb, m.rgb + out->frame_bytes());
    out->source_ts.push_back(m.source_timestamp);
    ++out->frames;
    return Status::Ok();
  };
}

StatusOr<ModelFrames> DecodeAll(VideoDecoder& decoder, const ModelTarget& target,
                                const PipelineOptions& options) {
  ModelFrames out;
  out.height = target.height;
  out.width = target.width;
  out.fps = target.fps;
  out.info = decoder.info();
  ModelFrameStream stream(target, options.resampler);
  if (options.skip_untaken_frames) decoder.SetFrameFilter(stream.TakeFilter());
  const ModelFrameStream::Emit emit = Collector(&out, options.max_output_frames);
  for (;;) {
    DecodedFrame frame;
    BILLNET_ASSIGN_OR_RETURN(const bool got, decoder.Next(&frame));
    if (!got) break;
    BILLNET_RETURN_IF_ERROR(stream.Push(std::move(frame), emit));
  }
  BILLNET_RETURN_IF_ERROR(stream.Flush(emit));
  out.source_frames = stream.frames_in();
  out.undecoded_frames = decoder.frames_undecoded();
  out.dropped_frames = stream.frames_dropped();
  return out;
}

}  // namespace

StatusOr<ModelFrames> DecodeFileToModelFrames(const std::string& path, const ModelTarget& target,
                                              const PipelineOptions& options) {
  BILLNET_RETURN_IF_ERROR(CheckTarget(target));
  BILLNET_ASSIGN_OR_RETURN(std::unique_ptr<VideoDecoder> decoder,
                           VideoDecoder::Open(path, options.decoder));
  StatusOr<ModelFrames> r = DecodeAll(*decoder, target, options);
  if (!r.ok()) return r.status().WithContext("'" + path + "'");
  return r;
}

StatusOr<ModelFrames> DecodeSourceToModelFrames(ByteSource* source, const ModelTarget& target,
                                                const PipelineOptions& options,
                                                const std::string& name) {
  BILLNET_RETURN_IF_ERROR(CheckTarget(target));
  BILLNET_ASSIGN_OR_RETURN(std::unique_ptr<VideoDecoder> decoder,
                           VideoDecoder::Open(source, options.decoder, name));
  StatusOr<ModelFrames> r = DecodeAll(*decoder, target, options);
  if (!r.ok()) return r.status().WithContext(name);
  return r;
}

StatusOr<ModelFrames> RgbFramesToModelFrames(const uint8_t* rgb, int frames, int width, int height,
                                             double fps, const ModelTarget& target) {
  BILLNET_RETURN_IF_ERROR(CheckTarget(target));
  BILLNET_RETURN_IF_ERROR(CheckFrameSize(width, height));
  if (frames < 0 || (frames > 0 && rgb == nullptr) || !(fps > 0 && fps <= 1000)) {
    return InvalidArgument("RgbFramesToModelFrames: bad frame count, buffer or fps");
  }
  ModelFrames out;
  out.height = target.height;
  out.width = target.width;
  out.fps = target.fps;
  ModelFrameStream stream(target);
  const ModelFrameStream::Emit emit = Collector(&out, 0);
  const size_t frame_bytes = static_cast<size_t>(width) * height * 3;
  for (int i = 0; i < frames; ++i) {
    BILLNET_RETURN_IF_ERROR(stream.PushRgb24(rgb + frame_bytes * i, width, height, 0,
                                             static_cast<double>(i) / fps, emit));
  }
  BILLNET_RETURN_IF_ERROR(stream.Flush(emit));
  out.source_frames = stream.frames_in();
  out.dropped_frames = stream.frames_dropped();
  return out;
}

}  // namespace billnet::media
