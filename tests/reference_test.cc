// The BayesPy reference cases (tests/data/reference/bayespy): same data, priors, initial q
// (the priors), update order and stopping rule must give the same lower-bound trace, number
// of sweeps and posteriors.

#include <gtest/gtest.h>

#include <Eigen/LU>
#include <cmath>

#include "tests/testing/expect.h"
#include "tests/testing/reference.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using nlohmann::json;

/// Runs with BayesPy's stopping rule (relative change < 1e-8 from the second sweep).
Result RunLikeBayesPy(FactorGraph& graph, std::vector<Variable> order) {
  SchedulerOptions options;
  options.tolerance = 1e-8;
  options.max_iterations = 1000;
  options.order = std::move(order);
  return SequentialScheduler(options).Run(graph);
}


TEST(BayesPyReference, GaussianMeanPrecisionTraceAndPosteriorsMatch) {
  const json data = testing::LoadReference("bayespy/gauss_N1000.json");
  const json expected = testing::LoadReference("bayespy/case1_gaussian_N1000.result.json");
  const json& model = data["model"];

  FactorGraph graph;
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  const Variable y = graph.AddObserved("y", data["y"].get<std::vector<double>>());
  graph.AddGaussian(mu, model["mu_prior_mean"].get<double>(),
                    model["mu_prior_precision"].get<double>());
  graph.AddGamma(tau, model["tau_prior_shape"].get<double>(),
                 model["tau_prior_rate"].get<double>());
  graph.AddGaussian(y, mu, tau);
  graph.Finalize();

  // BayesPy's bound before any update, with q at the priors.
  Scratch scratch = graph.MakeScratch();
  EXPECT_RELATIVE_NEAR(-graph.FreeEnergy(scratch), expected["lower_bound_at_init"].get<double>(),
                       1e-9);

  const Result result = RunLikeBayesPy(graph, {mu, tau});
  testing::ExpectBayesPyTrace(result, expected);

  const json& q = expected["posterior"];
  const Gaussian q_mu = graph.Posterior<Gaussian>(mu);
  const Gamma q_tau = graph.Posterior<Gamma>(tau);
  EXPECT_RELATIVE_NEAR(q_mu.mean(), q["mu"]["mean"].get<double>(), 1e-8);
  EXPECT_RELATIVE_NEAR(q_mu.variance(), q["mu"]["variance"].get<double>(), 1e-8);
  EXPECT_RELATIVE_NEAR(q_tau.shape(), q["tau"]["shape"].get<double>(), 1e-8);
  EXPECT_RELATIVE_NEAR(q_tau.rate(), q["tau"]["rate"].get<double>(), 1e-8);
  EXPECT_RELATIVE_NEAR(q_tau.mean_log(), q["tau"]["E_log"].get<double>(), 1e-8);

  // The per-node terms of the bound: the likelihood plate's is −U, the priors' are −KL.
  const FactorGraph::FreeEnergyTerms terms = graph.FreeEnergyParts(scratch);
  const json& final_terms = expected["trace"]["bound_terms_final"];
  EXPECT_RELATIVE_NEAR(-terms.plate_energy[2], final_terms["y"].get<double>(), 1e-9);
}

TEST(BayesPyReference, LinearRegressionTraceAndPosteriorsMatch) {
  const json data = testing::LoadReference("bayespy/linreg_N10000_D10.json");
  const json expected = testing::LoadReference("bayespy/case2_linreg_N10000_D10.result.json");
  const json& model = data["model"];
  const int n = data["N"], d = data["D"];
  Matrix design(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) design(i, j) = data["X"][i][j].get<double>();

  FactorGraph graph;
  const Variable w = graph.AddVariable("w", Family::kMvGaussian, d);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  const Variable y = graph.AddObserved("y", data["y"].get<std::vector<double>>());
  graph.AddMvGaussian(w, Vector(Vector::Constant(d, model["w_prior_mean"].get<double>())),
                      Matrix(model["w_prior_precision"].get<double>() * Matrix::Identity(d, d)));
  graph.AddGamma(tau, model["tau_prior_shape"].get<double>(),
                 model["tau_prior_rate"].get<double>());
  graph.AddLinearRegression(y, w, design, tau);
  graph.Finalize();

  Scratch scratch = graph.MakeScratch();
  EXPECT_RELATIVE_NEAR(-graph.FreeEnergy(scratch), expected["lower_bound_at_init"].get<double>(),
                       1e-9);
  const Result result = RunLikeBayesPy(graph, {w, tau});
  testing::ExpectBayesPyTrace(result, expected);

  const json& q = expected["posterior"];
  const MvGaussian q_w = graph.Posterior<MvGaussian>(w);
  const Vector mean = q_w.mean();
  const Matrix covariance = q_w.covariance();
  for (int i = 0; i < d; ++i) {
    EXPECT_RELATIVE_NEAR(mean[i], q["w"]["mean"][i].get<double>(), 1e-8);
    for (int j = 0; j < d; ++j) {
      // Off-diagonal covariances are ~1e-7 of the diagonal: compare them on its scale.
      EXPECT_NEAR(covariance(i, j), q["w"]["covariance"][i][j].get<double>(),
                  1e-8 * q["w"]["covariance"][i][i].get<double>())
          << "(" << i << "," << j << ")";
    }
  }
  const Gamma q_tau = graph.Posterior<Gamma>(tau);
  EXPECT_RELATIVE_NEAR(q_tau.shape(), q["tau"]["shape"].get<double>(), 1e-8);
  EXPECT_RELATIVE_NEAR(q_tau.rate(), q["tau"]["rate"].get<double>(), 1e-8);
}

TEST(BayesPyReference, GaussianMixtureTraceAndPosteriorsMatch) {
  const json data = testing::LoadReference("bayespy/gmm_N10000.json");
  const json expected = testing::LoadReference("bayespy/case3_gmm_N10000.result.json");
  const json& model = data["model"];
  const int n = data["N"], k = model["K"], d = model["D"];
  Matrix points(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) points(i, j) = data["y"][i][j].get<double>();
  Matrix inverse_scale(d, d);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j)
      inverse_scale(i, j) = model["wishart_prior_inverse_scale"][i][j].get<double>();
  const std::vector<double> m0 = model["mean_prior_mean"];

  FactorGraph graph;
  const Variable mu = graph.AddVariableArray("mu", Family::kMvGaussian, {size_t(k)}, d);
  const Variable lambda = graph.AddVariableArray("Lambda", Family::kWishart, {size_t(k)}, d);
  const Variable alpha = graph.AddVariable("alpha", Family::kDirichlet, k);
  const Variable z = graph.AddVariableArray("z", Family::kCategorical, {size_t(n)}, k);
  graph.AddMvGaussian(mu, Vector(Eigen::Map<const Vector>(m0.data(), d)),
                      Matrix(model["mean_prior_precision"].get<double>() * Matrix::Identity(d, d)));
  // BayesPy's Wishart(n, V) has the inverse scale V: our scale is V⁻¹.
  graph.AddWishart(lambda, model["wishart_prior_dof"].get<double>(), inverse_scale.inverse());
  graph.AddDirichlet(alpha, Vector(Vector::Constant(k, model["dirichlet_prior_concentration"])));
  graph.AddCategorical(z, alpha);
  graph.AddGaussianMixture(graph.AddObservedRows("y", points), z, mu, lambda);
  graph.Finalize();
  const std::vector<int> labels = data["init"]["labels0"];
  for (int i = 0; i < n; ++i) {
    Vector one_hot = Vector::Zero(k);
    one_hot[labels[i]] = 1.0;
    graph.SetPosterior(z[i], Categorical(one_hot));
  }

  const Result result = RunLikeBayesPy(graph, {mu, lambda, alpha, z});
  const std::vector<double> bound = expected["trace"]["lower_bound"];
  ASSERT_EQ(result.iterations, static_cast<int>(bound.size()));
  EXPECT_TRUE(result.converged());
  for (size_t i = 0; i < bound.size(); ++i)
    EXPECT_RELATIVE_NEAR(-result.free_energy[i], bound[i], 1e-8) << "sweep " << i + 1;

  const json& q = expected["posterior"];
  const Vector concentration = graph.Posterior<Dirichlet>(alpha).alpha();
  for (int c = 0; c < k; ++c) {
    SCOPED_TRACE("component " + std::to_string(c));
    EXPECT_RELATIVE_NEAR(concentration[c], q["alpha"]["concentration"][c].get<double>(), 1e-7);
    const Vector mean = graph.Posterior<MvGaussian>(mu[c]).mean();
    const Wishart precision = graph.Posterior<Wishart>(lambda[c]);
    EXPECT_RELATIVE_NEAR(precision.dof(), q["Lambda"]["dof_n"][c].get<double>(), 1e-7);
    for (int i = 0; i < d; ++i) {
      EXPECT_NEAR(mean[i], q["mu"]["mean"][c][i].get<double>(), 1e-7);
      for (int j = 0; j < d; ++j)
        EXPECT_NEAR(precision.mean()(i, j), q["Lambda"]["E_Lambda"][c][i][j].get<double>(),
                    1e-7 * std::abs(q["Lambda"]["E_Lambda"][c][i][i].get<double>()));
    }
  }
}

TEST(BayesPyReference, GaussianMillionPointDataMatchesGeneratorStatistics) {
  // The benchmark's data: our generator must reproduce the reference's sums.
  const json data = testing::LoadReference("bayespy/gauss_N1000000.json");
  const json& generator = data["generator"];
  const std::vector<double> y =
      SplitMixNormals(generator["seed"].get<uint64_t>(), data["N"].get<size_t>(),
                      generator["mean"].get<double>(), generator["sd"].get<double>());
  double sum = 0.0, sum2 = 0.0;
  for (double v : y) {
    sum += v;
    sum2 += v * v;
  }
  EXPECT_RELATIVE_NEAR(sum, data["stats"]["sum_y"].get<double>(), 1e-9);
  EXPECT_RELATIVE_NEAR(sum2, data["stats"]["sum_y2"].get<double>(), 1e-9);
  const std::vector<double> first = data["stats"]["first_values"];
  for (size_t i = 0; i < first.size(); ++i) EXPECT_DOUBLE_EQ(y[i], first[i]);
}

}  // namespace
}  // namespace vfe
