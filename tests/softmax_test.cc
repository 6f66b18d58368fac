// The Softmax node (multinomial logistic regression) by natural-gradient (CVI) steps. The oracle
// is the evidence lower bound written out in this file: E[log Σₖ exp aₖ] by a dense trapezoid
// rule over the two score differences (not the node's Gauss–Hermite product), minimised over
// the Gaussians' means and Cholesky factors by Newton's method on finite differences.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
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

constexpr int kClasses = 3;

// ---- The brute-force oracle -----------------------------------------------------------------

/// E[log(e^a₀ + e^a₁ + e^a₂)] for a ~ N(μ, C): lse(a) = a₀ + lse(0, a₁ − a₀, a₂ − a₀), the
/// differences d ~ N(δ, L Lᵀ), and the trapezoid rule on z ∈ [−8, 8]², step 0.25, for
/// d = δ + L z. The integrand is analytic in a strip |Im z| ≳ 1 for the variances below (lse
/// has its poles at Im d = π), so the rule's error is near exp(−2π/0.25) ~ 1e-11 relative; the
/// truncation at |z| = 8 leaves e^−32.
double ExpectedLogSumExp(const Vector& mean, const Matrix& covariance) {
  const Vector delta = mean.tail(2).array() - mean(0);
  Matrix d(2, 2);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      d(i, j) = covariance(i + 1, j + 1) - covariance(i + 1, 0) - covariance(0, j + 1) +
                covariance(0, 0);
  const Matrix l = d.llt().matrixL();
  const double h = 0.25;
  const int half = 32;
  static const std::vector<double> weight = [&] {
    std::vector<double> w(2 * half + 1);
    for (int i = -half; i <= half; ++i)
      w[i + half] = std::exp(-0.5 * (i * h) * (i * h)) * h / std::sqrt(2 * M_PI);
    return w;
  }();
  double sum = 0.0;
  for (int i = -half; i <= half; ++i) {
    for (int j = -half; j <= half; ++j) {
      const double z1 = i * h, z2 = j * h;
      const double u1 = delta(0) + l(0, 0) * z1;
      const double u2 = delta(1) + l(1, 0) * z1 + l(1, 1) * z2;
      const double top = std::max(0.0, std::max(u1, u2));
      const double lse = top + std::log(std::exp(-top) + std::exp(u1 - top) + std::exp(u2 - top));
      sum += weight[i + half] * weight[j + half] * lse;
    }
  }
  return mean(0) + sum;
}

/// A Gaussian N(m, L Lᵀ) of dimension d from θ's entries at `at`: m, log diag L, then the
/// strictly lower part of L by columns (d + d(d + 1)/2 numbers).
struct Gaussian {
  Vector mean;
  Matrix root;
  Matrix covariance() const { return root * root.transpose(); }
};
Gaussian Unpack(const Vector& theta, int d, int at) {
  Gaussian g{theta.segment(at, d), Matrix::Zero(d, d)};
  at += d;
  for (int i = 0; i < d; ++i) g.root(i, i) = std::exp(theta(at++));
  for (int j = 0; j < d; ++j)
    for (int i = j + 1; i < d; ++i) g.root(i, j) = theta(at++);
  return g;
}
int PackedSize(int d) { return d + d * (d + 1) / 2; }

/// −E_q[log N(x | m₀, P₀⁻¹)] − H[q] for q = g.
double PriorEnergyMinusEntropy(const Gaussian& g, const Vector& m0, const Matrix& p0) {
  const int d = static_cast<int>(m0.size());
  const Vector diff = g.mean - m0;
  const double expected_log_prior =
      -0.5 * d * std::log(2 * M_PI) + p0.llt().matrixLLT().diagonal().array().log().sum() -
      0.5 * (diff.dot(p0 * diff) + (p0 * g.covariance()).trace());
  const double entropy =
      0.5 * d * (1.0 + std::log(2 * M_PI)) + g.root.diagonal().array().log().sum();
  return -expected_log_prior - entropy;
}

/// Multinomial logistic regression with 3 classes: rows wₖ ~ N(0, τ⁻¹ I) of dimension D,
/// yₙ ~ Categorical(softmax(rₙᵀw₀, rₙᵀw₁, rₙᵀw₂)); q = q(w₀) q(w₁) q(w₂) (mean field over the
/// rows, as the model states it). With `reference`, class 0 has no row and scores 0.
struct Regression {
  double prior_precision = 1.0;
  bool reference = false;
  int num_rows() const { return reference ? kClasses - 1 : kClasses; }
  std::vector<Vector> rows;
  std::vector<int> y;
  int dim() const { return static_cast<int>(rows[0].size()); }
};

double FreeEnergyOf(const Regression& p, const Vector& theta) {
  const int d = p.dim();
  std::vector<Gaussian> w;
  double f = 0.0;
  for (int k = 0; k < p.num_rows(); ++k) {
    w.push_back(Unpack(theta, d, k * PackedSize(d)));
    f += PriorEnergyMinusEntropy(w.back(), Vector::Zero(d),
                                 p.prior_precision * Matrix::Identity(d, d));
  }
  for (size_t n = 0; n < p.rows.size(); ++n) {
    Vector mean = Vector::Zero(kClasses);
    Matrix covariance = Matrix::Zero(kClasses, kClasses);
    for (int row = 0; row < p.num_rows(); ++row) {
      const int k = row + kClasses - p.num_rows();
      mean(k) = p.rows[n].dot(w[row].mean);
      covariance(k, k) = p.rows[n].dot(w[row].covariance() * p.rows[n]);
    }
    f += ExpectedLogSumExp(mean, covariance) - mean(p.y[n]);
  }
  return f;
}

Regression SmallRegression() {
  Regression p;
  const double x[6] = {-2.0, -1.5, 0.0, 0.3, 1.6, 2.2};
  for (double v : x) p.rows.push_back((Vector(2) << 1.0, v).finished());
  p.y = {0, 1, 1, 0, 2, 2};
  return p;
}

Json RegressionJson(const Regression& p) {
  const int d = p.dim();
  Json rows = Json::array();
  for (const Vector& r : p.rows) rows.push_back(std::vector<double>(r.data(), r.data() + d));
  const size_t n = p.y.size();
  Json model = {{"format", "vfe-model/1"}};
  model["variables"] = {
      {{"name", "W"}, {"family", "MvGaussian"}, {"dim", d}, {"shape", {p.num_rows()}}},
      {{"name", "X"}, {"shape", {n}}, {"dim", d}, {"observed", rows}},
      {{"name", "y"}, {"family", "Categorical"}, {"dim", kClasses}, {"observed", p.y}}};
  model["factors"] = {
      {{"node", "MvGaussian"},
       {"for", {{"k", {0, p.num_rows()}}}},
       {"out", "W[k]"},
       {"mean", std::vector<double>(d, 0.0)},
       {"precision", {{p.prior_precision, 0.0}, {0.0, p.prior_precision}}}},
      {{"node", "Softmax"},
       {"for", {{"n", {0, n}}}},
       {"out", "y[n]"},
       {"weights", "W"},
       {"matrix", "X[n]"}}};
  model["inference"] = {{"iterations", 1000}, {"tolerance", 1e-15}};
  return model;
}

void ExpectOptimalMeanFieldGaussians(const Regression& p) {
  const auto f = [&](const Vector& t) { return FreeEnergyOf(p, t); };
  const Vector theta =
      testing::MinimiseByNewton(f, Vector::Zero(p.num_rows() * PackedSize(p.dim())));
  Model model = ParseModel(RegressionJson(p).dump());
  const Result result = Infer(model);
  ASSERT_EQ(result.termination, Termination::kConverged) << result.message;
  EXPECT_EQ(result.free_energy_increases, 0);
  for (int k = 0; k < p.num_rows(); ++k) {
    const Gaussian best = Unpack(theta, p.dim(), k * PackedSize(p.dim()));
    const MvGaussian q = model.graph.Posterior<MvGaussian>(model.graph.Find("W")[k]);
    testing::ExpectMatrixNear(q.mean(), best.mean, 1e-6, "mean of row " + std::to_string(k));
    testing::ExpectMatrixNear(q.covariance(), best.covariance(), 1e-6,
                              "covariance of row " + std::to_string(k));
  }
  EXPECT_NEAR(result.free_energy.back(), f(theta), 1e-9);
  EXPECT_TRUE(result.warnings.empty()) << result.warnings.front();
}

TEST(Softmax, RegressionFixedPointIsTheOptimalMeanFieldGaussian) {
  ExpectOptimalMeanFieldGaussians(SmallRegression());
}

TEST(Softmax, ReferenceClassRegressionFixedPointIsTheOptimalMeanFieldGaussian) {
  Regression p = SmallRegression();
  p.reference = true;
  ExpectOptimalMeanFieldGaussians(p);
}

TEST(Softmax, GaussianScoresFixedPointIsTheOptimalGaussian) {
  // x ~ N(m₀, P₀⁻¹) in ℝ³, seven classes drawn from softmax(x): q(x) a full Gaussian.
  const Vector m0 = (Vector(3) << 0.2, -0.1, 0.4).finished();
  Matrix p0(3, 3);
  p0 << 1.0, 0.3, 0.0, 0.3, 1.5, -0.2, 0.0, -0.2, 0.8;
  const std::vector<int> y = {0, 0, 1, 2, 2, 2, 1};
  const auto f = [&](const Vector& theta) {
    const Gaussian g = Unpack(theta, 3, 0);
    double value = PriorEnergyMinusEntropy(g, m0, p0);
    const double lse = ExpectedLogSumExp(g.mean, g.covariance());
    for (int c : y) value += lse - g.mean(c);
    return value;
  };
  Vector start = Vector::Zero(PackedSize(3));
  const Vector theta = testing::MinimiseByNewton(f, start);
  const Gaussian best = Unpack(theta, 3, 0);

  Json model_json = {{"format", "vfe-model/1"}};
  model_json["variables"] = {
      {{"name", "x"}, {"family", "MvGaussian"}, {"dim", 3}},
      {{"name", "y"}, {"family", "Categorical"}, {"dim", 3}, {"shape", {y.size()}},
       {"observed", y}}};
  model_json["factors"] = {
      {{"node", "MvGaussian"},
       {"out", "x"},
       {"mean", {0.2, -0.1, 0.4}},
       {"precision", {{1.0, 0.3, 0.0}, {0.3, 1.5, -0.2}, {0.0, -0.2, 0.8}}}},
      {{"node", "Softmax"}, {"for", {{"n", {0, y.size()}}}}, {"out", "y[n]"}, {"in", "x"}}};
  model_json["inference"] = {{"iterations", 1000}, {"tolerance", 1e-15}};
  Model model = ParseModel(model_json.dump());
  const Result result = Infer(model);
  ASSERT_EQ(result.termination, Termination::kConverged) << result.message;
  const MvGaussian q = model.graph.Posterior<MvGaussian>(model.graph.Find("x"));
  testing::ExpectMatrixNear(q.mean(), best.mean, 1e-6, "mean");
  testing::ExpectMatrixNear(q.covariance(), best.covariance(), 1e-6, "covariance");
  EXPECT_NEAR(result.free_energy.back(), f(theta), 1e-9);
}

TEST(Softmax, EverySchedulerReachesTheSameFixedPoint) {
  const Json json = RegressionJson(SmallRegression());
  Model sequential = ParseModel(json.dump());
  const double reference = Infer(sequential).free_energy.back();
  std::vector<double> parallel_trace;
  for (int threads : {1, 2}) {
    Model model = ParseModel(json.dump());
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
  Model async = ParseModel(json.dump());
  async.inference.scheduler = SchedulerKind::kAsync;
  async.inference.threshold = 1e-12;
  const Result result = Infer(async);
  EXPECT_NEAR(result.free_energy.back(), reference, 1e-8) << result.message;
}

TEST(Softmax, HiddenClassGetsTheSoftmaxOfTheExpectedScores) {
  // Observed scores: q(y) = softmax(a) exactly.
  Model model = ParseModel(R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "dim": 3, "observed": [0.5, -1.0, 2.0]},
                  {"name": "y", "family": "Categorical", "dim": 3}],
    "factors": [{"node": "Softmax", "out": "y", "in": "x"}]})");
  Infer(model);
  const Vector p = model.graph.Posterior<Categorical>(model.graph.Find("y")).p();
  const double z = std::exp(0.5) + std::exp(-1.0) + std::exp(2.0);
  EXPECT_NEAR(p(0), std::exp(0.5) / z, 1e-14);
  EXPECT_NEAR(p(1), std::exp(-1.0) / z, 1e-14);
  EXPECT_NEAR(p(2), std::exp(2.0) / z, 1e-14);
}

TEST(Softmax, CppGraphIsTheJsonModelBitForBit) {
  const Regression p = SmallRegression();
  Matrix rows(p.rows.size(), 2);
  for (size_t n = 0; n < p.rows.size(); ++n) rows.row(n) = p.rows[n].transpose();
  FactorGraph g;
  const Variable w = g.AddVariableArray("W", Family::kMvGaussian, {kClasses}, 2);
  const Variable y = g.AddObservedCategorical("y", p.y, kClasses);
  for (int k = 0; k < kClasses; ++k)
    g.AddFactor("MvGaussian", {{"out", w[k]},
                               {"mean", Vector(Vector::Zero(2))},
                               {"precision", Matrix(Matrix::Identity(2, 2))}});
  g.AddFactor("Softmax", {{"out", y}, {"weights", w}, {"matrix", ParameterValue::Rows(rows)}});
  g.Finalize();
  SchedulerOptions options;
  options.max_iterations = 1000;
  options.tolerance = 1e-15;
  const Result cpp = SequentialScheduler(options).Run(g);
  Model json = ParseModel(RegressionJson(p).dump());
  EXPECT_EQ(cpp.free_energy, Infer(json).free_energy);
}

TEST(Softmax, IrisExampleConvergesAndItsFreeEnergyIsTheMonteCarloFreeEnergy) {
  // examples/softmax_classifier.json (Fisher's iris, setosa the reference class): F by
  // quadrature is the model's own free energy, so the graph's Monte Carlo estimate from
  // pointwise log-densities agrees within 4 standard errors; the sweeps never raise it; and
  // the expected scores classify the flowers (a multinomial logit separates setosa and
  // misplaces a few of the overlapping versicolor and virginica: 95% is a loose floor).
  Model model = LoadModel(std::string(VFE_SOURCE_DIR) + "/examples/softmax_classifier.json");
  const Result result = Infer(model);
  ASSERT_EQ(result.termination, Termination::kConverged) << result.message;
  EXPECT_EQ(result.free_energy_increases, 0);
  EXPECT_TRUE(result.warnings.empty()) << result.warnings.front();
  const FactorGraph::MonteCarloEstimate estimate = model.graph.MonteCarloFreeEnergy(20000, 3);
  EXPECT_NEAR(result.free_energy.back(), estimate.free_energy, 4 * estimate.standard_error);
  EXPECT_LT(estimate.standard_error, 0.05);
  const Vector w1 = model.graph.Posterior<MvGaussian>(model.graph.Find("W")[0]).mean();
  const Vector w2 = model.graph.Posterior<MvGaussian>(model.graph.Find("W")[1]).mean();
  std::ifstream csv(std::string(VFE_SOURCE_DIR) + "/examples/data/iris.csv");
  std::string line;
  std::getline(csv, line);  // the header
  int rows = 0, correct = 0;
  while (std::getline(csv, line)) {
    std::stringstream cells(line);
    Vector x(5);
    std::string cell;
    for (int j = 0; j < 5; ++j) {
      std::getline(cells, cell, ',');
      x(j) = std::stod(cell);
    }
    std::getline(cells, cell, ',');
    const Vector scores = (Vector(3) << 0.0, x.dot(w1), x.dot(w2)).finished();
    Eigen::Index best = 0;
    scores.maxCoeff(&best);
    correct += best == std::stoi(cell);
    ++rows;
  }
  EXPECT_EQ(rows, 150);
  EXPECT_GE(correct, 143) << correct << " of 150";
}

TEST(Softmax, BadArgumentsAreRefusedWithTheirPointer) {
  const Json good = RegressionJson(SmallRegression());
  auto with = [&](const std::string& key, const Json& value) {
    Json model = good;
    if (value.is_null()) {
      model["factors"][1].erase(key);
    } else {
      model["factors"][1][key] = value;
    }
    return LoadError(model.dump());
  };
  EXPECT_THAT(with("weights", nullptr), HasSubstr("/factors/1"));
  EXPECT_THAT(with("in", "W[0]"), HasSubstr("/factors/1"));
  EXPECT_THAT(with("quadrature_points", 500), HasSubstr("[1, 128], got 500"));
  EXPECT_THAT(with("approximation", "jaakkola_jordan"), HasSubstr("/factors/1/approximation"));
  Json wrong_classes = good;
  wrong_classes["variables"][2]["dim"] = 5;  // 3 rows fit 3 classes, or 4 with a reference
  EXPECT_THAT(LoadError(wrong_classes.dump()), HasSubstr("'weights' has 3 rows"));
  Json in_with_matrix = R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "family": "MvGaussian", "dim": 3},
                  {"name": "y", "family": "Categorical", "dim": 3, "observed": 1}],
    "factors": [{"node": "MvGaussian", "out": "x", "mean": [0, 0, 0],
                 "precision": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
                {"node": "Softmax", "out": "y", "in": "x", "matrix": [[1, 0, 0]]}]})"_json;
  EXPECT_THAT(LoadError(in_with_matrix.dump()), HasSubstr("/factors/1/matrix"));
  Json wrong_dim = in_with_matrix;
  wrong_dim["factors"][1].erase("matrix");
  wrong_dim["variables"][1]["dim"] = 4;
  EXPECT_THAT(LoadError(wrong_dim.dump()), HasSubstr("'in' expects dimension 4"));
  Json huge_grid = in_with_matrix;
  huge_grid["factors"][1].erase("matrix");
  huge_grid["variables"][0]["dim"] = 12;
  huge_grid["variables"][1]["dim"] = 12;
  huge_grid["factors"][1]["quadrature_points"] = 64;  // 64¹¹ grid points
  huge_grid["factors"][0]["mean"] = std::vector<double>(12, 0.0);
  huge_grid["factors"][0]["precision"] = Json::array();
  for (int i = 0; i < 12; ++i) {
    std::vector<double> row(12, 0.0);
    row[i] = 1.0;
    huge_grid["factors"][0]["precision"].push_back(row);
  }
  EXPECT_THAT(LoadError(huge_grid.dump()), HasSubstr("give fewer points"));
  // Without the option the default holds the grid to 2¹⁶ points: the model loads.
  huge_grid["factors"][1].erase("quadrature_points");
  EXPECT_NO_THROW(ParseModel(huge_grid.dump()));
}

}  // namespace
}  // namespace vfe
