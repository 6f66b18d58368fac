// The Delta node's "cvi" approximation: natural-gradient steps with Gauss–Hermite expectations.
// Oracles: the evidence lower bound written out in this file — in closed form for exp, by a
// dense trapezoid rule (not the node's Gauss–Hermite product) for tanh — minimised over the
// Gaussian's mean and Cholesky factor by Newton's method on finite differences; and the graph's
// Monte Carlo estimate of F, which uses pointwise log-densities only.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Eigen/LU>
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

// ---- One dimension, in closed form --------------------------------------------------------

/// x ~ N(0, 1), y = 3 observed through N(y | exp(x), 1/10): the async reproducer of
/// delta_test.cc, here by CVI.
const char* kExpModel = R"({"format": "vfe-model/1",
  "variables": [{"name": "x", "family": "Gaussian"}, {"name": "y", "observed": 3.0}],
  "factors": [{"node": "Gaussian", "out": "x", "mean": 0.0, "precision": 1.0},
              {"node": "Delta", "out": "y", "in": "x", "function": "exp", "precision": 10.0,
               "approximation": "cvi"}],
  "inference": {"tolerance": 1e-15, "iterations": 500}})";

/// F(q) for q(x) = N(m, v), θ = (m, log v), in closed form: with E[eˣ] = e^(m + v/2) and
/// E[e²ˣ] = e^(2m + 2v),
///   F = ½(m² + v) + ½ log 2π  +  ½ log 2π − ½ log 10 + 5 (9 − 6 E[eˣ] + E[e²ˣ])  −  ½ log(2πe v).
double ExpModelFreeEnergy(const Vector& theta) {
  const double m = theta(0), v = std::exp(theta(1));
  const double log_2pi = std::log(2 * M_PI);
  return 0.5 * (m * m + v) + 0.5 * log_2pi + 0.5 * log_2pi - 0.5 * std::log(10.0) +
         5.0 * (9.0 - 6.0 * std::exp(m + 0.5 * v) + std::exp(2 * m + 2 * v)) -
         0.5 * (log_2pi + 1.0 + std::log(v));
}

TEST(DeltaCvi, OneDimensionalFixedPointIsTheExactOptimalGaussian) {
  const Vector theta = testing::MinimiseByNewton(ExpModelFreeEnergy, Vector::Zero(2));
  Model model = ParseModel(kExpModel);
  const Result result = Infer(model);
  ASSERT_EQ(result.termination, Termination::kConverged) << result.message;
  EXPECT_EQ(result.free_energy_increases, 0);
  const Gaussian q = model.graph.Posterior<Gaussian>(model.graph.Find("x"));
  EXPECT_NEAR(q.mean(), theta(0), 1e-6);
  EXPECT_NEAR(q.variance(), std::exp(theta(1)), 1e-6);
  EXPECT_NEAR(result.free_energy.back(), ExpModelFreeEnergy(theta), 1e-9);
  // The linearised fixed point (2.6077) is not a bound on anything; the CVI F is the
  // optimum over Gaussians of the true bound, and lies below the bound at any other q.
  EXPECT_LT(result.free_energy.back(), 2.6077);
}

TEST(DeltaCvi, EverySchedulerReachesTheSequentialFixedPoint) {
  Model sequential = ParseModel(kExpModel);
  const double reference = Infer(sequential).free_energy.back();
  for (SchedulerKind kind : {SchedulerKind::kParallel, SchedulerKind::kAsync}) {
    for (int threads : {1, 2}) {
      Model model = ParseModel(kExpModel);
      model.inference.scheduler = kind;
      model.inference.threads = threads;
      model.inference.threshold = 1e-12;
      const Result result = Infer(model);
      EXPECT_NEAR(result.free_energy.back(), reference, 1e-8)
          << SchedulerName(kind) << " on " << threads << " threads: " << result.message;
    }
  }
}

TEST(DeltaCvi, CppGraphIsTheJsonModelBitForBit) {
  Model json = ParseModel(kExpModel);
  const Result from_json = Infer(json);
  FactorGraph g;
  const Variable x = g.AddVariable("x", Family::kGaussian);
  const Variable y = g.AddObserved("y", 3.0);
  g.AddGaussian(x, 0.0, 1.0);
  DeltaOptions options;
  options.approximation = DeltaApproximation::kCvi;
  g.AddFactor(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("exp")), options),
              {y, x, 10.0});
  g.Finalize();
  SchedulerOptions run;
  run.max_iterations = 500;
  run.tolerance = 1e-15;
  EXPECT_EQ(SequentialScheduler(run).Run(g).free_energy, from_json.free_energy);
}

// ---- Two dimensions, by a trapezoid rule ----------------------------------------------------

/// x ~ N(m₀, P₀⁻¹) in ℝ², four observations y_i of f(x) = tanh(A x + b) with precision W.
struct TanhProblem {
  Vector m0 = (Vector(2) << 0.2, -0.3).finished();
  Matrix p0 = (Matrix(2, 2) << 2.0, 0.5, 0.5, 1.0).finished();
  Matrix a = (Matrix(2, 2) << 1.5, -0.4, 0.3, 0.8).finished();
  Vector b = (Vector(2) << 0.2, -0.1).finished();
  Matrix w = (Matrix(2, 2) << 20.0, 5.0, 5.0, 10.0).finished();
  std::vector<Vector> y = {(Vector(2) << 0.6, -0.2).finished(),
                           (Vector(2) << 0.4, -0.5).finished(),
                           (Vector(2) << 0.7, -0.3).finished(),
                           (Vector(2) << 0.5, -0.1).finished()};
};

/// F(q) for q = N(m, L Lᵀ), θ = (m, log diag L, L₂₁): the prior's energy and the entropy in
/// closed form, and E[f] and E[fᵀ W f] by the trapezoid rule in z (x = m + L z) on
/// [−8, 8]², step 0.2 — tanh's poles lie at |Im z| ≥ (π/2)/‖A L‖ ≫ 1 here, so the rule's error is
/// far below 1e-12; truncation leaves e^−32.
double TanhFreeEnergy(const TanhProblem& p, const Vector& theta) {
  const Vector m = theta.head(2);
  Matrix l = Matrix::Zero(2, 2);
  l(0, 0) = std::exp(theta(2));
  l(1, 1) = std::exp(theta(3));
  l(1, 0) = theta(4);
  const Matrix sigma = l * l.transpose();
  const double h = 0.2;
  const int half = 40;
  Vector mean_f = Vector::Zero(2);
  double mean_quadratic = 0.0;
  for (int i = -half; i <= half; ++i) {
    for (int j = -half; j <= half; ++j) {
      const Vector z = (Vector(2) << i * h, j * h).finished();
      const double weight = std::exp(-0.5 * z.squaredNorm()) * h * h / (2 * M_PI);
      const Vector f = (p.a * (m + l * z) + p.b).array().tanh().matrix();
      mean_f += weight * f;
      mean_quadratic += weight * f.dot(p.w * f);
    }
  }
  const double log_2pi = std::log(2 * M_PI);
  const double log_det_w = std::log(p.w.determinant());
  double energy = 0.0;
  for (const Vector& y : p.y)
    energy += log_2pi - 0.5 * log_det_w +
              0.5 * (y.dot(p.w * y) - 2 * y.dot(p.w * mean_f) + mean_quadratic);
  const Vector diff = m - p.m0;
  energy += log_2pi - 0.5 * std::log(p.p0.determinant()) +
            0.5 * (diff.dot(p.p0 * diff) + (p.p0 * sigma).trace());
  const double entropy = log_2pi + 1.0 + std::log(l(0, 0) * l(1, 1));
  return energy - entropy;
}

Json TanhJson(const TanhProblem& p) {
  auto rows = [](const Matrix& x) {
    Json out = Json::array();
    for (int i = 0; i < x.rows(); ++i) out.push_back({x(i, 0), x(i, 1)});
    return out;
  };
  Json observed = Json::array();
  for (const Vector& y : p.y) observed.push_back({y(0), y(1)});
  Json model = {{"format", "vfe-model/1"}};
  model["variables"] = {
      {{"name", "x"}, {"family", "MvGaussian"}, {"dim", 2}},
      {{"name", "y"}, {"shape", {p.y.size()}}, {"dim", 2}, {"observed", observed}}};
  model["factors"] = {
      {{"node", "MvGaussian"}, {"out", "x"}, {"mean", {p.m0(0), p.m0(1)}},
       {"precision", rows(p.p0)}},
      {{"node", "Delta"},
       {"for", {{"i", {0, p.y.size()}}}},
       {"out", "y[i]"},
       {"in", "x"},
       {"function", "tanh"},
       {"matrix", rows(p.a)},
       {"offset", {p.b(0), p.b(1)}},
       {"precision", rows(p.w)},
       {"approximation", "cvi"}}};
  model["inference"] = {{"tolerance", 1e-15}, {"iterations", 500}};
  return model;
}

TEST(DeltaCvi, TwoDimensionalFixedPointIsTheOptimalGaussian) {
  const TanhProblem p;
  const auto f = [&](const Vector& theta) { return TanhFreeEnergy(p, theta); };
  // From the prior: q = N(m₀, P₀⁻¹).
  const Matrix prior_root = Matrix(p.p0.inverse()).llt().matrixL();
  Vector start(5);
  start << p.m0(0), p.m0(1), std::log(prior_root(0, 0)), std::log(prior_root(1, 1)),
      prior_root(1, 0);
  const Vector theta = testing::MinimiseByNewton(f, start);
  Matrix l = Matrix::Zero(2, 2);
  l(0, 0) = std::exp(theta(2));
  l(1, 1) = std::exp(theta(3));
  l(1, 0) = theta(4);
  Model model = ParseModel(TanhJson(p).dump());
  const Result result = Infer(model);
  ASSERT_EQ(result.termination, Termination::kConverged) << result.message;
  EXPECT_EQ(result.free_energy_increases, 0);
  const MvGaussian q = model.graph.Posterior<MvGaussian>(model.graph.Find("x"));
  testing::ExpectMatrixNear(q.mean(), theta.head(2), 1e-6, "mean");
  testing::ExpectMatrixNear(q.covariance(), l * l.transpose(), 1e-6, "covariance");
  EXPECT_NEAR(result.free_energy.back(), f(theta), 1e-9);
}

TEST(DeltaCvi, PendulumExampleFreeEnergyIsTheMonteCarloFreeEnergy) {
  // examples/pendulum_cvi.json: F by quadrature is the model's own free energy, so the
  // graph's Monte Carlo estimate from pointwise log-densities must agree within 4 standard
  // errors; and the sweeps never raise it.
  Model model = LoadModel(std::string(VFE_SOURCE_DIR) + "/examples/pendulum_cvi.json");
  const Result result = Infer(model);
  ASSERT_EQ(result.termination, Termination::kConverged) << result.message;
  EXPECT_EQ(result.free_energy_increases, 0);
  EXPECT_TRUE(result.warnings.empty()) << result.warnings.front();
  const FactorGraph::MonteCarloEstimate estimate = model.graph.MonteCarloFreeEnergy(20000, 7);
  EXPECT_NEAR(result.free_energy.back(), estimate.free_energy, 4 * estimate.standard_error);
  EXPECT_LT(estimate.standard_error, 0.05);  // the check has teeth
}

TEST(DeltaCvi, BadOptionsAreRefusedWithTheirPointer) {
  Json model = Json::parse(kExpModel);
  model["factors"][1]["approximation"] = "linearise";
  model["factors"][1]["quadrature_points"] = 16;
  EXPECT_THAT(LoadError(model.dump()),
              HasSubstr("/factors/1/quadrature_points: only the cvi approximation takes"));
  model["factors"][1]["approximation"] = "cvi";
  model["factors"][1]["quadrature_points"] = 500;
  EXPECT_THAT(LoadError(model.dump()), HasSubstr("[1, 128], got 500"));
  DeltaOptions options;
  options.quadrature_points = -1;
  EXPECT_THROW(options.Validate(), OptionsError);
}

}  // namespace
}  // namespace vfe
