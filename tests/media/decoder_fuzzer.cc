// libFuzzer entry point for the media decoder (BILLNET_BUILD_FUZZERS=ON):
//   build-fuzz/tests/media/media_decoder_fuzzer CORPUS_DIR -max_total_time=60
// Seed it with small clips (e.g. the files billnet-synth --videos writes).
#include <cstddef>
#include <cstdint>

#include "billnet/media/frame.h"
#include "decode_fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    billnet::media::SetLogLevel(billnet::media::LogLevel::kQuiet);
    return true;
  }();
  (void)quiet;
  billnet::media::DecodeFuzzInput(data, size);
  return 0;
}
