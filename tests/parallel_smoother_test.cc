// The parallel-in-time smoother of Gaussian chains (ClusterSolver::kParallelScan): the same
// posteriors, pairs and free energy as the sequential cluster solver and as the textbook Kalman
// filter and RTS smoother (tests/testing/textbook.h); learned noise outside the chain; the same
// result bit for bit on any number of threads; the errors for clusters that are not one
// Gaussian chain.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <Eigen/LU>
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
using testing::KalmanSmoother;
using testing::MatrixNear;
using testing::Norm;
using testing::Scale;
using testing::Smoothed;
using testing::StateSpace;
using testing::Tracking;

/// The model as a factor graph with the states in one cluster. With `pair_noise`, every
/// transition has its own noise precision τ_t ~ Gamma(1, 1) (a hidden array, so the pair
/// potentials differ from step to step) instead of Q⁻¹; the states are then updated at
/// τ_t's starting value, E[τ_t] = 1.
struct Model {
  FactorGraph graph;
  Variable x, tau;
};

std::unique_ptr<Model> Build(const StateSpace& s, ClusterSolver solver, bool pair_noise = false) {
  auto m = std::make_unique<Model>();
  const size_t t_max = static_cast<size_t>(s.y.rows());
  const int d = static_cast<int>(s.a.rows());
  m->x = m->graph.AddVariableArray("x", Family::kMvGaussian, {t_max}, d);
  m->graph.AddMvGaussian(m->x[0], s.m0, Matrix(s.p0.inverse()), "initial");
  if (t_max > 1) {
    if (pair_noise) {
      m->tau = m->graph.AddVariableArray("tau", Family::kGamma, {t_max - 1});
      m->graph.AddGamma(m->tau, 1.0, 1.0, "tau prior");
      m->graph.AddLinearGaussian(m->x.Slice(1, t_max), m->x.Slice(0, t_max - 1), s.a, m->tau,
                                 "dynamics");
    } else {
      m->graph.AddLinearGaussian(m->x.Slice(1, t_max), m->x.Slice(0, t_max - 1), s.a,
                                 Matrix(s.q.inverse()), "dynamics");
    }
  }
  m->graph.AddLinearGaussian(m->graph.AddObservedRows("y", s.y), m->x, s.c,
                             Matrix(s.r.inverse()), "observations");
  m->graph.AddCluster(m->x, solver);
  m->graph.Finalize();
  return m;
}

/// max_t ‖a_t − b_t‖ / max(1, ‖b_t‖) over the means and covariances of two runs.
void ExpectSamePosteriors(const Model& a, const Model& b, size_t t_max, double tolerance) {
  for (size_t t = 0; t < t_max; ++t) {
    const MvGaussian qa = a.graph.Posterior<MvGaussian>(a.x[t]);
    const MvGaussian qb = b.graph.Posterior<MvGaussian>(b.x[t]);
    ASSERT_TRUE(MatrixNear(qa.mean(), qb.mean(), tolerance, Scale::kRelativeAboveOne,
                           Norm::kFrobenius))
        << "x[" << t << "]";
    ASSERT_TRUE(MatrixNear(qa.covariance(), qb.covariance(), tolerance, Scale::kRelative,
                           Norm::kFrobenius))
        << "x[" << t << "]";
  }
}

TEST(ParallelSmoother, MatchesTheSequentialSolverAndTheTextbookSmoother) {
  // T = 1000 spans four blocks of the scan, 257 one block and one step; 1, 2 and 3 are edges;
  // 4097 and 9000 span two and three chunks of 16 blocks (4097 ends with a chunk of one step).
  for (int axes : {1, 2}) {
    for (size_t t_max : {size_t{1}, size_t{2}, size_t{3}, size_t{257}, size_t{1000},
                         size_t{4097}, size_t{9000}}) {
      SCOPED_TRACE("D = " + std::to_string(2 * axes) + ", T = " + std::to_string(t_max));
      const StateSpace s = Tracking(axes, t_max, 5 + t_max);
      std::unique_ptr<Model> sequential = Build(s, ClusterSolver::kSequential);
      std::unique_ptr<Model> scan = Build(s, ClusterSolver::kParallelScan);
      Scratch scratch_a = sequential->graph.MakeScratch();
      Scratch scratch_b = scan->graph.MakeScratch();
      ASSERT_EQ(sequential->graph.UpdateElements(sequential->x.id(), 0, t_max, scratch_a), t_max);
      ASSERT_EQ(scan->graph.UpdateElements(scan->x.id(), 0, t_max, scratch_b), t_max);
      ExpectSamePosteriors(*scan, *sequential, t_max, 1e-9);
      // F holds the pairs' cross moments (the dynamics' average energy) and the mutual
      // information (the entropy): both solvers give −log p(y) of the textbook filter.
      const Smoothed exact = KalmanSmoother(s);
      const double f_scan = scan->graph.FreeEnergy(scratch_b);
      EXPECT_SCALED_NEAR(f_scan, sequential->graph.FreeEnergy(scratch_a), 1e-9,
                         Scale::kRelativeAboveOne);
      EXPECT_SCALED_NEAR(f_scan, -exact.log_likelihood, 1e-9, Scale::kRelativeAboveOne)
          << f_scan << " vs " << -exact.log_likelihood;
      const FactorGraph::FreeEnergyTerms parts_a = sequential->graph.FreeEnergyParts(scratch_a);
      const FactorGraph::FreeEnergyTerms parts_b = scan->graph.FreeEnergyParts(scratch_b);
      EXPECT_SCALED_NEAR(parts_b.entropy, parts_a.entropy, 1e-9, Scale::kRelativeAboveOne);
      for (size_t p = 0; p < parts_a.plate_energy.size(); ++p)
        EXPECT_SCALED_NEAR(parts_b.plate_energy[p], parts_a.plate_energy[p], 1e-9,
                           Scale::kRelativeAboveOne) << p;
      for (size_t t = 0; t < t_max; ++t) {
        const MvGaussian q = scan->graph.Posterior<MvGaussian>(scan->x[t]);
        ASSERT_TRUE(MatrixNear(q.mean(), exact.mean[t], 1e-9, Scale::kOnePlusRelative,
                               Norm::kFrobenius))
            << t;
        ASSERT_TRUE(MatrixNear(q.covariance(), exact.cov[t], 1e-9, Scale::kRelative,
                               Norm::kFrobenius))
            << t;
      }
    }
  }
}

TEST(ParallelSmoother, PairCrossMomentsMatchTheTextbookLagOneCovariances) {
  // Each transition has its own τ_t, so that the message to τ_t reads the pair (x_t, x_{t−1})
  // alone: q(τ_t) = Gamma(1 + D/2, 1 + ½ E‖x_t − A x_{t−1}‖²), and
  // E‖x_t − A x_{t−1}‖² = tr E[x_t x_tᵀ] − 2 tr(A E[x_{t−1} x_tᵀ]) + tr(A E[x_{t−1}x_{t−1}ᵀ] Aᵀ)
  // reads the cross moment. The oracle: the textbook smoother with Q = I (E[τ_t] = 1 at the
  // start), its lag-one covariances giving the same expectation.
  const size_t t_max = 600;
  StateSpace s = Tracking(2, t_max, 31);
  s.q = Matrix::Identity(4, 4);
  std::unique_ptr<Model> scan = Build(s, ClusterSolver::kParallelScan, /*pair_noise=*/true);
  std::unique_ptr<Model> sequential = Build(s, ClusterSolver::kSequential, true);
  Scratch scratch = scan->graph.MakeScratch();
  Scratch scratch_sequential = sequential->graph.MakeScratch();
  ASSERT_EQ(scan->graph.UpdateElements(scan->x.id(), 0, t_max, scratch), t_max);
  ASSERT_EQ(sequential->graph.UpdateElements(sequential->x.id(), 0, t_max, scratch_sequential),
            t_max);
  ASSERT_EQ(scan->graph.UpdateElements(scan->tau.id(), 0, t_max - 1, scratch), t_max - 1);
  ASSERT_EQ(sequential->graph.UpdateElements(sequential->tau.id(), 0, t_max - 1,
                                             scratch_sequential),
            t_max - 1);
  const Smoothed exact = KalmanSmoother(s);
  for (size_t t = 1; t < t_max; ++t) {
    const Matrix cross =
        exact.lag_one[t - 1] + exact.mean[t] * exact.mean[t - 1].transpose();  // E[x_t x_{t−1}ᵀ]
    const Matrix second_t = exact.cov[t] + exact.mean[t] * exact.mean[t].transpose();
    const Matrix second_p = exact.cov[t - 1] + exact.mean[t - 1] * exact.mean[t - 1].transpose();
    const double expected_square = second_t.trace() - 2.0 * (s.a * cross.transpose()).trace() +
                                   (s.a * second_p * s.a.transpose()).trace();
    const Gamma q = scan->graph.Posterior<Gamma>(scan->tau[t - 1]);
    const Gamma q_sequential = sequential->graph.Posterior<Gamma>(sequential->tau[t - 1]);
    ASSERT_NEAR(q.shape(), 3.0, 1e-12);
    ASSERT_SCALED_NEAR(q.rate(), 1.0 + 0.5 * expected_square, 1e-9, Scale::kRelativeAboveOne)
        << "tau[" << t - 1 << "]";
    ASSERT_SCALED_NEAR(q.rate(), q_sequential.rate(), 1e-9, Scale::kRelativeAboveOne)
        << "tau[" << t - 1 << "]";
  }
}

TEST(ParallelSmoother, LearnedNoiseNeverRaisesTheFreeEnergyAndFollowsTheSequentialSolver) {
  // The observation noise precision R ~ Wishart and the dynamics' τ ~ Gamma learned by VMP
  // outside the chain (examples/tracking.cc with both noises unknown).
  const size_t t_max = 800;
  const StateSpace s = Tracking(2, t_max, 17);
  auto build = [&](ClusterSolver solver) {
    auto m = std::make_unique<Model>();
    m->x = m->graph.AddVariableArray("x", Family::kMvGaussian, {t_max}, 4);
    const Variable r = m->graph.AddVariable("R", Family::kWishart, 2);
    m->tau = m->graph.AddVariable("tau", Family::kGamma);
    m->graph.AddWishart(r, 4.0, Matrix::Identity(2, 2) / 4.0);
    m->graph.AddGamma(m->tau, 1.0, 0.01);
    m->graph.AddMvGaussian(m->x[0], s.m0, Matrix(s.p0.inverse()));
    m->graph.AddLinearGaussian(m->x.Slice(1, t_max), m->x.Slice(0, t_max - 1), s.a, m->tau);
    m->graph.AddLinearGaussian(m->graph.AddObservedRows("y", s.y), m->x, s.c, r);
    m->graph.AddCluster(m->x, solver);
    m->graph.Finalize();
    return m;
  };
  std::unique_ptr<Model> scan = build(ClusterSolver::kParallelScan);
  std::unique_ptr<Model> sequential = build(ClusterSolver::kSequential);
  const Variable r_scan = scan->graph.Find("R"), r_sequential = sequential->graph.Find("R");
  Scratch scratch = scan->graph.MakeScratch();
  Scratch scratch_sequential = sequential->graph.MakeScratch();
  double before = scan->graph.FreeEnergy(scratch);
  for (int sweep = 0; sweep < 25; ++sweep) {
    SCOPED_TRACE("sweep " + std::to_string(sweep));
    ASSERT_EQ(scan->graph.UpdateElements(scan->x.id(), 0, t_max, scratch), t_max);
    ASSERT_EQ(sequential->graph.UpdateElements(sequential->x.id(), 0, t_max, scratch_sequential),
              t_max);
    double after = scan->graph.FreeEnergy(scratch);
    ASSERT_LE(after, before + 1e-10 * std::abs(before)) << "x";
    ASSERT_SCALED_NEAR(after, sequential->graph.FreeEnergy(scratch_sequential), 1e-9,
                       Scale::kRelativeAboveOne);
    before = after;
    for (const auto& [scan_variable, sequential_variable] :
         {std::pair<Variable, Variable>{r_scan, r_sequential}, {scan->tau, sequential->tau}}) {
      ASSERT_TRUE(scan->graph.UpdateElement(scan_variable.id(), 0, scratch));
      ASSERT_TRUE(sequential->graph.UpdateElement(sequential_variable.id(), 0, scratch_sequential));
      after = scan->graph.FreeEnergy(scratch);
      ASSERT_LE(after, before + 1e-10 * std::abs(before))
          << scan->graph.variable_name(scan_variable.id());
      before = after;
    }
  }
  const Wishart q_r = scan->graph.Posterior<Wishart>(r_scan);
  const Wishart q_r_sequential = sequential->graph.Posterior<Wishart>(r_sequential);
  EXPECT_LE((q_r.mean() - q_r_sequential.mean()).norm(), 1e-8 * q_r_sequential.mean().norm());
  EXPECT_SCALED_NEAR(scan->graph.Posterior<Gamma>(scan->tau).mean(),
                     sequential->graph.Posterior<Gamma>(sequential->tau).mean(), 1e-8,
                     Scale::kRelativeAboveOne);
  ExpectSamePosteriors(*scan, *sequential, t_max, 1e-8);
}

TEST(ParallelSmoother, ScalarRandomWalkAndLargerStatesMatchTheSequentialSolver) {
  // D = 1 (a Gaussian family, not MvGaussian) and D = 5, 17 (the kernels of runtime size).
  std::mt19937_64 rng(8);
  std::normal_distribution<double> normal;
  for (int d : {1, 5, 17}) {
    SCOPED_TRACE("D = " + std::to_string(d));
    const size_t t_max = d == 17 ? 300 : 700;
    Matrix a = Matrix::Identity(d, d) * 0.9;
    for (int i = 0; i + 1 < d; ++i) a(i, i + 1) = 0.1;
    const int m = (d + 1) / 2;
    Matrix c = Matrix::Zero(m, d);
    for (int i = 0; i < m; ++i) c(i, 2 * i) = 1.0;
    Matrix y(static_cast<Eigen::Index>(t_max), m);
    for (Eigen::Index t = 0; t < y.rows(); ++t)
      for (int j = 0; j < m; ++j) y(t, j) = normal(rng);
    auto build = [&](ClusterSolver solver) {
      auto model = std::make_unique<Model>();
      FactorGraph& graph = model->graph;
      if (d == 1) {
        model->x = graph.AddVariableArray("x", Family::kGaussian, {t_max});
        graph.AddGaussian(model->x[0], 0.0, 1.0);
        std::vector<double> values(t_max);
        for (size_t t = 0; t < t_max; ++t) values[t] = y(static_cast<Eigen::Index>(t), 0);
        graph.AddGaussian(graph.AddObserved("y", values), model->x, 2.0);
      } else {
        model->x = graph.AddVariableArray("x", Family::kMvGaussian, {t_max}, d);
        graph.AddMvGaussian(model->x[0], Vector(Vector::Zero(d)), Matrix(Matrix::Identity(d, d)));
        graph.AddLinearGaussian(graph.AddObservedRows("y", y), model->x, c,
                                Matrix(Matrix::Identity(m, m) * 2.0));
      }
      graph.AddLinearGaussian(model->x.Slice(1, t_max), model->x.Slice(0, t_max - 1), a,
                              Matrix(Matrix::Identity(d, d) * 10.0));
      graph.AddCluster(model->x, solver);
      graph.Finalize();
      return model;
    };
    std::unique_ptr<Model> scan = build(ClusterSolver::kParallelScan);
    std::unique_ptr<Model> sequential = build(ClusterSolver::kSequential);
    Scratch scratch = scan->graph.MakeScratch();
    Scratch scratch_sequential = sequential->graph.MakeScratch();
    ASSERT_EQ(scan->graph.UpdateElements(scan->x.id(), 0, t_max, scratch), t_max);
    ASSERT_EQ(sequential->graph.UpdateElements(sequential->x.id(), 0, t_max, scratch_sequential),
              t_max);
    EXPECT_SCALED_NEAR(scan->graph.FreeEnergy(scratch),
                       sequential->graph.FreeEnergy(scratch_sequential), 1e-9,
                       Scale::kRelativeAboveOne);
    for (size_t t = 0; t < t_max; ++t) {
      if (d == 1) {
        const Gaussian qa = scan->graph.Posterior<Gaussian>(scan->x[t]);
        const Gaussian qb = sequential->graph.Posterior<Gaussian>(sequential->x[t]);
        ASSERT_SCALED_NEAR(qa.mean(), qb.mean(), 1e-9, Scale::kRelativeAboveOne) << t;
        ASSERT_SCALED_NEAR(qa.variance(), qb.variance(), 1e-9, Scale::kRelativeAboveOne) << t;
      }
    }
    if (d > 1) ExpectSamePosteriors(*scan, *sequential, t_max, 1e-9);
  }
}

TEST(ParallelSmoother, ResultIsTheSameBitForBitOnOneTwoAndFourThreads) {
  const size_t t_max = 9000;  // 36 blocks in three chunks
  const StateSpace s = Tracking(2, t_max, 23);
  std::unique_ptr<Model> reference;
  double reference_f = 0;
  for (int threads : {1, 2, 4}) {
    SCOPED_TRACE(std::to_string(threads) + " threads");
    std::unique_ptr<Model> m = Build(s, ClusterSolver::kParallelScan, /*pair_noise=*/true);
    Scratch scratch = m->graph.MakeScratch();
    tbb::task_arena arena(threads);
    arena.execute([&] {
      for (int sweep = 0; sweep < 3; ++sweep) {
        ASSERT_EQ(m->graph.UpdateElements(m->x.id(), 0, t_max, scratch), t_max);
        ASSERT_EQ(m->graph.UpdateElements(m->tau.id(), 0, t_max - 1, scratch), t_max - 1);
      }
    });
    const double f = m->graph.FreeEnergy(scratch);
    if (!reference) {
      reference = std::move(m);
      reference_f = f;
      continue;
    }
    EXPECT_EQ(f, reference_f);
    for (size_t t = 0; t < t_max; ++t) {
      const MvGaussian q = m->graph.Posterior<MvGaussian>(m->x[t]);
      const MvGaussian expected = reference->graph.Posterior<MvGaussian>(reference->x[t]);
      ASSERT_EQ(q.mean(), expected.mean()) << t;
      ASSERT_EQ(q.precision(), expected.precision()) << t;
      if (t > 0) {
        ASSERT_EQ(m->graph.Posterior<Gamma>(m->tau[t - 1]).rate(),
                  reference->graph.Posterior<Gamma>(reference->tau[t - 1]).rate())
            << t;
      }
    }
  }
}

TEST(ParallelSmoother, ParallelSchedulerGivesTheSameFreeEnergiesOnAnyThreadCount) {
  const size_t t_max = 2000;
  const StateSpace s = Tracking(2, t_max, 41);
  SchedulerOptions options;
  options.max_iterations = 4;
  options.tolerance = 0;
  std::unique_ptr<Model> m1 = Build(s, ClusterSolver::kParallelScan, true);
  const Result expected = SequentialScheduler(options).Run(m1->graph);
  ASSERT_EQ(expected.iterations, 4) << expected.message;
  for (int threads : {1, 2, 4}) {
    std::unique_ptr<Model> m = Build(s, ClusterSolver::kParallelScan, true);
    const Result result = ParallelScheduler(options, threads).Run(m->graph);
    EXPECT_EQ(result.free_energy, expected.free_energy) << threads << " threads";
  }
  // And the sequential solver reaches the same free energies to rounding.
  std::unique_ptr<Model> sequential = Build(s, ClusterSolver::kSequential, true);
  const Result baseline = SequentialScheduler(options).Run(sequential->graph);
  for (size_t i = 0; i < baseline.free_energy.size(); ++i)
    EXPECT_SCALED_NEAR(expected.free_energy[i], baseline.free_energy[i], 1e-9,
                       Scale::kRelativeAboveOne) << i;
}

TEST(ParallelSmoother, UpdatesAfterTheFirstAllocateNothingOnOneThread) {
  const size_t t_max = 1500;
  const StateSpace s = Tracking(2, t_max, 3);
  std::unique_ptr<Model> m = Build(s, ClusterSolver::kParallelScan);
  testing::ExpectClusterUpdatesAllocateNothing(m->graph, m->x, t_max);
}

// ---- What the parallel scan cannot solve ------------------------------------------------------

TEST(ParallelSmoother, TreeThatIsNotAChainIsRefusedNamingTheBranch) {
  // x[0] – x[1] – x[2] and x[1] – x[3]: x[1] has two children.
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {4});
  graph.AddGaussian(x[0], 0.0, 1.0);
  graph.AddLinearGaussian(x.Slice(1, 3), x.Slice(0, 2), Matrix::Identity(1, 1), 1.0, "chain");
  graph.AddLinearGaussian(x[3], x[1], Matrix::Identity(1, 1), 1.0, "branch");
  graph.AddCluster(x, ClusterSolver::kParallelScan);
  EXPECT_THAT(ErrorMessage<Error>([&] { graph.Finalize(); }),
              HasSubstr("cluster 'x' (parallel-scan solver, which needs one chain): x[1] is "
                        "joined to 3 other elements, so the cluster is a tree that is not a "
                        "chain; solve it with ClusterSolver::kSequential"));
  // The same tree is fine for the sequential solver.
  FactorGraph tree;
  const Variable z = tree.AddVariableArray("z", Family::kGaussian, {4});
  tree.AddGaussian(z[0], 0.0, 1.0);
  tree.AddLinearGaussian(z.Slice(1, 3), z.Slice(0, 2), Matrix::Identity(1, 1), 1.0);
  tree.AddLinearGaussian(z[3], z[1], Matrix::Identity(1, 1), 1.0);
  tree.AddCluster(z);
  EXPECT_NO_THROW(tree.Finalize());
}

TEST(ParallelSmoother, SeparateChainsAreRefused) {
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {5});
  graph.AddGaussian(x, 0.0, 1.0);
  graph.AddLinearGaussian(x.Slice(1, 3), x.Slice(0, 2), Matrix::Identity(1, 1), 1.0);
  graph.AddLinearGaussian(x[4], x[3], Matrix::Identity(1, 1), 1.0);
  graph.AddCluster(x, ClusterSolver::kParallelScan);
  EXPECT_THAT(ErrorMessage<Error>([&] { graph.Finalize(); }),
              HasSubstr("no factor joins x[3] to the chain that starts at x[0], so the "
                        "cluster is several separate chains"));
}

}  // namespace
}  // namespace vfe
