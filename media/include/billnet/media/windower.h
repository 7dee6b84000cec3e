// Windower: model frames -> consecutive, non-overlapping windows of N frames
// (16 for BILLNET 2x), DESIGN.md section 3.
//
// Finish() completes a partial last window (or a stream shorter than N) by
// repeating its last frame, and marks it padded with its count of real
// frames; a stream with no frame at all gives no window. A caller whose
// connection broke simply does not call Finish() (nothing is padded).
//
// Thread-safety: one thread at a time. Memory: one window's pixels.
#ifndef BILLNET_MEDIA_WINDOWER_H_
#define BILLNET_MEDIA_WINDOWER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace billnet::media {

struct Window {
  int64_t sequence = 0;  // 0, 1, ... per stream (first_sequence on resume)
  int frames = 0, height = 0, width = 0;
  // frames x height x width x 3 bytes, frame-major, row-major, RGB.
  std::vector<uint8_t> rgb;
  int real_frames = 0;  // == frames unless padded
  bool padded = false;
  // Source timestamps (seconds) of the first and the last real frame, and of
  // every real frame.
  double first_source_ts = 0, last_source_ts = 0;
  std::vector<double> source_ts;

  size_t frame_bytes() const { return static_cast<size_t>(height) * width * 3; }
};

class Windower {
 public:
  // frames >= 1, height and width >= 1.
  Windower(int frames, int height, int width, int64_t first_sequence = 0);

  // Appends one frame of height x width x 3 bytes taken at `source_ts`.
  // Returns the window it completes, if any.
  std::optional<Window> Add(const uint8_t* rgb, double source_ts);

  // Ends the stream: the padded partial window, if frames are pending.
  std::optional<Window> Finish();

  int pending() const { return static_cast<int>(current_.source_ts.size()); }
  int64_t next_sequence() const { return next_sequence_; }

 private:
  void StartWindow();
  int frames_, height_, width_;
  int64_t next_sequence_;
  Window current_;
};

}  // namespace billnet::media

#endif  // BILLNET_MEDIA_WINDOWER_H_
