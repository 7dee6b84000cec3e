// The renderer's own random numbers: xoshiro256** seeded through splitmix64,
// and distributions built on them, so a seed gives the same values on every
// platform (std:: distributions do not promise that).
//
// Rule for callers: at most one draw per full expression, except across `?:`,
// `&&`, `||`, `,` or braced initializer lists (which are sequenced). The order
// in which C++ evaluates function arguments or the operands of `*` is
// unspecified, and GCC and Clang differ: `Hsv(rng.Uniform(), rng.Uniform())`
// gives different colours on different compilers.
#ifndef BILLNET_SYNTH_RANDOM_H_
#define BILLNET_SYNTH_RANDOM_H_

#include <cstdint>
#include <initializer_list>

namespace billnet::synth {

// splitmix64's output function: a bijective 64-bit mix.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// An independent seed for sub-stream `tag` (and `index`) of `seed`.
inline uint64_t DeriveSeed(uint64_t seed, uint64_t tag, uint64_t index = 0) {
  return Mix64(Mix64(seed ^ Mix64(tag + 0x5851F42D4C957F2Dull)) ^ Mix64(index));
}

// Uniform in [0, 1) from the top 24 bits of a hash (per-pixel noise).
inline float HashUnitFloat(uint64_t h) {
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

class Rng {
 public:
  explicit Rng(uint64_t seed);

  uint64_t Next();
  double Uniform();                      // [0, 1), 53 bits
  double Uniform(double lo, double hi);  // [lo, hi)
  int UniformInt(int n);                 // [0, n), n >= 1
  int UniformInt(int lo, int hi);        // [lo, hi], inclusive
  bool Bernoulli(double p);
  double Sign();                            // -1 or +1
  double Normal();                          // mean 0, sd 1 (Box-Muller)
  double LogUniform(double lo, double hi);  // lo, hi > 0
  // Index i with probability weights[i] / sum(weights).
  int Choose(std::initializer_list<double> weights);

 private:
  uint64_t s_[4];
};

}  // namespace billnet::synth

#endif  // BILLNET_SYNTH_RANDOM_H_
