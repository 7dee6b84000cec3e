#include "billnet/media/windower.h"

#include <algorithm>
#include <cstring>

namespace billnet::media {

Windower::Windower(int frames, int height, int width, int64_t first_sequence)
    : frames_(std::max(frames, 1)),
      height_(std::max(height, 1)),
      width_(std::max(width, 1)),
      next_sequence_(first_sequence) {
  StartWindow();
}

void Windower::StartWindow() {
  current_ = Window{};
  current_.sequence = next_sequence_;
  current_.frames = frames_;
  current_.height = height_;
  current_.width = width_;
  current_.rgb.resize(current_.frame_bytes() * frames_);
  current_.source_ts.reserve(frames_);
}

std::optional<Window> Windower::Add(const uint8_t* rgb, double source_ts) {
  const size_t fb = current_.frame_bytes();
  const size_t n = current_.source_ts.size();
  std::memcpy(current_.rgb.data() + n * fb, rgb, fb);
  if (n == 0) current_.first_source_ts = source_ts;
  current_.last_source_ts = source_ts;
  current_.source_ts.push_back(source_ts);
  if (static_cast<int>(n + 1) < frames_) return std::nullopt;
  current_.real_frames = frames_;
  current_.padded = false;
  Window done = std::move(current_);
  ++next_sequence_;
  StartWindow();
  return done;
}

std::optional<Window> Windower::Finish() {
  const size_t n = current_.source_ts.size();
  if (n == 0) return std::nullopt;
  const size_t fb = current_.frame_bytes();
  for (size_t i = n; i < static_cast<size_t>(frames_); ++i) {
    std::memcpy(current_.rgb.data() + i * fb, current_.rgb.data() + (n - 1) * fb, fb);
  }
  current_.real_frames = static_cast<int>(n);
  current_.padded = static_cast<int>(n) < frames_;
  Window done = std::move(current_);
  ++next_sequence_;
  StartWindow();
  return done;
}

}  // namespace billnet::media
