// Tree-shaped clusters (a joint posterior over the elements of one variable): hidden Markov
// chains against the forward–backward algorithm, linear Gaussian state-space models against
// a textbook Kalman filter and RTS smoother, trees against enumeration, learned parameters
// with the free energy never rising, and the errors for what a cluster cannot be.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <Eigen/LU>

#include "tests/testing/clusters.h"
#include "tests/testing/expect.h"
#include "tests/testing/models.h"
#include "tests/testing/textbook.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;
using testing::ErrorMessage;
using testing::ForwardBackward;
using testing::ForwardBackwardResult;
using testing::Hmm;
using testing::KalmanSmoother;
using testing::MatrixNear;
using testing::Norm;
using testing::RandomHmm;
using testing::Scale;
using testing::Smoothed;
using testing::StateSpace;

// ---- Hidden Markov chains --------------------------------------------------------------------

// The states x_0, …, x_{T−1} of a hidden Markov chain (testing::Hmm) share one joint
// posterior, checked against the forward–backward algorithm.

struct HmmGraph {
  FactorGraph graph;
  Variable x;
};

std::unique_ptr<HmmGraph> MakeHmmGraph(const Hmm& hmm, bool cluster) {
  auto m = std::make_unique<HmmGraph>();
  const size_t t_max = hmm.y.size();
  m->x = m->graph.AddVariableArray("x", Family::kCategorical, {t_max},
                                   static_cast<int>(hmm.pi.size()));
  m->graph.AddCategorical(m->x[0], hmm.pi, "initial");
  m->graph.AddTransition(m->x.Slice(1, t_max), m->x.Slice(0, t_max - 1), hmm.a, "dynamics");
  m->graph.AddTransition(
      m->graph.AddObservedCategorical("y", hmm.y, static_cast<int>(hmm.b.rows())), m->x, hmm.b,
      "emissions");
  if (cluster) m->graph.AddCluster(m->x);
  m->graph.Finalize();
  return m;
}

TEST(Clusters, HiddenMarkovChainGivesTheForwardAlgorithmsEvidenceAndMarginals) {
  for (uint64_t seed : {1, 2, 3}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Hmm hmm = RandomHmm(3, 4, 1000, seed);
    const ForwardBackwardResult exact = ForwardBackward(hmm);
    std::unique_ptr<HmmGraph> m = MakeHmmGraph(hmm, /*cluster=*/true);
    SchedulerOptions options;
    options.max_iterations = 3;
    options.tolerance = 0;
    const Result result = SequentialScheduler(options).Run(m->graph);
    ASSERT_EQ(result.iterations, 3) << result.message;
    // One sweep solves the chain: F = −log p(y), and it stays there.
    for (double f : result.free_energy) EXPECT_NEAR(f, -exact.log_z, 1e-9 * std::abs(f));
    for (size_t t = 0; t < hmm.y.size(); ++t) {
      const Vector p = m->graph.Posterior<Categorical>(m->x[t]).p();
      for (Eigen::Index k = 0; k < p.size(); ++k)
        ASSERT_NEAR(p[k], exact.gamma[t][k], 1e-10) << "x[" << t << "]";
    }
    // Mean field on the same chain only bounds the evidence.
    std::unique_ptr<HmmGraph> mean_field = MakeHmmGraph(hmm, /*cluster=*/false);
    options.max_iterations = 200;
    options.tolerance = 1e-12;
    const Result mf = SequentialScheduler(options).Run(mean_field->graph);
    EXPECT_GT(mf.free_energy.back(), -exact.log_z + 1.0);
  }
}

TEST(Clusters, ChainWithImpossibleTransitionsIsExact) {
  // A deterministic cycle 0 → 1 → 2 → 0 (zeros in A): every path but one is impossible.
  Hmm hmm;
  hmm.pi = (Vector(3) << 1.0, 0.0, 0.0).finished();
  hmm.a = Matrix::Zero(3, 3);
  hmm.a(1, 0) = hmm.a(2, 1) = hmm.a(0, 2) = 1.0;
  hmm.b = (Matrix(2, 3) << 0.9, 0.5, 0.2, 0.1, 0.5, 0.8).finished();
  hmm.y = {0, 1, 1, 0, 0, 1, 0};
  const ForwardBackwardResult exact = ForwardBackward(hmm);
  std::unique_ptr<HmmGraph> m = MakeHmmGraph(hmm, true);
  SchedulerOptions options;
  options.max_iterations = 2;
  const Result result = SequentialScheduler(options).Run(m->graph);
  ASSERT_FALSE(result.free_energy.empty()) << result.message;
  EXPECT_NEAR(result.free_energy.back(), -exact.log_z, 1e-12);
  for (size_t t = 0; t < hmm.y.size(); ++t)
    EXPECT_NEAR(m->graph.Posterior<Categorical>(m->x[t]).p()[static_cast<Eigen::Index>(t % 3)],
                1.0, 1e-15);
}

TEST(Clusters, ParallelSchedulerGivesTheSequentialResultBitForBit) {
  const Hmm hmm = RandomHmm(4, 3, 3000, 7);
  std::unique_ptr<HmmGraph> sequential = MakeHmmGraph(hmm, true);
  SchedulerOptions options;
  options.max_iterations = 2;
  options.tolerance = 0;
  const Result expected = SequentialScheduler(options).Run(sequential->graph);
  for (int threads : {1, 2, 4}) {
    std::unique_ptr<HmmGraph> m = MakeHmmGraph(hmm, true);
    const Result result = ParallelScheduler(options, threads).Run(m->graph);
    EXPECT_EQ(result.free_energy, expected.free_energy) << threads << " threads";
    for (size_t t = 0; t < hmm.y.size(); t += 97)
      EXPECT_EQ(m->graph.Posterior<Categorical>(m->x[t]).p(),
                sequential->graph.Posterior<Categorical>(sequential->x[t]).p());
  }
}

TEST(Clusters, AsyncSchedulerReachesTheSequentialFixedPoint) {
  // A learned transition matrix and a chain: the cluster is one block of the flow graph.
  const Hmm hmm = RandomHmm(3, 3, 500, 13);
  auto build = [&] {
    auto m = std::make_unique<HmmGraph>();
    const size_t t_max = hmm.y.size();
    m->x = m->graph.AddVariableArray("x", Family::kCategorical, {t_max}, 3);
    const Variable a = m->graph.AddVariableArray("A", Family::kDirichlet, {3}, 3);
    m->graph.AddMatrixDirichlet(a, Matrix::Constant(3, 3, 1.0));
    m->graph.AddCategorical(m->x[0], hmm.pi);
    m->graph.AddTransition(m->x.Slice(1, t_max), m->x.Slice(0, t_max - 1), a);
    m->graph.AddTransition(m->graph.AddObservedCategorical("y", hmm.y, 3), m->x, hmm.b);
    m->graph.AddCluster(m->x);
    m->graph.Finalize();
    return m;
  };
  SchedulerOptions options;
  options.max_iterations = 2000;
  options.tolerance = 1e-14;
  std::unique_ptr<HmmGraph> sequential = build();
  const Result expected = SequentialScheduler(options).Run(sequential->graph);
  ASSERT_TRUE(expected.converged()) << expected.message;
  for (int threads : {1, 2}) {
    std::unique_ptr<HmmGraph> m = build();
    AsyncOptions async;
    async.threads = threads;
    async.threshold = 1e-12;
    const Result result = AsyncScheduler(options, async).Run(m->graph);
    ASSERT_NE(result.termination, Termination::kNumericalFailure) << result.message;
    EXPECT_NEAR(result.free_energy.back(), expected.free_energy.back(),
                1e-8 * std::abs(expected.free_energy.back()))
        << threads << " threads";
  }
}

/// Σ_{t ≥ 1} ξ_t(x_t = j, x_{t−1} = k): the expected transition counts of the chain `hmm`
/// with its transition matrix replaced by `psi` (the sub-stochastic exp E[log A] of a learned
/// A), by the forward–backward algorithm.
Matrix ExpectedTransitionCounts(Hmm hmm, const Matrix& psi) {
  hmm.a = psi;
  const ForwardBackwardResult pairs = ForwardBackward(hmm);
  Matrix counts = Matrix::Zero(psi.rows(), psi.cols());
  for (size_t t = 1; t < hmm.y.size(); ++t) counts += pairs.xi[t];
  return counts;
}

TEST(Clusters, LearnedTransitionMatrixNeverRaisesTheFreeEnergy) {
  // The transition matrix A ~ MatrixDirichlet learned by VMP outside the chain's cluster: its
  // message counts the pairs' joint posteriors, and F never rises after either update.
  const Hmm hmm = RandomHmm(3, 3, 400, 11);
  FactorGraph graph;
  const size_t t_max = hmm.y.size();
  const Variable x = graph.AddVariableArray("x", Family::kCategorical, {t_max}, 3);
  const Variable a = graph.AddVariableArray("A", Family::kDirichlet, {3}, 3);
  graph.AddMatrixDirichlet(a, Matrix::Constant(3, 3, 1.0), "A prior");
  graph.AddCategorical(x[0], hmm.pi);
  graph.AddTransition(x.Slice(1, t_max), x.Slice(0, t_max - 1), a, "dynamics");
  graph.AddTransition(graph.AddObservedCategorical("y", hmm.y, 3), x, hmm.b, "emissions");
  graph.AddCluster(x);
  graph.Finalize();
  Scratch scratch = graph.MakeScratch();
  double before = graph.FreeEnergy(scratch);
  for (int sweep = 0; sweep < 30; ++sweep) {
    ASSERT_EQ(graph.UpdateElements(x.id(), 0, t_max, scratch), t_max);
    double after = graph.FreeEnergy(scratch);
    ASSERT_LE(after, before + 1e-10 * std::abs(before)) << "x, sweep " << sweep;
    before = after;
    ASSERT_EQ(graph.UpdateElements(a.id(), 0, 3, scratch), 3u);
    after = graph.FreeEnergy(scratch);
    ASSERT_LE(after, before + 1e-10 * std::abs(before)) << "A, sweep " << sweep;
    before = after;
  }
  // q(A) = prior + the expected transition counts Σ_t q(x_t = j, x_{t−1} = k) of the pairs'
  // joint posteriors, which an independent forward–backward with exp E[log A] gives.
  ASSERT_EQ(graph.UpdateElements(x.id(), 0, t_max, scratch), t_max);
  Matrix log_a(3, 3);
  for (int k = 0; k < 3; ++k) log_a.col(k) = graph.Posterior<Dirichlet>(a[k]).mean_log();
  const Matrix counts = ExpectedTransitionCounts(hmm, log_a.array().exp().matrix());
  ASSERT_EQ(graph.UpdateElements(a.id(), 0, 3, scratch), 3u);
  for (int k = 0; k < 3; ++k) {
    const Vector alpha_k = graph.Posterior<Dirichlet>(a[k]).alpha();
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(alpha_k[j], 1.0 + counts(j, k), 1e-6 * counts(j, k));
  }
}

// ---- Linear Gaussian state-space models ------------------------------------------------------

struct StateSpaceGraph {
  FactorGraph graph;
  Variable x;
};

std::unique_ptr<StateSpaceGraph> MakeStateSpaceGraph(const StateSpace& s) {
  auto m = std::make_unique<StateSpaceGraph>();
  const size_t t_max = static_cast<size_t>(s.y.rows());
  m->x = m->graph.AddVariableArray("x", Family::kMvGaussian, {t_max},
                                   static_cast<int>(s.a.rows()));
  m->graph.AddMvGaussian(m->x[0], s.m0, Matrix(s.p0.inverse()), "initial");
  m->graph.AddLinearGaussian(m->x.Slice(1, t_max), m->x.Slice(0, t_max - 1), s.a,
                             Matrix(s.q.inverse()), "dynamics");
  m->graph.AddLinearGaussian(m->graph.AddObservedRows("y", s.y), m->x, s.c,
                             Matrix(s.r.inverse()), "observations");
  m->graph.AddCluster(m->x);
  m->graph.Finalize();
  return m;
}

TEST(Clusters, StateSpaceModelGivesTheKalmanLikelihoodAndTheSmoothedPosteriors) {
  const StateSpace s = testing::Tracking(2, 1000, 5);
  const Smoothed exact = KalmanSmoother(s);
  std::unique_ptr<StateSpaceGraph> m = MakeStateSpaceGraph(s);
  SchedulerOptions options;
  options.max_iterations = 2;
  options.tolerance = 0;
  const Result result = SequentialScheduler(options).Run(m->graph);
  ASSERT_EQ(result.iterations, 2) << result.message;
  for (double f : result.free_energy)
    EXPECT_NEAR(f, -exact.log_likelihood, 1e-9 * std::abs(exact.log_likelihood));
  for (size_t t = 0; t < 1000; ++t) {
    const MvGaussian q = m->graph.Posterior<MvGaussian>(m->x[t]);
    ASSERT_TRUE(MatrixNear(q.mean(), exact.mean[t], 1e-9, Scale::kOnePlusRelative, Norm::kFrobenius)
        )
        << t;
    ASSERT_TRUE(MatrixNear(q.covariance(), exact.cov[t], 1e-9, Scale::kRelative, Norm::kFrobenius))
        << t;
  }
}

TEST(Clusters, ScalarRandomWalkWithLearnedNoiseNeverRaisesTheFreeEnergy) {
  // x_t = x_{t−1} + N(0, 1/τ) with τ ~ Gamma learned outside the chain, y_t = x_t + N(0, 1).
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  const size_t t_max = 500;
  std::vector<double> y;
  double x = 0;
  for (size_t t = 0; t < t_max; ++t) {
    x += 0.3 * normal(rng);
    y.push_back(x + normal(rng));
  }
  FactorGraph graph;
  const Variable states = graph.AddVariableArray("x", Family::kGaussian, {t_max});
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddGamma(tau, 1.0, 1.0);
  graph.AddGaussian(states[0], 0.0, 0.01);
  graph.AddLinearGaussian(states.Slice(1, t_max), states.Slice(0, t_max - 1),
                          Matrix::Identity(1, 1), tau, "walk");
  graph.AddGaussian(graph.AddObserved("y", y), states, 1.0);
  graph.AddCluster(states);
  graph.Finalize();
  Scratch scratch = graph.MakeScratch();
  double before = graph.FreeEnergy(scratch);
  for (int sweep = 0; sweep < 300; ++sweep) {
    ASSERT_EQ(graph.UpdateElements(states.id(), 0, t_max, scratch), t_max);
    double after = graph.FreeEnergy(scratch);
    ASSERT_LE(after, before + 1e-10 * std::abs(before)) << "x, sweep " << sweep;
    before = after;
    ASSERT_TRUE(graph.UpdateElement(tau.id(), 0, scratch));
    after = graph.FreeEnergy(scratch);
    ASSERT_LE(after, before + 1e-10 * std::abs(before)) << "tau, sweep " << sweep;
    before = after;
  }
  // At the fixed point q(x) is the smoothed posterior of the walk with precision E[τ], and
  // q(τ) = Gamma(1 + (T−1)/2, 1 + ½ Σ_t E[(x_t − x_{t−1})²]) with those pairs: check it with
  // an independent RTS smoother and its lag-one covariances.
  const Gamma q_tau = graph.Posterior<Gamma>(tau);
  StateSpace walk;
  walk.m0 = Vector::Zero(1);
  walk.p0 = Matrix::Constant(1, 1, 100.0);
  walk.a = walk.c = walk.r = Matrix::Identity(1, 1);
  walk.q = Matrix::Constant(1, 1, 1.0 / q_tau.mean());
  walk.y = Eigen::Map<const Vector>(y.data(), static_cast<Eigen::Index>(t_max));
  const Smoothed exact = KalmanSmoother(walk);
  double squares = 0;
  for (size_t t = 1; t < t_max; ++t) {
    const double d = exact.mean[t][0] - exact.mean[t - 1][0];
    squares += d * d + exact.cov[t](0, 0) + exact.cov[t - 1](0, 0) - 2 * exact.lag_one[t - 1](0, 0);
  }
  EXPECT_NEAR(q_tau.shape(), 1.0 + 0.5 * (t_max - 1), 1e-9);
  EXPECT_NEAR(q_tau.rate(), 1.0 + 0.5 * squares, 1e-6 * q_tau.rate());
}

// ---- Trees -----------------------------------------------------------------------------------

TEST(Clusters, TreeOfPotentialsGivesTheEnumeratedPartitionFunction) {
  // x_0 joined to x_1..x_3, x_3 to x_4 and x_5; random pairwise and unary log-potentials.
  std::mt19937_64 rng(21);
  std::normal_distribution<double> normal;
  const int k = 3;
  auto table = [&](size_t entries) {
    std::vector<double> t(entries);
    for (double& v : t) v = normal(rng);
    return t;
  };
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kCategorical, {6}, k);
  const std::vector<double> star = table(3 * k * k), branch = table(2 * k * k),
                            fields = table(6 * k);
  graph.AddPotential({x[0], x.Slice(1, 4)}, star, "star");
  graph.AddPotential({x.Slice(4, 6), x[3]}, branch, "branch");
  graph.AddPotential({x}, fields, "fields");
  graph.AddCluster(x);
  graph.Finalize();
  Scratch scratch = graph.MakeScratch();
  ASSERT_EQ(graph.UpdateElements(x.id(), 0, 6, scratch), 6u);
  // Enumerate the 3^6 configurations.
  double log_z = -INFINITY;
  std::vector<Vector> marginal(6, Vector::Zero(k));
  std::vector<double> weights;
  std::vector<int> s(6, 0);
  for (int count = 0; count < 729; ++count) {
    double e = 0;
    for (int i = 1; i <= 3; ++i) e += star[(i - 1) * k * k + s[0] * k + s[i]];
    for (int i = 4; i <= 5; ++i) e += branch[(i - 4) * k * k + s[i] * k + s[3]];
    for (int i = 0; i < 6; ++i) e += fields[i * k + s[i]];
    log_z = std::max(log_z, e) + std::log1p(std::exp(-std::abs(log_z - e)));
    weights.push_back(e);
    for (int i = 0; i < 6 && ++s[i] == k; ++i) s[i] = 0;
  }
  for (int count = 0; count < 729; ++count) {
    const double p = std::exp(weights[count] - log_z);
    for (int i = 0; i < 6; ++i) marginal[i][s[i]] += p;
    for (int i = 0; i < 6 && ++s[i] == k; ++i) s[i] = 0;
  }
  EXPECT_NEAR(graph.FreeEnergy(scratch), -log_z, 1e-12 * std::abs(log_z));
  for (int i = 0; i < 6; ++i) {
    const Vector p = graph.Posterior<Categorical>(x[i]).p();
    for (int v = 0; v < k; ++v) EXPECT_NEAR(p[v], marginal[i][v], 1e-12) << "x[" << i << "]";
  }
}

// ---- What a cluster cannot be ----------------------------------------------------------------

TEST(Clusters, CycleIsRefusedNamingIt) {
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kCategorical, {4}, 2);
  const std::vector<double> coupling = {1, 0, 0, 1};
  graph.AddPotential({x.Slice(1, 4), x.Slice(0, 3)}, coupling, "chain");
  graph.AddPotential({x[3], x[0]}, coupling, "closing");
  graph.AddCluster(x);
  EXPECT_THAT(ErrorMessage<Error>([&] { graph.Finalize(); }),
              HasSubstr("cluster 'x' has a cycle (x[3] – x[0] – x[1] – x[2] – x[3]); a cluster "
                        "must be a tree"));
}

TEST(Clusters, BadClustersAreRefused) {
  {
    FactorGraph graph;
    const Variable x = graph.AddVariableArray("x", Family::kCategorical, {3}, 2);
    graph.AddCluster(x);
    EXPECT_THAT(ErrorMessage<GraphError>([&] { graph.AddCluster(x); }),
                HasSubstr("variable 'x' is already in a cluster"));
    EXPECT_THAT(ErrorMessage<GraphError>([&] { graph.AddCluster(x.Slice(0, 2)); }),
                HasSubstr("already in a cluster"));
  }
  {
    FactorGraph graph;
    const Variable x = graph.AddVariableArray("x", Family::kCategorical, {3}, 2);
    EXPECT_THAT(ErrorMessage<GraphError>([&] { graph.AddCluster(x.Slice(0, 2)); }),
                HasSubstr("pass the whole variable 'x' (3 elements)"));
    const Variable tau = graph.AddVariable("tau", Family::kGamma);
    EXPECT_THAT(ErrorMessage<GraphError>([&] { graph.AddCluster(tau); }),
                HasSubstr("variable 'tau' is Gamma; a cluster holds Categorical, Gaussian or "
                          "MvGaussian elements"));
  }
  {
    // A scalar Gaussian random walk through the Gaussian node (mean = x[t−1]) cannot be a
    // pair: the error says which plate and what would work.
    FactorGraph graph;
    const Variable x = graph.AddVariableArray("x", Family::kGaussian, {5});
    graph.AddGaussian(x[0], 0.0, 1.0);
    graph.AddGaussian(x.Slice(1, 5), x.Slice(0, 4), 1.0, "walk");
    graph.AddCluster(x);
    EXPECT_THAT(ErrorMessage<Error>([&] { graph.Finalize(); }),
                HasSubstr("factor 'walk' (Gaussian) joins two elements of cluster 'x' through "
                          "slots 'out' and 'mean', but a Gaussian node cannot join a pair"));
  }
  {
    // Element updates and partial orders are refused for a cluster.
    const Hmm hmm = RandomHmm(2, 2, 6, 1);
    std::unique_ptr<HmmGraph> m = MakeHmmGraph(hmm, true);
    Scratch scratch = m->graph.MakeScratch();
    EXPECT_THROW(m->graph.UpdateElement(m->x.id(), 2, scratch), GraphError);
    EXPECT_THROW(m->graph.UpdateElements(m->x.id(), 1, 6, scratch), GraphError);
    SchedulerOptions options;
    options.order = {m->x.Slice(0, 3)};
    EXPECT_THAT(ErrorMessage<OptionsError>([&] { SequentialScheduler(options).Run(m->graph); }),
                HasSubstr("'x' is a cluster with one joint posterior"));
  }
}


// ---- Every number of states (the passes are compiled for K = 2..8 and for any K) ------------

TEST(Clusters, ChainsOfEveryNumberOfStatesGiveTheForwardAlgorithm) {
  for (int k = 2; k <= 10; ++k) {
    SCOPED_TRACE("K = " + std::to_string(k));
    const Hmm hmm = RandomHmm(k, 3, 300, 100 + static_cast<uint64_t>(k));
    const ForwardBackwardResult exact = ForwardBackward(hmm);
    std::unique_ptr<HmmGraph> m = MakeHmmGraph(hmm, /*cluster=*/true);
    Scratch scratch = m->graph.MakeScratch();
    ASSERT_EQ(m->graph.UpdateElements(m->x.id(), 0, hmm.y.size(), scratch), hmm.y.size());
    EXPECT_NEAR(m->graph.FreeEnergy(scratch), -exact.log_z,
                1e-11 * std::abs(exact.log_z));
    for (size_t t = 0; t < hmm.y.size(); ++t) {
      const Vector p = m->graph.Posterior<Categorical>(m->x[t]).p();
      for (Eigen::Index j = 0; j < p.size(); ++j)
        ASSERT_NEAR(p[j], exact.gamma[t][j], 1e-12) << "x[" << t << "]";
    }
  }
}

TEST(Clusters, ChainsOfEveryNumberOfStatesCountTheTextbookPairs) {
  // The pairs' joints, read through a learned transition matrix: q(A) = prior + Σ_t
  // q(x_t = j, x_{t−1} = k), the pairs from a forward–backward with exp E[log A].
  for (int k = 2; k <= 10; ++k) {
    SCOPED_TRACE("K = " + std::to_string(k));
    const Hmm hmm = RandomHmm(k, 3, 200, 200 + static_cast<uint64_t>(k));
    const size_t t_max = hmm.y.size();
    FactorGraph graph;
    const Variable x = graph.AddVariableArray("x", Family::kCategorical, {t_max}, k);
    const Variable a = graph.AddVariableArray("A", Family::kDirichlet, {size_t(k)}, k);
    Matrix prior(k, k);
    for (int j = 0; j < k; ++j)
      for (int i = 0; i < k; ++i) prior(i, j) = 0.5 + 0.25 * ((i + 2 * j) % 5);
    graph.AddMatrixDirichlet(a, prior);
    graph.AddCategorical(x[0], hmm.pi);
    graph.AddTransition(x.Slice(1, t_max), x.Slice(0, t_max - 1), a);
    graph.AddTransition(graph.AddObservedCategorical("y", hmm.y, 3), x, hmm.b);
    graph.AddCluster(x);
    graph.Finalize();
    Scratch scratch = graph.MakeScratch();
    Matrix log_a(k, k);
    for (int j = 0; j < k; ++j) log_a.col(j) = graph.Posterior<Dirichlet>(a[j]).mean_log();
    ASSERT_EQ(graph.UpdateElements(x.id(), 0, t_max, scratch), t_max);
    ASSERT_EQ(graph.UpdateElements(a.id(), 0, k, scratch), size_t(k));
    const Matrix counts = ExpectedTransitionCounts(hmm, log_a.array().exp().matrix());
    for (int i = 0; i < k; ++i) {
      const Vector alpha_i = graph.Posterior<Dirichlet>(a[i]).alpha();
      for (int j = 0; j < k; ++j)
        EXPECT_NEAR(alpha_i[j], prior(j, i) + counts(j, i), 1e-11 * (1.0 + counts(j, i)))
            << "A[" << j << ", " << i << "]";
    }
  }
}

TEST(Clusters, TreesOfEveryNumberOfStatesGiveTheEnumeratedPartitionFunction) {
  // x_0 – x_1 – x_3 – x_4 – x_5 and x_0 – x_2: children in slot b (x_1, x_2 of the star, x_4,
  // x_5 of the tail, whose two factors share one table) and in slot a (x_3).
  for (int k : {2, 3, 4, 5, 8, 9}) {
    SCOPED_TRACE("K = " + std::to_string(k));
    std::mt19937_64 rng(300 + static_cast<uint64_t>(k));
    std::normal_distribution<double> normal;
    auto table = [&](size_t entries) {
      std::vector<double> t(entries);
      for (double& v : t) v = 1.5 * normal(rng);
      return t;
    };
    const size_t kk = static_cast<size_t>(k) * k;
    FactorGraph graph;
    const Variable x = graph.AddVariableArray("x", Family::kCategorical, {6}, k);
    const std::vector<double> star = table(2 * kk), leaf = table(kk), tail = table(kk),
                              fields = table(6 * static_cast<size_t>(k));
    graph.AddPotential({x[0], x.Slice(1, 3)}, star, "star");
    graph.AddPotential({x[3], x[1]}, leaf, "leaf");
    graph.AddPotential({x.Slice(3, 5), x.Slice(4, 6)}, tail, "tail");
    graph.AddPotential({x}, fields, "fields");
    graph.AddCluster(x);
    graph.Finalize();
    Scratch scratch = graph.MakeScratch();
    ASSERT_EQ(graph.UpdateElements(x.id(), 0, 6, scratch), 6u);
    // Enumerate the K^6 configurations.
    std::vector<double> energy;
    std::vector<int> s(6, 0);
    double top = -INFINITY;
    do {
      double e = star[s[0] * k + s[1]] + star[kk + s[0] * k + s[2]] + leaf[s[3] * k + s[1]] +
                 tail[s[3] * k + s[4]] + tail[s[4] * k + s[5]];
      for (int i = 0; i < 6; ++i) e += fields[i * k + s[i]];
      energy.push_back(e);
      top = std::max(top, e);
      int i = 0;
      while (i < 6 && ++s[i] == k) s[i++] = 0;
      if (i == 6) break;
    } while (true);
    double z = 0.0;
    for (double e : energy) z += std::exp(e - top);
    const double log_z = top + std::log(z);
    std::vector<Vector> marginal(6, Vector::Zero(k));
    for (double e : energy) {
      const double p = std::exp(e - log_z);
      for (int i = 0; i < 6; ++i) marginal[i][s[i]] += p;
      int i = 0;
      while (i < 6 && ++s[i] == k) s[i++] = 0;
    }
    EXPECT_NEAR(graph.FreeEnergy(scratch), -log_z, 1e-12 * std::max(1.0, std::abs(log_z)));
    for (int i = 0; i < 6; ++i) {
      const Vector p = graph.Posterior<Categorical>(x[i]).p();
      for (int v = 0; v < k; ++v) EXPECT_NEAR(p[v], marginal[i][v], 1e-12) << "x[" << i << "]";
    }
  }
}

}  // namespace
}  // namespace vfe
