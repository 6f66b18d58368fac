#ifndef VFE_CORE_QUADRATURE_H_
#define VFE_CORE_QUADRATURE_H_

// Gauss–Hermite quadrature for expectations under a standard normal:
//   E_{z ~ N(0, 1)}[f(z)] ≈ Σ_i w_i f(z_i),
// exact when f is a polynomial of degree ≤ 2K − 1 for a rule of K points (Golub & Welsch,
// "Calculation of Gauss quadrature rules", Math. Comp. 1969; the rule is the physicists' one,
// ∫ e^{−t²} g(t) dt ≈ Σ ω_i g(t_i), with z = √2 t and w = ω/√π). The nodes are the roots of
// the K-th Hermite polynomial, found by Newton's method on its orthonormal three-term
// recurrence from the asymptotic first guesses of Numerical Recipes (§4.6); the weights are
// 2 / H̃_K'(t_i)² in the orthonormal normalisation. Under q = N(m, v), E_q[f(x)] ≈
// Σ_i w_i f(m + √v z_i).

#include <cmath>
#include <string>
#include <vector>

#include "vfe/core/error.h"

namespace vfe {

/// The largest rule StandardNormalRule builds: beyond it the orthonormal recurrence leaves
/// the range of doubles at the outermost nodes.
constexpr int kMaxQuadraturePoints = 128;

/// The nodes z_i (ascending) and weights w_i (summing to 1) of the K-point rule.
struct QuadratureRule {
  std::vector<double> nodes, weights;
  int size() const { return static_cast<int>(nodes.size()); }
};

/// The K-point Gauss–Hermite rule for N(0, 1), 1 ≤ K ≤ kMaxQuadraturePoints; throws
/// ModelError outside that range.
inline QuadratureRule StandardNormalRule(int points) {
  if (points < 1 || points > kMaxQuadraturePoints)
    throw ModelError("quadrature points: expected an integer in [1, " +
                     std::to_string(kMaxQuadraturePoints) + "], got " + std::to_string(points));
  const int n = points;
  const double pi_to_minus_quarter = 0.7511255444649425;  // π^(−1/4)
  std::vector<double> t(n), omega(n);
  double root = 0.0;
  for (int i = 0; i < (n + 1) / 2; ++i) {
    // First guesses for the i-th largest root.
    if (i == 0) {
      root = std::sqrt(2.0 * n + 1) - 1.85575 * std::pow(2.0 * n + 1, -1.0 / 6.0);
    } else if (i == 1) {
      root -= 1.14 * std::pow(static_cast<double>(n), 0.426) / root;
    } else if (i == 2) {
      root = 1.86 * root - 0.86 * t[0];
    } else if (i == 3) {
      root = 1.91 * root - 0.91 * t[1];
    } else {
      root = 2.0 * root - t[i - 2];
    }
    double derivative = 0.0;
    for (int iteration = 0; iteration < 100; ++iteration) {
      // H̃_0 … H̃_n at root: H̃_{j+1} = √(2/(j+1)) t H̃_j − √(j/(j+1)) H̃_{j−1}.
      double p_previous = 0.0, p = pi_to_minus_quarter;
      for (int j = 0; j < n; ++j) {
        const double next = std::sqrt(2.0 / (j + 1)) * root * p -
                            std::sqrt(static_cast<double>(j) / (j + 1)) * p_previous;
        p_previous = p;
        p = next;
      }
      derivative = std::sqrt(2.0 * n) * p_previous;  // H̃_n' = √(2n) H̃_{n−1}
      const double step = p / derivative;
      root -= step;
      if (std::abs(step) <= 1e-15 * std::max(1.0, std::abs(root))) break;
    }
    t[i] = root;
    t[n - 1 - i] = -root;
    omega[i] = omega[n - 1 - i] = 2.0 / (derivative * derivative);
  }
  if (n % 2 == 1) t[n / 2] = 0.0;  // exactly
  QuadratureRule rule;
  rule.nodes.resize(n);
  rule.weights.resize(n);
  const double inverse_sqrt_pi = 0.5641895835477563;  // 1/√π
  for (int i = 0; i < n; ++i) {
    // Ascending: t was filled from the largest root down.
    rule.nodes[i] = std::sqrt(2.0) * t[i] * -1.0;
    rule.weights[i] = omega[i] * inverse_sqrt_pi;
  }
  return rule;
}

/// The tensor product of a rule in `dims` dimensions, for expectations under N(0, I):
///   E_{z ~ N(0, I)}[f(z)] ≈ Σ_i w_i f(z_i),  w_i = Π_j w_{i_j},
/// exact for polynomials of degree ≤ 2K − 1 in each coordinate. The points whose weight is
/// below `min_weight` are left out: their total weight, at most K^dims · min_weight, bounds
/// the error this adds for bounded f (relative to the size of f) — 1e-18 by default leaves
/// every double-precision sum as it was.
struct ProductRule {
  int dims = 0;
  std::vector<double> points;  ///< size() points of `dims` coordinates, contiguous
  std::vector<double> weights;
  int size() const { return static_cast<int>(weights.size()); }
  const double* Point(int i) const { return points.data() + static_cast<size_t>(i) * dims; }
};

/// The largest tensor grid StandardNormalProductRule builds (before leaving points out).
constexpr double kMaxProductRulePoints = 1 << 22;

/// The product of the K-point rule (StandardNormalRule) in `dims` ≥ 1 dimensions; throws
/// ModelError when K^dims exceeds kMaxProductRulePoints.
inline ProductRule StandardNormalProductRule(int points, int dims, double min_weight = 1e-18) {
  if (dims < 1) throw ModelError("product rule: expected at least one dimension");
  if (std::pow(static_cast<double>(points), dims) > kMaxProductRulePoints)
    throw ModelError("quadrature points: " + std::to_string(points) + " points in each of " +
                     std::to_string(dims) + " dimensions make " + std::to_string(points) + "^" +
                     std::to_string(dims) + " grid points, more than " +
                     std::to_string(static_cast<long>(kMaxProductRulePoints)) +
                     ": give fewer points");
  const QuadratureRule rule = StandardNormalRule(points);
  ProductRule product;
  product.dims = dims;
  std::vector<int> index(dims, 0);
  while (true) {
    double weight = 1.0;
    for (int j = 0; j < dims; ++j) weight *= rule.weights[index[j]];
    if (weight >= min_weight) {
      product.weights.push_back(weight);
      for (int j = 0; j < dims; ++j) product.points.push_back(rule.nodes[index[j]]);
    }
    int j = 0;  // the next index, the first coordinate fastest
    while (j < dims && ++index[j] == points) index[j++] = 0;
    if (j == dims) break;
  }
  return product;
}

}  // namespace vfe

#endif  // VFE_CORE_QUADRATURE_H_
