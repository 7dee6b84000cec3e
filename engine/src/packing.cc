#include "packing.h"

namespace billnet {

std::vector<uint8_t> PackSign1(const std::vector<float>& values) {
  std::vector<uint8_t> out((values.size() + 7) / 8, 0);
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i] > 0) out[i / 8] |= uint8_t(1u << (i % 8));
  return out;
}

std::vector<uint8_t> PackTern2(const std::vector<float>& values) {
  std::vector<uint8_t> out((values.size() + 3) / 4, 0);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint8_t code = values[i] > 0 ? 1 : values[i] < 0 ? 3 : 0;
    out[i / 4] |= uint8_t(code << (2 * (i % 4)));
  }
  return out;
}

Status UnpackSign1(const uint8_t* bytes, size_t nbytes, int64_t count,
                   const std::string& what, std::vector<float>* out) {
  if (count < 0 || nbytes != size_t((count + 7) / 8))
    return Corruption("tensor '" + what + "': " + std::to_string(nbytes) +
                      " bytes do not hold " + std::to_string(count) + " sign1 values");
  out->resize(count);
  for (int64_t i = 0; i < count; ++i) (*out)[i] = (bytes[i / 8] >> (i % 8)) & 1 ? 1.f : -1.f;
  if (count % 8 && (bytes[nbytes - 1] >> (count % 8)))
    return Corruption("tensor '" + what + "': padding bits of the last byte are not zero");
  return Status::Ok();
}

Status UnpackTern2(const uint8_t* bytes, size_t nbytes, int64_t count,
                   const std::string& what, std::vector<float>* out) {
  if (count < 0 || nbytes != size_t((count + 3) / 4))
    return Corruption("tensor '" + what + "': " + std::to_string(nbytes) +
                      " bytes do not hold " + std::to_string(count) + " tern2 values");
  out->resize(count);
  for (int64_t i = 0; i < count; ++i) {
    const int code = (bytes[i / 4] >> (2 * (i % 4))) & 3;
    if (code == 2)
      return Corruption("tensor '" + what + "': value " + std::to_string(i) +
                        " has the invalid tern2 code 0b10");
    (*out)[i] = code == 0 ? 0.f : code == 1 ? 1.f : -1.f;
  }
  if (count % 4 && (bytes[nbytes - 1] >> (2 * (count % 4))))
    return Corruption("tensor '" + what + "': padding bits of the last byte are not zero");
  return Status::Ok();
}

}  // namespace billnet
