// Time per sweep of the parallel scheduler against its own one-thread run and against the
// sequential scheduler, in the same binary and run (bench/RESULTS.md):
//
//   BM_Mixture       the mixture K = 5, D = 2 of bench/models.h, N = 10⁵ and 10⁶
//   BM_Ising         mean field on an open 300 × 300 Ising grid (red/black colours)
//   BM_SubModels     10⁵ independent Gaussian models (μ_i, τ_i) of 10 observations each
//   BM_Regression    Bayesian linear regression, D = 10, N = 10⁶ rows of its own design
//
// Arguments {size, threads}; threads 0 is the sequential scheduler. A benchmark iteration runs
// 5 sweeps (tolerance 0) from the state the previous iteration left; per_sweep divides the
// wall time by 5 (it includes the F before the first sweep, one more F per 5 sweeps, and the
// scheduler's set-up: per-thread scratch and colour classes).
#include <benchmark/benchmark.h>

#include <vector>

#include "bench/models.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using namespace bench;  // NOLINT: the shared models

constexpr int kSweeps = 5;

void RunSweeps(benchmark::State& state, FactorGraph& graph, const std::vector<Variable>& order) {
  const int threads = static_cast<int>(state.range(1));
  SchedulerOptions options;
  options.max_iterations = kSweeps;
  options.tolerance = 0.0;
  options.order = order;
  const SequentialScheduler sequential(options);
  const ParallelScheduler parallel(options, threads == 0 ? 1 : threads);
  double free_energy = 0.0;
  for (auto _ : state) {
    const Result result = threads == 0 ? sequential.Run(graph) : parallel.Run(graph);
    free_energy = result.free_energy.back();
  }
  // Seconds per sweep (the library prints it with its unit).
  state.counters["per_sweep"] = benchmark::Counter(
      kSweeps, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["free_energy"] = free_energy;
  state.SetLabel(threads == 0 ? "sequential" : std::to_string(threads) + " threads");
}

void BM_Mixture(benchmark::State& state) {
  const MixtureData data = MakeMixtureData(static_cast<int>(state.range(0)), 30002);
  std::vector<Variable> order;
  FactorGraph graph = MakeMixtureGraph(data, &order);
  RunSweeps(state, graph, order);
}

void BM_Ising(benchmark::State& state) {
  const IsingGrid grid = MakeIsingGrid(static_cast<int>(state.range(0)));
  Variable s;
  FactorGraph graph = MakeIsingGraph(grid, /*plates=*/true, &s);
  RunSweeps(state, graph, {s});
}

void BM_SubModels(benchmark::State& state) {
  // y[j][i] ~ N(μ_i, 1/τ_i), j < 10: ten plates, one per observation index, over all models.
  const size_t models = static_cast<size_t>(state.range(0)), per_model = 10;
  const std::vector<double> y = SplitMixNormals(7, models * per_model, 1.0, 2.0);
  FactorGraph graph;
  const Variable mu = graph.AddVariableArray("mu", Family::kGaussian, {models});
  const Variable tau = graph.AddVariableArray("tau", Family::kGamma, {models});
  graph.AddGaussian(mu, 0.0, 0.01);
  graph.AddGamma(tau, 1.0, 1.0);
  const Variable observed = graph.AddObserved("y", y);
  for (size_t j = 0; j < per_model; ++j)
    graph.AddGaussian(observed.Slice(j * models, (j + 1) * models), mu, tau);
  graph.Finalize();
  RunSweeps(state, graph, {mu, tau});
}

void BM_Regression(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const int d = 10;
  const std::vector<double> draws = SplitMixNormals(11, n * (d + 1), 0.0, 1.0);
  Matrix design(static_cast<Eigen::Index>(n), d);
  std::vector<double> y(n);
  for (size_t i = 0; i < n; ++i) {
    double target = 0.0;
    for (int k = 0; k < d; ++k) {
      design(static_cast<Eigen::Index>(i), k) = draws[i * (d + 1) + k];
      target += (k + 1) * 0.1 * draws[i * (d + 1) + k];
    }
    y[i] = target + 0.5 * draws[i * (d + 1) + d];
  }
  FactorGraph graph;
  const Variable w = graph.AddVariable("w", Family::kMvGaussian, d);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddMvGaussian(w, Vector(Vector::Zero(d)), Matrix(0.01 * Matrix::Identity(d, d)));
  graph.AddGamma(tau, 1e-3, 1e-3);
  graph.AddLinearRegression(graph.AddObserved("y", y), w, design, tau);
  graph.Finalize();
  RunSweeps(state, graph, {w, tau});
}

void Configure(benchmark::internal::Benchmark* b, std::vector<long> sizes) {
  for (long size : sizes)
    for (long threads : {0L, 1L, 2L}) b->Args({size, threads});
  b->Unit(benchmark::kMillisecond)->UseRealTime()->Repetitions(5)->ReportAggregatesOnly(true);
}

BENCHMARK(BM_Mixture)->Apply([](benchmark::internal::Benchmark* b) { Configure(b, {100000, 1000000}); });
BENCHMARK(BM_Ising)->Apply([](benchmark::internal::Benchmark* b) { Configure(b, {300}); });
BENCHMARK(BM_SubModels)->Apply([](benchmark::internal::Benchmark* b) { Configure(b, {100000}); });
BENCHMARK(BM_Regression)->Apply([](benchmark::internal::Benchmark* b) { Configure(b, {1000000}); });

}  // namespace
}  // namespace vfe

BENCHMARK_MAIN();
