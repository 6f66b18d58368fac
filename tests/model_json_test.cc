// Models from JSON: the same graph as the C++ API (bitwise equal free energies), loops with
// offsets and nesting, CSV data, starting posteriors, the result format, the BayesPy
// reference cases, and malformed models with the exact error each must give.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "bench/models.h"
#include "tests/testing/expect.h"
#include "tests/testing/reference.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using nlohmann::json;
using testing::LoadError;
using testing::MatrixNear;
using testing::Norm;
using testing::Scale;

std::string ExamplePath(const std::string& name) {
  return std::string(VFE_SOURCE_DIR) + "/examples/" + name;
}

Result RunSweeps(FactorGraph& graph, int sweeps, std::vector<Variable> order = {}) {
  SchedulerOptions options;
  options.max_iterations = sweeps;
  options.tolerance = 0.0;
  options.order = std::move(order);
  return SequentialScheduler(options).Run(graph);
}

/// `value` as printf prints it with `digits` decimals, as the examples print their results.
std::string Fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

/// Writes `text` to a file in the test's temporary folder and returns its path.
std::string TempFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

// ---- The same model as the C++ API ----------------------------------------------------------

TEST(ModelJson, GaussianExampleMatchesTheCppModelBitForBit) {
  Model model = LoadModel(ExamplePath("gaussian_mean_precision.json"));
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);

  FactorGraph graph;
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddGaussian(mu, 0.0, 0.01);
  graph.AddGamma(tau, 1e-3, 1e-3);
  graph.AddGaussian(graph.AddObserved("y", SplitMixNormals(1, 1000, 3.0, 2.0)), mu, tau);
  graph.Finalize();
  SchedulerOptions options;
  options.order = {mu, tau};
  const Result from_cpp = SequentialScheduler(options).Run(graph);

  ASSERT_TRUE(from_json.converged());
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);
  EXPECT_EQ(model.graph.Posterior<Gaussian>(model.graph.Find("mu")).mean(),
            graph.Posterior<Gaussian>(mu).mean());
}

TEST(ModelJson, RegressionExampleMatchesTheCppModelBitForBit) {
  Model model = LoadModel(ExamplePath("linear_regression.json"));
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);

  const int n = 2000, d = 5;
  const std::vector<double> weights = {1.5, -2.0, 0.5, 0.0, 3.0};
  const std::vector<double> x = SplitMixNormals(7, n * d, 0.0, 1.0);
  const std::vector<double> noise = SplitMixNormals(8, n, 0.0, 0.5);
  Matrix design(n, d);
  std::vector<double> targets(n);
  for (int i = 0; i < n; ++i) {
    targets[i] = noise[i];
    for (int j = 0; j < d; ++j) {
      design(i, j) = x[i * d + j];
      targets[i] += design(i, j) * weights[j];
    }
  }
  FactorGraph graph;
  const Variable w = graph.AddVariable("w", Family::kMvGaussian, d);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddMvGaussian(w, Vector(Vector::Zero(d)), Matrix(0.01 * Matrix::Identity(d, d)));
  graph.AddGamma(tau, 1e-3, 1e-3);
  graph.AddLinearRegression(graph.AddObserved("y", targets), w, design, tau);
  graph.Finalize();
  const Result from_cpp = SequentialScheduler(SchedulerOptions()).Run(graph);

  ASSERT_TRUE(from_json.converged());
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);
}

TEST(ModelJson, LoopOffsetsBuildAChainLikeSlices) {
  const std::string text = R"({
    "format": "vfe-model/1",
    "variables": [
      {"name": "x", "family": "Gaussian", "shape": [6]},
      {"name": "tau", "family": "Gamma"},
      {"name": "y", "shape": [6], "observed": [0.1, 0.5, 0.9, 1.7, 2.2, 2.4]}
    ],
    "factors": [
      {"node": "Gaussian", "out": "x[0]", "mean": 0, "precision": 1},
      {"node": "Gaussian", "for": {"t": [1, 6]}, "out": "x[t]", "mean": "x[t-1]", "precision": "tau"},
      {"node": "Gamma", "out": "tau", "shape": 2, "rate": 1},
      {"node": "Gaussian", "for": {"t": [0, 6]}, "out": "y[t]", "mean": "x[t]", "precision": 4}
    ]
  })";
  Model model = ParseModel(text);
  EXPECT_EQ(model.graph.num_plates(), 4u);  // each loop is one plate: its indices are runs
  const Result from_json = RunSweeps(model.graph, 8);

  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {6});
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  const Variable y = graph.AddObserved("y", std::vector<double>{0.1, 0.5, 0.9, 1.7, 2.2, 2.4});
  graph.AddGaussian(x[0], 0.0, 1.0);
  graph.AddGaussian(x.Slice(1, 6), x.Slice(0, 5), tau);
  graph.AddGamma(tau, 2.0, 1.0);
  graph.AddGaussian(y, x, 4.0);
  graph.Finalize();
  const Result from_cpp = RunSweeps(graph, 8);
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);
  EXPECT_EQ(from_json.free_energy_increases, 0);
}

TEST(ModelJson, NestedLoopsOverMatrixShapesGroupRunsAndAgreeInAnyOrder) {
  // x[i][j] ~ N(mu[i], tau): rows share mu[i]. Writing the loops as (i, j) gives one plate per
  // row; as (j, i) every factor is its own plate. Both are the same model.
  auto text = [](const std::string& loops) {
    return R"({"format": "vfe-model/1",
      "variables": [
        {"name": "mu", "family": "Gaussian", "shape": [3]},
        {"name": "tau", "family": "Gamma"},
        {"name": "x", "shape": [3, 4], "observed": [[1, 2, 3, 4], [2, 3, 4, 5], [0, 1, 0, 1]]}
      ],
      "factors": [
        {"node": "Gaussian", "for": {"i": [0, 3]}, "out": "mu[i]", "mean": 0, "precision": 0.1},
        {"node": "Gamma", "out": "tau", "shape": 1, "rate": 1},
        {"node": "Gaussian", "for": )" +
           loops + R"(, "out": "x[i][j]", "mean": "mu[i]", "precision": "tau"}
      ]})";
  };
  Model by_rows = ParseModel(text(R"({"i": [0, 3], "j": [0, 4]})"));
  Model by_columns = ParseModel(text(R"({"j": [0, 4], "i": [0, 3]})"));
  EXPECT_EQ(by_rows.graph.num_plates(), 1u + 1u + 3u);
  EXPECT_EQ(by_columns.graph.num_plates(), 1u + 1u + 12u);
  const Result rows = RunSweeps(by_rows.graph, 20);
  const Result columns = RunSweeps(by_columns.graph, 20);
  EXPECT_NEAR(rows.free_energy.back(), columns.free_energy.back(),
              1e-12 * std::abs(rows.free_energy.back()));

  // Closed form for the means given E[τ]: q(mu_i) = N((Σ_j x_ij E[τ]) / (0.1 + 4 E[τ]), ...).
  const double tau = by_rows.graph.Posterior<Gamma>(by_rows.graph.Find("tau")).mean();
  const double sums[3] = {10, 14, 2};
  for (int i = 0; i < 3; ++i) {
    const Gaussian q = by_rows.graph.Posterior<Gaussian>(by_rows.graph.Find("mu")[i]);
    EXPECT_NEAR(q.mean(), sums[i] * tau / (0.1 + 4 * tau), 1e-12);
  }
}

TEST(ModelJson, InitialPosteriorsAcceptOneValueOrOnePerElement) {
  const std::string text = R"({
    "format": "vfe-model/1",
    "variables": [
      {"name": "x", "family": "Gaussian", "shape": [3]},
      {"name": "tau", "family": "Gamma"},
      {"name": "m", "family": "MvGaussian", "dim": 2},
      {"name": "W", "family": "Wishart", "dim": 2},
      {"name": "y", "shape": [3], "observed": [1, 2, 3]},
      {"name": "v", "dim": 2, "observed": [0.5, -0.5]}
    ],
    "factors": [
      {"node": "Gaussian", "for": {"i": [0, 3]}, "out": "x[i]", "mean": 0, "precision": 1},
      {"node": "Gaussian", "for": {"i": [0, 3]}, "out": "y[i]", "mean": "x[i]", "precision": "tau"},
      {"node": "Gamma", "out": "tau", "shape": 2, "rate": 3},
      {"node": "MvGaussian", "out": "m", "mean": [0, 0], "precision": [[1, 0], [0, 1]]},
      {"node": "Wishart", "out": "W", "dof": 3, "scale": [[1, 0], [0, 1]]},
      {"node": "MvGaussian", "out": "v", "mean": "m", "precision": "W"}
    ],
    "inference": {"initial": {
      "x": {"mean": [1, 2, 3], "variance": 0.5},
      "tau": {"family": "Gamma", "shape": 4, "rate": 2},
      "m": {"mean": [1, -1], "covariance": [[2, 0], [0, 4]]},
      "W": {"dof": 5, "scale": [[0.5, 0.1], [0.1, 0.5]]}
    }}
  })";
  Model model = ParseModel(text);
  const FactorGraph& g = model.graph;
  for (int i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(g.Posterior<Gaussian>(g.Find("x")[i]).mean(), i + 1.0);
    EXPECT_DOUBLE_EQ(g.Posterior<Gaussian>(g.Find("x")[i]).variance(), 0.5);
  }
  EXPECT_DOUBLE_EQ(g.Posterior<Gamma>(g.Find("tau")).shape(), 4.0);
  EXPECT_DOUBLE_EQ(g.Posterior<Gamma>(g.Find("tau")).rate(), 2.0);
  EXPECT_NEAR(g.Posterior<MvGaussian>(g.Find("m")).covariance()(1, 1), 4.0, 1e-14);
  EXPECT_NEAR(g.Posterior<MvGaussian>(g.Find("m")).mean()[1], -1.0, 1e-14);
  EXPECT_DOUBLE_EQ(g.Posterior<Wishart>(g.Find("W")).dof(), 5.0);
  EXPECT_NEAR(g.Posterior<Wishart>(g.Find("W")).scale()(0, 1), 0.1, 1e-14);
}

TEST(ModelJson, MillionRowCsvLoadsAndGivesTheSamePosteriorAsTheCppModel) {
  const std::vector<double> y = SplitMixNormals(3, 1000000, -1.0, 0.5);
  const std::string csv = ::testing::TempDir() + "vfe_million.csv";
  {
    std::ofstream out(csv);
    out << "value\n";
    char buffer[32];
    for (double v : y) {
      std::snprintf(buffer, sizeof buffer, "%.17g\n", v);
      out << buffer;
    }
  }
  const std::string text = R"({"format": "vfe-model/1",
    "variables": [{"name": "mu", "family": "Gaussian"}, {"name": "tau", "family": "Gamma"},
                  {"name": "y", "observed": {"csv": ")" + csv + R"(", "column": "value"}}],
    "factors": [{"node": "Gaussian", "out": "mu", "mean": 0, "precision": 1e-2},
                {"node": "Gamma", "out": "tau", "shape": 1e-3, "rate": 1e-3},
                {"node": "Gaussian", "out": "y", "mean": "mu", "precision": "tau"}]})";
  Model model = ParseModel(text);
  std::remove(csv.c_str());
  EXPECT_EQ(model.shapes[model.graph.Find("y").id()], std::vector<size_t>{1000000});
  const Result from_json = RunSweeps(model.graph, 5);

  FactorGraph graph;
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddGaussian(mu, 0.0, 1e-2);
  graph.AddGamma(tau, 1e-3, 1e-3);
  graph.AddGaussian(graph.AddObserved("y", y), mu, tau);
  graph.Finalize();
  const Result from_cpp = RunSweeps(graph, 5);
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);  // %.17g round-trips exactly
  EXPECT_NEAR(model.graph.Posterior<Gaussian>(model.graph.Find("mu")).mean(), -1.0, 1e-2);
}

TEST(ModelJson, MalformedCsvNamesTheFileAndLine) {
  const std::string csv = ::testing::TempDir() + "vfe_bad.csv";
  const std::string model = R"({"format": "vfe-model/1",
      "variables": [{"name": "mu", "family": "Gaussian"},
                    {"name": "y", "observed": {"csv": ")" + csv + R"("}}],
      "factors": [{"node": "Gaussian", "out": "y", "mean": "mu", "precision": 1}]})";
  auto error_for = [&](const std::string& content) {
    std::ofstream(csv) << content;
    const std::string error = LoadError(model);
    std::remove(csv.c_str());
    return error;
  };
  EXPECT_EQ(error_for("y\n1.5\n2\nx\n"),
            "/variables/1/observed/csv: CSV '" + csv + "' line 4: expected numbers, found 'x'");
  EXPECT_EQ(error_for("1,2\n3\n"),
            "/variables/1/observed/csv: CSV '" + csv + "' line 2: expected 2 columns, found 1");
  EXPECT_EQ(error_for("y\n"), "/variables/1/observed/csv: CSV '" + csv + "' has no data rows");
  std::ofstream(csv) << "y\n1\n\n2\n";
  EXPECT_NO_THROW(ParseModel(model));  // blank lines are skipped
  std::remove(csv.c_str());
}

TEST(ModelJson, ResultJsonHoldsTheTraceAndEveryPosterior) {
  const std::string text = R"({"format": "vfe-model/1",
    "variables": [{"name": "mu", "family": "Gaussian", "shape": [2]},
                  {"name": "tau", "family": "Gamma"},
                  {"name": "y", "observed": [[1.0, 1.5], [3.0, 2.5]], "shape": [2, 2]}],
    "factors": [{"node": "Gaussian", "for": {"i": [0, 2]}, "out": "mu[i]", "mean": 0, "precision": 1},
                {"node": "Gamma", "out": "tau", "shape": 2, "rate": 2},
                {"node": "Gaussian", "for": {"i": [0, 2], "j": [0, 2]}, "out": "y[i][j]",
                 "mean": "mu[i]", "precision": "tau"}],
    "inference": {"iterations": 50, "tolerance": 1e-12}})";
  Model model = ParseModel(text);
  const Result result = SequentialScheduler(model.inference.options).Run(model.graph);
  const json out = json::parse(ResultJson(model, result));
  EXPECT_EQ(out["format"], "vfe-result/1");
  EXPECT_EQ(out["converged"], result.converged());
  EXPECT_EQ(out["iterations"], result.iterations);
  EXPECT_EQ(out["free_energy"].get<std::vector<double>>(), result.free_energy);
  ASSERT_EQ(out["posteriors"]["mu"].size(), 2u);
  const Gaussian q1 = model.graph.Posterior<Gaussian>(model.graph.Find("mu")[1]);
  EXPECT_EQ(out["posteriors"]["mu"][1]["family"], "Gaussian");
  EXPECT_EQ(out["posteriors"]["mu"][1]["mean"].get<double>(), q1.mean());
  EXPECT_EQ(out["posteriors"]["mu"][1]["variance"].get<double>(), q1.variance());
  EXPECT_EQ(out["posteriors"]["tau"]["family"], "Gamma");
  EXPECT_FALSE(out["posteriors"].contains("y"));
  EXPECT_TRUE(out["timing_ms"].contains("build"));
  EXPECT_TRUE(out["timing_ms"].contains("inference"));
}

TEST(ModelJson, CoinExampleMatchesTheCppModelBitForBit) {
  Model model = LoadModel(ExamplePath("coin.json"));
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);
  FactorGraph graph;
  const Variable p = graph.AddVariable("p", Family::kBeta);
  graph.AddBeta(p, 2.0, 2.0);
  graph.AddBernoulli(graph.AddObserved("flips", std::vector<double>{1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1}),
                     p);
  graph.Finalize();
  const Result from_cpp = SequentialScheduler(SchedulerOptions()).Run(graph);
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);
  EXPECT_EQ(model.graph.Posterior<Beta>(model.graph.Find("p")).a(), 11.0);
}

TEST(ModelJson, DiscreteModelsLoadWithCategoricalDataAndInitialPosteriors) {
  const std::string text = R"({"format": "vfe-model/1",
    "variables": [{"name": "w", "family": "Dirichlet", "dim": 3},
                  {"name": "z", "family": "Categorical", "dim": 3, "shape": [2]},
                  {"name": "c", "family": "Categorical", "dim": 3, "observed": [0, 2, 2, 1]}],
    "factors": [{"node": "Dirichlet", "out": "w", "alpha": [1, 1, 1]},
                {"node": "Categorical", "for": {"i": [0, 4]}, "out": "c[i]", "p": "w"},
                {"node": "Categorical", "for": {"i": [0, 2]}, "out": "z[i]", "p": [0.2, 0.3, 0.5]}],
    "inference": {"initial": {"z": {"p": [[1, 0, 0], [0, 1, 0]]}}}})";
  Model model = ParseModel(text);
  EXPECT_NEAR(model.graph.Posterior<Categorical>(model.graph.Find("z")[1]).p()[1], 1.0, 1e-15);
  const Result result = SequentialScheduler(model.inference.options).Run(model.graph);
  EXPECT_TRUE(result.converged());
  const Vector alpha = model.graph.Posterior<Dirichlet>(model.graph.Find("w")).alpha();
  EXPECT_NEAR(alpha[2], 3.0, 1e-12);
  const json out = json::parse(ResultJson(model, result));
  EXPECT_EQ(out["posteriors"]["z"][0]["family"], "Categorical");
  EXPECT_NEAR(out["posteriors"]["z"][0]["p"][2].get<double>(), 0.5, 1e-12);

  EXPECT_EQ(LoadError(R"({"format": "vfe-model/1",
    "variables": [{"name": "w", "family": "Dirichlet", "dim": 3},
                  {"name": "c", "family": "Categorical", "dim": 3, "observed": [0, 3, 1]}],
    "factors": [{"node": "Dirichlet", "out": "w", "alpha": [1, 1, 1]},
                {"node": "Categorical", "out": "c", "p": "w"}]})"),
            "/variables/1/observed/1: expected an outcome in 0..2, found 3");
  EXPECT_EQ(LoadError(R"({"format": "vfe-model/1",
    "variables": [{"name": "c", "family": "Categorical", "dim": 2, "observed": [0, 1]}],
    "factors": [{"node": "Categorical", "out": "c", "p": [0.5, 0.6]}]})"),
            "/factors/0/p: expected probabilities that sum to 1, found a sum of 1.1");
  EXPECT_EQ(LoadError(R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "observed": [0, 1]}],
    "factors": [{"node": "Bernoulli", "out": "x", "p": 1.5}]})"),
            "/factors/0/p: expected a probability in (0, 1) or a Beta variable, found 1.5");
  EXPECT_EQ(LoadError(R"({"format": "vfe-model/1",
    "variables": [{"name": "w", "family": "Dirichlet", "dim": 2}],
    "factors": [{"node": "Dirichlet", "out": "w", "alpha": [1, -1]}]})"),
            "/factors/0/alpha/1: expected a positive number, found -1");
}

TEST(ModelJson, MixtureAndPotentialsMatchTheCppModels) {
  const std::string mixture = R"({"format": "vfe-model/1",
    "variables": [{"name": "mu", "family": "Gaussian", "shape": [2]},
                  {"name": "tau", "family": "Gamma", "shape": [2]},
                  {"name": "w", "family": "Dirichlet", "dim": 2},
                  {"name": "z", "family": "Categorical", "dim": 2, "shape": [4]},
                  {"name": "y", "observed": [-2.0, -1.5, 2.5, 3.0]}],
    "factors": [{"node": "Gaussian", "for": {"k": [0, 2]}, "out": "mu[k]", "mean": 0, "precision": 0.1},
                {"node": "Gamma", "for": {"k": [0, 2]}, "out": "tau[k]", "shape": 2, "rate": 1},
                {"node": "Dirichlet", "out": "w", "alpha": [1, 1]},
                {"node": "Categorical", "for": {"n": [0, 4]}, "out": "z[n]", "p": "w"},
                {"node": "GaussianMixture", "for": {"n": [0, 4]}, "out": "y[n]", "switch": "z[n]",
                 "means": "mu", "precisions": "tau"}],
    "inference": {"tolerance": 0, "iterations": 10,
                  "initial": {"z": {"p": [[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]]}}}})";
  Model model = ParseModel(mixture);
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);

  FactorGraph graph;
  const Variable mu = graph.AddVariableArray("mu", Family::kGaussian, {2});
  const Variable tau = graph.AddVariableArray("tau", Family::kGamma, {2});
  const Variable w = graph.AddVariable("w", Family::kDirichlet, 2);
  const Variable z = graph.AddVariableArray("z", Family::kCategorical, {4}, 2);
  graph.AddGaussian(mu, 0.0, 0.1);
  graph.AddGamma(tau, 2.0, 1.0);
  graph.AddDirichlet(w, Vector(Vector::Ones(2)));
  graph.AddCategorical(z, w);
  graph.AddGaussianMixture(graph.AddObserved("y", std::vector<double>{-2.0, -1.5, 2.5, 3.0}), z,
                           mu, tau);
  graph.Finalize();
  const double initial[4][2] = {{0.9, 0.1}, {0.8, 0.2}, {0.1, 0.9}, {0.2, 0.8}};
  for (size_t i = 0; i < 4; ++i)
    graph.SetPosterior(z[i], Categorical((Vector(2) << initial[i][0], initial[i][1]).finished()));
  SchedulerOptions options;
  options.tolerance = 0;
  options.max_iterations = 10;
  const Result from_cpp = SequentialScheduler(options).Run(graph);
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);

  const std::string chain = R"({"format": "vfe-model/1",
    "variables": [{"name": "s", "family": "Categorical", "dim": 2, "shape": [4]}],
    "factors": [{"node": "Potential", "for": {"i": [0, 4]}, "variables": ["s[i]"], "log_table": [-0.2, 0.2]},
                {"node": "Potential", "for": {"i": [0, 3]}, "variables": ["s[i]", "s[i+1]"],
                 "log_table": [[0.5, -0.5], [-0.5, 0.5]]}]})";
  Model ising = ParseModel(chain);
  const Result from_json_chain = SequentialScheduler(SchedulerOptions()).Run(ising.graph);
  FactorGraph cpp_chain;
  const Variable s4 = cpp_chain.AddVariableArray("s", Family::kCategorical, {4}, 2);
  cpp_chain.AddPotential({s4}, {-0.2, 0.2});
  cpp_chain.AddPotential({s4.Slice(0, 3), s4.Slice(1, 4)}, {0.5, -0.5, -0.5, 0.5});
  cpp_chain.Finalize();
  const Result from_cpp_chain = SequentialScheduler(SchedulerOptions()).Run(cpp_chain);
  EXPECT_EQ(from_json_chain.free_energy, from_cpp_chain.free_energy);

  const std::string hmm = R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "family": "Categorical", "dim": 2, "shape": [5]},
                  {"name": "y", "family": "Categorical", "dim": 2, "observed": [0, 0, 1, 1, 0]}],
    "factors": [{"node": "Categorical", "out": "x[0]", "p": [0.5, 0.5]},
                {"node": "Transition", "for": {"t": [1, 5]}, "out": "x[t]", "in": "x[t-1]",
                 "matrix": [[0.9, 0.2], [0.1, 0.8]]},
                {"node": "Transition", "for": {"t": [0, 5]}, "out": "y[t]", "in": "x[t]",
                 "matrix": [[0.8, 0.3], [0.2, 0.7]]}]})";
  Model hmm_model = ParseModel(hmm);
  const Result from_json_hmm = SequentialScheduler(SchedulerOptions()).Run(hmm_model.graph);
  FactorGraph cpp_hmm;
  const Variable x = cpp_hmm.AddVariableArray("x", Family::kCategorical, {5}, 2);
  Matrix transition(2, 2), emission(2, 2);
  transition << 0.9, 0.2, 0.1, 0.8;
  emission << 0.8, 0.3, 0.2, 0.7;
  cpp_hmm.AddCategorical(x[0], Vector((Vector(2) << 0.5, 0.5).finished()));
  cpp_hmm.AddTransition(x.Slice(1, 5), x.Slice(0, 4), transition);
  cpp_hmm.AddTransition(cpp_hmm.AddObservedCategorical("y", {0, 0, 1, 1, 0}, 2), x, emission);
  cpp_hmm.Finalize();
  const Result from_cpp_hmm = SequentialScheduler(SchedulerOptions()).Run(cpp_hmm);
  EXPECT_EQ(from_json_hmm.free_energy, from_cpp_hmm.free_energy);

  EXPECT_EQ(LoadError(R"({"format": "vfe-model/1",
    "variables": [{"name": "s", "family": "Categorical", "dim": 2, "shape": [2]}],
    "factors": [{"node": "Potential", "variables": ["s[0]", "s[1]"], "log_table": [[0, 1], [2]]}]})"),
            "/factors/0/log_table/1: expected rows of equal length (a rectangular table), found "
            "an array of 1");
  EXPECT_EQ(LoadError(R"({"format": "vfe-model/1",
    "variables": [{"name": "s", "family": "Categorical", "dim": 2, "shape": [2]}],
    "factors": [{"node": "Potential", "variables": ["s[0]", "s[1]"], "log_table": [0, 1, 2]}]})"),
            "/factors/0 (Potential): the log-table has 3 entries, but the variables' categories "
            "make 4");
}

/// examples/gaussian_mixture.cc, step by step: its data, graph, starting q(z) and options.
struct MixtureExample {
  FactorGraph graph;
  Variable mu, weights;
  SchedulerOptions options;
};

std::unique_ptr<MixtureExample> BuildMixtureExample() {
  const int k = 5, d = 2, n = 2000;
  const double centers[5][2] = {{-6, -4}, {-2, 5}, {3, -3}, {6, 4}, {0, 0}};
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 0.7);
  Matrix points(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) points(i, j) = centers[i % k][j] + normal(rng);
  auto m = std::make_unique<MixtureExample>();
  std::vector<Variable> order;  // mu, Lambda, weights, z
  m->graph = bench::MakeMixtureModel(points, k, &order);
  FactorGraph& graph = m->graph;
  m->mu = order[0];
  m->weights = order[2];
  const Variable z = order[3];
  std::vector<int> seeds = {0};
  Vector nearest = (points.rowwise() - points.row(0)).rowwise().squaredNorm();
  while (static_cast<int>(seeds.size()) < k) {
    Eigen::Index far = 0;
    nearest.maxCoeff(&far);
    seeds.push_back(static_cast<int>(far));
    nearest = nearest.cwiseMin((points.rowwise() - points.row(far)).rowwise().squaredNorm());
  }
  for (int i = 0; i < n; ++i) {
    int best = 0;
    for (int c = 1; c < k; ++c)
      if ((points.row(i) - points.row(seeds[c])).squaredNorm() <
          (points.row(i) - points.row(seeds[best])).squaredNorm())
        best = c;
    Vector one_hot = Vector::Zero(k);
    one_hot[best] = 1.0;
    graph.SetPosterior(z[i], Categorical(one_hot));
  }
  m->options.max_iterations = 500;
  m->options.order = order;
  return m;
}

TEST(ModelJson, MixtureExampleMatchesTheCppExampleBitForBit) {
  Model model = LoadModel(ExamplePath("gaussian_mixture.json"));
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);
  std::unique_ptr<MixtureExample> cpp = BuildMixtureExample();
  const Result from_cpp = SequentialScheduler(cpp->options).Run(cpp->graph);
  ASSERT_TRUE(from_cpp.converged());
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);
  EXPECT_EQ(Fixed(from_json.free_energy.back(), 6), Fixed(from_cpp.free_energy.back(), 6));
  EXPECT_EQ(model.graph.Posterior<Dirichlet>(model.graph.Find("weights")).alpha(),
            cpp->graph.Posterior<Dirichlet>(cpp->weights).alpha());
  for (size_t c = 0; c < 5; ++c)
    EXPECT_EQ(model.graph.Posterior<MvGaussian>(model.graph.Find("mu")[c]).mean(),
              cpp->graph.Posterior<MvGaussian>(cpp->mu[c]).mean());
}

/// The fields and couplings of examples/ising.cc, drawn as it draws them.
struct IsingDraws {
  static constexpr int kSide = 50;
  std::vector<double> fields;       // h of site i = r·50 + c
  std::vector<double> couplings;    // J in the example's order: site by site, right then down
};

IsingDraws DrawIsing() {
  IsingDraws draws;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> coupling(0.3, 0.2), field(0.0, 0.3);
  for (int i = 0; i < IsingDraws::kSide * IsingDraws::kSide; ++i) draws.fields.push_back(field(rng));
  for (int e = 0; e < 2 * IsingDraws::kSide * (IsingDraws::kSide - 1); ++e)
    draws.couplings.push_back(coupling(rng));
  return draws;
}

double MeanMagnetisation(const FactorGraph& graph, const Variable& s) {
  double magnetisation = 0.0;
  for (size_t i = 0; i < s.size(); ++i)
    magnetisation += 2.0 * graph.Posterior<Categorical>(s[i]).p()[1] - 1.0;
  return magnetisation / static_cast<double>(s.size());
}

TEST(ModelJson, IsingExampleMatchesTheCppExampleToEveryPrintedDigit) {
  Model model = LoadModel(ExamplePath("ising.json"));
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);
  const int side = IsingDraws::kSide;
  const IsingDraws draws = DrawIsing();

  // The example's graph: one plate per factor, fields first, then each site's couplings.
  FactorGraph example;
  const Variable s = example.AddVariableArray("s", Family::kCategorical, {side, side}, 2);
  for (int i = 0; i < side * side; ++i)
    example.AddPotential({s[i]}, {-draws.fields[i], draws.fields[i]});
  size_t e = 0;
  for (int r = 0; r < side; ++r)
    for (int c = 0; c < side; ++c) {
      const int i = r * side + c;
      for (int j : {c + 1 < side ? i + 1 : -1, r + 1 < side ? i + side : -1}) {
        if (j < 0) continue;
        const double coupling = draws.couplings[e++];
        example.AddPotential({s[i], s[j]}, {coupling, -coupling, -coupling, coupling});
      }
    }
  example.Finalize();
  SchedulerOptions options;
  options.max_iterations = 1000;
  options.tolerance = 1e-10;
  const Result from_example = SequentialScheduler(options).Run(example);
  ASSERT_TRUE(from_example.converged());
  // The JSON model groups the factors into a plate per loop run: the same terms summed in
  // another order, equal to rounding and to every digit the example prints.
  EXPECT_EQ(model.graph.num_factors(), example.num_factors());
  EXPECT_EQ(from_json.iterations, from_example.iterations);
  EXPECT_EQ(Fixed(from_json.evidence_lower_bound(), 6), Fixed(from_example.evidence_lower_bound(), 6));
  EXPECT_NEAR(from_json.free_energy.back(), from_example.free_energy.back(),
              1e-12 * std::abs(from_example.free_energy.back()));
  const Variable json_s = model.graph.Find("s");
  EXPECT_EQ(Fixed(MeanMagnetisation(model.graph, json_s), 4), Fixed(MeanMagnetisation(example, s), 4));

  // With the JSON model's plates (the fields, a plate per row of horizontal couplings, one of
  // vertical couplings) and per-factor tables, the C++ graph is the JSON graph, bit for bit.
  FactorGraph plates;
  const Variable t = plates.AddVariableArray("s", Family::kCategorical, {side, side}, 2);
  std::vector<double> field_tables, right_tables, down_tables;
  for (double h : draws.fields) field_tables.insert(field_tables.end(), {-h, h});
  std::vector<std::vector<double>> right_rows(side);
  e = 0;
  for (int r = 0; r < side; ++r)
    for (int c = 0; c < side; ++c) {
      if (c + 1 < side) {
        const double coupling = draws.couplings[e++];
        right_rows[r].insert(right_rows[r].end(), {coupling, -coupling, -coupling, coupling});
      }
      if (r + 1 < side) {
        const double coupling = draws.couplings[e++];
        down_tables.insert(down_tables.end(), {coupling, -coupling, -coupling, coupling});
      }
    }
  plates.AddPotential({t}, field_tables);
  for (int r = 0; r < side; ++r)
    plates.AddPotential(
        {t.Slice(r * side, r * side + side - 1), t.Slice(r * side + 1, r * side + side)},
        right_rows[r]);
  plates.AddPotential({t.Slice(0, side * (side - 1)), t.Slice(side, side * side)}, down_tables);
  plates.Finalize();
  EXPECT_EQ(model.graph.num_plates(), plates.num_plates());
  const Result from_plates = SequentialScheduler(options).Run(plates);
  EXPECT_EQ(from_json.free_energy, from_plates.free_energy);
}

TEST(ModelJson, HmmExampleMatchesTheCppExampleBitForBit) {
  Model model = LoadModel(ExamplePath("hmm.json"));
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);

  // examples/hmm.cc: its simulated symbols, learned matrices and clustered states.
  const size_t steps = 5000;
  const int states = 3, symbols = 4;
  Matrix true_a(states, states), true_b(symbols, states);
  true_a << 0.90, 0.05, 0.10, 0.05, 0.85, 0.10, 0.05, 0.10, 0.80;
  true_b << 0.70, 0.10, 0.05, 0.20, 0.70, 0.05, 0.05, 0.15, 0.30, 0.05, 0.05, 0.60;
  const Vector pi = Vector::Constant(states, 1.0 / states);
  std::mt19937_64 rng(5);
  auto pick = [&](const Vector& p) {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    int k = 0;
    while (k + 1 < p.size() && u >= p[k]) u -= p[k++];
    return k;
  };
  std::vector<int> path(steps), observed(steps);
  for (size_t t = 0; t < steps; ++t) {
    path[t] = pick(t == 0 ? pi : Vector(true_a.col(path[t - 1])));
    observed[t] = pick(true_b.col(path[t]));
  }
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kCategorical, {steps}, states);
  const Variable a = graph.AddVariableArray("A", Family::kDirichlet, {size_t{states}}, states);
  const Variable b = graph.AddVariableArray("B", Family::kDirichlet, {size_t{states}}, symbols);
  graph.AddMatrixDirichlet(a, Matrix::Ones(states, states), "A prior");
  Matrix b_prior = Matrix::Ones(symbols, states);
  for (int k = 0; k < states; ++k) b_prior(k, k) += 2.0;
  graph.AddMatrixDirichlet(b, b_prior, "B prior");
  graph.AddCategorical(x[0], pi, "initial");
  graph.AddTransition(x.Slice(1, steps), x.Slice(0, steps - 1), a, "dynamics");
  graph.AddTransition(graph.AddObservedCategorical("y", observed, symbols), x, b, "emissions");
  graph.AddCluster(x);
  graph.Finalize();
  SchedulerOptions options;
  options.max_iterations = 500;
  options.tolerance = 1e-10;
  options.order = {a, b, x};
  const Result from_cpp = SequentialScheduler(options).Run(graph);
  ASSERT_TRUE(from_cpp.converged());
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);
  const json out = json::parse(ResultJson(model, from_json));
  for (int k = 0; k < states; ++k)
    for (int j = 0; j < symbols; ++j)
      EXPECT_EQ(out["posteriors"]["B"]["mean"][j][k].get<double>(),
                graph.Posterior<Dirichlet>(b[k]).mean()[j]);
}

TEST(ModelJson, TrackingExampleMatchesTheCppExampleBitForBit) {
  Model model = LoadModel(ExamplePath("tracking.json"));
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);

  // examples/tracking.cc: its simulated measurements, state-space model and clustered states.
  const size_t steps = 2000;
  Matrix a = Matrix::Identity(4, 4);
  a(0, 0) = a(1, 1) = 0.99;
  a(2, 2) = a(3, 3) = 0.95;
  a(0, 2) = a(1, 3) = 0.1;
  Matrix q = Matrix::Identity(4, 4) * 0.01;
  q(0, 0) = q(1, 1) = 0.001;
  Matrix c = Matrix::Zero(2, 4);
  c(0, 0) = c(1, 1) = 1.0;
  Matrix true_noise(2, 2);
  true_noise << 0.09, 0.03, 0.03, 0.04;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  auto draw = [&](const Matrix& cov) {
    Vector z(cov.rows());
    for (auto& v : z) v = normal(rng);
    return Vector(cov.llt().matrixL() * z);
  };
  Matrix measured(steps, 2);
  Vector x = draw(Matrix::Identity(4, 4));
  for (size_t t = 0; t < steps; ++t) {
    if (t > 0) x = a * x + draw(q);
    measured.row(t) = (c * x + draw(true_noise)).transpose();
  }
  FactorGraph graph;
  const Variable states = graph.AddVariableArray("x", Family::kMvGaussian, {steps}, 4);
  const Variable noise = graph.AddVariable("R", Family::kWishart, 2);
  graph.AddWishart(noise, 4.0, Matrix(Matrix::Identity(2, 2) / 4.0), "noise prior");
  graph.AddMvGaussian(states[0], Vector(Vector::Zero(4)), Matrix(Matrix::Identity(4, 4)),
                      "initial");
  graph.AddLinearGaussian(states.Slice(1, steps), states.Slice(0, steps - 1), a,
                          Matrix(q.inverse()), "dynamics");
  graph.AddLinearGaussian(graph.AddObservedRows("y", measured), states, c, noise, "sensor");
  graph.AddCluster(states);
  graph.Finalize();
  SchedulerOptions options;
  options.max_iterations = 200;
  options.tolerance = 1e-10;
  const Result from_cpp = SequentialScheduler(options).Run(graph);
  ASSERT_TRUE(from_cpp.converged());
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);
  EXPECT_EQ(model.graph.Posterior<Wishart>(model.graph.Find("R")).scale(),
            graph.Posterior<Wishart>(noise).scale());
}

// ---- The BayesPy reference cases from JSON -----------------------------------------------------


/// The BayesPy reference models as vfe-model/1 documents, their data inline.
json BayesPyGaussianModel(const json& data) {
  const json& m = data["model"];
  return {{"format", "vfe-model/1"},
          {"variables",
           {{{"name", "mu"}, {"family", "Gaussian"}},
            {{"name", "tau"}, {"family", "Gamma"}},
            {{"name", "y"}, {"shape", {data["y"].size()}}, {"observed", data["y"]}}}},
          {"factors",
           {{{"node", "Gaussian"}, {"out", "mu"}, {"mean", m["mu_prior_mean"]},
             {"precision", m["mu_prior_precision"]}},
            {{"node", "Gamma"}, {"out", "tau"}, {"shape", m["tau_prior_shape"]},
             {"rate", m["tau_prior_rate"]}},
            {{"node", "Gaussian"}, {"for", {{"n", {0, data["y"].size()}}}}, {"out", "y[n]"},
             {"mean", "mu"}, {"precision", "tau"}}}},
          {"inference", {{"iterations", 1000}, {"tolerance", 1e-8}, {"order", {"mu", "tau"}}}}};
}

json BayesPyRegressionModel(const json& data) {
  const json& m = data["model"];
  const int n = data["N"], d = data["D"];
  json mean = json::array(), precision = json::array();
  for (int i = 0; i < d; ++i) {
    mean.push_back(m["w_prior_mean"]);
    json row = json::array();
    for (int j = 0; j < d; ++j) row.push_back(i == j ? m["w_prior_precision"].get<double>() : 0.0);
    precision.push_back(row);
  }
  return {{"format", "vfe-model/1"},
          {"variables",
           {{{"name", "w"}, {"family", "MvGaussian"}, {"dim", d}},
            {{"name", "tau"}, {"family", "Gamma"}},
            {{"name", "X"}, {"shape", {n}}, {"dim", d}, {"observed", data["X"]}},
            {{"name", "y"}, {"shape", {n}}, {"observed", data["y"]}}}},
          {"factors",
           {{{"node", "MvGaussian"}, {"out", "w"}, {"mean", mean}, {"precision", precision}},
            {{"node", "Gamma"}, {"out", "tau"}, {"shape", m["tau_prior_shape"]},
             {"rate", m["tau_prior_rate"]}},
            {{"node", "LinearGaussian"}, {"for", {{"n", {0, n}}}}, {"out", "y[n]"}, {"in", "w"},
             {"matrix", "X[n]"}, {"precision", "tau"}}}},
          {"inference", {{"iterations", 1000}, {"tolerance", 1e-8}, {"order", {"w", "tau"}}}}};
}

/// BayesPy's Gaussian mixture: its Wishart(n, V) has the inverse scale V (our scale is V⁻¹),
/// and q(z) starts one-hot at the reference's initial labels.
json BayesPyMixtureModel(const json& data) {
  const json& m = data["model"];
  const int n = data["N"], k = m["K"], d = m["D"];
  Matrix inverse_scale(d, d);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j)
      inverse_scale(i, j) = m["wishart_prior_inverse_scale"][i][j].get<double>();
  const Matrix scale = inverse_scale.inverse();
  json scale_rows = json::array(), precision = json::array();
  for (int i = 0; i < d; ++i) {
    scale_rows.push_back(json::array());
    precision.push_back(json::array());
    for (int j = 0; j < d; ++j) {
      scale_rows[i].push_back(scale(i, j));
      precision[i].push_back(i == j ? m["mean_prior_precision"].get<double>() : 0.0);
    }
  }
  json initial = json::array();
  for (int label : data["init"]["labels0"].get<std::vector<int>>()) {
    std::vector<double> one_hot(k, 0.0);
    one_hot[label] = 1.0;
    initial.push_back(one_hot);
  }
  return {{"format", "vfe-model/1"},
          {"variables",
           {{{"name", "mu"}, {"family", "MvGaussian"}, {"dim", d}, {"shape", {k}}},
            {{"name", "Lambda"}, {"family", "Wishart"}, {"dim", d}, {"shape", {k}}},
            {{"name", "alpha"}, {"family", "Dirichlet"}, {"dim", k}},
            {{"name", "z"}, {"family", "Categorical"}, {"dim", k}, {"shape", {n}}},
            {{"name", "y"}, {"dim", d}, {"shape", {n}}, {"observed", data["y"]}}}},
          {"factors",
           {{{"node", "MvGaussian"}, {"for", {{"c", {0, k}}}}, {"out", "mu[c]"},
             {"mean", m["mean_prior_mean"]}, {"precision", precision}},
            {{"node", "Wishart"}, {"for", {{"c", {0, k}}}}, {"out", "Lambda[c]"},
             {"dof", m["wishart_prior_dof"]}, {"scale", scale_rows}},
            {{"node", "Dirichlet"}, {"out", "alpha"},
             {"alpha", std::vector<double>(k, m["dirichlet_prior_concentration"].get<double>())}},
            {{"node", "Categorical"}, {"for", {{"i", {0, n}}}}, {"out", "z[i]"}, {"p", "alpha"}},
            {{"node", "GaussianMixture"}, {"for", {{"i", {0, n}}}}, {"out", "y[i]"},
             {"switch", "z[i]"}, {"means", "mu"}, {"precisions", "Lambda"}}}},
          {"inference",
           {{"iterations", 1000}, {"tolerance", 1e-8}, {"order", {"mu", "Lambda", "alpha", "z"}},
            {"initial", {{"z", {{"p", initial}}}}}}}};
}

TEST(ModelJson, BayesPyGaussianCaseFromJsonMatchesTheReference) {
  const json data = testing::LoadReference("bayespy/gauss_N1000.json");
  const json expected = testing::LoadReference("bayespy/case1_gaussian_N1000.result.json");
  Model model = ParseModel(BayesPyGaussianModel(data).dump());
  const Result result = SequentialScheduler(model.inference.options).Run(model.graph);
  testing::ExpectBayesPyTrace(result, expected);
  EXPECT_NEAR(model.graph.Posterior<Gaussian>(model.graph.Find("mu")).mean(),
              expected["posterior"]["mu"]["mean"].get<double>(),
              1e-8 * std::abs(expected["posterior"]["mu"]["mean"].get<double>()));
}

TEST(ModelJson, BayesPyRegressionCaseFromJsonMatchesTheReference) {
  const json data = testing::LoadReference("bayespy/linreg_N10000_D10.json");
  const json expected = testing::LoadReference("bayespy/case2_linreg_N10000_D10.result.json");
  Model model = ParseModel(BayesPyRegressionModel(data).dump());
  const Result result = SequentialScheduler(model.inference.options).Run(model.graph);
  testing::ExpectBayesPyTrace(result, expected);
  const Vector w = model.graph.Posterior<MvGaussian>(model.graph.Find("w")).mean();
  for (int i = 0; i < data["D"].get<int>(); ++i) {
    const double e = expected["posterior"]["w"]["mean"][i];
    EXPECT_NEAR(w[i], e, 1e-8 * std::abs(e));
  }
}

TEST(ModelJson, BayesPyMixtureCaseFromJsonMatchesTheReference) {
  const json data = testing::LoadReference("bayespy/gmm_N10000.json");
  const json expected = testing::LoadReference("bayespy/case3_gmm_N10000.result.json");
  Model model = ParseModel(BayesPyMixtureModel(data).dump());
  const Result result = SequentialScheduler(model.inference.options).Run(model.graph);
  // As the C++ reference test: each sweep's bound to 1e-8 relative.
  const std::vector<double> bound = expected["trace"]["lower_bound"];
  ASSERT_EQ(result.iterations, static_cast<int>(bound.size()));
  EXPECT_TRUE(result.converged());
  for (size_t i = 0; i < bound.size(); ++i)
    EXPECT_NEAR(-result.free_energy[i], bound[i], 1e-8 * std::abs(bound[i])) << "sweep " << i + 1;
  const Vector concentration =
      model.graph.Posterior<Dirichlet>(model.graph.Find("alpha")).alpha();
  for (int c = 0; c < data["model"]["K"].get<int>(); ++c) {
    const double e = expected["posterior"]["alpha"]["concentration"][c];
    EXPECT_NEAR(concentration[c], e, 1e-7 * std::abs(e)) << "component " << c;
  }
}

// ---- Learned matrices, per-factor log-tables ---------------------------------------------------

/// A hidden Markov model with learned matrices: x_0 ~ Categorical(π), x_t ~ A[·][x_{t−1}] with
/// A ~ MatrixDirichlet (3 states), y_t ~ B[·][x_t] with B ~ MatrixDirichlet (4 symbols x 3
/// states). The states are updated first, then A and B from them.
json LearnedHmmModel() {
  return json::parse(R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "family": "Categorical", "dim": 3, "shape": [12]},
                  {"name": "A", "family": "MatrixDirichlet", "dim": [3, 3]},
                  {"name": "B", "family": "MatrixDirichlet", "dim": [4, 3]},
                  {"name": "y", "family": "Categorical", "dim": 4,
                   "observed": [0, 0, 1, 3, 1, 2, 2, 3, 0, 1, 2, 2]}],
    "factors": [{"node": "MatrixDirichlet", "name": "A prior", "out": "A",
                 "alpha": [[4, 1, 2], [1, 3, 1], [1, 2, 6]]},
                {"node": "MatrixDirichlet", "name": "B prior", "out": "B",
                 "alpha": [[3, 1, 1], [1, 3, 0.5], [1, 1, 3], [2, 0.5, 2]]},
                {"node": "Categorical", "out": "x[0]", "p": [0.5, 0.3, 0.2]},
                {"node": "Transition", "name": "dynamics", "for": {"t": [1, 12]}, "out": "x[t]",
                 "in": "x[t-1]", "matrix": "A"},
                {"node": "Transition", "name": "emissions", "for": {"t": [0, 12]}, "out": "y[t]",
                 "in": "x[t]", "matrix": "B"}],
    "inference": {"iterations": 30, "tolerance": 0, "order": ["x", "A", "B"]}})");
}

TEST(ModelJson, LearnedHmmMatchesTheCppModelBitForBit) {
  Model model = ParseModel(LearnedHmmModel().dump());
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);

  Matrix alpha_a(3, 3), alpha_b(4, 3);
  alpha_a << 4, 1, 2, 1, 3, 1, 1, 2, 6;
  alpha_b << 3, 1, 1, 1, 3, 0.5, 1, 1, 3, 2, 0.5, 2;
  const std::vector<int> y = {0, 0, 1, 3, 1, 2, 2, 3, 0, 1, 2, 2};
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kCategorical, {12}, 3);
  const Variable a = graph.AddVariableArray("A", Family::kDirichlet, {3}, 3);
  const Variable b = graph.AddVariableArray("B", Family::kDirichlet, {3}, 4);
  graph.AddMatrixDirichlet(a, alpha_a, "A prior");
  graph.AddMatrixDirichlet(b, alpha_b, "B prior");
  graph.AddCategorical(x[0], Vector((Vector(3) << 0.5, 0.3, 0.2).finished()));
  graph.AddTransition(x.Slice(1, 12), x.Slice(0, 11), a, "dynamics");
  graph.AddTransition(graph.AddObservedCategorical("y", y, 4), x, b, "emissions");
  graph.Finalize();
  const Result from_cpp = RunSweeps(graph, 30, {x, a, b});
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);
  EXPECT_EQ(from_json.free_energy_increases, 0);

  // The result gives each matrix as K rows of L, oriented as its prior: the prior plus the
  // expected counts of (outcome j, state k), from the last q(x) (A and B are updated last).
  const json out = json::parse(ResultJson(model, from_json));
  const json& q_a = out["posteriors"]["A"];
  const json& q_b = out["posteriors"]["B"];
  EXPECT_EQ(q_b["family"], "MatrixDirichlet");
  ASSERT_EQ(q_b["alpha"].size(), 4u);
  ASSERT_EQ(q_b["alpha"][0].size(), 3u);
  const Variable json_x = model.graph.Find("x");
  auto p = [&](size_t t) { return model.graph.Posterior<Categorical>(json_x[t]).p(); };
  Matrix counts_a = alpha_a, counts_b = alpha_b;
  for (size_t t = 0; t < 12; ++t) {
    counts_b.row(y[t]) += p(t).transpose();
    if (t > 0) counts_a += p(t) * p(t - 1).transpose();
  }
  for (int j = 0; j < 4; ++j)
    for (int k = 0; k < 3; ++k) {
      EXPECT_NEAR(q_b["alpha"][j][k].get<double>(), counts_b(j, k), 1e-12) << j << "," << k;
      EXPECT_NEAR(q_b["mean"][j][k].get<double>(), counts_b(j, k) / counts_b.col(k).sum(), 1e-12);
      if (j < 3) {
        EXPECT_NEAR(q_a["alpha"][j][k].get<double>(), counts_a(j, k), 1e-12);
      }
    }
}

TEST(ModelJson, MatrixDirichletStartsFromAnInitialAlpha) {
  json model = LearnedHmmModel();
  model["inference"]["initial"] = {
      {"B", {{"family", "MatrixDirichlet"},
             {"alpha", {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}}}}}};
  const Model loaded = ParseModel(model.dump());
  const Variable b = loaded.graph.Find("B");
  EXPECT_EQ(loaded.graph.Posterior<Dirichlet>(b[1]).alpha(),
            (Vector(4) << 2, 5, 8, 11).finished());  // column 1
}

/// Three Ising-like pairs, each with its own coupling table.
json PairsModel(const json& tables) {
  return {{"format", "vfe-model/1"},
          {"variables", {{{"name", "s"}, {"family", "Categorical"}, {"dim", 2}, {"shape", {4}}}}},
          {"factors",
           {{{"node", "Potential"}, {"for", {{"i", {0, 4}}}}, {"variables", {"s[i]"}},
             {"log_table", {-0.3, 0.3}}},
            {{"node", "Potential"}, {"for", {{"i", {0, 3}}}}, {"variables", {"s[i]", "s[i+1]"}},
             {"log_tables", tables}}}},
          {"inference", {{"iterations", 20}, {"tolerance", 0}}}};
}

TEST(ModelJson, PerFactorLogTablesInlineOrFromCsvAreTheCppTables) {
  const std::vector<double> tables = {0.5, -0.5, -0.5, 0.5,  1, -1, -1, 1,  -0.2, 0.2, 0.2, -0.2};
  FactorGraph graph;
  const Variable s = graph.AddVariableArray("s", Family::kCategorical, {4}, 2);
  graph.AddPotential({s}, {-0.3, 0.3});
  graph.AddPotential({s.Slice(0, 3), s.Slice(1, 4)}, tables);
  graph.Finalize();
  const Result from_cpp = RunSweeps(graph, 20);

  Model nested = ParseModel(PairsModel({{{0.5, -0.5}, {-0.5, 0.5}}, {{1, -1}, {-1, 1}},
                                        {{-0.2, 0.2}, {0.2, -0.2}}}).dump());
  EXPECT_EQ(RunSweeps(nested.graph, 20).free_energy, from_cpp.free_energy);
  const std::string csv = TempFile("vfe_pairs.csv", "a,b,c,d\n0.5,-0.5,-0.5,0.5\n1,-1,-1,1\n"
                                                    "-0.2,0.2,0.2,-0.2\n");
  Model from_csv = ParseModel(PairsModel({{"csv", csv}}).dump());
  std::remove(csv.c_str());
  EXPECT_EQ(RunSweeps(from_csv.graph, 20).free_energy, from_cpp.free_energy);
}

TEST(ModelJson, MatrixDirichletAndLogTableErrorsNameThePointer) {
  auto hmm_error = [](const std::function<void(json&)>& edit) {
    json model = LearnedHmmModel();
    edit(model);
    return LoadError(model.dump());
  };
  const std::string bad_csv = TempFile("vfe_tables.csv", "1,2,3,4\n5,6,7,8\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {hmm_error([](json& m) { m["variables"][1]["dim"] = 3; }),
       "/variables/1/dim: expected [K, L] (L columns, each a Dirichlet over K outcomes), found 3"},
      {hmm_error([](json& m) { m["variables"][1].erase("dim"); }),
       "/variables/1: missing required key 'dim' ([K, L]: L columns, each a Dirichlet over K "
       "outcomes)"},
      {hmm_error([](json& m) { m["variables"][1]["dim"] = {3, 0}; }),
       "/variables/1/dim/1: expected a positive integer at most 268435456, found 0"},
      {hmm_error([](json& m) { m["variables"][1]["shape"] = {2}; }),
       "/variables/1/shape: expected no 'shape' for a MatrixDirichlet variable (one matrix, sized "
       "by 'dim': [K, L]), found an array of 1"},
      {hmm_error([](json& m) { m["variables"][1]["observed"] = {{1, 0}, {0, 1}}; }),
       "/variables/1/observed: expected a hidden MatrixDirichlet variable (a known matrix is the "
       "'matrix' of its Transition), found observed values"},
      {hmm_error([](json& m) { m["variables"][1]["family"] = "MatrixDirichlett"; }),
       "/variables/1/family: unknown family \"MatrixDirichlett\" (did you mean "
       "'MatrixDirichlet'?); expected one of 'Gaussian', 'MvGaussian', 'Gamma', 'Wishart', "
       "'Beta', 'Bernoulli', 'Categorical', 'Dirichlet', 'MatrixDirichlet'"},
      {hmm_error([](json& m) { m["factors"][1]["alpha"] = {{3, 1, 1, 2}, {1, 3, 1, 1}, {1, 1, 3, 2}}; }),
       "/factors/1/alpha: expected 4 rows of 3 (an outcome per row, a column per column of the "
       "matrix 'B' (Dirichlet)), found 3 rows of 4"},
      {hmm_error([](json& m) { m["factors"][0]["alpha"][1][2] = -1; }),
       "/factors/0/alpha/1/2: expected a positive number, found -1"},
      {hmm_error([](json& m) { m["factors"][0]["out"] = "x"; }),
       "/factors/0/out: expected a MatrixDirichlet variable, found 'x' (Categorical)"},
      {hmm_error([](json& m) { m["factors"][0]["out"] = "A[0]"; }),
       "/factors/0/out: expected a MatrixDirichlet variable, found \"A[0]\" (one element: name "
       "the whole variable, \"A\")"},
      {hmm_error([](json& m) { m["factors"][0]["for"] = {{"k", {0, 3}}}; }),
       "/factors/0/for: no argument uses the loop variables ('k'), so the loop would repeat one "
       "factor 3 times; index an argument by them or remove \"for\""},
      {hmm_error([](json& m) { m["factors"][3]["matrix"] = "x"; }),
       "/factors/3/matrix: expected a matrix (an array of rows) or a MatrixDirichlet variable, "
       "found 'x' (Categorical)"},
      {hmm_error([](json& m) { m["factors"][3]["matrix"] = "AA"; }),
       "/factors/3/matrix: unknown variable 'AA' (did you mean 'A'?)"},
      {hmm_error([](json& m) { m["factors"][4]["matrix"] = "A"; }),
       "/factors/4/out: expected a Categorical variable with 3 outcomes (the rows of the matrix "
       "'A' (Dirichlet), 3x3), found 'y' (observed) with 4"},
      {hmm_error([](json& m) {
         m["factors"][4]["matrix"] = {{0.25, 0.25}, {0.25, 0.25}, {0.25, 0.25}, {0.25, 0.25}};
       }),
       "/factors/4/in: expected a Categorical variable with 2 outcomes (the columns of the 4x2 "
       "matrix), found 'x' (Categorical) with 3"},
      {hmm_error([](json& m) { m["factors"][2]["p"] = "A"; }),
       "/factors/2/p: expected a variable or one element, found the MatrixDirichlet 'A' (whole, "
       "it is only the 'matrix' of a Transition or the 'out' of its prior; its column k, a "
       "Dirichlet variable, is \"A[k]\")"},
      {hmm_error([](json& m) {
         m["inference"]["initial"] = {{"A", {{"alpha", {{1, 1, 1}, {1, 1, 1}}}}}};
       }),
       "/inference/initial/A/alpha: expected 3 rows of 3 (dim [3, 3]), found 2 rows of 3"},
      {hmm_error([](json& m) { m["inference"]["initial"] = {{"A", {{"family", "Dirichlet"}}}}; }),
       "/inference/initial/A/family: expected \"MatrixDirichlet\" (the family of 'A'), found the "
       "string \"Dirichlet\""},
      {LoadError([] {
         json m = PairsModel(json::array());
         m["factors"][1]["log_table"] = {0, 0, 0, 0};
         return m.dump();
       }()),
       "/factors/1: expected one of 'log_table' and 'log_tables', found both"},
      {LoadError([] {
         json m = PairsModel(json::array());
         m["factors"][1].erase("log_tables");
         return m.dump();
       }()),
       "/factors/1: missing required argument 'log_table' (one table for every factor) or "
       "'log_tables' (one table per factor)"},
      {LoadError(PairsModel({{0, 0, 0, 0}, {0, 0, 0, 0}}).dump()),
       "/factors/1/log_tables: expected an array of 3 tables (one per factor of the loop) or "
       "{\"csv\": ...}, found an array of 2"},
      {LoadError(PairsModel({{0, 0, 0, 0}, {0, 0, 0}, {0, 0, 0, 0}}).dump()),
       "/factors/1/log_tables/1: expected a table of 4 entries (the size of the first), found 3"},
      {LoadError(PairsModel({{"csv", bad_csv}}).dump()),
       "/factors/1/log_tables/csv: expected 3 rows (one per factor of the loop), found 2"},
  };
  std::remove(bad_csv.c_str());
  for (const auto& [error, expected] : cases) EXPECT_EQ(error, expected);
}

// ---- Round trips -------------------------------------------------------------------------------

/// Writes `original` normalised and loads it back: the same variables, plates and settings, the
/// same starting point and run (free energy and every posterior bit for bit, over at most 30
/// sweeps), and the same document when written again.
void ExpectRoundTrip(Model& original) {
  const std::string text = NormalisedModelJson(original);
  EXPECT_EQ(text.find("\"csv\""), std::string::npos) << "CSV data are inlined";
  Model reloaded = ParseModel(text, "/nonexistent");  // nothing is read from files
  const FactorGraph& a = original.graph;
  const FactorGraph& b = reloaded.graph;
  // The graph's variables include the factors' constants, in the same order.
  ASSERT_EQ(a.num_variables(), b.num_variables());
  for (uint32_t id = 0; id < a.num_variables(); ++id)
    EXPECT_EQ(a.variable_name(id), b.variable_name(id));
  ASSERT_EQ(original.variables.size(), reloaded.variables.size());
  for (size_t i = 0; i < original.variables.size(); ++i) {
    const Variable& v = original.variables[i];
    const Variable& w = reloaded.variables[i];
    const std::string& name = a.variable_name(v.id());
    EXPECT_EQ(v.id(), w.id()) << name;
    EXPECT_EQ(v.size(), w.size()) << name;
    EXPECT_EQ(a.observed(v), b.observed(w)) << name;
    if (!a.observed(v)) {
      EXPECT_EQ(a.family(v[0]), b.family(w[0])) << name;
    }
    EXPECT_EQ(a.dim(v[0]), b.dim(w[0])) << name;
  }
  EXPECT_EQ(original.shapes, reloaded.shapes);
  ASSERT_EQ(a.num_plates(), b.num_plates());
  for (PlateId p = 0; p < a.num_plates(); ++p) {
    EXPECT_EQ(a.plate_name(p), b.plate_name(p));
    EXPECT_EQ(a.plate_size(p), b.plate_size(p)) << a.plate_name(p);
    EXPECT_EQ(std::string(a.node(p).type()), std::string(b.node(p).type())) << a.plate_name(p);
  }
  const SchedulerOptions& options = original.inference.options;
  EXPECT_EQ(options.max_iterations, reloaded.inference.options.max_iterations);
  EXPECT_EQ(options.tolerance, reloaded.inference.options.tolerance);
  EXPECT_EQ(original.inference.scheduler, reloaded.inference.scheduler);
  EXPECT_EQ(original.inference.threads, reloaded.inference.threads);
  ASSERT_EQ(options.order.size(), reloaded.inference.options.order.size());
  for (size_t i = 0; i < options.order.size(); ++i)
    EXPECT_EQ(options.order[i].id(), reloaded.inference.options.order[i].id());
  EXPECT_EQ(NormalisedModelJson(reloaded), text);

  SchedulerOptions capped = options;
  capped.max_iterations = std::min(options.max_iterations, 30);
  const Result first = SequentialScheduler(capped).Run(original.graph);
  capped.order = reloaded.inference.options.order;
  const Result second = SequentialScheduler(capped).Run(reloaded.graph);
  EXPECT_EQ(first.initial_free_energy, second.initial_free_energy);
  EXPECT_EQ(first.free_energy, second.free_energy);
  json first_result = json::parse(ResultJson(original, first));
  json second_result = json::parse(ResultJson(reloaded, second));
  first_result.erase("timing_ms");
  second_result.erase("timing_ms");
  EXPECT_EQ(first_result, second_result);
}

TEST(ModelJson, EveryExampleRoundTripsThroughTheNormalisedDocument) {
  for (const char* name : {"coin.json", "gaussian_mean_precision.json", "linear_regression.json",
                           "gaussian_mixture.json", "ising.json", "hmm.json",
                           "tracking.json", "pendulum.json"}) {
    SCOPED_TRACE(name);
    Model model = LoadModel(ExamplePath(name));
    ExpectRoundTrip(model);
  }
}

TEST(ModelJson, BayesPyModelsAndLearnedMatricesRoundTrip) {
  const json gauss = testing::LoadReference("bayespy/gauss_N1000.json");
  const json regression = testing::LoadReference("bayespy/linreg_N10000_D10.json");
  const json mixture = testing::LoadReference("bayespy/gmm_N10000.json");
  const std::vector<std::pair<std::string, json>> models = {
      {"BayesPy Gaussian", BayesPyGaussianModel(gauss)},
      {"BayesPy regression", BayesPyRegressionModel(regression)},
      {"BayesPy mixture", BayesPyMixtureModel(mixture)},
      {"learned HMM", LearnedHmmModel()},
      {"per-factor tables", PairsModel({{0.5, -0.5, -0.5, 0.5}, {1, -1, -1, 1}, {0, 0, 0, 0}})}};
  for (const auto& [what, document] : models) {
    SCOPED_TRACE(what);
    Model model = ParseModel(document.dump());
    ExpectRoundTrip(model);
  }
}

TEST(ModelJson, NormalisedDocumentInlinesCsvInTheLoadersLayout) {
  // One observed vector from a one-row CSV file, a scalar array from a column, starting means
  // from CSV: each is written inline, with the shape (and dim) that reads it back.
  const std::string csv = TempFile("vfe_normalise.csv", "a,b\n0.25,-1.5\n");
  const std::string column = TempFile("vfe_normalise_column.csv", "m\n1\n2\n3\n");
  const std::string text = R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "family": "Gaussian", "shape": [3]},
                  {"name": "m", "family": "MvGaussian", "dim": 2},
                  {"name": "v", "observed": {"csv": ")" + csv + R"("}},
                  {"name": "y", "observed": {"csv": ")" + column + R"(", "column": "m"}}],
    "factors": [{"node": "Gaussian", "for": {"i": [0, 3]}, "out": "x[i]", "mean": 0, "precision": 1},
                {"node": "Gaussian", "for": {"i": [0, 3]}, "out": "y[i]", "mean": "x[i]", "precision": 2},
                {"node": "MvGaussian", "out": "m", "mean": [0, 0], "precision": [[1, 0], [0, 1]]},
                {"node": "MvGaussian", "out": "v", "mean": "m", "precision": [[2, 0], [0, 2]]}],
    "inference": {"initial": {"x": {"mean": {"csv": ")" + column + R"("}, "variance": 0.5}}}})";
  Model model = ParseModel(text);
  std::remove(csv.c_str());
  std::remove(column.c_str());
  const json normalised = json::parse(NormalisedModelJson(model));
  EXPECT_EQ(normalised["variables"][2],
            json::parse(R"({"name": "v", "observed": [0.25, -1.5], "dim": 2})"));
  EXPECT_EQ(normalised["variables"][3],
            json::parse(R"({"name": "y", "observed": [1.0, 2.0, 3.0], "shape": [3]})"));
  EXPECT_EQ(normalised["inference"],
            json::parse(R"({"initial": {"x": {"mean": [1.0, 2.0, 3.0], "variance": 0.5}},
                            "iterations": 100, "tolerance": 1e-8, "scheduler": "sequential",
                            "threads": 0, "algorithm": "vmp"})"));
  ExpectRoundTrip(model);
}

std::string Patched(const json& patch);  // the base model of the malformed cases, below

TEST(ModelJson, ResultPosteriorsStartTheModelWhereTheRunEnded) {
  // A result's "posteriors" are a valid "initial" block: loaded with it, the model starts at
  // the free energy its run ended at (to rounding: variances are written, precisions used).
  std::vector<std::pair<std::string, Model>> models;
  for (const char* name : {"coin.json", "gaussian_mean_precision.json", "linear_regression.json",
                           "gaussian_mixture.json"})
    models.emplace_back(name, LoadModel(ExamplePath(name)));
  models.emplace_back("learned HMM", ParseModel(LearnedHmmModel().dump()));
  for (auto& [what, model] : models) {
    SCOPED_TRACE(what);
    SchedulerOptions options = model.inference.options;
    options.max_iterations = std::min(options.max_iterations, 20);
    const Result result = SequentialScheduler(options).Run(model.graph);
    json document = json::parse(NormalisedModelJson(model));
    document["inference"]["initial"] = json::parse(ResultJson(model, result))["posteriors"];
    Model warm = ParseModel(document.dump());
    options.max_iterations = 1;
    options.order = warm.inference.options.order;
    const double start = SequentialScheduler(options).Run(warm.graph).initial_free_energy;
    EXPECT_NEAR(start, result.free_energy.back(), 1e-10 * std::abs(result.free_energy.back()));
  }
}

TEST(ModelJson, ResultPosteriorsAreCheckedAsInitialValues) {
  json hmm = LearnedHmmModel();
  auto error = [&](const json& initial) {
    json model = hmm;
    model["inference"]["initial"] = initial;
    return LoadError(model.dump());
  };
  EXPECT_EQ(error({{"x", json::array({{{"p", {1, 0, 0}}}})}}),
            "/inference/initial/x: expected an object of parameters or an array of 12 posteriors "
            "(shape [12]), found an array of 1");
  EXPECT_EQ(error({{"A", {{"alpha", {{2, 1, 1}, {1, 1, 1}, {1, 1, 2}}},
                          {"mean", {{0.5, 1.0 / 3, 0.25}, {0.25, 1.0 / 3, 0.25}, {0.25, 1.0 / 3, 0.6}}}}}}),
            "/inference/initial/A/mean: expected the mean the other parameters give, 0.5, found "
            "0.6 (entry 8)");
  EXPECT_EQ(LoadError(Patched({{"inference", {{"initial", {{"tau", {{"family", "Gamma"},
                                                                   {"shape", 3}, {"rate", 2},
                                                                   {"mean", 2}}}}}}}})),
            "/inference/initial/tau/mean: expected the mean the other parameters give, 1.5, "
            "found 2");
  json x = json::array();
  for (int t = 0; t < 12; ++t) x.push_back({{"family", "Categorical"}, {"p", {0.2, 0.3, 0.5}}});
  x[7] = {{"family", "Categorical"}, {"p", {0.2, 0.3}}};
  EXPECT_EQ(error({{"x", x}}), "/inference/initial/x/7/p: expected 3 numbers, found 2");
}

TEST(ModelJson, ALibDaiModelHasNoDocumentToWrite) {
  const Model model = ParseLibDaiFactorGraph("1\n\n1\n0\n2\n2\n0 0.5\n1 2\n", "tiny.fg");
  EXPECT_THAT([&] { NormalisedModelJson(model); },
              ::testing::ThrowsMessage<ModelError>(::testing::HasSubstr(
                  "the model was not read from a vfe-model/1 document")));
}

// ---- Malformed models ------------------------------------------------------------------------

/// A valid model with `patch` applied as a JSON merge patch (null removes a key).
std::string Patched(const json& patch) {
  json model = json::parse(R"({
    "format": "vfe-model/1",
    "variables": [
      {"name": "mu", "family": "Gaussian"},
      {"name": "tau", "family": "Gamma"},
      {"name": "y", "shape": [3], "observed": [1.0, 2.0, 3.0]}
    ],
    "factors": [
      {"node": "Gaussian", "out": "mu", "mean": 0.0, "precision": 0.01},
      {"node": "Gamma", "out": "tau", "shape": 1.0, "rate": 1.0},
      {"node": "Gaussian", "for": {"i": [0, 3]}, "out": "y[i]", "mean": "mu", "precision": "tau"}
    ]
  })");
  model.merge_patch(patch);
  return model.dump();
}

/// The base model with factor 2 (the likelihood) replaced.
std::string WithLikelihood(const std::string& factor) {
  json model = json::parse(Patched(json::object()));
  model["factors"][2] = json::parse(factor);
  return model.dump();
}

/// The base model with one more variable (and, optionally, a factor using it).
std::string WithVariable(const std::string& variable, const std::string& factor = "") {
  json model = json::parse(Patched(json::object()));
  model["variables"].push_back(json::parse(variable));
  if (!factor.empty()) model["factors"].push_back(json::parse(factor));
  return model.dump();
}

struct Malformed {
  std::string what;
  std::string model;
  std::string error;
};

TEST(ModelJson, TheBaseModelOfTheMalformedCasesLoads) {
  EXPECT_NO_THROW(ParseModel(Patched(json::object())));
  EXPECT_NO_THROW(ParseModel(
      WithLikelihood(R"({"node": "Gaussian", "out": "y", "mean": "mu", "precision": "tau"})")));
}

TEST(ModelJson, DocumentsNestedDeeperThan256LevelsAreRefusedAtThePointer) {
  // 255 arrays inside "description" (the document's object is level 1) reach the limit and
  // are read (then refused as not a string); 256 pass it, at the pointer of the 257th level.
  auto nested = [](int depth) {
    return "{\"format\": \"vfe-model/1\", \"description\": " + std::string(depth, '[') +
           std::string(depth, ']') + ", \"variables\": [], \"factors\": []}";
  };
  const std::string at_limit = testing::ErrorMessage<ModelError>([&] { ParseModel(nested(255)); });
  EXPECT_THAT(at_limit, ::testing::Not(::testing::HasSubstr("nested deeper")));
  EXPECT_THAT(at_limit, ::testing::HasSubstr("/description: expected"));
  std::string pointer = "/description";
  for (int k = 0; k < 255; ++k) pointer += "/0";
  EXPECT_EQ(testing::ErrorMessage<ModelError>([&] { ParseModel(nested(256)); }),
            pointer + ": nested deeper than 256 levels of arrays and objects (the most a "
                      "document may have)");
  // Keys are escaped in the pointer (RFC 6901: ~ as ~0, / as ~1).
  std::string keyed = "{\"a/b~\": " + std::string(300, '[') + std::string(300, ']') + "}";
  EXPECT_THAT(testing::ErrorMessage<ModelError>([&] { ParseModel(keyed); }),
              ::testing::HasSubstr("/a~1b~0/0/0"));
}

TEST(ModelJson, MalformedModelsGiveTheExactError) {
  const std::vector<Malformed> cases = {
      {"not JSON", "{\"format\": ",
       "/: not valid JSON: parse error at line 1, column 12: syntax error while parsing value - "
       "unexpected end of input; expected '[', '{', or a literal"},
      {"not an object", "[1, 2]",
       "/: expected a JSON object with \"format\", \"variables\" and \"factors\", found an array "
       "of 2"},
      {"wrong format", Patched({{"format", "vfe-model/2"}}),
       "/format: expected \"vfe-model/1\", found the string \"vfe-model/2\""},
      {"missing format", Patched({{"format", nullptr}}), "/: missing required key 'format'"},
      {"unknown top-level key", Patched({{"factor", json::array()}}),
       "/factor: unknown key 'factor' (did you mean 'factors'?); expected one of 'format', "
       "'description', 'variables', 'factors', 'factorisation', 'inference', 'predictions'"},
      {"empty variables", Patched({{"variables", json::array()}}),
       "/variables: expected a non-empty array of variables, found an array of 0"},
      {"variable without a name", WithVariable(R"({"family": "Gaussian"})"),
       "/variables/3: missing required key 'name'"},
      {"bad name", WithVariable(R"({"name": "2x", "family": "Gaussian"})"),
       "/variables/3/name: expected a name of letters, digits and '_' (not starting with a "
       "digit), found \"2x\""},
      {"duplicate name", WithVariable(R"({"name": "mu", "family": "Gaussian"})"),
       "/variables/3/name: the name 'mu' is already declared at /variables/0"},
      {"unknown family", WithVariable(R"({"name": "z", "family": "Gausian"})"),
       "/variables/3/family: unknown family \"Gausian\" (did you mean 'Gaussian'?); expected one "
       "of 'Gaussian', 'MvGaussian', 'Gamma', 'Wishart', 'Beta', 'Bernoulli', 'Categorical', "
       "'Dirichlet', 'MatrixDirichlet'"},
      {"hidden without family", WithVariable(R"({"name": "z"})"),
       "/variables/3: missing required key 'family' (a hidden variable needs one; an observed "
       "one needs 'observed')"},
      {"unknown variable key", WithVariable(R"({"name": "z", "family": "Gaussian", "shap": [2]})"),
       "/variables/3/shap: unknown key 'shap' (did you mean 'shape'?); expected one of 'name', "
       "'family', 'shape', 'dim', 'observed', 'fixed'"},
      {"zero shape", WithVariable(R"({"name": "z", "family": "Gaussian", "shape": [0]})"),
       "/variables/3/shape/0: expected a positive integer, found 0"},
      {"three-dimensional shape",
       WithVariable(R"({"name": "z", "family": "Gaussian", "shape": [2, 2, 2]})"),
       "/variables/3/shape: expected [N] or [N, M], found an array of 3"},
      {"dim of a scalar family", WithVariable(R"({"name": "z", "family": "Gamma", "dim": 2})"),
       "/variables/3/dim: expected 1 for a Gamma variable, found 2"},
      {"observed length vs shape",
       Patched({{"variables",
                 {{{"name", "mu"}, {"family", "Gaussian"}},
                  {{"name", "tau"}, {"family", "Gamma"}},
                  {{"name", "y"}, {"shape", {4}}, {"observed", {1, 2, 3}}}}}}),
       "/variables/2/observed: expected 4 values (shape [4]), found 3"},
      {"observed NaN",
       Patched({{"variables",
                 {{{"name", "mu"}, {"family", "Gaussian"}},
                  {{"name", "tau"}, {"family", "Gamma"}},
                  {{"name", "y"}, {"shape", {3}}, {"observed", {1, nullptr, 3}}}}}}),
       "/variables/2/observed/1: expected a finite number, found null (a missing value)"},
      {"observed string",
       Patched({{"variables",
                 {{{"name", "mu"}, {"family", "Gaussian"}},
                  {{"name", "tau"}, {"family", "Gamma"}},
                  {{"name", "y"}, {"shape", {3}}, {"observed", {1, "2", 3}}}}}}),
       "/variables/2/observed/1: expected a finite number, found the string \"2\""},
      {"missing CSV", WithVariable(R"({"name": "z", "observed": {"csv": "no_such_file.csv"}})"),
       "/variables/3/observed/csv: cannot read the CSV file './no_such_file.csv': no such file"},
      {"observed but unused", WithVariable(R"({"name": "z", "observed": 1.0})"),
       "/variables/3: observed variable 'z' is not used by any factor"},
      {"unknown node", WithLikelihood(R"({"node": "Gausian", "out": "y"})"),
       // Every registered node type is offered, in the registry's order.
       "/factors/2/node: unknown node type \"Gausian\" (did you mean 'Gaussian'?); expected one "
       "of " +
           JoinQuoted(NodeTypeNames())},
      {"missing argument", WithLikelihood(R"({"node": "Gaussian", "out": "y", "mean": "mu"})"),
       "/factors/2: missing required argument 'precision' (Gaussian takes 'out', 'mean', "
       "'precision')"},
      {"unknown argument key",
       WithLikelihood(
           R"({"node": "Gaussian", "out": "y", "mean": "mu", "precision": "tau", "sd": 1})"),
       "/factors/2/sd: unknown key 'sd'; expected one of 'node', 'name', 'for', 'gate', "
       "'components', 'out', 'mean', "
       "'precision'"},
      {"negative precision",
       WithLikelihood(R"({"node": "Gaussian", "out": "y", "mean": "mu", "precision": -1})"),
       "/factors/2/precision: expected a positive number or a Gamma variable, found -1"},
      {"non-symmetric precision matrix",
       WithVariable(R"({"name": "v", "dim": 2, "observed": [1, 2]})",
                    R"({"node": "MvGaussian", "out": "v", "mean": [0, 0],
                        "precision": [[1, 0.5], [0, 1]]})"),
       "/factors/3/precision: expected a symmetric precision matrix, found an asymmetric one"},
      {"ragged matrix",
       WithVariable(R"({"name": "v", "dim": 2, "observed": [1, 2]})",
                    R"({"node": "MvGaussian", "out": "v", "mean": [0, 0],
                        "precision": [[1, 0], [0]]})"),
       "/factors/3/precision/1: expected a row of 2 numbers, found an array of 1"},
      {"Gamma shape not positive",
       WithVariable(R"({"name": "s", "family": "Gamma"})",
                    R"({"node": "Gamma", "out": "s", "shape": 0, "rate": 1})"),
       "/factors/3/shape: expected a positive number, found 0"},
      {"unknown variable",
       WithLikelihood(R"({"node": "Gaussian", "out": "y", "mean": "muu", "precision": "tau"})"),
       "/factors/2/mean: unknown variable 'muu' (did you mean 'mu'?)"},
      {"index out of range",
       WithLikelihood(R"({"node": "Gaussian", "for": {"i": [0, 4]}, "out": "y[i]", "mean": "mu",
                          "precision": "tau"})"),
       "/factors/2/out: index 0 of \"y[i]\" is 3 at i=3, outside [0, 3) (shape of 'y' is [3])"},
      {"negative offset",
       WithLikelihood(R"({"node": "Gaussian", "for": {"i": [0, 3]}, "out": "y[i-1]", "mean": "mu",
                          "precision": "tau"})"),
       "/factors/2/out: index 0 of \"y[i-1]\" is -1 at i=0, outside [0, 3) (shape of 'y' is [3])"},
      {"unknown loop variable",
       WithLikelihood(R"({"node": "Gaussian", "for": {"i": [0, 3]}, "out": "y[j]", "mean": "mu",
                          "precision": "tau"})"),
       "/factors/2/out: \"y[j]\" uses 'j', which is not a loop variable of this factor (loops: "
       "'i')"},
      {"index without a loop",
       WithLikelihood(R"({"node": "Gaussian", "out": "y[i]", "mean": "mu", "precision": "tau"})"),
       "/factors/2/out: \"y[i]\" uses 'i', which is not a loop variable of this factor (it has no "
       "\"for\")"},
      {"too many indices",
       WithLikelihood(R"({"node": "Gaussian", "for": {"i": [0, 3]}, "out": "y[i][0]", "mean": "mu",
                          "precision": "tau"})"),
       "/factors/2/out: \"y[i][0]\" has 2 indices, but 'y' has shape [3]"},
      {"bad range",
       WithLikelihood(R"({"node": "Gaussian", "for": {"i": [3, 0]}, "out": "y[i]", "mean": "mu",
                          "precision": "tau"})"),
       "/factors/2/for/i: expected begin <= end, found [3, 0]"},
      {"range not integers",
       WithLikelihood(R"({"node": "Gaussian", "for": {"i": [0, 2.5]}, "out": "y[i]", "mean": "mu",
                          "precision": "tau"})"),
       "/factors/2/for/i/1: expected an integer, found 2.5"},
      {"malformed index",
       WithLikelihood(R"({"node": "Gaussian", "for": {"i": [0, 3]}, "out": "y[i*2]", "mean": "mu",
                          "precision": "tau"})"),
       "/factors/2/out: cannot read the index \"i*2\" in \"y[i*2]\": expected integers and loop "
       "variables joined by + or -"},
      {"constant as out",
       WithLikelihood(R"({"node": "Gaussian", "out": 1.0, "mean": "mu", "precision": "tau"})"),
       "/factors/2/out: expected a Gaussian variable, found 1"},
      {"wrong family at a slot",
       WithLikelihood(R"({"node": "Gaussian", "out": "y", "mean": "tau", "precision": 1})"),
       "/factors/2/mean: expected a finite number or a Gaussian variable, found 'tau' (Gamma)"},
      {"hidden variable with no factor", WithVariable(R"({"name": "z", "family": "Gaussian"})"),
       "/variables/3: variable 'z' is not connected to any factor"},
      {"inference: bad iterations", Patched({{"inference", {{"iterations", 0}}}}),
       "/inference/iterations: expected a positive integer, found 0"},
      {"inference: negative tolerance", Patched({{"inference", {{"tolerance", -1}}}}),
       "/inference/tolerance: expected a number >= 0, found -1"},
      {"inference: unknown scheduler", Patched({{"inference", {{"scheduler", "fast"}}}}),
       "/inference/scheduler: expected one of 'sequential', 'parallel', 'async', found the "
       "string \"fast\""},
      {"inference: order names observed", Patched({{"inference", {{"order", {"mu", "y"}}}}}),
       "/inference/order/1: 'y' is observed and has nothing to update"},
      {"inference: unknown key", Patched({{"inference", {{"iteration", 5}}}}),
       "/inference/iteration: unknown key 'iteration' (did you mean 'iterations'?); expected one "
       "of 'iterations', 'tolerance', 'scheduler', 'threads', 'algorithm', 'threshold', "
       "'damping', 'order', 'initial'"},
      {"initial: wrong family",
       Patched({{"inference", {{"initial", {{"tau", {{"family", "Gaussian"}}}}}}}}),
       "/inference/initial/tau/family: expected \"Gamma\" (the family of 'tau'), found the "
       "string \"Gaussian\""},
      {"initial: per-element count",
       Patched({{"inference", {{"initial", {{"mu", {{"mean", {1, 2}}, {"variance", 1}}}}}}}}),
       "/inference/initial/mu/mean: expected a number for all elements or an array of 1 (one per "
       "element), found an array of 2"},
      {"initial: negative rate",
       Patched({{"inference", {{"initial", {{"tau", {{"shape", 1}, {"rate", -2}}}}}}}}),
       "/inference/initial/tau: Gamma: rate must be > 0 and finite, got -2"},
      {"cluster of two variables",
       Patched({{"factorisation", json::array({json::array({"mu", "tau"})})}}),
       "/factorisation/0: expected one variable per cluster (the joint posterior over the "
       "elements of an array variable, e.g. [\"x\"]), found an array of 2; clusters of several "
       "variables are not supported yet"},
      {"variable in two clusters",
       Patched({{"factorisation", json::array({json::array({"mu"}), json::array({"mu"})})}}),
       "/factorisation/1/0: variable 'mu' is already in the cluster at /factorisation/0; a "
       "variable belongs to one cluster"},
      {"cluster of an observed variable",
       Patched({{"factorisation", json::array({json::array({"y"})})}}),
       "/factorisation/0/0: expected a hidden variable, found the observed variable 'y'"},
  };
  EXPECT_GE(cases.size(), 30u);
  for (const Malformed& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string error = LoadError(c.model);
    EXPECT_EQ(error, c.error);
  }
}

TEST(ModelJson, ErrorsFromTheGraphNameThePointerTheFactorAndTheVariable) {
  // A factor that connects one hidden variable twice: the arguments are each of a family the
  // node takes, and the graph finds the double connection when it is finalised.
  auto with_prior_of_mu = [](const std::string& factor) {
    json model = json::parse(Patched(json::object()));
    model["factors"][0] = json::parse(factor);
    return model.dump();
  };
  EXPECT_EQ(LoadError(with_prior_of_mu(
                R"({"node": "Gaussian", "name": "prior", "out": "mu", "mean": "mu", "precision": 1})")),
            "/factors/0: factor 'prior' (Gaussian): variable 'mu' is connected to both 'out' and "
            "'mean' of one factor (a factor must see distinct variables)");
  EXPECT_EQ(LoadError(with_prior_of_mu(
                R"({"node": "Gaussian", "out": "mu", "mean": "mu", "precision": 1})")),
            "/factors/0 (Gaussian): variable 'mu' is connected to both 'out' and 'mean' of one "
            "factor (a factor must see distinct variables)");
}

// ---- The solver of a cluster -----------------------------------------------------------------

/// examples/tracking.json with `factorisation` in place of its [["x"]].
Model TrackingWithFactorisation(const json& factorisation) {
  std::ifstream in(ExamplePath("tracking.json"));
  json document = json::parse(in);
  EXPECT_EQ(document["factorisation"], json::parse(R"([["x"]])"));
  document["factorisation"] = factorisation;
  return ParseModel(document.dump(), ExamplePath("."));
}

TEST(ModelJson, ParallelScanSolverGivesTheTrackingPosteriorsOfTheSequentialSolver) {
  Model listed = TrackingWithFactorisation(json::parse(R"([["x"]])"));
  Model sequential =
      TrackingWithFactorisation(json::parse(R"([{"variables": ["x"], "solver": "sequential"}])"));
  Model scan = TrackingWithFactorisation(
      json::parse(R"([{"variables": ["x"], "solver": "parallel_scan"}])"));
  const Result by_list = SequentialScheduler(listed.inference.options).Run(listed.graph);
  const Result by_sequential =
      SequentialScheduler(sequential.inference.options).Run(sequential.graph);
  const Result by_scan = SequentialScheduler(scan.inference.options).Run(scan.graph);
  ASSERT_TRUE(by_list.converged());
  ASSERT_TRUE(by_scan.converged());
  // "sequential" is the default: the list form, bit for bit.
  EXPECT_EQ(by_sequential.free_energy, by_list.free_energy);

  // The same free energy after every sweep they share, and at the end.
  const size_t shared = std::min(by_list.free_energy.size(), by_scan.free_energy.size());
  ASSERT_GT(shared, 2u);
  for (size_t k = 0; k < shared; ++k)
    EXPECT_NEAR(by_scan.free_energy[k], by_list.free_energy[k],
                1e-9 * std::abs(by_list.free_energy[k]))
        << "sweep " << k;
  EXPECT_NEAR(by_scan.free_energy.back(), by_list.free_energy.back(),
              1e-9 * std::abs(by_list.free_energy.back()));

  // The same posteriors: every state and the noise precision.
  const Variable x_list = listed.graph.Find("x");
  const Variable x_scan = scan.graph.Find("x");
  ASSERT_EQ(x_list.size(), 2000u);
  for (size_t t = 0; t < x_list.size(); ++t) {
    const MvGaussian a = listed.graph.Posterior<MvGaussian>(x_list[t]);
    const MvGaussian b = scan.graph.Posterior<MvGaussian>(x_scan[t]);
    ASSERT_TRUE(MatrixNear(b.mean(), a.mean(), 1e-9, Scale::kRelative, Norm::kFrobenius))
        << "x[" << t << "] mean";
    ASSERT_TRUE(MatrixNear(b.covariance(), a.covariance(), 1e-9, Scale::kRelative,
                           Norm::kFrobenius))
        << "x[" << t << "] covariance";
  }
  const Wishart r_list = listed.graph.Posterior<Wishart>(listed.graph.Find("R"));
  const Wishart r_scan = scan.graph.Posterior<Wishart>(scan.graph.Find("R"));
  EXPECT_NEAR(r_scan.dof(), r_list.dof(), 1e-9 * r_list.dof());
  EXPECT_TRUE(
      MatrixNear(r_scan.scale(), r_list.scale(), 1e-9, Scale::kRelative, Norm::kFrobenius));
}

/// Four scalar Gaussian states x, x[0] – x[1] – x[2] joined by a "chain" plate and measured
/// with a learned noise precision tau, with `extra` as one more factor and `factorisation`.
std::string GaussianStates(const json& extra, const json& factorisation) {
  json model = json::parse(R"({
    "format": "vfe-model/1",
    "variables": [
      {"name": "mu", "family": "Gaussian"},
      {"name": "x", "family": "Gaussian", "shape": [4]},
      {"name": "g", "family": "Gamma", "shape": [2]},
      {"name": "tau", "family": "Gamma"},
      {"name": "y", "shape": [4], "observed": [0.5, 1.0, 0.2, -0.3]}
    ],
    "factors": [
      {"node": "Gaussian", "out": "mu", "mean": 0.0, "precision": 1.0},
      {"node": "Gaussian", "out": "x[0]", "mean": "mu", "precision": 1.0},
      {"node": "LinearGaussian", "name": "chain", "for": {"t": [1, 3]}, "out": "x[t]",
       "in": "x[t-1]", "matrix": [[1]], "precision": 2.0},
      {"node": "Gamma", "for": {"k": [0, 2]}, "out": "g[k]", "shape": 1.0, "rate": 1.0},
      {"node": "Gamma", "out": "tau", "shape": 1.0, "rate": 1.0},
      {"node": "Gaussian", "for": {"t": [0, 4]}, "out": "y[t]", "mean": "x[t]",
       "precision": "tau"}
    ]
  })");
  model["factors"].push_back(extra);
  model["factorisation"] = factorisation;
  return model.dump();
}

/// x[3] from x[1]: x[1] has three neighbours, so the cluster is a tree but not a chain.
const char kBranch[] =
    R"({"node": "LinearGaussian", "name": "branch", "out": "x[3]", "in": "x[1]",
        "matrix": [[1]], "precision": 2.0})";
/// x[3] from its own prior: the cluster is two chains, x[0..2] and x[3].
const char kSeparate[] = R"({"node": "Gaussian", "out": "x[3]", "mean": 0.0, "precision": 1.0})";

TEST(ModelJson, ClusterObjectsChooseTheSolverAndRefuseWhatItCannotSolve) {
  using ::testing::HasSubstr;
  using ::testing::Not;
  using ::testing::StartsWith;
  const json branch = json::parse(kBranch);
  const json separate = json::parse(kSeparate);
  // The sequential solver takes the tree, written either way.
  EXPECT_NO_THROW(ParseModel(GaussianStates(branch, json::parse(R"([["x"]])"))));
  EXPECT_NO_THROW(ParseModel(GaussianStates(
      branch, json::parse(R"([["mu"], {"variables": ["x"], "solver": "sequential"}])"))));
  EXPECT_NO_THROW(ParseModel(GaussianStates(branch, json::parse(R"([{"variables": ["x"]}])"))));
  // The parallel scan takes one chain only; the error is at the entry that chose it (entry 1:
  // the list before it is a mean-field variable) and speaks of the JSON solver names.
  const std::string not_a_chain = LoadError(GaussianStates(
      branch, json::parse(R"([["mu"], {"variables": ["x"], "solver": "parallel_scan"}])")));
  EXPECT_THAT(not_a_chain,
              StartsWith("/factorisation/1: cluster 'x' (parallel-scan solver, which needs one "
                         "chain): x[1] is joined to 3 other elements"));
  EXPECT_THAT(not_a_chain, HasSubstr("not a chain"));
  EXPECT_THAT(not_a_chain, Not(HasSubstr("ClusterSolver")));
  const std::string two_chains = LoadError(GaussianStates(
      separate, json::parse(R"([{"variables": ["x"], "solver": "parallel_scan"}])")));
  EXPECT_THAT(two_chains,
              StartsWith("/factorisation/0: cluster 'x' (parallel-scan solver, which needs one "
                         "chain): "));
  EXPECT_THAT(two_chains, HasSubstr("x[3]"));
  EXPECT_THAT(two_chains, HasSubstr("several separate chains"));
  // An error of AddCluster is at the variable's name, as in the list form.
  EXPECT_EQ(LoadError(GaussianStates(
                branch, json::parse(R"([{"variables": ["g"], "solver": "parallel_scan"}])"))),
            "/factorisation/0/variables/0: AddCluster: variable 'g' is Gamma; a cluster holds "
            "Categorical, Gaussian or MvGaussian elements");
}

TEST(ModelJson, MalformedClusterObjectsGiveTheExactError) {
  const json branch = json::parse(kBranch);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"([{"variables": ["x"], "solvr": "parallel_scan"}])",
       "/factorisation/0/solvr: unknown key 'solvr' (did you mean 'solver'?); expected one of "
       "'variables', 'solver'"},
      {R"([["mu"], {"variables": ["x"], "solver": "parallel_scn"}])",
       "/factorisation/1/solver: unknown solver \"parallel_scn\" (did you mean "
       "'parallel_scan'?); expected one of 'sequential', 'parallel_scan'"},
      {R"([{"variables": ["x"], "solver": "fast"}])",
       "/factorisation/0/solver: unknown solver \"fast\"; expected one of 'sequential', "
       "'parallel_scan'"},
      {R"([{"variables": ["x"], "solver": 2}])",
       "/factorisation/0/solver: expected a solver name ('sequential', 'parallel_scan'), found "
       "2"},
      {R"([{"variables": ["x"], "solver": ["parallel_scan"]}])",
       "/factorisation/0/solver: expected a solver name ('sequential', 'parallel_scan'), found "
       "an array of 1"},
      {R"([{"solver": "parallel_scan"}])", "/factorisation/0: missing required key 'variables'"},
      {R"([3])",
       "/factorisation/0: expected a list of variable names or an object {\"variables\": [...], "
       "\"solver\": ...}, found 3"},
      {R"({"variables": ["x"], "solver": "parallel_scan"})",
       "/factorisation: expected an array of clusters (lists of variable names, or objects "
       "{\"variables\": [...], \"solver\": ...}), found an object"},
      // The rules of the list form, one level down.
      {R"([{"variables": []}])",
       "/factorisation/0/variables: expected a list of variable names, found an array of 0"},
      {R"([{"variables": "x"}])",
       "/factorisation/0/variables: expected a list of variable names, found the string \"x\""},
      {R"([{"variables": [3]}])",
       "/factorisation/0/variables/0: expected a variable name, found 3"},
      {R"([{"variables": ["xx"]}])",
       "/factorisation/0/variables/0: unknown variable 'xx' (did you mean 'x'?)"},
      {R"([{"variables": ["y"], "solver": "sequential"}])",
       "/factorisation/0/variables/0: expected a hidden variable, found the observed variable "
       "'y'"},
      {R"([["x"], {"variables": ["x"], "solver": "parallel_scan"}])",
       "/factorisation/1/variables/0: variable 'x' is already in the cluster at "
       "/factorisation/0; a variable belongs to one cluster"},
      {R"([{"variables": ["x", "mu"]}])",
       "/factorisation/0/variables: expected one variable per cluster (the joint posterior over "
       "the elements of an array variable, e.g. [\"x\"]), found an array of 2; clusters of "
       "several variables are not supported yet"},
  };
  for (const auto& [factorisation, expected] : cases) {
    SCOPED_TRACE(factorisation);
    EXPECT_EQ(LoadError(GaussianStates(branch, json::parse(factorisation))), expected);
  }
}

TEST(ModelJson, ClusterObjectsRoundTripThroughTheNormalisedDocument) {
  const json factorisation = json::parse(R"([{"variables": ["x"], "solver": "parallel_scan"}])");
  Model model = TrackingWithFactorisation(factorisation);
  EXPECT_EQ(json::parse(NormalisedModelJson(model))["factorisation"], factorisation);
  ExpectRoundTrip(model);
  // The solver survives in the normalised document of a small chain x[0] – … – x[3]: with its
  // last link x[2] – x[3] moved to x[1] – x[3] (a tree the sequential solver takes), that
  // document is refused as the parallel scan refuses a tree.
  const json link = json::parse(R"({"node": "LinearGaussian", "out": "x[3]", "in": "x[2]",
                                    "matrix": [[1]], "precision": 2.0})");
  Model chain = ParseModel(GaussianStates(link, factorisation));
  ExpectRoundTrip(chain);
  json normalised = json::parse(NormalisedModelJson(chain));
  EXPECT_EQ(normalised["factorisation"], factorisation);
  ASSERT_EQ(normalised["factors"].back(), link);
  normalised["factors"].back() = json::parse(kBranch);
  EXPECT_THAT(LoadError(normalised.dump()),
              ::testing::StartsWith("/factorisation/0: cluster 'x' (parallel-scan solver"));
}

}  // namespace
}  // namespace vfe
