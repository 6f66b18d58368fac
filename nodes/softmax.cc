// Softmax(out | in) and Softmax(out | weights, matrix): a class y ∈ {0, …, K−1} whose scores
// are a K-dimensional Gaussian, or K linear predictors of Gaussian rows (multinomial logistic
// regression), by conjugate-computation variational inference.

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include <Eigen/Eigenvalues>

#include "nodes/declare.h"
#include "nodes/linear_predictor.h"
#include "nodes/node_checks.h"
#include "vfe/core/format.h"
#include "vfe/core/quadrature.h"
#include "vfe/distributions/point_values.h"

namespace vfe {

const NodeType& SoftmaxNodeType();

namespace {

constexpr int kOut = 0;
constexpr int kScores = 1;  ///< `in`, or the first of the K rows of `weights`
/// The most classes a Softmax factor takes: the scores' moments then live on the stack.
constexpr int kMaxClasses = 16;

using SmallVector = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxClasses, 1>;
using SmallMatrix =
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxClasses, kMaxClasses>;
/// Each row's mean and covariance, where it has shared ones (SoftmaxNode::SharedRows).
using SharedRowMoments = std::array<LinearPredictor::Shared, kMaxClasses>;

/// Under a ~ N(μ, C): E[lse(a)], E[p(a)] and E[H(a)], H = diag p − p pᵀ, p = softmax(a).
struct SoftmaxExpectations {
  double log_sum_exp = 0.0;
  SmallVector p;
  SmallMatrix h;
};

/// Categorical(y | softmax(a)), a ∈ ℝᴷ the scores: with y one-hot (or E[y] for a hidden y)
///   g(a) = log f = yᵀa − lse(a),  ∇g = y − p,  ∇²g = −H,  lse(a) = log Σₖ exp aₖ.
/// The scores are `in`, an MvGaussian x of dimension K (a = x), or the K linear predictors
/// aₖ = rₙᵀwₖ of the rows wₖ of `weights` (an array of K Gaussians or MvGaussians) and the
/// factor's row rₙ of `matrix`; mean-field over the rows makes a ~ N(μ, diag v) there. With
/// K − 1 rows class 0 is the reference, a₀ = 0 (the baseline-category logit): softmax is
/// unchanged by adding one vector to every row, and without a reference only the prior pins
/// that direction, which mean-field updates of one row at a time then cross slowly.
///
/// CVI (Khan & Lin, AISTATS 2017), as for Logistic: the message to a Gaussian slot is the
/// gradient of E_q[g] with respect to its mean parameters, by Bonnet's and Price's theorems
///   to x:   λ₁ = y − E[p] + E[H] μ,  λ₂ = −½ E[H];
///   to wₖ:  λ₁ = r (yₖ − E[pₖ] + E[Hₖₖ] μₖ),  λ₂ = −½ E[Hₖₖ] r rᵀ,
/// positive semi-definite precision contributions (lse is convex); the engine takes them as
/// natural-gradient steps with backtracking on F (Node::StepsOnFreeEnergy). To a hidden out
/// the message is the log-probabilities E[a] (E[lse(a)] is the same for every class).
/// U = E[lse(a)] − yᵀμ.
///
/// The expectations: lse(a) = a₀ + lse(0, d) with d = (a₁ − a₀, …, a_{K−1} − a₀) ~ N(δ, D),
/// and p and H depend on d only, so they are (K−1)-dimensional Gauss–Hermite products over
/// d = δ + S z, S Sᵀ = D (core/quadrature.h; for K = 2 the Logistic node's 1-D rule).
class SoftmaxNode final : public Node {
 public:
  /// `rows` > 0: the scores are the predictors of that many rows; 0: they are `in`.
  /// `points` per dimension; 0 for the default (Bind, once K is known).
  SoftmaxNode(size_t rows, LinearPredictor predictor, int points)
      : rows_(static_cast<int>(rows)), predictor_(std::move(predictor)), points_(points) {}

  const char* type() const override { return SoftmaxNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override {
    return SoftmaxNodeType().SlotNames(
        {{"in", rows_ ? 0 : 1}, {"weights", static_cast<size_t>(rows_)}});
  }
  Family ObservedFamily(int slot, const PointMass& value) const override {
    if (slot == kOut) return Family::kCategorical;
    return value.is_scalar() ? Family::kGaussian : Family::kMvGaussian;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    RequireDeclaredFamilies(SoftmaxNodeType(), slots, where);
    classes_ = slots[kOut].dim;
    if (classes_ < 2 || classes_ > kMaxClasses)
      throw GraphError(where + ": 'out' expects a Categorical of 2 to " +
                       std::to_string(kMaxClasses) + " outcomes, got " + slots[kOut].variable +
                       " with " + std::to_string(classes_));
    if (rows_) {
      if (rows_ != classes_ && rows_ != classes_ - 1)
        throw GraphError(where + ": 'weights' has " + std::to_string(rows_) + " rows but " +
                         DimensionOf(slots[kOut]) +
                         ": give one row per class, or one per class after the first (whose "
                         "score is then 0)");
      reference_ = classes_ - rows_;
      for (int k = 0; k < rows_; ++k) predictor_.Bind(slots[kScores + k], num_factors, where);
    } else {
      RequireDim(slots[kScores], classes_, where, DimensionOf(slots[kOut]));
    }
    int points = points_;
    if (points == 0) {
      // The default: 64 points keep F to ~1e-11 relative for score variances near 1 (32
      // leave ~3e-9); beyond three classes the grid is held to 2¹⁶ points.
      points = 64;
      while (std::pow(static_cast<double>(points), classes_ - 1) > 65536.0) --points;
    }
    try {
      grid_ = StandardNormalProductRule(points, classes_ - 1);
    } catch (const ModelError& e) {
      throw GraphError(where + ": " + e.what());
    }
  }

  bool StepsOnFreeEnergy(int slot) const override { return slot >= kScores; }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace& ws) const override {
    const SharedRowMoments shared = SharedRows(q, ws);
    const int k = classes_;
    SmallVector mean(k);
    SmallMatrix covariance(k, k);
    SoftmaxExpectations e;
    for (size_t n = begin; n < end; ++n) {
      ScoreMoments(n, q, shared, &mean, &covariance);
      if (slot == kOut) {
        for (int i = 0; i < k; ++i) eta[i] += mean(i);
        continue;
      }
      Expect(mean, covariance, true, &e);
      const double* y = q[kOut].At(n);
      if (rows_) {
        const int c = slot - kScores + reference_;  // the row's class
        const LinearPredictor::Moments a{mean(c), covariance(c, c)};
        predictor_.AddMessage(n, a, y[c] - e.p(c), -e.h(c, c), eta);
        continue;
      }
      const SmallVector first = ConstVectorMap(y, k) - e.p + e.h * mean;
      for (int i = 0; i < k; ++i) eta[i] += first(i);
      for (int j = 0; j < k; ++j)
        for (int i = 0; i < k; ++i) eta[k + i + j * k] -= 0.5 * e.h(i, j);
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q,
                       Workspace& ws) const override {
    const SharedRowMoments shared = SharedRows(q, ws);
    const int k = classes_;
    SmallVector mean(k);
    SmallMatrix covariance(k, k);
    SoftmaxExpectations e;
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      ScoreMoments(n, q, shared, &mean, &covariance);
      Expect(mean, covariance, false, &e);
      energy += e.log_sum_exp - ConstVectorMap(q[kOut].At(n), k).dot(mean);
    }
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    const int k = classes_;
    SmallVector a(k);
    for (int i = 0; i < k; ++i)
      a(i) = !rows_ ? q[kScores].At(n)[i]
             : i < reference_ ? 0.0
                              : predictor_.At(n, q[kScores + i - reference_].At(n));
    const double top = a.maxCoeff();
    const double lse = top + std::log((a.array() - top).exp().sum());
    return a(point_values::Outcome(k, q[kOut].At(n))) - lse;
  }

 private:
  /// The mean and covariance of each shared MvGaussian row, from its natural parameters
  /// (LinearPredictor::SharedMoments), kept per thread so that a sweep allocates nothing
  /// once the buffer has grown; invalid entries (scalar or per-factor rows) read q directly.
  SharedRowMoments SharedRows(const SlotView* q, Workspace& ws) const {
    SharedRowMoments shared;
    const Eigen::Index d = predictor_.dim();
    thread_local std::vector<double> buffer;
    buffer.resize(static_cast<size_t>(rows_ * (d + d * d)));
    for (int k = 0; k < rows_; ++k) {
      const LinearPredictor::Shared s = predictor_.SharedMoments(q[kScores + k], ws);
      if (!s.valid) continue;
      double* mean = buffer.data() + k * (d + d * d);
      double* covariance = mean + d;
      VectorMap(mean, d) = ConstVectorMap(s.mean, d);
      MatrixMap(covariance, d, d) =
          Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>(s.covariance, d, d,
                                                            Eigen::OuterStride<>(s.stride));
      shared[k] = {true, mean, covariance, d};
    }
    return shared;
  }

  /// The mean and covariance of factor n's scores under q.
  void ScoreMoments(size_t n, const SlotView* q, const SharedRowMoments& shared,
                    SmallVector* mean, SmallMatrix* covariance) const {
    const int k = classes_;
    if (rows_) {
      covariance->setZero();
      mean->setZero();  // a reference class scores 0
      for (int row = 0; row < rows_; ++row) {
        const LinearPredictor::Moments a =
            predictor_.Predict(n, q[kScores + row], shared[row]);
        (*mean)(row + reference_) = a.mean;
        (*covariance)(row + reference_, row + reference_) = a.variance;
      }
      return;
    }
    const SlotView& in = q[kScores];
    if (in.natural) {
      // η = (h, −P/2): Σ = P⁻¹, μ = Σ h.
      const double* eta = in.NaturalAt(n);
      const SmallMatrix precision = -2.0 * ConstMatrixMap(eta + k, k, k);
      const Eigen::LLT<SmallMatrix> factor(precision);
      *covariance = factor.solve(SmallMatrix::Identity(k, k));
      *mean = *covariance * ConstVectorMap(eta, k);
      return;
    }
    const double* t = in.At(n);
    *mean = ConstVectorMap(t, k);
    *covariance = ConstMatrixMap(t + k, k, k) - *mean * mean->transpose();
  }

  /// The expectations under a ~ N(mean, covariance); p and H only when `derivatives`.
  void Expect(const SmallVector& mean, const SmallMatrix& covariance, bool derivatives,
              SoftmaxExpectations* e) const {
    const int k = classes_, r = classes_ - 1;
    const SmallVector delta = mean.tail(r).array() - mean(0);
    SmallMatrix d(r, r);
    for (int j = 0; j < r; ++j)
      for (int i = 0; i < r; ++i)
        d(i, j) = covariance(i + 1, j + 1) - covariance(i + 1, 0) - covariance(0, j + 1) +
                  covariance(0, 0);
    // A square root S Sᵀ = D that a semi-definite D also has (observed scores have none).
    const Eigen::SelfAdjointEigenSolver<SmallMatrix> eigen(d);
    const SmallMatrix root =
        eigen.eigenvectors() * eigen.eigenvalues().cwiseMax(0.0).cwiseSqrt().asDiagonal();
    SmallVector u(k), p(k);
    double log_sum_exp = 0.0;
    if (derivatives) {
      e->p.setZero(k);
      e->h.setZero(k, k);
    }
    for (int i = 0; i < grid_.size(); ++i) {
      const double* z = grid_.Point(i);
      u(0) = 0.0;
      for (int j = 0; j < r; ++j) {
        double x = delta(j);
        for (int l = 0; l < r; ++l) x += root(j, l) * z[l];
        u(j + 1) = x;
      }
      const double top = u.maxCoeff();
      const double lse = top + std::log((u.array() - top).exp().sum());
      const double w = grid_.weights[i];
      log_sum_exp += w * lse;
      if (!derivatives) continue;
      p = (u.array() - lse).exp();
      e->p += w * p;
      e->h.noalias() -= w * p * p.transpose();
    }
    e->log_sum_exp = mean(0) + log_sum_exp;
    if (derivatives) e->h.diagonal() += e->p;
  }

  int rows_;
  int reference_ = 0;  ///< 1 when class 0 has no row (its score is 0), else 0
  LinearPredictor predictor_;
  int points_;
  int classes_ = 0;
  ProductRule grid_;
};

}  // namespace

const NodeType& SoftmaxNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Softmax";
    t.summary = "out ~ Categorical(softmax(a)): a class with Gaussian scores a = in, or "
                "aₖ = matrix·weights[k] (multinomial logistic regression)";
    t.formula = "U = E[log Σₖ exp aₖ] − Σₖ E[yₖ] E[aₖ] (CVI, Gauss–Hermite over the K − 1 "
                "score differences)";
    Parameter approximation =
        Optional(Constant("approximation", "cvi (natural-gradient steps)", ConstantKind::kName),
                 "cvi");
    approximation.choices = {"cvi"};
    t.parameters = {
        Variable("out", "the class y (data, or a hidden Categorical of K outcomes)",
                 {Family::kCategorical}),
        Optional(NotConjugate(
            Variable("in", "the K scores (an MvGaussian of dimension K)", {Family::kMvGaussian}))),
        Optional(NotConjugate(WholeArray(
            "weights",
            "the K rows wₖ, aₖ = matrix·wₖ, or K − 1 for classes 1..K−1 with a₀ = 0 (an array "
            "variable, all of it)",
            {Family::kGaussian, Family::kMvGaussian}))),
        PredictorMatrixParameter("score of each row (with weights)"),
        approximation,
        Optional(Constant("quadrature_points",
                          "Gauss–Hermite points in each of the K − 1 dimensions",
                          ConstantKind::kPositiveInteger),
                 "64 for K ≤ 3; for more classes the most with at most 2¹⁶ grid points")};
    t.exactly_one_of = {{"in", "weights"}};
    t.make = [](const NodeArguments& a) -> std::unique_ptr<Node> {
      if (a.given("in") && a.given("matrix"))
        a.Fail("matrix", "applies with 'weights' (the rows it multiplies), not with 'in'");
      const long points = a.given("quadrature_points") ? a.integer("quadrature_points") : 0;
      if (points > kMaxQuadraturePoints)
        a.Fail("quadrature_points", "expected an integer in [1, " +
                                        std::to_string(kMaxQuadraturePoints) + "], got " +
                                        std::to_string(points));
      const size_t rows = a.given("weights") ? a.count("weights") : 0;
      return std::make_unique<SoftmaxNode>(rows, LinearPredictor(a), static_cast<int>(points));
    };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "W", "family": "MvGaussian", "dim": 2, "shape": [2]},
    {"name": "X", "shape": [6], "dim": 2,
     "observed": [[1, -2.0], [1, -1.5], [1, 0.0], [1, 0.3], [1, 1.6], [1, 2.2]]},
    {"name": "y", "family": "Categorical", "dim": 3, "shape": [6], "observed": [0, 0, 1, 1, 2, 2]},
    {"name": "y_new", "family": "Categorical", "dim": 3}
  ],
  "factors": [
    {"node": "MvGaussian", "for": {"k": [0, 2]}, "out": "W[k]", "mean": [0, 0],
     "precision": [[1, 0], [0, 1]]},
    {"node": "Softmax", "for": {"n": [0, 6]}, "out": "y[n]", "weights": "W", "matrix": "X[n]"},
    {"node": "Softmax", "out": "y_new", "weights": "W", "matrix": [[1, 1.0]]}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
