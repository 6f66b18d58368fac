#ifndef VFE_CORE_SPLITMIX_H_
#define VFE_CORE_SPLITMIX_H_

#include <cmath>
#include <cstdint>
#include <vector>

namespace vfe {

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, portable generator whose stream is the same
/// on every platform, used to make example and benchmark data that other libraries can
/// regenerate bit for bit.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in (0, 1): ((Next() >> 11) + 0.5) · 2⁻⁵³.
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1p-53; }

 private:
  uint64_t state_;
};

/// `count` (even) normal draws N(mean, sd²) by Box–Muller on SplitMix64(seed), in the order
/// y[2i] = mean + sd·r·cos(a), y[2i+1] = mean + sd·r·sin(a).
inline std::vector<double> SplitMixNormals(uint64_t seed, size_t count, double mean, double sd) {
  SplitMix64 rng(seed);
  std::vector<double> y(count);
  const double two_pi = 6.283185307179586476925;
  for (size_t i = 0; i + 1 < count; i += 2) {
    const double u1 = rng.Uniform();
    const double u2 = rng.Uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double a = two_pi * u2;
    y[i] = mean + sd * r * std::cos(a);
    y[i + 1] = mean + sd * r * std::sin(a);
  }
  return y;
}

}  // namespace vfe

#endif  // VFE_CORE_SPLITMIX_H_
