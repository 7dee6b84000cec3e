// Resampler: source frames with timestamps -> the model's fixed frame rate
// (DESIGN.md section 2.5, shared by trainer, server and client).
//
// The rule: ticks are t_k = t0 + k / fps, k = 0, 1, 2, ..., with t0 the first
// frame's timestamp. Tick k takes the source frame whose timestamp is nearest
// to t_k; on a tie, the earlier frame. Ticks exist up to the last frame's
// timestamp (t_k <= t_last): the output of a whole clip has
// floor((t_last - t0) * fps) + 1 frames (36 frames at 12 fps -> 18 at 6 fps;
// 90 frames at 30 fps -> 18). Comparisons allow kEpsilon (1 microsecond) for
// the rounding of container time bases: a tie within it goes to the earlier
// frame, a tick within it of a frame is at that frame.
//
// Streaming: push the frames' timestamps in order. A push decides every tick
// up to its timestamp (the nearest frame to such a tick is this one or the
// previous one; any later frame is farther), so output never waits for more
// than the next source frame. Flush() has nothing left to decide under this
// rule; it exists so callers state the end of a stream.
//
// Bad timestamps: a frame whose timestamp is not finite, or not later than
// the previous pushed frame's (+ kEpsilon), is dropped (counted in dropped();
// decoders output in presentation order, so this is a damaged stream or a
// duplicate). A forward jump larger than max_gap_s is an error (InvalidArgument):
// it would otherwise repeat one frame for every tick in the gap.
//
// Resume (state tokens, section 3): phase() exports (t0, next tick, the
// timestamp of the source frame taken by the last decided tick). A resampler
// restored from it treats that frame as the previous frame: frames pushed with
// earlier timestamps are ignored (counted in skipped()), a frame at that
// timestamp (within kEpsilon) is adopted as the previous frame without
// deciding any tick, and later frames continue exactly as an undisturbed run
// would. Callers that resend from a key frame at or before that timestamp
// get identical output.
//
// Thread-safety: one thread at a time. Plain value; copyable.
#ifndef BILLNET_MEDIA_RESAMPLER_H_
#define BILLNET_MEDIA_RESAMPLER_H_

#include <cstdint>

#include "billnet/status.h"

namespace billnet::media {

struct ResamplerOptions {
  double max_gap_s = 10.0;  // largest accepted jump between consecutive frames
};

struct ResamplerPhase {
  bool started = false;   // a first frame fixed t0
  double t0 = 0;          // seconds
  int64_t next_tick = 0;  // index of the next tick to decide
  // Timestamp of the source frame taken by tick next_tick - 1 (valid when
  // next_tick > 0).
  double last_taken_ts = 0;
};

class Resampler {
 public:
  static constexpr double kEpsilon = 1e-6;

  // fps in (0, 1000]; anything else makes every Push fail with InvalidArgument.
  explicit Resampler(double fps, ResamplerOptions options = {});

  // What one push decided: ticks first_tick .. first_tick + previous_ticks - 1
  // take the previous frame, the following current_ticks ticks take this one.
  struct Step {
    enum class Kind {
      kAccepted,  // the frame is now the previous frame (it may decide no tick)
      kDropped,   // non-increasing or non-finite timestamp: ignored
      kSkipped,   // before the restored phase's last taken frame: ignored
      kAdopted,   // the restored phase's last taken frame: previous frame, no tick
    };
    Kind kind = Kind::kAccepted;
    int64_t first_tick = 0;
    int64_t previous_ticks = 0;
    int64_t current_ticks = 0;
    int64_t ticks() const { return previous_ticks + current_ticks; }
  };

  StatusOr<Step> Push(double timestamp_s);

  // The end of the stream: nothing more to decide (see above). Returns the
  // number of ticks emitted in total.
  int64_t Flush() const { return next_tick_; }

  double fps() const { return fps_; }
  double TickTime(int64_t k) const { return t0_ + static_cast<double>(k) / fps_; }

  ResamplerPhase phase() const;
  // Continues from `phase` (InvalidArgument when it is inconsistent: a
  // negative tick, non-finite times).
  Status Restore(const ResamplerPhase& phase);

  int64_t dropped() const { return dropped_; }
  int64_t skipped() const { return skipped_; }
  // True after Restore() until a frame at or after the last taken timestamp
  // arrives; while set, the previous frame is known by its timestamp only.
  bool awaiting_resume_frame() const { return awaiting_resume_; }

 private:
  double fps_;
  ResamplerOptions options_;
  bool started_ = false;
  double t0_ = 0;
  int64_t next_tick_ = 0;
  bool has_previous_ = false;
  double previous_ts_ = 0;
  double last_taken_ts_ = 0;
  bool awaiting_resume_ = false;
  int64_t dropped_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace billnet::media

#endif  // BILLNET_MEDIA_RESAMPLER_H_
