// MpiScheduler under mpirun -np P (ctest runs P = 1..4, each with 1 and 2 threads per
// process: `--threads T`): the free-energy trace and every posterior bitwise those of the
// sequential scheduler on one process, for a mixture (labels local to their rows), a
// regression (cached sums of the data) and shards of unequal size or none; a chain across
// rows refused, naming the factor. Every process builds the same graph and checks the same.

#include <mpi.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/mpi/mixture_model.h"
#include "vfe/mpi/mpi_scheduler.h"
#include "vfe/schedulers/sequential.h"
#include "vfe/schedulers/svi.h"

namespace vfe {
namespace {

int g_threads = 1;

/// Bayesian linear regression on n rows of D = 4 inputs: the likelihood reads cached sums.
void BuildRegression(FactorGraph& g, size_t n) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  Matrix x(static_cast<Eigen::Index>(n), 4);
  std::vector<double> y(n);
  const double w[4] = {1.0, -2.0, 0.5, 3.0};
  for (size_t i = 0; i < n; ++i) {
    double mean = 0.0;
    for (int j = 0; j < 4; ++j) {
      x(static_cast<Eigen::Index>(i), j) = j == 0 ? 1.0 : normal(rng);
      mean += w[j] * x(static_cast<Eigen::Index>(i), j);
    }
    y[i] = mean + 0.5 * normal(rng);
  }
  const Variable weights = g.AddVariable("w", Family::kMvGaussian, 4);
  const Variable tau = g.AddVariable("tau", Family::kGamma);
  const Variable data = g.AddObserved("y", y);
  g.AddFactor("MvGaussian", {{"out", weights}, {"mean", Vector(Vector::Zero(4))},
                             {"precision", Matrix(0.01 * Matrix::Identity(4, 4))}});
  g.AddFactor("Gamma", {{"out", tau}, {"shape", 1e-3}, {"rate", 1e-3}});
  g.AddFactor("LinearGaussian",
              {{"out", data}, {"in", weights}, {"matrix", ParameterValue::Rows(x)},
               {"precision", tau}}, "likelihood");
  g.Finalize();
}

/// The sharded run against the sequential scheduler on this process: trace and posteriors.
template <class Build>
void ExpectSameAsOneProcess(Build build, size_t n, int sweeps) {
  SchedulerOptions options;
  options.max_iterations = sweeps;
  options.tolerance = 0.0;
  FactorGraph reference, sharded;
  build(reference, n);
  build(sharded, n);
  const Result expected = SequentialScheduler(options).Run(reference);
  const MpiScheduler scheduler(options, MPI_COMM_WORLD, g_threads);
  const Result result = scheduler.Run(sharded);
  ASSERT_EQ(result.iterations, expected.iterations) << result.message;
  EXPECT_EQ(result.initial_free_energy, expected.initial_free_energy);
  for (size_t i = 0; i < expected.free_energy.size(); ++i)
    ASSERT_EQ(result.free_energy[i], expected.free_energy[i]) << "sweep " << i + 1;
  scheduler.GatherLocals(sharded);
  for (const Variable& v : reference.HiddenVariables())
    EXPECT_EQ(sharded.NaturalParameters(v), reference.NaturalParameters(v))
        << reference.variable_name(v.id());
  // The blocks went through the exchange (with one process too: the same code path).
  EXPECT_GT(scheduler.exchange().traffic().calls, 0u);
}

TEST(MpiScheduler, MixtureIsTheSequentialRunBitForBit) {
  // 4 blocks of rows: one per process at 4, uneven (1, 1, 2) at 3.
  ExpectSameAsOneProcess(BuildMixture, 60000, 12);
}

TEST(MpiScheduler, ProcessesWithoutRowsTakePartAndChangeNothing) {
  // 2 blocks of rows: at 3 and 4 processes some own none.
  ExpectSameAsOneProcess(BuildMixture, 20000, 8);
}

TEST(MpiScheduler, RegressionWithCachedSumsIsTheSequentialRunBitForBit) {
  ExpectSameAsOneProcess(BuildRegression, 40000, 6);
}

TEST(MpiScheduler, AChainAcrossRowsIsRefusedNamingTheFactor) {
  FactorGraph g;
  const size_t n = 100;
  const Variable z = g.AddVariableArray("z", Family::kCategorical, {n}, 2);
  std::vector<int> outcomes(n);
  for (size_t i = 0; i < n; ++i) outcomes[i] = static_cast<int>(i % 2);
  const Variable y = g.AddObservedCategorical("y", outcomes, 2);
  const Matrix a = (Matrix(2, 2) << 0.9, 0.1, 0.1, 0.9).finished();
  g.AddFactor("Categorical", {{"out", z[0]}, {"p", Vector(Vector::Constant(2, 0.5))}}, "start");
  g.AddFactor("Transition", {{"out", z.Slice(1, n)}, {"in", z.Slice(0, n - 1)}, {"matrix", a}},
              "transition");
  g.AddFactor("Transition", {{"out", y}, {"in", z}, {"matrix", a}}, "emission");
  g.Finalize();
  try {
    MpiScheduler(SchedulerOptions(), MPI_COMM_WORLD, g_threads).Run(g);
    FAIL() << "a chain across rows ran";
  } catch (const GraphError& e) {
    EXPECT_NE(std::string(e.what()).find("factor 'transition' joins z[1]"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("no factor joins two rows"), std::string::npos);
  }
}

TEST(MpiSvi, OnePassWithStepsOneOverTIsTheExactPosteriorOnAnyNumberOfProcesses) {
  // y_i ~ N(mu, 1/2), mu ~ N(0, 1/0.01), 1,200 points; process q holds rows
  // [q·1200/P, (q+1)·1200/P) and draws minibatches of 100 of them. With ρ_t = 1/(t + 1) the
  // globals are the average of the steps' η̂, and after one pass over every process's rows
  // (1200 / (P·100) steps of P minibatches) that average is the full-data posterior exactly.
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const size_t n = 1200, batch = 100, own = n / static_cast<size_t>(ranks);
  ASSERT_EQ(own % batch, 0u);
  std::vector<double> y(n);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += y[i] = 1.0 + std::sin(static_cast<double>(i));
  FactorGraph g;
  const Variable mu = g.AddVariable("mu", Family::kGaussian);
  const Variable data = g.AddObserved("y", std::vector<double>(batch, 0.0));
  g.AddFactor("Gaussian", {{"out", mu}, {"mean", 0.0}, {"precision", 0.01}});
  g.AddFactor("Gaussian", {{"out", data}, {"mean", mu}, {"precision", 2.0}});
  g.Finalize();
  Matrix rows(static_cast<Eigen::Index>(own), 1);
  for (size_t i = 0; i < own; ++i)
    rows(static_cast<Eigen::Index>(i), 0) = y[static_cast<size_t>(rank) * own + i];
  MatrixMinibatches source(rows, data, batch, /*seed=*/static_cast<uint64_t>(rank) + 1);
  const MpiExchange exchange;
  SviOptions options;
  options.steps = n / (batch * static_cast<size_t>(ranks));
  options.forgetting_rate = 1.0;
  options.delay = 1.0;
  options.exchange = &exchange;
  const SviResult result = StochasticVariationalInference(options).Run(g, {}, source);
  ASSERT_EQ(result.steps, options.steps);
  const double precision = 0.01 + 2.0 * static_cast<double>(n);
  const Gaussian q = g.Posterior<Gaussian>(mu);
  EXPECT_NEAR(q.mean(), 2.0 * sum / precision, 1e-12 * std::abs(2.0 * sum / precision));
  EXPECT_NEAR(q.variance() * precision, 1.0, 1e-12);
  // Every process holds the same global, bit for bit.
  std::vector<double> all(2 * static_cast<size_t>(ranks));
  const std::vector<double> eta = g.NaturalParameters(mu);
  std::copy(eta.begin(), eta.end(), all.begin() + 2 * rank);
  exchange.AllGatherInPlace(all.data(), std::vector<size_t>(static_cast<size_t>(ranks), 2));
  for (int q = 0; q < ranks; ++q) {
    EXPECT_EQ(all[2 * static_cast<size_t>(q)], eta[0]);
    EXPECT_EQ(all[2 * static_cast<size_t>(q) + 1], eta[1]);
  }
  // The full F over every process's rows equals the closed form of the conjugate model:
  // −F = log p(y) at the exact posterior.
  const double full = StochasticVariationalInference(options).FullFreeEnergy(g, {}, source);
  double squares = 0.0;
  for (double v : y) squares += v * v;
  const double log_evidence = 0.5 * static_cast<double>(n) * std::log(2.0 / (2.0 * M_PI)) +
                              0.5 * std::log(0.01 / precision) - squares +
                              0.5 * (2.0 * sum) * (2.0 * sum) / precision;
  EXPECT_NEAR(-full, log_evidence, 1e-9 * std::abs(log_evidence));
}

}  // namespace
}  // namespace vfe

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--threads") == 0) vfe::g_threads = std::atoi(argv[i + 1]);
  // Every process prints its report; a failure on any process fails the run.
  const int failed = RUN_ALL_TESTS();
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any;
}
