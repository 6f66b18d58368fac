#include <cmath>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/core/special.h"
#include "vfe/distributions/mv_gaussian.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& MvGaussianNodeType();
const NodeType& LinearGaussianNodeType();

namespace {

enum Slot { kOut = 0, kIn = 1, kPrecision = 2, kPair = 3 };

/// N(out | A·in, W⁻¹) with out of dimension M, in of dimension K and A constant (one matrix
/// for the plate, or one 1 x K row per factor). W is a Wishart variable (M x M) or τ·I with
/// τ a Gamma variable. MvGaussian(out, mean, W) is the case A = I.
///
/// With R = E[(out − A·in)(out − A·in)ᵀ] = E[yyᵀ] − A E[x] E[y]ᵀ − E[y] E[x]ᵀAᵀ + A E[xxᵀ] Aᵀ:
///   to out:  (E[W] A E[x],  −½ E[W])        to in: (Aᵀ E[W] E[y],  −½ Aᵀ E[W] A)
///   to W:    (−½ R, ½)  (Wishart)           to τ:  (−½ tr R, M/2)  (Gamma)
///   U = (M/2) log 2π − ½ E[log|W|] + ½ tr(E[W] R).
/// When out and in are a pair of a cluster (the states of a chain), their joint moment
/// E[y xᵀ] replaces E[y] E[x]ᵀ in R, and the pair's potential is
///   log ψ(y, x) = −½ (y − A x)ᵀ E[W] (y − A x):  P = [E[W], −E[W] A; −Aᵀ E[W], Aᵀ E[W] A].
class LinearGaussianNode final : public Node {
 public:
  enum class Matrices { kShared, kRows, kIdentity };

  LinearGaussianNode(Matrices kind, const Matrix& matrix) : kind_(kind) {
    if (kind == Matrices::kRows) {
      // Row-major, so that the 1 x K matrix of factor n is K contiguous numbers.
      const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows = matrix;
      matrices_.assign(rows.data(), rows.data() + rows.size());
      rows_ = static_cast<size_t>(matrix.rows());
      in_dim_ = static_cast<int>(matrix.cols());
      out_dim_ = 1;
    } else if (kind == Matrices::kShared) {
      matrices_.assign(matrix.data(), matrix.data() + matrix.size());
      out_dim_ = static_cast<int>(matrix.rows());
      in_dim_ = static_cast<int>(matrix.cols());
    }
  }

  const NodeType& declaration() const {
    return kind_ == Matrices::kIdentity ? MvGaussianNodeType() : LinearGaussianNodeType();
  }
  const char* type() const override { return declaration().name.c_str(); }
  std::vector<std::string> slot_names() const override { return declaration().SlotNames(); }
  Family ObservedFamily(int slot, const PointMass& value) const override {
    if (slot == kPrecision) return value.is_scalar() ? Family::kGamma : Family::kWishart;
    if (kind_ == Matrices::kIdentity) return Family::kMvGaussian;
    return value.is_scalar() ? Family::kGaussian : Family::kMvGaussian;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    if (kind_ == Matrices::kIdentity) {
      RequireDeclaredFamilies(declaration(), slots, where);
      RequireDim(slots[kIn], slots[kOut].dim, where, DimensionOf(slots[kOut]));
      out_dim_ = in_dim_ = slots[kOut].dim;
      matrices_.assign(static_cast<size_t>(out_dim_) * out_dim_, 0.0);
      MatrixMap(matrices_.data(), out_dim_, out_dim_).setIdentity();
    } else {
      RequireDeclaredFamilies(declaration(), slots, where);
      if (!ConstVectorMap(matrices_.data(), matrices_.size()).allFinite())
        throw ModelError(where + ": the matrix must be finite");
      if (kind_ == Matrices::kRows && rows_ != num_factors)
        throw GraphError(where + ": the design has " + std::to_string(rows_) +
                         " rows but the plate has " + std::to_string(num_factors) + " factors");
      if (matrices_.empty()) throw ModelError(where + ": the matrix is empty");
    }
    if (slots[kOut].dim != out_dim_ || slots[kIn].dim != in_dim_)
      throw GraphError(where + ": the matrix is " + std::to_string(out_dim_) + "x" +
                       std::to_string(in_dim_) + " but 'out' is " + slots[kOut].variable +
                       " of dimension " + std::to_string(slots[kOut].dim) + " and '" +
                       slots[kIn].name + "' is " + slots[kIn].variable + " of dimension " +
                       std::to_string(slots[kIn].dim));
    scalar_precision_ = slots[kPrecision].family == Family::kGamma;
    precision_shared_ = slots[kPrecision].shared;
    if (!scalar_precision_)
      RequireDim(slots[kPrecision], out_dim_, where, DimensionOf(slots[kOut]));
    cache_ = Cache::kNone;
    if (ObservedVaryingSlot(slots) == kOut)
      cache_ = scalar_precision_ ? Cache::kScalarPrecision
                                 : (kind_ == Matrices::kRows ? Cache::kNone : Cache::kSums);
  }

  void Prepare(const SlotView* q, size_t num_factors) override {
    const int m = out_dim_, k = in_dim_;
    count_ = num_factors;
    if (cache_ == Cache::kSums) {
      sum_y_ = Vector::Zero(m);
      sum_yy_ = Matrix::Zero(m, m);
      for (size_t n = 0; n < num_factors; ++n) {
        sum_y_ += ConstVectorMap(q[kOut].At(n), m);
        sum_yy_ += ConstMatrixMap(q[kOut].At(n) + m, m, m);
      }
    } else if (cache_ == Cache::kScalarPrecision) {
      sum_ay_ = Vector::Zero(k);
      sum_aa_ = Matrix::Zero(k, k);
      sum_yy_trace_ = 0.0;
      for (size_t n = 0; n < num_factors; ++n) {
        const ConstMatrixMap a = A(n);
        sum_ay_.noalias() += a.transpose() * ConstVectorMap(q[kOut].At(n), m);
        sum_aa_.noalias() += a.transpose() * a;
        sum_yy_trace_ += ConstMatrixMap(q[kOut].At(n) + m, m, m).trace();
      }
    }
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace& ws) const override {
    if (UseSums(begin, end)) {
      if (cache_ == Cache::kSums)
        AddMessage(slot, A(0), sum_y_.data(), sum_yy_.data(), static_cast<double>(count_),
                   q[kIn].At(0), q[kPrecision].At(0), nullptr, eta, ws);
      else
        AddScalarPrecisionMessage(slot, q[kIn].At(0), q[kPrecision].At(0), eta);
      return;
    }
    const SlotView& pair = q[kPair];
    for (size_t n = begin; n < end; ++n) {
      const double* y = q[kOut].At(n);
      AddMessage(slot, A(n), y, y + out_dim_, 1.0, q[kIn].At(n), q[kPrecision].At(n),
                 pair.data ? pair.At(n) : nullptr, eta, ws);
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace& ws) const override {
    if (UseSums(begin, end)) {
      if (cache_ == Cache::kSums)
        return Energy(A(0), sum_y_.data(), sum_yy_.data(), static_cast<double>(count_),
                      q[kIn].At(0), q[kPrecision].At(0), nullptr, ws);
      const double* tau = q[kPrecision].At(0);
      return static_cast<double>(count_) * 0.5 * out_dim_ * (kLog2Pi - tau[1]) +
             0.5 * tau[0] * ScalarPrecisionTraceR(q[kIn].At(0));
    }
    double energy = 0.0;
    const SlotView& pair = q[kPair];
    for (size_t n = begin; n < end; ++n) {
      const double* y = q[kOut].At(n);
      energy += Energy(A(n), y, y + out_dim_, 1.0, q[kIn].At(n), q[kPrecision].At(n),
                       pair.data ? pair.At(n) : nullptr, ws);
    }
    return energy;
  }

  /// N(out | A·in, W⁻¹) at the point, as an MvGaussian density (M = 1 for a scalar out).
  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    const int m = out_dim_;
    const Vector x = point_values::Vec(in_dim_, q[kIn].At(n));
    const Vector mean = kind_ == Matrices::kIdentity ? x : Vector(A(n) * x);
    const double* w = q[kPrecision].At(n);
    const Matrix precision = scalar_precision_
                                 ? Matrix(point_values::Scalar(w) * Matrix::Identity(m, m))
                                 : Matrix(point_values::Mat(m, w));
    return MvGaussian(mean, precision).LogDensity(point_values::Vec(m, q[kOut].At(n)));
  }

  bool JoinsPair(int slot_a, int slot_b) const override {
    return kind_ != Matrices::kRows && slot_a == kOut && slot_b == kIn;
  }
  void PairPotential(size_t n, int, int, const SlotView* q, double* out,
                     Workspace& ws) const override {
    const int m = out_dim_, k = in_dim_, d = m + k;
    ExpectedPrecision(q[kPrecision].At(n), ws);
    const Eigen::Block<Matrix> ew = ws.c.topLeftCorner(m, m);
    const ConstMatrixMap a = A(n);
    VectorMap(out, d).setZero();
    MatrixMap eta2(out + d, d, d);
    // η₂ = −P/2.
    eta2.topLeftCorner(m, m) = -0.5 * ew;
    Eigen::Block<Matrix> ew_a = ws.b.topLeftCorner(m, k);
    ew_a.noalias() = ew * a;
    eta2.topRightCorner(m, k) = 0.5 * ew_a;
    eta2.bottomLeftCorner(k, m) = 0.5 * ew_a.transpose();
    eta2.bottomRightCorner(k, k).noalias() = -0.5 * (a.transpose() * ew_a);
  }
  bool PairPotentialShared() const override {
    return kind_ != Matrices::kRows && precision_shared_;
  }

 private:
  /// kSums: Σ E[y], Σ E[yyᵀ] of observed outs with one shared A (any precision).
  /// kScalarPrecision: Σ A_nᵀ E[y_n], Σ A_nᵀ A_n, Σ tr E[y_n y_nᵀ] (W = τ·I, any A).
  enum class Cache { kNone, kSums, kScalarPrecision };

  ConstMatrixMap A(size_t n) const {
    const size_t size = static_cast<size_t>(out_dim_) * in_dim_;
    return ConstMatrixMap(matrices_.data() + (kind_ == Matrices::kRows ? n * size : 0), out_dim_,
                          in_dim_);
  }
  bool UseSums(size_t begin, size_t end) const {
    return cache_ != Cache::kNone && begin == 0 && end == count_;
  }

 public:
  bool SumsCached() const override { return cache_ != Cache::kNone; }

 private:

  /// E[W] into ws.c (M x M) and E[log|W|].
  double ExpectedPrecision(const double* w, Workspace& ws) const {
    const int m = out_dim_;
    if (scalar_precision_) {
      ws.c.topLeftCorner(m, m) = w[0] * Matrix::Identity(m, m);
      return m * w[1];
    }
    ws.c.topLeftCorner(m, m) = ConstMatrixMap(w, m, m);
    return w[m * m];
  }

  /// R summed over `count` factors that share A, from Σ E[y] (`y`) and Σ E[yyᵀ] (`yy`), into
  /// ws.a (M x M). `cross` is E[y xᵀ] (M x K) when out and in are a pair of a cluster, else
  /// null (E[y] E[x]ᵀ).
  void ResidualSecondMoment(const ConstMatrixMap& a, const double* y, const double* yy,
                            double count, const double* x, const double* cross,
                            Workspace& ws) const {
    const int m = out_dim_, k = in_dim_;
    const ConstVectorMap ex(x, k), ey(y, m);
    const ConstMatrixMap exx(x + k, k, k);
    Eigen::Block<Matrix> r = ws.a.topLeftCorner(m, m);
    Eigen::Block<Matrix> a_exx = ws.b.topLeftCorner(m, k);
    a_exx.noalias() = a * exx;
    r = ConstMatrixMap(yy, m, m);
    if (cross) {
      Eigen::Block<Matrix> a_cross = ws.c.topLeftCorner(m, m);
      a_cross.noalias() = a * ConstMatrixMap(cross, m, k).transpose();
      r -= a_cross;
      r -= a_cross.transpose();
    } else {
      Eigen::VectorBlock<Vector> ax = ws.u.head(m);
      ax.noalias() = a * ex;
      r.noalias() -= ax * ey.transpose();
      r.noalias() -= ey * ax.transpose();
    }
    r.noalias() += count * (a_exx * a.transpose());
  }

  void AddMessage(int slot, const ConstMatrixMap& a, const double* y, const double* yy,
                  double count, const double* x, const double* w, const double* cross,
                  double* eta, Workspace& ws) const {
    const int m = out_dim_, k = in_dim_;
    if (slot == kPrecision) {
      ResidualSecondMoment(a, y, yy, count, x, cross, ws);
      if (scalar_precision_) {
        eta[0] -= 0.5 * ws.a.topLeftCorner(m, m).trace();
        eta[1] += 0.5 * count * m;
      } else {
        MatrixMap(eta, m, m) -= 0.5 * ws.a.topLeftCorner(m, m);
        eta[m * m] += 0.5 * count;
      }
      return;
    }
    ExpectedPrecision(w, ws);
    const Eigen::Block<Matrix> ew = ws.c.topLeftCorner(m, m);
    if (slot == kOut) {
      Eigen::VectorBlock<Vector> ax = ws.u.head(m);
      ax.noalias() = a * ConstVectorMap(x, k);
      VectorMap(eta, m).noalias() += ew * ax;
      MatrixMap(eta + m, m, m) -= (0.5 * count) * ew;
    } else {
      Eigen::Block<Matrix> ew_a = ws.b.topLeftCorner(m, k);
      ew_a.noalias() = ew * a;
      VectorMap(eta, k).noalias() += ew_a.transpose() * ConstVectorMap(y, m);
      MatrixMap(eta + k, k, k).noalias() -= (0.5 * count) * (a.transpose() * ew_a);
    }
  }

  double Energy(const ConstMatrixMap& a, const double* y, const double* yy, double count,
                const double* x, const double* w, const double* cross, Workspace& ws) const {
    const int m = out_dim_;
    ResidualSecondMoment(a, y, yy, count, x, cross, ws);
    const double log_det = ExpectedPrecision(w, ws);
    const double trace = ws.c.topLeftCorner(m, m).cwiseProduct(ws.a.topLeftCorner(m, m)).sum();
    return count * 0.5 * (m * kLog2Pi - log_det) + 0.5 * trace;
  }

  /// Σ_n tr R_n from the kScalarPrecision sums: Σ tr E[yyᵀ] − 2 (Σ A_nᵀ E[y_n])ᵀ E[x]
  /// + tr((Σ A_nᵀ A_n) E[xxᵀ]).
  double ScalarPrecisionTraceR(const double* x) const {
    const int k = in_dim_;
    return sum_yy_trace_ - 2.0 * sum_ay_.dot(ConstVectorMap(x, k)) +
           sum_aa_.cwiseProduct(ConstMatrixMap(x + k, k, k)).sum();
  }

  void AddScalarPrecisionMessage(int slot, const double* x, const double* tau, double* eta) const {
    const int k = in_dim_;
    if (slot == kPrecision) {
      eta[0] -= 0.5 * ScalarPrecisionTraceR(x);
      eta[1] += 0.5 * static_cast<double>(count_) * out_dim_;
    } else {  // kIn: out is the observed slot, so it is never the target here
      VectorMap(eta, k) += tau[0] * sum_ay_;
      MatrixMap(eta + k, k, k) -= (0.5 * tau[0]) * sum_aa_;
    }
  }

  Matrices kind_;
  std::vector<double> matrices_;
  size_t rows_ = 0;
  int out_dim_ = 1;
  int in_dim_ = 1;
  bool scalar_precision_ = true;
  bool precision_shared_ = false;
  Cache cache_ = Cache::kNone;
  size_t count_ = 0;
  Vector sum_y_, sum_ay_;
  Matrix sum_yy_, sum_aa_;
  double sum_yy_trace_ = 0.0;
};

}  // namespace

std::unique_ptr<Node> MakeMvGaussianNode() {
  return std::make_unique<LinearGaussianNode>(LinearGaussianNode::Matrices::kIdentity, Matrix());
}

std::unique_ptr<Node> MakeLinearGaussianNode(const Matrix& matrix) {
  return std::make_unique<LinearGaussianNode>(LinearGaussianNode::Matrices::kShared, matrix);
}

std::unique_ptr<Node> MakeLinearGaussianRowsNode(const Matrix& design) {
  return std::make_unique<LinearGaussianNode>(LinearGaussianNode::Matrices::kRows, design);
}


const NodeType& MvGaussianNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "MvGaussian";
    t.summary = "out ~ N(mean, precision⁻¹) over D-vectors";
    t.formula = "U = (D/2) log 2π − ½ E[log|W|] + ½ tr(E[W] E[(out − mean)(out − mean)ᵀ])";
    t.parameters = {
        Variable("out", "the D-vector the density is over", {Family::kMvGaussian}),
        VariableOrConstant("mean", "its mean", {Family::kMvGaussian}, ConstantKind::kValue),
        VariableOrConstant("precision", "W: a Wishart matrix, or τ·I with τ a Gamma variable",
                           {Family::kWishart, Family::kGamma}, ConstantKind::kPrecision)};
    t.make = [](const NodeArguments&) { return MakeMvGaussianNode(); };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "x", "family": "MvGaussian", "dim": 2},
    {"name": "W", "family": "Wishart", "dim": 2},
    {"name": "y", "dim": 2, "observed": [[0.5, -0.2], [1.1, 0.4], [-0.3, 0.9]]}
  ],
  "factors": [
    {"node": "MvGaussian", "out": "x", "mean": [0.0, 0.0], "precision": [[1.0, 0.0], [0.0, 1.0]]},
    {"node": "Wishart", "out": "W", "dof": 3.0, "scale": [[1.0, 0.0], [0.0, 1.0]]},
    {"node": "MvGaussian", "for": {"i": [0, 3]}, "out": "y[i]", "mean": "x", "precision": "W"}
  ]
})json";
    return t;
  }();
  return type;
}

const NodeType& LinearGaussianNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "LinearGaussian";
    t.summary = "out ~ N(matrix·in, precision⁻¹): regression, state-space transitions";
    t.formula = "U = (M/2) log 2π − ½ E[log|W|] + ½ tr(E[W] E[(out − A·in)(out − A·in)ᵀ])";
    Parameter matrix = Constant("matrix", "A (M x K), or data with one 1 x K row per factor",
                                ConstantKind::kMatrix);
    matrix.rows_per_factor = true;
    t.parameters = {
        Variable("out", "the M-vector (a scalar when M = 1)",
                 {Family::kGaussian, Family::kMvGaussian}),
        VariableOrConstant("in", "the K-vector A multiplies",
                           {Family::kGaussian, Family::kMvGaussian}, ConstantKind::kValue),
        matrix,
        VariableOrConstant("precision", "W: a Wishart matrix, or τ·I with τ a Gamma variable",
                           {Family::kWishart, Family::kGamma}, ConstantKind::kPrecision)};
    t.make = [](const NodeArguments& a) {
      const Matrix& m = a.matrix("matrix");
      // Rows of data for a plate of one factor are that factor's matrix.
      if (a.constant("matrix").kind == ConstantValue::Kind::kRows && a.num_factors() > 1)
        return MakeLinearGaussianRowsNode(m);
      return MakeLinearGaussianNode(m);
    };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "w", "family": "MvGaussian", "dim": 2},
    {"name": "tau", "family": "Gamma"},
    {"name": "X", "shape": [4], "dim": 2, "observed": [[1.0, 0.5], [1.0, -1.0], [1.0, 2.0], [1.0, 0.0]]},
    {"name": "y", "observed": [1.3, -0.4, 2.9, 0.8]}
  ],
  "factors": [
    {"node": "MvGaussian", "out": "w", "mean": [0.0, 0.0], "precision": [[0.1, 0.0], [0.0, 0.1]]},
    {"node": "Gamma", "out": "tau", "shape": 1.0, "rate": 1.0},
    {"node": "LinearGaussian", "for": {"n": [0, 4]}, "out": "y[n]", "in": "w", "matrix": "X[n]",
     "precision": "tau"}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
