#include "billnet/media/resampler.h"

#include <cmath>
#include <string>

namespace billnet::media {

Resampler::Resampler(double fps, ResamplerOptions options) : fps_(fps), options_(options) {}

StatusOr<Resampler::Step> Resampler::Push(double ts) {
  if (!(fps_ > 0 && fps_ <= 1000)) {
    return InvalidArgument("resampler: frame rate " + std::to_string(fps_) +
                           " is outside (0, 1000]");
  }
  Step step;
  step.first_tick = next_tick_;
  if (!std::isfinite(ts)) {
    ++dropped_;
    step.kind = Step::Kind::kDropped;
    return step;
  }
  if (awaiting_resume_) {
    if (ts < previous_ts_ - kEpsilon) {
      ++skipped_;
      step.kind = Step::Kind::kSkipped;
      return step;
    }
    if (ts <= previous_ts_ + kEpsilon) {
      awaiting_resume_ = false;
      step.kind = Step::Kind::kAdopted;
      return step;
    }
    awaiting_resume_ = false;  // resumed after the last taken frame
  } else if (has_previous_ && ts <= previous_ts_ + kEpsilon) {
    ++dropped_;
    step.kind = Step::Kind::kDropped;
    return step;
  }
  if (has_previous_ && ts - previous_ts_ > options_.max_gap_s) {
    return InvalidArgument("resampler: timestamps jump from " + std::to_string(previous_ts_) +
                           " s to " + std::to_string(ts) + " s, more than the limit of " +
                           std::to_string(options_.max_gap_s) + " s");
  }
  if (!started_) {
    started_ = true;
    t0_ = ts;
  }
  // Every tick at or before `ts` is decided now: its nearest frame is this one
  // or the previous one.
  for (;;) {
    const double tick = TickTime(next_tick_);
    if (tick > ts + kEpsilon) break;
    const bool take_previous =
        has_previous_ && std::fabs(tick - previous_ts_) <= (ts - tick) + kEpsilon;
    if (take_previous) {
      ++step.previous_ticks;
      last_taken_ts_ = previous_ts_;
    } else {
      ++step.current_ticks;
      last_taken_ts_ = ts;
    }
    ++next_tick_;
  }
  has_previous_ = true;
  previous_ts_ = ts;
  return step;
}

ResamplerPhase Resampler::phase() const {
  ResamplerPhase p;
  p.started = started_;
  p.t0 = t0_;
  p.next_tick = next_tick_;
  p.last_taken_ts = last_taken_ts_;
  return p;
}

Status Resampler::Restore(const ResamplerPhase& p) {
  if (p.next_tick < 0 || !std::isfinite(p.t0) || !std::isfinite(p.last_taken_ts)) {
    return InvalidArgument("resampler phase: negative tick or non-finite time");
  }
  if (p.started && p.next_tick > 0 && p.last_taken_ts < p.t0 - kEpsilon) {
    return InvalidArgument("resampler phase: last taken frame before t0");
  }
  started_ = p.started;
  t0_ = p.started ? p.t0 : 0;
  next_tick_ = p.started ? p.next_tick : 0;
  last_taken_ts_ = p.last_taken_ts;
  has_previous_ = p.started && p.next_tick > 0;
  previous_ts_ = has_previous_ ? p.last_taken_ts : 0;
  awaiting_resume_ = has_previous_;
  dropped_ = 0;
  skipped_ = 0;
  return Status::Ok();
}

}  // namespace billnet::media
