// From source frames to model frames: the resampler, then the converter, for
// one stream (DESIGN.md section 2.5) - and whole-file helpers built on it.
//
//   VideoDecoder -> ModelFrameStream (Resampler + FrameConverter) -> Windower
//
// ModelFrameStream keeps the previous source frame (a reference, not a copy)
// until the next frame decides the ticks between them, and converts a source
// frame only when a tick takes it (once, however many ticks take it): a 30 fps
// source at 6 fps converts one frame in five.
//
// Thread-safety: one thread at a time per object; the free functions are
// reentrant.
#ifndef BILLNET_MEDIA_PIPELINE_H_
#define BILLNET_MEDIA_PIPELINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "billnet/media/byte_io.h"
#include "billnet/media/converter.h"
#include "billnet/media/decoder.h"
#include "billnet/media/frame.h"
#include "billnet/media/resampler.h"
#include "billnet/status.h"

namespace billnet::media {

// The model's input geometry and frame rate (96 x 128 at 6 fps for BILLNET 2x).
struct ModelTarget {
  int height = 96;
  int width = 128;
  double fps = 6;
};

// One output frame; `rgb` (height x width x 3) is valid during the callback.
struct ModelFrame {
  const uint8_t* rgb = nullptr;
  int height = 0, width = 0;
  int64_t tick = 0;             // k: the frame is the model's frame at t0 + k / fps
  double tick_time = 0;         // t0 + k / fps, seconds
  double source_timestamp = 0;  // the source frame's timestamp
};

class ModelFrameStream {
 public:
  // Called once per model frame, in tick order. A non-OK return stops the
  // push and is returned by it.
  using Emit = std::function<Status(const ModelFrame&)>;

  explicit ModelFrameStream(const ModelTarget& target, const ResamplerOptions& options = {});
  ~ModelFrameStream();
  ModelFrameStream(ModelFrameStream&&) noexcept;
  ModelFrameStream& operator=(ModelFrameStream&&) noexcept;

  // Pushes a decoded frame (taken over) with its timestamp().
  Status Push(DecodedFrame frame, const Emit& emit);
  // Pushes an RGB24 image (copied only if a later tick may still take it).
  Status PushRgb24(const uint8_t* rgb, int width, int height, size_t stride_bytes,
                   double timestamp_s, const Emit& emit);
  // End of stream (nothing is left to decide; see resampler.h). Releases the
  // previous frame.
  Status Flush(const Emit& emit);

  // Resampler phase for state tokens, and resume from one. After Restore the
  // previous frame is the one at phase.last_taken_ts if the caller pushes it
  // again (it is then adopted, not emitted); if the caller resumes later
  // than that frame, ticks that would take it take the first frame pushed.
  ResamplerPhase phase() const;
  Status Restore(const ResamplerPhase& phase);

  // Whether a tick could take a frame at timestamp_s if frames at
  // previous_s and next_s (-inf / +inf: none known) are pushed too: false
  // only when the ticks are known (after the first push or a Restore) and
  // none lies nearer to timestamp_s than to both neighbours. Leaving such a
  // frame out changes no model frame: the VideoDecoder's frame filter.
  bool MayTake(double previous_s, double timestamp_s, double next_s) const;
  // MayTake of this object as a VideoDecoder frame filter. It refers to this
  // object: valid while it lives (a move-assignment into it keeps it valid).
  VideoDecoder::FrameFilter TakeFilter() const;

  const ModelTarget& target() const;
  int64_t frames_in() const;
  int64_t frames_out() const;
  int64_t frames_dropped() const;  // non-increasing/skipped timestamps

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A whole clip at the model's geometry and rate.
struct ModelFrames {
  int frames = 0, height = 0, width = 0;
  double fps = 0;
  std::vector<uint8_t> rgb;       // frames x height x width x 3
  std::vector<double> source_ts;  // per output frame: its source frame's timestamp
  StreamInfo info;                // of the decoded stream (empty for RGB input)
  int64_t source_frames = 0;      // decoded / given
  int64_t undecoded_frames = 0;   // left undecoded: no tick takes them (skip_untaken_frames)
  int64_t dropped_frames = 0;     // by the resampler

  size_t frame_bytes() const { return static_cast<size_t>(height) * width * 3; }
};

struct PipelineOptions {
  DecoderOptions decoder;
  ResamplerOptions resampler;
  // Stop with ResourceExhausted beyond this many output frames (0: no limit).
  int64_t max_output_frames = 0;
  // Let the decoder leave non-reference frames that no tick takes undecoded
  // (VideoDecoder::SetFrameFilter): the same model frames, less decoding.
  bool skip_untaken_frames = true;
};

// Decodes a whole file/URL (or source) to model frames: decode -> resample
// -> convert.
StatusOr<ModelFrames> DecodeFileToModelFrames(const std::string& path, const ModelTarget& target,
                                              const PipelineOptions& options = {});
StatusOr<ModelFrames> DecodeSourceToModelFrames(ByteSource* source, const ModelTarget& target,
                                                const PipelineOptions& options = {},
                                                const std::string& name = "stream");

// The same path for frames already in memory: `frames` RGB24 images of
// width x height (frame-major, tightly packed) at `fps` (frame i at i / fps),
// e.g. the synthetic renderer's 176x100 12 fps clips.
StatusOr<ModelFrames> RgbFramesToModelFrames(const uint8_t* rgb, int frames, int width, int height,
                                             double fps, const ModelTarget& target);

}  // namespace billnet::media

#endif  // BILLNET_MEDIA_PIPELINE_H_
