#ifndef VFE_DISTRIBUTIONS_GAUSSIAN_H_
#define VFE_DISTRIBUTIONS_GAUSSIAN_H_

#include <cmath>
#include <random>
#include <string>

#include "vfe/core/error.h"
#include "vfe/core/format.h"
#include "vfe/core/special.h"
#include "vfe/distributions/family.h"

namespace vfe {

/// Univariate Gaussian N(x | m, 1/w) with mean m and precision w > 0.
///
///   log p(x) = η₁x + η₂x² − A(η),   η = (w·m, −w/2),
///   A(η) = −η₁²/(4η₂) − ½ log(−2η₂) + ½ log 2π,   H = ½ log(2πe/w).
class Gaussian {
 public:
  static constexpr Family kFamily = Family::kGaussian;

  /// N(mean, 1/precision); throws ModelError unless mean is finite and precision > 0.
  Gaussian(double mean, double precision) {
    if (!std::isfinite(mean)) throw ModelError("Gaussian: mean must be finite, got " + FormatNumber(mean));
    if (!(precision > 0) || !std::isfinite(precision))
      throw ModelError("Gaussian: precision must be > 0 and finite, got " + FormatNumber(precision));
    eta_[0] = precision * mean;
    eta_[1] = -0.5 * precision;
  }

  /// From natural parameters; throws ModelError unless η₂ < 0 and both are finite.
  static Gaussian FromNatural(double eta1, double eta2) {
    const double eta[2] = {eta1, eta2};
    if (!IsProper(eta))
      throw ModelError("Gaussian: natural parameters must have eta2 < 0, got (" + FormatNumber(eta1) +
                       ", " + FormatNumber(eta2) + ")");
    Gaussian g;
    g.eta_[0] = eta1;
    g.eta_[1] = eta2;
    return g;
  }

  /// From the flat layout (η₁, η₂); `dim` is ignored (always 1).
  static Gaussian FromFlat(int /*dim*/, const double* eta) { return FromNatural(eta[0], eta[1]); }
  /// Writes (η₁, η₂).
  void WriteNatural(double* eta) const {
    eta[0] = eta_[0];
    eta[1] = eta_[1];
  }
  int dim() const { return 1; }
  double eta1() const { return eta_[0]; }
  double eta2() const { return eta_[1]; }
  double precision() const { return -2.0 * eta_[1]; }
  double variance() const { return -0.5 / eta_[1]; }
  double mean() const { return -0.5 * eta_[0] / eta_[1]; }
  /// E[x²] = m² + 1/w.
  double second_moment() const { return mean() * mean() + variance(); }

  double LogPartition() const { return LogPartition(Natural()); }
  double Entropy() const { return Entropy(Natural()); }
  double LogDensity(double x) const { return eta_[0] * x + eta_[1] * x * x - LogPartition(); }
  double Sample(std::mt19937_64& rng) const {
    return mean() + std::sqrt(variance()) * std::normal_distribution<double>()(rng);
  }
  /// The normalised product of the two densities: natural parameters add.
  Gaussian Product(const Gaussian& other) const {
    return FromNatural(eta_[0] + other.eta_[0], eta_[1] + other.eta_[1]);
  }
  std::string ToString() const {
    return "Gaussian(mean=" + FormatNumber(mean()) + ", variance=" + FormatNumber(variance()) + ")";
  }

  // Flat forms used by the engine: η and E[T] as arrays of 2 doubles.

  /// η₂ < 0 and both finite.
  static bool IsProper(const double* eta) {
    return eta[1] < 0 && std::isfinite(eta[0]) && std::isfinite(eta[1]);
  }
  static void Moments(const double* eta, double* moments) {
    const double variance = -0.5 / eta[1];
    const double mean = eta[0] * variance;
    moments[0] = mean;
    moments[1] = mean * mean + variance;
  }
  static double LogPartition(const double* eta) {
    return -0.25 * eta[0] * eta[0] / eta[1] - 0.5 * std::log(-2.0 * eta[1]) + 0.5 * kLog2Pi;
  }
  static double Entropy(const double* eta) {
    return 0.5 * (1.0 + kLog2Pi) - 0.5 * std::log(-2.0 * eta[1]);
  }
  /// T(x) of an observed value.
  static void PointMoments(double x, double* moments) {
    moments[0] = x;
    moments[1] = x * x;
  }

 private:
  Gaussian() = default;
  const double* Natural() const { return eta_; }
  double eta_[2] = {0.0, -0.5};
};

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_GAUSSIAN_H_
