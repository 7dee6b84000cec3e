#include "random.h"

#include <cmath>

#include "portable_math.h"

namespace billnet::synth {
namespace {

inline uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : s_) {
    x += 0x9E3779B97F4A7C15ull;
    s = Mix64(x - 0x9E3779B97F4A7C15ull);
  }
}

uint64_t Rng::Next() {  // xoshiro256** (Blackman & Vigna)
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Rng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

double Rng::Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

int Rng::UniformInt(int n) {
  if (n <= 1) return 0;
  return static_cast<int>(((Next() >> 32) * static_cast<uint64_t>(n)) >> 32);
}

int Rng::UniformInt(int lo, int hi) { return lo + UniformInt(hi - lo + 1); }

bool Rng::Bernoulli(double p) { return Uniform() < p; }

double Rng::Sign() { return (Next() >> 63) ? 1.0 : -1.0; }

double Rng::Normal() {
  const double u1 = 1.0 - Uniform();  // (0, 1]
  const double u2 = Uniform();
  return std::sqrt(-2.0 * portable::Log(u1)) * portable::Cos(portable::kTwoPi * u2);
}

double Rng::LogUniform(double lo, double hi) {
  return lo * portable::Exp(Uniform() * portable::Log(hi / lo));
}

int Rng::Choose(std::initializer_list<double> weights) {
  double total = 0;
  for (double w : weights) total += w;
  double u = Uniform() * total;
  int i = 0;
  for (double w : weights) {
    if (u < w) return i;
    u -= w;
    ++i;
  }
  return i - 1;
}

}  // namespace billnet::synth
