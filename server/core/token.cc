#include "core/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace billnet::server {

namespace {

constexpr char kMagic[4] = {'B', 'N', 'T', 'K'};
constexpr uint8_t kFormat = 2;
constexpr uint8_t kFormatWithoutEvents = 1;
constexpr size_t kMaxEventClasses = 4096;

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(char(v)); }
  void Uint(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(char(uint8_t(v >> (8 * i))));
  }
  void F64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    Uint(bits, 8);
  }
  void F32(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    Uint(bits, 4);
  }
  void Bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Uint(int bytes, uint64_t* v) {
    if (in_.size() - pos_ < size_t(bytes)) return false;
    *v = 0;
    for (int i = 0; i < bytes; ++i) *v |= uint64_t(uint8_t(in_[pos_ + i])) << (8 * i);
    pos_ += bytes;
    return true;
  }
  bool F64(double* v) {
    uint64_t bits;
    if (!Uint(8, &bits)) return false;
    std::memcpy(v, &bits, 8);
    return true;
  }
  bool F32(float* v) {
    uint64_t bits;
    if (!Uint(4, &bits)) return false;
    const uint32_t b32 = uint32_t(bits);
    std::memcpy(v, &b32, 4);
    return true;
  }
  bool Bytes(size_t n, std::string_view* v) {
    if (in_.size() - pos_ < n) return false;
    *v = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

void Mac(const std::vector<uint8_t>& key, std::string_view data, uint8_t out[32]) {
  unsigned int len = 32;
  HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const uint8_t*>(data.data()),
       data.size(), out, &len);
}

}  // namespace

TokenCodec::TokenCodec(std::vector<uint8_t> key) : key_(std::move(key)) {}

std::string TokenCodec::Encode(const StateToken& t) const {
  Writer w;
  w.Bytes(kMagic, 4);
  w.U8(kFormat);
  w.Uint(t.model_name.size(), 2);
  w.Bytes(t.model_name.data(), t.model_name.size());
  w.Uint(t.version, 4);
  w.U8(uint8_t(t.stage));
  w.Uint(t.stream_id.size(), 2);
  w.Bytes(t.stream_id.data(), t.stream_id.size());
  w.Uint(uint64_t(t.next_sequence), 8);
  w.Uint(t.engine_state.size(), 4);
  w.Bytes(t.engine_state.data(), t.engine_state.size());
  w.U8(t.phase.started ? 1 : 0);
  w.F64(t.phase.t0);
  w.Uint(uint64_t(t.phase.next_tick), 8);
  w.F64(t.phase.last_taken_ts);
  w.F64(t.last_covered_ts);
  w.U8(t.events ? 1 : 0);
  if (t.events) {
    const EventDetectorState& e = *t.events;
    w.Uint(e.smoothed.size(), 2);
    for (float p : e.smoothed) w.F32(p);
    w.Uint(uint32_t(int32_t(e.active)), 4);
    w.Uint(uint32_t(e.active_steps), 4);
    w.F64(e.active_sum);
    w.F64(e.start_s);
    w.F64(e.end_s);
    w.Uint(uint64_t(e.start_sequence), 8);
    w.Uint(uint64_t(e.end_sequence), 8);
  }
  uint8_t mac[kMacBytes];
  Mac(key_, w.out(), mac);
  w.Bytes(mac, kMacBytes);
  return std::move(w.out());
}

StatusOr<StateToken> TokenCodec::Decode(std::string_view bytes) const {
  if (bytes.size() > kMaxTokenBytes)
    return InvalidArgument("state token of " + std::to_string(bytes.size()) +
                           " bytes is larger than the limit of " + std::to_string(kMaxTokenBytes));
  if (bytes.size() < 5 + kMacBytes || std::memcmp(bytes.data(), kMagic, 4) != 0)
    return InvalidArgument("state token is malformed (not a BILLNET state token)");
  const std::string_view body = bytes.substr(0, bytes.size() - kMacBytes);
  uint8_t mac[kMacBytes];
  Mac(key_, body, mac);
  if (CRYPTO_memcmp(mac, bytes.data() + body.size(), kMacBytes) != 0)
    return InvalidArgument("state token does not verify (tampered, or signed with another key)");
  Reader r(body);
  std::string_view skip;
  uint64_t v = 0;
  StateToken t;
  std::string_view s;
  const auto bad = [] { return InvalidArgument("state token is malformed (truncated field)"); };
  if (!r.Bytes(4, &skip) || !r.Uint(1, &v)) return bad();
  if (v != kFormat && v != kFormatWithoutEvents)
    return InvalidArgument("state token format " + std::to_string(v) + " is not supported");
  const bool with_events_field = v == kFormat;
  if (!r.Uint(2, &v) || !r.Bytes(v, &s)) return bad();
  t.model_name = std::string(s);
  if (!r.Uint(4, &v)) return bad();
  t.version = uint32_t(v);
  if (!r.Uint(1, &v)) return bad();
  t.stage = int(v);
  if (!r.Uint(2, &v) || !r.Bytes(v, &s)) return bad();
  t.stream_id = std::string(s);
  if (!r.Uint(8, &v)) return bad();
  t.next_sequence = int64_t(v);
  if (!r.Uint(4, &v) || !r.Bytes(v, &s)) return bad();
  t.engine_state.assign(s.begin(), s.end());
  if (!r.Uint(1, &v)) return bad();
  t.phase.started = v != 0;
  if (!r.F64(&t.phase.t0) || !r.Uint(8, &v)) return bad();
  t.phase.next_tick = int64_t(v);
  if (!r.F64(&t.phase.last_taken_ts) || !r.F64(&t.last_covered_ts)) return bad();
  if (with_events_field) {
    if (!r.Uint(1, &v)) return bad();
    if (v > 1) return InvalidArgument("state token holds out-of-range values");
    if (v == 1) {
      EventDetectorState e;
      if (!r.Uint(2, &v)) return bad();
      if (v > kMaxEventClasses) return InvalidArgument("state token holds out-of-range values");
      e.smoothed.resize(v);
      for (float& p : e.smoothed)
        if (!r.F32(&p)) return bad();
      if (!r.Uint(4, &v)) return bad();
      e.active = int32_t(uint32_t(v));
      if (!r.Uint(4, &v)) return bad();
      e.active_steps = int(uint32_t(v));
      if (!r.F64(&e.active_sum) || !r.F64(&e.start_s) || !r.F64(&e.end_s)) return bad();
      if (!r.Uint(8, &v)) return bad();
      e.start_sequence = int64_t(v);
      if (!r.Uint(8, &v)) return bad();
      e.end_sequence = int64_t(v);
      t.events = std::move(e);
    }
  }
  if (!r.done()) return InvalidArgument("state token is malformed (trailing bytes)");
  if (t.stage < 1 || t.stage > 5 || t.next_sequence < 0 || t.phase.next_tick < 0 ||
      !std::isfinite(t.phase.t0) || !std::isfinite(t.phase.last_taken_ts) ||
      !std::isfinite(t.last_covered_ts))
    return InvalidArgument("state token holds out-of-range values");
  return t;
}

namespace {

StatusOr<std::vector<uint8_t>> ReadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("token key file '" + path + "' cannot be opened");
  std::vector<uint8_t> key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!key.empty() &&
         (key.back() == '\n' || key.back() == '\r' || key.back() == ' ' || key.back() == '\t'))
    key.pop_back();
  if (key.size() < TokenCodec::kMinKeyBytes)
    return InvalidArgument("token key file '" + path + "' holds " + std::to_string(key.size()) +
                           " bytes; at least " + std::to_string(TokenCodec::kMinKeyBytes) +
                           " are required");
  return key;
}

}  // namespace

StatusOr<TokenKey> LoadTokenKey(const std::string& key_file) {
  TokenKey k;
  std::string path = key_file;
  if (path.empty()) {
    if (const char* env = std::getenv("BILLNET_TOKEN_KEY_FILE"); env && *env) path = env;
  }
  if (!path.empty()) {
    BILLNET_ASSIGN_OR_RETURN(k.key, ReadKeyFile(path));
    k.origin = "file '" + path + "'";
    return k;
  }
  if (const char* env = std::getenv("BILLNET_TOKEN_KEY"); env && *env) {
    const std::string s(env);
    if (s.size() < TokenCodec::kMinKeyBytes)
      return InvalidArgument("$BILLNET_TOKEN_KEY holds " + std::to_string(s.size()) +
                             " bytes; at least " + std::to_string(TokenCodec::kMinKeyBytes) +
                             " are required");
    k.key.assign(s.begin(), s.end());
    k.origin = "$BILLNET_TOKEN_KEY";
    return k;
  }
  k.key.resize(32);
  if (RAND_bytes(k.key.data(), int(k.key.size())) != 1)
    return Internal("token key: RAND_bytes failed");
  k.origin = "random per-process key";
  k.ephemeral = true;
  return k;
}

}  // namespace billnet::server
