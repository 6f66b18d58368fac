#ifndef VFE_NODES_REGISTRY_H_
#define VFE_NODES_REGISTRY_H_

// The registry of node types. Each node file declares its type once, next to its maths: its
// name, its parameters (the names a factor's arguments go by, what each accepts, which are
// optional), a one-line summary, its formula, an example model and its factory. One explicit
// table, nodes/registry.cc, lists the declarations. Everything else reads it: the generic
// FactorGraph::AddFactor(type, arguments), the JSON model loader, `vfe check` and `vfe dot`,
// the node table of docs/json-format.md, the property tests every node type runs, and the
// bindings. docs/adding-a-node.md shows how to add a node type.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vfe/core/error.h"
#include "vfe/core/types.h"
#include "vfe/nodes/node.h"

namespace vfe {

/// What a parameter takes as a constant, and how a constant is checked.
enum class ConstantKind {
  kNone,             ///< no constant: only a variable
  kNumber,           ///< a finite number
  kPositiveNumber,   ///< a number > 0
  kProbability,      ///< a number in (0, 1)
  kPositiveInteger,  ///< an integer ≥ 1
  kCount,            ///< an integer ≥ 0
  kValue,            ///< a number or a vector of finite numbers
  kPositiveVector,   ///< a vector of numbers > 0
  kProbabilities,    ///< a vector of numbers ≥ 0 that sum to 1
  kMatrix,           ///< a matrix of finite numbers
  kPositiveMatrix,   ///< a matrix of numbers > 0
  kPrecision,        ///< a number > 0, or a symmetric positive-definite matrix
  kTable,            ///< a log-table: finite numbers or −∞, flattened row-major
  kTables,           ///< one log-table per factor, one after another
  kName,             ///< one of Parameter::choices
};

/// How a variable given to a parameter joins the node's slots.
enum class Connection {
  kNone,     ///< not at all: the parameter takes constants only
  kElement,  ///< one slot: one element shared by every factor, or one element per factor
  kWhole,    ///< one slot per element of an array variable, shared by every factor (the K
             ///< components of a mixture, the columns of a learned matrix)
  kList,     ///< one slot per variable of a list (the variables of a potential)
};

/// One parameter of a node type, as factors name it ("mean", "precision", ...).
struct Parameter {
  std::string name;
  std::string help;  ///< one line, for docs and `vfe` listings
  Connection connection = Connection::kElement;
  /// Families a hidden variable given here may have (FamilyName); none: observed data only.
  /// Observed variables are read in the family the node asks for (Node::ObservedFamily) and
  /// checked then.
  std::vector<Family> families;
  ConstantKind constant = ConstantKind::kNone;
  /// True when a constant is the value of the parameter's slot (the node reads it as a point
  /// mass, as a Gaussian reads a known precision); false when it goes to the factory only
  /// (a known transition matrix, a prior's parameters).
  bool constant_in_slot = false;
  /// True when the factory may receive one row of data per factor instead of one constant
  /// (ConstantValue::Kind::kRows; in JSON an observed variable indexed by the factor's loop, as a
  /// regression's design matrix "X[n]").
  bool rows_per_factor = false;
  bool required = true;
  /// The value an optional parameter takes when it is not given (none: the node decides).
  std::string default_text;
  std::vector<std::string> choices;  ///< the names a kName parameter accepts
  /// True when the messages to the slot are variational messages: the natural parameters
  /// −∂U/∂E[T(x)] of the node's average energy U (the node is conjugate to the slot), so
  /// that an update of a variable whose messages are all such never raises F.
  bool conjugate = true;
};

/// A constant given to a parameter: a number, a vector, a matrix, a name, or one row of data
/// per factor (Parameter::rows_per_factor). Variables are given through the graph
/// (FactorGraph::AddFactor with NamedArgument).
struct ConstantValue {
  enum class Kind { kNumber, kVector, kMatrix, kName, kRows };
  Kind kind = Kind::kNumber;
  Matrix matrix;     ///< a number as 1x1, a vector as Dx1, a matrix or the rows as given
  std::string name;  ///< for kName
  /// "-1", "a vector of 3", "a 2x2 matrix", "the string \"sin\"", "4 rows of data".
  std::string Describe() const;
};

/// An error in one argument of a factor: `parameter` names it, `entry` the entry of a vector
/// or matrix at fault ("1", "0/2"; empty for the whole value), `detail` says what was expected
/// and found. what() reads "where: 'parameter': detail". The JSON loader turns it into
/// "/factors/3/parameter/entry: detail".
class ParameterError : public ModelError {
 public:
  ParameterError(const std::string& where, std::string parameter, std::string entry,
                 std::string detail);
  const std::string& parameter() const { return parameter_; }
  const std::string& entry() const { return entry_; }
  const std::string& detail() const { return detail_; }

 private:
  std::string parameter_, entry_, detail_;
};

struct NodeType;

/// What a factory sees of a factor's arguments, checked against the declaration (kinds,
/// families, constants), with the defaults filled in.
class NodeArguments {
 public:
  /// One checked argument: its value and what it connects.
  struct Argument {
    const Parameter* parameter = nullptr;
    bool is_variable = false;
    ConstantValue constant;   ///< when not a variable
    int dim = 1;              ///< event dimension of its (first) variable, or the constant's size
    size_t count = 1;         ///< slots it connects: elements of a whole array, variables of a list
    std::string description;  ///< "'x' (MvGaussian)", "a constant"
    bool defaulted = false;   ///< not given: the parameter's default
  };
  NodeArguments(const NodeType& type, std::string where, std::vector<Argument> arguments,
                size_t num_factors);

  const NodeType& type() const { return *type_; }
  /// True when the parameter was given or has a default.
  bool has(const std::string& parameter) const;
  /// True when the parameter was given (not defaulted).
  bool given(const std::string& parameter) const;
  bool is_variable(const std::string& parameter) const;
  double number(const std::string& parameter) const;
  long integer(const std::string& parameter) const;
  /// A number or vector as a vector.
  Vector vector(const std::string& parameter) const;
  /// A matrix, or the rows of data per factor.
  const Matrix& matrix(const std::string& parameter) const;
  const std::string& name(const std::string& parameter) const;
  /// The constant given to the parameter (its kind tells a matrix from rows of data).
  const ConstantValue& constant(const std::string& parameter) const;
  /// The slots the parameter connects (see Argument::count).
  size_t count(const std::string& parameter) const;
  int dim(const std::string& parameter) const;
  const std::string& describe(const std::string& parameter) const;
  /// The factors of the plate being built.
  size_t num_factors() const { return num_factors_; }
  /// Throws ParameterError for `parameter`.
  [[noreturn]] void Fail(const std::string& parameter, const std::string& message) const;

 private:
  const Argument& Find(const std::string& parameter) const;
  const NodeType* type_;
  std::string where_;
  std::vector<Argument> arguments_;
  size_t num_factors_;
};

/// Builds a node from checked arguments; throws ParameterError (through NodeArguments::Fail)
/// for values the declaration could not check (dimensions that must agree, options that
/// depend on others).
using NodeFactory = std::unique_ptr<Node> (*)(const NodeArguments& arguments);

/// The declaration of a node type.
struct NodeType {
  std::string name;     ///< as models write it ("Gaussian")
  std::string summary;  ///< one line: what the factor is
  std::string formula;  ///< the density and its average energy U
  std::vector<Parameter> parameters;
  /// Groups of parameters of which exactly one must be given.
  std::vector<std::vector<std::string>> exactly_one_of;
  NodeFactory make = nullptr;
  /// A small vfe-model/1 document that uses the node: the docs show it, and the property
  /// tests run every node type on its example (every factor of this type in it).
  std::string example;
  /// False when the node has no pointwise density (Node::LogFactor is NaN): the Monte Carlo
  /// free energy refuses it, and the tests check its energy otherwise.
  bool pointwise_density = true;
  /// False when the node's average energy is an approximation of −E_q[log f] (a Delta node
  /// linearising f): the Monte Carlo check of U does not apply.
  bool exact_energy = true;
  /// The posterior predictive of a node with a Gaussian predictor a (Logistic, Probit, the
  /// Poisson log link): E[out] = E_q[E[out | a]] for predictors aₖ ~ N(mean[k], variance[k]),
  /// k < count, into out[k], to the last digits. Null when the node has none
  /// (FactorGraph::PredictiveMeans refuses it).
  using PredictiveMeans = void (*)(const double* mean, const double* variance, size_t count,
                                   double* out);
  PredictiveMeans predictive_means = nullptr;
  /// What predictive_means computes, for the docs ("P(out = 1) = E_q[σ(a)]").
  std::string predictive_formula;

  /// The parameter called `name`, or null.
  const Parameter* Find(const std::string& name) const;
  /// The names of the slots of a node of this type: each connecting parameter in order, as
  /// its name (one slot) or name[k] (kWhole, kList: `counts` gives how many, by parameter;
  /// a parameter given as a constant that is not a slot has count 0).
  std::vector<std::string> SlotNames(
      const std::vector<std::pair<std::string, size_t>>& counts = {}) const;
};

/// Every registered node type, in the order of nodes/registry.cc.
const std::vector<const NodeType*>& NodeTypes();
/// The node type called `name`, or null.
const NodeType* FindNodeType(const std::string& name);
/// The names of every registered node type.
std::vector<std::string> NodeTypeNames();
/// The names of the node types that declare posterior predictive means
/// (NodeType::predictive_means), in registry order.
std::vector<std::string> PredictiveNodeTypeNames();

/// What is wrong with the names of a factor's arguments: an unknown or repeated name
/// (`parameter` names it), or a missing one (`parameter` empty).
struct ArgumentNameProblem {
  std::string parameter;
  std::string message;
};
/// Checks the names given to a factor of `type`: every name a parameter, none twice, every
/// required one there, exactly one of each Node::exactly_one_of group.
std::optional<ArgumentNameProblem> CheckArgumentNames(const NodeType& type,
                                                      const std::vector<std::string>& given);

/// The node table of docs/json-format.md, generated from the registry (`vfe nodes
/// --markdown` prints it; a test checks that the docs hold it): one row per node type with its
/// summary and its arguments, each with what it accepts.
std::string NodeTypesMarkdown();
/// One node type in words, for `vfe nodes TYPE`: summary, formula, every argument (what it
/// accepts, optional or required, default) and the example model.
std::string DescribeNodeType(const NodeType& type);

/// "a positive number", "a Gamma variable", "a positive number or a Gamma variable": what a
/// parameter accepts, as errors and docs say it.
std::string AcceptedText(const Parameter& parameter);

/// Checks a constant against the parameter's kind; throws ParameterError (with the entry at
/// fault) naming `where`.
void CheckConstant(const Parameter& parameter, const ConstantValue& value,
                   const std::string& where);

}  // namespace vfe

#endif  // VFE_NODES_REGISTRY_H_
