// The MPI layer's speed: the K = 5, D = 2 mixture of N points (default 10^6), run by
// `mpirun -np P bench/mpi_mixture [N]`. In one run, on the same machine state:
//   sharded   MpiScheduler, P processes x 1 thread (every process, timed together)
//   one       the sequential scheduler on process 0 alone (the others sleep: they poll for
//             the end every 2 ms, so they take no core)
//   threads   the parallel scheduler on process 0 alone with P threads
// Each is REPEATS repetitions of SWEEPS sweeps (from where the last left off); the medians
// per sweep and their ratios are printed as JSON by process 0, with the exchanges' bytes and
// time per sweep and the latency of an exchange of one number per process (median of 2,000).
// Not a Google Benchmark: its processes must run together under mpirun, and the baselines
// share the run. bench/RESULTS.md cites its output (bench/results/<date>/mpi-*.json).

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tests/mpi/mixture_model.h"
#include "vfe/mpi/mpi_scheduler.h"
#include "vfe/schedulers/parallel.h"
#include "vfe/schedulers/sequential.h"

namespace {

constexpr int kSweeps = 5;
constexpr int kRepeats = 7;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double Ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "unknown" : one;
}

/// The other processes wait for process 0 without spinning a core.
void SleepUntilReleased(int rank) {
  if (rank == 0) return;
  int flag = 0;
  MPI_Status status;
  while (!flag) {
    MPI_Iprobe(0, 7, MPI_COMM_WORLD, &flag, &status);
    if (!flag) usleep(2000);
  }
  int token = 0;
  MPI_Recv(&token, 1, MPI_INT, 0, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

void Release(int rank, int ranks) {
  if (rank != 0) return;
  int token = 1;
  for (int q = 1; q < ranks; ++q) MPI_Send(&token, 1, MPI_INT, q, 7, MPI_COMM_WORLD);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const size_t n = argc > 1 ? static_cast<size_t>(std::atol(argv[1])) : 1000000;
  const std::string load_before = LoadAverage();
  vfe::SchedulerOptions options;
  options.max_iterations = kSweeps;
  options.tolerance = 0.0;

  vfe::FactorGraph sharded_graph;
  vfe::BuildMixture(sharded_graph, n);
  vfe::MpiScheduler scheduler(options, MPI_COMM_WORLD, 1);
  std::vector<double> sharded_ms;
  scheduler.Run(sharded_graph);  // warm-up
  scheduler.exchange().ResetTraffic();
  for (int r = 0; r < kRepeats; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    scheduler.Run(sharded_graph);
    double ms = Ms(start), slowest = 0.0;
    MPI_Allreduce(&ms, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    sharded_ms.push_back(slowest / kSweeps);
  }
  const vfe::MpiExchange::Traffic traffic = scheduler.exchange().traffic();
  // The latency of one exchange of one number per process.
  std::vector<double> latency_us, one(static_cast<size_t>(ranks));
  const std::vector<size_t> counts(static_cast<size_t>(ranks), 1);
  for (int i = 0; i < 2000; ++i) {
    const auto start = std::chrono::steady_clock::now();
    scheduler.exchange().AllGatherInPlace(one.data(), counts);
    latency_us.push_back(1000.0 * Ms(start));
  }

  // Process 0 alone: the sequential scheduler, then the parallel one with `ranks` threads.
  std::vector<double> one_ms, threads_ms;
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    vfe::FactorGraph graph;
    vfe::BuildMixture(graph, n);
    const vfe::SequentialScheduler sequential(options);
    const vfe::ParallelScheduler parallel(options, ranks);
    sequential.Run(graph);  // warm-up
    for (int r = 0; r < kRepeats; ++r) {
      auto start = std::chrono::steady_clock::now();
      sequential.Run(graph);
      one_ms.push_back(Ms(start) / kSweeps);
      start = std::chrono::steady_clock::now();
      parallel.Run(graph);
      threads_ms.push_back(Ms(start) / kSweeps);
    }
  }
  Release(rank, ranks);
  SleepUntilReleased(rank);

  if (rank == 0) {
    const double sharded = Median(sharded_ms), alone = Median(one_ms),
                 threaded = Median(threads_ms);
    const double sweeps = static_cast<double>(kRepeats) * kSweeps;
    std::printf(
        "{\"benchmark\": \"mpi_mixture\", \"rows\": %zu, \"processes\": %d, "
        "\"threads_per_process\": 1, \"sweeps_per_repetition\": %d, \"repetitions\": %d,\n"
        " \"load_average_before\": \"%s\", \"load_average_after\": \"%s\",\n"
        " \"sharded_ms_per_sweep\": %.4f, \"one_process_ms_per_sweep\": %.4f, "
        "\"one_process_%d_threads_ms_per_sweep\": %.4f,\n"
        " \"speedup_over_one_process\": %.3f, \"speedup_over_%d_threads\": %.3f,\n"
        " \"exchanges_per_sweep\": %.1f, \"bytes_received_per_sweep\": %.0f, "
        "\"communication_ms_per_sweep\": %.4f, \"exchange_latency_us_median\": %.2f,\n"
        " \"sharded_ms_all\": [",
        n, ranks, kSweeps, kRepeats, load_before.c_str(), LoadAverage().c_str(), sharded, alone,
        ranks, threaded, alone / sharded, ranks, threaded / sharded,
        static_cast<double>(traffic.calls) / sweeps, static_cast<double>(traffic.bytes) / sweeps,
        traffic.ms / sweeps, Median(latency_us));
    for (size_t i = 0; i < sharded_ms.size(); ++i)
      std::printf("%s%.4f", i ? ", " : "", sharded_ms[i]);
    std::printf("],\n \"one_process_ms_all\": [");
    for (size_t i = 0; i < one_ms.size(); ++i) std::printf("%s%.4f", i ? ", " : "", one_ms[i]);
    std::printf("],\n \"threads_ms_all\": [");
    for (size_t i = 0; i < threads_ms.size(); ++i)
      std::printf("%s%.4f", i ? ", " : "", threads_ms[i]);
    std::printf("]}\n");
  }
  MPI_Finalize();
  return 0;
}
