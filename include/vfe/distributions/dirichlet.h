#ifndef VFE_DISTRIBUTIONS_DIRICHLET_H_
#define VFE_DISTRIBUTIONS_DIRICHLET_H_

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <string>

#include "vfe/core/error.h"
#include "vfe/core/format.h"
#include "vfe/core/special.h"
#include "vfe/core/types.h"
#include "vfe/distributions/family.h"

namespace vfe {

/// Dirichlet(p | α) over the K-simplex, α_k > 0: mean α/α₀ with α₀ = Σ α_k.
///
///   log p(p) = η·log p − A(η),   η = α − 1,   A = Σ log Γ(α_k) − log Γ(α₀),
///   E[log p_k] = ψ(α_k) − ψ(α₀),   H = A − Σ (α_k − 1)(ψ(α_k) − ψ(α₀)).
class Dirichlet {
 public:
  static constexpr Family kFamily = Family::kDirichlet;

  /// Throws ModelError unless every α_k > 0 and finite.
  explicit Dirichlet(const Vector& alpha) {
    if (alpha.size() < 1) throw ModelError("Dirichlet: alpha is empty");
    for (Eigen::Index k = 0; k < alpha.size(); ++k)
      if (!(alpha[k] > 0) || !std::isfinite(alpha[k]))
        throw ModelError("Dirichlet: alpha[" + std::to_string(k) +
                         "] must be > 0 and finite, got " + FormatNumber(alpha[k]));
    for (Eigen::Index k = 0; k < alpha.size(); ++k)
      if (const std::string why = ShapeTooSmall(alpha[k]); !why.empty())
        throw ModelError("Dirichlet: alpha[" + std::to_string(k) + "] " +
                         FormatNumber(alpha[k]) + why);
    eta_ = alpha.array() - 1.0;
  }
  static Dirichlet FromNatural(const Vector& eta) {
    if (!IsProper(static_cast<int>(eta.size()), eta.data()))
      throw ModelError("Dirichlet: natural parameters must all be finite and > -1");
    return Dirichlet(Vector(eta.array() + 1.0));
  }
  static Dirichlet FromFlat(int dim, const double* eta) {
    return FromNatural(Eigen::Map<const Vector>(eta, dim));
  }
  void WriteNatural(double* eta) const { std::copy(eta_.data(), eta_.data() + eta_.size(), eta); }
  int dim() const { return static_cast<int>(eta_.size()); }
  Vector alpha() const { return eta_.array() + 1.0; }
  Vector mean() const { return alpha() / alpha().sum(); }
  /// E[log p_k] = ψ(α_k) − ψ(α₀).
  Vector mean_log() const {
    Vector out(eta_.size());
    Moments(dim(), eta_.data(), out.data());
    return out;
  }

  double LogPartition() const { return LogPartition(dim(), eta_.data()); }
  double Entropy() const { return Entropy(dim(), eta_.data()); }
  double LogDensity(const Vector& p) const {
    if (p.size() != eta_.size() || (p.array() <= 0).any() || std::abs(p.sum() - 1.0) > 1e-9)
      return -INFINITY;
    return eta_.dot(p.array().log().matrix()) - LogPartition();
  }
  /// Normalised independent Gamma(α_k, 1) draws.
  Vector Sample(std::mt19937_64& rng) const {
    Vector x(eta_.size());
    for (Eigen::Index k = 0; k < x.size(); ++k)
      x[k] = std::gamma_distribution<double>(eta_[k] + 1.0, 1.0)(rng);
    return x / x.sum();
  }
  Dirichlet Product(const Dirichlet& other) const {
    if (other.dim() != dim()) throw ModelError("Dirichlet: product of mismatched dimensions");
    return FromNatural(eta_ + other.eta_);
  }
  std::string ToString() const {
    std::ostringstream out;
    out.precision(10);
    out << "Dirichlet(alpha=[" << alpha().transpose() << "])";
    return out.str();
  }

  // Flat forms used by the engine.

  static bool IsProper(int dim, const double* eta) {
    for (int k = 0; k < dim; ++k)
      if (!(eta[k] > -1.0) || !std::isfinite(eta[k])) return false;
    return true;
  }
  static void Moments(int dim, const double* eta, double* moments) {
    double total = 0.0;
    for (int k = 0; k < dim; ++k) total += eta[k] + 1.0;
    const double digamma_total = Digamma(total);
    for (int k = 0; k < dim; ++k) moments[k] = Digamma(eta[k] + 1.0) - digamma_total;
  }
  static double LogPartition(int dim, const double* eta) {
    double total = 0.0, sum = 0.0;
    for (int k = 0; k < dim; ++k) {
      total += eta[k] + 1.0;
      sum += LogGamma(eta[k] + 1.0);
    }
    return sum - LogGamma(total);
  }
  static double Entropy(int dim, const double* eta) {
    double total = 0.0;
    for (int k = 0; k < dim; ++k) total += eta[k] + 1.0;
    const double digamma_total = Digamma(total);
    double h = LogPartition(dim, eta);
    for (int k = 0; k < dim; ++k) h -= eta[k] * (Digamma(eta[k] + 1.0) - digamma_total);
    return h;
  }
  /// T(p) = log p of known probabilities (log 0 = −∞ for an impossible outcome).
  static void PointMoments(const Eigen::Ref<const Vector>& p, double* moments) {
    for (Eigen::Index k = 0; k < p.size(); ++k) moments[k] = std::log(p[k]);
  }

 private:
  Vector eta_;
};

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_DIRICHLET_H_
