// Time per sweep of the two discrete models of issue 3, on one thread:
//
//   BM_MixtureSweep   the Gaussian mixture of examples/gaussian_mixture.cc (K = 5, D = 2),
//                     N = 100,000 points from the generator of BayesPy's reference case
//                     tests/data/reference/bayespy/gmm_N10000.json (its centres,
//                     covariances and weights) drawn with SplitMix64 seed 30002 instead of
//                     NumPy's seed 30001.
//                     A sweep updates μ, Λ, the weights and every z_n, then computes F, as
//                     SequentialScheduler does with the reference case's order.
//   BM_IsingSweep     mean field on an open-boundary 300 × 300 Ising grid (spins ±1,
//                     Categorical with two outcomes), J and h ~ N(0, 0.5²) as in libDAI's
//                     tests/data/reference/libdai/ising_grid_100x100.fg, SplitMix64 seed 1001:
//                     one update of every spin in raster order. Reported per variable update.
//   BM_IsingHandWritten  the baseline for the Ising sweep: the same raster Gauss–Seidel
//                     mean-field update written by hand over flat arrays (q(s = +1) per spin,
//                     the couplings of each spin to its right and lower neighbours).
//
// Every benchmark reports allocs_per_sweep (heap allocations inside the timed loop, counted
// by replacing malloc and friends in this binary) and ns_per_update (wall time of a sweep
// divided by the number of variable updates it makes).
//
// Run (see bench/RESULTS.md): discrete_benchmark  (10 repetitions, medians reported).
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "tests/testing/allocation_counter.h"
#include "bench/models.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using namespace bench;  // NOLINT: the shared models

void ReportCounters(benchmark::State& state, long allocations, double updates_per_sweep,
                    double free_energy) {
  const double sweeps = static_cast<double>(state.iterations());
  state.counters["allocs_per_sweep"] = static_cast<double>(allocations) / sweeps;
  // kIsIterationInvariantRate | kInvert: seconds per update, shown by the library in ns.
  state.counters["ns_per_update"] = benchmark::Counter(
      updates_per_sweep, benchmark::Counter::kIsIterationInvariantRate |
                             benchmark::Counter::kInvert);
  state.counters["free_energy"] = free_energy;
}

/// Updates every element of the variables in `order`, as SequentialScheduler does.
size_t SweepElements(FactorGraph& graph, const std::vector<Variable>& order, Scratch& scratch) {
  size_t updates = 0;
  for (const Variable& v : order) {
    graph.UpdateElements(v.id(), v.begin(), v.begin() + v.size(), scratch);
    updates += v.size();
  }
  return updates;
}

void BM_MixtureSweep(benchmark::State& state) {
  const MixtureData data = MakeMixtureData(static_cast<int>(state.range(0)), 30002);
  std::vector<Variable> order;
  FactorGraph graph = MakeMixtureGraph(data, &order);
  Scratch scratch = graph.MakeScratch();
  double free_energy = 0.0;
  size_t updates = 0;
  const long before = testing::AllocationCount();
  for (auto _ : state) {
    updates = SweepElements(graph, order, scratch);
    free_energy = graph.FreeEnergy(scratch);
    benchmark::DoNotOptimize(free_energy);
  }
  ReportCounters(state, testing::AllocationCount() - before, static_cast<double>(updates),
                 free_energy);
}

void IsingSweep(benchmark::State& state, bool plates) {
  const IsingGrid grid = MakeIsingGrid(static_cast<int>(state.range(0)));
  Variable s;
  FactorGraph graph = MakeIsingGraph(grid, plates, &s);
  const std::vector<Variable> order = {s};
  Scratch scratch = graph.MakeScratch();
  const long before = testing::AllocationCount();
  for (auto _ : state) SweepElements(graph, order, scratch);
  const long allocations = testing::AllocationCount() - before;
  ReportCounters(state, allocations, static_cast<double>(grid.h.size()),
                 graph.FreeEnergy(scratch));
}
void BM_IsingSweep(benchmark::State& state) { IsingSweep(state, true); }
void BM_IsingSweepFactorPlates(benchmark::State& state) { IsingSweep(state, false); }

void BM_IsingHandWritten(benchmark::State& state) {
  const int side = static_cast<int>(state.range(0));
  const IsingGrid grid = MakeIsingGrid(side);
  const size_t n = grid.h.size();
  std::vector<double> m(n, 0.0);  // E[s_i] = 2 q(s_i = +1) − 1, q starts uniform
  const long before = testing::AllocationCount();
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) {
      // log q(+1) − log q(−1) = 2 (h_i + Σ_j J_ij E[s_j]), so E[s_i] = tanh(h_i + Σ J_ij E[s_j]).
      double field = grid.h[i] + grid.right[i] * (grid.right[i] != 0.0 ? m[i + 1] : 0.0) +
                     grid.down[i] * (grid.down[i] != 0.0 ? m[i + side] : 0.0);
      if (i % side != 0) field += grid.right[i - 1] * m[i - 1];
      if (i >= static_cast<size_t>(side)) field += grid.down[i - side] * m[i - side];
      m[i] = std::tanh(field);
    }
    benchmark::DoNotOptimize(m.data());
  }
  ReportCounters(state, testing::AllocationCount() - before, static_cast<double>(n), 0.0);
}

BENCHMARK(BM_MixtureSweep)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->Repetitions(10)->ReportAggregatesOnly(true);
BENCHMARK(BM_IsingSweep)->Arg(300)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->Repetitions(10)->ReportAggregatesOnly(true);
BENCHMARK(BM_IsingSweepFactorPlates)->Arg(300)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->Repetitions(10)->ReportAggregatesOnly(true);
BENCHMARK(BM_IsingHandWritten)->Arg(300)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->Repetitions(10)->ReportAggregatesOnly(true);

}  // namespace
}  // namespace vfe

BENCHMARK_MAIN();
