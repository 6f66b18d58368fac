#ifndef VFE_CORE_SPECIAL_H_
#define VFE_CORE_SPECIAL_H_

#include <math.h>  // lgamma_r (POSIX)

#include <cmath>

namespace vfe {

constexpr double kLog2Pi = 1.8378770664093454836;  ///< log(2π)
constexpr double kLog2 = 0.69314718055994530942;
constexpr double kLogPi = 1.1447298858494001741;

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

}  // namespace vfe

#endif  // VFE_CORE_SPECIAL_H_
