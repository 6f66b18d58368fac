#ifndef VFE_IO_MODEL_JSON_H_
#define VFE_IO_MODEL_JSON_H_

// Models in the JSON format "vfe-model/1" (docs/json-format.md), and results in
// "vfe-result/1".

#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/options.h"

namespace vfe {

/// The scheduler of a run: SequentialScheduler, ParallelScheduler or AsyncScheduler (for
/// belief propagation, a sequential or a flooding schedule).
enum class SchedulerKind { kSequential, kParallel, kAsync };
/// "sequential", "parallel" or "async", as models and the vfe program write them.
const char* SchedulerName(SchedulerKind scheduler);
/// The scheduler of that name, or nullopt.
std::optional<SchedulerKind> ParseSchedulerKind(const std::string& name);

/// What a run computes: variational message passing, or loopy belief propagation (Categorical
/// variables and fixed discrete factors only; BeliefPropagation).
enum class Algorithm { kVariationalMessagePassing, kBeliefPropagation };
/// "vmp" or "bp".
const char* AlgorithmName(Algorithm algorithm);
std::optional<Algorithm> ParseAlgorithm(const std::string& name);

/// The "inference" block of a model: everything Infer needs to run it.
struct InferenceSettings {
  SchedulerOptions options;  ///< iterations, tolerance, order, callback
  SchedulerKind scheduler = SchedulerKind::kSequential;
  int threads = 0;  ///< of the parallel and async schedulers and of flooding BP; 0: all cores
  Algorithm algorithm = Algorithm::kVariationalMessagePassing;
  double threshold = 1e-9;  ///< the async scheduler's AsyncOptions::threshold
  /// Belief propagation's damping in [0, 1); its tolerance bounds the change of any belief
  /// probability in a sweep (BeliefPropagationOptions::tolerance).
  double damping = 0.0;
};

/// What a JSON document says beyond the graph it builds (io/model_document.h): the
/// document as parsed, the declared variables as written (matrix Dirichlets, observed values
/// read from CSV) and the other CSV tables it read. ResultJson and NormalisedModelJson use it.
struct ModelDocument;

/// A posterior predictive the model asks for ("predictions"): the mean of a node's `out` at
/// new data under the posteriors of a run, which the new data do not change
/// (FactorGraph::PredictiveMeans: P(out = 1) for Logistic and Probit, the expected count for
/// Poisson).
struct Prediction {
  std::string name;
  std::string node;  ///< a node type with predictive means
  Variable in;       ///< the hidden Gaussian or MvGaussian the predictor reads
  Matrix rows;       ///< one row per prediction; empty: a_k = in[k]
  Vector offsets;    ///< none, one, or one per prediction
  std::string pointer;  ///< where the document gives it ("/predictions/0")
};

/// A model read from JSON: its finalised graph (posteriors at their starting points, the
/// "initial" block applied) and its inference settings.
struct Model {
  FactorGraph graph;
  InferenceSettings inference;
  /// The variables the model declares, in order (hidden and observed).
  std::vector<Variable> variables;
  /// Declared observed variables the graph does not hold: data read only as constants (a
  /// LinearGaussian's "matrix") or as indices ("theta[school[n]]"). They are not in
  /// `variables`.
  size_t constant_variables = 0;
  /// Shapes of the declared variables, by id ({} for a single element).
  std::vector<std::vector<size_t>> shapes;
  double build_ms = 0.0;  ///< parsing, validation and Finalize
  /// The posterior predictives to report, in the order of "predictions".
  std::vector<Prediction> predictions;
  /// The document the model was read from; null for a libDAI file.
  std::shared_ptr<const ModelDocument> document;
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

/// Runs inference on the model as its settings say (model.inference: algorithm, scheduler,
/// threads, options) and returns the result; the posteriors stay in model.graph. Throws
/// OptionsError for settings no scheduler takes (belief propagation on the async scheduler).
Result Infer(Model& model);

/// The means of `prediction` under the current posteriors of `model` (see Prediction).
std::vector<double> PredictiveMeans(const Model& model, const Prediction& prediction);

/// What a result document holds beyond its outcome, final F and warnings.
struct ResultJsonOptions {
  bool trace = true;  ///< "free_energy": F after every sweep (false: left out)
  /// The variables whose posteriors are written, by name; empty: every hidden variable.
  std::vector<std::string> posteriors;
  int indent = 2;
  /// Entries added at the end of the document: a key and its value as JSON text.
  std::vector<std::pair<std::string, std::string>> extra;
};

/// The result of a run as "vfe-result/1" JSON: convergence, the final F and the free-energy
/// trace, the warnings, every hidden variable's posterior (arrays as arrays; a
/// MatrixDirichlet variable as one K x L "alpha") and the timings. Throws ModelError for a
/// name in options.posteriors that is not a hidden variable of the model.
std::string ResultJson(const Model& model, const Result& result, const ResultJsonOptions& options);
/// Throws ModelError, as ResultJson would, for a name in options.posteriors that is not a
/// hidden variable of the model (a check before a run, not after it).
void CheckResultJsonOptions(const Model& model, const ResultJsonOptions& options);
/// ResultJson written to `out` as it is made: the posteriors one element at a time, so a
/// result of millions of elements is never held whole in memory (the same text).
void WriteResultJson(std::ostream& out, const Model& model, const Result& result,
                     const ResultJsonOptions& options);
inline std::string ResultJson(const Model& model, const Result& result, int indent = 2) {
  ResultJsonOptions options;
  options.indent = indent;
  return ResultJson(model, result, options);
}

/// The model as a normalised "vfe-model/1" document: the one it was read from, with every CSV
/// file inlined (observed values, per-factor log-tables, starting posteriors), every observed
/// variable's "shape" written out, and the "inference" block complete (its defaults written).
/// Each number is written with the digits that read back to the same double, so ParseModel of
/// the text builds the same graph (variables, factors, constants, starting posteriors) and a
/// run gives the same free energy bit for bit. Throws ModelError for a model not read from
/// JSON (a libDAI file).
std::string NormalisedModelJson(const Model& model, int indent = 2);

}  // namespace vfe

#endif  // VFE_IO_MODEL_JSON_H_
