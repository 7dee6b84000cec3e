#include "decode_fuzz_target.h"

#include <span>

#include "billnet/media/byte_io.h"
#include "billnet/media/decoder.h"
#include "billnet/media/pipeline.h"

namespace billnet::media {

DecodeFuzzResult DecodeFuzzInput(const uint8_t* data, size_t size) {
  DecodeFuzzResult r;
  MemoryByteSource source{std::span<const uint8_t>(data, size)};
  DecoderOptions options;
  options.max_pixels = 4 * 1000 * 1000;  // keep fuzzing fast
  StatusOr<std::unique_ptr<VideoDecoder>> decoder = VideoDecoder::Open(&source, options, "fuzz");
  if (!decoder.ok()) {
    r.status = decoder.status();
    return r;
  }
  ModelFrameStream stream(ModelTarget{24, 32, 6});
  int64_t emitted = 0;
  auto emit = [&emitted](const ModelFrame& m) -> Status {
    ++emitted;
    return Status::Ok();
  };
  for (int i = 0; i < 2000; ++i) {
    DecodedFrame frame;
    StatusOr<bool> got = (*decoder)->Next(&frame);
    if (!got.ok()) {
      r.status = got.status();
      return r;
    }
    if (!*got) break;
    ++r.frames;
    if (Status s = stream.Push(std::move(frame), emit); !s.ok()) {
      r.status = s;
      return r;
    }
  }
  r.status = stream.Flush(emit);
  return r;
}

}  // namespace billnet::media
