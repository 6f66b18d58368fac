#ifndef VFE_DISTRIBUTIONS_POINT_VALUES_H_
#define VFE_DISTRIBUTIONS_POINT_VALUES_H_

// A value read back from the statistics T(x) of a point (the inverse of each family's
// PointMoments): how a node evaluates its log-density at a sample or an observed value.

#include <cmath>

#include "vfe/core/types.h"

namespace vfe {
namespace point_values {

/// Gaussian, Gamma and Bernoulli: T = (x, …).
inline double Scalar(const double* t) { return t[0]; }
/// Beta: T = (log p, log(1 − p)).
inline double Probability(const double* t) { return std::exp(t[0]); }
/// Categorical: the one-hot index (the largest entry, so a rounding error cannot move it).
inline int Outcome(int k, const double* t) {
  int best = 0;
  for (int i = 1; i < k; ++i)
    if (t[i] > t[best]) best = i;
  return best;
}
/// Dirichlet: T = log p.
inline Vector Probabilities(int k, const double* t) {
  return ConstVectorMap(t, k).array().exp().matrix();
}
/// MvGaussian: T = (x, x xᵀ).
inline ConstVectorMap Vec(int d, const double* t) { return ConstVectorMap(t, d); }
/// Wishart: T = (Λ, log|Λ|).
inline ConstMatrixMap Mat(int d, const double* t) { return ConstMatrixMap(t, d, d); }

}  // namespace point_values
}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_POINT_VALUES_H_
