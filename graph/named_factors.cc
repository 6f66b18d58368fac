// FactorGraph::AddFactor by node type name: the arguments are checked against the type's
// declaration in the registry (nodes/registry.h), the type's factory builds the node, and the
// arguments become the node's slots.

#include <algorithm>
#include <cstdlib>

#include "graph/factor_graph_impl.h"
#include "vfe/core/format.h"
#include "vfe/nodes/registry.h"

namespace vfe {

ParameterValue::ParameterValue(const Variable& variable)
    : variable_kind_(VariableKind::kOne), variables_{variable} {}
ParameterValue::ParameterValue(std::vector<Variable> variables)
    : variable_kind_(VariableKind::kList), variables_(std::move(variables)) {}
ParameterValue::ParameterValue(double value) {
  constant_.kind = ConstantValue::Kind::kNumber;
  constant_.matrix = Matrix::Constant(1, 1, value);
}
ParameterValue::ParameterValue(int value) : ParameterValue(static_cast<double>(value)) {}
ParameterValue::ParameterValue(const Vector& value) {
  constant_.kind = ConstantValue::Kind::kVector;
  constant_.matrix = value;
}
ParameterValue::ParameterValue(const std::vector<double>& value)
    : ParameterValue(
          Vector(Eigen::Map<const Vector>(value.data(), static_cast<Eigen::Index>(value.size())))) {
}
ParameterValue::ParameterValue(const Matrix& value) {
  constant_.kind = ConstantValue::Kind::kMatrix;
  constant_.matrix = value;
}
ParameterValue::ParameterValue(const std::string& name) {
  constant_.kind = ConstantValue::Kind::kName;
  constant_.name = name;
}
ParameterValue::ParameterValue(const char* name) : ParameterValue(std::string(name)) {}
ParameterValue::ParameterValue(ConstantValue constant) : constant_(std::move(constant)) {}

ParameterValue ParameterValue::Rows(const Matrix& rows) {
  ConstantValue constant;
  constant.kind = ConstantValue::Kind::kRows;
  constant.matrix = rows;
  return ParameterValue(std::move(constant));
}

namespace {

/// The value of an optional parameter that was not given: its declared default.
ConstantValue DefaultValue(const Parameter& p) {
  ConstantValue value;
  if (p.constant == ConstantKind::kName) {
    value.kind = ConstantValue::Kind::kName;
    value.name = p.default_text;
  } else {
    value.kind = ConstantValue::Kind::kNumber;
    value.matrix = Matrix::Constant(1, 1, std::strtod(p.default_text.c_str(), nullptr));
  }
  return value;
}

}  // namespace

PlateId FactorGraph::AddFactor(const std::string& type_name,
                               const std::vector<NamedArgument>& arguments,
                               const std::string& name) {
  Impl& g = *impl_;
  const NodeType* type = FindNodeType(type_name);
  if (!type)
    throw GraphError("unknown node type '" + type_name + "'" +
                     DidYouMean(type_name, NodeTypeNames()) + "; expected one of " +
                     JoinQuoted(NodeTypeNames()));
  const std::string where =
      name.empty() ? "factor #" + std::to_string(g.plates.size()) + " (" + type_name + ")"
                   : "factor '" + name + "' (" + type_name + ")";
  if (g.finalized) throw GraphError(where + ": the graph is already finalised");
  std::vector<std::string> given;
  for (const NamedArgument& a : arguments) given.push_back(a.name);
  if (const std::optional<ArgumentNameProblem> problem = CheckArgumentNames(*type, given)) {
    if (problem->parameter.empty()) throw GraphError(where + ": " + problem->message);
    throw ParameterError(where, problem->parameter, "", problem->message);
  }
  auto value_of = [&](const Parameter& p) -> const ParameterValue* {
    for (const NamedArgument& a : arguments)
      if (a.name == p.name) return &a.value;
    return nullptr;
  };

  // The plate's factors: one per element of its longest element argument.
  size_t num_factors = 1;
  for (const Parameter& p : type->parameters) {
    const ParameterValue* value = value_of(p);
    if (!value || !value->is_variable()) continue;
    if (p.connection == Connection::kElement || p.connection == Connection::kList)
      for (const Variable& v : value->variables())
        num_factors = std::max(num_factors, g.Checked(v).size());
  }

  // Check each argument against its parameter, and describe it for the factory.
  std::vector<NodeArguments::Argument> checked;
  for (const Parameter& p : type->parameters) {
    const ParameterValue* value = value_of(p);
    NodeArguments::Argument argument;
    argument.parameter = &p;
    if (!value) {
      if (p.default_text.empty()) continue;
      argument.constant = DefaultValue(p);
      argument.count = 0;
      argument.defaulted = true;
      argument.description = argument.constant.Describe();
      checked.push_back(std::move(argument));
      continue;
    }
    if (!value->is_variable()) {
      const ConstantValue& constant = value->constant();
      CheckConstant(p, constant, where);
      if (constant.kind == ConstantValue::Kind::kRows &&
          static_cast<size_t>(constant.matrix.rows()) != num_factors)
        throw ParameterError(where, p.name, "",
                             "expected one row per factor (" + std::to_string(num_factors) +
                                 "), found " + std::to_string(constant.matrix.rows()));
      argument.constant = constant;
      argument.dim = static_cast<int>(constant.matrix.rows());
      argument.count = p.connection != Connection::kNone && p.constant_in_slot ? 1 : 0;
      argument.description = "a constant";
      checked.push_back(std::move(argument));
      continue;
    }
    if (p.connection == Connection::kNone ||
        (value->variable_kind() == ParameterValue::VariableKind::kList) !=
            (p.connection == Connection::kList))
      throw ParameterError(
          where, p.name, "",
          "expected " + AcceptedText(p) + ", found " +
              (value->variables().size() == 1 &&
                       value->variable_kind() == ParameterValue::VariableKind::kOne
                   ? "the variable '" + g.variables[g.Checked(value->variables()[0]).id()].name +
                         "'"
                   : "a list of variables"));
    if (value->variables().empty())
      throw ParameterError(where, p.name, "", "expected " + AcceptedText(p) + ", found none");
    for (const Variable& v : value->variables()) {
      const VariableInfo& info = g.variables[g.Checked(v).id()];
      if (info.observed ||
          std::find(p.families.begin(), p.families.end(), info.family) != p.families.end())
        continue;
      throw ParameterError(where, p.name, "",
                           "expected " + AcceptedText(p) + ", found '" + info.name + "' (" +
                               FamilyName(info.family) + ")");
    }
    const Variable& first = value->variables()[0];
    const VariableInfo& info = g.variables[first.id()];
    argument.is_variable = true;
    argument.dim = info.dim;
    argument.count = p.connection == Connection::kWhole  ? first.size()
                     : p.connection == Connection::kList ? value->variables().size()
                                                         : 1;
    argument.description = "'" + info.name + "' (" +
                           (info.observed ? std::string("observed") : FamilyName(info.family)) +
                           ")";
    checked.push_back(std::move(argument));
  }

  const NodeArguments node_arguments(*type, where, checked, num_factors);
  std::unique_ptr<Node> node;
  try {
    node = type->make(node_arguments);
  } catch (const ParameterError&) {
    throw;
  } catch (const ModelError& e) {
    throw ModelError(where + ": " + e.what());
  }

  // The slots: each connecting parameter's variables in order, or its constant.
  std::vector<Argument> slots;
  for (const Parameter& p : type->parameters) {
    if (p.connection == Connection::kNone) continue;
    const ParameterValue* value = value_of(p);
    if (!value) continue;
    if (!value->is_variable()) {
      if (!p.constant_in_slot) continue;
      const ConstantValue& c = value->constant();
      if (c.kind == ConstantValue::Kind::kNumber) {
        slots.emplace_back(c.matrix(0, 0));
      } else if (c.kind == ConstantValue::Kind::kVector) {
        slots.emplace_back(Vector(c.matrix.col(0)));
      } else {
        slots.emplace_back(c.matrix);
      }
      continue;
    }
    if (p.connection == Connection::kWhole) {
      const Variable& whole = value->variables()[0];
      for (size_t k = 0; k < whole.size(); ++k) slots.emplace_back(whole[k]);
      continue;
    }
    for (const Variable& v : value->variables()) slots.emplace_back(v);
  }
  return AddFactor(std::move(node), slots, name);
}

}  // namespace vfe
