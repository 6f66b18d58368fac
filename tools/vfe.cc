// vfe: run, check and draw factor-graph models written in JSON (docs/json-format.md).
//
// Exit codes: 0 success, 1 model error, 2 usage error, 3 numerical failure.

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "vfe/core/format.h"
#include "vfe/graph/model_json.h"
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
    "\n"
    "options:\n"
    "  --help             this text (also: vfe <command> --help)\n"
    "  --version          the version of vfe\n"
    "\n"
    "exit codes: 0 success, 1 model error, 2 usage error, 3 numerical failure\n";

const char* const kRunUsage =
    "usage: vfe run MODEL.json [-o RESULT.json] [--iterations K] [--tolerance T]\n"
    "               [--scheduler sequential|parallel] [--threads N] [--quiet]\n"
    "\n"
    "Runs variational message passing on the model and writes the result (vfe-result/1:\n"
    "convergence, the free energy per sweep, every posterior, timings) to RESULT.json, or to\n"
    "standard output without -o. Options override the model's \"inference\" block. On a\n"
    "terminal a progress line (sweep, F, change of F, elapsed time) is shown on standard error\n"
    "unless --quiet is given. The parallel scheduler updates each variable's elements colour\n"
    "by colour on N threads (0: every core); its results do not depend on N.\n";

const char* const kCheckUsage =
    "usage: vfe check MODEL.json\n"
    "\n"
    "Validates the model (every error names its JSON pointer) and prints a summary: variables\n"
    "(hidden, observed, elements), factors by node type, the colours of each hidden variable\n"
    "(the parallel scheduler's stages) and the inference settings.\n";

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

int Run(const std::vector<std::string>& args) {
  std::string model_path, output_path;
  bool quiet = false;
  std::optional<int> iterations, threads;
  std::optional<double> tolerance;
  std::optional<std::string> scheduler;
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
      if (*scheduler != "sequential" && *scheduler != "parallel")
        throw UsageError{"--scheduler: expected sequential or parallel, found \"" + *scheduler +
                         "\""};
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
  const vfe::Result result =
      scheduler_name == "parallel"
          ? vfe::ParallelScheduler(options, thread_count).Run(model.graph)
          : vfe::SequentialScheduler(options).Run(model.graph);
  if (progress) std::fprintf(stderr, "\n%s\n", result.message.c_str());
  const std::string text = vfe::ResultJson(model, result) + "\n";
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

int Check(const std::vector<std::string>& args) {
  bool help = false;
  const std::string path = SingleModelArgument(args, "check", kCheckUsage, help);
  if (help) return 0;
  const vfe::Model model = vfe::LoadModel(path);
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
