// Bit-packing rules of the fast kernels: the one place that fixes them.
//
//   word type      uint64_t (BitWord), little-endian bit order;
//   layout         T x H x W x words: each position holds WordsFor(C) words;
//                  channel c is bit (c % 64) of word (c / 64) of its position;
//   a 1 bit        the activation value 1 (H(x) = 1); a 0 bit is 0;
//   padding bits   bits c >= C of a position's last word are always 0, so a
//                  popcount over a position's words counts real channels only;
//   reads          kernels read exactly WordsFor(C) words per position, never
//                  past the end of a tensor.
// Spatial zero padding of a convolution is 0 bits (DESIGN.md 2.1).
#ifndef BILLNET_ENGINE_KERNELS_FAST_BITPACK_H_
#define BILLNET_ENGINE_KERNELS_FAST_BITPACK_H_

#include <cstdint>

namespace billnet {

using BitWord = uint64_t;
inline constexpr int kBitsPerWord = 64;

inline constexpr int WordsFor(int channels) { return (channels + kBitsPerWord - 1) / kBitsPerWord; }

// bytes: positions x channels values 0/1 (anything non-zero counts as 1);
// words: positions x WordsFor(channels).
void PackBitsPortable(int64_t positions, int channels, const uint8_t* bytes, BitWord* words);
// The inverse: writes 0/1 bytes.
void UnpackBitsPortable(int64_t positions, int channels, const BitWord* words, uint8_t* bytes);

}  // namespace billnet

#endif  // BILLNET_ENGINE_KERNELS_FAST_BITPACK_H_
