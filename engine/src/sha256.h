// SHA-256 (FIPS 180-4), used for the model file checksum.
#ifndef BILLNET_ENGINE_SHA256_H_
#define BILLNET_ENGINE_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace billnet {

std::array<uint8_t, 32> Sha256(const uint8_t* data, size_t size);
std::string Sha256Hex(const uint8_t* data, size_t size);

}  // namespace billnet

#endif  // BILLNET_ENGINE_SHA256_H_
