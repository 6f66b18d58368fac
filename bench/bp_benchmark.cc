// Loopy belief propagation: the time of one sweep (every message and belief once, then the
// Bethe free energy) per variable, on libDAI's 100 x 100 Ising grid and on a 300 x 300 grid
// (bench/models.h), for the sequential schedule and for flooding on 1 and 2 threads. libDAI's
// loopy BP takes 1.5 µs per variable per sweep on the 100 x 100 grid
// (tests/data/reference/README.md).
//
// Each benchmark iteration is one run of `kSweeps` sweeps from uniform messages; the time
// between the end of the first sweep and the end of the last (from the run's callback), so
// that building the run's flat arrays is left out, divided by the sweeps after the first.
// `ns_per_variable_sweep` is wall time; `cpu_ns_per_variable_sweep` the CPU time of the
// process over the same sweeps (all threads), which a machine shared with other work
// disturbs less: on one thread it is the sweep's cost, on two the total work.

#include <benchmark/benchmark.h>

#include <time.h>

#include <fstream>
#include <string>

#include "bench/models.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

constexpr int kSweeps = 21;

double ProcessCpuMs() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

/// Sweeps on `graph` with the given schedule and threads; reports ns per variable per sweep.
void TimeSweeps(benchmark::State& state, FactorGraph& graph, size_t num_variables,
                BpSchedule schedule, int threads) {
  BeliefPropagationOptions options;
  options.schedule = schedule;
  options.threads = threads;
  options.tolerance = 0.0;  // exactly kSweeps sweeps
  options.max_iterations = kSweeps;
  double first_ms = 0.0, last_ms = 0.0, first_cpu_ms = 0.0, last_cpu_ms = 0.0;
  options.callback = [&](const IterationInfo& info) {
    const double cpu_ms = ProcessCpuMs();
    if (info.iteration == 1) {
      first_ms = info.elapsed_ms;
      first_cpu_ms = cpu_ms;
    }
    last_ms = info.elapsed_ms;
    last_cpu_ms = cpu_ms;
    return true;
  };
  const BeliefPropagation bp(options);
  double total_ms = 0.0, total_cpu_ms = 0.0;
  for (auto _ : state) {
    const Result result = bp.Run(graph);
    benchmark::DoNotOptimize(result.free_energy.back());
    state.SetIterationTime((last_ms - first_ms) / 1000.0 / (kSweeps - 1));
    total_ms += last_ms - first_ms;
    total_cpu_ms += last_cpu_ms - first_cpu_ms;
  }
  const double sweeps = static_cast<double>(state.iterations()) * (kSweeps - 1);
  state.counters["ns_per_variable_sweep"] = total_ms * 1e6 / sweeps / num_variables;
  state.counters["cpu_ns_per_variable_sweep"] = total_cpu_ms * 1e6 / sweeps / num_variables;
  state.counters["threads"] = threads;
}

void BM_LibDaiGrid(benchmark::State& state, BpSchedule schedule) {
  const std::string path = std::string(VFE_REFERENCE_DIR) + "/libdai/ising_grid_100x100.fg";
  if (!std::ifstream(path)) {
    state.SkipWithError(("reference file not found: " + path).c_str());
    return;
  }
  static Model model = LoadModel(path);
  TimeSweeps(state, model.graph, 10000, schedule, static_cast<int>(state.range(1)));
}

void BM_IsingGrid(benchmark::State& state, BpSchedule schedule) {
  const int side = static_cast<int>(state.range(0));
  Variable spins;
  FactorGraph graph = bench::MakeIsingGraph(bench::MakeIsingGrid(side), /*plates=*/true, &spins);
  TimeSweeps(state, graph, spins.size(), schedule, static_cast<int>(state.range(1)));
}

void BM_LibDaiGridSequential(benchmark::State& state) { BM_LibDaiGrid(state, BpSchedule::kSequential); }
void BM_LibDaiGridFlooding(benchmark::State& state) { BM_LibDaiGrid(state, BpSchedule::kFlooding); }
void BM_IsingGridSequential(benchmark::State& state) { BM_IsingGrid(state, BpSchedule::kSequential); }
void BM_IsingGridFlooding(benchmark::State& state) { BM_IsingGrid(state, BpSchedule::kFlooding); }

// Args: {grid side, threads}.
BENCHMARK(BM_LibDaiGridSequential)->Args({100, 1})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LibDaiGridFlooding)->Args({100, 1})->Args({100, 2})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IsingGridSequential)->Args({300, 1})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IsingGridFlooding)->Args({300, 1})->Args({300, 2})->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vfe

BENCHMARK_MAIN();
