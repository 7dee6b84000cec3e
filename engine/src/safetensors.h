// The safetensors container: 8-byte little-endian header length N, N bytes of
// JSON header, then the tensor bytes. Only the container is handled here; what
// the tensors and metadata mean is model.cc's business.
#ifndef BILLNET_ENGINE_SAFETENSORS_H_
#define BILLNET_ENGINE_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "billnet/status.h"
#include "billnet/topology.h"

namespace billnet {

inline constexpr uint64_t kMaxHeaderBytes = 16u << 20;  // 16 MiB of JSON
inline constexpr int kMaxTensorRank = 8;

struct RawTensor {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data section
};

// A parsed container. `data` points into the caller's buffer, which must
// outlive this view.
struct SafetensorsView {
  std::map<std::string, std::string> metadata;
  std::vector<RawTensor> tensors;  // sorted by begin
  const uint8_t* data = nullptr;
  uint64_t data_size = 0;
  const RawTensor* Find(const std::string& name) const;
};

// Checks the header length, the JSON, every dtype, shape and offset, and that
// the tensors tile the data section exactly (no gap, no overlap, no excess).
// `what` names the buffer in error messages.
StatusOr<SafetensorsView> ParseSafetensors(const uint8_t* bytes, size_t size,
                                           const std::string& what);

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Serializes tensors in the given order, the header padded with spaces to a
// multiple of 8 bytes.
std::string SerializeSafetensors(const std::map<std::string, std::string>& metadata,
                                 const std::vector<TensorToWrite>& tensors);

}  // namespace billnet

#endif  // BILLNET_ENGINE_SAFETENSORS_H_
