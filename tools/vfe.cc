// vfe: run, check and draw factor-graph models written in JSON (docs/json-format.md).
//
// Exit codes: 0 success, 1 model error, 2 usage error, 3 numerical failure.

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vfe/core/format.h"
#include "vfe/graph/model_json.h"
#include "vfe/predictive/predictive_coding_file.h"
#include "vfe/model.h"

namespace {

constexpr int kModelError = 1;
constexpr int kUsageError = 2;
constexpr int kNumericalFailure = 3;
constexpr const char* kVersion = "0.1.0";

const char* const kUsage =
    "usage: vfe <command> [options]\n"
    "\n"
    "commands:\n"
    "  run MODEL.json     run inference and write the result JSON\n"
    "  check MODEL.json   validate the model and print a summary\n"
    "  dot MODEL.json     print the factor graph in Graphviz DOT\n"
    "  agent AGENT.json   run an active inference agent and write its per-step trace\n"
    "  predictive-coding NETWORK.json\n"
    "                     infer or learn with a predictive coding network\n"
    "\n"
    "options:\n"
    "  --help             this text (also: vfe <command> --help)\n"
    "  --version          the version of vfe\n"
    "\n"
    "exit codes: 0 success, 1 model error, 2 usage error, 3 numerical failure\n";

const char* const kRunUsage =
    "usage: vfe run MODEL.json [-o RESULT.json] [--iterations K] [--tolerance T]\n"
    "               [--scheduler sequential|parallel|async] [--threads N] [--threshold X]\n"
    "               [--algorithm vmp|bp] [--damping D] [--monte-carlo S] [--quiet]\n"
    "\n"
    "Runs variational message passing on the model and writes the result (vfe-result/1:\n"
    "convergence, the free energy per sweep, every posterior, timings) to RESULT.json, or to\n"
    "standard output without -o. Options override the model's \"inference\" block. On a\n"
    "terminal a progress line (sweep, F, change of F, elapsed time) is shown on standard error\n"
    "unless --quiet is given. The parallel scheduler updates each variable's elements colour\n"
    "by colour on N threads (0: every core); its results do not depend on N. The async\n"
    "scheduler updates blocks of elements on a flow graph, each again only when a neighbour's\n"
    "moments moved by more than X (default 1e-9; relative above 1 in size, absolute below),\n"
    "and stops when no change is pending; it reports F once per round.\n"
    "\n"
    "--algorithm bp runs loopy belief propagation instead (Categorical variables and discrete\n"
    "factors only): F is the Bethe free energy, -F the Bethe estimate of log Z (exact on\n"
    "trees); --tolerance bounds the change of any belief probability in a sweep; --scheduler\n"
    "sequential updates variable by variable, parallel floods every message at once on N\n"
    "threads (the same result for any N); --damping D in [0, 1) damps the messages.\n"
    "\n"
    "--monte-carlo S adds \"free_energy_monte_carlo\" to the result: F at the final posteriors\n"
    "estimated from S draws of q with log-densities only (mean, standard error), a check of\n"
    "the reported F, which it should match within a few standard errors.\n";

const char* const kCheckUsage =
    "usage: vfe check [--normalise] MODEL.json\n"
    "\n"
    "Validates the model (every error names its JSON pointer) and prints a summary: variables\n"
    "(hidden, observed, elements), factors by node type, the colours of each hidden variable\n"
    "(the parallel scheduler's stages) and the inference settings.\n"
    "With --normalise it prints instead the model as one self-contained vfe-model/1 document:\n"
    "CSV data inlined, shapes and inference defaults written out; it loads to the same graph\n"
    "and runs to the same free energy, bit for bit.\n";

const char* const kDotUsage =
    "usage: vfe dot MODEL.json\n"
    "\n"
    "Prints the factor graph in Graphviz DOT: variables as circles (observed shaded), factors\n"
    "as boxes. For example: vfe dot model.json | dot -Tsvg > model.svg\n";

struct UsageError {
  std::string message;
};

double ParseNumber(const std::string& option, const std::string& text) {
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(x))
    throw UsageError{option + ": expected a number, found \"" + text + "\""};
  return x;
}

long ParseInteger(const std::string& option, const std::string& text) {
  char* end = nullptr;
  const long x = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0') throw UsageError{option + ": expected an integer, found \"" + text + "\""};
  return x;
}

/// Loopy BP with the run's iteration cap, tolerance (on the beliefs) and progress callback.
vfe::Result RunBeliefPropagation(vfe::FactorGraph& graph, const vfe::SchedulerOptions& options,
                                 bool flooding, int threads, double damping) {
  vfe::BeliefPropagationOptions bp;
  bp.schedule = flooding ? vfe::BpSchedule::kFlooding : vfe::BpSchedule::kSequential;
  bp.max_iterations = options.max_iterations;
  bp.tolerance = options.tolerance;
  bp.threads = threads;
  bp.damping = damping;
  bp.callback = options.callback;
  return vfe::BeliefPropagation(bp).Run(graph);
}

int Run(const std::vector<std::string>& args) {
  std::string model_path, output_path;
  bool quiet = false;
  std::optional<int> iterations, threads;
  std::optional<double> tolerance, threshold;
  std::optional<std::string> scheduler;
  std::optional<std::string> algorithm;
  std::optional<double> damping;
  std::optional<long> monte_carlo;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError{a + ": missing its value"};
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kRunUsage;
      return 0;
    } else if (a == "-o" || a == "--output") {
      output_path = value();
    } else if (a == "--quiet" || a == "-q") {
      quiet = true;
    } else if (a == "--iterations") {
      const long k = ParseInteger(a, value());
      if (k < 1 || k > 100000000) throw UsageError{"--iterations: expected a positive integer, found " + std::to_string(k)};
      iterations = static_cast<int>(k);
    } else if (a == "--tolerance") {
      const double t = ParseNumber(a, value());
      if (t < 0) throw UsageError{"--tolerance: expected a number >= 0, found " + vfe::FormatNumber(t)};
      tolerance = t;
    } else if (a == "--threads") {
      const long t = ParseInteger(a, value());
      if (t < 0) throw UsageError{"--threads: expected an integer >= 0, found " + std::to_string(t)};
      threads = static_cast<int>(t);
    } else if (a == "--scheduler") {
      scheduler = value();
      if (*scheduler != "sequential" && *scheduler != "parallel" && *scheduler != "async")
        throw UsageError{"--scheduler: expected sequential, parallel or async, found \"" +
                         *scheduler + "\""};
    } else if (a == "--threshold") {
      const double x = ParseNumber(a, value());
      if (x < 0) throw UsageError{"--threshold: expected a number >= 0, found " + vfe::FormatNumber(x)};
      threshold = x;
    } else if (a == "--algorithm") {
      algorithm = value();
      if (*algorithm != "vmp" && *algorithm != "bp")
        throw UsageError{"--algorithm: expected vmp or bp, found \"" + *algorithm + "\""};
    } else if (a == "--damping") {
      const double d = ParseNumber(a, value());
      if (!(d >= 0 && d < 1))
        throw UsageError{"--damping: expected a number in [0, 1), found " + vfe::FormatNumber(d)};
      damping = d;
    } else if (a == "--monte-carlo") {
      const long s = ParseInteger(a, value());
      if (s < 2 || s > 100000000)
        throw UsageError{"--monte-carlo: expected a number of draws >= 2, found " + std::to_string(s)};
      monte_carlo = s;
    } else if (!a.empty() && a[0] == '-') {
      throw UsageError{"run: unknown option " + a};
    } else if (model_path.empty()) {
      model_path = a;
    } else {
      throw UsageError{"run: expected one model file, found a second: " + a};
    }
  }
  if (model_path.empty()) throw UsageError{"run: missing the model file"};

  vfe::Model model = vfe::LoadModel(model_path);
  vfe::SchedulerOptions options = model.inference.options;
  if (iterations) options.max_iterations = *iterations;
  if (tolerance) options.tolerance = *tolerance;
  const std::string scheduler_name = scheduler ? *scheduler : model.inference.scheduler;
  const int thread_count = threads ? *threads : model.inference.threads;
  const bool progress = !quiet && isatty(STDERR_FILENO);
  if (progress) {
    options.callback = [](const vfe::IterationInfo& info) {
      std::fprintf(stderr, "\rsweep %d  F = %.10g  dF = %.3g  %.1f ms   ", info.iteration,
                   info.free_energy, info.change, info.elapsed_ms);
      std::fflush(stderr);
      return true;
    };
  }
  const bool belief_propagation = algorithm && *algorithm == "bp";
  if (damping && !belief_propagation)
    throw UsageError{"--damping: only belief propagation (--algorithm bp) damps its messages"};
  if (belief_propagation && scheduler_name == "async")
    throw UsageError{"--algorithm bp: expected the scheduler sequential or parallel (flooding), "
                     "found async"};
  vfe::AsyncOptions async;
  async.threads = thread_count;
  if (threshold) async.threshold = *threshold;
  const vfe::Result result =
      belief_propagation ? RunBeliefPropagation(model.graph, options, scheduler_name == "parallel",
                                                thread_count, damping.value_or(0.0))
      : scheduler_name == "async"    ? vfe::AsyncScheduler(options, async).Run(model.graph)
      : scheduler_name == "parallel" ? vfe::ParallelScheduler(options, thread_count).Run(model.graph)
                                     : vfe::SequentialScheduler(options).Run(model.graph);
  if (progress) std::fprintf(stderr, "\n%s\n", result.message.c_str());
  std::string text = vfe::ResultJson(model, result) + "\n";
  if (monte_carlo && result.termination != vfe::Termination::kNumericalFailure) {
    const vfe::FactorGraph::MonteCarloEstimate mc =
        model.graph.MonteCarloFreeEnergy(static_cast<size_t>(*monte_carlo));
    nlohmann::ordered_json document = nlohmann::ordered_json::parse(text);
    document["free_energy_monte_carlo"] = {{"estimate", mc.free_energy},
                                           {"standard_error", mc.standard_error},
                                           {"samples", mc.samples}};
    text = document.dump(2) + "\n";
  }
  if (output_path.empty()) {
    std::cout << text;
  } else {
    std::ofstream out(output_path);
    if (!out || !(out << text)) {
      std::cerr << "vfe: cannot write " << output_path << "\n";
      return kUsageError;
    }
  }
  if (result.termination == vfe::Termination::kNumericalFailure) {
    std::cerr << "vfe: numerical failure: " << result.message << "\n";
    return kNumericalFailure;
  }
  return 0;
}

std::string SingleModelArgument(const std::vector<std::string>& args, const char* command,
                                const char* usage, bool& help) {
  std::string path;
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << usage;
      help = true;
      return "";
    }
    if (!a.empty() && a[0] == '-') throw UsageError{std::string(command) + ": unknown option " + a};
    if (!path.empty()) throw UsageError{std::string(command) + ": expected one model file"};
    path = a;
  }
  if (path.empty()) throw UsageError{std::string(command) + ": missing the model file"};
  return path;
}

int Check(std::vector<std::string> args) {
  const auto normalise_flag = std::find(args.begin(), args.end(), "--normalise");
  const bool normalise = normalise_flag != args.end();
  if (normalise) args.erase(normalise_flag);
  bool help = false;
  const std::string path = SingleModelArgument(args, "check", kCheckUsage, help);
  if (help) return 0;
  const vfe::Model model = vfe::LoadModel(path);
  if (normalise) {
    std::cout << vfe::NormalisedModelJson(model) << "\n";
    return 0;
  }
  const vfe::FactorGraph& g = model.graph;
  size_t hidden = 0, observed = 0, hidden_elements = 0, observed_elements = 0;
  for (const vfe::Variable& v : model.variables) {
    (g.observed(v) ? observed : hidden) += 1;
    (g.observed(v) ? observed_elements : hidden_elements) += v.size();
  }
  std::map<std::string, size_t> by_type;
  for (vfe::PlateId p = 0; p < g.num_plates(); ++p) by_type[g.node(p).type()] += g.plate_size(p);
  std::cout << path << ": valid model\n"
            << "variables: " << hidden + observed << " (" << hidden << " hidden with "
            << hidden_elements << " elements, " << observed << " observed with "
            << observed_elements << " elements)\n"
            << "factors: " << g.num_factors() << " in " << g.num_plates() << " plates\n";
  for (const auto& [type, count] : by_type) std::cout << "  " << type << ": " << count << "\n";
  // Colours of each hidden array: the parallel scheduler updates a colour's elements at once.
  std::cout << "colours (elements that share a factor differ):";
  for (const vfe::Variable& v : model.variables)
    if (!g.observed(v))
      std::cout << " " << g.variable_name(v.id()) << " " << g.num_colours(v);
  std::cout << "\n";
  std::cout << "inference: " << model.inference.scheduler << ", at most "
            << model.inference.options.max_iterations << " sweeps, tolerance "
            << vfe::FormatNumber(model.inference.options.tolerance) << "\n"
            << "build: " << vfe::FormatNumber(model.build_ms) << " ms\n";
  return 0;
}

const char* const kAgentUsage =
    "usage: vfe agent AGENT.json [--steps T] [--observations OBS.json] [-o TRACE.json]\n"
    "\n"
    "Runs the active inference agent of AGENT.json (vfe-agent/1: its generative model in\n"
    "pymdp's layout, settings and environment) and writes the trace (vfe-agent-trace/1): per\n"
    "step the observation, the state posterior, its free energy, every policy's G (pymdp's\n"
    "negative expected free energy) with risk, ambiguity, utility and information gains, q(pi),\n"
    "the action marginals and the action. Without --observations the agent acts in the file's\n"
    "environment for T steps per episode (default: the file's \"run\" block); with it, it\n"
    "replays the observations (a list of outcome lists, or {\"observations\": [...],\n"
    "\"actions\": [...]} to also impose the actions taken).\n";

int AgentCommand(const std::vector<std::string>& args) {
  std::string path, observations_path, output;
  long steps = -1;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError{a + ": missing its value"};
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kAgentUsage;
      return 0;
    } else if (a == "--steps") {
      steps = ParseInteger(a, value());
      if (steps < 1 || steps > 100000000)
        throw UsageError{"--steps: expected a positive integer, found " + std::to_string(steps)};
    } else if (a == "--observations") {
      observations_path = value();
    } else if (a == "-o") {
      output = value();
    } else if (!a.empty() && a[0] == '-') {
      throw UsageError{"agent: unknown option " + a};
    } else if (!path.empty()) {
      throw UsageError{"agent: expected one agent file, found a second: " + a};
    } else {
      path = a;
    }
  }
  if (path.empty()) throw UsageError{"agent: missing the agent file"};
  const vfe::agents::AgentFile file = vfe::agents::LoadAgentFile(path);
  std::vector<std::vector<int>> observations, actions;
  if (!observations_path.empty()) {
    vfe::agents::LoadObservations(observations_path, observations, actions);
    if (steps > 0 && static_cast<size_t>(steps) < observations.size()) observations.resize(steps);
  }
  std::ofstream file_out;
  if (!output.empty()) {
    file_out.open(output);
    if (!file_out) throw vfe::ModelError(output + ": cannot write the trace");
  }
  std::ostream& out = output.empty() ? std::cout : file_out;
  vfe::agents::RunAgent(file, steps > 0 ? static_cast<int>(steps) : file.steps,
                        observations_path.empty() ? nullptr : &observations,
                        actions.empty() ? nullptr : &actions, out);
  return 0;
}

int Dot(const std::vector<std::string>& args) {
  bool help = false;
  const std::string path = SingleModelArgument(args, "dot", kDotUsage, help);
  if (help) return 0;
  const vfe::Model model = vfe::LoadModel(path);
  model.graph.WriteGraphviz(std::cout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty()) throw UsageError{"missing a command"};
    const std::string command = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << kUsage;
      return 0;
    }
    if (command == "--version") {
      std::cout << "vfe " << kVersion << "\n";
      return 0;
    }
    if (command == "run") return Run(rest);
    if (command == "check") return Check(rest);
    if (command == "dot") return Dot(rest);
    if (command == "agent") return AgentCommand(rest);
    if (command == "predictive-coding")
      return vfe::predictive::PredictiveCodingCommand(rest, std::cout, std::cerr);
    throw UsageError{"unknown command '" + command + "'"};
  } catch (const UsageError& e) {
    std::cerr << "vfe: " << e.message << "\n\n" << kUsage;
    return kUsageError;
  } catch (const vfe::Error& e) {
    std::cerr << "vfe: " << e.what() << "\n";
    return kModelError;
  } catch (const std::exception& e) {
    std::cerr << "vfe: " << e.what() << "\n";
    return kModelError;
  }
}
