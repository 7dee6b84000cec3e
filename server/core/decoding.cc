#include "core/decoding.h"

#include <algorithm>
#include <cstring>

namespace billnet::server {

namespace {

class FfmpegDecoder : public FrameDecoder {
 public:
  explicit FfmpegDecoder(std::unique_ptr<media::VideoDecoder> d) : d_(std::move(d)) {}
  StatusOr<bool> Next(media::DecodedFrame* frame) override { return d_->Next(frame); }
  void SkipToKeyFrame(double not_before_s) override { d_->SkipToKeyFrame(not_before_s); }
  int64_t frames_skipped() const override { return d_->frames_skipped(); }
  void SetFrameFilter(media::VideoDecoder::FrameFilter wanted) override {
    d_->SetFrameFilter(std::move(wanted));
  }
  int64_t frames_undecoded() const override { return d_->frames_undecoded(); }

 private:
  std::unique_ptr<media::VideoDecoder> d_;
};

class FfmpegDecoderFactory : public DecoderFactory {
 public:
  StatusOr<std::unique_ptr<FrameDecoder>> Open(media::ByteSource* source,
                                               const media::DecoderOptions& options,
                                               const std::string& name) override {
    BILLNET_ASSIGN_OR_RETURN(auto d, media::VideoDecoder::Open(source, options, name));
    return std::unique_ptr<FrameDecoder>(std::make_unique<FfmpegDecoder>(std::move(d)));
  }
};

}  // namespace

std::shared_ptr<DecoderFactory> MakeFfmpegDecoderFactory() {
  return std::make_shared<FfmpegDecoderFactory>();
}

ChunkQueue::ChunkQueue(size_t max_bytes, std::chrono::milliseconds idle_timeout)
    : max_bytes_(std::max<size_t>(1, max_bytes)), idle_timeout_(idle_timeout) {}

bool ChunkQueue::Push(std::string chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || !abort_.ok()) return true;  // nothing more will be read; keep the client going
  received_ += int64_t(chunk.size());
  bytes_ += chunk.size();
  if (!chunk.empty()) chunks_.push_back(std::move(chunk));
  cv_.notify_all();
  if (bytes_ < max_bytes_) return true;
  want_space_ = true;
  return false;
}

bool ChunkQueue::PushBlocking(std::string chunk) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return bytes_ < max_bytes_ || closed_ || !abort_.ok(); });
  if (closed_ || !abort_.ok()) return false;
  received_ += int64_t(chunk.size());
  bytes_ += chunk.size();
  if (!chunk.empty()) chunks_.push_back(std::move(chunk));
  cv_.notify_all();
  return true;
}

void ChunkQueue::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

void ChunkQueue::Abort(Status reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (abort_.ok()) abort_ = reason.ok() ? Cancelled("input aborted") : std::move(reason);
  aborted_.store(true, std::memory_order_release);
  cv_.notify_all();
}

void ChunkQueue::SetSpaceCallback(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  space_callback_ = std::move(callback);
}

StatusOr<size_t> ChunkQueue::Read(uint8_t* data, size_t size) {
  if (reading_offset_ < reading_.size() && !aborted_.load(std::memory_order_acquire)) {
    // The consumer's own chunk: no lock.
    const size_t take = std::min(size, reading_.size() - reading_offset_);
    std::memcpy(data, reading_.data() + reading_offset_, take);
    reading_offset_ += take;
    return take;
  }
  std::function<void()> notify;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const auto ready = [&] { return !chunks_.empty() || closed_ || !abort_.ok(); };
    if (!ready()) {
      const auto t0 = Clock::now();
      bool got = true;
      if (idle_timeout_.count() > 0) {
        got = cv_.wait_for(lock, idle_timeout_, ready);
      } else {
        cv_.wait(lock, ready);
      }
      blocked_ += Clock::now() - t0;
      if (!got) {
        idle_expired_ = true;
        return Cancelled("no bytes for " + std::to_string(idle_timeout_.count()) + " ms");
      }
    }
    if (!abort_.ok()) return abort_;
    if (chunks_.empty()) return size_t{0};  // closed and drained
    reading_.swap(chunks_.front());  // chunks are never empty (Push skips them)
    chunks_.pop_front();
    reading_offset_ = 0;
    bytes_ -= reading_.size();
    if (want_space_ && bytes_ < max_bytes_) {
      want_space_ = false;
      notify = space_callback_;
    }
    cv_.notify_all();  // PushBlocking waiters
  }
  if (notify) notify();
  const size_t take = std::min(size, reading_.size());
  std::memcpy(data, reading_.data(), take);
  reading_offset_ = take;
  return take;
}

bool ChunkQueue::idle_expired() const {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_expired_;
}
bool ChunkQueue::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}
int64_t ChunkQueue::bytes_received() const {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}
std::chrono::nanoseconds ChunkQueue::blocked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return blocked_;
}

}  // namespace billnet::server
