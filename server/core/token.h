// State tokens (DESIGN.md section 3, issue 9): what a client presents to
// resume a stream on this or another replica. Small and integrity-protected:
// HMAC-SHA256, with a key the replicas share, over the model (name, version,
// stage), the stream id, the next sequence number, the engine Session's
// ExportState blob, the resampler phase, the source timestamp of the last
// frame the token covers, and the gesture-event detector's state.
//
// Wire format (little-endian), then the 32-byte HMAC of everything before it:
//   "BNTK" u8 format=2 | u16 len + model name | u32 version | u8 stage |
//   u16 len + stream id | i64 next_sequence | u32 len + engine state |
//   u8 phase.started | f64 phase.t0 | i64 phase.next_tick |
//   f64 phase.last_taken_ts | f64 last_covered_ts |
//   u8 has_events [ u16 classes + f32 smoothed[classes] | i32 active |
//   u32 active_steps | f64 active_sum | f64 start_s | f64 end_s |
//   i64 start_sequence | i64 end_sequence ]
// Format 1 (before the event state) ends at last_covered_ts and is still
// accepted, so tokens survive a rolling upgrade; events then restart.
// Doubles travel as their bit patterns, so a resumed stream sees exactly the
// timestamps the original had.
//
// Thread-safety: a TokenCodec is immutable after construction; share it.
#ifndef BILLNET_SERVER_CORE_TOKEN_H_
#define BILLNET_SERVER_CORE_TOKEN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "billnet/media/resampler.h"
#include "billnet/status.h"
#include "core/events.h"

namespace billnet::server {

struct StateToken {
  std::string model_name;
  uint32_t version = 0;
  int stage = 0;  // 1..5
  std::string stream_id;
  int64_t next_sequence = 0;
  std::vector<uint8_t> engine_state;  // Session::ExportState()
  media::ResamplerPhase phase;        // at the last covered frame
  double last_covered_ts = 0;         // source timestamp of that frame
  // The gesture-event detector after that window (absent in format-1 tokens:
  // events then restart at the resume).
  std::optional<EventDetectorState> events;
};

class TokenCodec {
 public:
  static constexpr size_t kMacBytes = 32;
  static constexpr size_t kMinKeyBytes = 16;
  static constexpr size_t kMaxTokenBytes = 64 * 1024;

  // `key` must hold at least kMinKeyBytes bytes (LoadTokenKey ensures it).
  explicit TokenCodec(std::vector<uint8_t> key);

  std::string Encode(const StateToken& token) const;
  // Verifies the MAC, then parses. The error's message is the reason a
  // stream gives for starting fresh ("state token does not verify (...)").
  StatusOr<StateToken> Decode(std::string_view bytes) const;

 private:
  std::vector<uint8_t> key_;
};

struct TokenKey {
  std::vector<uint8_t> key;
  std::string origin;  // "file /etc/billnet/token.key", "random per-process key"
  bool ephemeral = false;
};

// The key, in this order: `key_file` (a flag) if not empty; else the file
// named by $BILLNET_TOKEN_KEY_FILE; else $BILLNET_TOKEN_KEY (the key itself);
// else a random per-process key (ephemeral: tokens then only resume on this
// process; the caller logs a warning). Key files hold raw bytes (trailing
// whitespace trimmed), at least 16 of them. Errors: NotFound/InvalidArgument
// naming the file.
StatusOr<TokenKey> LoadTokenKey(const std::string& key_file);

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_TOKEN_H_
