#ifndef VFE_IO_STREAM_JSON_H_
#define VFE_IO_STREAM_JSON_H_

// Streaming models in JSON: a "vfe-model/1" document whose variables and factors are one time
// slice, with a "stream" block (docs/json-format.md, "Streaming"):
//
//   "stream": {"inputs": ["y"],
//              "carry": [{"from": "x[1]", "to": "x[0]", "forgetting": 0,
//                         "initial": {"node": "MvGaussian", "mean": [0, 0],
//                                     "precision": [[1, 0], [0, 1]]}}],
//              "report": ["x[1]"], "max_sweeps": 100, "tolerance": 1e-12}

#include <string>
#include <utility>
#include <vector>

#include "vfe/schedulers/stream.h"

namespace vfe {

/// A streaming model read from JSON.
struct StreamModel {
  Stream stream;
  /// The inputs by name, in the order of Push's values (the columns of `vfe stream`'s CSV).
  std::vector<std::string> inputs;
  /// The elements whose posteriors each step's line reports (default: every carry's from).
  std::vector<std::string> report;
  /// The columns' names: an input's name, or "y[0]" … for one of several numbers.
  std::vector<std::string> columns;
  /// The reported elements' handles in each slice met so far (one per pattern of missing
  /// inputs), resolved on first use by AppendStreamStepJson.
  std::vector<std::pair<const FactorGraph*, std::vector<Variable>>> report_elements;
};

/// Parses a document with a "stream" block; CSV paths relative to `base_directory`. Throws
/// ModelError starting with the JSON pointer at fault, as ParseModel does.
StreamModel ParseStreamModel(const std::string& text, const std::string& base_directory = ".");
/// Reads and parses a streaming model file ("-": standard input).
StreamModel LoadStreamModel(const std::string& path);

/// The last step as one line of JSON (no newline): {"step", "free_energy", "sweeps",
/// "converged", "missing", "posteriors": {element: its posterior, as in a result}}.
std::string StreamStepJson(StreamModel& model);
/// The same line appended to `line` (no allocation once `line` has grown to a line's size).
void AppendStreamStepJson(StreamModel& model, std::string& line);

}  // namespace vfe

#endif  // VFE_IO_STREAM_JSON_H_
