// Deterministic nodes (Sum, MatrixProduct) against the exact posterior and evidence of the
// linear Gaussian system they describe, solved in the test by stacking the hidden variables
// (closed form, independent of the engine); learned noise against a structured mean-field
// fixed point computed in the test; bitwise thread independence; JSON; errors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Eigen/LU>

#include <cmath>
#include <memory>
#include <random>
#include <string>

#include "tests/testing/expect.h"
#include "tests/testing/textbook.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::ErrorMessage;
using testing::ExpectErrorMentioning;
using testing::ExpectMatrixNear;
using testing::kLogTwoPi;
using testing::LogNormalWithCovariance;
using testing::Scale;

SchedulerOptions Sweeps(int n, double tolerance = 0.0) {
  SchedulerOptions options;
  options.max_iterations = n;
  options.tolerance = tolerance;
  return options;
}

// ---- Scalar sum: a + b observed with noise ----------------------------------------------

/// a ~ N(ma, 1/pa), b ~ N(mb, 1/pb), s = a + b, y ~ N(s, 1/tau) observed, and its exact
/// answer: θ = (a, b) with y = [1 1] θ + e.
struct ScalarSum {
  ScalarSum(double ma_, double pa_, double mb_, double pb_, double tau_, double y_)
      : ma(ma_), pa(pa_), mb(mb_), pb(pb_), tau(tau_), y(y_) {
    a = graph.AddVariable("a", Family::kGaussian);
    b = graph.AddVariable("b", Family::kGaussian);
    s = graph.AddVariable("s", Family::kGaussian);
    graph.AddGaussian(a, ma, pa);
    graph.AddGaussian(b, mb, pb);
    sum = graph.AddSum(s, a, b, "sum");
    graph.AddGaussian(graph.AddObserved("y", y), s, tau);
    graph.Finalize();
    const Matrix prior = Eigen::Vector2d(pa, pb).asDiagonal();
    covariance = (prior + tau * Matrix::Ones(2, 2)).inverse();
    mean = covariance * (prior * Eigen::Vector2d(ma, mb) + tau * y * Vector::Ones(2));
    log_evidence =
        LogNormalWithCovariance(Vector::Constant(1, y), Vector::Constant(1, ma + mb),
                                Matrix::Constant(1, 1, 1.0 / pa + 1.0 / pb + 1.0 / tau));
  }
  double ma, pa, mb, pb, tau, y;
  FactorGraph graph;
  Variable a, b, s;
  PlateId sum = 0;
  Matrix covariance;
  Vector mean;
  double log_evidence = 0.0;
};

TEST(SumNode, ScalarPosteriorAndEvidenceAreExact) {
  ScalarSum m(1.0, 2.0, -0.5, 3.0, 4.0, 2.25);
  const Result result = SequentialScheduler(Sweeps(50, 1e-14)).Run(m.graph);
  ASSERT_TRUE(result.converged()) << result.message;
  const FactorGraph& g = m.graph;
  EXPECT_NEAR(g.Posterior<Gaussian>(m.a).mean(), m.mean(0), 1e-12);
  EXPECT_NEAR(1.0 / g.Posterior<Gaussian>(m.a).precision(), m.covariance(0, 0), 1e-12);
  EXPECT_NEAR(g.Posterior<Gaussian>(m.b).mean(), m.mean(1), 1e-12);
  EXPECT_NEAR(1.0 / g.Posterior<Gaussian>(m.b).precision(), m.covariance(1, 1), 1e-12);
  EXPECT_NEAR(g.Posterior<Gaussian>(m.s).mean(), m.mean.sum(), 1e-12);
  EXPECT_NEAR(1.0 / g.Posterior<Gaussian>(m.s).precision(), m.covariance.sum(), 1e-12);
  EXPECT_NEAR(result.free_energy.back(), -m.log_evidence, 1e-12 * std::abs(m.log_evidence));
}

// ---- A tree of both nodes: s = A x + w observed, and x observed through C -----------------

struct TreeCase {
  Matrix a{2, 3}, c{2, 3}, px{3, 3}, pw{2, 2}, r{2, 2}, r2{2, 2};
  Vector mx{3}, mw{2}, y{2}, y2{2};
  TreeCase() {
    a << 1.0, -0.5, 0.25, 0.3, 2.0, -1.0;
    c << 0.5, 0.0, 1.0, -1.0, 1.0, 0.5;
    px << 2.0, 0.3, 0.0, 0.3, 1.5, -0.2, 0.0, -0.2, 1.0;
    pw << 4.0, 1.0, 1.0, 3.0;
    r << 5.0, -1.0, -1.0, 2.0;
    r2 << 1.0, 0.2, 0.2, 0.8;
    mx << 0.5, -1.0, 2.0;
    mw << 1.0, 0.0;
    y << 1.5, -2.0;
    y2 << 2.5, -0.5;
  }
};

struct TreeModel {
  FactorGraph graph;
  Variable x, w, z, s;
};

std::unique_ptr<TreeModel> BuildTree(const TreeCase& k) {
  auto m = std::make_unique<TreeModel>();
  FactorGraph& g = m->graph;
  m->x = g.AddVariable("x", Family::kMvGaussian, 3);
  m->w = g.AddVariable("w", Family::kMvGaussian, 2);
  m->z = g.AddVariable("z", Family::kMvGaussian, 2);
  m->s = g.AddVariable("s", Family::kMvGaussian, 2);
  g.AddMvGaussian(m->x, k.mx, k.px);
  g.AddMvGaussian(m->w, k.mw, k.pw);
  g.AddMatrixProduct(m->z, k.a, m->x, "project");
  g.AddSum(m->s, m->z, m->w, "add noise");
  g.AddMvGaussian(g.AddObserved("y", Matrix(k.y)), m->s, k.r);
  g.AddLinearGaussian(g.AddObserved("y2", Matrix(k.y2)), m->x, k.c, k.r2);
  g.Finalize();
  return m;
}

TEST(DeterministicNodes, TreePosteriorsAndEvidenceEqualTheStackedLinearSystem) {
  const TreeCase k;
  std::unique_ptr<TreeModel> m = BuildTree(k);
  const Result result = SequentialScheduler(Sweeps(100, 1e-15)).Run(m->graph);
  ASSERT_TRUE(result.converged()) << result.message;

  // θ = (x, w): prior N(μ, P⁻¹) block diagonal; (y, y2) = H θ + e, e ~ N(0, blkdiag(R, R2)⁻¹).
  Matrix prior = Matrix::Zero(5, 5);
  prior.topLeftCorner(3, 3) = k.px;
  prior.bottomRightCorner(2, 2) = k.pw;
  Vector mu(5);
  mu << k.mx, k.mw;
  Matrix h = Matrix::Zero(4, 5);
  h.topLeftCorner(2, 3) = k.a;
  h.topRightCorner(2, 2) = Matrix::Identity(2, 2);
  h.bottomLeftCorner(2, 3) = k.c;
  Matrix noise = Matrix::Zero(4, 4);
  noise.topLeftCorner(2, 2) = k.r;
  noise.bottomRightCorner(2, 2) = k.r2;
  Vector data(4);
  data << k.y, k.y2;
  const Matrix cov = (prior + h.transpose() * noise * h).inverse();
  const Vector mean = cov * (prior * mu + h.transpose() * noise * data);

  const MvGaussian qx = m->graph.Posterior<MvGaussian>(m->x);
  const MvGaussian qw = m->graph.Posterior<MvGaussian>(m->w);
  const MvGaussian qz = m->graph.Posterior<MvGaussian>(m->z);
  const MvGaussian qs = m->graph.Posterior<MvGaussian>(m->s);
  ExpectMatrixNear(qx.mean(), Vector(mean.head(3)), 1e-10, "E[x]", Scale::kOnePlusRelative);
  ExpectMatrixNear(qx.covariance(), Matrix(cov.topLeftCorner(3, 3)), 1e-10, "Cov[x]",
                   Scale::kOnePlusRelative);
  ExpectMatrixNear(qw.mean(), Vector(mean.tail(2)), 1e-10, "E[w]", Scale::kOnePlusRelative);
  ExpectMatrixNear(qw.covariance(), Matrix(cov.bottomRightCorner(2, 2)), 1e-10, "Cov[w]",
                   Scale::kOnePlusRelative);
  const Matrix hs = h.topRows(2);
  ExpectMatrixNear(qz.mean(), Vector(k.a * mean.head(3)), 1e-10, "E[z]", Scale::kOnePlusRelative);
  ExpectMatrixNear(qz.covariance(), Matrix(k.a * cov.topLeftCorner(3, 3) * k.a.transpose()), 1e-10,
                   "Cov[z]", Scale::kOnePlusRelative);
  ExpectMatrixNear(qs.mean(), Vector(hs * mean), 1e-10, "E[s]", Scale::kOnePlusRelative);
  ExpectMatrixNear(qs.covariance(), Matrix(hs * cov * hs.transpose()), 1e-10, "Cov[s]",
                   Scale::kOnePlusRelative);

  const double log_evidence = LogNormalWithCovariance(
      data, h * mu, h * prior.inverse() * h.transpose() + noise.inverse());
  EXPECT_NEAR(result.free_energy.back(), -log_evidence, 1e-9 * std::abs(log_evidence));
}

// ---- A plate of sums with a learned noise precision ----------------------------------------

TEST(DeterministicNodes, LearnedNoiseReachesTheStructuredMeanFieldFixedPoint) {
  // y_n ~ N(a_n + b_n, 1/τ), a_n ~ N(0, 1), b_n ~ N(1, 1/2), τ ~ Gamma(2, 1). The engine's
  // fixed point: q(a_n, b_n) exact given E[τ] (BP through the sum), q(τ) by VMP. The same
  // fixed point in closed form: given E[τ], (a_n, b_n) | y_n is Gaussian with
  // Var[a_n + b_n] = v = 1 / (1/(1 + 1/2) + E[τ]) and mean μ_n; q(τ) = Gamma(2 + N/2,
  // 1 + ½ Σ ((y_n − μ_n)² + v)).
  const size_t n = 40;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  std::vector<double> y(n);
  for (double& v : y) v = 1.0 + std::sqrt(1.5) * normal(rng) + 0.7 * normal(rng);
  FactorGraph g;
  const Variable a = g.AddVariableArray("a", Family::kGaussian, {n});
  const Variable b = g.AddVariableArray("b", Family::kGaussian, {n});
  const Variable s = g.AddVariableArray("s", Family::kGaussian, {n});
  const Variable tau = g.AddVariable("tau", Family::kGamma);
  g.AddGaussian(a, 0.0, 1.0);
  g.AddGaussian(b, 1.0, 2.0);
  g.AddSum(s, a, b);
  g.AddGamma(tau, 2.0, 1.0);
  g.AddGaussian(g.AddObserved("y", y), s, tau);
  g.Finalize();
  SchedulerOptions options = Sweeps(2000, 1e-15);
  options.order = {a, b, s, tau};
  const Result result = SequentialScheduler(options).Run(g);
  ASSERT_TRUE(result.converged()) << result.message;

  double e_tau = 1.0;  // fixed-point iteration on E[τ]
  double shape = 2.0 + 0.5 * n, rate = 0.0;
  for (int it = 0; it < 10000; ++it) {
    const double prior_var = 1.5, v = 1.0 / (1.0 / prior_var + e_tau);
    rate = 1.0;
    for (double yn : y) {
      const double mu = v * (1.0 / prior_var + e_tau * yn);  // prior mean 1
      rate += 0.5 * ((yn - mu) * (yn - mu) + v);
    }
    const double next = shape / rate;
    if (std::abs(next - e_tau) < 1e-15) break;
    e_tau = next;
  }
  const Gamma q_tau = g.Posterior<Gamma>(tau);
  EXPECT_NEAR(q_tau.shape(), shape, 1e-12 * shape);
  EXPECT_NEAR(q_tau.rate(), rate, 1e-8 * rate);
  // The sums' posteriors: given E[τ], s_n | y_n exact.
  const double v = 1.0 / (1.0 / 1.5 + shape / rate);
  for (size_t i = 0; i < n; ++i) {
    const Gaussian qs = g.Posterior<Gaussian>(s[i]);
    EXPECT_NEAR(1.0 / qs.precision(), v, 1e-8 * v);
    EXPECT_NEAR(qs.mean(), v * (1.0 / 1.5 + shape / rate * y[i]), 1e-8);
  }
}

// ---- Inside a chain: z_t = C x_t by a MatrixProduct, y_t ~ N(z_t, 1/r) -----------------------

TEST(DeterministicNodes, ObservationThroughAProductOfAClusteredChainGivesTheKalmanEvidence) {
  // x_t = A x_{t−1} + noise (a cluster solved by the Kalman filter and RTS smoother), the
  // observation through a deterministic product z_t = C x_t and a Gaussian factor on z_t.
  // Oracle: the textbook Kalman filter gives log p(y); the clustered chain with the product
  // reaches −F = log p(y) and E[z_t] = C E[x_t].
  const size_t steps = 200;
  Matrix a(2, 2), q(2, 2), c(1, 2);
  a << 1.0, 0.1, 0.0, 1.0;
  q << 400.0, 0.0, 0.0, 100.0;  // precision of the process noise
  c << 1.0, 0.5;
  const double r = 4.0;
  const Vector m0 = Eigen::Vector2d(0.0, 1.0);
  const Matrix p0 = Eigen::Vector2d(1.0, 2.0).asDiagonal();  // prior precision of x_0
  std::vector<double> y(steps);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  for (size_t t = 0; t < steps; ++t)
    y[t] = std::sin(0.05 * static_cast<double>(t)) + 0.5 * normal(rng);

  FactorGraph g;
  const Variable x = g.AddVariableArray("x", Family::kMvGaussian, {steps}, 2);
  const Variable z = g.AddVariableArray("z", Family::kGaussian, {steps});
  g.AddMvGaussian(x[0], m0, p0);
  g.AddLinearGaussian(x.Slice(1, steps), x.Slice(0, steps - 1), a, q);
  g.AddMatrixProduct(z, c, x, "sensor");
  g.AddGaussian(g.AddObserved("y", y), z, r);
  g.AddCluster(x);
  g.Finalize();
  const Result result = SequentialScheduler(Sweeps(200, 1e-14)).Run(g);
  ASSERT_TRUE(result.converged()) << result.message;

  // The textbook Kalman filter, with the covariances of the precisions above.
  testing::StateSpace chain;
  chain.m0 = m0;
  chain.p0 = p0.inverse();
  chain.a = a;
  chain.q = q.inverse();
  chain.c = c;
  chain.r = Matrix::Constant(1, 1, 1.0 / r);
  chain.y = Eigen::Map<const Vector>(y.data(), static_cast<Eigen::Index>(steps));
  const testing::Smoothed exact = testing::KalmanSmoother(chain);
  const double log_evidence = exact.log_likelihood;
  EXPECT_NEAR(result.free_energy.back(), -log_evidence, 1e-9 * std::abs(log_evidence));
  for (size_t t : {size_t{0}, steps / 2, steps - 1}) {
    const Vector ex = g.Posterior<MvGaussian>(x[t]).mean();
    EXPECT_NEAR(g.Posterior<Gaussian>(z[t]).mean(), (c * ex)(0), 1e-9) << t;
  }
  // The last state's smoothed posterior is the filtered one.
  ExpectMatrixNear(g.Posterior<MvGaussian>(x[steps - 1]).mean(), exact.mean.back(), 1e-9,
                   "E[x_T]", Scale::kOnePlusRelative);
  ExpectMatrixNear(g.Posterior<MvGaussian>(x[steps - 1]).covariance(), exact.cov.back(), 1e-9,
                   "Cov[x_T]", Scale::kOnePlusRelative);
}

// ---- Numerically hard cases ----------------------------------------------------------------

TEST(SumNode, LargeMeansWithSmallVariancesKeepTheirDigits) {
  // a ~ N(5e6, sd 0.01), as coordinates in metres: E[a²] = 2.5e13 + 1e-4 cannot carry the
  // variance, so the node must read q in natural parameters.
  const double y = 5e6 + 1.3;
  ScalarSum m(5e6, 1e4, 1.0, 1.0, 100.0, y);
  const Result result = SequentialScheduler(Sweeps(50, 1e-15)).Run(m.graph);
  ASSERT_TRUE(result.converged()) << result.message;
  const FactorGraph& g = m.graph;
  // Means to rounding at the data's scale (1e-16 × 5e6 per operation), variances to 1e-9.
  const double scale = 1e-13 * y;
  EXPECT_NEAR(g.Posterior<Gaussian>(m.a).mean(), m.mean(0), scale);
  EXPECT_NEAR(1.0 / g.Posterior<Gaussian>(m.a).precision(), m.covariance(0, 0),
              1e-9 * m.covariance(0, 0));
  EXPECT_NEAR(g.Posterior<Gaussian>(m.b).mean(), m.mean(1), scale);
  EXPECT_NEAR(1.0 / g.Posterior<Gaussian>(m.b).precision(), m.covariance(1, 1),
              1e-9 * m.covariance(1, 1));
  EXPECT_NEAR(g.Posterior<Gaussian>(m.s).mean(), m.mean.sum(), scale);
  // (F is not checked here: the Gaussian nodes' average energies are computed from moments,
  // E[s²] − 2y E[s] + y², which at this scale keeps only about 1e-3 of precision.)
}

TEST(MatrixProductNode, SquareMatrixNeedsNoPriorOnItsInput) {
  // z ~ N(m, P⁻¹), z = A x with x given no prior, y ~ N(z, R⁻¹). q(x) is q(z) mapped by A⁻¹;
  // the deterministic factor δ(z − A x) integrates to 1/|det A| over x, so
  // −log p(y) = −log N(y; m, P⁻¹ + R⁻¹) + log |det A|.
  Matrix a(2, 2), p(2, 2), r(2, 2);
  a << 2.0, 1.0, -0.5, 1.5;
  p << 1.0, 0.3, 0.3, 2.0;
  r << 4.0, -1.0, -1.0, 3.0;
  const Vector m = Eigen::Vector2d(0.5, -1.0), y = Eigen::Vector2d(1.0, 0.25);
  FactorGraph g;
  const Variable x = g.AddVariable("x", Family::kMvGaussian, 2);
  const Variable z = g.AddVariable("z", Family::kMvGaussian, 2);
  g.AddMvGaussian(z, m, p);
  g.AddMatrixProduct(z, a, x);
  g.AddMvGaussian(g.AddObserved("y", Matrix(y)), z, r);
  g.Finalize();
  const Result result = SequentialScheduler(Sweeps(50, 1e-15)).Run(g);
  ASSERT_TRUE(result.converged()) << result.message;
  const Matrix cov_z = (p + r).inverse();
  const Vector mean_z = cov_z * (p * m + r * y);
  const Matrix a_inv = a.inverse();
  ExpectMatrixNear(g.Posterior<MvGaussian>(z).mean(), mean_z, 1e-10, "E[z]",
                   Scale::kOnePlusRelative);
  ExpectMatrixNear(g.Posterior<MvGaussian>(x).mean(), Vector(a_inv * mean_z), 1e-10, "E[x]",
                   Scale::kOnePlusRelative);
  ExpectMatrixNear(g.Posterior<MvGaussian>(x).covariance(),
                   Matrix(a_inv * cov_z * a_inv.transpose()), 1e-10, "Cov[x]",
                   Scale::kOnePlusRelative);
  const double log_evidence = LogNormalWithCovariance(y, m, p.inverse() + r.inverse());
  EXPECT_NEAR(result.free_energy.back(), -log_evidence + std::log(std::abs(a.determinant())),
              1e-10 * std::abs(log_evidence));
}

// ---- A random walk built from sums, and a shared input over many factors ------------------

TEST(DeterministicNodes, RandomWalkOfSumsGivesTheKalmanEvidence) {
  // x_0 ~ N(0, 1), x_t = x_{t−1} + w_t with w_t ~ N(0, 1/q) hidden, y_t ~ N(x_t, 1/r): a tree
  // solved by BP through the sums (no cluster), on the sequential and the parallel scheduler.
  const size_t steps = 30;
  const double q = 4.0, r = 2.0;
  std::vector<double> y(steps);
  for (size_t t = 0; t < steps; ++t) y[t] = std::cos(0.3 * static_cast<double>(t)) + 0.1 * t;
  // The textbook Kalman filter of x_t = x_{t−1} + N(0, 1/q), y_t = x_t + N(0, 1/r).
  testing::StateSpace walk;
  walk.m0 = Vector::Zero(1);
  walk.p0 = walk.a = walk.c = Matrix::Identity(1, 1);
  walk.q = Matrix::Constant(1, 1, 1.0 / q);
  walk.r = Matrix::Constant(1, 1, 1.0 / r);
  walk.y = Eigen::Map<const Vector>(y.data(), static_cast<Eigen::Index>(steps));
  const testing::Smoothed exact = testing::KalmanSmoother(walk);
  const double log_evidence = exact.log_likelihood;
  const double mean = exact.mean.back()[0], var = exact.cov.back()(0, 0);
  for (int threads : {0, 2, -2}) {  // sequential, parallel on 2 threads, async on 2
    FactorGraph g;
    const Variable x = g.AddVariableArray("x", Family::kGaussian, {steps});
    const Variable w = g.AddVariableArray("w", Family::kGaussian, {steps - 1});
    g.AddGaussian(x[0], 0.0, 1.0);
    g.AddGaussian(w, 0.0, q);
    g.AddSum(x.Slice(1, steps), x.Slice(0, steps - 1), w, "walk");
    g.AddGaussian(g.AddObserved("y", y), x, r);
    g.Finalize();
    AsyncOptions async;
    async.threads = 2;
    async.threshold = 0.0;
    const Result result =
        threads == 0  ? SequentialScheduler(Sweeps(500, 1e-15)).Run(g)
        : threads > 0 ? ParallelScheduler(Sweeps(500, 1e-15), threads).Run(g)
                      : AsyncScheduler(Sweeps(500, 1e-15), async).Run(g);
    ASSERT_TRUE(result.converged()) << result.message;
    EXPECT_NEAR(result.free_energy.back(), -log_evidence, 1e-9 * std::abs(log_evidence))
        << threads;
    EXPECT_NEAR(g.Posterior<Gaussian>(x[steps - 1]).mean(), mean, 1e-9) << threads;
    EXPECT_NEAR(1.0 / g.Posterior<Gaussian>(x[steps - 1]).precision(), var, 1e-9 * var)
        << threads;
  }
}

TEST(DeterministicNodes, SharedInputOverManyFactors) {
  // s_n = a_n + b with one b for all n = 20,000 factors (its message is summed in blocks):
  // given b, y_n ~ N(b, 1 + 1/τ) independently, so q(b) and log p(y) are in closed form
  // (the evidence's covariance v I + 11ᵀ by the determinant lemma and Sherman–Morrison).
  const size_t n = 20000;
  const double tau = 3.0, v = 1.0 + 1.0 / tau;
  std::vector<double> y(n);
  for (size_t i = 0; i < n; ++i) y[i] = 0.7 + std::sin(0.37 * static_cast<double>(i));
  double sum = 0.0, sum_sq = 0.0;
  for (double yi : y) {
    sum += yi;
    sum_sq += yi * yi;
  }
  const double post_precision = 1.0 + static_cast<double>(n) / v;
  const double post_mean = (sum / v) / post_precision;
  const double quad = sum_sq / v - (sum / v) * (sum / v) / post_precision;
  const double log_det = static_cast<double>(n) * std::log(v) + std::log(post_precision);
  const double log_evidence = -0.5 * (static_cast<double>(n) * kLogTwoPi + log_det + quad);
  for (int threads : {0, 2}) {
    FactorGraph g;
    const Variable a = g.AddVariableArray("a", Family::kGaussian, {n});
    const Variable b = g.AddVariable("b", Family::kGaussian);
    const Variable s = g.AddVariableArray("s", Family::kGaussian, {n});
    g.AddGaussian(a, 0.0, 1.0);
    g.AddGaussian(b, 0.0, 1.0);
    g.AddSum(s, a, b);
    g.AddGaussian(g.AddObserved("y", y), s, tau);
    g.Finalize();
    const Result result = threads == 0 ? SequentialScheduler(Sweeps(200, 1e-15)).Run(g)
                                       : ParallelScheduler(Sweeps(200, 1e-15), threads).Run(g);
    ASSERT_TRUE(result.converged()) << result.message;
    EXPECT_NEAR(g.Posterior<Gaussian>(b).mean(), post_mean, 1e-9) << threads;
    EXPECT_NEAR(g.Posterior<Gaussian>(b).precision(), post_precision, 1e-9 * post_precision)
        << threads;
    EXPECT_NEAR(result.free_energy.back(), -log_evidence, 1e-9 * std::abs(log_evidence))
        << threads;
  }
}

// ---- What the kept messages rule out, and warm starts ----------------------------------------

TEST(DeterministicNodes, WarmStartsRestartTheMessagesAndWeightsAreRefused) {
  ScalarSum m(1.0, 2.0, -0.5, 3.0, 4.0, 2.25);
  FactorGraph& g = m.graph;
  const Variable a = m.a;
  const PlateId sum = m.sum;
  const Result first = SequentialScheduler(Sweeps(50, 1e-15)).Run(g);
  // Setting the posteriors again (a warm start) forgets the messages sent; inference then
  // returns to the same fixed point.
  for (const Variable& v : g.HiddenVariables()) g.SetNaturalParameters(v, g.NaturalParameters(v));
  const Result second = SequentialScheduler(Sweeps(50, 1e-15)).Run(g);
  ASSERT_TRUE(second.converged()) << second.message;
  EXPECT_NEAR(second.free_energy.back(), first.free_energy.back(),
              1e-12 * std::abs(first.free_energy.back()));
  ExpectErrorMentioning<Error>([&] { g.SetPlateWeight(sum, 2.0); }, {"weight stays 1"});
  g.SetPlateWeight(sum, 1.0);
  Scratch scratch = g.MakeScratch();
  ExpectErrorMentioning<Error>(
      [&] { g.UpdateElementsNaturalGradient(a.id(), 0, 1, 0.5, scratch); }, {"only a step of 1"});
  EXPECT_EQ(g.UpdateElementsNaturalGradient(a.id(), 0, 1, 1.0, scratch), 1u);
}

// ---- Threads ----------------------------------------------------------------------------

TEST(DeterministicNodes, ParallelSchedulerIsBitwiseThreadIndependent) {
  auto build = [] {
    auto g = std::make_unique<FactorGraph>();
    const size_t n = 3000;
    std::vector<double> y(n);
    for (size_t i = 0; i < n; ++i) y[i] = std::sin(0.01 * static_cast<double>(i)) + 0.5;
    const Variable a = g->AddVariableArray("a", Family::kGaussian, {n});
    const Variable b = g->AddVariableArray("b", Family::kGaussian, {n});
    const Variable s = g->AddVariableArray("s", Family::kGaussian, {n});
    const Variable tau = g->AddVariable("tau", Family::kGamma);
    g->AddGaussian(a, 0.0, 1.0);
    g->AddGaussian(b, 1.0, 2.0);
    g->AddSum(s, a, b);
    g->AddGamma(tau, 2.0, 1.0);
    g->AddGaussian(g->AddObserved("y", y), s, tau);
    g->Finalize();
    return g;
  };
  std::vector<double> reference;
  for (int threads : {1, 2, 3, 8}) {
    std::unique_ptr<FactorGraph> g = build();
    const Result r = ParallelScheduler(Sweeps(6), threads).Run(*g);
    if (reference.empty())
      reference = r.free_energy;
    else
      EXPECT_EQ(r.free_energy, reference) << threads << " threads";
  }
}

// ---- JSON -------------------------------------------------------------------------------

TEST(DeterministicNodes, JsonFormEqualsTheCppModel) {
  const TreeCase k;
  const std::string text = R"({
    "format": "vfe-model/1",
    "variables": [
      {"name": "x", "family": "MvGaussian", "dim": 3},
      {"name": "w", "family": "MvGaussian", "dim": 2},
      {"name": "z", "family": "MvGaussian", "dim": 2},
      {"name": "s", "family": "MvGaussian", "dim": 2},
      {"name": "y", "dim": 2, "observed": [1.5, -2.0]},
      {"name": "y2", "dim": 2, "observed": [2.5, -0.5]}
    ],
    "factors": [
      {"node": "MvGaussian", "out": "x", "mean": [0.5, -1.0, 2.0],
       "precision": [[2.0, 0.3, 0.0], [0.3, 1.5, -0.2], [0.0, -0.2, 1.0]]},
      {"node": "MvGaussian", "out": "w", "mean": [1.0, 0.0], "precision": [[4.0, 1.0], [1.0, 3.0]]},
      {"node": "MatrixProduct", "name": "project", "out": "z", "in": "x",
       "matrix": [[1.0, -0.5, 0.25], [0.3, 2.0, -1.0]]},
      {"node": "Sum", "name": "add noise", "out": "s", "in1": "z", "in2": "w"},
      {"node": "MvGaussian", "out": "y", "mean": "s", "precision": [[5.0, -1.0], [-1.0, 2.0]]},
      {"node": "LinearGaussian", "out": "y2", "in": "x",
       "matrix": [[0.5, 0.0, 1.0], [-1.0, 1.0, 0.5]], "precision": [[1.0, 0.2], [0.2, 0.8]]}
    ],
    "inference": {"iterations": 100, "tolerance": 1e-15}
  })";
  Model model = ParseModel(text);
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);
  std::unique_ptr<TreeModel> m = BuildTree(k);
  const Result from_cpp = SequentialScheduler(Sweeps(100, 1e-15)).Run(m->graph);
  EXPECT_NEAR(from_json.free_energy.back(), from_cpp.free_energy.back(),
              1e-12 * std::abs(from_cpp.free_energy.back()));
  ExpectMatrixNear(model.graph.Posterior<MvGaussian>(model.graph.Find("s")).mean(),
                   m->graph.Posterior<MvGaussian>(m->s).mean(), 1e-12, "E[s]",
                   Scale::kOnePlusRelative);
  // The normalised document names the same nodes and gives the same run.
  const std::string normalised = NormalisedModelJson(ParseModel(text));
  EXPECT_NE(normalised.find("\"MatrixProduct\""), std::string::npos);
  EXPECT_NE(normalised.find("\"in2\""), std::string::npos);
  Model again = ParseModel(normalised);
  const Result from_normalised = SequentialScheduler(again.inference.options).Run(again.graph);
  EXPECT_EQ(from_normalised.free_energy, from_json.free_energy);
}

void ExpectJsonError(const std::string& factor, const std::string& pointer,
                     const std::string& part, const std::string& more_variables = "") {
  const std::string text = R"({"format": "vfe-model/1", "variables": [
      {"name": "x", "family": "MvGaussian", "dim": 3},
      {"name": "v", "family": "MvGaussian", "dim": 2},
      {"name": "z", "family": "MvGaussian", "dim": 2})" + more_variables + R"(],
    "factors": [{"node": "MvGaussian", "out": "x", "mean": [0, 0, 0],
                 "precision": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
                {"node": "MvGaussian", "out": "v", "mean": [0, 0], "precision": [[1, 0], [0, 1]]},
                {"node": "MvGaussian", "out": "z", "mean": [0, 0], "precision": [[1, 0], [0, 1]]},
                )" + factor + "]}";
  EXPECT_THAT(ErrorMessage<Error>([&] { ParseModel(text); }),
              AllOf(StartsWith(pointer), HasSubstr(part)))
      << factor;
}

TEST(DeterministicNodes, JsonErrors) {
  ExpectJsonError(R"({"node": "MatrixProduct", "out": "z", "in": "x", "matrix": [[1, 0], [0, 1]]})",
                  "/factors/3", "matrix is 2x2");
  ExpectJsonError(R"({"node": "MatrixProduct", "out": "z", "in": "x",
                      "matrix": [[1, 2, 3], [2, 4, 6]]})",
                  "/factors/3", "rank 1");
  ExpectJsonError(R"({"node": "MatrixProduct", "out": "z", "in": "x"})", "/factors/3", "matrix");
  ExpectJsonError(R"({"node": "Sum", "out": "z", "in1": "x", "in2": "v"})", "/factors/3",
                  "dimension");
  ExpectJsonError(R"({"node": "Sum", "out": "z", "in1": "c", "in2": "v"})", "/factors/3",
                  "observed", R"(, {"name": "c", "dim": 2, "observed": [1.0, 2.0]})");
  ExpectJsonError(R"({"node": "Sum", "out": "z", "in1": "v"})", "/factors/3", "in2");
  ExpectJsonError(R"({"node": "Sum", "out": "z", "in1": "v", "in2": "v"})", "/factors/3",
                  "distinct");
}

// ---- Errors in C++ -----------------------------------------------------------------------

TEST(DeterministicNodes, BuildErrors) {
  {  // family mismatch: a Gaussian plus an MvGaussian of dimension 1
    FactorGraph g;
    const Variable a = g.AddVariable("a", Family::kGaussian);
    const Variable b = g.AddVariable("b", Family::kMvGaussian, 1);
    const Variable s = g.AddVariable("s", Family::kGaussian);
    g.AddSum(s, a, b, "mixed");
    ExpectErrorMentioning<Error>([&] { g.Finalize(); }, {"must be of one family"});
  }
  {  // a Gamma input
    FactorGraph g;
    const Variable a = g.AddVariable("a", Family::kGamma);
    const Variable s = g.AddVariable("s", Family::kGaussian);
    const Variable b = g.AddVariable("b", Family::kGaussian);
    g.AddSum(s, a, b, "bad");
    ExpectErrorMentioning<Error>([&] { g.Finalize(); }, {"expects a Gaussian or MvGaussian"});
  }
  {  // a tall matrix: out would be degenerate
    FactorGraph g;
    const Variable x = g.AddVariable("x", Family::kGaussian);
    const Variable z = g.AddVariable("z", Family::kMvGaussian, 2);
    g.AddMatrixProduct(z, Matrix::Constant(2, 1, 1.0), x, "tall");
    ExpectErrorMentioning<Error>([&] { g.Finalize(); }, {"full row rank"});
  }
  {  // a constant input
    FactorGraph g;
    const Variable s = g.AddVariable("s", Family::kGaussian);
    const Variable b = g.AddVariable("b", Family::kGaussian);
    g.AddSum(s, 1.0, b, "offset");
    ExpectErrorMentioning<Error>([&] { g.Finalize(); }, {"hidden"});
  }
  {  // dimensions beyond the limit
    FactorGraph g;
    const Variable a = g.AddVariable("a", Family::kMvGaussian, 17);
    const Variable b = g.AddVariable("b", Family::kMvGaussian, 17);
    const Variable s = g.AddVariable("s", Family::kMvGaussian, 17);
    g.AddSum(s, a, b, "big");
    ExpectErrorMentioning<Error>([&] { g.Finalize(); }, {"up to 16"});
  }
  {  // non-finite matrix
    FactorGraph g;
    const Variable x = g.AddVariable("x", Family::kGaussian);
    const Variable z = g.AddVariable("z", Family::kGaussian);
    g.AddMatrixProduct(z, Matrix::Constant(1, 1, std::nan("")), x, "nan");
    ExpectErrorMentioning<Error>([&] { g.Finalize(); }, {"finite"});
  }
}

TEST(DeterministicNodes, MonteCarloFreeEnergyRefusesThemByName) {
  FactorGraph g;
  const Variable a = g.AddVariable("a", Family::kGaussian);
  const Variable b = g.AddVariable("b", Family::kGaussian);
  const Variable s = g.AddVariable("s", Family::kGaussian);
  g.AddGaussian(a, 0.0, 1.0);
  g.AddGaussian(b, 0.0, 1.0);
  g.AddSum(s, a, b, "the sum");
  g.Finalize();
  ExpectErrorMentioning<Error>([&] { g.MonteCarloFreeEnergy(10); }, {"the sum"});
}

}  // namespace
}  // namespace vfe
