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
