// libFuzzer target for the model loader: any bytes given to Model::LoadBuffer
// are either rejected with a message or give a model that runs. A model that
// loads must run one window (of zeros) without error, and must write itself
// out again as a file that loads. Seeds: corpus/model_loader/.
//
// Almost every mutation of the tensor bytes breaks the checksum, which would
// hide everything the loader checks after it; so each input is also tried
// with its "sha256:" checksum rewritten to match its data section.
//
// Built as model_loader_fuzzer with -fsanitize=fuzzer,address when
// BILLNET_BUILD_FUZZERS is ON, and always as model_loader_replay (with
// replay_main.cc), which CTest runs over the seed corpus.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "billnet/model.h"
#include "billnet/session.h"
#include "sha256.h"

namespace {

// Bigger windows are skipped: they only make the fuzzer slow.
constexpr size_t kMaxWindowBytes = size_t{1} << 20;

[[noreturn]] void Fail(const char* what, const billnet::Status& s) {
  std::fprintf(stderr, "model_loader_fuzzer: %s: %s\n", what, s.ToString().c_str());
  std::abort();
}

// A copy of the input whose checksum metadata matches its data section, or
// an empty string where there is no checksum to repair or it already matches.
std::string WithRepairedChecksum(const uint8_t* data, size_t size) {
  if (size < 8) return {};
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > size - 8) return {};
  const std::string_view header(reinterpret_cast<const char*>(data + 8), n);
  constexpr std::string_view kPrefix = "\"sha256:";
  const size_t at = header.find(kPrefix);
  if (at == std::string_view::npos || header.size() - at < kPrefix.size() + 64) return {};
  const size_t hex_at = 8 + at + kPrefix.size();
  const std::string hex = billnet::Sha256Hex(data + 8 + n, size - 8 - n);
  std::string out(reinterpret_cast<const char*>(data), size);
  if (out.compare(hex_at, 64, hex) == 0) return {};
  out.replace(hex_at, 64, hex);
  return out;
}

void LoadAndRun(const uint8_t* data, size_t size) {
  auto loaded = billnet::Model::LoadBuffer(data, size, "fuzz");
  if (!loaded.ok()) {
    if (loaded.status().message().empty()) Fail("rejected without a message", loaded.status());
    return;
  }
  const std::shared_ptr<const billnet::Model>& model = *loaded;
  if (model->window_bytes() > kMaxWindowBytes) return;

  // Loading validated everything, so running cannot fail (DESIGN.md 2.4).
  billnet::Session session(model);
  const std::vector<uint8_t> window(model->window_bytes(), 0);
  billnet::Response r;
  billnet::Status s = session.Run(window.data(), window.size(), &r);
  if (!s.ok()) Fail("a loaded model failed to run", s);
  const size_t cells = size_t(model->plan().steps) * model->info().topology.classes;
  if (r.scores.size() != cells || r.probabilities.size() != cells ||
      r.top_class.size() != size_t(model->plan().steps))
    Fail("response has the wrong size", billnet::Status());

  // What loads can be written and loaded again.
  auto bytes = billnet::SerializeModel(model->info(), model->weights());
  if (!bytes.ok()) Fail("a loaded model does not serialize", bytes.status());
  auto again = billnet::Model::LoadBuffer(reinterpret_cast<const uint8_t*>(bytes->data()),
                                          bytes->size(), "fuzz-reserialized");
  if (!again.ok()) Fail("a re-serialized model does not load", again.status());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  LoadAndRun(data, size);
  const std::string repaired = WithRepairedChecksum(data, size);
  if (!repaired.empty())
    LoadAndRun(reinterpret_cast<const uint8_t*>(repaired.data()), repaired.size());
  return 0;
}
