// The parallel scan of Categorical chains (ClusterSolver::kParallelScan on a hidden Markov
// chain): the same posteriors, pair tables and free energy as the sequential forward–backward
// solver and as the textbook forward–backward (tests/testing/textbook.h); learned matrices
// outside the chain; long chains with sharp evidence; the same result bit for bit on any
// number of threads; the errors for clusters that are not one chain.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include <tbb/task_arena.h>

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
using testing::MatrixNear;
using testing::RandomHmm;
using testing::SampleHmm;
using testing::Scale;

struct HmmGraph {
  FactorGraph graph;
  Variable x, a, b;
  PlateId dynamics = 0;
};

/// The HMM as a factor graph with the states in one cluster; with `learned`, A and B are
/// matrix Dirichlet variables (priors 1 and 1 + 2·I) instead of the known matrices.
std::unique_ptr<HmmGraph> BuildHmm(const Hmm& hmm, ClusterSolver solver, bool learned) {
  auto m = std::make_unique<HmmGraph>();
  const size_t t_max = hmm.y.size();
  const int k = static_cast<int>(hmm.pi.size()), symbols = static_cast<int>(hmm.b.rows());
  FactorGraph& g = m->graph;
  m->x = g.AddVariableArray("x", Family::kCategorical, {t_max}, k);
  const Variable y = g.AddObservedCategorical("y", hmm.y, symbols);
  g.AddCategorical(m->x[0], hmm.pi, "initial");
  if (learned) {
    m->a = g.AddVariableArray("A", Family::kDirichlet, {static_cast<size_t>(k)}, k);
    m->b = g.AddVariableArray("B", Family::kDirichlet, {static_cast<size_t>(k)}, symbols);
    g.AddMatrixDirichlet(m->a, Matrix::Ones(k, k));
    Matrix b_prior = Matrix::Ones(symbols, k);
    for (int i = 0; i < std::min(k, symbols); ++i) b_prior(i, i) += 2.0;
    g.AddMatrixDirichlet(m->b, b_prior);
    if (t_max > 1)
      m->dynamics = g.AddTransition(m->x.Slice(1, t_max), m->x.Slice(0, t_max - 1), m->a);
    g.AddTransition(y, m->x, m->b);
  } else {
    if (t_max > 1)
      m->dynamics = g.AddTransition(m->x.Slice(1, t_max), m->x.Slice(0, t_max - 1), hmm.a);
    g.AddTransition(y, m->x, hmm.b);
  }
  g.AddCluster(m->x, solver);
  g.Finalize();
  return m;
}

/// Every marginal of the two runs' states to `tolerance` (absolute, as probabilities).
void ExpectSameStates(const HmmGraph& a, const HmmGraph& b, size_t t_max, double tolerance) {
  for (size_t t = 0; t < t_max; ++t) {
    const Vector pa = a.graph.Posterior<Categorical>(a.x[t]).p();
    const Vector pb = b.graph.Posterior<Categorical>(b.x[t]).p();
    ASSERT_TRUE(MatrixNear(pa, pb, tolerance)) << "x[" << t << "]";
  }
}

/// F and its parts (every plate's energy, which holds the pairs' joints, and the entropy,
/// which holds the cluster's information) of the two graphs. The entropy of a cluster is
/// log Z minus the expected log-potentials, two sums of the size of F (a sum over the chain
/// whose rounding grows with T): it is compared relative to F.
void ExpectSameFreeEnergy(FactorGraph& a, FactorGraph& b, double tolerance) {
  Scratch scratch_a = a.MakeScratch(), scratch_b = b.MakeScratch();
  const double f = b.FreeEnergy(scratch_b);
  EXPECT_SCALED_NEAR(a.FreeEnergy(scratch_a), f, tolerance, Scale::kRelativeAboveOne);
  const FactorGraph::FreeEnergyTerms parts_a = a.FreeEnergyParts(scratch_a);
  const FactorGraph::FreeEnergyTerms parts_b = b.FreeEnergyParts(scratch_b);
  EXPECT_NEAR(parts_a.entropy, parts_b.entropy, tolerance * std::max(1.0, std::abs(f)));
  ASSERT_EQ(parts_a.plate_energy.size(), parts_b.plate_energy.size());
  for (size_t p = 0; p < parts_a.plate_energy.size(); ++p)
    EXPECT_SCALED_NEAR(parts_a.plate_energy[p], parts_b.plate_energy[p], tolerance,
                       Scale::kRelativeAboveOne)
        << "plate " << p;
}

TEST(ParallelHmm, MatchesTheSequentialSolverOverSweepsWithLearnedMatrices) {
  // 255, 256 and 257 are the edges of one block of the scan; 1000 and 5000 span 4 and 20.
  // K = 9 runs the passes compiled for any K.
  for (int k : {2, 3, 7, 9}) {
    for (size_t t_max : {size_t{1}, size_t{2}, size_t{255}, size_t{256}, size_t{257},
                         size_t{1000}, size_t{5000}}) {
      if (k == 9 && t_max != 1000) continue;
      SCOPED_TRACE("K = " + std::to_string(k) + ", T = " + std::to_string(t_max));
      const Hmm hmm = RandomHmm(k, k + 1, t_max, 11 * t_max + static_cast<uint64_t>(k));
      std::unique_ptr<HmmGraph> scan = BuildHmm(hmm, ClusterSolver::kParallelScan, true);
      std::unique_ptr<HmmGraph> sequential = BuildHmm(hmm, ClusterSolver::kSequential, true);
      SchedulerOptions options;
      options.max_iterations = 4;
      options.tolerance = 0;
      options.order = {scan->x, scan->a, scan->b};
      const Result result_scan = SequentialScheduler(options).Run(scan->graph);
      options.order = {sequential->x, sequential->a, sequential->b};
      const Result result_sequential = SequentialScheduler(options).Run(sequential->graph);
      ASSERT_EQ(result_scan.iterations, 4) << result_scan.message;
      ASSERT_EQ(result_sequential.iterations, 4) << result_sequential.message;
      for (int i = 0; i < 4; ++i)
        EXPECT_SCALED_NEAR(result_scan.free_energy[i], result_sequential.free_energy[i], 1e-9,
                           Scale::kRelativeAboveOne)
            << "sweep " << i;
      EXPECT_EQ(result_scan.free_energy_increases, 0);
      ExpectSameStates(*scan, *sequential, t_max, 1e-9);
      // The matrices' posteriors sum the pairs' joint tables (A) and the marginals (B).
      for (int c = 0; c < k; ++c) {
        for (const auto& [va, vb] : {std::pair<Variable, Variable>{scan->a, sequential->a},
                                     {scan->b, sequential->b}}) {
          const Vector alpha_a = scan->graph.Posterior<Dirichlet>(va[c]).alpha();
          const Vector alpha_b = sequential->graph.Posterior<Dirichlet>(vb[c]).alpha();
          for (Eigen::Index j = 0; j < alpha_a.size(); ++j)
            ASSERT_SCALED_NEAR(alpha_a[j], alpha_b[j], 1e-9, Scale::kRelativeAboveOne)
                << scan->graph.variable_name(va.id()) << "[" << c << "]: "
                << alpha_a.transpose() << " vs " << alpha_b.transpose();
        }
      }
      ExpectSameFreeEnergy(scan->graph, sequential->graph, 1e-9);
    }
  }
}

TEST(ParallelHmm, LogEvidenceAndMarginalsAreTheTextbookForwardAlgorithms) {
  // Known matrices: one update solves the chain exactly, F = −log p(y), and the marginals and
  // the dynamics' average energy −Σ_t E_ξt[log A] are the textbook ones.
  const size_t t_max = 1000;
  for (int k : {2, 3, 7}) {
    SCOPED_TRACE("K = " + std::to_string(k));
    const Hmm hmm = RandomHmm(k, 4, t_max, 40 + static_cast<uint64_t>(k));
    const ForwardBackwardResult exact = ForwardBackward(hmm);
    std::unique_ptr<HmmGraph> m = BuildHmm(hmm, ClusterSolver::kParallelScan, false);
    Scratch scratch = m->graph.MakeScratch();
    ASSERT_EQ(m->graph.UpdateElements(m->x.id(), 0, t_max, scratch), t_max);
    const double f = m->graph.FreeEnergy(scratch);
    EXPECT_SCALED_NEAR(f, -exact.log_z, 1e-9, Scale::kRelativeAboveOne);
    for (size_t t = 0; t < t_max; ++t) {
      const Vector p = m->graph.Posterior<Categorical>(m->x[t]).p();
      ASSERT_TRUE(MatrixNear(p, exact.gamma[t], 1e-9)) << "x[" << t << "]";
    }
    double dynamics = 0.0;
    for (size_t t = 1; t < t_max; ++t)
      dynamics -= (exact.xi[t].array() * hmm.a.array().log()).sum();
    const FactorGraph::FreeEnergyTerms parts = m->graph.FreeEnergyParts(scratch);
    EXPECT_SCALED_NEAR(parts.plate_energy[m->dynamics], dynamics, 1e-9, Scale::kRelativeAboveOne);
  }
}

/// A chain of K-state elements with a table of its own for every pair: Potential factors
/// over (x[t], x[t−1]) for t < T/2 and over (x[t−1], x[t]) after (both orientations of a
/// pair), some entries −∞, and random evidence through a Categorical factor per element.
struct PotentialChain {
  Vector pi;
  std::vector<Vector> phi;  ///< evidence, as probabilities
  std::vector<Matrix> psi;  ///< ψ_t(x_t, x_{t−1}), t ≥ 1
};

PotentialChain RandomPotentialChain(int k, size_t t_max, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.01, 1.0);
  PotentialChain chain;
  chain.pi = Vector::Constant(k, 1.0 / k);
  chain.psi.resize(t_max, Matrix::Zero(k, k));
  for (size_t t = 0; t < t_max; ++t) {
    Vector p(k);
    for (int i = 0; i < k; ++i) p[i] = uniform(rng);
    chain.phi.push_back(p / p.sum());
    if (t == 0) continue;
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < k; ++j) chain.psi[t](i, j) = (i + j + t) % 5 == 0 ? 0.0 : uniform(rng);
  }
  return chain;
}

/// The graph of a PotentialChain; its pair tables (log ψ) in the factors' own layout.
std::unique_ptr<HmmGraph> BuildPotentialChain(const PotentialChain& chain, ClusterSolver solver,
                                              std::vector<PlateId>* pair_plates) {
  auto m = std::make_unique<HmmGraph>();
  const size_t t_max = chain.phi.size(), half = t_max / 2;
  const int k = static_cast<int>(chain.pi.size());
  FactorGraph& g = m->graph;
  m->x = g.AddVariableArray("x", Family::kCategorical, {t_max}, k);
  g.AddCategorical(m->x[0], chain.pi);
  for (size_t t = 0; t < t_max; ++t) g.AddCategorical(m->x[t], chain.phi[t]);
  auto log = [](double v) {
    return v > 0 ? std::log(v) : -std::numeric_limits<double>::infinity();
  };
  // t in [1, half): slot order (x[t], x[t−1]), row-major with the last slot fastest.
  std::vector<double> first, second;
  for (size_t t = 1; t < half; ++t)
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < k; ++j) first.push_back(log(chain.psi[t](i, j)));
  // t in [half, T): slot order (x[t−1], x[t]).
  for (size_t t = half; t < t_max; ++t)
    for (int j = 0; j < k; ++j)
      for (int i = 0; i < k; ++i) second.push_back(log(chain.psi[t](i, j)));
  pair_plates->clear();
  if (half > 1)
    pair_plates->push_back(g.AddPotential({m->x.Slice(1, half), m->x.Slice(0, half - 1)}, first));
  if (t_max > half && half > 0)
    pair_plates->push_back(
        g.AddPotential({m->x.Slice(half - 1, t_max - 1), m->x.Slice(half, t_max)}, second));
  g.AddCluster(m->x, solver);
  g.Finalize();
  return m;
}

TEST(ParallelHmm, PairTablesOfTheirOwnInBothOrientationsAreTheTextbookPairMarginals) {
  // Every pair has its own table, so that the plates' average energies −Σ_t Σ ξ_t log ψ_t
  // weigh each pair's joint differently: they check the joints one by one against the
  // textbook ξ_t, not only their sum.
  for (size_t t_max : {size_t{257}, size_t{1000}}) {
    for (int k : {3, 9}) {
      SCOPED_TRACE("K = " + std::to_string(k) + ", T = " + std::to_string(t_max));
      const PotentialChain chain = RandomPotentialChain(k, t_max, 70 + t_max);
      const ForwardBackwardResult exact = ForwardBackward(chain.pi, chain.phi, chain.psi);
      std::vector<PlateId> plates;
      std::unique_ptr<HmmGraph> m = BuildPotentialChain(chain, ClusterSolver::kParallelScan,
                                                        &plates);
      Scratch scratch = m->graph.MakeScratch();
      ASSERT_EQ(m->graph.UpdateElements(m->x.id(), 0, t_max, scratch), t_max);
      EXPECT_SCALED_NEAR(m->graph.FreeEnergy(scratch), -exact.log_z, 1e-9,
                         Scale::kRelativeAboveOne);
      const FactorGraph::FreeEnergyTerms parts = m->graph.FreeEnergyParts(scratch);
      const size_t half = t_max / 2;
      double energy[2] = {0.0, 0.0};
      for (size_t t = 1; t < t_max; ++t)
        for (int i = 0; i < k; ++i)
          for (int j = 0; j < k; ++j)
            if (exact.xi[t](i, j) > 0)
              energy[t < half ? 0 : 1] -= exact.xi[t](i, j) * std::log(chain.psi[t](i, j));
      for (int p = 0; p < 2; ++p)
        EXPECT_SCALED_NEAR(parts.plate_energy[plates[p]], energy[p], 1e-9, Scale::kRelativeAboveOne)
            << "plate " << p;
      for (size_t t = 0; t < t_max; ++t) {
        const Vector q = m->graph.Posterior<Categorical>(m->x[t]).p();
        ASSERT_TRUE(MatrixNear(q, exact.gamma[t], 1e-9)) << "x[" << t << "]";
      }
      std::vector<PlateId> unused;
      std::unique_ptr<HmmGraph> sequential =
          BuildPotentialChain(chain, ClusterSolver::kSequential, &unused);
      Scratch scratch_sequential = sequential->graph.MakeScratch();
      ASSERT_EQ(sequential->graph.UpdateElements(sequential->x.id(), 0, t_max,
                                                 scratch_sequential),
                t_max);
      ExpectSameFreeEnergy(m->graph, sequential->graph, 1e-9);
    }
  }
}

TEST(ParallelHmm, ChainScheduledOutOfElementOrderMatchesTheSequentialSolver) {
  // x[0] – … – x[n−1] – x[2n−1] – x[2n−2] – … – x[n]: the schedule from x[0] visits the second
  // half backwards, so that a block of positions is not a block of elements.
  const size_t n = 300, t_max = 2 * n;
  for (int k : {3, 9}) {
    SCOPED_TRACE("K = " + std::to_string(k));
    const Hmm hmm = RandomHmm(k, 4, t_max, 5);
    auto build = [&](ClusterSolver solver) {
      auto m = std::make_unique<HmmGraph>();
      FactorGraph& g = m->graph;
      m->x = g.AddVariableArray("x", Family::kCategorical, {t_max}, k);
      m->a = g.AddVariableArray("A", Family::kDirichlet, {static_cast<size_t>(k)}, k);
      g.AddMatrixDirichlet(m->a, Matrix::Ones(k, k));
      g.AddCategorical(m->x[0], hmm.pi);
      g.AddTransition(m->x.Slice(1, n), m->x.Slice(0, n - 1), m->a);
      g.AddTransition(m->x[t_max - 1], m->x[n - 1], m->a);
      g.AddTransition(m->x.Slice(n, t_max - 1), m->x.Slice(n + 1, t_max), m->a);
      g.AddTransition(g.AddObservedCategorical("y", hmm.y, 4), m->x, hmm.b);
      g.AddCluster(m->x, solver);
      g.Finalize();
      return m;
    };
    std::unique_ptr<HmmGraph> scan = build(ClusterSolver::kParallelScan);
    std::unique_ptr<HmmGraph> sequential = build(ClusterSolver::kSequential);
    SchedulerOptions options;
    options.max_iterations = 3;
    options.tolerance = 0;
    const Result a = SequentialScheduler(options).Run(scan->graph);
    const Result b = SequentialScheduler(options).Run(sequential->graph);
    ASSERT_EQ(a.iterations, 3) << a.message;
    ASSERT_EQ(b.iterations, 3) << b.message;
    for (int i = 0; i < 3; ++i)
      EXPECT_SCALED_NEAR(a.free_energy[i], b.free_energy[i], 1e-9, Scale::kRelativeAboveOne)
          << "sweep " << i;
    ExpectSameStates(*scan, *sequential, t_max, 1e-9);
    ExpectSameFreeEnergy(scan->graph, sequential->graph, 1e-9);
  }
}

TEST(ParallelHmm, LongChainWithSharpEmissionsNeitherUnderflowsNorOverflows) {
  // T = 10⁵ (391 blocks) with emissions of probability 10⁻⁶ off the diagonal and about a
  // thousand switches of state: p(y) ≈ e^−6000, far below the smallest double, and a block's
  // paths from the wrong start fall by factors of 10⁻⁶ per step against the others.
  const size_t t_max = 100000;
  Hmm hmm;
  hmm.pi = Vector::Constant(3, 1.0 / 3);
  hmm.a = Matrix::Constant(3, 3, 0.005);
  hmm.a.diagonal().setConstant(0.99);
  hmm.b = Matrix::Constant(3, 3, 1e-6);
  hmm.b.diagonal().setConstant(1.0 - 2e-6);
  SampleHmm(hmm, t_max, 3);
  std::unique_ptr<HmmGraph> scan = BuildHmm(hmm, ClusterSolver::kParallelScan, false);
  std::unique_ptr<HmmGraph> sequential = BuildHmm(hmm, ClusterSolver::kSequential, false);
  Scratch scratch = scan->graph.MakeScratch();
  Scratch scratch_sequential = sequential->graph.MakeScratch();
  ASSERT_EQ(scan->graph.UpdateElements(scan->x.id(), 0, t_max, scratch), t_max);
  ASSERT_EQ(sequential->graph.UpdateElements(sequential->x.id(), 0, t_max, scratch_sequential),
            t_max);
  const double f = scan->graph.FreeEnergy(scratch);
  ASSERT_TRUE(std::isfinite(f)) << f;
  EXPECT_GT(f, 1000.0);  // −log p(y): p(y) underflows
  EXPECT_SCALED_NEAR(f, sequential->graph.FreeEnergy(scratch_sequential), 1e-9,
                     Scale::kRelativeAboveOne);
  EXPECT_SCALED_NEAR(f, -ForwardBackward(hmm).log_z, 1e-9, Scale::kRelativeAboveOne);
  ExpectSameStates(*scan, *sequential, t_max, 1e-9);
  // The chain's entropy H = Σ_t H[ξ_t] − Σ_{0<t<T−1} H[γ_t] from the textbook marginals,
  // summed in long double.
  const ForwardBackwardResult exact = ForwardBackward(hmm);
  auto entropy_term = [](double p) {
    return p > 0 ? -static_cast<long double>(p) * std::log(static_cast<long double>(p)) : 0.0L;
  };
  long double entropy = 0;
  for (size_t t = 1; t < t_max; ++t)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) entropy += entropy_term(exact.xi[t](i, j));
  for (size_t t = 1; t + 1 < t_max; ++t)
    for (int i = 0; i < 3; ++i) entropy -= entropy_term(exact.gamma[t][i]);
  EXPECT_LE(std::abs(scan->graph.FreeEnergyParts(scratch).entropy - static_cast<double>(entropy)),
            1e-9 * f);
  ExpectSameFreeEnergy(scan->graph, sequential->graph, 1e-9);
}

TEST(ParallelHmm, ImpossibleTransitionsAndEmissionsMatchTheTextbookAlgorithm) {
  // A left-to-right chain 0 → 1 → 2 (absorbing) whose states cannot emit some symbols: the
  // products of a block have zero entries and columns that die (a start from which the
  // block's observations are impossible).
  const size_t t_max = 700;
  Hmm hmm;
  hmm.pi = (Vector(3) << 1.0, 0.0, 0.0).finished();
  hmm.a = Matrix::Zero(3, 3);
  hmm.a(0, 0) = 0.995;
  hmm.a(1, 0) = 0.005;
  hmm.a(1, 1) = 0.995;
  hmm.a(2, 1) = 0.005;
  hmm.a(2, 2) = 1.0;
  hmm.b = (Matrix(3, 3) << 0.8, 0.1, 0.0, 0.2, 0.8, 0.3, 0.0, 0.1, 0.7).finished();
  SampleHmm(hmm, t_max, 9);
  const ForwardBackwardResult exact = ForwardBackward(hmm);
  std::unique_ptr<HmmGraph> scan = BuildHmm(hmm, ClusterSolver::kParallelScan, false);
  std::unique_ptr<HmmGraph> sequential = BuildHmm(hmm, ClusterSolver::kSequential, false);
  Scratch scratch = scan->graph.MakeScratch();
  Scratch scratch_sequential = sequential->graph.MakeScratch();
  ASSERT_EQ(scan->graph.UpdateElements(scan->x.id(), 0, t_max, scratch), t_max);
  ASSERT_EQ(sequential->graph.UpdateElements(sequential->x.id(), 0, t_max, scratch_sequential),
            t_max);
  EXPECT_SCALED_NEAR(scan->graph.FreeEnergy(scratch), -exact.log_z, 1e-9, Scale::kRelativeAboveOne);
  for (size_t t = 0; t < t_max; ++t) {
    const Vector p = scan->graph.Posterior<Categorical>(scan->x[t]).p();
    ASSERT_TRUE(MatrixNear(p, exact.gamma[t], 1e-9)) << "x[" << t << "]";
  }
  ExpectSameFreeEnergy(scan->graph, sequential->graph, 1e-9);
}

TEST(ParallelHmm, ResultIsTheSameBitForBitOnOneTwoThreeAndEightThreads) {
  const size_t t_max = 3000;  // 12 blocks
  const Hmm hmm = RandomHmm(3, 4, t_max, 23);
  std::unique_ptr<HmmGraph> reference;
  std::vector<double> reference_f;
  for (int threads : {1, 2, 3, 8}) {
    SCOPED_TRACE(std::to_string(threads) + " threads");
    std::unique_ptr<HmmGraph> m = BuildHmm(hmm, ClusterSolver::kParallelScan, true);
    Scratch scratch = m->graph.MakeScratch();
    std::vector<double> f;
    tbb::task_arena arena(threads);
    arena.execute([&] {
      for (int sweep = 0; sweep < 3; ++sweep) {
        ASSERT_EQ(m->graph.UpdateElements(m->x.id(), 0, t_max, scratch), t_max);
        for (const Variable& matrix : {m->a, m->b})
          ASSERT_EQ(m->graph.UpdateElements(matrix.id(), 0, 3, scratch), 3u);
        f.push_back(m->graph.FreeEnergy(scratch));
      }
    });
    if (!reference) {
      reference = std::move(m);
      reference_f = f;
      continue;
    }
    EXPECT_EQ(f, reference_f);
    for (size_t t = 0; t < t_max; ++t)
      ASSERT_EQ(m->graph.Posterior<Categorical>(m->x[t]).p(),
                reference->graph.Posterior<Categorical>(reference->x[t]).p())
          << t;
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(m->graph.Posterior<Dirichlet>(m->a[c]).alpha(),
                reference->graph.Posterior<Dirichlet>(reference->a[c]).alpha());
  }
  // The parallel scheduler (its own arena) gives the same free energies on any thread count.
  SchedulerOptions options;
  options.max_iterations = 3;
  options.tolerance = 0;
  std::unique_ptr<HmmGraph> first = BuildHmm(hmm, ClusterSolver::kParallelScan, true);
  const Result expected = SequentialScheduler(options).Run(first->graph);
  for (int threads : {1, 2, 4}) {
    std::unique_ptr<HmmGraph> m = BuildHmm(hmm, ClusterSolver::kParallelScan, true);
    EXPECT_EQ(ParallelScheduler(options, threads).Run(m->graph).free_energy,
              expected.free_energy)
        << threads << " threads";
  }
}

TEST(ParallelHmm, UpdatesAfterTheFirstAllocateNothingOnOneThread) {
  const size_t t_max = 1500;
  const Hmm hmm = RandomHmm(3, 4, t_max, 3);
  std::unique_ptr<HmmGraph> m = BuildHmm(hmm, ClusterSolver::kParallelScan, true);
  testing::ExpectClusterUpdatesAllocateNothing(m->graph, m->x, t_max);
}

// ---- What the parallel scan cannot solve ------------------------------------------------------

TEST(ParallelHmm, CategoricalTreeThatIsNotAChainIsRefusedNamingTheBranch) {
  // z[0] – z[1] – z[2] and z[1] – z[3]: z[1] has two children.
  auto build = [](FactorGraph& graph, ClusterSolver solver) {
    const Variable z = graph.AddVariableArray("z", Family::kCategorical, {4}, 2);
    const Matrix a = (Matrix(2, 2) << 0.9, 0.2, 0.1, 0.8).finished();
    graph.AddCategorical(z[0], Vector(Vector::Constant(2, 0.5)));
    graph.AddTransition(z.Slice(1, 3), z.Slice(0, 2), a, "chain");
    graph.AddTransition(z[3], z[1], a, "branch");
    graph.AddCluster(z, solver);
  };
  FactorGraph graph;
  build(graph, ClusterSolver::kParallelScan);
  EXPECT_THAT(ErrorMessage<Error>([&] { graph.Finalize(); }),
              HasSubstr("cluster 'z' (parallel-scan solver, which needs one chain): z[1] is "
                        "joined to 3 other elements, so the cluster is a tree that is not a "
                        "chain; solve it with ClusterSolver::kSequential"));
  FactorGraph tree;
  build(tree, ClusterSolver::kSequential);
  EXPECT_NO_THROW(tree.Finalize());
  // Two separate chains.
  FactorGraph separate;
  const Variable x = separate.AddVariableArray("x", Family::kCategorical, {5}, 2);
  separate.AddCategorical(x, Vector(Vector::Constant(2, 0.5)));
  separate.AddTransition(x.Slice(1, 3), x.Slice(0, 2), Matrix(Matrix::Identity(2, 2)));
  separate.AddTransition(x[4], x[3], Matrix(Matrix::Identity(2, 2)));
  separate.AddCluster(x, ClusterSolver::kParallelScan);
  EXPECT_THAT(ErrorMessage<Error>([&] { separate.Finalize(); }),
              HasSubstr("no factor joins x[3] to the chain that starts at x[0], so the "
                        "cluster is several separate chains"));
}

}  // namespace
}  // namespace vfe
