// Models from JSON: the same graph as the C++ API (bitwise equal free energies), loops with
// offsets and nesting, CSV data, starting posteriors, the result format, the BayesPy
// reference cases, and malformed models with the exact error each must give.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/testing/reference.h"
#include "vfe/graph/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using nlohmann::json;

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

/// The error text ParseModel gives for `model`, or "" if it loads.
std::string LoadError(const std::string& model) {
  try {
    ParseModel(model);
  } catch (const ModelError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not a ModelError: ") + e.what();
  }
  return "";
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
  auto error_for = [&](const std::string& content) {
    std::ofstream(csv) << content;
    const std::string error = LoadError(R"({"format": "vfe-model/1",
      "variables": [{"name": "mu", "family": "Gaussian"},
                    {"name": "y", "observed": {"csv": ")" + csv + R"("}}],
      "factors": [{"node": "Gaussian", "out": "y", "mean": "mu", "precision": 1}]})");
    std::remove(csv.c_str());
    return error;
  };
  EXPECT_EQ(error_for("y\n1.5\n2\nx\n"),
            "/variables/1/observed/csv: CSV '" + csv + "' line 4: expected numbers, found 'x'");
  EXPECT_EQ(error_for("1,2\n3\n"),
            "/variables/1/observed/csv: CSV '" + csv + "' line 2: expected 2 columns, found 1");
  EXPECT_EQ(error_for("y\n"), "/variables/1/observed/csv: CSV '" + csv + "' has no data rows");
  EXPECT_EQ(error_for("y\n1\n\n2\n"), "");  // blank lines are skipped
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
            "/factors/0 (Categorical): constant p: expected probabilities that sum to 1, got "
            "[0.5 0.6] (sum 1.1)");
  EXPECT_EQ(LoadError(R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "observed": [0, 1]}],
    "factors": [{"node": "Bernoulli", "out": "x", "p": 1.5}]})"),
            "/factors/0/p: expected a probability in (0, 1) or a Beta variable, found 1.5");
  EXPECT_EQ(LoadError(R"({"format": "vfe-model/1",
    "variables": [{"name": "w", "family": "Dirichlet", "dim": 2}],
    "factors": [{"node": "Dirichlet", "out": "w", "alpha": [1, -1]}]})"),
            "/factors/0 (Dirichlet): Dirichlet: alpha[1] must be > 0 and finite, got -1");
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

// ---- The BayesPy reference cases from JSON -----------------------------------------------------


TEST(ModelJson, BayesPyGaussianCaseFromJsonMatchesTheReference) {
  const json data = testing::LoadReference("bayespy/gauss_N1000.json");
  const json expected = testing::LoadReference("bayespy/case1_gaussian_N1000.result.json");
  VFE_REQUIRE_REFERENCE(data, "bayespy/gauss_N1000.json");
  VFE_REQUIRE_REFERENCE(expected, "bayespy/case1_gaussian_N1000.result.json");
  const json& m = data["model"];
  const json model_json = {
      {"format", "vfe-model/1"},
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
  Model model = ParseModel(model_json.dump());
  const Result result = SequentialScheduler(model.inference.options).Run(model.graph);
  testing::ExpectBayesPyTrace(result, expected);
  EXPECT_NEAR(model.graph.Posterior<Gaussian>(model.graph.Find("mu")).mean(),
              expected["posterior"]["mu"]["mean"].get<double>(),
              1e-8 * std::abs(expected["posterior"]["mu"]["mean"].get<double>()));
}

TEST(ModelJson, BayesPyRegressionCaseFromJsonMatchesTheReference) {
  const json data = testing::LoadReference("bayespy/linreg_N10000_D10.json");
  const json expected = testing::LoadReference("bayespy/case2_linreg_N10000_D10.result.json");
  VFE_REQUIRE_REFERENCE(data, "bayespy/linreg_N10000_D10.json");
  VFE_REQUIRE_REFERENCE(expected, "bayespy/case2_linreg_N10000_D10.result.json");
  const json& m = data["model"];
  const int n = data["N"], d = data["D"];
  json mean = json::array(), precision = json::array();
  for (int i = 0; i < d; ++i) {
    mean.push_back(m["w_prior_mean"]);
    json row = json::array();
    for (int j = 0; j < d; ++j) row.push_back(i == j ? m["w_prior_precision"].get<double>() : 0.0);
    precision.push_back(row);
  }
  const json model_json = {
      {"format", "vfe-model/1"},
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
  Model model = ParseModel(model_json.dump());
  const Result result = SequentialScheduler(model.inference.options).Run(model.graph);
  testing::ExpectBayesPyTrace(result, expected);
  const Vector w = model.graph.Posterior<MvGaussian>(model.graph.Find("w")).mean();
  for (int i = 0; i < d; ++i) {
    const double e = expected["posterior"]["w"]["mean"][i];
    EXPECT_NEAR(w[i], e, 1e-8 * std::abs(e));
  }
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
  EXPECT_EQ(LoadError(Patched(json::object())), "");
  EXPECT_EQ(LoadError(WithLikelihood(
                R"({"node": "Gaussian", "out": "y", "mean": "mu", "precision": "tau"})")),
            "");
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
       "'description', 'variables', 'factors', 'factorisation', 'inference'"},
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
       "'Dirichlet'"},
      {"hidden without family", WithVariable(R"({"name": "z"})"),
       "/variables/3: missing required key 'family' (a hidden variable needs one; an observed "
       "one needs 'observed')"},
      {"unknown variable key", WithVariable(R"({"name": "z", "family": "Gaussian", "shap": [2]})"),
       "/variables/3/shap: unknown key 'shap' (did you mean 'shape'?); expected one of 'name', "
       "'family', 'shape', 'dim', 'observed'"},
      {"zero shape", WithVariable(R"({"name": "z", "family": "Gaussian", "shape": [0]})"),
       "/variables/3/shape/0: expected a positive integer, found 0"},
      {"three-dimensional shape",
       WithVariable(R"({"name": "z", "family": "Gaussian", "shape": [2, 2, 2]})"),
       "/variables/3/shape: expected [N] or [N, M], found an array of 3"},
      {"dim of a scalar family", WithVariable(R"({"name": "z", "family": "Gamma", "dim": 2})"),
       "/variables/3/dim: expected 1 for a Gamma variable, found 2"},
      {"observed length vs shape", Patched({{"variables", {{{"name", "mu"}, {"family", "Gaussian"}},
                                                           {{"name", "tau"}, {"family", "Gamma"}},
                                                           {{"name", "y"}, {"shape", {4}},
                                                            {"observed", {1, 2, 3}}}}}}),
       "/variables/2/observed: expected 4 values (shape [4]), found 3"},
      {"observed NaN", Patched({{"variables", {{{"name", "mu"}, {"family", "Gaussian"}},
                                               {{"name", "tau"}, {"family", "Gamma"}},
                                               {{"name", "y"}, {"shape", {3}},
                                                {"observed", {1, nullptr, 3}}}}}}),
       "/variables/2/observed/1: expected a finite number, found null (a missing value)"},
      {"observed string", Patched({{"variables", {{{"name", "mu"}, {"family", "Gaussian"}},
                                                  {{"name", "tau"}, {"family", "Gamma"}},
                                                  {{"name", "y"}, {"shape", {3}},
                                                   {"observed", {1, "2", 3}}}}}}),
       "/variables/2/observed/1: expected a finite number, found the string \"2\""},
      {"missing CSV", WithVariable(R"({"name": "z", "observed": {"csv": "no_such_file.csv"}})"),
       "/variables/3/observed/csv: cannot read the CSV file './no_such_file.csv'"},
      {"observed but unused", WithVariable(R"({"name": "z", "observed": 1.0})"),
       "/variables/3: observed variable 'z' is not used by any factor"},
      {"unknown node", WithLikelihood(R"({"node": "Gausian", "out": "y"})"),
       "/factors/2/node: unknown node type \"Gausian\" (did you mean 'Gaussian'?); expected one "
       "of 'Gaussian', 'MvGaussian', 'LinearGaussian', 'Gamma', 'Wishart', 'Beta', 'Dirichlet', "
       "'Bernoulli', 'Categorical', 'GaussianMixture', 'Transition', 'Potential'"},
      {"missing argument", WithLikelihood(R"({"node": "Gaussian", "out": "y", "mean": "mu"})"),
       "/factors/2: missing required key 'precision' (Gaussian takes 'out', 'mean', "
       "'precision')"},
      {"unknown argument key",
       WithLikelihood(
           R"({"node": "Gaussian", "out": "y", "mean": "mu", "precision": "tau", "sd": 1})"),
       "/factors/2/sd: unknown key 'sd'; expected one of 'node', 'name', 'for', 'out', 'mean', "
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
       "/factors/2/out: expected a variable name, found 1"},
      {"wrong family at a slot",
       WithLikelihood(R"({"node": "Gaussian", "out": "y", "mean": "tau", "precision": 1})"),
       "/factors/2 (Gaussian): 'mean' expects a Gaussian variable, got variable 'tau' (Gamma)"},
      {"hidden variable with no factor", WithVariable(R"({"name": "z", "family": "Gaussian"})"),
       "/variables/3: variable 'z' is not connected to any factor"},
      {"inference: bad iterations", Patched({{"inference", {{"iterations", 0}}}}),
       "/inference/iterations: expected a positive integer, found 0"},
      {"inference: negative tolerance", Patched({{"inference", {{"tolerance", -1}}}}),
       "/inference/tolerance: expected a number >= 0, found -1"},
      {"inference: unknown scheduler", Patched({{"inference", {{"scheduler", "fast"}}}}),
       "/inference/scheduler: expected \"sequential\" or \"parallel\", found the "
       "string \"fast\""},
      {"inference: order names observed", Patched({{"inference", {{"order", {"mu", "y"}}}}}),
       "/inference/order/1: 'y' is observed and has nothing to update"},
      {"inference: unknown key", Patched({{"inference", {{"iteration", 5}}}}),
       "/inference/iteration: unknown key 'iteration' (did you mean 'iterations'?); expected one "
       "of 'iterations', 'tolerance', 'scheduler', 'threads', 'order', 'initial'"},
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
      {"structured factorisation", Patched({{"factorisation", json::array({json::array({"mu", "tau"})})}}),
       "/factorisation/0: structured (joint) factorisations are not supported in this version; "
       "expected mean field (one single-element variable per list), found an array of 2 naming "
       "'mu'"},
  };
  EXPECT_GE(cases.size(), 30u);
  for (const Malformed& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string error = LoadError(c.model);
    EXPECT_EQ(error, c.error);
  }
}

TEST(ModelJson, ErrorsFromTheGraphNameThePointerTheFactorAndTheVariable) {
  EXPECT_EQ(
      LoadError(WithLikelihood(
          R"({"node": "Gaussian", "name": "lik", "out": "y", "mean": "tau", "precision": "tau"})")),
      "/factors/2: factor 'lik' (Gaussian): variable 'tau' is connected to both 'mean' and "
      "'precision' of one factor (a factor must see distinct variables)");
  EXPECT_EQ(LoadError(WithLikelihood(
                R"({"node": "Gaussian", "out": "y", "mean": "tau", "precision": "tau"})")),
            "/factors/2 (Gaussian): variable 'tau' is connected to both 'mean' and 'precision' "
            "of one factor (a factor must see distinct variables)");
}

}  // namespace
}  // namespace vfe
