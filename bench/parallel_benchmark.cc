// Time per sweep of the parallel scheduler against its own one-thread run and against the
// sequential scheduler, in the same binary and run (bench/RESULTS.md):
//
//   BM_Mixture       the mixture K = 5, D = 2 of bench/models.h, N = 10⁵ and 10⁶
//   BM_Ising         mean field on an open 300 × 300 Ising grid (red/black colours)
//   BM_SubModels     10⁵ independent Gaussian models (μ_i, τ_i) of 10 observations each
//   BM_Regression    Bayesian linear regression, D = 10, N = 10⁶ rows of its own design
//
//   BM_MixtureAsync, BM_IsingAsync   the async scheduler on the same models, threshold 0 (each
//                    round then makes the parallel sweep's updates: the flow graph's cost)
//   BM_IsingToFixedPoint  the Ising grid from its start until F settles (tolerance 1e-10):
//                    sequential (raster) and parallel (red/black) sweeps against async
//                    rounds (threshold 1e-6, which skips the spins whose neighbourhood has
//                    settled)
//
// Arguments {size, threads}; threads 0 is the sequential scheduler. A benchmark iteration runs
// 5 sweeps (tolerance 0) from the state the previous iteration left; per_sweep divides the
// wall time by 5 (it includes the F before the first sweep, one more F per 5 sweeps, and the
// scheduler's set-up: per-thread scratch and colour classes). One untimed run comes first.
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
  // One untimed run first: the first sweeps after Finalize fill the nodes' caches and touch
  // the graph's buffers for the first time, and a repetition of a slow benchmark is only two
  // or three runs, so that one-time cost would otherwise weigh heavily in the figure.
  const Result first = threads == 0 ? sequential.Run(graph) : parallel.Run(graph);
  double free_energy = first.free_energy.back();
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

/// Async rounds from a fresh graph each iteration (a converged graph falls quiet in one
/// round); the graph is built outside the timing, the scheduler's plan inside it.
template <class Build>
void RunAsyncRounds(benchmark::State& state, Build build) {
  SchedulerOptions options;
  options.max_iterations = kSweeps;
  options.tolerance = 0.0;
  AsyncOptions async;
  async.threads = static_cast<int>(state.range(1));
  async.threshold = 0.0;
  double free_energy = 0.0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Variable> order;
    FactorGraph graph = build(&order);
    options.order = order;
    const AsyncScheduler scheduler(options, async);
    state.ResumeTiming();
    free_energy = scheduler.Run(graph).free_energy.back();
  }
  state.counters["per_sweep"] = benchmark::Counter(
      kSweeps, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["free_energy"] = free_energy;
  state.SetLabel("async, " + std::to_string(async.threads) + " threads");
}

void BM_MixtureAsync(benchmark::State& state) {
  const MixtureData data = MakeMixtureData(static_cast<int>(state.range(0)), 30002);
  RunAsyncRounds(state, [&](std::vector<Variable>* order) { return MakeMixtureGraph(data, order); });
}

void BM_IsingAsync(benchmark::State& state) {
  const IsingGrid grid = MakeIsingGrid(static_cast<int>(state.range(0)));
  RunAsyncRounds(state, [&](std::vector<Variable>* order) {
    Variable s;
    FactorGraph graph = MakeIsingGraph(grid, /*plates=*/true, &s);
    *order = {s};
    return graph;
  });
}

/// Args {side, threads, async}: from the start until F settles; counters: rounds, final F.
/// Threads 0 is the sequential scheduler (raster order, where the others go red then black).
void BM_IsingToFixedPoint(benchmark::State& state) {
  const IsingGrid grid = MakeIsingGrid(static_cast<int>(state.range(0)));
  const int threads = static_cast<int>(state.range(1));
  const bool use_async = state.range(2) != 0;
  SchedulerOptions options;
  options.max_iterations = 1000;
  options.tolerance = 1e-10;  // both stop by it; async also when quiet
  AsyncOptions async;
  async.threads = threads;
  async.threshold = 1e-6;
  Result result;
  for (auto _ : state) {
    state.PauseTiming();
    Variable s;
    FactorGraph graph = MakeIsingGraph(grid, /*plates=*/true, &s);
    options.order = {s};
    state.ResumeTiming();
    if (use_async) {
      result = AsyncScheduler(options, async).Run(graph);
    } else if (threads == 0) {
      result = SequentialScheduler(options).Run(graph);
    } else {
      result = ParallelScheduler(options, threads).Run(graph);
    }
  }
  state.counters["rounds"] = result.iterations;
  state.counters["free_energy"] = result.free_energy.back();
  state.SetLabel(threads == 0 ? "sequential (raster order)"
                              : std::string(use_async ? "async" : "parallel") + ", " +
                                    std::to_string(threads) + " threads");
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
void ConfigureAsync(benchmark::internal::Benchmark* b, std::vector<long> sizes) {
  for (long size : sizes)
    for (long threads : {1L, 2L}) b->Args({size, threads});
  b->Unit(benchmark::kMillisecond)->UseRealTime()->Repetitions(5)->ReportAggregatesOnly(true);
}
BENCHMARK(BM_MixtureAsync)->Apply([](benchmark::internal::Benchmark* b) { ConfigureAsync(b, {100000, 1000000}); });
BENCHMARK(BM_IsingAsync)->Apply([](benchmark::internal::Benchmark* b) { ConfigureAsync(b, {300}); });
BENCHMARK(BM_IsingToFixedPoint)
    ->Args({300, 0, 0})->Args({300, 1, 0})->Args({300, 2, 0})->Args({300, 1, 1})->Args({300, 2, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Repetitions(3)->ReportAggregatesOnly(true);

}  // namespace
}  // namespace vfe

BENCHMARK_MAIN();
