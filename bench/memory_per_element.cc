// Memory per element at 10^7 elements (issue: memory bounded at scale). Not a Google Benchmark:
// memory, not time. The model is a scalar Gaussian array x[0..N) with a prior plate
// x[n] ~ N(0, 1) and no data, built (1) through the C++ API and (2) from a JSON file by the
// vfe program (`vfe run model.json -o /dev/null`, the whole result written). For each it
// reports the peak resident memory of the process divided by N, and for the C++ API the
// resident memory after each stage (built, finalised, run), so the growth of each stage is
// the breakdown. Goal: at most 200 bytes per element through both.
//
// Usage: memory_per_element [N] [path of the vfe program]     (default 10^7, no vfe run)
// Prints one JSON document.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "vfe/model.h"

namespace {

/// Resident memory now, bytes (/proc/self/statm: pages).
double ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
}

double PeakBytes(int who) {
  rusage usage{};
  getrusage(who, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0;  // kB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10000000;
  const std::string program = argc > 2 ? argv[2] : "";
  const double per = static_cast<double>(n);
  // The vfe program first: a child forked later would count the parent's pages in its peak.
  int vfe_run_exit = -1;
  double vfe_run_peak = 0;
  if (!program.empty()) {
    const std::string model = "/tmp/vfe-memory-" + std::to_string(getpid()) + ".json";
    std::ofstream(model) << "{\"format\": \"vfe-model/1\", \"variables\": [{\"name\": \"x\", "
                            "\"family\": \"Gaussian\", \"shape\": ["
                         << n
                         << "]}], \"factors\": [{\"node\": \"Gaussian\", \"name\": \"prior\", "
                            "\"for\": {\"n\": [0, "
                         << n
                         << "]}, \"out\": \"x[n]\", \"mean\": 0, \"precision\": 1}], "
                            "\"inference\": {\"iterations\": 3}}";
    const pid_t child = fork();
    if (child == 0) {
      execl(program.c_str(), program.c_str(), "run", "--quiet", model.c_str(), "-o",
            "/dev/null", static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    rusage usage{};
    wait4(child, &status, 0, &usage);
    std::remove(model.c_str());
    const double cli_peak = static_cast<double>(usage.ru_maxrss) * 1024.0;
    vfe_run_exit = WEXITSTATUS(status);
    vfe_run_peak = cli_peak / per;
  }
  const double start = ResidentBytes();

  vfe::FactorGraph graph;
  const vfe::Variable x = graph.AddVariableArray("x", vfe::Family::kGaussian, {n});
  graph.AddGaussian(x, 0.0, 1.0, "prior");
  const double built = ResidentBytes();
  graph.Finalize();
  const double finalised = ResidentBytes();
  vfe::SchedulerOptions options;
  options.max_iterations = 3;
  const vfe::Result result = vfe::SequentialScheduler(options).Run(graph);
  const double run = ResidentBytes();
  const double api_peak = PeakBytes(RUSAGE_SELF);

  std::printf("{\n  \"elements\": %zu,\n  \"api\": {\n", n);
  std::printf("    \"start_bytes_per_element\": %.1f,\n", start / per);
  std::printf("    \"build_bytes_per_element\": %.1f,\n", (built - start) / per);
  std::printf("    \"finalize_bytes_per_element\": %.1f,\n", (finalised - built) / per);
  std::printf("    \"run_bytes_per_element\": %.1f,\n", (run - finalised) / per);
  std::printf("    \"peak_bytes_per_element\": %.1f,\n", api_peak / per);
  std::printf("    \"sweeps\": %d\n  }", result.iterations);

  if (!program.empty()) {
    std::printf(",\n  \"vfe_run\": {\n    \"exit_code\": %d,\n", vfe_run_exit);
    std::printf("    \"peak_bytes_per_element\": %.1f\n  }", vfe_run_peak);
  }
  std::printf("\n}\n");
  return 0;
}
