#ifndef VFE_CORE_SPECIAL_H_
#define VFE_CORE_SPECIAL_H_

#include <math.h>  // lgamma_r (POSIX)

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vfe {

constexpr double kLog2Pi = 1.8378770664093454836;  ///< log(2π)
constexpr double kLog2 = 0.69314718055994530942;
constexpr double kLogPi = 1.1447298858494001741;

/// σ(x) = 1 / (1 + e^−x), without overflow for either sign of x.
inline double Sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

/// log(1 + eˣ), without overflow.
inline double Softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

/// log Γ(x), thread-safe: lgamma_r returns the sign of Γ(x) instead of storing it in the
/// global `signgam` as std::lgamma does (a data race when entropies are evaluated on several
/// threads at once, which ThreadSanitizer reports). The same value as std::lgamma.
inline double LogGamma(double x) {
  int sign = 0;
  return ::lgamma_r(x, &sign);
}

/// Digamma ψ(x) = d/dx log Γ(x) for x > 0: the recurrence ψ(x) = ψ(x+1) − 1/x up to x ≥ 10,
/// then the asymptotic series (Abramowitz & Stegun 6.3.18) to the x⁻¹² term, whose
/// truncation error there is below 1e-15.
inline double Digamma(double x) {
  double result = 0.0;
  while (x < 10.0) {
    result -= 1.0 / x;
    x += 1.0;
  }
  const double inv = 1.0 / x;
  const double inv2 = inv * inv;
  const double series =
      inv2 * (1.0 / 12 -
              inv2 * (1.0 / 120 -
                      inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 * (1.0 / 132 - inv2 * 691.0 / 32760)))));
  return result + std::log(x) - 0.5 * inv - series;
}

/// Multivariate log-gamma log Γ_D(a) = D(D−1)/4 log π + Σ_{i=1..D} log Γ(a + (1−i)/2).
inline double LogMultiGamma(int dim, double a) {
  double result = 0.25 * dim * (dim - 1) * kLogPi;
  for (int i = 1; i <= dim; ++i) result += LogGamma(a + 0.5 * (1 - i));
  return result;
}

/// Multivariate digamma Σ_{i=1..D} ψ(a + (1−i)/2), the derivative of LogMultiGamma.
inline double MultiDigamma(int dim, double a) {
  double result = 0.0;
  for (int i = 1; i <= dim; ++i) result += Digamma(a + 0.5 * (1 - i));
  return result;
}


namespace special_internal {

inline double FromBits(uint64_t bits) {
  double x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}
inline uint64_t ToBits(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
}

/// Exp below and above these returns 0 and +∞ (e^−746 and e^710 round to them).
constexpr double kExpLowest = -746.0;
constexpr double kExpHighest = 710.0;

/// e^x for x in [kExpLowest, kExpHighest] (or NaN): straight-line code, no branch, so that
/// a loop over an array of such x vectorises (SSE2 is enough).
inline double ExpClamped(double x) {
  constexpr double kLog2e = 1.4426950408889634074;
  constexpr double kShifter = 6755399441055744.0;  // 1.5 · 2^52: t + kShifter rounds t
  // Cody–Waite: ln 2 = kLn2High + kLn2Low, kLn2High with 12 significant bits, so that
  // n · kLn2High is exact for |n| ≤ 2^11 and r = x − n ln 2 keeps every digit.
  constexpr double kLn2High = 6.93145751953125e-1;
  constexpr double kLn2Low = 1.42860682030941723212e-6;
  const double shifted = x * kLog2e + kShifter;
  const double n = shifted - kShifter;  // round(x / ln 2)
  const double r = (x - n * kLn2High) - n * kLn2Low;  // |r| ≤ ½ ln 2
  // e^r = 1 + 2 r P(r²) / (Q(r²) − r P(r²)), the Padé form of Cephes' exp (S. L. Moshier,
  // Cephes Math Library, exp.c), accurate to about 2^−53 on |r| ≤ ½ ln 2; e^0 = 1 exactly.
  const double rr = r * r;
  const double rp = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr +
                         9.99999999999999999910e-1);
  const double q = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr +
                    2.27265548208155028766e-1) * rr + 2.00000000000000000009e0;
  const double e = 1.0 + 2.0 * (rp / (q - rp));
  // 2^n = 2^n1 · 2^(n − n1) with n1 = round(n / 2): both factors are normal numbers for
  // n ∈ [−1077, 1025], so results down to the subnormals are rounded once, at the end.
  const double shifted_half = n * 0.5 + kShifter;
  const double n1 = shifted_half - kShifter;
  const double shifted_rest = (n - n1) + kShifter;
  const uint64_t shifter_bits = ToBits(kShifter);
  const double scale1 = FromBits((ToBits(shifted_half) - shifter_bits + 1023) << 52);
  const double scale2 = FromBits((ToBits(shifted_rest) - shifter_bits + 1023) << 52);
  return e * scale1 * scale2;
}

inline double ExpClamp(double x) {
  x = x < kExpLowest ? kExpLowest : x;  // NaN stays NaN
  return x > kExpHighest ? kExpHighest : x;
}

}  // namespace special_internal

/// e^x within 2 ulp of the correctly rounded value for every double (e^−∞ = 0, e^+∞ = +∞,
/// NaN gives NaN, results below the smallest normal number are subnormal or 0 as std::exp's
/// are): a Cody–Waite reduction x = n ln 2 + r, |r| ≤ ½ ln 2, and a rational approximation of
/// e^r. Written without branches or tables, so that the array form below vectorises; the
/// two forms give the same value for the same x, bit for bit.
inline double Exp(double x) {
  return special_internal::ExpClamped(special_internal::ExpClamp(x));
}

/// out[i] = Exp(x[i]) for i < n, in passes the compiler vectorises (out may be x).
inline void Exp(const double* x, double* out, size_t n) {
  // The clamp in a pass of its own: folded into the main loop, the compiler specialises the
  // clamped branches and the loop no longer vectorises.
  for (size_t i = 0; i < n; ++i) out[i] = special_internal::ExpClamp(x[i]);
  for (size_t i = 0; i < n; ++i) out[i] = special_internal::ExpClamped(out[i]);
}

}  // namespace vfe

#endif  // VFE_CORE_SPECIAL_H_
