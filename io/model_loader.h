#ifndef VFE_IO_MODEL_LOADER_H_
#define VFE_IO_MODEL_LOADER_H_

// The model loader: a "vfe-model/1" document (docs/json-format.md) into a finalised factor
// graph and its inference settings, every error at the JSON pointer at fault. Factors are read
// generically from the node registry (nodes/registry.h): model_loader.cc reads the document
// and its variables, model_factors.cc its factors, model_inference.cc its factorisation and
// inference settings. Private to io/.

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/csv.h"
#include "io/index_expression.h"
#include "io/json_reader.h"
#include "io/model_document.h"
#include "vfe/io/model_json.h"
#include "vfe/nodes/registry.h"

namespace vfe {

class Loader : public JsonReader {
 public:
  explicit Loader(std::string base_directory)
      : base_(std::move(base_directory)), document_(std::make_shared<ModelDocument>()) {}
  /// Reads the document; the loader is used once.
  Model Load(const std::string& text);
  /// Reads the document's variables, factors and factorisation into a graph that is not
  /// finalised (a streaming slice, to which vfe::Stream adds its carried priors); the other
  /// blocks are not read.
  FactorGraph LoadGraph(const std::string& text);

 private:
  /// A graph error located by the factor or variable it names: "factor 'lik' (Gaussian): ..."
  /// becomes "/factors/2: factor 'lik' (Gaussian): ...", and for a factor without a name
  /// ("factor #4 (Gaussian): ..." in the graph's words) "/factors/2 (Gaussian): ...". An error
  /// about a cluster ("cluster 'x' has a cycle ...", "cluster 'x' (parallel-scan solver, ...):
  /// ...") that names no factor goes to its entry of "factorisation" ("/factorisation/0:
  /// cluster 'x' ...").
  std::string LocateGraphError(const std::string& message) const;
  bool finalize_ = true;  ///< false: LoadGraph
  /// A message about one plate, at the pointer of the factor entry that made it.
  std::string Located(PlateId plate, const std::string& message) const;

  // ---- variables (model_loader.cc) ----
  void AddVariable(const Json& spec, const std::string& pointer);
  /// {"family": "MatrixDirichlet", "dim": [K, L]}: L columns, each a Dirichlet over K outcomes,
  /// held by the graph as the array variable of L Dirichlet elements of dimension K.
  void DeclareMatrixDirichlet(const std::string& name, const Json& spec, const std::string& pointer,
                              VariableEntry& entry);
  static std::optional<size_t> NumElements(const std::vector<size_t>& shape);
  /// Adds the statistics of `entry`'s elements to the model's count, refusing a model of more
  /// than kMaxNumbers. Observed values count as the family they will take: scalars as 2,
  /// vectors of D as an MvGaussian's D + D², a D x D matrix as a Wishart's D² + 1, categorical
  /// data as K.
  void CountNumbers(const std::string& name, const std::string& pointer,
                    const VariableEntry& entry);
  /// The table of {"csv": file, "column"/"columns": ...}, the file relative to the model.
  CsvTable ReadCsvSpec(const Json& value, const std::string& pointer) const;
  /// Keeps the columns named by "column" (one, by index or header name) or "columns" (a list).
  void SelectColumns(CsvTable& table, const Json& spec, const std::string& pointer,
                     const std::string& path) const;
  /// The constant written at `pointer`: a number, a vector or a matrix, by its JSON shape.
  ConstantValue ReadConstant(const Json& value, const std::string& pointer) const;
  void AddObserved(const std::string& name, const Json& value, const std::string& pointer,
                   size_t size, bool has_shape, VariableEntry& entry);
  /// Categorical data: integers 0..K−1, K given by "dim".
  void CheckOutcomes(const Json& spec, const std::string& pointer, VariableEntry& entry);
  double ObservedNumber(const Json& value, const std::string& pointer);
  /// Refuses observed rows that are not of the declared dimension.
  void DeclareObservedRows(const std::string& /*name*/, const std::string& pointer,
                           VariableEntry& entry);
  /// The graph variable of an entry. Observed variables enter the graph when a factor first
  /// connects them (one that only supplies LinearGaussian matrices never does).
  const Variable& GraphVariable(const std::string& name, VariableEntry& entry);

  // ---- factors (model_factors.cc) ----

  /// One argument of a factor as written: a variable (one element per factor, or shared),
  /// a list of them, or a constant (shared, or sliced per factor: rows of data, log-tables).
  struct FactorArgument {
    const Parameter* parameter = nullptr;
    std::string pointer;
    VariableEntry* entry = nullptr;  ///< the variable, if one
    std::string variable_name;
    bool per_factor = false;  ///< one element per factor: elements[n]
    std::vector<size_t> elements;
    std::vector<FactorArgument> list;  ///< the entries of a list of variables
    std::optional<ConstantValue> constant;
    /// Numbers of the constant per factor (rows of data, log-tables), 0 when shared.
    size_t per_factor_size = 0;
  };
  /// Reads the factor entry at `pointer` and adds its plates.
  void AddFactor(const Json& spec, const std::string& pointer);
  /// A range [begin, end] of loop `name` at `pointer` (begin <= end).
  LoopRange ReadRange(const std::string& name, const Json& range, const std::string& pointer) const;
  /// A gated factor's component loop, "components": {"k": [0, K]}.
  LoopRange ReadComponents(const Json& spec, const std::string& pointer,
                           const std::vector<LoopRange>& loops) const;
  /// The loops of a factor's "for", outermost first.
  std::vector<LoopRange> ReadLoops(const Json& spec, const std::string& pointer) const;
  FactorArgument ReadArgument(const Parameter& parameter, const Json& value,
                              const std::string& pointer, const std::vector<LoopRange>& loops,
                              size_t count);
  /// A variable named by `text` for an element parameter: shared, or one element per factor.
  void ReadVariable(FactorArgument& argument, const std::string& text,
                    const std::vector<LoopRange>& loops, size_t count);
  /// Observed data for a parameter that takes rows per factor ("X[n]") or one matrix ("X").
  void ReadData(FactorArgument& argument, const std::string& text,
                const std::vector<LoopRange>& loops, size_t count);
  /// The observed integer arrays a reference at `pointer` may index by ("p[coin[n]]").
  DataLookup IndexData(const std::string& pointer, const std::string& text);
  /// The value of `argument` for the plate of factors [first, last).
  ParameterValue PlateValue(const FactorArgument& argument, size_t first, size_t last, long step);
  /// "log_tables": one table per factor of the loop, in loop order: an array of `count`
  /// tables (each written like "log_table") or {"csv": ...} with one row per factor.
  ConstantValue ReadLogTables(const Json& value, const std::string& pointer, size_t count);
  /// A log-table written as nested arrays (one level per variable), row-major; entries are
  /// numbers or "-inf" (an impossible configuration). The shape is checked against the
  /// variables' categories when the graph is finalised.
  /// A log-table written as nested arrays (one level per variable), row-major; entries are
  /// numbers or "-inf" (an impossible configuration), appended to `out`.
  void FlattenTable(const Json& value, const std::string& pointer, std::vector<double>& out) const;

  // ---- predictions (model_predictions.cc) ----
  /// "predictions": the posterior predictive means the result reports (Model::predictions).
  void ReadPredictions(const Json& value, const std::string& pointer);
  /// The rows of new data of a prediction: a matrix (array of rows), one row (array of
  /// numbers) or the name of an observed variable (its elements as rows; marked used).
  Matrix PredictionRows(const Json& value, const std::string& pointer);
  // ---- factorisation and inference (model_inference.cc) ----

  // ---- factorisation and inference ----
  /// Each entry names the variables that share one joint posterior: a list of names, or an
  /// object {"variables": [...], "solver": "sequential" | "parallel_scan"} that also chooses
  /// how the cluster's sum-product runs (ClusterSolver). A list of one array variable gives
  /// its elements a joint q (a cluster, solved by sum-product); a list of one single-element
  /// variable is mean field anyway.
  void ReadFactorisation(const Json& value);
  /// The solver of a cluster: "sequential" or "parallel_scan".
  ClusterSolver ReadClusterSolver(const Json& value, const std::string& pointer);
  /// A cluster error of the graph as a model author reads it: the C++ solver names
  /// (ClusterSolver::kSequential) become the JSON ones ("solver": "sequential").
  static std::string SolverInJsonTerms(std::string message);
  void ReadInference(const Json& value, const std::string& pointer);
  /// The fixed variables into SchedulerOptions::fixed; a given order must list every other
  /// hidden variable (whole); without one, the variables given a starting posterior in
  /// "initial" are updated after the others (each group in declaration order), so that the
  /// starting values are read before they are overwritten.
  void SettleOrder(bool order_given);
  /// One value per element: a number for all, an array with one entry per element, or CSV.
  std::vector<Matrix> PerElement(const Json& value, const std::string& pointer, size_t size,
                                 int rows, int cols, const std::string& what);
  void ReadInitial(const Json& value, const std::string& pointer);
  /// {"random": {"seed": S}}: FactorGraph::SetRandomPosterior (Categorical, Gaussian and
  /// MvGaussian variables).
  void SetRandomInitial(const std::string& name, const VariableEntry& entry, const Json& q,
                        const std::string& p);
  /// Sets the starting posterior of `target` (the whole of `entry`'s variable, or one of its
  /// elements) from the distribution object `q` at pointer `p`.
  void SetInitial(const std::string& name, const VariableEntry& entry, const Json& q,
                  const std::string& p, const Variable& target);
  /// The mean a result writes beside the parameters of a Gamma, Beta, Wishart, Dirichlet or
  /// MatrixDirichlet posterior may be given back; it must then be the mean the parameters
  /// give (to 1e-9 relative: a written mean was rounded once). Entries are numbered row-major.
  void CheckDerivedMean(const std::vector<Matrix>& given, const std::vector<Matrix>& means,
                        const std::string& pointer);

  std::string base_;
  std::shared_ptr<ModelDocument> document_;
  size_t num_numbers_ = 0;  // statistics of the variables declared so far (kMaxNumbers)
  size_t num_factors_ = 0;  // factors added so far (kMaxNumbers)
  Model model_;
  std::map<std::string, VariableEntry> entries_;
  std::vector<std::string> names_;  // declaration order
  /// The factor entry of each plate: its pointer, and its name if it has one.
  struct PlateSource {
    std::string pointer;
    std::string name;
  };
  std::vector<PlateSource> plate_sources_;
  std::map<std::string, std::string> cluster_pointers_;  // clustered variable -> /factorisation/i
  std::map<std::string, std::string> initialised_;       // variable -> its "initial" pointer
};

}  // namespace vfe

#endif  // VFE_IO_MODEL_LOADER_H_
