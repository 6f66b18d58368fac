// Logistic(out | in) and Probit(out | in): a binary outcome whose log-odds (or probit) are a
// Gaussian variable or a linear predictor of one (Bayesian logistic and probit regression), by
// conjugate-computation variational inference, or for the logistic link by the
// Jaakkola–Jordan bound.

#include <algorithm>
#include <cmath>
#include <vector>

#include "nodes/declare.h"
#include "nodes/linear_predictor.h"
#include "nodes/node_checks.h"
#include "vfe/core/format.h"
#include "vfe/core/quadrature.h"
#include "vfe/core/special.h"
#include "vfe/distributions/point_values.h"

namespace vfe {

const NodeType& LogisticNodeType();
const NodeType& ProbitNodeType();

namespace {

enum Slot { kOut = 0, kIn = 1 };

/// log Φ(a), Φ the standard normal cdf: erfc where it is representable, and below a = −37
/// the asymptotic series of Mills' ratio, Φ(a) = φ(a)/(−a)·(1 − a⁻² + 3a⁻⁴ − 15a⁻⁶ + 105a⁻⁸),
/// whose next term is below 1e-13 there.
inline double LogNormalCdf(double a) {
  if (a > 0) return std::log1p(-0.5 * std::erfc(a / std::sqrt(2.0)));
  if (a > -37) return std::log(0.5 * std::erfc(-a / std::sqrt(2.0)));
  const double r = 1.0 / (a * a);
  return -0.5 * a * a - std::log(-a) - 0.5 * kLog2Pi +
         std::log1p(r * (-1.0 + r * (3.0 + r * (-15.0 + 105.0 * r))));
}
/// φ(a)/Φ(a), the inverse Mills ratio (the same two regimes).
inline double InverseMills(double a) {
  if (a > -37)
    return std::exp(-0.5 * a * a - 0.5 * kLog2Pi) / (0.5 * std::erfc(-a / std::sqrt(2.0)));
  const double r = 1.0 / (a * a);
  return -a / (1.0 + r * (-1.0 + r * (3.0 + r * (-15.0 + 105.0 * r))));
}

/// The link between the predictor a and P(y = 1) = F(a): σ (logistic) or Φ (probit).
enum class Link { kLogistic, kProbit };

/// g(a) = y log F(a) + (1 − y) log F(−a), the log-likelihood of y ∈ [0, 1] (E[y] for a hidden
/// outcome: g is linear in y). Apart from its derivatives (LinkSlopes): the message pass needs
/// only those, and the logistic g costs an exp and a log1p more.
inline double LinkValue(Link link, double y, double a) {
  // log σ(a) = a − log(1 + eᵃ), log σ(−a) = −log(1 + eᵃ).
  if (link == Link::kLogistic) return y * a - Softplus(a);
  return y * LogNormalCdf(a) + (1.0 - y) * LogNormalCdf(-a);
}

/// g'(a) and g''(a).
struct LinkSlopes {
  double first, second;
};
inline LinkSlopes Slopes(Link link, double y, double a) {
  if (link == Link::kLogistic) {
    const double s = Sigmoid(a);
    return {y - s, -s * (1.0 - s)};
  }
  // d/da log Φ(a) = λ(a), d²/da² log Φ(a) = −λ(a)(a + λ(a)), λ the inverse Mills ratio.
  const double up = InverseMills(a), down = InverseMills(-a);
  return {y * up - (1.0 - y) * down, -y * up * (a + up) - (1.0 - y) * down * (down - a)};
}

/// Bernoulli(y | F(a)) with the predictor a = rₙᵀ·w (rₙ the factor's row of the design, or
/// a = c·x for a scalar Gaussian x) and F = σ (Logistic) or Φ (Probit):
///   log f = y log F(a) + (1 − y) log F(−a) =: g(a); for the logistic link
///   g = y a − log(1 + eᵃ), g' = y − σ(a), g'' = −σ(a)(1 − σ(a)); for the probit link
///   g' = y λ(a) − (1 − y) λ(−a), g'' = −y λ(a)(a + λ(a)) − (1 − y) λ(−a)(λ(−a) − a), λ = φ/Φ.
/// Under q(w) = N(m, Σ) the predictor is N(aₘ, aᵥ) with aₘ = rᵀm and aᵥ = rᵀΣr, so every
/// expectation is one-dimensional.
///
/// CVI (Khan & Lin, AISTATS 2017): the message to w is the gradient of E_q[g] with respect to
/// q's mean parameters (m, E[wwᵀ]). By Bonnet's and Price's theorems ∇ₘE[g] = r E[g'] and
/// ∇_Σ E[g] = ½ r rᵀ E[g''], so in the natural parameters (h, −P/2) of a Gaussian
///   λ₁ = r (E[g'] − E[g''] aₘ),   λ₂ = ½ E[g''] r rᵀ,
/// a positive-definite precision contribution since g is concave for both links. The message
/// depends on q(w) itself: the engine takes it as a natural-gradient step and backtracks where F
/// would rise (Node::StepsOnFreeEnergy). U = −E_q[g(a)], and the expectations of g, g' and g''
/// are Gauss–Hermite sums over aₘ + √aᵥ zᵢ (core/quadrature.h).
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
/// To out (a hidden Bernoulli): the log-odds E[g | y = 1] − E[g | y = 0]: aₘ for the logistic
/// link (either approximation), E[log Φ(a)] − E[log Φ(−a)] by quadrature for the probit link.
class BinaryRegressionNode final : public Node {
 public:
  enum class Approximation { kCvi, kJaakkolaJordan };

  BinaryRegressionNode(Link link, Approximation approximation, LinearPredictor predictor,
                       int points)
      : link_(link), approximation_(approximation), predictor_(std::move(predictor)) {
    // Probit's message to a hidden outcome takes expectations under either approximation.
    if (approximation == Approximation::kCvi || link == Link::kProbit)
      rule_ = StandardNormalRule(points);
  }

  const char* type() const override { return Type().name.c_str(); }
  std::vector<std::string> slot_names() const override { return Type().SlotNames(); }
  Family ObservedFamily(int slot, const PointMass& value) const override {
    if (slot == kOut) return Family::kBernoulli;
    return value.is_scalar() ? Family::kGaussian : Family::kMvGaussian;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    RequireDeclaredFamilies(Type(), slots, where);
    predictor_.Bind(slots[kIn], num_factors, where);
  }

  bool StepsOnFreeEnergy(int slot) const override {
    return slot == kIn && approximation_ == Approximation::kCvi;
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace& ws) const override {
    const LinearPredictor::Shared shared = predictor_.SharedMoments(q[kIn], ws);
    if (slot == kOut) {
      for (size_t n = begin; n < end; ++n) {
        const LinearPredictor::Moments a = predictor_.Predict(n, q[kIn], shared);
        if (link_ == Link::kLogistic) {
          eta[0] += a.mean;
          continue;
        }
        const double sd = std::sqrt(a.variance);
        for (int i = 0; i < rule_.size(); ++i) {
          const double x = a.mean + sd * rule_.nodes[i];
          eta[0] += rule_.weights[i] * (LogNormalCdf(x) - LogNormalCdf(-x));
        }
      }
      return;
    }
    for (size_t n = begin; n < end; ++n) {
      const double y = q[kOut].At(n)[0];
      const LinearPredictor::Moments a = predictor_.Predict(n, q[kIn], shared);
      if (approximation_ == Approximation::kJaakkolaJordan) {
        predictor_.AddQuadratic(
            n, y - 0.5, -JaakkolaJordanLambda(std::sqrt(a.mean * a.mean + a.variance)), eta);
        continue;
      }
      double mean_slope = 0.0, mean_curvature = 0.0;
      const double sd = std::sqrt(a.variance);
      for (int i = 0; i < rule_.size(); ++i) {
        const LinkSlopes g = Slopes(link_, y, a.mean + sd * rule_.nodes[i]);
        mean_slope += rule_.weights[i] * g.first;
        mean_curvature += rule_.weights[i] * g.second;
      }
      predictor_.AddMessage(n, a, mean_slope, mean_curvature, eta);
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q,
                       Workspace& ws) const override {
    const LinearPredictor::Shared shared = predictor_.SharedMoments(q[kIn], ws);
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const double y = q[kOut].At(n)[0];
      const LinearPredictor::Moments a = predictor_.Predict(n, q[kIn], shared);
      if (approximation_ == Approximation::kCvi) {
        const double sd = std::sqrt(a.variance);
        for (int i = 0; i < rule_.size(); ++i)
          energy -= rule_.weights[i] * LinkValue(link_, y, a.mean + sd * rule_.nodes[i]);
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
    const double a = predictor_.At(n, q[kIn].At(n));
    return LinkValue(link_, y, a);
  }

 private:
  const NodeType& Type() const {
    return link_ == Link::kLogistic ? LogisticNodeType() : ProbitNodeType();
  }

  static double JaakkolaJordanLambda(double xi) {
    if (xi < 1e-4) return 0.125 - xi * xi / 192.0;  // tanh(ξ/2)/(4ξ) by its series
    return std::tanh(0.5 * xi) / (4.0 * xi);
  }

  Link link_;
  Approximation approximation_;
  LinearPredictor predictor_;
  QuadratureRule rule_;
};

/// The parameters both links take; `approximations` are those of the link.
std::vector<Parameter> BinaryRegressionParameters(const std::string& predictor,
                                                  std::vector<std::string> approximations) {
  using namespace declare;
  const Parameter matrix = PredictorMatrixParameter(predictor);
  std::string help = "cvi (natural-gradient steps)";
  if (approximations.size() > 1) help += " or jaakkola_jordan (a conjugate bound)";
  Parameter approximation =
      Optional(Constant("approximation", help, ConstantKind::kName), "cvi");
  approximation.choices = std::move(approximations);
  return {Variable("out", "the outcome y (data: 0 or 1)", {Family::kBernoulli}),
          NotConjugate(Variable("in", "the " + predictor + ", or the K weights the row multiplies",
                                {Family::kGaussian, Family::kMvGaussian})),
          matrix, approximation,
          Optional(Constant("quadrature_points", "Gauss–Hermite points per expectation (cvi)",
                            ConstantKind::kPositiveInteger),
                   "64")};
}

std::unique_ptr<Node> MakeBinaryRegression(Link link, const NodeArguments& a) {
  const auto approximation = a.name("approximation") == "jaakkola_jordan"
                                 ? BinaryRegressionNode::Approximation::kJaakkolaJordan
                                 : BinaryRegressionNode::Approximation::kCvi;
  const long points = a.integer("quadrature_points");
  if (points > kMaxQuadraturePoints)
    a.Fail("quadrature_points", "expected an integer in [1, " +
                                    std::to_string(kMaxQuadraturePoints) + "], got " +
                                    std::to_string(points));
  return std::make_unique<BinaryRegressionNode>(link, approximation, LinearPredictor(a),
                                                static_cast<int>(points));
}

/// The example of both links: a regression on one feature and a prediction.
std::string BinaryRegressionExample(const std::string& node) {
  return R"json({
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
    {"node": ")json" + node + R"json(", "for": {"n": [0, 6]}, "out": "y[n]", "in": "w", "matrix": "X[n]"},
    {"node": ")json" + node + R"json(", "out": "y_new", "in": "w", "matrix": [[1, 1.5]]}
  ]
})json";
}

/// P(y = 1) under the posterior predictive, E[σ(a)] for a = m + s z, z ~ N(0, 1): no closed
/// form (MacKay's σ(m/√(1 + πs²/8)) is off by up to 2e-2), and a fixed Gauss–Hermite rule
/// loses accuracy fast as s grows (64 points: 7e-11 at s = 2, 1e-7 at s = 3). The trapezoid
/// rule in z with step h is exponentially accurate for a function analytic in a strip: σ(m +
/// s z) has its poles at Im z = ±π/s, so the error is about exp(−2π(π/s)/h) (Trefethen &
/// Weideman, SIAM Review 56, 2014); h = min(½, ½/s) makes it below 1e-17 for every s, and the
/// range |z| ≤ 10 leaves out a weight of 2e-23.
void LogisticPredictiveMeans(const double* mean, const double* variance, size_t count,
                             double* out) {
  for (size_t k = 0; k < count; ++k) {
    const double sd = std::sqrt(variance[k]);
    const double h = std::min(0.5, 0.5 / sd);
    const long n = static_cast<long>(std::ceil(10.0 / h));
    double p = 0.0;
    for (long i = -n; i <= n; ++i) {
      const double z = static_cast<double>(i) * h;
      p += std::exp(-0.5 * z * z) * Sigmoid(mean[k] + sd * z);
    }
    out[k] = p * h / std::sqrt(2.0 * M_PI);
  }
}

/// P(y = 1) = E[Φ(a)] = Φ(m/√(1 + v)) in closed form: Φ(a) = P(z ≤ a) for z ~ N(0, 1)
/// independent of a, and z − a ~ N(−m, 1 + v).
void ProbitPredictiveMeans(const double* mean, const double* variance, size_t count,
                           double* out) {
  for (size_t k = 0; k < count; ++k)
    out[k] = 0.5 * std::erfc(-mean[k] / std::sqrt(2.0 * (1.0 + variance[k])));
}

}  // namespace

const NodeType& LogisticNodeType() {
  static const NodeType type = [] {
    NodeType t;
    t.name = "Logistic";
    t.summary = "out ~ Bernoulli(σ(matrix·in)): binary data with Gaussian log-odds (logistic "
                "regression)";
    t.formula = "U = E[log(1 + exp a)] − E[y] E[a], a = r·in (CVI, Gauss–Hermite in a); "
                "Jaakkola–Jordan: U = −(E[y] − ½) E[a] − log σ(ξ) + ξ/2, ξ² = E[a²]";
    t.parameters = BinaryRegressionParameters("log-odds", {"cvi", "jaakkola_jordan"});
    t.make = [](const NodeArguments& a) { return MakeBinaryRegression(Link::kLogistic, a); };
    t.example = BinaryRegressionExample("Logistic");
    t.predictive_means = LogisticPredictiveMeans;
    t.predictive_formula = "P(out = 1) = E_q[σ(a)] (trapezoid rule in a, error < 1e-16)";
    return t;
  }();
  return type;
}

const NodeType& ProbitNodeType() {
  static const NodeType type = [] {
    NodeType t;
    t.name = "Probit";
    t.summary = "out ~ Bernoulli(Φ(matrix·in)): binary data with a Gaussian probit (probit "
                "regression)";
    t.formula = "U = −E[y log Φ(a) + (1 − y) log Φ(−a)], a = r·in (CVI, Gauss–Hermite in a)";
    t.parameters = BinaryRegressionParameters("probit", {"cvi"});
    t.make = [](const NodeArguments& a) { return MakeBinaryRegression(Link::kProbit, a); };
    t.example = BinaryRegressionExample("Probit");
    t.predictive_means = ProbitPredictiveMeans;
    t.predictive_formula = "P(out = 1) = E_q[Φ(a)] = Φ(E[a]/√(1 + Var[a]))";
    return t;
  }();
  return type;
}

}  // namespace vfe
