#ifndef VFE_DISTRIBUTIONS_BERNOULLI_H_
#define VFE_DISTRIBUTIONS_BERNOULLI_H_

#include <cmath>
#include <random>
#include <string>

#include "vfe/core/error.h"
#include "vfe/core/format.h"
#include "vfe/core/special.h"
#include "vfe/distributions/family.h"

namespace vfe {

/// Bernoulli(x | p), x ∈ {0, 1}, 0 < p < 1.
///
///   log p(x) = η x − A(η),   η = log(p / (1 − p)),   A = log(1 + e^η),   E[x] = σ(η),
///   H = A − η σ(η).
class Bernoulli {
 public:
  static constexpr Family kFamily = Family::kBernoulli;

  /// Throws ModelError unless 0 < p < 1.
  explicit Bernoulli(double p) {
    if (!(p > 0 && p < 1))
      throw ModelError("Bernoulli: p must be in (0, 1), got " + FormatNumber(p));
    eta_ = std::log(p) - std::log1p(-p);
  }
  /// From the log-odds; throws ModelError unless finite.
  static Bernoulli FromNatural(double log_odds) {
    if (!std::isfinite(log_odds))
      throw ModelError("Bernoulli: the log-odds must be finite, got " + FormatNumber(log_odds));
    Bernoulli q;
    q.eta_ = log_odds;
    return q;
  }
  static Bernoulli FromFlat(int /*dim*/, const double* eta) { return FromNatural(eta[0]); }
  void WriteNatural(double* eta) const { eta[0] = eta_; }
  int dim() const { return 1; }
  double log_odds() const { return eta_; }
  double p() const { return Sigmoid(eta_); }
  double mean() const { return p(); }

  double LogPartition() const { return LogPartition(&eta_); }
  double Entropy() const { return Entropy(&eta_); }
  double LogDensity(double x) const {
    if (x != 0.0 && x != 1.0) return -INFINITY;
    return eta_ * x - LogPartition();
  }
  double Sample(std::mt19937_64& rng) const {
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p() ? 1.0 : 0.0;
  }
  Bernoulli Product(const Bernoulli& other) const { return FromNatural(eta_ + other.eta_); }
  std::string ToString() const { return "Bernoulli(p=" + FormatNumber(p()) + ")"; }

  // Flat forms used by the engine.

  static bool IsProper(const double* eta) { return std::isfinite(eta[0]); }
  static void Moments(const double* eta, double* moments) { moments[0] = Sigmoid(eta[0]); }
  /// log(1 + e^η) without overflow.
  static double LogPartition(const double* eta) { return Softplus(eta[0]); }
  static double Entropy(const double* eta) { return LogPartition(eta) - eta[0] * Sigmoid(eta[0]); }
  static void PointMoments(double x, double* moments) { moments[0] = x; }

 private:
  Bernoulli() = default;
  double eta_ = 0.0;
};

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_BERNOULLI_H_
