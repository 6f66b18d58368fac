#ifndef VFE_DISTRIBUTIONS_WISHART_H_
#define VFE_DISTRIBUTIONS_WISHART_H_

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
#include "vfe/distributions/mv_gaussian.h"

namespace vfe {

/// Wishart(Λ | ν, V) over D x D positive definite matrices, with degrees of freedom ν > D − 1
/// and scale V (positive definite): E[Λ] = ν·V.
///
///   log p(Λ) = tr(η₁Λ) + η₂ log|Λ| − A(η),   η = (−V⁻¹/2, (ν − D − 1)/2),
///   A = (νD/2) log 2 + (ν/2) log|V| + log Γ_D(ν/2),
///   E[log|Λ|] = Σᵢ ψ((ν + 1 − i)/2) + D log 2 + log|V|,
///   H = A + νD/2 − ((ν − D − 1)/2)·E[log|Λ|]   (Bishop, PRML, B.78–B.82).
class Wishart {
 public:
  static constexpr Family kFamily = Family::kWishart;

  /// Throws ModelError unless ν > D − 1 and V is symmetric positive definite.
  Wishart(double dof, const Matrix& scale) {
    ValidatePositiveDefinite(scale, "Wishart: scale");
    const int d = static_cast<int>(scale.rows());
    if (!(dof > d - 1) || !std::isfinite(dof))
      throw ModelError("Wishart: degrees of freedom must be > D - 1 = " + std::to_string(d - 1) +
                       ", got " + FormatNumber(dof));
    eta1_ = -0.5 * scale.llt().solve(Matrix::Identity(d, d));
    eta2_ = 0.5 * (dof - d - 1);
  }

  /// From natural parameters (−V⁻¹/2, (ν − D − 1)/2); throws ModelError if improper.
  static Wishart FromNatural(const Matrix& eta1, double eta2) {
    ValidatePositiveDefinite(-2.0 * eta1, "Wishart: -2 * eta1");
    if (!(eta2 > -1.0) || !std::isfinite(eta2))
      throw ModelError("Wishart: natural parameter eta2 must be > -1, got " + FormatNumber(eta2));
    Wishart w;
    w.eta1_ = eta1;
    w.eta2_ = eta2;
    return w;
  }
  static Wishart FromFlat(int dim, const double* eta) {
    return FromNatural(ConstMatrixMap(eta, dim, dim), eta[dim * dim]);
  }

  /// Writes (η₁, η₂) in the flat layout.
  void WriteNatural(double* eta) const {
    MatrixMap(eta, dim(), dim()) = eta1_;
    eta[dim() * dim()] = eta2_;
  }
  int dim() const { return static_cast<int>(eta1_.rows()); }
  double dof() const { return 2.0 * eta2_ + dim() + 1; }
  Matrix scale() const {
    return (-2.0 * eta1_).llt().solve(Matrix::Identity(dim(), dim()));
  }
  /// E[Λ] = ν·V.
  Matrix mean() const { return dof() * scale(); }
  /// E[log|Λ|].
  double mean_log_det() const {
    return MultiDigamma(dim(), 0.5 * dof()) + dim() * kLog2 - LogDetInverseScale();
  }

  double LogPartition() const {
    const double nu = dof();
    return 0.5 * nu * dim() * kLog2 - 0.5 * nu * LogDetInverseScale() +
           LogMultiGamma(dim(), 0.5 * nu);
  }
  double Entropy() const {
    return LogPartition() + 0.5 * dof() * dim() - eta2_ * mean_log_det();
  }
  double LogDensity(const Matrix& x) const {
    const Eigen::LLT<Matrix> llt(x);
    if (llt.info() != Eigen::Success) return -INFINITY;
    const double log_det = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
    return (eta1_.cwiseProduct(x)).sum() + eta2_ * log_det - LogPartition();
  }
  /// Bartlett decomposition: Λ = L A Aᵀ Lᵀ with V = L Lᵀ, A lower triangular,
  /// A_ii² ~ χ²(ν − i + 1) (i = 1..D), A_ij ~ N(0, 1) below the diagonal.
  Matrix Sample(std::mt19937_64& rng) const {
    const int d = dim();
    std::normal_distribution<double> normal;
    Matrix a = Matrix::Zero(d, d);
    for (int i = 0; i < d; ++i) {
      a(i, i) = std::sqrt(std::chi_squared_distribution<double>(dof() - i)(rng));
      for (int j = 0; j < i; ++j) a(i, j) = normal(rng);
    }
    const Matrix l = scale().llt().matrixL();
    const Matrix la = l * a;
    return la * la.transpose();
  }
  Wishart Product(const Wishart& other) const {
    if (other.dim() != dim()) throw ModelError("Wishart: product of mismatched dimensions");
    return FromNatural(eta1_ + other.eta1_, eta2_ + other.eta2_);
  }
  std::string ToString() const {
    std::ostringstream out;
    out.precision(10);
    out << "Wishart(dof=" << dof() << ", scale=[" << scale() << "])";
    return out.str();
  }

  // Flat forms used by the engine: η = (η₁ as D² numbers, η₂); `ws` sized for exactly `dim`.

  /// Writes E[T] = (ν·V, E[log|Λ|]); returns false (writing nothing) if improper.
  static bool Moments(int dim, const double* eta, double* moments, Workspace& ws) {
    if (!Factorise(dim, eta, ws)) return false;
    const double nu = 2.0 * eta[dim * dim] + dim + 1;
    MatrixMap mean(moments, dim, dim);
    mean.setIdentity();
    ws.llt.solveInPlace(mean);  // V
    mean *= nu;
    moments[dim * dim] = MultiDigamma(dim, 0.5 * nu) + dim * kLog2 - LogDet(ws);
    return true;
  }
  /// NaN if improper.
  static double Entropy(int dim, const double* eta, Workspace& ws) {
    if (!Factorise(dim, eta, ws)) return NAN;
    const double eta2 = eta[dim * dim];
    const double nu = 2.0 * eta2 + dim + 1;
    const double log_det_inverse_scale = LogDet(ws);
    const double log_partition =
        0.5 * nu * dim * kLog2 - 0.5 * nu * log_det_inverse_scale + LogMultiGamma(dim, 0.5 * nu);
    const double mean_log_det = MultiDigamma(dim, 0.5 * nu) + dim * kLog2 - log_det_inverse_scale;
    return log_partition + 0.5 * nu * dim - eta2 * mean_log_det;
  }
  /// T(Λ) = (Λ, log|Λ|) of an observed positive definite matrix.
  static void PointMoments(const Eigen::Ref<const Matrix>& x, double* moments) {
    const int dim = static_cast<int>(x.rows());
    MatrixMap(moments, dim, dim) = x;
    const Eigen::LLT<Matrix> llt(x);
    moments[dim * dim] = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
  }

 private:
  Wishart() = default;
  double LogDetInverseScale() const {
    const Eigen::LLT<Matrix> llt(-2.0 * eta1_);
    return 2.0 * llt.matrixLLT().diagonal().array().log().sum();
  }
  /// Cholesky of V⁻¹ = −2η₁ into ws.llt, and the check ν > D − 1.
  static bool Factorise(int dim, const double* eta, Workspace& ws) {
    assert(ws.dim == dim);
    ConstMatrixMap eta1(eta, dim, dim);
    const double eta2 = eta[dim * dim];
    if (!eta1.allFinite() || !std::isfinite(eta2) || !(eta2 > -1.0)) return false;
    ws.a.noalias() = -2.0 * eta1;
    ws.llt.compute(ws.a);
    return ws.llt.info() == Eigen::Success;
  }
  /// log|V⁻¹| from the factor in ws.llt.
  static double LogDet(const Workspace& ws) {
    return 2.0 * ws.llt.matrixLLT().diagonal().array().log().sum();
  }
  Matrix eta1_;
  double eta2_ = 0.0;
};

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_WISHART_H_
