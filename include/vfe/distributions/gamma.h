#ifndef VFE_DISTRIBUTIONS_GAMMA_H_
#define VFE_DISTRIBUTIONS_GAMMA_H_

#include <cmath>
#include <random>
#include <string>

#include "vfe/core/error.h"
#include "vfe/core/format.h"
#include "vfe/core/special.h"
#include "vfe/distributions/family.h"

namespace vfe {

/// Gamma(x | a, b) with shape a > 0 and rate b > 0: mean a/b.
///
///   log p(x) = η₁x + η₂ log x − A(η),   η = (−b, a − 1),
///   A = log Γ(a) − a log b,   E[log x] = ψ(a) − log b,
///   H = a − log b + log Γ(a) + (1 − a) ψ(a).
class Gamma {
 public:
  static constexpr Family kFamily = Family::kGamma;

  /// Throws ModelError unless shape > 0 and rate > 0 (both finite).
  Gamma(double shape, double rate) {
    if (!(shape > 0) || !std::isfinite(shape))
      throw ModelError("Gamma: shape must be > 0 and finite, got " + FormatNumber(shape));
    if (const std::string why = ShapeTooSmall(shape); !why.empty())
      throw ModelError("Gamma: shape " + FormatNumber(shape) + why);
    if (!(rate > 0) || !std::isfinite(rate))
      throw ModelError("Gamma: rate must be > 0 and finite, got " + FormatNumber(rate));
    eta_[0] = -rate;
    eta_[1] = shape - 1.0;
  }

  /// From natural parameters (−rate, shape − 1); throws ModelError if improper.
  static Gamma FromNatural(double eta1, double eta2) {
    const double eta[2] = {eta1, eta2};
    if (!IsProper(eta))
      throw ModelError("Gamma: natural parameters must have eta1 < 0 and eta2 > -1, got (" +
                       FormatNumber(eta1) + ", " + FormatNumber(eta2) + ")");
    return Gamma(eta2 + 1.0, -eta1);
  }

  /// From the flat layout (−rate, shape − 1); `dim` is ignored (always 1).
  static Gamma FromFlat(int /*dim*/, const double* eta) { return FromNatural(eta[0], eta[1]); }
  void WriteNatural(double* eta) const {
    eta[0] = eta_[0];
    eta[1] = eta_[1];
  }
  int dim() const { return 1; }
  double shape() const { return eta_[1] + 1.0; }
  double rate() const { return -eta_[0]; }
  double mean() const { return shape() / rate(); }
  double variance() const { return shape() / (rate() * rate()); }
  /// E[log x] = ψ(a) − log b.
  double mean_log() const { return Digamma(shape()) - std::log(rate()); }

  double LogPartition() const { return LogPartition(eta_); }
  double Entropy() const { return Entropy(eta_); }
  double LogDensity(double x) const {
    if (!(x > 0)) return -INFINITY;
    return eta_[0] * x + eta_[1] * std::log(x) - LogPartition();
  }
  double Sample(std::mt19937_64& rng) const {
    return std::gamma_distribution<double>(shape(), 1.0 / rate())(rng);
  }
  Gamma Product(const Gamma& other) const {
    return FromNatural(eta_[0] + other.eta_[0], eta_[1] + other.eta_[1]);
  }
  std::string ToString() const {
    return "Gamma(shape=" + FormatNumber(shape()) + ", rate=" + FormatNumber(rate()) + ")";
  }

  // Flat forms used by the engine.

  static bool IsProper(const double* eta) {
    return eta[0] < 0 && eta[1] > -1.0 && std::isfinite(eta[0]) && std::isfinite(eta[1]);
  }
  static void Moments(const double* eta, double* moments) {
    const double shape = eta[1] + 1.0;
    const double rate = -eta[0];
    moments[0] = shape / rate;
    moments[1] = Digamma(shape) - std::log(rate);
  }
  static double LogPartition(const double* eta) {
    const double shape = eta[1] + 1.0;
    return LogGamma(shape) - shape * std::log(-eta[0]);
  }
  static double Entropy(const double* eta) {
    const double shape = eta[1] + 1.0;
    return shape - std::log(-eta[0]) + LogGamma(shape) + (1.0 - shape) * Digamma(shape);
  }
  static void PointMoments(double x, double* moments) {
    moments[0] = x;
    moments[1] = std::log(x);
  }

 private:
  double eta_[2];
};

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_GAMMA_H_
