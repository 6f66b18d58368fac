#ifndef VFE_TESTS_TESTING_TEXTBOOK_H_
#define VFE_TESTS_TESTING_TEXTBOOK_H_

// Test oracles written from the textbook, sharing no code with vfe: log densities, and a
// running mean with its standard error for Monte Carlo estimates.

#include <Eigen/Cholesky>
#include <Eigen/LU>
#include <cmath>
#include <functional>

#include "vfe/core/types.h"

namespace vfe::testing {

constexpr double kLogTwoPi = 1.8378770664093454836;

/// log N(x | mean, 1/precision).
inline double LogGaussian(double x, double mean, double precision) {
  return 0.5 * (std::log(precision) - kLogTwoPi) - 0.5 * precision * (x - mean) * (x - mean);
}

/// log N(x | mean, precision⁻¹) for vectors.
inline double LogNormal(const Vector& x, const Vector& mean, const Matrix& precision) {
  const Vector r = x - mean;
  return 0.5 * (std::log(precision.determinant()) - x.size() * kLogTwoPi) -
         0.5 * r.dot(precision * r);
}

/// log Gamma(x | shape, rate).
inline double LogGammaDensity(double x, double shape, double rate) {
  return shape * std::log(rate) - std::lgamma(shape) + (shape - 1) * std::log(x) - rate * x;
}

/// log B(a, b) = log Γ(a) + log Γ(b) − log Γ(a + b).
inline double LogBetaFunction(double a, double b) {
  return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
}

/// log Beta(p | a, b).
inline double LogBetaDensity(double p, double a, double b) {
  return (a - 1) * std::log(p) + (b - 1) * std::log1p(-p) - LogBetaFunction(a, b);
}

/// log Dirichlet(p | alpha).
inline double LogDirichletDensity(const Vector& p, const Vector& alpha) {
  double out = std::lgamma(alpha.sum());
  for (Eigen::Index k = 0; k < p.size(); ++k)
    out += (alpha[k] - 1) * std::log(p[k]) - std::lgamma(alpha[k]);
  return out;
}

/// log Wishart(x | dof, scale) with E[x] = dof · scale.
inline double LogWishart(const Matrix& x, double dof, const Matrix& scale) {
  const int d = static_cast<int>(x.rows());
  double log_multigamma = 0.25 * d * (d - 1) * std::log(M_PI);
  for (int i = 0; i < d; ++i) log_multigamma += std::lgamma(0.5 * (dof - i));
  return 0.5 * (dof - d - 1) * std::log(x.determinant()) - 0.5 * (scale.inverse() * x).trace() -
         0.5 * dof * d * std::log(2.0) - 0.5 * dof * std::log(scale.determinant()) -
         log_multigamma;
}

/// ∫ f over [a, b] by composite Simpson with `intervals` (even) intervals.
inline double Integrate(const std::function<double(double)>& f, double a, double b,
                        int intervals = 20000) {
  const double h = (b - a) / intervals;
  double sum = f(a) + f(b);
  for (int i = 1; i < intervals; ++i) sum += (i % 2 ? 4 : 2) * f(a + i * h);
  return sum * h / 3;
}

/// Mean and standard error of a stream of values (Welford).
class RunningMean {
 public:
  void Add(double value) {
    ++count_;
    const double delta = value - mean_;
    mean_ += delta / count_;
    m2_ += delta * (value - mean_);
  }
  double mean() const { return mean_; }
  double standard_error() const { return std::sqrt(m2_ / (count_ - 1) / count_); }

 private:
  long count_ = 0;
  double mean_ = 0.0;
  double m2_ = 0.0;
};

}  // namespace vfe::testing

#endif  // VFE_TESTS_TESTING_TEXTBOOK_H_
