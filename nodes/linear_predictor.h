#ifndef VFE_NODES_LINEAR_PREDICTOR_H_
#define VFE_NODES_LINEAR_PREDICTOR_H_

// The linear predictor of a non-conjugate regression factor (private to nodes/): factor n
// reads a = rₙᵀ·w + oₙ, with w a Gaussian or MvGaussian slot, rₙ a shared 1 x K row, one row
// per factor, or 1 for a scalar Gaussian, and oₙ an optional offset (a constant or one per
// factor). Under q(w) = N(m, Σ) the predictor is N(aₘ, aᵥ), aₘ = rᵀm + o, aᵥ = rᵀΣr, so every
// expectation such a factor needs is one-dimensional; and its CVI message to w,
//   λ₁ = r (E[g'] − E[g''] (aₘ − o)),  λ₂ = ½ E[g''] r rᵀ,
// is the gradient of E_q[g(a)] with respect to q's mean parameters (Bonnet's and Price's
// theorems: ∇ₘE[g] = r E[g'], ∇_Σ E[g] = ½ r rᵀ E[g''], and λ₁ = ∇ₘ − 2∇_Σ m).

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nodes/node_checks.h"
#include "vfe/core/format.h"
#include "vfe/nodes/registry.h"

namespace vfe {

class LinearPredictor {
 public:
  enum class Rows { kNone, kShared, kPerFactor };
  struct Moments {
    double mean, variance;
  };
  /// The mean and covariance of a shared w, computed once per call: from its natural
  /// parameters when it is hidden (Σ = P⁻¹ keeps its digits where E[wwᵀ] − mmᵀ would not),
  /// from its moments when it is observed.
  struct Shared {
    bool valid = false;
    const double* mean = nullptr;
    const double* covariance = nullptr;
    Eigen::Index stride = 0;  ///< the covariance's leading dimension (the workspace's)
  };

  LinearPredictor() { rows_.assign(1, 1.0); }

  /// From a factor's "matrix" (optional) and "offset" (optional) arguments.
  explicit LinearPredictor(const NodeArguments& a) {
    if (a.given("matrix")) {
      const Matrix& matrix = a.matrix("matrix");
      const bool per_factor =
          a.constant("matrix").kind == ConstantValue::Kind::kRows && a.num_factors() > 1;
      if (!per_factor && matrix.rows() != 1)
        a.Fail("matrix", "expected one row (1 x K), got a " + std::to_string(matrix.rows()) +
                             "x" + std::to_string(matrix.cols()) + " matrix");
      kind_ = per_factor ? Rows::kPerFactor : Rows::kShared;
      // Row-major: the row of factor n is dim_ contiguous numbers.
      const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> r = matrix;
      rows_.assign(r.data(), r.data() + r.size());
      num_rows_ = static_cast<size_t>(matrix.rows());
      dim_ = static_cast<int>(matrix.cols());
    } else {
      rows_.assign(1, 1.0);
    }
    if (a.type().Find("offset") && a.given("offset")) {
      const ConstantValue& offset = a.constant("offset");
      if (offset.kind == ConstantValue::Kind::kRows && a.num_factors() > 1) {
        if (offset.matrix.cols() != 1)
          a.Fail("offset", "expected one number per factor, got rows of " +
                               std::to_string(offset.matrix.cols()));
        offsets_.assign(offset.matrix.data(), offset.matrix.data() + offset.matrix.rows());
      } else {
        if (offset.matrix.size() != 1)
          a.Fail("offset", "expected a number or one number per factor, got " +
                               offset.Describe());
        offsets_.assign(1, offset.matrix(0, 0));
      }
    }
  }

  /// The dimension K of w.
  int dim() const { return dim_; }

  /// Checks w's dimension against the rows, and the rows and offsets against the plate.
  void Bind(const SlotInfo& in, size_t num_factors, const std::string& where) {
    if (kind_ == Rows::kNone && in.dim != 1)
      throw GraphError(where + ": 'in' is " + in.variable + ", " + FamilyName(in.family) +
                       " of dimension " + std::to_string(in.dim) +
                       ": give 'matrix', the row (or one row per factor) that maps it to the "
                       "predictor");
    if (kind_ != Rows::kNone)
      RequireDim(in, dim_, where, "the matrix has " + std::to_string(dim_) + " columns");
    if (kind_ == Rows::kPerFactor && num_rows_ != num_factors)
      throw GraphError(where + ": 'matrix' has " + std::to_string(num_rows_) +
                       " rows but the plate has " + std::to_string(num_factors) + " factors");
    if (offsets_.size() > 1 && offsets_.size() != num_factors)
      throw GraphError(where + ": 'offset' has " + std::to_string(offsets_.size()) +
                       " values but the plate has " + std::to_string(num_factors) + " factors");
    for (double x : rows_)
      if (!std::isfinite(x)) throw GraphError(where + ": 'matrix' must be finite");
    for (double x : offsets_)
      if (!std::isfinite(x)) throw GraphError(where + ": 'offset' must be finite");
    family_ = in.family;
  }

  Shared SharedMoments(const SlotView& in, Workspace& ws) const {
    Shared shared;
    if (in.stride != 0 || in.offsets || family_ != Family::kMvGaussian) return shared;
    const int d = dim_;
    Eigen::Block<Matrix> covariance = ws.a.topLeftCorner(d, d);
    Eigen::VectorBlock<Vector> mean = ws.u.head(d);
    if (in.natural) {
      // η = (h, −P/2): Σ = (−2 η₂)⁻¹, m = Σ h.
      Eigen::Ref<Matrix> precision_matrix = ws.b.topLeftCorner(d, d);
      precision_matrix = -2.0 * ConstMatrixMap(in.natural + d, d, d);
      // Factorised in place: no allocation.
      const Eigen::LLT<Eigen::Ref<Matrix>> precision(precision_matrix);
      covariance.setIdentity();
      precision.solveInPlace(covariance);
      mean.noalias() = covariance * ConstVectorMap(in.natural, d);
    } else {
      mean = ConstVectorMap(in.data, d);
      covariance = ConstMatrixMap(in.data + d, d, d);
      covariance.noalias() -= mean * mean.transpose();
    }
    shared.valid = true;
    shared.mean = ws.u.data();
    shared.covariance = ws.a.data();
    shared.stride = ws.a.rows();
    return shared;
  }

  /// The mean (offset included) and variance of factor n's predictor under q(in).
  Moments Predict(size_t n, const SlotView& in, const Shared& shared) const {
    const double* r = Row(n);
    const double o = Offset(n);
    if (family_ == Family::kGaussian) {
      double m, v;
      if (in.natural) {
        const double* eta = in.NaturalAt(n);
        v = -0.5 / eta[1];
        m = eta[0] * v;
      } else {
        const double* t = in.At(n);
        m = t[0];
        v = std::max(0.0, t[1] - m * m);
      }
      return {r[0] * m + o, r[0] * r[0] * v};
    }
    const int d = dim_;
    const ConstVectorMap row(r, d);
    if (shared.valid) {
      // The covariance has the workspace's leading dimension (the graph's largest).
      return {row.dot(ConstVectorMap(shared.mean, d)) + o,
              std::max(0.0, QuadraticForm(shared.covariance, shared.stride, r, d))};
    }
    const double* t = in.At(n);
    const double m = row.dot(ConstVectorMap(t, d));
    const double second = QuadraticForm(t + d, d, r, d);
    return {m + o, std::max(0.0, second - m * m)};
  }

  /// Adds factor n's message to w, given E[g'] (`slope`) and E[g''] (`curvature`) at the
  /// predictor's moments `a`, to eta (the natural parameters of w's family).
  void AddMessage(size_t n, const Moments& a, double slope, double curvature,
                  double* eta) const {
    AddQuadratic(n, slope - curvature * (a.mean - Offset(n)), 0.5 * curvature, eta);
  }

  /// Adds λ₁ = first·r and λ₂ = second·r rᵀ for factor n to eta.
  void AddQuadratic(size_t n, double first, double second, double* eta) const {
    const double* r = Row(n);
    if (family_ == Family::kGaussian) {
      eta[0] += r[0] * first;
      eta[1] += second * r[0] * r[0];
      return;
    }
    const int d = dim_;
    for (int i = 0; i < d; ++i) eta[i] += r[i] * first;
    double* eta2 = eta + d;
    for (int j = 0; j < d; ++j)
      for (int i = 0; i < d; ++i) eta2[i + j * d] += second * r[i] * r[j];
  }

  /// a at a point w (its statistics T(w), which start with w).
  double At(size_t n, const double* w) const {
    const double* r = Row(n);
    double a = Offset(n);
    for (int i = 0; i < dim_; ++i) a += r[i] * w[i];
    return a;
  }

 private:
  /// rᵀAr for the symmetric d x d matrix A stored by columns `stride` apart, column by column:
  /// an Eigen product here would allocate a temporary for every factor.
  static double QuadraticForm(const double* a, Eigen::Index stride, const double* r, int d) {
    double sum = 0.0;
    for (int j = 0; j < d; ++j) {
      const double* column = a + j * stride;
      double a_r = 0.0;
      for (int i = 0; i < d; ++i) a_r += column[i] * r[i];
      sum += a_r * r[j];
    }
    return sum;
  }

  const double* Row(size_t n) const {
    return kind_ == Rows::kPerFactor ? rows_.data() + n * static_cast<size_t>(dim_)
                                     : rows_.data();
  }
  double Offset(size_t n) const {
    if (offsets_.empty()) return 0.0;
    return offsets_.size() == 1 ? offsets_[0] : offsets_[n];
  }

  Rows kind_ = Rows::kNone;
  std::vector<double> rows_;
  size_t num_rows_ = 1;
  int dim_ = 1;
  std::vector<double> offsets_;  ///< none, one shared, or one per factor
  Family family_ = Family::kGaussian;
};

/// The "matrix" parameter of a regression factor.
inline Parameter PredictorMatrixParameter(const std::string& predictor) {
  Parameter matrix;
  matrix.name = "matrix";
  matrix.help =
      "the 1 x K row r mapping in to the " + predictor + ", or data with one row per factor";
  matrix.connection = Connection::kNone;
  matrix.constant = ConstantKind::kMatrix;
  matrix.rows_per_factor = true;
  matrix.required = false;
  return matrix;
}

}  // namespace vfe

#endif  // VFE_NODES_LINEAR_PREDICTOR_H_
