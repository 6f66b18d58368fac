// vfe predictive-coding: learn and infer with a predictive coding network file.

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "tools/cli.h"
#include "tools/output.h"
#include "vfe/core/error.h"
#include "vfe/predictive/predictive_coding_file.h"

namespace vfe::cli {
namespace {

const char* const kPredictiveCodingUsage =
    "usage: vfe predictive-coding NETWORK.json [-o RESULT.json] [--epochs E] [--threads N]\n"
    "\n"
    "Reads a predictive coding network and its observations (vfe-predictive-coding/1, see\n"
    "docs/predictive-coding.md), learns its parameters when the file has a \"learning\" block\n"
    "or --epochs is given (E epochs, with the file's learning settings or the defaults), infers\n"
    "the Laplace posterior of every observation and writes the result\n"
    "(vfe-predictive-coding-result/1: the free energy per epoch and per level, the network,\n"
    "F in total and per level, every posterior) to RESULT.json or standard output.\n"
    "--threads N infers the observations on N threads (0: every core); the results do not\n"
    "depend on N.\n";

}  // namespace

int PredictiveCodingCommand(const std::vector<std::string>& args) {
  std::string path, output;
  long epochs = -1, threads = -1;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError{a + ": missing its value", kPredictiveCodingUsage};
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kPredictiveCodingUsage << "\n" << kExitCodes;
      return 0;
    } else if (a == "-o") {
      output = value();
    } else if (a == "--epochs") {
      epochs = ParseInteger(a, value(), 1, 100000000, "a positive integer", kPredictiveCodingUsage);
    } else if (a == "--threads") {
      threads = ParseInteger(a, value(), 0, 100000000, "an integer >= 0", kPredictiveCodingUsage);
    } else if (a.size() > 1 && a[0] == '-') {
      throw UnknownOption("predictive-coding", a, kPredictiveCodingUsage);
    } else if (!path.empty()) {
      throw UsageError{"predictive-coding: expected one network file, found a second: " + a,
                       kPredictiveCodingUsage};
    } else {
      path = a;
    }
  }
  if (path.empty())
    throw UsageError{"predictive-coding: missing the network file", kPredictiveCodingUsage};
  predictive::PredictiveCodingFile file = predictive::LoadPredictiveCodingFile(path);
  if (epochs > 0) {
    file.learn = true;
    file.learning.epochs = static_cast<int>(epochs);
  }
  if (threads >= 0) file.num_threads = file.learning.num_threads = static_cast<int>(threads);
  Output out(output);
  predictive::RunPredictiveCodingFile(file, out.stream());
  out.Commit();
  return 0;
}

}  // namespace vfe::cli
