#ifndef VFE_DISTRIBUTIONS_POINT_MASS_H_
#define VFE_DISTRIBUTIONS_POINT_MASS_H_

#include <cmath>
#include <random>
#include <string>

#include "vfe/core/error.h"
#include "vfe/core/format.h"
#include "vfe/core/types.h"
#include "vfe/distributions/family.h"
#include "vfe/distributions/bernoulli.h"
#include "vfe/distributions/beta.h"
#include "vfe/distributions/categorical.h"
#include "vfe/distributions/dirichlet.h"
#include "vfe/distributions/gamma.h"
#include "vfe/distributions/gaussian.h"
#include "vfe/distributions/mv_gaussian.h"
#include "vfe/distributions/wishart.h"

namespace vfe {

/// A point mass δ(x − x₀): the "posterior" of an observed variable or a constant argument.
/// Its moments are the sufficient statistics T(x₀) of whichever family reads it; it carries no
/// entropy (observed terms of the free energy are log-densities, not differential entropies).
class PointMass {
 public:
  /// A scalar (for Gaussian or Gamma slots).
  explicit PointMass(double value) : value_(Matrix::Constant(1, 1, value)), is_scalar_(true) {}
  /// A vector (for MvGaussian slots).
  explicit PointMass(const Vector& value) : value_(value) {}
  /// A matrix (for Wishart slots).
  explicit PointMass(const Matrix& value) : value_(value) {}

  /// The value as a matrix: 1x1 for a scalar, Dx1 for a vector.
  const Matrix& value() const { return value_; }
  bool is_scalar() const { return is_scalar_; }
  double Entropy() const { return 0.0; }
  /// A draw is the value itself, whole (1x1 for a scalar, Dx1 for a vector, the matrix for
  /// a matrix); it takes nothing from `rng`.
  const Matrix& Sample(std::mt19937_64& /*rng*/) const { return value_; }

  /// Throws ModelError (prefixed by `what`) unless the value lies in the support of `family`
  /// with event dimension `dim`: finite; > 0 for Gamma; symmetric positive definite for Wishart;
  /// in (0, 1) for Beta; 0 or 1 for Bernoulli; an integer in [0, K) for Categorical;
  /// probabilities (≥ 0, summing to 1) for Dirichlet.
  void Validate(Family family, int dim, const std::string& what) const {
    if (!value_.allFinite())
      throw ModelError(what + ": value must be finite, got " + Describe());
    if (IsScalarFamily(family)) {
      if (value_.size() != 1) throw ModelError(what + ": expected a scalar, got " + Shape());
      const std::string problem = ScalarProblem(family, dim, value_(0, 0));
      if (!problem.empty()) throw ModelError(what + ": " + problem);
      return;
    }
    switch (family) {
      case Family::kMvGaussian:
        if (value_.cols() != 1 || value_.rows() != dim)
          throw ModelError(what + ": expected a vector of dimension " + std::to_string(dim) +
                           ", got " + Shape());
        break;
      case Family::kWishart:
        if (value_.rows() != dim || value_.cols() != dim)
          throw ModelError(what + ": expected a " + std::to_string(dim) + "x" +
                           std::to_string(dim) + " matrix, got " + Shape());
        ValidatePositiveDefinite(value_, what);
        break;
      case Family::kDirichlet: {
        if (value_.cols() != 1 || value_.rows() != dim)
          throw ModelError(what + ": expected probabilities of dimension " + std::to_string(dim) +
                           ", got " + Shape());
        if ((value_.array() < 0).any())
          throw ModelError(what + ": expected probabilities >= 0, got " + Describe());
        const double total = value_.sum();
        if (std::abs(total - 1.0) > 1e-9 * dim)
          throw ModelError(what + ": expected probabilities that sum to 1, got " + Describe() +
                           " (sum " + FormatNumber(total) + ")");
        break;
      }
      default: break;
    }
  }

  /// Families whose values are single numbers.
  static bool IsScalarFamily(Family family) {
    return family == Family::kGaussian || family == Family::kGamma || family == Family::kBeta ||
           family == Family::kBernoulli || family == Family::kCategorical;
  }
  /// What is wrong with the number x as a value of the scalar `family` (K = `dim` outcomes for
  /// Categorical), or "" if nothing. Lets millions of data points be checked without building
  /// a PointMass or a message each.
  static std::string ScalarProblem(Family family, int dim, double x) {
    if (!std::isfinite(x)) return "value must be finite, got " + FormatNumber(x);
    switch (family) {
      case Family::kGamma:
        if (!(x > 0)) return "expected a positive number, got " + FormatNumber(x);
        break;
      case Family::kBeta:
        if (!(x > 0 && x < 1)) return "expected a probability in (0, 1), got " + FormatNumber(x);
        break;
      case Family::kBernoulli:
        if (x != 0.0 && x != 1.0) return "expected 0 or 1, got " + FormatNumber(x);
        break;
      case Family::kCategorical:
        if (x != std::floor(x) || x < 0 || x >= dim)
          return "expected an outcome in 0.." + std::to_string(dim - 1) + ", got " +
                 FormatNumber(x);
        break;
      default: break;
    }
    return "";
  }
  /// T(x) of the number x in the layout of the scalar `family` (one that ScalarProblem accepts).
  static void ScalarMoments(Family family, int dim, double x, double* moments) {
    switch (family) {
      case Family::kGaussian: Gaussian::PointMoments(x, moments); break;
      case Family::kGamma: Gamma::PointMoments(x, moments); break;
      case Family::kBeta: Beta::PointMoments(x, moments); break;
      case Family::kBernoulli: Bernoulli::PointMoments(x, moments); break;
      case Family::kCategorical: Categorical::PointMoments(dim, static_cast<int>(x), moments); break;
      default: break;
    }
  }

  /// Writes T(x₀) in the layout of `family` (which Validate accepted).
  /// `dim` is the number of outcomes for Categorical (the other families read it from the
  /// value).
  void Moments(Family family, double* moments, int dim = 1) const {
    switch (family) {
      case Family::kMvGaussian: MvGaussian::PointMoments(value_.col(0), moments); break;
      case Family::kWishart: Wishart::PointMoments(value_, moments); break;
      case Family::kDirichlet: Dirichlet::PointMoments(value_.col(0), moments); break;
      default: ScalarMoments(family, dim, value_(0, 0), moments); break;
    }
  }
  std::string ToString() const { return "PointMass(" + Describe() + ")"; }

 private:
  std::string Shape() const {
    if (is_scalar_) return "a scalar";
    if (value_.cols() == 1) return "a vector of dimension " + std::to_string(value_.rows());
    return "a " + std::to_string(value_.rows()) + "x" + std::to_string(value_.cols()) + " matrix";
  }
  std::string Describe() const {
    if (value_.size() == 1) return FormatNumber(value_(0, 0));
    std::ostringstream out;
    out.precision(10);
    out << "[" << value_.transpose() << "]";
    return out.str();
  }
  Matrix value_;
  bool is_scalar_ = false;
};

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_POINT_MASS_H_
