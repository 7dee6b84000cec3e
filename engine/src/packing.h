// Bit packing of weights in model files (docs/model-format.md):
//   sign1: value i -> byte i/8, bit i%8 (LSB first); 1 means +1, 0 means -1.
//   tern2: value i -> byte i/4, bits 2*(i%4)+1..2*(i%4); 00 = 0, 01 = +1,
//          11 = -1, 10 is invalid.
// Padding bits of the last byte are zero.
#ifndef BILLNET_ENGINE_PACKING_H_
#define BILLNET_ENGINE_PACKING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "billnet/status.h"

namespace billnet {

std::vector<uint8_t> PackSign1(const std::vector<float>& values);
std::vector<uint8_t> PackTern2(const std::vector<float>& values);
// `what` names the tensor in errors (bad code, nonzero padding).
Status UnpackSign1(const uint8_t* bytes, size_t nbytes, int64_t count,
                   const std::string& what, std::vector<float>* out);
Status UnpackTern2(const uint8_t* bytes, size_t nbytes, int64_t count,
                   const std::string& what, std::vector<float>* out);

}  // namespace billnet

#endif  // BILLNET_ENGINE_PACKING_H_
