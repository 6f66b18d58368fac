// The model loader (io/model_loader.h): factors. Every node type is read the same way, from
// its declaration in the registry: each key is a parameter, a string names a variable (or
// data, or a name from the parameter's choices), anything else is a constant; the factors of
// a loop become plates of consecutive elements, each added through FactorGraph::AddFactor by
// type name, whose ParameterError lands at the argument's pointer.

#include <algorithm>
#include <cmath>

#include "graph/factor_runs.h"
#include "io/model_loader.h"
#include "vfe/core/format.h"

namespace vfe {

LoopRange Loader::ReadRange(const std::string& name, const Json& range,
                            const std::string& pointer) const {
  if (!range.is_array() || range.size() != 2)
    Fail(pointer, "expected a range [begin, end], found " + Found(range));
  LoopRange loop{name, Integer(range[0], pointer + "/0", "an integer"),
                 Integer(range[1], pointer + "/1", "an integer")};
  if (loop.end < loop.begin)
    Fail(pointer, "expected begin <= end, found [" + std::to_string(loop.begin) + ", " +
                      std::to_string(loop.end) + "]");
  return loop;
}

std::vector<LoopRange> Loader::ReadLoops(const Json& spec, const std::string& pointer) const {
  std::vector<LoopRange> loops;
  if (!spec.contains("for")) return loops;
  const Json& loops_json = spec["for"];
  RequireObject(loops_json, pointer + "/for", "an object of ranges {\"i\": [begin, end]}");
  for (auto it = loops_json.begin(); it != loops_json.end(); ++it) {
    loops.push_back(ReadRange(it.key(), it.value(), pointer + "/for/" + it.key()));
  }
  return loops;
}

void Loader::AddFactor(const Json& spec, const std::string& pointer) {
  RequireObject(spec, pointer, "a factor object");
  const Json& node_json = Required(spec, "node", pointer);
  const std::vector<std::string> node_names = NodeTypeNames();
  const std::string type_name = String(node_json, pointer + "/node", "a node type");
  const NodeType* type = FindNodeType(type_name);
  if (!type)
    Fail(pointer + "/node", "unknown node type \"" + type_name + "\"" +
                                DidYouMean(type_name, node_names) + "; expected one of " +
                                JoinQuoted(node_names));
  std::vector<std::string> allowed = {"node", "name", "for", "gate", "components"};
  std::vector<std::string> given;
  for (const Parameter& p : type->parameters) {
    allowed.push_back(p.name);
    if (spec.contains(p.name)) given.push_back(p.name);
  }
  CheckKeys(spec, pointer, allowed);
  if (const std::optional<ArgumentNameProblem> problem = CheckArgumentNames(*type, given))
    Fail(problem->parameter.empty() ? pointer : pointer + "/" + problem->parameter,
         problem->message);
  std::string name;
  if (spec.contains("name")) name = String(spec["name"], pointer + "/name");

  const std::vector<LoopRange> loops = ReadLoops(spec, pointer);
  // The product of the lengths of the ranges (end − begin always fits in size_t).
  for (const LoopRange& l : loops)
    if (l.end == l.begin) return;  // an empty range adds no factor
  std::optional<size_t> product = 1;
  for (const LoopRange& l : loops)
    if (product)
      product = CheckedProduct(*product, static_cast<size_t>(l.end) - static_cast<size_t>(l.begin));
  if (!product || *product > kMaxNumbers - num_factors_)
    Fail(
        pointer + "/for",
        "expected at most " + std::to_string(kMaxNumbers) + " factors in the model, found " +
            CountText(product) +
            " in this loop" +
            (num_factors_ ? " and " + std::to_string(num_factors_) + " before it" : std::string()));
  const size_t count = *product;
  num_factors_ += count;

  // A gated factor: "gate" names the selector, "components": {"k": [0, K]} the component
  // loop, which the other arguments may use ("p": "theta[k]").
  const bool gated = spec.contains("gate");
  if (spec.contains("components") && !gated)
    Fail(pointer + "/components",
         "components need a selector: add \"gate\" (a Categorical variable, e.g. \"z[n]\")");
  LoopRange component{"", 0, 1};
  if (gated) component = ReadComponents(spec, pointer, loops);
  const size_t num_components = static_cast<size_t>(component.end - component.begin);

  // The arguments of each component (one "component" when the factor is not gated).
  std::vector<std::vector<FactorArgument>> arguments(num_components);
  for (size_t c = 0; c < num_components; ++c) {
    std::vector<LoopRange> component_loops = loops;
    if (gated)
      component_loops.push_back({component.name, component.begin + static_cast<long>(c),
                                 component.begin + static_cast<long>(c) + 1});
    for (const Parameter& p : type->parameters)
      if (spec.contains(p.name))
        arguments[c].push_back(
            ReadArgument(p, spec[p.name], pointer + "/" + p.name, component_loops, count));
  }
  static const Parameter gate_parameter = [] {
    Parameter p;
    p.name = "gate";
    p.families = {Family::kCategorical};
    return p;
  }();
  FactorArgument gate;
  if (gated) {
    gate.parameter = &gate_parameter;
    gate.pointer = pointer + "/gate";
    ReadVariable(gate, String(spec["gate"], gate.pointer, "a Categorical variable"), loops, count);
    if (gate.entry->observed ? !gate.entry->categorical
                             : gate.entry->family != Family::kCategorical)
      Fail(gate.pointer, "expected a Categorical variable (the selector), found " +
                             Describe(gate.variable_name, *gate.entry));
  }

  // The arguments that give each factor its own element, lists included.
  std::vector<const FactorArgument*> varying;
  bool any_per_factor = false;
  if (gated && gate.per_factor) varying.push_back(&gate);
  for (const std::vector<FactorArgument>& of_component : arguments)
    for (const FactorArgument& a : of_component) {
      if (a.per_factor) varying.push_back(&a);
      for (const FactorArgument& entry : a.list)
        if (entry.per_factor) varying.push_back(&entry);
      any_per_factor |= a.per_factor || a.per_factor_size > 0;
    }
  // A loop that no argument follows would repeat one factor: the factor raised to a power,
  // never what was meant.
  if (!loops.empty() && varying.empty() && !any_per_factor)
    Fail(pointer + "/for", "no argument uses the loop variables (" +
                               JoinQuoted([&] {
                                 std::vector<std::string> names;
                                 for (const LoopRange& l : loops) names.push_back(l.name);
                                 return names;
                               }()) +
                               "), so the loop would repeat one factor " + std::to_string(count) +
                               " times; index an argument by them or remove \"for\"");
  // Split the factors into runs in which every per-factor argument is either one element or
  // consecutive elements: each run becomes one plate.
  std::vector<const std::vector<size_t>*> element_lists;
  for (const FactorArgument* a : varying) element_lists.push_back(&a->elements);
  for (const FactorRun& run : SplitIntoRuns(element_lists, count)) {
    const size_t first = run.first, last = run.last;
    auto step_of = [&](const FactorArgument& a) {
      const auto it = std::find(varying.begin(), varying.end(), &a);
      return it == varying.end() ? 0L : run.steps[static_cast<size_t>(it - varying.begin())];
    };
    std::vector<std::vector<NamedArgument>> plates(num_components);
    for (size_t c = 0; c < num_components; ++c)
      for (const FactorArgument& a : arguments[c]) {
        if (a.parameter->connection == Connection::kList) {
          std::vector<Variable> list;
          for (const FactorArgument& entry : a.list)
            list.push_back(PlateValue(entry, first, last, step_of(entry)).variables()[0]);
          plates[c].push_back({a.parameter->name, ParameterValue(std::move(list))});
          continue;
        }
        plates[c].push_back({a.parameter->name, PlateValue(a, first, last, step_of(a))});
      }
    const PlateId id = static_cast<PlateId>(model_.graph.num_plates());
    plate_sources_.push_back({pointer, name});
    try {
      if (gated) {
        const Variable selector = PlateValue(gate, first, last, step_of(gate)).variables()[0];
        model_.graph.AddGatedFactor(type->name, selector, plates, name);
      } else {
        model_.graph.AddFactor(type->name, plates[0], name);
      }
    } catch (const ParameterError& e) {
      Fail(pointer + "/" + e.parameter() + (e.entry().empty() ? "" : "/" + e.entry()), e.detail());
    } catch (const Error& e) {
      throw ModelError(Located(id, e.what()));
    }
  }
}

LoopRange Loader::ReadComponents(const Json& spec, const std::string& pointer,
                                 const std::vector<LoopRange>& loops) const {
  const std::string p = pointer + "/components";
  if (!spec.contains("components"))
    Fail(pointer,
         "a gated factor needs \"components\": {\"k\": [0, K]} (the component loop, "
         "which its arguments use: \"theta[k]\")");
  const Json& value = spec["components"];
  if (!value.is_object() || value.size() != 1)
    Fail(p, "expected one loop {\"k\": [0, K]}, found " + Found(value));
  const std::string name = value.begin().key();
  const std::string lp = p + "/" + name;
  const LoopRange loop = ReadRange(name, value.begin().value(), lp);
  if (loop.end == loop.begin)
    Fail(lp, "expected at least one component, found [" + std::to_string(loop.begin) + ", " +
                 std::to_string(loop.end) + "]");
  if (loop.end - loop.begin > 1000)
    Fail(lp, "expected at most 1000 components, found " + std::to_string(loop.end - loop.begin));
  for (const LoopRange& l : loops)
    if (l.name == name) Fail(lp, "'" + name + "' is already a loop of \"for\"");
  return loop;
}

Loader::FactorArgument Loader::ReadArgument(const Parameter& parameter, const Json& value,
                                            const std::string& pointer,
                                            const std::vector<LoopRange>& loops, size_t count) {
  FactorArgument argument;
  argument.parameter = &parameter;
  argument.pointer = pointer;
  const std::string expected = AcceptedText(parameter);
  if (parameter.connection == Connection::kList) {
    if (!value.is_array() || value.empty()) Expected(value, pointer, expected);
    for (size_t j = 0; j < value.size(); ++j) {
      FactorArgument entry;
      entry.parameter = &parameter;
      entry.pointer = pointer + "/" + std::to_string(j);
      if (!value[j].is_string()) Expected(value[j], entry.pointer, "a variable name");
      ReadVariable(entry, value[j].get<std::string>(), loops, count);
      argument.list.push_back(std::move(entry));
    }
    return argument;
  }
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    if (parameter.constant == ConstantKind::kName && parameter.connection == Connection::kNone) {
      ConstantValue constant;
      constant.kind = ConstantValue::Kind::kName;
      constant.name = text;
      argument.constant = constant;
    } else if (parameter.connection != Connection::kNone) {
      ReadVariable(argument, text, loops, count);
    } else if (parameter.rows_per_factor) {
      ReadData(argument, text, loops, count);
    } else {
      Expected(value, pointer, expected);
    }
    return argument;
  }
  ConstantValue constant;
  switch (parameter.constant) {
    case ConstantKind::kNone:
    case ConstantKind::kName:
      Expected(value, pointer, expected);
    case ConstantKind::kTable: {
      std::vector<double> table;
      FlattenTable(value, pointer, table);
      constant.kind = ConstantValue::Kind::kVector;
      constant.matrix =
          Eigen::Map<const Vector>(table.data(), static_cast<Eigen::Index>(table.size()));
      break;
    }
    case ConstantKind::kTables:
      constant = ReadLogTables(value, pointer, count);
      argument.per_factor_size = static_cast<size_t>(constant.matrix.rows()) / count;
      break;
    default:
      constant = ReadConstant(value, pointer);
      break;
  }
  argument.constant = constant;
  return argument;
}

void Loader::ReadVariable(FactorArgument& argument, const std::string& text,
                          const std::vector<LoopRange>& loops, size_t count) {
  const Parameter& parameter = *argument.parameter;
  const std::string& pointer = argument.pointer;
  const Reference ref = ParseReference(*this, text, pointer, loops);
  auto it = entries_.find(ref.name);
  if (it == entries_.end())
    Fail(pointer, "unknown variable '" + ref.name + "'" + DidYouMean(ref.name, names_));
  VariableEntry& entry = it->second;
  argument.entry = &entry;
  argument.variable_name = ref.name;
  const std::vector<size_t>& shape = entry.shape;
  if (parameter.connection == Connection::kWhole) {
    if (!ref.indices.empty())
      Fail(pointer, "expected " + AcceptedText(parameter) + ", found \"" + text +
                        "\" (one element: name the whole variable, \"" + ref.name + "\")");
    GraphVariable(ref.name, entry);
    return;
  }
  if (entry.matrix_dirichlet && ref.indices.empty())
    Fail(pointer, "expected a variable or one element, found the MatrixDirichlet '" + ref.name +
                      "' (whole, it is only the 'matrix' of a Transition or the 'out' of its "
                      "prior; its column k, a Dirichlet variable, is \"" +
                      ref.name + "[k]\")");
  GraphVariable(ref.name, entry);
  if (ref.indices.empty()) return;
  if (ref.indices.size() != shape.size())
    Fail(pointer, "\"" + text + "\" has " + std::to_string(ref.indices.size()) + " indices, but '" +
                      ref.name + "' has shape " + ShapeText(shape) +
                      (shape.empty() ? " (a single element: write \"" + ref.name + "\")" : ""));
  argument.per_factor = true;
  const DataLookup data = IndexData(pointer, text);
  argument.elements = ReferencedElements(*this, ref, text, pointer, shape, loops, count, &data);
}

void Loader::ReadData(FactorArgument& argument, const std::string& text,
                      const std::vector<LoopRange>& loops, size_t count) {
  const std::string& pointer = argument.pointer;
  const Reference ref = ParseReference(*this, text, pointer, loops);
  auto it = entries_.find(ref.name);
  if (it == entries_.end())
    Fail(pointer, "unknown variable '" + ref.name + "'" + DidYouMean(ref.name, names_));
  VariableEntry& x = it->second;
  if (!x.observed)
    Fail(pointer, "expected " + AcceptedText(*argument.parameter) +
                      ", found the hidden variable "
                      "in \"" +
                      text + "\"");
  x.used = true;
  ConstantValue constant;
  if (ref.indices.empty()) {
    // One matrix for every factor: a single observed matrix, or the rows of the data.
    constant.kind = ConstantValue::Kind::kMatrix;
    constant.matrix = x.has_matrix_value ? x.matrix_value : x.rows;
    argument.constant = constant;
    return;
  }
  if (ref.indices.size() != x.shape.size())
    Fail(pointer, "\"" + text + "\" has " + std::to_string(ref.indices.size()) + " indices, but '" +
                      ref.name + "' has shape " + ShapeText(x.shape));
  const DataLookup data = IndexData(pointer, text);
  const std::vector<size_t> elements =
      ReferencedElements(*this, ref, text, pointer, x.shape, loops, count, &data);
  // Factor n reads the row X[element n] as its 1 x K matrix.
  constant.kind = ConstantValue::Kind::kRows;
  constant.matrix.resize(static_cast<Eigen::Index>(count), x.rows.cols());
  for (size_t n = 0; n < count; ++n)
    constant.matrix.row(static_cast<Eigen::Index>(n)) =
        x.rows.row(static_cast<Eigen::Index>(elements[n]));
  argument.constant = constant;
  argument.per_factor_size = 1;
}

DataLookup Loader::IndexData(const std::string& pointer, const std::string& text) {
  DataLookup data;
  data.shape = [this, pointer, text](const std::string& name) {
    const auto it = entries_.find(name);
    if (it == entries_.end())
      Fail(pointer, "\"" + text + "\" indexes by '" + name + "', which is not a variable" +
                        DidYouMean(name, names_));
    VariableEntry& entry = it->second;
    if (!entry.observed || entry.shape.empty() || entry.rows.cols() != 1)
      Fail(pointer, "\"" + text + "\" indexes by " + Describe(name, entry) +
                        "; an index must be an observed array of integers");
    entry.used = true;
    return entry.shape;
  };
  data.value = [this](const std::string& name, size_t element) {
    return entries_.at(name).rows(static_cast<Eigen::Index>(element), 0);
  };
  return data;
}

ParameterValue Loader::PlateValue(const FactorArgument& a, size_t first, size_t last, long step) {
  if (a.constant) {
    if (!a.per_factor_size) return ParameterValue(*a.constant);
    // The rows or tables of factors [first, last).
    ConstantValue slice = *a.constant;
    const Eigen::Index size = static_cast<Eigen::Index>(a.per_factor_size);
    const Eigen::Index begin = static_cast<Eigen::Index>(first) * size;
    const Eigen::Index rows = static_cast<Eigen::Index>(last - first) * size;
    slice.matrix = a.constant->matrix.middleRows(begin, rows);
    return ParameterValue(std::move(slice));
  }
  const Variable& v = a.entry->variable;
  if (!a.per_factor) return ParameterValue(v);
  const size_t e0 = a.elements[first];
  return step == 1 ? ParameterValue(v.Slice(e0, e0 + (last - first))) : ParameterValue(v[e0]);
}

ConstantValue Loader::ReadLogTables(const Json& value, const std::string& pointer, size_t count) {
  ConstantValue constant;
  constant.kind = ConstantValue::Kind::kVector;
  std::vector<double> out;
  if (value.is_object()) {
    CsvTable table = ReadCsvSpec(value, pointer);
    if (table.rows() != count)
      Fail(pointer + "/csv", "expected " + std::to_string(count) +
                                 " rows (one per factor of the loop), found " +
                                 std::to_string(table.rows()));
    out = table.values;
    document_->csv_values[pointer] = {table.cols, false, std::move(table.values)};
  } else {
    if (!value.is_array() || value.size() != count)
      Fail(pointer, "expected an array of " + std::to_string(count) +
                        " tables (one per factor of the loop) or {\"csv\": ...}, found " +
                        Found(value));
    size_t table_size = 0;
    for (size_t n = 0; n < count; ++n) {
      const std::string p = pointer + "/" + std::to_string(n);
      const size_t before = out.size();
      FlattenTable(value[n], p, out);
      if (n == 0) table_size = out.size();
      if (out.size() - before != table_size)
        Fail(p, "expected a table of " + std::to_string(table_size) +
                    " entries (the size of the first), found " +
                    std::to_string(out.size() - before));
    }
  }
  constant.matrix = Eigen::Map<const Vector>(out.data(), static_cast<Eigen::Index>(out.size()));
  return constant;
}

void Loader::FlattenTable(const Json& value, const std::string& pointer,
                          std::vector<double>& out) const {
  if (value.is_array()) {
    if (value.empty()) Fail(pointer, "expected a non-empty array, found an array of 0");
    const bool nested = value[0].is_array();
    for (size_t i = 0; i < value.size(); ++i) {
      if (value[i].is_array() != nested || (nested && value[i].size() != value[0].size()))
        Fail(pointer + "/" + std::to_string(i),
             "expected rows of equal length (a rectangular table), found " + Found(value[i]));
      FlattenTable(value[i], pointer + "/" + std::to_string(i), out);
    }
    return;
  }
  if (value == "-inf") {
    out.push_back(-INFINITY);
    return;
  }
  out.push_back(Number(value, pointer, "a number or \"-inf\""));
}

}  // namespace vfe
