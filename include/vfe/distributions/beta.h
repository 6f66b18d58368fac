#ifndef VFE_DISTRIBUTIONS_BETA_H_
#define VFE_DISTRIBUTIONS_BETA_H_

#include <cmath>
#include <random>
#include <string>

#include "vfe/core/error.h"
#include "vfe/core/format.h"
#include "vfe/core/special.h"
#include "vfe/distributions/family.h"

namespace vfe {

/// Beta(p | a, b) with a, b > 0: mean a/(a + b).
///
///   log p(p) = η₁ log p + η₂ log(1 − p) − A(η),   η = (a − 1, b − 1),
///   A = log B(a, b),   E[log p] = ψ(a) − ψ(a + b),   E[log(1 − p)] = ψ(b) − ψ(a + b),
///   H = A − (a − 1) ψ(a) − (b − 1) ψ(b) + (a + b − 2) ψ(a + b).
class Beta {
 public:
  static constexpr Family kFamily = Family::kBeta;

  /// Throws ModelError unless a > 0 and b > 0 (both finite).
  Beta(double a, double b) {
    if (!(a > 0) || !std::isfinite(a)) throw ModelError("Beta: a must be > 0 and finite, got " + FormatNumber(a));
    if (!(b > 0) || !std::isfinite(b)) throw ModelError("Beta: b must be > 0 and finite, got " + FormatNumber(b));
    for (const double shape : {a, b})
      if (const std::string why = ShapeTooSmall(shape); !why.empty())
        throw ModelError("Beta: " + std::string(shape == a ? "a " : "b ") + FormatNumber(shape) +
                         why);
    eta_[0] = a - 1.0;
    eta_[1] = b - 1.0;
  }
  /// From natural parameters (a − 1, b − 1); throws ModelError if improper.
  static Beta FromNatural(double eta1, double eta2) {
    const double eta[2] = {eta1, eta2};
    if (!IsProper(eta))
      throw ModelError("Beta: natural parameters must both be > -1, got (" + FormatNumber(eta1) +
                       ", " + FormatNumber(eta2) + ")");
    return Beta(eta1 + 1.0, eta2 + 1.0);
  }
  static Beta FromFlat(int /*dim*/, const double* eta) { return FromNatural(eta[0], eta[1]); }
  void WriteNatural(double* eta) const {
    eta[0] = eta_[0];
    eta[1] = eta_[1];
  }
  int dim() const { return 1; }
  double a() const { return eta_[0] + 1.0; }
  double b() const { return eta_[1] + 1.0; }
  double mean() const { return a() / (a() + b()); }
  double variance() const {
    const double s = a() + b();
    return a() * b() / (s * s * (s + 1.0));
  }
  double mean_log() const { return Digamma(a()) - Digamma(a() + b()); }
  double mean_log1m() const { return Digamma(b()) - Digamma(a() + b()); }

  double LogPartition() const { return LogPartition(eta_); }
  double Entropy() const { return Entropy(eta_); }
  double LogDensity(double p) const {
    if (!(p > 0 && p < 1)) return -INFINITY;
    return eta_[0] * std::log(p) + eta_[1] * std::log1p(-p) - LogPartition();
  }
  /// X/(X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
  double Sample(std::mt19937_64& rng) const {
    const double x = std::gamma_distribution<double>(a(), 1.0)(rng);
    const double y = std::gamma_distribution<double>(b(), 1.0)(rng);
    return x / (x + y);
  }
  Beta Product(const Beta& other) const {
    return FromNatural(eta_[0] + other.eta_[0], eta_[1] + other.eta_[1]);
  }
  std::string ToString() const {
    return "Beta(a=" + FormatNumber(a()) + ", b=" + FormatNumber(b()) + ")";
  }

  // Flat forms used by the engine.

  static bool IsProper(const double* eta) {
    return eta[0] > -1.0 && eta[1] > -1.0 && std::isfinite(eta[0]) && std::isfinite(eta[1]);
  }
  static void Moments(const double* eta, double* moments) {
    const double a = eta[0] + 1.0, b = eta[1] + 1.0, total = Digamma(a + b);
    moments[0] = Digamma(a) - total;
    moments[1] = Digamma(b) - total;
  }
  static double LogPartition(const double* eta) {
    const double a = eta[0] + 1.0, b = eta[1] + 1.0;
    return LogGamma(a) + LogGamma(b) - LogGamma(a + b);
  }
  static double Entropy(const double* eta) {
    double moments[2];
    Moments(eta, moments);
    return LogPartition(eta) - eta[0] * moments[0] - eta[1] * moments[1];
  }
  /// T(p) = (log p, log(1 − p)) of a known probability.
  static void PointMoments(double p, double* moments) {
    moments[0] = std::log(p);
    moments[1] = std::log1p(-p);
  }

 private:
  double eta_[2];
};

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_BETA_H_
