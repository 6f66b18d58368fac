// vfe: run, check and draw factor-graph models written in JSON (docs/json-format.md), run
// active inference agents and predictive coding networks.
//
// Exit codes (tools/cli.h): 0 success, 1 model error, 2 usage error, 3 numerical failure,
// 4 I/O error.

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tools/cli.h"
#include "tools/mpi_run.h"
#include "tools/output.h"
#include "vfe/core/format.h"
#include "vfe/io/model_json.h"
#include "vfe/io/summary.h"
#include "vfe/model.h"

namespace vfe::cli {
namespace {

constexpr const char* kVersion = "0.1.0";

const char* const kUsage =
    "usage: vfe <command> [options]\n"
    "\n"
    "commands:\n"
    "  run MODEL.json     run inference and write the result JSON\n"
    "  check MODEL.json   validate the model and print a summary\n"
    "  dot MODEL.json     print the factor graph in Graphviz DOT\n"
    "  nodes [TYPE]       list the node types a model may use, or describe one\n"
    "  stream MODEL.json  streaming inference: one CSV row in, one JSON line out per step\n"
    "  agent AGENT.json   run an active inference agent and write its per-step trace\n"
    "  predictive-coding NETWORK.json\n"
    "                     infer or learn with a predictive coding network\n"
    "\n"
    "options:\n"
    "  --help             this text (also: vfe <command> --help)\n"
    "  --version          the version of vfe\n"
    "\n"
    "environment: VFE_MAX_INPUT_BYTES (the largest input file, default 16 GB) and\n"
    "VFE_MAX_LINE_BYTES (the longest CSV line, default 16 MB) bound what is read; a path of\n"
    "'-' reads a model, agent or network file or a CSV from standard input.\n"
    "\n";

const char* const kRunUsage =
    "usage: vfe run MODEL.json [-o RESULT.json] [--iterations K] [--tolerance T]\n"
    "               [--scheduler sequential|parallel|async] [--threads N] [--threshold X]\n"
    "               [--algorithm vmp|bp] [--damping D] [--monte-carlo S]\n"
    "               [--summary] [--no-trace] [--posteriors NAME,NAME...]\n"
    "               [--quiet | --progress] [--mpi]\n"
    "\n"
    "Runs variational message passing on the model and writes the result (vfe-result/1:\n"
    "convergence, the free energy per sweep, warnings, every posterior, timings) to\n"
    "RESULT.json, or to standard output without -o. Options override the model's \"inference\"\n"
    "block. --summary prints a table instead (per hidden variable: mean, sd and a 95% credible\n"
    "interval; the first elements of arrays), and writes the JSON only with -o. --no-trace\n"
    "leaves out the free energy per sweep, --posteriors keeps only the named variables'\n"
    "posteriors. Warnings (legal but probably a mistake) are also printed on standard error.\n"
    "On a terminal a progress line (sweep, F, change of F, elapsed time; redrawn at most ten\n"
    "times a second) is shown on standard error unless --quiet is given; --progress prints it\n"
    "to a pipe or file too, one line at a time. The parallel scheduler updates each variable's "
    "elements colour\n"
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
    "the reported F, which it should match within a few standard errors.\n"
    "\n"
    "--mpi runs the model over the processes mpirun started (mpirun -np P vfe run MODEL.json\n"
    "--mpi): every process loads the model; each updates the local variables of its rows of\n"
    "the data and sums its rows' messages to the global variables, which the processes\n"
    "exchange (docs/scale-out.md). The result is bitwise the single-process run's. Process 0\n"
    "writes it, with the global posteriors (and the local ones --posteriors names, gathered\n"
    "for it) and \"mpi\": processes, exchanges, bytes, communication and compute time.\n"
    "--threads N gives each process N threads (default 1).\n";

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

/// The one model file of `check` and `dot`; empty after --help (the usage is printed).
std::string SingleModelArgument(const std::vector<std::string>& args, const char* command,
                                const char* usage) {
  std::string path;
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << usage << "\n" << kExitCodes;
      return "";
    }
    if (a.size() > 1 && a[0] == '-') throw UnknownOption(command, a, usage);
    if (!path.empty()) throw UsageError{std::string(command) + ": expected one model file", usage};
    path = a;
  }
  if (path.empty()) throw UsageError{std::string(command) + ": missing the model file", usage};
  return path;
}

/// Redraws "sweep K  F = ...  dF = ...  T ms" on standard error at most ten times a second:
/// in place on a terminal, one line at a time into a pipe or file.
class ProgressLine {
 public:
  explicit ProgressLine(bool terminal) : terminal_(terminal) {}

  void Show(const IterationInfo& info) {
    const auto now = std::chrono::steady_clock::now();
    if (shown_ && now - last_ < std::chrono::milliseconds(100)) return;
    shown_ = true;
    last_ = now;
    Print(info.iteration, info.free_energy, info.change, info.elapsed_ms);
  }
  /// The last sweep, whether or not it was shown, and the result's message.
  void Finish(const Result& result) {
    const size_t n = result.free_energy.size();
    if (n > 0)
      Print(static_cast<int>(n), result.free_energy[n - 1],
            n > 1 ? result.free_energy[n - 1] - result.free_energy[n - 2] : NAN,
            result.inference_ms);
    std::fprintf(stderr, "%s%s\n", terminal_ && n > 0 ? "\n" : "", result.message.c_str());
  }

 private:
  void Print(int sweep, double f, double change, double ms) {
    // No change after the first sweep: F before it is not a sweep's.
    char change_text[48] = "";
    if (!std::isnan(change)) std::snprintf(change_text, sizeof change_text, "  dF = %.3g", change);
    std::fprintf(stderr, "%ssweep %d  F = %.10g%s  %.1f ms%s", terminal_ ? "\r" : "", sweep, f,
                 change_text, ms, terminal_ ? "     " : "\n");
    std::fflush(stderr);
  }

  bool terminal_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_;
};

/// "a,b,c" as {"a", "b", "c"}; empty names are refused.
std::vector<std::string> SplitNames(const std::string& option, const std::string& text,
                                    const char* usage) {
  std::vector<std::string> names;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string name = text.substr(start, comma == std::string::npos ? comma : comma - start);
    if (name.empty())
      throw UsageError{
          option + ": expected variable names separated by commas, found \"" + text + "\"", usage};
    names.push_back(name);
    if (comma == std::string::npos) return names;
    start = comma + 1;
  }
}

}  // namespace

UsageError UnknownOption(const std::string& command, const std::string& option, const char* usage) {
  // The options a command takes are those its usage text lists: "-o", "--iterations", ...
  std::vector<std::string> known;
  const std::string text = usage;
  for (size_t at = text.find('-'); at != std::string::npos; at = text.find('-', at + 1)) {
    const bool starts_word =
        at == 0 || std::string(" [|(\n").find(text[at - 1]) != std::string::npos;
    if (!starts_word) continue;
    size_t end = at + 1;
    while (end < text.size() &&
           (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '-'))
      ++end;
    const std::string word = text.substr(at, end - at);
    if (word.size() > 1 && word != "--" &&
        std::find(known.begin(), known.end(), word) == known.end())
      known.push_back(word);
    at = end - 1;
  }
  return UsageError{command + ": unknown option " + option + DidYouMean(option, known), usage};
}

double ParseNumber(const std::string& option, const std::string& text, const char* usage) {
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(x))
    throw UsageError{option + ": expected a number, found \"" + text + "\"", usage};
  return x;
}

long ParseInteger(const std::string& option, const std::string& text, long min, long max,
                  const std::string& what, const char* usage) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE)
    throw UsageError{option + ": expected " + what + ", found \"" + text + "\"", usage};
  if (x < min || x > max)
    throw UsageError{option + ": expected " + what + ", found " + std::to_string(x), usage};
  return x;
}

int RunCommand(const std::vector<std::string>& args) {
  std::string model_path, output_path;
  bool quiet = false, force_progress = false, summary = false, use_mpi = false;
  ResultJsonOptions json_options;
  std::optional<long> iterations, threads, monte_carlo;
  std::optional<double> tolerance, threshold, damping;
  std::optional<SchedulerKind> scheduler;
  std::optional<Algorithm> algorithm;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError{a + ": missing its value", kRunUsage};
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kRunUsage << "\n" << kExitCodes;
      return 0;
    } else if (a == "-o" || a == "--output") {
      output_path = value();
    } else if (a == "--quiet" || a == "-q") {
      quiet = true;
    } else if (a == "--progress") {
      force_progress = true;
    } else if (a == "--summary") {
      summary = true;
    } else if (a == "--mpi") {
      use_mpi = true;
    } else if (a == "--no-trace") {
      json_options.trace = false;
    } else if (a == "--posteriors") {
      json_options.posteriors = SplitNames(a, value(), kRunUsage);
    } else if (a == "--iterations") {
      iterations = ParseInteger(a, value(), 1, 100000000, "a positive integer", kRunUsage);
    } else if (a == "--tolerance") {
      tolerance = ParseNumber(a, value(), kRunUsage);
      if (*tolerance < 0)
        throw UsageError{"--tolerance: expected a number >= 0, found " + FormatNumber(*tolerance),
                         kRunUsage};
    } else if (a == "--threads") {
      threads = ParseInteger(a, value(), 0, 100000000, "an integer >= 0", kRunUsage);
    } else if (a == "--scheduler") {
      const std::string name = value();
      scheduler = ParseSchedulerKind(name);
      if (!scheduler)
        throw UsageError{
            "--scheduler: expected sequential, parallel or async, found \"" + name + "\"",
            kRunUsage};
    } else if (a == "--threshold") {
      threshold = ParseNumber(a, value(), kRunUsage);
      if (*threshold < 0)
        throw UsageError{"--threshold: expected a number >= 0, found " + FormatNumber(*threshold),
                         kRunUsage};
    } else if (a == "--algorithm") {
      const std::string name = value();
      algorithm = ParseAlgorithm(name);
      if (!algorithm)
        throw UsageError{"--algorithm: expected vmp or bp, found \"" + name + "\"", kRunUsage};
    } else if (a == "--damping") {
      damping = ParseNumber(a, value(), kRunUsage);
      if (!(*damping >= 0 && *damping < 1))
        throw UsageError{"--damping: expected a number in [0, 1), found " + FormatNumber(*damping),
                         kRunUsage};
    } else if (a == "--monte-carlo") {
      monte_carlo = ParseInteger(a, value(), 2, 100000000, "a number of draws >= 2", kRunUsage);
    } else if (a.size() > 1 && a[0] == '-') {
      throw UnknownOption("run", a, kRunUsage);
    } else if (model_path.empty()) {
      model_path = a;
    } else {
      throw UsageError{"run: expected one model file, found a second: " + a, kRunUsage};
    }
  }
  if (model_path.empty()) throw UsageError{"run: missing the model file", kRunUsage};
  if (quiet && force_progress)
    throw UsageError{"--quiet and --progress: expected one of them, found both", kRunUsage};
  const bool belief_propagation = algorithm && *algorithm == Algorithm::kBeliefPropagation;
  if (damping && !belief_propagation)
    throw UsageError{"--damping: only belief propagation (--algorithm bp) damps its messages",
                     kRunUsage};

  if (use_mpi && model_path == "-")
    throw UsageError{"--mpi: the model must be a file every process can read, not '-' (only "
                     "process 0 has standard input)", kRunUsage};
  if (use_mpi && monte_carlo)
    throw UsageError{"--monte-carlo: not with --mpi (each process holds only its rows)", kRunUsage};
  // Under --mpi every process loads the model and checks it splits; all stop if one fails.
  std::unique_ptr<MpiRun> mpi;
  if (use_mpi) mpi = std::make_unique<MpiRun>();
  Model model;
  std::vector<std::string> local;
  if (mpi) {
    std::string error;
    int code = kModelError;
    try {
      model = LoadModel(model_path);
      local = mpi->LocalVariables(model);
    } catch (const IoError& e) {
      error = e.what();
      code = kIoError;
    } catch (const std::exception& e) {
      error = e.what();
    }
    mpi->Agree(error, code);
  } else {
    model = LoadModel(model_path);
  }
  const bool writes = !mpi || mpi->rank() == 0;
  InferenceSettings& settings = model.inference;
  if (iterations) settings.options.max_iterations = static_cast<int>(*iterations);
  if (tolerance) settings.options.tolerance = *tolerance;
  if (scheduler) settings.scheduler = *scheduler;
  if (threads) settings.threads = static_cast<int>(*threads);
  if (threshold) settings.threshold = *threshold;
  if (algorithm) settings.algorithm = *algorithm;
  if (damping) settings.damping = *damping;
  if (settings.algorithm == Algorithm::kBeliefPropagation &&
      settings.scheduler == SchedulerKind::kAsync)
    throw UsageError{
        "--algorithm bp: expected the scheduler sequential or parallel (flooding), "
        "found async",
        kRunUsage};
  const bool terminal = isatty(STDERR_FILENO);
  const bool progress = writes && (force_progress || (!quiet && terminal));
  ProgressLine progress_line(terminal);
  if (progress) {
    settings.options.callback = [&progress_line](const IterationInfo& info) {
      progress_line.Show(info);
      return true;
    };
  }
  // Names given to --posteriors are checked before the run, not after it.
  if (!json_options.posteriors.empty()) {
    try {
      CheckResultJsonOptions(model, json_options);
    } catch (const ModelError& e) {
      throw UsageError{std::string("--") + e.what(), kRunUsage};
    }
  }
  if (mpi && json_options.posteriors.empty()) {
    // The global posteriors; local ones only when --posteriors names them.
    for (const Variable& v : model.variables)
      if (!model.graph.observed(v) &&
          std::find(local.begin(), local.end(), model.graph.variable_name(v.id())) == local.end())
        json_options.posteriors.push_back(model.graph.variable_name(v.id()));
  }
  const Result result =
      mpi ? mpi->Run(model, threads ? static_cast<int>(*threads) : 1, json_options.posteriors)
          : Infer(model);
  if (!writes)
    return result.termination == Termination::kNumericalFailure ? kNumericalFailure : 0;
  if (progress) progress_line.Finish(result);
  for (const std::string& warning : result.warnings)
    std::cerr << "vfe: warning: " << warning << "\n";
  if (summary) {
    SummaryOptions table;
    table.variables = json_options.posteriors;
    std::cout << SummaryTable(model, result, table);
  }
  if (summary && output_path.empty()) {
    if (result.termination == Termination::kNumericalFailure) {
      std::cerr << "vfe: numerical failure: " << result.message << "\n";
      return kNumericalFailure;
    }
    return 0;
  }
  if (monte_carlo && result.termination != Termination::kNumericalFailure) {
    const FactorGraph::MonteCarloEstimate mc =
        model.graph.MonteCarloFreeEnergy(static_cast<size_t>(*monte_carlo));
    json_options.extra.emplace_back(
        "free_energy_monte_carlo", nlohmann::ordered_json{{"estimate", mc.free_energy},
                                                          {"standard_error", mc.standard_error},
                                                          {"samples", mc.samples}}
                                       .dump());
  }
  if (mpi) json_options.extra.emplace_back("mpi", mpi->TrafficJson(result));
  Output output(output_path);
  WriteResultJson(output.stream(), model, result, json_options);
  output.stream() << "\n";
  output.Commit();
  if (result.termination == Termination::kNumericalFailure) {
    std::cerr << "vfe: numerical failure: " << result.message << "\n";
    return kNumericalFailure;
  }
  return 0;
}

int CheckCommand(const std::vector<std::string>& arguments) {
  std::vector<std::string> args = arguments;
  const auto normalise_flag = std::find(args.begin(), args.end(), "--normalise");
  const bool normalise = normalise_flag != args.end();
  if (normalise) args.erase(normalise_flag);
  const std::string path = SingleModelArgument(args, "check", kCheckUsage);
  if (path.empty()) return 0;
  const Model model = LoadModel(path);
  if (normalise) {
    std::cout << NormalisedModelJson(model) << "\n";
    return 0;
  }
  const FactorGraph& g = model.graph;
  size_t hidden = 0, observed = 0, hidden_elements = 0, observed_elements = 0;
  for (const Variable& v : model.variables) {
    (g.observed(v) ? observed : hidden) += 1;
    (g.observed(v) ? observed_elements : hidden_elements) += v.size();
  }
  std::map<std::string, size_t> by_type;
  for (PlateId p = 0; p < g.num_plates(); ++p) by_type[g.node(p).type()] += g.plate_size(p);
  std::cout << path << ": valid model\n"
            << "variables: " << hidden + observed + model.constant_variables << " (" << hidden
            << " hidden with " << hidden_elements << " elements, " << observed << " observed with "
            << observed_elements << " elements"
            << (model.constant_variables ? ", " + std::to_string(model.constant_variables) +
                                               " read only as constants or indices"
                                         : std::string())
            << ")\n"
            << "factors: " << g.num_factors() << " in " << g.num_plates() << " plates\n";
  for (const auto& [type, count] : by_type) std::cout << "  " << type << ": " << count << "\n";
  // Colours of each hidden array: the parallel scheduler updates a colour's elements at once.
  std::cout << "colours (elements that share a factor differ):";
  for (const Variable& v : model.variables)
    if (!g.observed(v)) std::cout << " " << g.variable_name(v.id()) << " " << g.num_colours(v);
  std::cout << "\n";
  std::cout << "inference: " << SchedulerName(model.inference.scheduler) << ", at most "
            << model.inference.options.max_iterations << " sweeps, tolerance "
            << FormatNumber(model.inference.options.tolerance) << "\n"
            << "build: " << FormatNumber(model.build_ms) << " ms\n";
  for (const std::string& warning : g.warnings()) std::cout << "warning: " << warning << "\n";
  return 0;
}

int DotCommand(const std::vector<std::string>& args) {
  const std::string path = SingleModelArgument(args, "dot", kDotUsage);
  if (path.empty()) return 0;
  const Model model = LoadModel(path);
  model.graph.WriteGraphviz(std::cout);
  return 0;
}

}  // namespace vfe::cli

int main(int argc, char** argv) {
  using namespace vfe::cli;
  const std::vector<std::string> args(argv + 1, argv + argc);
  TrackStandardOutput();
  try {
    if (args.empty()) throw UsageError{"missing a command"};
    const std::string command = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    int code = -1;
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << kUsage << kExitCodes;
      code = 0;
    }
    if (command == "--version") {
      std::cout << "vfe " << kVersion << "\n";
      code = 0;
    }
    if (command == "run") code = RunCommand(rest);
    if (command == "check") code = CheckCommand(rest);
    if (command == "dot") code = DotCommand(rest);
    if (command == "agent") code = AgentCommand(rest);
    if (command == "predictive-coding") code = PredictiveCodingCommand(rest);
    if (command == "nodes") code = NodesCommand(rest);
    if (command == "stream") code = StreamCommand(rest);
    if (code < 0) throw UsageError{"unknown command '" + command + "'"};
    FlushStandardOutput();
    return code;
  } catch (const UsageError& e) {
    std::cerr << "vfe: " << e.message << "\n\n"
              << (e.usage ? e.usage : kUsage) << (e.usage ? "\n" : "") << kExitCodes;
    return kUsageError;
  } catch (const ReportedFailure& failure) {
    return failure.code;
  } catch (const vfe::IoError& e) {
    std::cerr << "vfe: " << e.what() << "\n";
    return kIoError;
  } catch (const std::exception& e) {
    std::cerr << "vfe: " << e.what() << "\n";
    return kModelError;
  }
}
