#ifndef VFE_DISTRIBUTIONS_CATEGORICAL_H_
#define VFE_DISTRIBUTIONS_CATEGORICAL_H_

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

/// Categorical(x | p) over K outcomes 0..K−1, written one-hot.
///
///   log p(x) = η·x − A(η),   η = log p (up to a constant; −∞ for impossible outcomes),
///   A = log Σ_k e^{η_k} (log-sum-exp, so logits of −1000 or K = 1000 neither underflow nor
///   overflow),   E[x] = softmax(η),   H = A − Σ_k p_k η_k (terms with p_k = 0 count 0).
class Categorical {
 public:
  static constexpr Family kFamily = Family::kCategorical;

  /// Throws ModelError unless p ≥ 0, finite, and sums to 1 (to 1e-9 relative).
  explicit Categorical(const Vector& p) {
    if (p.size() < 1) throw ModelError("Categorical: p is empty");
    for (Eigen::Index k = 0; k < p.size(); ++k)
      if (!(p[k] >= 0) || !std::isfinite(p[k]))
        throw ModelError("Categorical: p[" + std::to_string(k) + "] must be >= 0 and finite, got " +
                         FormatNumber(p[k]));
    const double total = p.sum();
    if (std::abs(total - 1.0) > 1e-9 * p.size())
      throw ModelError("Categorical: p must sum to 1, sums to " + FormatNumber(total));
    eta_ = p.array().log().matrix();
  }
  /// From log-probabilities up to a constant; throws ModelError if no outcome is possible or
  /// any entry is NaN or +∞.
  static Categorical FromNatural(const Vector& log_p) {
    if (!IsProper(static_cast<int>(log_p.size()), log_p.data()))
      throw ModelError("Categorical: log-probabilities must be < +inf, not NaN, and not all -inf");
    Categorical q;
    q.eta_ = log_p;
    return q;
  }
  static Categorical FromFlat(int dim, const double* eta) {
    return FromNatural(Eigen::Map<const Vector>(eta, dim));
  }
  void WriteNatural(double* eta) const { std::copy(eta_.data(), eta_.data() + eta_.size(), eta); }
  int dim() const { return static_cast<int>(eta_.size()); }
  /// The probabilities softmax(η).
  Vector p() const {
    Vector out(eta_.size());
    Moments(dim(), eta_.data(), out.data());
    return out;
  }
  Vector mean() const { return p(); }

  double LogPartition() const { return LogPartition(dim(), eta_.data()); }
  double Entropy() const { return Entropy(dim(), eta_.data()); }
  /// log p(x = k).
  double LogDensity(int k) const {
    if (k < 0 || k >= dim()) return -INFINITY;
    return eta_[k] - LogPartition();
  }
  int Sample(std::mt19937_64& rng) const {
    const Vector probabilities = p();
    double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    for (int k = 0; k < dim(); ++k) {
      if (u < probabilities[k]) return k;
      u -= probabilities[k];
    }
    return dim() - 1;
  }
  Categorical Product(const Categorical& other) const {
    if (other.dim() != dim()) throw ModelError("Categorical: product of mismatched dimensions");
    return FromNatural(eta_ + other.eta_);
  }
  std::string ToString() const {
    std::ostringstream out;
    out.precision(10);
    out << "Categorical(p=[" << p().transpose() << "])";
    return out.str();
  }

  // Flat forms used by the engine.

  static bool IsProper(int dim, const double* eta) {
    bool any = false;
    for (int k = 0; k < dim; ++k) {
      if (std::isnan(eta[k]) || eta[k] == INFINITY) return false;
      any = any || std::isfinite(eta[k]);
    }
    return any;
  }
  /// E[x] = softmax(η): e_k = Exp(η_k − max η) (so e = 1 at the largest logit, and logits
  /// of −∞ give 0), then e_k · (1 / Σ_j e_j); two outcomes with std::exp and a division.
  static void Moments(int dim, const double* eta, double* moments) {
    if (dim == 2) {
      // In registers, and exp(0) = 1 costs no exp: binary variables (Ising spins) are
      // common, updated one at a time, where one scalar std::exp costs less than Exp's two.
      const double top = std::max(eta[0], eta[1]);
      const double e0 = eta[0] == top ? 1.0 : std::exp(eta[0] - top);
      const double e1 = eta[1] == top ? 1.0 : std::exp(eta[1] - top);
      const double total = e0 + e1;
      moments[0] = e0 / total;
      moments[1] = e1 / total;
      return;
    }
    MomentsOfRun(dim, 1, eta, moments);
  }
  /// The moments of `count` densities stored one after another (η and E[x] of element i at
  /// i · dim): what Moments gives for each, bit for bit, with the exps of the whole run in
  /// one vectorised pass (Exp's array form). Stops before the first element that is not
  /// proper (IsProper), whose moments and those after it are not written, and returns the
  /// number of elements done. `moments` must not overlap `eta`.
  static size_t MomentsOfRun(int dim, size_t count, const double* eta, double* moments) {
    size_t done = 0;
    if (dim == 2) {  // Moments' path for two outcomes, one element at a time
      for (; done < count && IsProper(2, eta + 2 * done); ++done)
        Moments(2, eta + 2 * done, moments + 2 * done);
      return done;
    }
    for (; done < count; ++done) {
      const double* logits = eta + done * dim;
      double top = logits[0];
      bool improper = false;  // NaN or +∞ anywhere, or no finite logit
      for (int k = 0; k < dim; ++k) {
        top = std::max(top, logits[k]);
        improper = improper || !(logits[k] < INFINITY);
      }
      if (improper || top == -INFINITY) break;
      double* gaps = moments + done * dim;
      for (int k = 0; k < dim; ++k) gaps[k] = logits[k] - top;
    }
    const size_t size = done * static_cast<size_t>(dim);
    Exp(moments, moments, size);
    for (size_t first = 0; first < size; first += dim) {
      double total = 0.0;
      for (int k = 0; k < dim; ++k) total += moments[first + k];
      const double inverse = 1.0 / total;
      for (int k = 0; k < dim; ++k) moments[first + k] *= inverse;
    }
    return done;
  }
  static double LogPartition(int dim, const double* eta) {
    const double top = *std::max_element(eta, eta + dim);
    double total = 0.0;
    for (int k = 0; k < dim; ++k) total += std::exp(eta[k] - top);
    return top + std::log(total);
  }
  /// H = −Σ p_k log p_k = log Σ_j e_j + Σ_k p_k (top − η_k), e_k = exp(η_k − top): one exp
  /// per outcome (none for the largest), every term non-negative.
  static double Entropy(int dim, const double* eta) {
    const double top = *std::max_element(eta, eta + dim);
    double total = 0.0, weighted_gap = 0.0;
    for (int k = 0; k < dim; ++k) {
      if (eta[k] == top) {
        total += 1.0;
      } else if (eta[k] > -INFINITY) {
        const double e = std::exp(eta[k] - top);
        total += e;
        weighted_gap += e * (top - eta[k]);
      }
    }
    return std::log(total) + weighted_gap / total;
  }
  /// The same entropy given also the probabilities p = Moments(η): with t the most probable
  /// outcome, log p_k = η_k − η_t + log p_t, so H = −log p_t + Σ_k p_k (η_t − η_k), one log
  /// and no exp, every term non-negative. p_t = max p and η_t = max η (the same outcome, as
  /// p grows with η), taken without branches: the most probable outcome of a label is
  /// different from one label to the next.
  static double Entropy(int dim, const double* eta, const double* p) {
    double top_p = p[0], top_eta = eta[0];
    for (int k = 1; k < dim; ++k) {
      top_p = std::max(top_p, p[k]);
      top_eta = std::max(top_eta, eta[k]);
    }
    double h = -std::log(top_p);
    for (int k = 0; k < dim; ++k) h += p[k] > 0.0 ? p[k] * (top_eta - eta[k]) : 0.0;
    return h;
  }
  /// The one-hot statistics of outcome k.
  static void PointMoments(int dim, int k, double* moments) {
    std::fill(moments, moments + dim, 0.0);
    moments[k] = 1.0;
  }

 private:
  Categorical() = default;
  Vector eta_;
};

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_CATEGORICAL_H_
