// The Logistic and Probit nodes and the natural-gradient (CVI) steps of the engine. The oracle is the
// evidence lower bound written out in this file: its expectations by a dense trapezoid rule
// over the predictor (not the Gauss–Hermite rule under test), minimised over the Gaussian's
// mean and Cholesky factor by Newton's method on finite differences.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/testing/expect.h"
#include "tests/testing/newton.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using testing::LoadError;
using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

// ---- The brute-force oracle -----------------------------------------------------------------

/// A binary-regression model: w ~ N(prior_mean, prior_precision⁻¹), y_n ~ Bernoulli(F(r_nᵀw)),
/// F = σ for the node "Logistic", Φ for "Probit".
struct LogisticProblem {
  std::string node = "Logistic";
  Vector prior_mean;
  Matrix prior_precision;
  std::vector<Vector> rows;
  std::vector<double> y;
  std::vector<double> offsets;  ///< added to the predictor (Poisson's "offset"); empty: none
  int dim() const { return static_cast<int>(prior_mean.size()); }
};

/// log Φ(a) from erfc; where erfc underflows, its leading asymptotic term (the trapezoid sum
/// below weighs those points by less than e^−70).
double LogPhi(double a) {
  const double p = 0.5 * std::erfc(-a / std::sqrt(2.0));
  return p > 0 ? std::log(p) : -0.5 * a * a - std::log(-a) - 0.5 * std::log(2 * M_PI);
}

/// log p(y | a) for the link.
double LogLikelihood(const std::string& node, double y, double a) {
  if (node == "Probit") return y * LogPhi(a) + (1 - y) * LogPhi(-a);
  const double softplus = a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a));
  return y * a - softplus;
}

/// E[log p(y | a)] for a ~ N(mean, variance): for the Poisson log link the closed form
/// y·mean − exp(mean + variance/2) − log y!; otherwise the trapezoid rule on z ∈ [−12, 12], step
/// 0.005 (spectrally accurate for this smooth, fast-decaying integrand).
double ExpectedLogLikelihood(const std::string& node, double y, double mean, double variance) {
  if (node == "Poisson") return y * mean - std::exp(mean + 0.5 * variance) - std::lgamma(y + 1);
  const double h = 0.005, sd = std::sqrt(variance);
  double sum = 0.0;
  for (int i = -2400; i <= 2400; ++i) {
    const double z = i * h;
    sum += std::exp(-0.5 * z * z) * LogLikelihood(node, y, mean + sd * z);
  }
  return sum * h / std::sqrt(2.0 * M_PI);
}

/// q(w) = N(m, L Lᵀ) from θ = (m, log diag L, the strictly lower part of L by columns).
void Unpack(const Vector& theta, int d, Vector* m, Matrix* l) {
  *m = theta.head(d);
  *l = Matrix::Zero(d, d);
  int at = d;
  for (int i = 0; i < d; ++i) (*l)(i, i) = std::exp(theta(at++));
  for (int j = 0; j < d; ++j)
    for (int i = j + 1; i < d; ++i) (*l)(i, j) = theta(at++);
}

/// F(q) = −E_q[log p(y, w)] − H[q], written out.
double FreeEnergyOf(const LogisticProblem& p, const Vector& theta) {
  const int d = p.dim();
  Vector m;
  Matrix l;
  Unpack(theta, d, &m, &l);
  const Matrix sigma = l * l.transpose();
  double expected_log_joint = 0.0;
  for (size_t n = 0; n < p.rows.size(); ++n)
    expected_log_joint += ExpectedLogLikelihood(p.node, p.y[n],
                                                p.rows[n].dot(m) + (p.offsets.empty() ? 0.0 : p.offsets[n]),
                                                p.rows[n].dot(sigma * p.rows[n]));
  const Vector diff = m - p.prior_mean;
  expected_log_joint += -0.5 * d * std::log(2 * M_PI) +
                        p.prior_precision.llt().matrixLLT().diagonal().array().log().sum() -
                        0.5 * (diff.dot(p.prior_precision * diff) +
                               (p.prior_precision * sigma).trace());
  const double entropy = 0.5 * d * (1.0 + std::log(2 * M_PI)) + std::log(l.diagonal().prod());
  return -expected_log_joint - entropy;
}

/// The θ minimising FreeEnergyOf (testing::MinimiseByNewton), from q = the prior.
Vector OptimalGaussian(const LogisticProblem& p) {
  const int d = p.dim();
  Vector theta = Vector::Zero(d + d * (d + 1) / 2);
  theta.head(d) = p.prior_mean;
  return testing::MinimiseByNewton([&](const Vector& t) { return FreeEnergyOf(p, t); }, theta);
}

/// The problem as a vfe model; `approximation` as the node takes it.
Json ModelJson(const LogisticProblem& p, const std::string& approximation = "cvi") {
  const int d = p.dim();
  Json rows = Json::array();
  for (const Vector& r : p.rows) rows.push_back(std::vector<double>(r.data(), r.data() + d));
  Json precision = Json::array();
  for (int i = 0; i < d; ++i) {
    Json row = Json::array();
    for (int j = 0; j < d; ++j) row.push_back(p.prior_precision(i, j));
    precision.push_back(row);
  }
  const size_t n = p.y.size();
  Json model = {{"format", "vfe-model/1"}};
  model["variables"] = {{{"name", "w"}, {"family", "MvGaussian"}, {"dim", d}},
                        {{"name", "X"}, {"shape", {n}}, {"dim", d}, {"observed", rows}},
                        {{"name", "y"}, {"observed", p.y}}};
  model["factors"] = {
      {{"node", "MvGaussian"},
       {"out", "w"},
       {"mean", std::vector<double>(p.prior_mean.data(), p.prior_mean.data() + d)},
       {"precision", precision}},
      {{"node", p.node},
       {"for", {{"n", {0, n}}}},
       {"out", "y[n]"},
       {"in", "w"},
       {"matrix", "X[n]"}}};
  if (p.node != "Poisson") model["factors"][1]["approximation"] = approximation;
  if (!p.offsets.empty()) {
    model["variables"].push_back({{"name", "offset"}, {"observed", p.offsets}});
    model["factors"][1]["offset"] = "offset[n]";
  }
  model["inference"] = {{"iterations", 500}, {"tolerance", 1e-15}};
  return model;
}

LogisticProblem OneDimensional() {
  LogisticProblem p;
  p.prior_mean = Vector::Constant(1, 0.3);
  p.prior_precision = Matrix::Constant(1, 1, 0.5);
  for (double c : {1.0, -0.5, 2.0, 0.7}) p.rows.push_back(Vector::Constant(1, c));
  p.y = {1, 0, 1, 1};
  return p;
}

LogisticProblem TwoDimensional() {
  LogisticProblem p;
  p.prior_mean = Vector::Zero(2);
  p.prior_precision = Matrix::Identity(2, 2);
  p.prior_precision(0, 1) = p.prior_precision(1, 0) = 0.3;
  const double x[6] = {-2.0, -1.0, -0.5, 0.5, 1.0, 2.0};
  for (double v : x) p.rows.push_back((Vector(2) << 1.0, v).finished());
  p.y = {0, 0, 1, 0, 1, 1};
  return p;
}

/// Runs the model and checks q(w) and F against the optimum of the written-out bound.
void ExpectOptimalGaussian(const LogisticProblem& p) {
  const Vector theta = OptimalGaussian(p);
  Vector m;
  Matrix l;
  Unpack(theta, p.dim(), &m, &l);
  const double best = FreeEnergyOf(p, theta);
  Model model = ParseModel(ModelJson(p).dump());
  const Result result = Infer(model);
  ASSERT_EQ(result.termination, Termination::kConverged) << result.message;
  const MvGaussian q = model.graph.Posterior<MvGaussian>(model.graph.Find("w"));
  testing::ExpectMatrixNear(q.mean(), m, 1e-6, "mean");
  testing::ExpectMatrixNear(q.covariance(), l * l.transpose(), 1e-6, "covariance");
  EXPECT_NEAR(result.free_energy.back(), best, 1e-9);
  EXPECT_TRUE(result.warnings.empty()) << result.warnings.front();
}

TEST(Logistic, OneDimensionalFixedPointIsTheOptimalGaussian) {
  ExpectOptimalGaussian(OneDimensional());
}

TEST(Logistic, TwoDimensionalFixedPointIsTheOptimalGaussian) {
  ExpectOptimalGaussian(TwoDimensional());
}

TEST(Probit, OneAndTwoDimensionalFixedPointsAreTheOptimalGaussians) {
  for (LogisticProblem p : {OneDimensional(), TwoDimensional()}) {
    p.node = "Probit";
    ExpectOptimalGaussian(p);
  }
}

TEST(Probit, HiddenOutcomesGetTheExpectedLogOddsAndTailsStayFinite) {
  // x observed: q(y = 1) = Φ(x) exactly; far in the tails log Φ comes from Mills' series.
  for (double x : {0.8, -8.0, -40.0, 40.0}) {
    Model model = ParseModel(R"({"format": "vfe-model/1",
      "variables": [{"name": "x", "observed": )" + std::to_string(x) + R"(},
                    {"name": "y", "family": "Bernoulli"}],
      "factors": [{"node": "Probit", "out": "y", "in": "x"}]})");
    const Result result = Infer(model);
    ASSERT_NE(result.termination, Termination::kNumericalFailure) << result.message;
    const double p = model.graph.Posterior<Bernoulli>(model.graph.Find("y")).p();
    const double expected = 0.5 * std::erfc(-x / std::sqrt(2.0));
    if (x > -30) {
      EXPECT_NEAR(p, expected, 1e-14 * std::max(1.0, std::abs(x))) << x;
    } else {
      // Φ(−40) ≈ 3.7e-350 is below the smallest double: q(y = 1) underflows to (almost) 0.
      EXPECT_LT(p, 1e-300) << x;
    }
    EXPECT_TRUE(std::isfinite(result.free_energy.back())) << x;
  }
}

LogisticProblem CountRegression() {
  LogisticProblem p = TwoDimensional();
  p.node = "Poisson";
  p.y = {0, 1, 2, 1, 4, 9};
  p.offsets = {0.0, 0.0, 0.5, 0.0, 0.5, 1.0};
  return p;
}

TEST(Poisson, LogLinkFixedPointIsTheExactOptimalGaussian) {
  // The bound is closed-form here (E[eᵃ] = exp(aₘ + aᵥ/2)): the oracle has no quadrature.
  ExpectOptimalGaussian(CountRegression());
  LogisticProblem no_offset = CountRegression();
  no_offset.offsets.clear();
  ExpectOptimalGaussian(no_offset);
}

TEST(Poisson, LogLinkArgumentsAreCheckedAgainstTheRate) {
  const Json good = ModelJson(CountRegression());
  Json both = good;
  both["factors"][1]["rate"] = 2.0;
  EXPECT_THAT(LoadError(both.dump()), HasSubstr("/factors/1"));
  EXPECT_THAT(LoadError(both.dump()), HasSubstr("'rate'"));
  Json with_rate = good;
  with_rate["factors"][1].erase("in");
  with_rate["factors"][1]["rate"] = 2.0;
  EXPECT_THAT(LoadError(with_rate.dump()),
              HasSubstr("/factors/1/matrix: applies to the log link only ('in'), not with 'rate'"));
  Json negative = good;
  negative["variables"][2]["observed"][1] = -1;
  EXPECT_THAT(LoadError(negative.dump()), HasSubstr("counts (integers >= 0), got -1"));
  Json short_offsets = good;
  short_offsets["variables"][3]["observed"] = {0.0, 1.0};
  EXPECT_THAT(LoadError(short_offsets.dump()), HasSubstr("/factors/1"));
}

TEST(Logistic, ScalarGaussianInWithoutMatrixIsTheOneDimensionalModel) {
  // x ~ N(0.3, 1/0.5), y ~ Bernoulli(σ(x)) four times, against the brute-force optimum.
  LogisticProblem p = OneDimensional();
  for (Vector& r : p.rows) r(0) = 1.0;
  const Vector theta = OptimalGaussian(p);
  Model model = ParseModel(R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "family": "Gaussian"}, {"name": "y", "observed": [1, 0, 1, 1]}],
    "factors": [{"node": "Gaussian", "out": "x", "mean": 0.3, "precision": 0.5},
                {"node": "Logistic", "for": {"n": [0, 4]}, "out": "y[n]", "in": "x"}],
    "inference": {"iterations": 500, "tolerance": 1e-15}})");
  const Result result = Infer(model);
  const Gaussian q = model.graph.Posterior<Gaussian>(model.graph.Find("x"));
  EXPECT_NEAR(q.mean(), theta(0), 1e-6);
  EXPECT_NEAR(q.variance(), std::exp(2 * theta(1)), 1e-6);
  EXPECT_NEAR(result.free_energy.back(), FreeEnergyOf(p, theta), 1e-9);
}

TEST(Logistic, JaakkolaJordanBoundsTheFreeEnergyFromAbove) {
  for (const LogisticProblem& p : {OneDimensional(), TwoDimensional()}) {
    Model cvi = ParseModel(ModelJson(p).dump());
    Model jj = ParseModel(ModelJson(p, "jaakkola_jordan").dump());
    const double f_cvi = Infer(cvi).free_energy.back();
    const Result r_jj = Infer(jj);
    ASSERT_EQ(r_jj.termination, Termination::kConverged) << r_jj.message;
    EXPECT_GT(r_jj.free_energy.back(), f_cvi);
    // And the JJ posterior, a conjugate bound's, is a different Gaussian whose true F (the
    // written-out one) lies between the two.
    const MvGaussian q = jj.graph.Posterior<MvGaussian>(jj.graph.Find("w"));
    const Matrix l = q.covariance().llt().matrixL();
    Vector theta(p.dim() + p.dim() * (p.dim() + 1) / 2);
    theta.head(p.dim()) = q.mean();
    int at = p.dim();
    for (int i = 0; i < p.dim(); ++i) theta(at++) = std::log(l(i, i));
    for (int j = 0; j < p.dim(); ++j)
      for (int i = j + 1; i < p.dim(); ++i) theta(at++) = l(i, j);
    const double true_f = FreeEnergyOf(p, theta);
    EXPECT_GE(true_f, f_cvi - 1e-9);
    EXPECT_LE(true_f, r_jj.free_energy.back() + 1e-9);
  }
}

/// The parallel scheduler on 1 and 2 threads (the same bits) and the async scheduler reach
/// the sequential fixed point.
void ExpectEverySchedulerReachesTheSequentialFixedPoint(const LogisticProblem& p) {
  Model sequential = ParseModel(ModelJson(p).dump());
  const double reference = Infer(sequential).free_energy.back();
  std::vector<double> parallel_trace;
  for (int threads : {1, 2}) {
    Model model = ParseModel(ModelJson(p).dump());
    model.inference.scheduler = SchedulerKind::kParallel;
    model.inference.threads = threads;
    const Result result = Infer(model);
    EXPECT_NEAR(result.free_energy.back(), reference, 1e-10) << threads << " threads";
    if (parallel_trace.empty()) {
      parallel_trace = result.free_energy;
    } else {
      EXPECT_EQ(result.free_energy, parallel_trace) << "threads change the bits";
    }
  }
  Model async = ParseModel(ModelJson(p).dump());
  async.inference.scheduler = SchedulerKind::kAsync;
  async.inference.threshold = 1e-12;
  const Result result = Infer(async);
  EXPECT_NEAR(result.free_energy.back(), reference, 1e-8) << result.message;
}

TEST(Logistic, EveryLinkReachesTheSameFixedPointUnderEveryScheduler) {
  LogisticProblem probit = TwoDimensional();
  probit.node = "Probit";
  for (const LogisticProblem& p : {TwoDimensional(), probit, CountRegression()}) {
    SCOPED_TRACE(p.node);
    ExpectEverySchedulerReachesTheSequentialFixedPoint(p);
  }
}

TEST(Logistic, FullStepsThatWouldRaiseFAreShortened) {
  // Separable data and a vague prior: a full step from the prior overshoots (the curvature at
  // the start is far from the curvature at the optimum). Every sweep must still lower F.
  LogisticProblem p;
  p.prior_mean = Vector::Zero(1);
  p.prior_precision = Matrix::Constant(1, 1, 0.01);
  for (int n = 0; n < 20; ++n) {
    p.rows.push_back(Vector::Constant(1, n % 2 ? 1.0 : -1.0));
    p.y.push_back(n % 2 ? 1.0 : 0.0);
  }
  // The predictor's variance stays large here (q(w) is wide): more points keep the
  // expectations to 1e-10 (the rule's error falls like exp(−2π√(K/v)) for variance v).
  Json json = ModelJson(p);
  json["factors"][1]["quadrature_points"] = 96;
  Model model = ParseModel(json.dump());
  const Result result = Infer(model);
  EXPECT_EQ(result.free_energy_increases, 0);
  for (size_t i = 1; i < result.free_energy.size(); ++i)
    EXPECT_LE(result.free_energy[i], result.free_energy[i - 1] + 1e-12) << "sweep " << i + 1;
  // The optimum of the written-out bound, as before.
  const Vector theta = OptimalGaussian(p);
  EXPECT_NEAR(result.free_energy.back(), FreeEnergyOf(p, theta), 1e-8);
}

TEST(Logistic, CppGraphIsTheJsonModelBitForBit) {
  const LogisticProblem p = TwoDimensional();
  Matrix rows(p.rows.size(), 2);
  for (size_t n = 0; n < p.rows.size(); ++n) rows.row(n) = p.rows[n].transpose();
  FactorGraph g;
  const Variable w = g.AddVariable("w", Family::kMvGaussian, 2);
  const Variable y = g.AddObserved("y", p.y);
  g.AddFactor("MvGaussian", {{"out", w}, {"mean", p.prior_mean}, {"precision", p.prior_precision}});
  g.AddFactor("Logistic", {{"out", y}, {"in", w}, {"matrix", ParameterValue::Rows(rows)}});
  g.Finalize();
  SchedulerOptions options;
  options.max_iterations = 500;
  options.tolerance = 1e-15;
  const Result cpp = SequentialScheduler(options).Run(g);
  Model json = ParseModel(ModelJson(p).dump());
  EXPECT_EQ(cpp.free_energy, Infer(json).free_energy);
}

TEST(Logistic, HiddenOutcomesGetTheirLogOdds) {
  // y hidden: q(y = 1) = σ(E[a]) at the fixed point, with a = x observed here.
  Model model = ParseModel(R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "observed": 0.8}, {"name": "y", "family": "Bernoulli"}],
    "factors": [{"node": "Logistic", "out": "y", "in": "x"}]})");
  Infer(model);
  EXPECT_NEAR(model.graph.Posterior<Bernoulli>(model.graph.Find("y")).p(),
              1.0 / (1.0 + std::exp(-0.8)), 1e-14);
}

TEST(Logistic, BadArgumentsAreRefusedWithTheirPointer) {
  const Json good = ModelJson(TwoDimensional());
  auto with = [&](const std::string& key, const Json& value) {
    Json model = good;
    // Without the design rows X is unused data, an error of its own.
    if (key == "matrix") model["variables"].erase(1);
    if (value.is_null()) {
      model["factors"][1].erase(key);
    } else {
      model["factors"][1][key] = value;
    }
    return LoadError(model.dump());
  };
  EXPECT_THAT(with("matrix", nullptr),
              HasSubstr("'in' is variable 'w', MvGaussian of dimension 2: give 'matrix'"));
  EXPECT_THAT(with("matrix", {{1.0, 2.0, 3.0}}), HasSubstr("/factors/1"));
  EXPECT_THAT(with("matrix", {{1.0, 2.0, 3.0}}), HasSubstr("the matrix has 3 columns"));
  EXPECT_THAT(with("quadrature_points", 0), HasSubstr("/factors/1/quadrature_points"));
  EXPECT_THAT(with("quadrature_points", 500), HasSubstr("[1, 128], got 500"));
  EXPECT_THAT(with("approximation", "laplace"), HasSubstr("/factors/1/approximation"));
  Json probit = good;
  probit["factors"][1]["node"] = "Probit";
  probit["factors"][1]["approximation"] = "jaakkola_jordan";
  EXPECT_THAT(LoadError(probit.dump()), HasSubstr("/factors/1/approximation"));
  Json bad_outcome = good;
  bad_outcome["variables"][2]["observed"][0] = 2;
  EXPECT_THAT(LoadError(bad_outcome.dump()),
              HasSubstr("/variables/2: observed variable 'y' at y[0]: expected 0 or 1, got 2"));
}

}  // namespace
}  // namespace vfe
