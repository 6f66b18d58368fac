// vfe agent: an active inference agent from an agent file, acting or replaying observations.

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "tools/cli.h"
#include "tools/output.h"
#include "vfe/agents/agent.h"
#include "vfe/core/error.h"

namespace vfe::cli {
namespace {

const char* const kAgentUsage =
    "usage: vfe agent AGENT.json [--steps T] [--observations OBS.json] [-o TRACE.json]\n"
    "                 [--summary]\n"
    "\n"
    "Runs the active inference agent of AGENT.json (vfe-agent/1: its generative model in\n"
    "pymdp's layout, settings and environment) and writes the trace (vfe-agent-trace/1): per\n"
    "step the observation, the state posterior, its free energy, every policy's G (pymdp's\n"
    "negative expected free energy) with risk, ambiguity, utility and information gains, q(pi),\n"
    "the action marginals and the action. Without --observations the agent acts in the file's\n"
    "environment for T steps per episode (default: the file's \"run\" block); with it, it\n"
    "replays the observations (a list of outcome lists, or {\"observations\": [...],\n"
    "\"actions\": [...]} to also impose the actions taken). --summary prints one line per step\n"
    "instead: the observation, the most probable state of each factor and the action, named by\n"
    "the file's optional \"labels\".\n";

}  // namespace

int AgentCommand(const std::vector<std::string>& args) {
  std::string path, observations_path, output;
  long steps = -1;
  bool summary = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError{a + ": missing its value", kAgentUsage};
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kAgentUsage << "\n" << kExitCodes;
      return 0;
    } else if (a == "--steps") {
      steps = ParseInteger(a, value(), 1, 100000000, "a positive integer", kAgentUsage);
    } else if (a == "--observations") {
      observations_path = value();
    } else if (a == "--summary") {
      summary = true;
    } else if (a == "-o") {
      output = value();
    } else if (a.size() > 1 && a[0] == '-') {
      throw UnknownOption("agent", a, kAgentUsage);
    } else if (!path.empty()) {
      throw UsageError{"agent: expected one agent file, found a second: " + a, kAgentUsage};
    } else {
      path = a;
    }
  }
  if (path.empty()) throw UsageError{"agent: missing the agent file", kAgentUsage};
  const vfe::agents::AgentFile file = vfe::agents::LoadAgentFile(path);
  std::vector<std::vector<int>> observations, actions;
  if (!observations_path.empty()) {
    vfe::agents::LoadObservations(observations_path, observations, actions);
    if (steps > 0 && static_cast<size_t>(steps) < observations.size()) observations.resize(steps);
  }
  Output out(output);
  vfe::agents::RunAgent(file, steps > 0 ? static_cast<int>(steps) : file.steps,
                        observations_path.empty() ? nullptr : &observations,
                        actions.empty() ? nullptr : &actions, out.stream(), summary);
  out.Commit();
  return 0;
}

}  // namespace vfe::cli
