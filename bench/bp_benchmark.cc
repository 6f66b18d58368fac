// Loopy belief propagation: the time of one sweep (every message and belief once, then the
// Bethe free energy) per variable, on libDAI's 100 x 100 Ising grid and on a 300 x 300 grid
// (bench/models.h), for the sequential schedule and for flooding on 1 and 2 threads. libDAI's
// loopy BP takes 1.5 µs per variable per sweep on the 100 x 100 grid
// (tests/data/reference/README.md). The 300 x 300 grid also runs read from a .fg file the
// benchmark writes (BM_FileGrid*: the reader groups its factors into plates), beside the
// same grid built as plates, with the file's load time and mean-field sweeps of both.
//
// Each benchmark iteration is one run of `kSweeps` sweeps from uniform messages; the time
// between the end of the first sweep and the end of the last (from the run's callback), so
// that building the run's flat arrays is left out, divided by the sweeps after the first.
// `ns_per_variable_sweep` is wall time; `cpu_ns_per_variable_sweep` the CPU time of the
// process over the same sweeps (all threads), which a machine shared with other work
// disturbs less: on one thread it is the sweep's cost, on two the total work.

#include <benchmark/benchmark.h>

#include <time.h>

#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
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

/// The grid of bench::MakeIsingGrid(side) as a libDAI .fg file (written once per side, in
/// libDAI's factor order: each spin's field, then its right and down couplings).
std::string GridFile(int side) {
  const std::string path = "/tmp/vfe-bench-grid-" + std::to_string(side) + ".fg";
  const bench::IsingGrid grid = bench::MakeIsingGrid(side);
  const size_t n = grid.h.size();
  std::ostringstream text;
  text.precision(17);
  size_t factors = n;
  for (size_t i = 0; i < n; ++i) factors += (grid.right[i] != 0) + (grid.down[i] != 0);
  text << factors << "\n";
  auto pair = [&](size_t a, size_t b, double j) {
    text << "\n2\n" << a << " " << b << "\n2 2\n4\n0 " << std::exp(j) << "\n1 " << std::exp(-j)
         << "\n2 " << std::exp(-j) << "\n3 " << std::exp(j) << "\n";
  };
  for (size_t i = 0; i < n; ++i) {
    text << "\n1\n" << i << "\n2\n2\n0 " << std::exp(-grid.h[i]) << "\n1 " << std::exp(grid.h[i])
         << "\n";
    if (i % side + 1 < static_cast<size_t>(side)) pair(i, i + 1, grid.right[i]);
    if (i + side < n) pair(i, i + side, grid.down[i]);
  }
  std::ofstream(path) << text.str();
  return path;
}

/// BP on the grid read from its .fg file: the file's factors grouped into the plates of
/// BM_IsingGrid, so the two should cost the same per sweep.
void BM_FileGrid(benchmark::State& state, BpSchedule schedule) {
  const int side = static_cast<int>(state.range(0));
  static std::map<int, std::unique_ptr<Model>> models;
  std::unique_ptr<Model>& model = models[side];
  if (!model) model = std::make_unique<Model>(LoadModel(GridFile(side)));
  TimeSweeps(state, model->graph, static_cast<size_t>(side) * side, schedule,
             static_cast<int>(state.range(1)));
}

/// Loading the .fg file of a side x side grid (parse, group, Finalize).
void BM_LoadGridFile(benchmark::State& state) {
  const std::string path = GridFile(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    Model model = LoadModel(path);
    benchmark::DoNotOptimize(model.graph.num_factors());
  }
}

/// Mean-field sweeps (the sequential scheduler) on the grid built as plates or read from its
/// file: ns per spin update.
void BM_MeanFieldGrid(benchmark::State& state) {
  const int side = static_cast<int>(state.range(0));
  const bool from_file = state.range(1) != 0;
  Variable spins;
  FactorGraph built = bench::MakeIsingGraph(bench::MakeIsingGrid(side), /*plates=*/true, &spins);
  Model loaded;
  if (from_file) loaded = LoadModel(GridFile(side));
  FactorGraph& graph = from_file ? loaded.graph : built;
  SchedulerOptions options;
  options.tolerance = 0.0;
  options.max_iterations = kSweeps;
  double first_ms = 0.0, last_ms = 0.0;
  options.callback = [&](const IterationInfo& info) {
    if (info.iteration == 1) first_ms = info.elapsed_ms;
    last_ms = info.elapsed_ms;
    return true;
  };
  const SequentialScheduler scheduler(options);
  double total_ms = 0.0;
  for (auto _ : state) {
    const Result result = scheduler.Run(graph);
    benchmark::DoNotOptimize(result.free_energy.back());
    state.SetIterationTime((last_ms - first_ms) / 1000.0 / (kSweeps - 1));
    total_ms += last_ms - first_ms;
  }
  const double sweeps = static_cast<double>(state.iterations()) * (kSweeps - 1);
  state.counters["ns_per_update"] = total_ms * 1e6 / sweeps / (static_cast<double>(side) * side);
}

void BM_FileGridSequential(benchmark::State& state) { BM_FileGrid(state, BpSchedule::kSequential); }
void BM_FileGridFlooding(benchmark::State& state) { BM_FileGrid(state, BpSchedule::kFlooding); }
void BM_LibDaiGridSequential(benchmark::State& state) { BM_LibDaiGrid(state, BpSchedule::kSequential); }
void BM_LibDaiGridFlooding(benchmark::State& state) { BM_LibDaiGrid(state, BpSchedule::kFlooding); }
void BM_IsingGridSequential(benchmark::State& state) { BM_IsingGrid(state, BpSchedule::kSequential); }
void BM_IsingGridFlooding(benchmark::State& state) { BM_IsingGrid(state, BpSchedule::kFlooding); }

// Args: {grid side, threads}.
BENCHMARK(BM_LibDaiGridSequential)->Args({100, 1})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LibDaiGridFlooding)->Args({100, 1})->Args({100, 2})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IsingGridSequential)->Args({300, 1})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IsingGridFlooding)->Args({300, 1})->Args({300, 2})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FileGridSequential)->Args({300, 1})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FileGridFlooding)->Args({300, 1})->Args({300, 2})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadGridFile)->Arg(300)->Unit(benchmark::kMillisecond);
// Args: {grid side, 0 built as plates / 1 read from its .fg file}.
BENCHMARK(BM_MeanFieldGrid)->Args({300, 0})->Args({300, 1})->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vfe

BENCHMARK_MAIN();
