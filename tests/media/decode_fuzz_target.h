// The decoder fuzz target: decode arbitrary bytes from memory through the
// whole model-frame path (decode -> resample -> convert). Shared by the
// robustness tests (normal build) and the libFuzzer binary.
#ifndef BILLNET_TESTS_MEDIA_DECODE_FUZZ_TARGET_H_
#define BILLNET_TESTS_MEDIA_DECODE_FUZZ_TARGET_H_

#include <cstddef>
#include <cstdint>

#include "billnet/status.h"

namespace billnet::media {

struct DecodeFuzzResult {
  Status status;       // OK: the input decoded to its end
  int64_t frames = 0;  // decoded frames
};

DecodeFuzzResult DecodeFuzzInput(const uint8_t* data, size_t size);

}  // namespace billnet::media

#endif  // BILLNET_TESTS_MEDIA_DECODE_FUZZ_TARGET_H_
