#ifndef VFE_BINDINGS_PYTHON_BUILT_DOCUMENT_H_
#define VFE_BINDINGS_PYTHON_BUILT_DOCUMENT_H_

// The vfe-model/1 document of a graph built from Python, written down call by call as the
// graph is built, so that FactorGraph.to_json and pickling can give it back and vfe.parse
// (the C++ loader) rebuilds the same graph: the same variables in the same order, the same
// plates, the same F bit for bit. Data given as rows or gathers become declared data
// variables (after the graph's variables, so that the graph's ids do not move); what JSON
// cannot say (a run of a 2-D array that crosses a row, a gather of part of an array) is
// recorded as the reason the document cannot be written, and to_json raises it.

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vfe/graph/factor_graph.h"

namespace vfe {
namespace python {

class BuiltDocument {
 public:
  using Json = nlohmann::ordered_json;

  /// The rows of `m` as JSON: an array of rows, or of numbers when `m` has one column.
  static Json RowsJson(const Matrix& m);

  /// A hidden variable as FactorGraph.variable declared it.
  void AddHidden(const Variable& v, const std::string& name, Family family, int dim,
                 const std::vector<size_t>& shape);
  /// An observed variable: `values` as JSON writes them (a number, N numbers, N rows),
  /// `shape` as written ({} for one value), `dim` of a vector or matrix value (1 otherwise),
  /// `categories` K of categorical data.
  void AddObserved(const Variable& v, const std::string& name, Json values,
                   const std::vector<size_t>& shape, int dim, std::optional<int> categories);
  /// A factor as FactorGraph.factor added it (after the graph accepted it).
  void AddFactor(const std::string& type, const std::string& name,
                 const std::vector<NamedArgument>& arguments);
  /// A gated factor as FactorGraph.gated_factor added it.
  void AddGatedFactor(const std::string& type, const Variable& gate,
                      const std::vector<std::vector<NamedArgument>>& components,
                      const std::string& name);
  void AddCluster(const FactorGraph& graph, const Variable& v, const std::string& solver);

  /// The document; throws ModelError naming the first call JSON cannot express.
  std::string Text(int indent) const;

 private:
  struct Written {
    std::string name;
    std::vector<size_t> shape;  ///< as the document declares it ({}: one element)
  };
  /// How the factors of one call are looped over: "n" over [0, count), or "i", "j" over a
  /// whole 2-D array.
  struct Loops {
    size_t count = 1;
    std::vector<size_t> grid;  ///< {N, M} for two loops
  };
  /// `handle` as an argument of factors looped by `loops`: an element shared by every factor,
  /// one element per factor, or (whole) every element.
  std::optional<std::string> Expression(const Variable& handle, const Loops& loops,
                                        bool whole) const;
  std::optional<Json> ArgumentJson(const std::string& type, const NamedArgument& argument,
                                   const Loops& loops);
  /// A name for a declared data variable that no variable has.
  std::string FreshName(const std::string& stem);
  void Unwritable(const std::string& what);

  std::vector<std::optional<Written>> by_id_;  ///< by graph variable id
  Json variables_ = Json::array();
  Json data_ = Json::array();  ///< declared data read as rows or indices
  Json factors_ = Json::array();
  Json factorisation_ = Json::array();
  std::set<std::string> names_;
  std::string unwritable_;  ///< the first call JSON cannot express
};

}  // namespace python
}  // namespace vfe

#endif  // VFE_BINDINGS_PYTHON_BUILT_DOCUMENT_H_
