// vfe stream: streaming inference on observations that arrive one CSV row at a time, one JSON
// line out per step, flushed before it waits for more input (a pipeline's stage).

#include <iostream>
#include <string>
#include <vector>

#include "io/csv.h"
#include "tools/cli.h"
#include "tools/output.h"
#include "vfe/core/error.h"
#include "vfe/io/stream_json.h"

namespace vfe::cli {
namespace {

const char* const kStreamUsage =
    "usage: vfe stream MODEL.json [--input DATA.csv] [-o STEPS.jsonl]\n"
    "\n"
    "Streaming inference: MODEL.json is one time slice with a \"stream\" block (its inputs,\n"
    "and the posteriors carried from each step to the next as priors). Reads one row of\n"
    "observations per step from DATA.csv, or from standard input (default, or '-') as a pipe\n"
    "delivers them; an empty field, nan, NA or null is a missing value (the step predicts\n"
    "it); a first line that is not numbers is a header. Writes one JSON line per step:\n"
    "{\"step\", \"free_energy\", \"sweeps\", \"converged\", \"missing\", \"posteriors\"},\n"
    "flushed before it waits for more input (so each line is out as soon as its row was).\n";

/// The columns a row must have, for messages: "y[0], y[1]".
std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

int StreamCommand(const std::vector<std::string>& args) {
  std::string path, input = "-", output;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw UsageError{a + ": missing its value", kStreamUsage};
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kStreamUsage << "\n" << kExitCodes;
      return 0;
    } else if (a == "--input") {
      input = value();
    } else if (a == "-o") {
      output = value();
    } else if (a.size() > 1 && a[0] == '-') {
      throw UnknownOption("stream", a, kStreamUsage);
    } else if (!path.empty()) {
      throw UsageError{"stream: expected one model file, found a second: " + a, kStreamUsage};
    } else {
      path = a;
    }
  }
  if (path.empty()) throw UsageError{"stream: missing the model file", kStreamUsage};
  if (path == "-" && input == "-")
    throw UsageError{"stream: the model and the data cannot both come from standard input",
                     kStreamUsage};
  StreamModel model = LoadStreamModel(path);
  CsvRows rows(input, CsvRowsOptions{/*once=*/true, /*missing=*/true});
  const std::string source = input == "-" ? "standard input" : "'" + input + "'";
  if (!rows.header().empty() && rows.header().size() != model.columns.size())
    throw ModelError("CSV " + source + " line 1: a header of " +
                     std::to_string(rows.header().size()) + " columns; the model's inputs take " +
                     std::to_string(model.columns.size()) + " (" + Joined(model.columns) + ")");
  Output out(output);
  std::vector<double> values;
  std::string line;
  while (rows.Next(values)) {
    if (values.size() != model.columns.size())
      throw ModelError("CSV " + source + " line " + std::to_string(rows.line()) + ": expected " +
                       std::to_string(model.columns.size()) + " values (" +
                       Joined(model.columns) + "), found " + std::to_string(values.size()));
    try {
      model.stream.Push(values);
    } catch (const ModelError& e) {
      throw ModelError("CSV " + source + " line " + std::to_string(rows.line()) + ": " +
                       e.what());
    } catch (const Error& e) {
      out.stream().flush();
      out.Commit();  // the steps before the failure stay written
      std::cerr << "vfe: numerical failure: line " << rows.line() << ": " << e.what() << "\n";
      return kNumericalFailure;
    }
    line.clear();
    AppendStreamStepJson(model, line);
    line += '\n';
    out.stream().write(line.data(), static_cast<std::streamsize>(line.size()));
    // Flushed whenever the next row is not already in: every line is out before the command
    // waits for more input, and a fast source's lines go out in large writes.
    if (!rows.buffered()) out.stream().flush();
    if (!out.stream()) break;  // the output failed: Commit says why
  }
  out.Commit();
  return 0;
}

}  // namespace vfe::cli
