// Time per agent step (state inference + policy inference + action selection, as pymdp's
// reference timing counts it; learning is off in these models) on the two example agents:
//
//   BM_TmazeStep/{method}       examples/tmaze.json (4 policies), replaying one episode of
//                               pymdp's reference trace (observations [0,0,0] [3,0,0]
//                               [1,1,0] [1,1,0] [1,1,1]), the agent reset at each episode start.
//                               method 0: the flat fixed-point path; 1: the vfe engine (a
//                               FactorGraph built per step, run by the SequentialScheduler).
//   BM_GridStep/625/{threads}   examples/grid_world.json: 3 x 3 grid, policy_len 4 (625
//                               policies, a prefix tree of 780 nodes), observations along
//                               the path to the goal; threads 1, 2 or 0 (all cores).
//
// One benchmark iteration is one step (Time: wall clock, CPU: this thread's CPU time; on a
// loaded machine compare CPU times). Counter: allocs_per_step (heap allocations inside the
// timed loop). Run: agent_benchmark --benchmark_repetitions=10 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "tests/testing/allocation_counter.h"
#include "vfe/model.h"

namespace vfe::agents {
namespace {

AgentFile Example(const char* name) {
  return LoadAgentFile(std::string(VFE_SOURCE_DIR) + "/examples/" + name);
}

void Run(benchmark::State& state, Agent& agent, const std::vector<std::vector<int>>& episode) {
  size_t t = 0;
  long steps = 0;
  const long allocations_before = vfe::testing::AllocationCount();
  for (auto _ : state) {
    if (t == 0) agent.Reset();
    agent.InferStates(episode[t]);
    agent.InferPolicies();
    benchmark::DoNotOptimize(agent.SelectAction());
    t = (t + 1) % episode.size();
    ++steps;
  }
  const long allocations = vfe::testing::AllocationCount() - allocations_before;
  state.counters["allocs_per_step"] = static_cast<double>(allocations) / steps;
}

void BM_TmazeStep(benchmark::State& state) {
  AgentFile file = Example("tmaze.json");
  if (state.range(0) == 1) {
    file.settings.method = StateInferenceMethod::kFactorGraph;
    file.settings.factor_update = FactorUpdate::kSequential;
  }
  Agent agent(file.model, file.settings);
  Run(state, agent, {{0, 0, 0}, {3, 0, 0}, {1, 1, 0}, {1, 1, 0}, {1, 1, 1}});
}
BENCHMARK(BM_TmazeStep)->Arg(0)->Arg(1)->ArgName("engine")->Unit(benchmark::kMicrosecond);

void BM_GridStep(benchmark::State& state) {
  AgentFile file = Example("grid_world.json");
  file.settings.num_threads = static_cast<int>(state.range(1));
  Agent agent(file.model, file.settings);
  if (agent.policies().size() != static_cast<size_t>(state.range(0))) {
    state.SkipWithError("unexpected number of policies");
    return;
  }
  Run(state, agent, {{0}, {1}, {2}, {5}, {8}, {8}});
}
BENCHMARK(BM_GridStep)->Args({625, 1})->Args({625, 2})->Args({625, 0})->ArgNames({"policies", "threads"})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace vfe::agents

BENCHMARK_MAIN();
