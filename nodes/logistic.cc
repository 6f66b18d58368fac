// Logistic(out | in): a binary outcome whose log-odds are a Gaussian variable or a linear
// predictor of one (Bayesian logistic regression), by conjugate-computation variational
// inference or by the Jaakkola–Jordan bound.

#include <cmath>
#include <vector>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/core/format.h"
#include "vfe/core/quadrature.h"
#include "vfe/distributions/point_values.h"

namespace vfe {

const NodeType& LogisticNodeType();

namespace {

enum Slot { kOut = 0, kIn = 1 };

/// log(1 + eᵃ) without overflow.
inline double Softplus(double a) {
  return a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a));
}
/// σ(a) = 1 / (1 + e⁻ᵃ) without overflow.
inline double Sigmoid(double a) {
  if (a >= 0) return 1.0 / (1.0 + std::exp(-a));
  const double e = std::exp(a);
  return e / (1.0 + e);
}

/// Bernoulli(y | σ(a)) with the predictor a = rₙᵀ·w (rₙ the factor's row of the design, or
/// a = c·x for a scalar Gaussian x):
///   log f = y a − log(1 + eᵃ) =: g(a),  g'(a) = y − σ(a),  g''(a) = −σ(a)(1 − σ(a)).
/// Under q(w) = N(m, Σ) the predictor is N(aₘ, aᵥ) with aₘ = rᵀm and aᵥ = rᵀΣr, so every
/// expectation is one-dimensional.
///
/// CVI (Khan & Lin, AISTATS 2017): the message to w is the gradient of E_q[g] with respect to
/// q's mean parameters (m, E[wwᵀ]). By Bonnet's and Price's theorems ∇ₘE[g] = r E[g'] and
/// ∇_Σ E[g] = ½ r rᵀ E[g''], so in the natural parameters (h, −P/2) of a Gaussian
///   λ₁ = r (E[g'] − E[g''] aₘ),   λ₂ = ½ E[g''] r rᵀ,
/// a positive-definite precision contribution since g is concave. The message depends on q(w)
/// itself: the engine takes it as a natural-gradient step and backtracks where F would rise
/// (Node::StepsOnFreeEnergy). U = E_q[log(1 + eᵃ)] − E[y] aₘ, and the expectations of σ,
/// σ(1 − σ) and log(1 + eᵃ) are Gauss–Hermite sums over aₘ + √aᵥ zᵢ (core/quadrature.h).
///
/// Jaakkola–Jordan ("Bayesian parameter estimation via variational methods", Statistics and
/// Computing 2000): log σ(x) ≥ log σ(ξ) + (x − ξ)/2 − λ(ξ)(x² − ξ²), λ(ξ) = tanh(ξ/2)/(4ξ),
/// applied to log(1 − σ(a)) = log σ(−a), is quadratic in a: the messages are conjugate,
/// λ₁ = r (E[y] − ½), λ₂ = −λ(ξ) r rᵀ, with ξ² = E[a²] = aₘ² + aᵥ (the bound's optimum,
/// recomputed from the current q in closed form). U = −(E[y] − ½) aₘ − log σ(ξ) + ξ/2 is an
/// upper bound of the CVI U, so its F bounds the CVI F from above.
///
/// The rule's error grows with the predictor's variance (log(1 + eᵃ) has poles at a = ±iπ, so
/// the error of K points falls roughly like exp(−2π√(K/aᵥ))): the default of 64 points keeps
/// F to about 1e-12 relative for aᵥ up to 4, where 32 points leave 1e-9.
///
/// To out (a hidden Bernoulli): the log-odds E[g | y = 1] − E[g | y = 0] = aₘ, either way.
class LogisticNode final : public Node {
 public:
  enum class Approximation { kCvi, kJaakkolaJordan };
  enum class Rows { kNone, kShared, kPerFactor };

  LogisticNode(Approximation approximation, Rows rows, const Matrix& matrix, int points)
      : approximation_(approximation), rows_kind_(rows) {
    if (rows == Rows::kNone) {
      dim_ = 1;
      rows_.assign(1, 1.0);
    } else {
      // Row-major: the row of factor n is dim_ contiguous numbers.
      const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> r = matrix;
      rows_.assign(r.data(), r.data() + r.size());
      num_rows_ = static_cast<size_t>(matrix.rows());
      dim_ = static_cast<int>(matrix.cols());
    }
    if (approximation == Approximation::kCvi) rule_ = StandardNormalRule(points);
  }

  const char* type() const override { return LogisticNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override { return LogisticNodeType().SlotNames(); }
  Family ObservedFamily(int slot, const PointMass& value) const override {
    if (slot == kOut) return Family::kBernoulli;
    return value.is_scalar() ? Family::kGaussian : Family::kMvGaussian;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    RequireDeclaredFamilies(LogisticNodeType(), slots, where);
    const SlotInfo& in = slots[kIn];
    if (rows_kind_ == Rows::kNone && in.dim != 1)
      throw GraphError(where + ": 'in' is " + in.variable + ", " + FamilyName(in.family) +
                       " of dimension " + std::to_string(in.dim) +
                       ": give 'matrix', the row (or one row per factor) that maps it to the "
                       "log-odds");
    if (rows_kind_ != Rows::kNone)
      RequireDim(in, dim_, where, "the matrix has " + std::to_string(dim_) + " columns");
    if (rows_kind_ == Rows::kPerFactor && num_rows_ != num_factors)
      throw GraphError(where + ": 'matrix' has " + std::to_string(num_rows_) +
                       " rows but the plate has " + std::to_string(num_factors) + " factors");
    for (double x : rows_)
      if (!std::isfinite(x)) throw GraphError(where + ": 'matrix' must be finite");
    in_family_ = in.family;
  }

  bool StepsOnFreeEnergy(int slot) const override {
    return slot == kIn && approximation_ == Approximation::kCvi;
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace& ws) const override {
    const Shared shared = SharedMoments(q[kIn], ws);
    if (slot == kOut) {
      for (size_t n = begin; n < end; ++n) eta[0] += Predict(n, q[kIn], shared).mean;
      return;
    }
    const int d = dim_;
    for (size_t n = begin; n < end; ++n) {
      const double y = q[kOut].At(n)[0];
      const Moments a = Predict(n, q[kIn], shared);
      // The message's coefficients: λ₁ = r·first, λ₂ = second·r rᵀ.
      double first, second;
      if (approximation_ == Approximation::kCvi) {
        double mean_sigmoid = 0.0, mean_curvature = 0.0;
        const double sd = std::sqrt(a.variance);
        for (int i = 0; i < rule_.size(); ++i) {
          const double s = Sigmoid(a.mean + sd * rule_.nodes[i]);
          mean_sigmoid += rule_.weights[i] * s;
          mean_curvature += rule_.weights[i] * s * (1.0 - s);
        }
        // E[g'] = y − E[σ], E[g''] = −E[σ(1 − σ)].
        first = (y - mean_sigmoid) + mean_curvature * a.mean;
        second = -0.5 * mean_curvature;
      } else {
        first = y - 0.5;
        second = -JaakkolaJordanLambda(std::sqrt(a.mean * a.mean + a.variance));
      }
      const double* r = Row(n);
      if (in_family_ == Family::kGaussian) {
        eta[0] += r[0] * first;
        eta[1] += second * r[0] * r[0];
        continue;
      }
      for (int i = 0; i < d; ++i) eta[i] += r[i] * first;
      double* eta2 = eta + d;
      for (int j = 0; j < d; ++j)
        for (int i = 0; i < d; ++i) eta2[i + j * d] += second * r[i] * r[j];
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q,
                       Workspace& ws) const override {
    const Shared shared = SharedMoments(q[kIn], ws);
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const double y = q[kOut].At(n)[0];
      const Moments a = Predict(n, q[kIn], shared);
      if (approximation_ == Approximation::kCvi) {
        double mean_softplus = 0.0;
        const double sd = std::sqrt(a.variance);
        for (int i = 0; i < rule_.size(); ++i)
          mean_softplus += rule_.weights[i] * Softplus(a.mean + sd * rule_.nodes[i]);
        energy += mean_softplus - y * a.mean;
      } else {
        // −log σ(ξ) = log(1 + e^−ξ).
        const double xi = std::sqrt(a.mean * a.mean + a.variance);
        energy += -(y - 0.5) * a.mean + Softplus(-xi) + 0.5 * xi;
      }
    }
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    const double y = point_values::Scalar(q[kOut].At(n));
    const double* r = Row(n);
    const double* w = q[kIn].At(n);
    double a = 0.0;
    for (int i = 0; i < dim_; ++i) a += r[i] * w[i];
    return y * a - Softplus(a);
  }

 private:
  struct Moments {
    double mean, variance;
  };
  /// The mean and covariance of a shared in, computed once per call: from its natural
  /// parameters when it is hidden (Σ = P⁻¹ keeps its digits where E[wwᵀ] − mmᵀ would not), from
  /// its moments when it is observed.
  struct Shared {
    bool valid = false;
    const double* mean = nullptr;
    const double* covariance = nullptr;
    Eigen::Index stride = 0;  ///< the covariance's leading dimension (the workspace's)
  };

  static double JaakkolaJordanLambda(double xi) {
    if (xi < 1e-4) return 0.125 - xi * xi / 192.0;  // tanh(ξ/2)/(4ξ) by its series
    return std::tanh(0.5 * xi) / (4.0 * xi);
  }

  const double* Row(size_t n) const {
    return rows_kind_ == Rows::kPerFactor ? rows_.data() + n * static_cast<size_t>(dim_)
                                          : rows_.data();
  }

  Shared SharedMoments(const SlotView& in, Workspace& ws) const {
    Shared shared;
    if (in.stride != 0 || in.offsets || in_family_ != Family::kMvGaussian) return shared;
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

  /// The mean and variance of factor n's predictor under q(in).
  Moments Predict(size_t n, const SlotView& in, const Shared& shared) const {
    const double* r = Row(n);
    if (in_family_ == Family::kGaussian) {
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
      return {r[0] * m, r[0] * r[0] * v};
    }
    const int d = dim_;
    const ConstVectorMap row(r, d);
    if (shared.valid) {
      // The workspace is sized for the graph's largest dimension.
      const Eigen::Map<const Matrix, 0, Eigen::OuterStride<>> covariance(
          shared.covariance, d, d, Eigen::OuterStride<>(shared.stride));
      return {row.dot(ConstVectorMap(shared.mean, d)),
              std::max(0.0, row.dot(covariance * row))};
    }
    const double* t = in.At(n);
    const double m = row.dot(ConstVectorMap(t, d));
    const double second = row.dot(ConstMatrixMap(t + d, d, d) * row);
    return {m, std::max(0.0, second - m * m)};
  }

  Approximation approximation_;
  Rows rows_kind_;
  std::vector<double> rows_;
  size_t num_rows_ = 1;
  int dim_ = 1;
  QuadratureRule rule_;
  Family in_family_ = Family::kGaussian;
};

}  // namespace

const NodeType& LogisticNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Logistic";
    t.summary = "out ~ Bernoulli(σ(matrix·in)): binary data with Gaussian log-odds (logistic "
                "regression)";
    t.formula = "U = E[log(1 + exp a)] − E[y] E[a], a = r·in (CVI, Gauss–Hermite in a); "
                "Jaakkola–Jordan: U = −(E[y] − ½) E[a] − log σ(ξ) + ξ/2, ξ² = E[a²]";
    Parameter matrix = Optional(Constant(
        "matrix", "the 1 x K row r mapping in to the log-odds, or data with one row per factor",
        ConstantKind::kMatrix));
    matrix.rows_per_factor = true;
    Parameter approximation =
        Optional(Constant("approximation", "cvi (natural-gradient steps) or jaakkola_jordan "
                                           "(a conjugate bound)",
                          ConstantKind::kName),
                 "cvi");
    approximation.choices = {"cvi", "jaakkola_jordan"};
    t.parameters = {
        Variable("out", "the outcome y (data: 0 or 1)", {Family::kBernoulli}),
        NotConjugate(Variable("in", "the log-odds, or the K weights the row multiplies",
                              {Family::kGaussian, Family::kMvGaussian})),
        matrix, approximation,
        Optional(Constant("quadrature_points", "Gauss–Hermite points per expectation (cvi)",
                          ConstantKind::kPositiveInteger),
                 "64")};
    t.make = [](const NodeArguments& a) -> std::unique_ptr<Node> {
      const auto approximation = a.name("approximation") == "jaakkola_jordan"
                                     ? LogisticNode::Approximation::kJaakkolaJordan
                                     : LogisticNode::Approximation::kCvi;
      const long points = a.integer("quadrature_points");
      if (points > kMaxQuadraturePoints)
        a.Fail("quadrature_points", "expected an integer in [1, " +
                                        std::to_string(kMaxQuadraturePoints) + "], got " +
                                        std::to_string(points));
      auto rows = LogisticNode::Rows::kNone;
      Matrix matrix;
      if (a.given("matrix")) {
        matrix = a.matrix("matrix");
        const bool per_factor =
            a.constant("matrix").kind == ConstantValue::Kind::kRows && a.num_factors() > 1;
        if (!per_factor && matrix.rows() != 1)
          a.Fail("matrix", "expected one row (1 x K), got a " + std::to_string(matrix.rows()) +
                               "x" + std::to_string(matrix.cols()) + " matrix");
        rows = per_factor ? LogisticNode::Rows::kPerFactor : LogisticNode::Rows::kShared;
      }
      return std::make_unique<LogisticNode>(approximation, rows, matrix, static_cast<int>(points));
    };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "w", "family": "MvGaussian", "dim": 2},
    {"name": "X", "shape": [6], "dim": 2,
     "observed": [[1, -2.0], [1, -1.0], [1, -0.5], [1, 0.5], [1, 1.0], [1, 2.0]]},
    {"name": "y", "observed": [0, 0, 1, 0, 1, 1]},
    {"name": "y_new", "family": "Bernoulli"}
  ],
  "factors": [
    {"node": "MvGaussian", "out": "w", "mean": [0, 0], "precision": [[1, 0], [0, 1]]},
    {"node": "Logistic", "for": {"n": [0, 6]}, "out": "y[n]", "in": "w", "matrix": "X[n]"},
    {"node": "Logistic", "out": "y_new", "in": "w", "matrix": [[1, 1.5]]}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
