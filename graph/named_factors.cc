// FactorGraph::AddFactor by node type name: the arguments are checked against the type's
// declaration in the registry (nodes/registry.h), the type's factory builds the node, and the
// arguments become the node's slots.

#include <algorithm>
#include <cstdlib>

#include "graph/factor_graph_impl.h"
#include "graph/factor_runs.h"
#include "nodes/gate.h"
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

ParameterValue ParameterValue::Gather(const Variable& array, std::vector<size_t> elements) {
  ParameterValue value(array);
  value.variable_kind_ = VariableKind::kGather;
  value.gathered_ = std::move(elements);
  return value;
}

ParameterValue ParameterValue::Rows(const Matrix& rows) {
  ConstantValue constant;
  constant.kind = ConstantValue::Kind::kRows;
  constant.matrix = rows;
  return ParameterValue(std::move(constant));
}

namespace {

/// "factor #3 (Gaussian)" or "factor 'likelihood' (Gaussian)": a factor in errors.
std::string FactorLabel(size_t plate, const std::string& type_name, const std::string& name) {
  return name.empty() ? "factor #" + std::to_string(plate) + " (" + type_name + ")"
                      : "factor '" + name + "' (" + type_name + ")";
}

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

namespace {

/// The value of `value` for factors [first, last) of `count` (a gather's run of elements with
/// `step` 0 or 1; a run of one element per factor, or rows of data per factor, sliced;
/// anything else as it is).
ParameterValue RunValue(const ParameterValue& value, size_t count, size_t first, size_t last,
                        long step) {
  if (value.variable_kind() == ParameterValue::VariableKind::kGather) {
    const Variable& array = value.variables()[0];
    const size_t e0 = value.gathered()[first];
    return step == 1 ? ParameterValue(array.Slice(e0, e0 + (last - first)))
                     : ParameterValue(array[e0]);
  }
  if (value.variable_kind() == ParameterValue::VariableKind::kOne) {
    const Variable& v = value.variables()[0];
    return v.size() == count && count > 1 ? ParameterValue(v.Slice(first, last)) : value;
  }
  if (value.variable_kind() == ParameterValue::VariableKind::kList) {
    std::vector<Variable> list;
    for (const Variable& v : value.variables())
      list.push_back(v.size() == count && count > 1 ? v.Slice(first, last) : v);
    return ParameterValue(std::move(list));
  }
  const ConstantValue& constant = value.constant();
  if (constant.kind != ConstantValue::Kind::kRows) return value;
  const auto per_factor = constant.matrix.rows() / static_cast<Eigen::Index>(count);
  ConstantValue slice = constant;
  slice.matrix = constant.matrix.middleRows(static_cast<Eigen::Index>(first) * per_factor,
                                            static_cast<Eigen::Index>(last - first) * per_factor);
  return ParameterValue(std::move(slice));
}

}  // namespace

PlateId FactorGraph::AddGathered(const std::string& type_name,
                                 const std::vector<NamedArgument>& arguments,
                                 const std::string& name) {
  Impl& g = *impl_;
  const std::string where = FactorLabel(g.plates.size(), type_name, name);
  // The factors are as many as the gathers' elements (which must agree).
  size_t count = 0;
  std::vector<const std::vector<size_t>*> lists;
  std::vector<size_t> list_of(arguments.size(), SIZE_MAX);
  for (size_t a = 0; a < arguments.size(); ++a) {
    const ParameterValue& value = arguments[a].value;
    if (value.variable_kind() != ParameterValue::VariableKind::kGather) continue;
    const std::vector<size_t>& elements = value.gathered();
    const Variable& array = g.Checked(value.variables()[0], "AddFactor");
    if (elements.empty())
      throw ParameterError(where, arguments[a].name, "",
                           "expected a gather of 1 or more elements, found none");
    if (count && elements.size() != count)
      throw ParameterError(where, arguments[a].name, "",
                           "expected " + std::to_string(count) +
                               " gathered elements (as the "
                               "other gathers), found " +
                               std::to_string(elements.size()));
    count = elements.size();
    for (size_t n = 0; n < elements.size(); ++n)
      if (elements[n] >= array.size())
        throw ParameterError(where, arguments[a].name, std::to_string(n),
                             "expected an element of '" + g.variables[array.id()].name +
                                 "' (0 to " + std::to_string(array.size() - 1) + "), found " +
                                 std::to_string(elements[n]));
    list_of[a] = lists.size();
    lists.push_back(&elements);
  }
  // One element per factor elsewhere is a gather of consecutive elements.
  std::vector<std::vector<size_t>> consecutive;
  consecutive.reserve(arguments.size());
  for (size_t a = 0; a < arguments.size(); ++a) {
    const ParameterValue& value = arguments[a].value;
    if (value.variable_kind() != ParameterValue::VariableKind::kOne) continue;
    const Variable& v = g.Checked(value.variables()[0], "AddFactor");
    if (v.size() == 1 || count == 1) continue;
    if (v.size() != count)
      throw ParameterError(where, arguments[a].name, "",
                           "expected 1 element or one per factor (" + std::to_string(count) +
                               ", the gathered elements), found " + std::to_string(v.size()));
    std::vector<size_t>& elements = consecutive.emplace_back(count);
    for (size_t n = 0; n < count; ++n) elements[n] = n;
    list_of[a] = lists.size();
    lists.push_back(&elements);
  }
  const size_t plates = g.plates.size(), variables = g.variables.size();
  try {
    for (const FactorRun& run : SplitIntoRuns(lists, count)) {
      std::vector<NamedArgument> plate;
      for (size_t a = 0; a < arguments.size(); ++a)
        plate.push_back(
            {arguments[a].name, RunValue(arguments[a].value, count, run.first, run.last,
                                         list_of[a] == SIZE_MAX ? 0 : run.steps[list_of[a]])});
      AddFactor(type_name, plate, name);
    }
  } catch (...) {
    // All or none: drop the plates of the runs already added, and their constants.
    g.plates.resize(plates);
    g.variables.resize(variables);
    throw;
  }
  return static_cast<PlateId>(plates);
}

PlateId FactorGraph::AddFactor(const std::string& type_name,
                               const std::vector<NamedArgument>& arguments,
                               const std::string& name) {
  for (const NamedArgument& a : arguments)
    if (a.value.variable_kind() == ParameterValue::VariableKind::kGather)
      return AddGathered(type_name, arguments, name);
  const std::string where = FactorLabel(impl_->plates.size(), type_name, name);
  if (impl_->finalized) throw GraphError(where + ": the graph is already finalised");
  std::vector<Argument> slots;
  std::unique_ptr<Node> node = BuildNode(type_name, arguments, where, slots);
  return AddFactor(std::move(node), slots, name);
}

std::unique_ptr<Node> FactorGraph::BuildNode(const std::string& type_name,
                                             const std::vector<NamedArgument>& arguments,
                                             const std::string& where,
                                             std::vector<Argument>& slots) const {
  const Impl& g = *impl_;
  const NodeType* type = FindNodeType(type_name);
  if (!type)
    throw GraphError("unknown node type '" + type_name + "'" +
                     DidYouMean(type_name, NodeTypeNames()) + "; expected one of " +
                     JoinQuoted(NodeTypeNames()));
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
    // Observed data learn their family (and with it their dimension) only at Finalize: until
    // then the size of one value is their dimension (a row of an observed array of vectors).
    argument.dim = info.observed ? std::max(info.dim, info.value_rows) : info.dim;
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
  slots.clear();
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
  return node;
}

namespace {

/// True when two slot arguments are the same elements of the same variable.
bool SameVariable(const Argument& a, const Argument& b) {
  return !a.is_constant() && !b.is_constant() && a.variable().id() == b.variable().id() &&
         a.variable().begin() == b.variable().begin() && a.variable().size() == b.variable().size();
}

}  // namespace

PlateId FactorGraph::AddGatedFactor(const std::string& type_name, const Variable& gate,
                                    const std::vector<std::vector<NamedArgument>>& components,
                                    const std::string& name) {
  Impl& g = *impl_;
  const std::string where = FactorLabel(g.plates.size(), "gated " + type_name, name);
  if (g.finalized) throw GraphError(where + ": the graph is already finalised");
  if (components.empty()) throw GraphError(where + ": expected 1 or more components, found none");
  g.Checked(gate, "AddGatedFactor");
  std::vector<std::unique_ptr<Node>> nodes;
  GateLayout layout;
  std::vector<Argument> slots;
  std::vector<int> users;  // by gate slot: the components that read it
  for (size_t k = 0; k < components.size(); ++k) {
    std::vector<Argument> inner;
    nodes.push_back(
        BuildNode(type_name, components[k], where + " component " + std::to_string(k), inner));
    const std::vector<std::string> inner_names = nodes.back()->slot_names();
    if (k == 0) {
      slots = {inner[0], Argument(gate)};
      layout.names = {inner_names[0], "gate"};
      users = {static_cast<int>(components.size()), static_cast<int>(components.size())};
    } else if (!SameVariable(inner[0], slots[0])) {
      throw ParameterError(where, inner_names[0], "",
                           "expected the same '" + inner_names[0] +
                               "' in every component (a gate chooses among densities of one "
                               "variable); component " +
                               std::to_string(k) + " differs from component 0");
    }
    std::vector<int> slot_of = {0};
    for (size_t j = 1; j < inner.size(); ++j) {
      int found = -1;
      for (size_t s = 2; s < slots.size() && found < 0; ++s)
        if (SameVariable(slots[s], inner[j])) found = static_cast<int>(s);
      if (found < 0) {
        found = static_cast<int>(slots.size());
        slots.push_back(inner[j]);
        layout.names.push_back(inner_names[j]);
        users.push_back(0);
      }
      ++users[static_cast<size_t>(found)];
      slot_of.push_back(found);
    }
    layout.slot_of.push_back(std::move(slot_of));
  }
  // A slot of one component only is named by its component: "p[1]".
  for (size_t k = 0; k < layout.slot_of.size(); ++k)
    for (size_t j = 1; j < layout.slot_of[k].size(); ++j) {
      const auto s = static_cast<size_t>(layout.slot_of[k][j]);
      if (users[s] == 1) layout.names[s] += "[" + std::to_string(k) + "]";
    }
  return AddFactor(MakeGateNode(std::move(nodes), std::move(layout), "Gate(" + type_name + ")"),
                   slots, name);
}

}  // namespace vfe
