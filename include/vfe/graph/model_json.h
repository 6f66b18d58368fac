#ifndef VFE_GRAPH_MODEL_JSON_H_
#define VFE_GRAPH_MODEL_JSON_H_

// Models in the JSON format "vfe-model/1" (docs/json-format.md), and results in
// "vfe-result/1".

#include <string>
#include <vector>

#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/options.h"

namespace vfe {

/// The "inference" block of a model.
struct InferenceSettings {
  SchedulerOptions options;                ///< iterations, tolerance, order
  std::string scheduler = "sequential";    ///< "sequential" or "parallel"
  int threads = 0;                         ///< of the parallel scheduler; 0: all cores
};

/// A model read from JSON: its finalised graph (posteriors at their starting points, the
/// "initial" block applied) and its inference settings.
struct Model {
  FactorGraph graph;
  InferenceSettings inference;
  /// The variables the model declares, in order (hidden and observed).
  std::vector<Variable> variables;
  /// Shapes of the declared variables, by id ({} for a single element).
  std::vector<std::vector<size_t>> shapes;
  double build_ms = 0.0;  ///< parsing, validation and Finalize
};

/// Parses a "vfe-model/1" document. CSV paths are relative to `base_directory`. Throws
/// ModelError whose message starts with the JSON pointer at fault, then what was expected and
/// what was found ("/factors/2/precision: expected a positive number or a Gamma variable,
/// found -1").
Model ParseModel(const std::string& text, const std::string& base_directory = ".");

/// Reads and parses a model file: JSON (CSV paths relative to the file), or libDAI's
/// factor-graph format when the name ends in ".fg".
Model LoadModel(const std::string& path);

/// A libDAI .fg file: variable label L becomes the Categorical variable "xL" (its cardinality),
/// each factor a Potential whose log-table is the log of the file's table (entries not listed,
/// or 0, are −∞). Errors name `source` and the line. Inference settings are the defaults.
Model ParseLibDaiFactorGraph(const std::string& text, const std::string& source);

/// The result of a run as "vfe-result/1" JSON: convergence, the free-energy trace, every hidden
/// variable's posterior (arrays as arrays) and the timings.
std::string ResultJson(const Model& model, const Result& result, int indent = 2);

}  // namespace vfe

#endif  // VFE_GRAPH_MODEL_JSON_H_
