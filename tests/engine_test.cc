// The engine as a whole: exact posteriors and evidence on conjugate models, the bound on
// models where mean field is not exact, the free energy never rising under any single
// update on random models, F against Monte Carlo, sweeps without allocation, the scheduler's
// options and results, the starting point, and Graphviz export.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <Eigen/LU>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <sstream>

#include "tests/testing/allocation_counter.h"
#include "tests/testing/textbook.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;

using testing::LogGammaDensity;
using testing::LogGaussian;
using testing::LogNormalWithCovariance;
using testing::LogWishart;

std::vector<double> NormalData(uint64_t seed, size_t count, double mean, double sd) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(mean, sd);
  std::vector<double> y(count);
  for (double& v : y) v = normal(rng);
  return y;
}

Vector ToVector(const std::vector<double>& values) {
  return Eigen::Map<const Vector>(values.data(), static_cast<Eigen::Index>(values.size()));
}

SchedulerOptions Sweeps(int count) {
  SchedulerOptions options;
  options.max_iterations = count;
  options.tolerance = 0.0;
  return options;
}

/// The Gaussian μ,τ model: μ ~ N(m0, 1/p0), τ ~ Gamma(a, b), y_n ~ N(μ, 1/τ), finalised.
struct GaussianModel {
  FactorGraph graph;
  Variable mu, tau;
};

std::unique_ptr<GaussianModel> MakeGaussianModel(double m0, double p0, double a, double b,
                                                 const std::vector<double>& y) {
  auto model = std::make_unique<GaussianModel>();
  model->mu = model->graph.AddVariable("mu", Family::kGaussian);
  model->tau = model->graph.AddVariable("tau", Family::kGamma);
  model->graph.AddGaussian(model->mu, m0, p0);
  model->graph.AddGamma(model->tau, a, b);
  model->graph.AddGaussian(model->graph.AddObserved("y", y), model->mu, model->tau);
  model->graph.Finalize();
  return model;
}

// ---- Closed-form posteriors and exact evidence ----------------------------------------------

TEST(ExactInference, KnownPrecisionGaussianMeanHasClosedFormPosteriorAndEvidence) {
  const double prior_mean = 0.7, prior_precision = 0.3, noise_precision = 2.5;
  const std::vector<double> y = NormalData(1, 25, 1.4, 1 / std::sqrt(noise_precision));
  FactorGraph graph;
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  graph.AddGaussian(mu, prior_mean, prior_precision);
  graph.AddGaussian(graph.AddObserved("y", y), mu, noise_precision);
  graph.Finalize();
  const Result result = SequentialScheduler(Sweeps(1)).Run(graph);

  double sum = 0;
  for (double v : y) sum += v;
  const double precision = prior_precision + y.size() * noise_precision;
  const double mean = (prior_precision * prior_mean + noise_precision * sum) / precision;
  const Gaussian q = graph.Posterior<Gaussian>(mu);
  EXPECT_NEAR(q.mean(), mean, 1e-12 * std::abs(mean));
  EXPECT_NEAR(q.precision(), precision, 1e-12 * precision);

  // y ~ N(m0·1, τ⁻¹I + p0⁻¹11ᵀ): on this tree F = −log p(y).
  const size_t n = y.size();
  const Matrix covariance = Matrix::Identity(n, n) / noise_precision +
                            Matrix::Constant(n, n, 1.0 / prior_precision);
  const double log_evidence =
      LogNormalWithCovariance(ToVector(y), Vector::Constant(n, prior_mean), covariance);
  EXPECT_NEAR(result.evidence_lower_bound(), log_evidence, 1e-10 * std::abs(log_evidence));
}

TEST(ExactInference, ConjugateRegressionHasClosedFormPosteriorAndEvidence) {
  const int n = 40, d = 3;
  const double noise_precision = 4.0;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  Matrix design(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) design(i, j) = normal(rng);
  const Vector true_w = (Vector(d) << 1.0, -2.0, 0.5).finished();
  Vector y = design * true_w;
  for (int i = 0; i < n; ++i) y[i] += normal(rng) / std::sqrt(noise_precision);
  const Vector prior_mean = (Vector(d) << 0.1, 0.2, -0.3).finished();
  Matrix prior_precision(d, d);
  prior_precision << 2.0, 0.3, 0.0, 0.3, 1.0, 0.2, 0.0, 0.2, 1.5;

  FactorGraph graph;
  const Variable w = graph.AddVariable("w", Family::kMvGaussian, d);
  graph.AddMvGaussian(w, prior_mean, prior_precision);
  graph.AddLinearRegression(
      graph.AddObserved("y", std::vector<double>(y.data(), y.data() + n)), w, design,
      noise_precision);
  graph.Finalize();
  const Result result = SequentialScheduler(Sweeps(1)).Run(graph);

  const Matrix precision = prior_precision + noise_precision * design.transpose() * design;
  const Vector mean =
      precision.llt().solve(prior_precision * prior_mean + noise_precision * design.transpose() * y);
  const MvGaussian q = graph.Posterior<MvGaussian>(w);
  EXPECT_LT((q.mean() - mean).norm(), 1e-11 * mean.norm());
  EXPECT_LT((q.precision() - precision).norm(), 1e-11 * precision.norm());

  const Matrix covariance = Matrix::Identity(n, n) / noise_precision +
                            design * prior_precision.inverse() * design.transpose();
  const double log_evidence = LogNormalWithCovariance(y, design * prior_mean, covariance);
  EXPECT_NEAR(result.evidence_lower_bound(), log_evidence, 1e-10 * std::abs(log_evidence));
}

TEST(ExactInference, LinearGaussianWithSharedMatrixHasExactEvidence) {
  // x ~ N(m0, P0⁻¹) in 3-D, y_n ~ N(A x, R⁻¹) in 2-D for n = 1..5: y is jointly Gaussian.
  const int n = 5, k = 3, m = 2;
  Matrix a(m, k);
  a << 1.0, 0.5, -0.2, 0.0, 2.0, 1.0;
  Matrix noise_precision(m, m);
  noise_precision << 3.0, 0.4, 0.4, 2.0;
  const Vector prior_mean = (Vector(k) << 0.5, -1.0, 0.0).finished();
  const Matrix prior_precision = Matrix::Identity(k, k) * 0.8;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  Matrix rows(n, m);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) rows(i, j) = 1.0 + normal(rng);

  FactorGraph graph;
  const Variable x = graph.AddVariable("x", Family::kMvGaussian, k);
  graph.AddMvGaussian(x, prior_mean, prior_precision);
  graph.AddLinearGaussian(graph.AddObservedRows("y", rows), x, a, noise_precision);
  graph.Finalize();
  const Result result = SequentialScheduler(Sweeps(1)).Run(graph);

  Matrix stacked_a(n * m, k);
  Matrix covariance = Matrix::Zero(n * m, n * m);
  Vector stacked_y(n * m);
  for (int i = 0; i < n; ++i) {
    stacked_a.block(i * m, 0, m, k) = a;
    covariance.block(i * m, i * m, m, m) = noise_precision.inverse();
    stacked_y.segment(i * m, m) = rows.row(i).transpose();
  }
  covariance += stacked_a * prior_precision.inverse() * stacked_a.transpose();
  const double log_evidence =
      LogNormalWithCovariance(stacked_y, stacked_a * prior_mean, covariance);
  EXPECT_NEAR(result.evidence_lower_bound(), log_evidence, 1e-10 * std::abs(log_evidence));

  const Matrix posterior_precision =
      prior_precision + n * a.transpose() * noise_precision * a;
  EXPECT_LT((graph.Posterior<MvGaussian>(x).precision() - posterior_precision).norm(),
            1e-11 * posterior_precision.norm());
}

TEST(ExactInference, MeanFieldBoundStaysBelowLogEvidenceOfUnknownMeanAndPrecision) {
  // log p(y) = log ∫ p(y | τ) Gamma(τ) dτ with p(y | τ) Gaussian in closed form (μ integrated
  // out), the τ integral done numerically on a fine grid in log τ.
  const double m0 = 0.0, p0 = 0.5, a = 2.0, b = 1.5;
  const std::vector<double> y = NormalData(11, 12, 0.8, 0.7);
  const size_t n = y.size();
  std::unique_ptr<GaussianModel> model = MakeGaussianModel(m0, p0, a, b, y);
  FactorGraph& graph = model->graph;
  SchedulerOptions options;
  options.max_iterations = 500;
  options.tolerance = 1e-13;
  const Result result = SequentialScheduler(options).Run(graph);
  ASSERT_TRUE(result.converged()) << result.message;

  const double step = 1e-3;
  std::vector<double> log_terms;
  for (double log_tau = -12; log_tau <= 8; log_tau += step) {
    const double t = std::exp(log_tau);
    const Matrix covariance =
        Matrix::Identity(n, n) / t + Matrix::Constant(n, n, 1.0 / p0);
    log_terms.push_back(LogNormalWithCovariance(ToVector(y), Vector::Constant(n, m0), covariance) +
                        LogGammaDensity(t, a, b) + log_tau + std::log(step));
  }
  const double peak = *std::max_element(log_terms.begin(), log_terms.end());
  double sum = 0;
  for (double v : log_terms) sum += std::exp(v - peak);
  const double log_evidence = peak + std::log(sum);

  EXPECT_LE(result.evidence_lower_bound(), log_evidence);
  // Mean field loses only the μ–τ dependence: a small gap on this model.
  EXPECT_GT(result.evidence_lower_bound(), log_evidence - 0.1);
}

// ---- Free energy never rises under a single update -------------------------------------------

struct RandomModel {
  FactorGraph graph;
  std::vector<Variable> hidden;
};

Matrix RandomSpd(std::mt19937_64& rng, int d, double scale) {
  std::normal_distribution<double> normal;
  Matrix b(d, d);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) b(i, j) = normal(rng);
  return scale * (b * b.transpose() / d + Matrix::Identity(d, d));
}

/// A model using every node type with random sizes, priors and data: a Gamma hierarchy
/// (rate of a rate), a hidden per-observation array, a Wishart/MvGaussian block, a
/// regression, and a latent linear-Gaussian layer.
std::unique_ptr<RandomModel> MakeRandomModel(uint64_t seed) {
  auto model = std::make_unique<RandomModel>();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.5, 3.0);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> count(2, 8);
  FactorGraph& g = model->graph;

  // Scalar hierarchy: beta ~ Gamma, tau ~ Gamma(a, beta), mu ~ N, x_k ~ N(mu, tau),
  // y_k ~ N(x_k, lambda), z_j ~ N(mu, tau).
  const Variable beta = g.AddVariable("beta", Family::kGamma);
  const Variable tau = g.AddVariable("tau", Family::kGamma);
  const Variable lambda = g.AddVariable("lambda", Family::kGamma);
  const Variable mu = g.AddVariable("mu", Family::kGaussian);
  const size_t k = count(rng);
  const Variable x = g.AddVariableArray("x", Family::kGaussian, {k});
  g.AddGamma(beta, uniform(rng), uniform(rng));
  g.AddGamma(tau, uniform(rng), beta);
  g.AddGamma(lambda, uniform(rng), uniform(rng));
  g.AddGaussian(mu, normal(rng), uniform(rng) * 0.1);
  g.AddGaussian(x, mu, tau);
  std::vector<double> y(k), z(count(rng));
  for (double& v : y) v = 2 + normal(rng);
  for (double& v : z) v = 2 + normal(rng);
  g.AddGaussian(g.AddObserved("y", y), x, lambda);
  g.AddGaussian(g.AddObserved("z", z), mu, tau);

  // Multivariate block: W ~ Wishart, m ~ MvN, rows ~ MvN(m, W), v ~ MvN(m, tau·I).
  const int d = 2 + static_cast<int>(seed % 2);
  const Variable w = g.AddVariable("W", Family::kWishart, d);
  const Variable m = g.AddVariable("m", Family::kMvGaussian, d);
  g.AddWishart(w, d + uniform(rng), RandomSpd(rng, d, 0.5));
  g.AddMvGaussian(m, Vector(Vector::Zero(d)), RandomSpd(rng, d, 0.2));
  Matrix rows(count(rng), d);
  for (int i = 0; i < rows.rows(); ++i)
    for (int j = 0; j < d; ++j) rows(i, j) = 1 + normal(rng);
  g.AddMvGaussian(g.AddObservedRows("rows", rows), m, w);
  Matrix v(d, 1);
  for (int j = 0; j < d; ++j) v(j, 0) = normal(rng);
  g.AddMvGaussian(g.AddObserved("v", v), m, tau);

  // Regression with a hierarchical noise precision.
  const int kd = 2 + static_cast<int>(seed % 3);
  const Variable weights = g.AddVariable("weights", Family::kMvGaussian, kd);
  const Variable noise = g.AddVariable("noise", Family::kGamma);
  g.AddMvGaussian(weights, Vector(Vector::Zero(kd)), RandomSpd(rng, kd, 1.0));
  g.AddGamma(noise, uniform(rng), beta);
  const int n = count(rng) + 3;
  Matrix design(n, kd);
  std::vector<double> targets(n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < kd; ++j) design(i, j) = normal(rng);
    targets[i] = design.row(i).sum() + normal(rng);
  }
  g.AddLinearRegression(g.AddObserved("targets", targets), weights, design, noise);

  // Latent layer: h_i ~ N(A m, W) (one hidden vector per row of data), data_i ~ N(B h_i, noise).
  const size_t layer = count(rng);
  const int hd = 3;
  Matrix a(hd, d), b(1, hd);
  for (int i = 0; i < hd; ++i)
    for (int j = 0; j < d; ++j) a(i, j) = normal(rng);
  for (int j = 0; j < hd; ++j) b(0, j) = normal(rng);
  const Variable h = g.AddVariableArray("h", Family::kMvGaussian, {layer}, hd);
  const Variable hw = g.AddVariable("hW", Family::kWishart, hd);
  g.AddWishart(hw, hd + 1.0, Matrix(Matrix::Identity(hd, hd)));
  g.AddLinearGaussian(h, m, a, hw);
  std::vector<double> data(layer);
  for (double& value : data) value = normal(rng);
  g.AddLinearGaussian(g.AddObserved("data", data), h, b, noise);
  g.Finalize();

  // Start away from the priors, so that every update has work to do.
  g.SetPosterior(mu, Gaussian(normal(rng), uniform(rng)));
  g.SetPosterior(tau, Gamma(uniform(rng), uniform(rng)));
  g.SetPosterior(x, Gaussian(normal(rng), uniform(rng)));
  g.SetPosterior(m, MvGaussian(Vector(Vector::Constant(d, normal(rng))), RandomSpd(rng, d, 1)));
  g.SetPosterior(w, Wishart(d + uniform(rng), RandomSpd(rng, d, 0.3)));
  g.SetPosterior(h, MvGaussian(Vector(Vector::Constant(hd, normal(rng))), RandomSpd(rng, hd, 1)));
  model->hidden = g.HiddenVariables();
  std::shuffle(model->hidden.begin(), model->hidden.end(), rng);
  return model;
}

TEST(FreeEnergy, NeverRisesAfterAnySingleUpdateOnRandomModels) {
  int updates = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::unique_ptr<RandomModel> model = MakeRandomModel(seed);
    FactorGraph& g = model->graph;
    Scratch scratch = g.MakeScratch();
    double before = g.FreeEnergy(scratch);
    const double start = before;
    ASSERT_TRUE(std::isfinite(before));
    for (int sweep = 0; sweep < 6; ++sweep) {
      for (const Variable& v : model->hidden) {
        for (size_t i = v.begin(); i < v.begin() + v.size(); ++i) {
          ASSERT_TRUE(g.UpdateElement(v.id(), i, scratch));
          const double after = g.FreeEnergy(scratch);
          ASSERT_LE(after, before + 1e-10 * std::abs(before) + 1e-10)
              << "after updating " << g.ElementName(v[i - v.begin()]) << " in sweep " << sweep;
          before = after;
          ++updates;
        }
      }
    }
    EXPECT_LT(before, start);  // the random start is not a fixed point
  }
  EXPECT_GT(updates, 30 * 6 * 10);
}

TEST(FreeEnergy, EqualsItsNodeLocalTermsAndMatchesMonteCarlo) {
  // F = E_q[log q(μ) + log q(τ) − log p(y, μ, τ)], by sampling q with densities written here.
  const double m0 = 1.0, p0 = 0.2, a = 3.0, b = 2.0;
  const std::vector<double> y = NormalData(5, 30, 1.5, 0.8);
  std::unique_ptr<GaussianModel> model = MakeGaussianModel(m0, p0, a, b, y);
  FactorGraph& graph = model->graph;
  const Variable mu = model->mu, tau = model->tau;
  SequentialScheduler(Sweeps(2)).Run(graph);
  Scratch scratch = graph.MakeScratch();
  const double free_energy = graph.FreeEnergy(scratch);
  const FactorGraph::FreeEnergyTerms terms = graph.FreeEnergyParts(scratch);
  double sum = -terms.entropy;
  for (double u : terms.plate_energy) sum += u;
  EXPECT_NEAR(sum, free_energy, 1e-12 * std::abs(free_energy));

  const Gaussian q_mu = graph.Posterior<Gaussian>(mu);
  const Gamma q_tau = graph.Posterior<Gamma>(tau);
  std::mt19937_64 rng(99);
  std::normal_distribution<double> normal;
  std::gamma_distribution<double> gamma(q_tau.shape(), 1.0 / q_tau.rate());
  const int samples = 200000;
  testing::RunningMean estimate;
  for (int s = 0; s < samples; ++s) {
    const double m = q_mu.mean() + normal(rng) * std::sqrt(q_mu.variance());
    const double t = gamma(rng);
    double value = LogGaussian(m, q_mu.mean(), q_mu.precision()) +
                   LogGammaDensity(t, q_tau.shape(), q_tau.rate()) - LogGaussian(m, m0, p0) -
                   LogGammaDensity(t, a, b);
    for (double v : y) value -= LogGaussian(v, m, t);
    estimate.Add(value);
  }
  EXPECT_NEAR(free_energy, estimate.mean(), 5 * estimate.standard_error());
}

TEST(FreeEnergy, MatchesMonteCarloOnWishartModel) {
  // m ~ N(m0, P0⁻¹), Λ ~ Wishart(ν, V), rows ~ N(m, Λ⁻¹).
  const int d = 2;
  const Vector m0 = Vector::Zero(d);
  const Matrix p0 = Matrix::Identity(d, d) * 0.5;
  const double nu = 4.0;
  Matrix scale(d, d);
  scale << 0.5, 0.1, 0.1, 0.3;
  Matrix rows(15, d);
  std::mt19937_64 data_rng(8);
  std::normal_distribution<double> normal;
  for (int i = 0; i < rows.rows(); ++i) rows.row(i) << 1 + normal(data_rng), -1 + normal(data_rng);

  FactorGraph graph;
  const Variable m = graph.AddVariable("m", Family::kMvGaussian, d);
  const Variable lambda = graph.AddVariable("Lambda", Family::kWishart, d);
  graph.AddMvGaussian(m, m0, p0);
  graph.AddWishart(lambda, nu, scale);
  graph.AddMvGaussian(graph.AddObservedRows("y", rows), m, lambda);
  graph.Finalize();
  SequentialScheduler(Sweeps(3)).Run(graph);
  Scratch scratch = graph.MakeScratch();
  const double free_energy = graph.FreeEnergy(scratch);

  const MvGaussian q_m = graph.Posterior<MvGaussian>(m);
  const Wishart q_lambda = graph.Posterior<Wishart>(lambda);
  const Matrix q_m_cov = q_m.covariance();
  const Matrix q_m_chol = q_m_cov.llt().matrixL();
  std::mt19937_64 rng(12);
  const int samples = 40000;
  testing::RunningMean estimate;
  for (int s = 0; s < samples; ++s) {
    Vector z(d);
    for (int j = 0; j < d; ++j) z[j] = normal(rng);
    const Vector mv = q_m.mean() + q_m_chol * z;
    const Matrix lv = q_lambda.Sample(rng);
    double value = LogNormalWithCovariance(mv, q_m.mean(), q_m_cov) +
                   LogWishart(lv, q_lambda.dof(), q_lambda.scale()) -
                   LogNormalWithCovariance(mv, m0, p0.inverse()) - LogWishart(lv, nu, scale);
    const Matrix covariance = lv.inverse();
    for (int i = 0; i < rows.rows(); ++i)
      value -= LogNormalWithCovariance(rows.row(i).transpose(), mv, covariance);
    estimate.Add(value);
  }
  EXPECT_NEAR(free_energy, estimate.mean(), 5 * estimate.standard_error());
}

// ---- Allocation --------------------------------------------------------------------------

TEST(Allocation, CounterSeesAllocations) {
  if (!testing::AllocationCounting())
    GTEST_SKIP() << "the allocation counter is compiled out under a sanitizer";
  const long before = testing::AllocationCount();
  std::vector<double>* v = new std::vector<double>(100);
  const Matrix m = Matrix::Random(8, 8);
  const long after = testing::AllocationCount();
  delete v;
  EXPECT_GE(after - before, 3) << m(0, 0);
}

TEST(Allocation, SweepsAllocateNothing) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::unique_ptr<RandomModel> model = MakeRandomModel(seed);
    FactorGraph& g = model->graph;
    Scratch scratch = g.MakeScratch();
    const long before = testing::AllocationCount();
    double free_energy = 0;
    for (int sweep = 0; sweep < 3; ++sweep) {
      for (const Variable& v : model->hidden)
        for (size_t i = v.begin(); i < v.begin() + v.size(); ++i)
          g.UpdateElement(v.id(), i, scratch);
      free_energy += g.FreeEnergy(scratch);
    }
    EXPECT_EQ(testing::AllocationCount() - before, 0) << "seed " << seed;
    EXPECT_TRUE(std::isfinite(free_energy));
  }
}

TEST(Allocation, SchedulerAllocationsDoNotGrowWithSweeps) {
  auto count_for = [](int sweeps) {
    std::unique_ptr<RandomModel> model = MakeRandomModel(3);
    const long before = testing::AllocationCount();
    const Result result = SequentialScheduler(Sweeps(sweeps)).Run(model->graph);
    const long used = testing::AllocationCount() - before;
    EXPECT_EQ(result.iterations, sweeps);
    return used;
  };
  // A first run builds what lives for the whole process (the node registry the scheduler
  // reads), which the comparison must not count.
  count_for(1);
  const long two = count_for(2);
  EXPECT_EQ(count_for(40), two);
}

// ---- Scheduler ---------------------------------------------------------------------------

/// The scheduler tests' model: broad priors, 200 draws of N(3, 2²).
std::unique_ptr<GaussianModel> MakeGaussianModel() {
  return MakeGaussianModel(0.0, 1e-3, 1e-3, 1e-3, NormalData(2, 200, 3.0, 2.0));
}

TEST(SequentialScheduler, ZeroToleranceRunsExactlyTheCap) {
  std::unique_ptr<GaussianModel> model = MakeGaussianModel();
  const Result result = SequentialScheduler(Sweeps(7)).Run(model->graph);
  EXPECT_EQ(result.iterations, 7);
  EXPECT_EQ(result.free_energy.size(), 7u);
  EXPECT_EQ(result.termination, Termination::kMaxIterations);
  EXPECT_FALSE(result.converged());
  EXPECT_EQ(result.free_energy_increases, 0);
  EXPECT_THAT(result.message, HasSubstr("7 sweeps"));
  EXPECT_GE(result.inference_ms, 0.0);
}

TEST(SequentialScheduler, StopsOnRelativeChangeOfFreeEnergy) {
  std::unique_ptr<GaussianModel> model = MakeGaussianModel();
  SchedulerOptions options;
  options.tolerance = 1e-6;
  const Result result = SequentialScheduler(options).Run(model->graph);
  ASSERT_TRUE(result.converged()) << result.message;
  ASSERT_GE(result.iterations, 2);
  const double last = result.free_energy[result.iterations - 1];
  const double previous = result.free_energy[result.iterations - 2];
  EXPECT_LT(std::abs(last - previous) / (0.5 * (std::abs(last) + std::abs(previous))), 1e-6);
  for (int i = 1; i + 1 < result.iterations; ++i) {
    const double change = std::abs(result.free_energy[i] - result.free_energy[i - 1]) /
                          (0.5 * (std::abs(result.free_energy[i]) +
                                  std::abs(result.free_energy[i - 1])));
    EXPECT_GE(change, 1e-6) << "should have stopped after sweep " << i + 1;
  }
}

TEST(SequentialScheduler, CallbackSeesEverySweepAndCanStop) {
  std::unique_ptr<GaussianModel> model = MakeGaussianModel();
  std::vector<IterationInfo> seen;
  SchedulerOptions options = Sweeps(50);
  options.callback = [&](const IterationInfo& info) {
    seen.push_back(info);
    return info.iteration < 3;
  };
  const Result result = SequentialScheduler(options).Run(model->graph);
  EXPECT_EQ(result.termination, Termination::kStopped);
  EXPECT_EQ(result.iterations, 3);
  ASSERT_EQ(seen.size(), 3u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].iteration, static_cast<int>(i) + 1);
    EXPECT_EQ(seen[i].free_energy, result.free_energy[i]);
  }
  EXPECT_TRUE(std::isnan(seen[0].change));
  EXPECT_DOUBLE_EQ(seen[1].change, result.free_energy[1] - result.free_energy[0]);
  EXPECT_LE(seen[1].elapsed_ms, seen[2].elapsed_ms);
}

TEST(SequentialScheduler, RerunContinuesFromTheCurrentPosteriors) {
  std::unique_ptr<GaussianModel> once = MakeGaussianModel();
  const Result whole = SequentialScheduler(Sweeps(6)).Run(once->graph);
  std::unique_ptr<GaussianModel> twice = MakeGaussianModel();
  const Result first = SequentialScheduler(Sweeps(2)).Run(twice->graph);
  const Result second = SequentialScheduler(Sweeps(4)).Run(twice->graph);
  EXPECT_EQ(second.initial_free_energy, first.free_energy.back());
  EXPECT_EQ(second.free_energy.back(), whole.free_energy.back());
  EXPECT_EQ(twice->graph.Posterior<Gaussian>(twice->mu).mean(),
            once->graph.Posterior<Gaussian>(once->mu).mean());
}

TEST(SequentialScheduler, FollowsTheGivenOrder) {
  // Updating τ first (at the prior of μ) gives a different first sweep than μ first, and the
  // default order is the order of declaration (μ, τ).
  std::unique_ptr<GaussianModel> declared = MakeGaussianModel();
  std::unique_ptr<GaussianModel> mu_first = MakeGaussianModel();
  std::unique_ptr<GaussianModel> tau_first = MakeGaussianModel();
  SchedulerOptions options = Sweeps(1);
  const Result by_declaration = SequentialScheduler(options).Run(declared->graph);
  options.order = {mu_first->mu, mu_first->tau};
  const Result by_mu = SequentialScheduler(options).Run(mu_first->graph);
  options.order = {tau_first->tau, tau_first->mu};
  const Result by_tau = SequentialScheduler(options).Run(tau_first->graph);
  EXPECT_EQ(by_declaration.free_energy[0], by_mu.free_energy[0]);
  EXPECT_GT(std::abs(by_tau.free_energy[0] - by_mu.free_energy[0]), 1e-3);

  // An order naming only μ leaves τ at its start.
  std::unique_ptr<GaussianModel> only_mu = MakeGaussianModel();
  const Gamma start = only_mu->graph.Posterior<Gamma>(only_mu->tau);
  options.order = {only_mu->mu};
  SequentialScheduler(options).Run(only_mu->graph);
  EXPECT_EQ(only_mu->graph.Posterior<Gamma>(only_mu->tau).rate(), start.rate());
}

TEST(SequentialScheduler, InitialFreeEnergyIsTheEnergyBeforeTheFirstSweep) {
  std::unique_ptr<GaussianModel> model = MakeGaussianModel();
  Scratch scratch = model->graph.MakeScratch();
  const double before = model->graph.FreeEnergy(scratch);
  const Result result = SequentialScheduler(Sweeps(2)).Run(model->graph);
  EXPECT_EQ(result.initial_free_energy, before);
  EXPECT_LT(result.free_energy[0], before);
  EXPECT_EQ(result.evidence_lower_bound(), -result.free_energy.back());
}

// ---- Starting point and export -------------------------------------------------------------

TEST(FactorGraph, StartsEveryVariableAtItsPriorInAncestralOrder) {
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {3});  // before its parents
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  const Variable free_mean = graph.AddVariable("free_mean", Family::kGaussian);
  graph.AddGaussian(x, mu, tau);
  graph.AddGaussian(mu, 1.0, 4.0);
  graph.AddGamma(tau, 3.0, 2.0);
  graph.AddGaussian(graph.AddObserved("y", std::vector<double>{1, 2, 3}), x, 10.0);
  graph.AddGaussian(graph.AddObserved("z", 0.5), free_mean, 1.0);
  graph.Finalize();
  EXPECT_DOUBLE_EQ(graph.Posterior<Gaussian>(mu).mean(), 1.0);
  EXPECT_DOUBLE_EQ(graph.Posterior<Gaussian>(mu).precision(), 4.0);
  EXPECT_DOUBLE_EQ(graph.Posterior<Gamma>(tau).shape(), 3.0);
  EXPECT_DOUBLE_EQ(graph.Posterior<Gamma>(tau).rate(), 2.0);
  for (size_t i = 0; i < 3; ++i) {
    // The message of N(x | μ, τ) to x with q(μ), q(τ) at their priors: N(E[μ], 1/E[τ]).
    EXPECT_DOUBLE_EQ(graph.Posterior<Gaussian>(x[i]).mean(), 1.0);
    EXPECT_DOUBLE_EQ(graph.Posterior<Gaussian>(x[i]).precision(), 1.5);
  }
  // No factor has free_mean as its output: the standard density.
  EXPECT_DOUBLE_EQ(graph.Posterior<Gaussian>(free_mean).mean(), 0.0);
  EXPECT_DOUBLE_EQ(graph.Posterior<Gaussian>(free_mean).variance(), 1.0);
  EXPECT_THAT(graph.DescribePosterior(mu), HasSubstr("Gaussian"));
  EXPECT_EQ(graph.ElementName(x[2]), "x[2]");
}

TEST(FactorGraph, PlatesShareSingleElementsAndPairArrays) {
  FactorGraph graph;
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  graph.AddGaussian(mu, 0.0, 1.0);
  const PlateId plate = graph.AddGaussian(
      graph.AddObserved("y", std::vector<double>{1, 2, 3, 4}), mu, 2.0, "likelihood");
  graph.Finalize();
  EXPECT_EQ(graph.plate_size(plate), 4u);
  EXPECT_EQ(graph.num_factors(), 5u);
  EXPECT_EQ(graph.plate_name(plate), "likelihood");
  EXPECT_STREQ(graph.node(plate).type(), "Gaussian");
  EXPECT_EQ(graph.Find("mu").id(), mu.id());
  EXPECT_EQ(graph.HiddenVariables().size(), 1u);
}

TEST(FactorGraph, WritesGraphvizWithEveryVariableAndPlate) {
  std::unique_ptr<GaussianModel> model = MakeGaussianModel();
  std::ostringstream dot;
  model->graph.WriteGraphviz(dot);
  const std::string text = dot.str();
  EXPECT_THAT(text, HasSubstr("graph"));
  EXPECT_THAT(text, HasSubstr("mu"));
  EXPECT_THAT(text, HasSubstr("tau"));
  EXPECT_THAT(text, HasSubstr("y"));
  EXPECT_THAT(text, HasSubstr("Gamma"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '{'), std::count(text.begin(), text.end(), '}'));
}

}  // namespace
}  // namespace vfe
