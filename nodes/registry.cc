// The registry of node types: one line per node type in VFE_NODE_TYPES below. Each node file
// defines the declaration `const NodeType& <Name>NodeType()` beside its maths
// (docs/adding-a-node.md).

#include "vfe/nodes/registry.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "vfe/core/format.h"

// Every node type, in the order docs and listings show them.
#define VFE_NODE_TYPES(X) \
  X(Gaussian)             \
  X(MvGaussian)           \
  X(LinearGaussian)       \
  X(Gamma)                \
  X(Wishart)              \
  X(Beta)                 \
  X(Dirichlet)            \
  X(MatrixDirichlet)      \
  X(Bernoulli)            \
  X(Logistic)             \
  X(Probit)               \
  X(Categorical)          \
  X(Softmax)              \
  X(Poisson)              \
  X(GaussianMixture)      \
  X(Transition)           \
  X(Potential)            \
  X(Delta)                \
  X(Sum)                  \
  X(MatrixProduct)

namespace vfe {

#define VFE_DECLARE_NODE_TYPE(name) const NodeType& name##NodeType();
VFE_NODE_TYPES(VFE_DECLARE_NODE_TYPE)
#undef VFE_DECLARE_NODE_TYPE

const std::vector<const NodeType*>& NodeTypes() {
#define VFE_LIST_NODE_TYPE(name) &name##NodeType(),
  static const std::vector<const NodeType*> types = {VFE_NODE_TYPES(VFE_LIST_NODE_TYPE)};
#undef VFE_LIST_NODE_TYPE
  return types;
}

const NodeType* FindNodeType(const std::string& name) {
  for (const NodeType* type : NodeTypes())
    if (type->name == name) return type;
  return nullptr;
}

std::vector<std::string> NodeTypeNames() {
  std::vector<std::string> names;
  for (const NodeType* type : NodeTypes()) names.push_back(type->name);
  return names;
}

std::vector<std::string> PredictiveNodeTypeNames() {
  std::vector<std::string> names;
  for (const NodeType* t : NodeTypes())
    if (t->predictive_means) names.push_back(t->name);
  return names;
}

const Parameter* NodeType::Find(const std::string& parameter) const {
  for (const Parameter& p : parameters)
    if (p.name == parameter) return &p;
  return nullptr;
}

std::vector<std::string> NodeType::SlotNames(
    const std::vector<std::pair<std::string, size_t>>& counts) const {
  std::vector<std::string> names;
  for (const Parameter& p : parameters) {
    if (p.connection == Connection::kNone) continue;
    size_t count = p.connection == Connection::kElement ? 1 : 0;
    for (const auto& [name, n] : counts)
      if (name == p.name) count = n;
    if (p.connection == Connection::kElement) {
      if (count) names.push_back(p.name);
      continue;
    }
    for (size_t k = 0; k < count; ++k) names.push_back(p.name + "[" + std::to_string(k) + "]");
  }
  return names;
}

// ---- Values ---------------------------------------------------------------------------------

std::string ConstantValue::Describe() const {
  switch (kind) {
    case Kind::kNumber:
      return FormatNumber(matrix(0, 0));
    case Kind::kVector:
      return "a vector of " + std::to_string(matrix.rows());
    case Kind::kMatrix:
      return "a " + std::to_string(matrix.rows()) + "x" + std::to_string(matrix.cols()) + " matrix";
    case Kind::kName:
      return "the string \"" + name + "\"";
    case Kind::kRows:
      return std::to_string(matrix.rows()) + " rows of data";
  }
  return "?";
}

ParameterError::ParameterError(const std::string& where, std::string parameter, std::string entry,
                               std::string detail)
    : ModelError(where + ": '" + parameter + "'" + (entry.empty() ? "" : " entry " + entry) + ": " +
                 detail),
      parameter_(std::move(parameter)),
      entry_(std::move(entry)),
      detail_(std::move(detail)) {}

// ---- Names ----------------------------------------------------------------------------------

std::optional<ArgumentNameProblem> CheckArgumentNames(const NodeType& type,
                                                      const std::vector<std::string>& given) {
  std::vector<std::string> names, required, optional;
  for (const Parameter& p : type.parameters) {
    names.push_back(p.name);
    bool grouped = false;
    for (const auto& group : type.exactly_one_of)
      grouped |= std::find(group.begin(), group.end(), p.name) != group.end();
    (p.required && !grouped ? required : optional).push_back(p.name);
  }
  const std::string takes = type.name + " takes " +
                            (required.empty() ? "no required arguments" : JoinQuoted(required)) +
                            (optional.empty() ? "" : " and optionally " + JoinQuoted(optional));
  for (size_t i = 0; i < given.size(); ++i) {
    if (!type.Find(given[i]))
      return ArgumentNameProblem{given[i], "unknown argument '" + given[i] + "'" +
                                               DidYouMean(given[i], names) + "; " + takes};
    if (std::find(given.begin(), given.begin() + static_cast<std::ptrdiff_t>(i), given[i]) !=
        given.begin() + static_cast<std::ptrdiff_t>(i))
      return ArgumentNameProblem{given[i], "given twice"};
  }
  auto is_given = [&](const std::string& name) {
    return std::find(given.begin(), given.end(), name) != given.end();
  };
  for (const std::string& name : required)
    if (!is_given(name))
      return ArgumentNameProblem{"", "missing required argument '" + name + "' (" + takes + ")"};
  for (const auto& group : type.exactly_one_of) {
    std::vector<std::string> found;
    for (const std::string& name : group)
      if (is_given(name)) found.push_back(name);
    if (found.size() == 1) continue;
    std::string options;
    for (size_t i = 0; i < group.size(); ++i) {
      const Parameter* p = type.Find(group[i]);
      options += (i == 0                  ? ""
                  : i + 1 == group.size() ? " or "
                                          : ", ") +
                 ("'" + group[i] + "'") + (p && !p->help.empty() ? " (" + p->help + ")" : "");
    }
    const std::string names = group.size() == 2 ? "'" + group[0] + "' and '" + group[1] + "'"
                                                : JoinQuoted(group);
    return ArgumentNameProblem{
        "", found.empty() ? "missing required argument " + options
                          : "expected one of " + names + ", found " +
                                (found.size() == 2 ? std::string("both") : JoinQuoted(found))};
  }
  return std::nullopt;
}

// ---- What a parameter accepts ---------------------------------------------------------------

namespace {

std::string ConstantText(const Parameter& p) {
  switch (p.constant) {
    case ConstantKind::kNone:
      return "";
    case ConstantKind::kNumber:
      return "a finite number";
    case ConstantKind::kPositiveNumber:
      return "a positive number";
    case ConstantKind::kProbability:
      return "a probability in (0, 1)";
    case ConstantKind::kPositiveInteger:
      return "a positive integer";
    case ConstantKind::kCount:
      return "an integer >= 0";
    case ConstantKind::kValue:
      return "a number or a vector";
    case ConstantKind::kPositiveVector:
      return "a vector of positive numbers";
    case ConstantKind::kProbabilities:
      return "probabilities (numbers >= 0 that sum to 1)";
    case ConstantKind::kMatrix:
      return "a matrix (an array of rows)";
    case ConstantKind::kPositiveMatrix:
      return "a matrix of positive numbers";
    case ConstantKind::kPrecision:
      return "a positive number or a positive-definite matrix";
    case ConstantKind::kTable:
      return "a log-table (nested arrays, one level per variable, the last fastest; numbers or "
             "\"-inf\")";
    case ConstantKind::kTables:
      return "one log-table per factor (an array of tables, or {\"csv\": ...} with a row per "
             "factor)";
    case ConstantKind::kName:
      return "one of " + JoinQuoted(p.choices);
  }
  return "";
}

std::string FamiliesText(const std::vector<Family>& families) {
  std::string out;
  for (size_t i = 0; i < families.size(); ++i)
    out += std::string(i == 0                     ? ""
                       : i + 1 == families.size() ? " or "
                                                  : ", ") +
           FamilyName(families[i]);
  return out;
}

}  // namespace

std::string AcceptedText(const Parameter& p) {
  std::string variable;
  const std::string families = FamiliesText(p.families);
  switch (p.connection) {
    case Connection::kNone:
      break;
    case Connection::kElement:
      variable = p.families.empty() ? "observed data" : "a " + families + " variable";
      break;
    case Connection::kWhole:
      // A matrix Dirichlet is, to the graph, the array of its Dirichlet columns.
      variable = p.families == std::vector<Family>{Family::kDirichlet}
                     ? "a MatrixDirichlet variable"
                     : "an array of " + families + " variables (all of it)";
      break;
    case Connection::kList:
      variable = "a list of " + families + " variables";
      break;
  }
  std::string constant = ConstantText(p);
  if (p.rows_per_factor) constant += " or observed data with one row per factor";
  if (constant.empty()) return variable;
  if (variable.empty()) return constant;
  return constant + (constant.find(" or ") == std::string::npos ? " or " : ", or ") + variable;
}

void CheckConstant(const Parameter& p, const ConstantValue& value, const std::string& where) {
  using Kind = ConstantValue::Kind;
  auto fail = [&](const std::string& entry, const std::string& detail) {
    throw ParameterError(where, p.name, entry, detail);
  };
  auto expected = [&]() {
    fail("", "expected " + AcceptedText(p) + ", found " + value.Describe());
  };
  const Matrix& m = value.matrix;
  // The entry of a vector or matrix, as a JSON pointer suffix.
  auto entry = [&](Eigen::Index r, Eigen::Index c) {
    return value.kind == Kind::kMatrix ? std::to_string(r) + "/" + std::to_string(c)
                                       : std::to_string(r);
  };
  auto each = [&](auto ok, const std::string& what) {
    for (Eigen::Index c = 0; c < m.cols(); ++c)
      for (Eigen::Index r = 0; r < m.rows(); ++r)
        if (!ok(m(r, c)))
          fail(entry(r, c), "expected " + what + ", found " + FormatNumber(m(r, c)));
  };
  const auto finite = [](double x) { return std::isfinite(x); };
  const auto positive = [](double x) { return std::isfinite(x) && x > 0; };
  const bool number = value.kind == Kind::kNumber;
  const bool vector = value.kind == Kind::kVector || number;
  const bool matrix = value.kind == Kind::kMatrix;
  if (value.kind == Kind::kRows) {
    if (!p.rows_per_factor) expected();
    each(finite, "a finite number");
    return;
  }
  switch (p.constant) {
    case ConstantKind::kNone:
      expected();
      break;
    case ConstantKind::kNumber:
      if (!number) expected();
      each(finite, "a finite number");
      break;
    case ConstantKind::kPositiveNumber:
      if (!number || !positive(m(0, 0))) expected();
      break;
    case ConstantKind::kProbability:
      if (!number || !(m(0, 0) > 0 && m(0, 0) < 1)) expected();
      break;
    case ConstantKind::kPositiveInteger:
    case ConstantKind::kCount: {
      const double low = p.constant == ConstantKind::kCount ? 0 : 1;
      if (!number || !(m(0, 0) >= low && m(0, 0) == std::floor(m(0, 0)) && m(0, 0) < 9.2e18))
        expected();
      break;
    }
    case ConstantKind::kValue:
      if (!vector) expected();
      each(finite, "a finite number");
      break;
    case ConstantKind::kPositiveVector:
      if (!vector) expected();
      each(positive, "a positive number");
      break;
    case ConstantKind::kProbabilities: {
      if (!vector) expected();
      each([](double x) { return std::isfinite(x) && x >= 0; }, "a probability >= 0");
      const double total = m.sum();
      if (std::abs(total - 1.0) > 1e-9 * static_cast<double>(m.size()))
        fail("", "expected probabilities that sum to 1, found a sum of " + FormatNumber(total));
      break;
    }
    case ConstantKind::kMatrix:
      if (!matrix) expected();
      each(finite, "a finite number");
      break;
    case ConstantKind::kPositiveMatrix:
      if (!matrix) expected();
      each(positive, "a positive number");
      break;
    case ConstantKind::kPrecision:
      if (number) {
        if (!positive(m(0, 0))) expected();
        break;
      }
      if (!matrix) expected();
      each(finite, "a finite number");
      if (m.rows() != m.cols())
        fail("", "expected a square precision matrix, found " + std::to_string(m.rows()) + "x" +
                     std::to_string(m.cols()));
      if (!m.isApprox(m.transpose(), 1e-12))
        fail("", "expected a symmetric precision matrix, found an asymmetric one");
      if (Eigen::LLT<Matrix>(m).info() != Eigen::Success)
        fail("", "expected a positive-definite precision matrix, found one that is not");
      break;
    case ConstantKind::kTable:
    case ConstantKind::kTables:
      if (!vector) expected();
      each(
          [](double x) {
            return std::isfinite(x) || x == -std::numeric_limits<double>::infinity();
          },
          "a finite number or -inf");
      break;
    case ConstantKind::kName:
      if (value.kind != Kind::kName) expected();
      if (std::find(p.choices.begin(), p.choices.end(), value.name) == p.choices.end())
        fail("", "expected one of " + JoinQuoted(p.choices) + ", found " + value.Describe() +
                     DidYouMean(value.name, p.choices));
      break;
  }
}

// ---- Docs ------------------------------------------------------------------------------------

namespace {

std::string ArgumentText(const Parameter& p) {
  std::string text = AcceptedText(p);
  if (!p.required) text += p.default_text.empty() ? "; optional" : "; default " + p.default_text;
  return text;
}

}  // namespace

std::string NodeTypesMarkdown() {
  std::string out = "| node | what it is | arguments |\n|---|---|---|\n";
  for (const NodeType* type : NodeTypes()) {
    std::string arguments;
    for (const Parameter& p : type->parameters)
      arguments += (arguments.empty() ? "" : "<br>") + ("`" + p.name + "`: " + ArgumentText(p));
    out += "| `" + type->name + "` | " + type->summary + " | " + arguments + " |\n";
  }
  return out;
}

std::string DescribeNodeType(const NodeType& type) {
  std::string out = type.name + ": " + type.summary + "\n  " + type.formula + "\n\narguments:\n";
  for (const Parameter& p : type.parameters)
    out += "  " + p.name + ": " + p.help + "\n    " + ArgumentText(p) + "\n";
  for (const auto& group : type.exactly_one_of)
    out += "  (exactly one of " + JoinQuoted(group) + ")\n";
  if (type.predictive_means)
    out += "\nposterior predictive (\"predictions\"): " + type.predictive_formula + "\n";
  return out + "\nexample:\n" + type.example + "\n";
}

// ---- What a factory sees ---------------------------------------------------------------------

NodeArguments::NodeArguments(const NodeType& type, std::string where,
                             std::vector<Argument> arguments, size_t num_factors)
    : type_(&type),
      where_(std::move(where)),
      arguments_(std::move(arguments)),
      num_factors_(num_factors) {}

const NodeArguments::Argument& NodeArguments::Find(const std::string& parameter) const {
  for (const Argument& a : arguments_)
    if (a.parameter->name == parameter) return a;
  throw GraphError(where_ + ": the factory of " + type_->name + " asked for '" + parameter +
                   "', which was not given and has no default");
}

bool NodeArguments::has(const std::string& parameter) const {
  for (const Argument& a : arguments_)
    if (a.parameter->name == parameter) return true;
  return false;
}

bool NodeArguments::given(const std::string& parameter) const {
  return has(parameter) && !Find(parameter).defaulted;
}

const ConstantValue& NodeArguments::constant(const std::string& parameter) const {
  const Argument& a = Find(parameter);
  if (a.is_variable) Fail(parameter, "expected a constant, found " + a.description);
  return a.constant;
}

bool NodeArguments::is_variable(const std::string& parameter) const {
  return has(parameter) && Find(parameter).is_variable;
}

double NodeArguments::number(const std::string& parameter) const {
  const Argument& a = Find(parameter);
  if (a.is_variable || a.constant.kind != ConstantValue::Kind::kNumber)
    Fail(parameter, "expected a number, found " + a.description);
  return a.constant.matrix(0, 0);
}

long NodeArguments::integer(const std::string& parameter) const {
  return static_cast<long>(number(parameter));
}

Vector NodeArguments::vector(const std::string& parameter) const {
  const Argument& a = Find(parameter);
  if (a.is_variable || a.constant.kind == ConstantValue::Kind::kName ||
      a.constant.matrix.cols() != 1)
    Fail(parameter, "expected a number or a vector, found " + a.description);
  return a.constant.matrix.col(0);
}

const Matrix& NodeArguments::matrix(const std::string& parameter) const {
  const Argument& a = Find(parameter);
  if (a.is_variable || a.constant.kind == ConstantValue::Kind::kName)
    Fail(parameter, "expected a matrix, found " + a.description);
  return a.constant.matrix;
}

const std::string& NodeArguments::name(const std::string& parameter) const {
  const Argument& a = Find(parameter);
  if (a.is_variable || a.constant.kind != ConstantValue::Kind::kName)
    Fail(parameter, "expected a name, found " + a.description);
  return a.constant.name;
}

size_t NodeArguments::count(const std::string& parameter) const {
  return has(parameter) ? Find(parameter).count : 0;
}

int NodeArguments::dim(const std::string& parameter) const { return Find(parameter).dim; }

const std::string& NodeArguments::describe(const std::string& parameter) const {
  return Find(parameter).description;
}

void NodeArguments::Fail(const std::string& parameter, const std::string& message) const {
  throw ParameterError(where_, parameter, "", message);
}

}  // namespace vfe
