#ifndef VFE_DISTRIBUTIONS_MV_GAUSSIAN_H_
#define VFE_DISTRIBUTIONS_MV_GAUSSIAN_H_

#include <cassert>
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

/// Checks that `m` is square, finite, symmetric (to 1e-10 relative) and positive definite;
/// throws ModelError naming `what` otherwise. Returns its log-determinant.
inline double ValidatePositiveDefinite(const Matrix& m, const std::string& what) {
  if (m.rows() != m.cols() || m.rows() == 0)
    throw ModelError(what + " must be a non-empty square matrix, got " + std::to_string(m.rows()) +
                     "x" + std::to_string(m.cols()));
  if (!m.allFinite()) throw ModelError(what + " must be finite");
  const double scale = m.cwiseAbs().maxCoeff();
  const double asymmetry = (m - m.transpose()).cwiseAbs().maxCoeff();
  if (asymmetry > 1e-10 * scale)
    throw ModelError(what + " must be symmetric, got asymmetry " + FormatNumber(asymmetry));
  Eigen::LLT<Matrix> llt(m);
  if (llt.info() != Eigen::Success)
    throw ModelError(what + " must be positive definite");
  return 2.0 * llt.matrixLLT().diagonal().array().log().sum();
}

/// Multivariate Gaussian N(x | m, W⁻¹) with mean m and precision W (D x D, positive definite).
///
///   log p(x) = η₁ᵀx + tr(η₂ x xᵀ) − A(η),   η = (W·m, −W/2),
///   A = ½ mᵀWm − ½ log|W| + (D/2) log 2π,   H = (D/2)(1 + log 2π) − ½ log|W|.
class MvGaussian {
 public:
  static constexpr Family kFamily = Family::kMvGaussian;

  /// Throws ModelError on a dimension mismatch or a precision that is not symmetric positive
  /// definite.
  MvGaussian(const Vector& mean, const Matrix& precision) {
    if (mean.size() != precision.rows())
      throw ModelError("MvGaussian: mean has dimension " + std::to_string(mean.size()) +
                       " but precision is " + std::to_string(precision.rows()) + "x" +
                       std::to_string(precision.cols()));
    if (!mean.allFinite()) throw ModelError("MvGaussian: mean must be finite");
    ValidatePositiveDefinite(precision, "MvGaussian: precision");
    eta1_ = precision * mean;
    eta2_ = -0.5 * precision;
  }

  /// From natural parameters (W·m, −W/2); throws ModelError if −2η₂ is not positive definite.
  static MvGaussian FromNatural(const Vector& eta1, const Matrix& eta2) {
    const Matrix precision = -2.0 * eta2;
    if (eta1.size() != precision.rows())
      throw ModelError("MvGaussian: natural parameters of mismatched dimensions");
    ValidatePositiveDefinite(precision, "MvGaussian: -2 * eta2");
    MvGaussian g;
    g.eta1_ = eta1;
    g.eta2_ = eta2;
    return g;
  }
  /// From the flat layout (η₁, η₂) of dimension `dim`.
  static MvGaussian FromFlat(int dim, const double* eta) {
    return FromNatural(ConstVectorMap(eta, dim), ConstMatrixMap(eta + dim, dim, dim));
  }

  /// Writes (η₁, η₂) in the flat layout.
  void WriteNatural(double* eta) const {
    VectorMap(eta, dim()) = eta1_;
    MatrixMap(eta + dim(), dim(), dim()) = eta2_;
  }
  int dim() const { return static_cast<int>(eta1_.size()); }
  const Vector& eta1() const { return eta1_; }
  const Matrix& eta2() const { return eta2_; }
  Matrix precision() const { return -2.0 * eta2_; }
  Matrix covariance() const { return precision().llt().solve(Matrix::Identity(dim(), dim())); }
  Vector mean() const { return precision().llt().solve(eta1_); }
  /// E[x xᵀ] = Σ + m mᵀ.
  Matrix second_moment() const {
    const Vector m = mean();
    return covariance() + m * m.transpose();
  }

  double LogPartition() const {
    const Vector m = mean();
    return 0.5 * eta1_.dot(m) - 0.5 * LogDetPrecision() + 0.5 * dim() * kLog2Pi;
  }
  double Entropy() const { return 0.5 * dim() * (1.0 + kLog2Pi) - 0.5 * LogDetPrecision(); }
  double LogDensity(const Vector& x) const {
    return eta1_.dot(x) + x.dot(eta2_ * x) - LogPartition();
  }
  /// m + L⁻ᵀz with W = LLᵀ and z standard normal.
  Vector Sample(std::mt19937_64& rng) const {
    std::normal_distribution<double> normal;
    Vector z(dim());
    for (int i = 0; i < dim(); ++i) z[i] = normal(rng);
    const Eigen::LLT<Matrix> llt(precision());
    return mean() + llt.matrixU().solve(z);
  }
  MvGaussian Product(const MvGaussian& other) const {
    if (other.dim() != dim()) throw ModelError("MvGaussian: product of mismatched dimensions");
    return FromNatural(eta1_ + other.eta1_, eta2_ + other.eta2_);
  }
  std::string ToString() const {
    std::ostringstream out;
    out.precision(10);
    out << "MvGaussian(mean=[" << mean().transpose() << "], covariance=[" << covariance()
        << "])";
    return out.str();
  }

  // Flat forms used by the engine; `ws` must be sized for exactly `dim`.

  /// Writes E[T] = (m, Σ + m mᵀ); returns false (writing nothing) if −2η₂ is not positive
  /// definite or η is not finite.
  static bool Moments(int dim, const double* eta, double* moments, Workspace& ws) {
    if (!Factorise(dim, eta, ws)) return false;
    VectorMap mean(moments, dim);
    MatrixMap second(moments + dim, dim, dim);
    second.setIdentity();
    ws.llt.solveInPlace(second);  // Σ = W⁻¹
    mean.noalias() = second * ConstVectorMap(eta, dim);
    second.noalias() += mean * mean.transpose();
    return true;
  }
  /// (D/2)(1 + log 2π) − ½ log|W|; NaN if improper.
  static double Entropy(int dim, const double* eta, Workspace& ws) {
    if (!Factorise(dim, eta, ws)) return NAN;
    const double log_det = 2.0 * ws.llt.matrixLLT().diagonal().array().log().sum();
    return 0.5 * dim * (1.0 + kLog2Pi) - 0.5 * log_det;
  }
  static void PointMoments(const Eigen::Ref<const Vector>& x, double* moments) {
    const int dim = static_cast<int>(x.size());
    VectorMap(moments, dim) = x;
    MatrixMap(moments + dim, dim, dim).noalias() = x * x.transpose();
  }

 private:
  MvGaussian() = default;
  double LogDetPrecision() const {
    const Eigen::LLT<Matrix> llt(precision());
    return 2.0 * llt.matrixLLT().diagonal().array().log().sum();
  }
  /// Cholesky of W = −2η₂ into ws.llt.
  static bool Factorise(int dim, const double* eta, Workspace& ws) {
    assert(ws.dim == dim);
    ConstMatrixMap eta2(eta + dim, dim, dim);
    if (!eta2.allFinite() || !ConstVectorMap(eta, dim).allFinite()) return false;
    ws.a.noalias() = -2.0 * eta2;
    ws.llt.compute(ws.a);
    return ws.llt.info() == Eigen::Success;
  }
  Vector eta1_;
  Matrix eta2_;
};

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_MV_GAUSSIAN_H_
