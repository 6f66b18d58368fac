#include "bindings/python/built_document.h"

#include <algorithm>
#include <cmath>

#include "vfe/core/error.h"
#include "vfe/nodes/registry.h"

namespace vfe {
namespace python {
namespace {

using Json = BuiltDocument::Json;

size_t Elements(const std::vector<size_t>& shape) {
  size_t n = 1;
  for (size_t s : shape) n *= s;
  return n;
}

/// The connection of `parameter` of node type `type` (kElement when unknown: AddFactor has
/// accepted the arguments by then, so this does not happen).
Connection ConnectionOf(const std::string& type, const std::string& parameter) {
  const NodeType* t = FindNodeType(type);
  const Parameter* p = t ? t->Find(parameter) : nullptr;
  return p ? p->connection : Connection::kElement;
}

bool SameValue(const ParameterValue& a, const ParameterValue& b) {
  if (a.variable_kind() != b.variable_kind()) return false;
  if (a.is_variable()) {
    if (a.variables().size() != b.variables().size() || a.gathered() != b.gathered())
      return false;
    for (size_t i = 0; i < a.variables().size(); ++i) {
      const Variable &x = a.variables()[i], &y = b.variables()[i];
      if (x.id() != y.id() || x.begin() != y.begin() || x.size() != y.size()) return false;
    }
    return true;
  }
  const ConstantValue &x = a.constant(), &y = b.constant();
  return x.kind == y.kind && x.name == y.name && x.matrix.rows() == y.matrix.rows() &&
         x.matrix.cols() == y.matrix.cols() && x.matrix == y.matrix;
}

}  // namespace

BuiltDocument::Json BuiltDocument::RowsJson(const Matrix& m) {
  Json rows = Json::array();
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    if (m.cols() == 1) {
      rows.push_back(m(i, 0));
      continue;
    }
    Json row = Json::array();
    for (Eigen::Index j = 0; j < m.cols(); ++j) row.push_back(m(i, j));
    rows.push_back(std::move(row));
  }
  return rows;
}

void BuiltDocument::AddHidden(const Variable& v, const std::string& name, Family family,
                              int dim, const std::vector<size_t>& shape) {
  Json entry = {{"name", name}, {"family", FamilyName(family)}};
  if (dim != 1) entry["dim"] = dim;
  if (!shape.empty()) entry["shape"] = shape;
  variables_.push_back(std::move(entry));
  by_id_.resize(std::max<size_t>(by_id_.size(), v.id() + 1));
  by_id_[v.id()] = Written{name, shape};
  names_.insert(name);
}

void BuiltDocument::AddObserved(const Variable& v, const std::string& name, Json values,
                                const std::vector<size_t>& shape, int dim,
                                std::optional<int> categories) {
  Json entry = {{"name", name}};
  if (categories) {
    entry["family"] = "Categorical";
    entry["dim"] = *categories;
  } else if (dim != 1) {
    entry["dim"] = dim;
  }
  if (!shape.empty()) entry["shape"] = shape;
  entry["observed"] = std::move(values);
  variables_.push_back(std::move(entry));
  by_id_.resize(std::max<size_t>(by_id_.size(), v.id() + 1));
  by_id_[v.id()] = Written{name, shape};
  names_.insert(name);
}

std::string BuiltDocument::FreshName(const std::string& stem) {
  std::string name = stem;
  for (int k = 1; names_.count(name); ++k) name = stem + std::to_string(k);
  names_.insert(name);
  return name;
}

void BuiltDocument::Unwritable(const std::string& what) {
  if (unwritable_.empty()) unwritable_ = what;
}

std::optional<std::string> BuiltDocument::Expression(const Variable& handle, const Loops& loops,
                                                     bool whole) const {
  if (handle.id() >= by_id_.size() || !by_id_[handle.id()]) return std::nullopt;
  const Written& w = *by_id_[handle.id()];
  const size_t total = Elements(w.shape), b = handle.begin(), size = handle.size();
  if (whole) {
    if (b == 0 && size == total) return w.name;
    return std::nullopt;
  }
  auto plus = [](const std::string& loop, size_t offset) {
    return offset == 0 ? loop : loop + "+" + std::to_string(offset);
  };
  if (size == 1) {
    if (w.shape.empty()) return w.name;
    if (w.shape.size() == 1) return w.name + "[" + std::to_string(b) + "]";
    return w.name + "[" + std::to_string(b / w.shape[1]) + "][" + std::to_string(b % w.shape[1]) +
           "]";
  }
  if (size != loops.count) return std::nullopt;
  if (!loops.grid.empty()) {
    if (b == 0 && w.shape == loops.grid) return w.name + "[i][j]";
    return std::nullopt;
  }
  if (w.shape.size() == 1) return w.name + "[" + plus("n", b) + "]";
  if (w.shape.size() == 2 && b % w.shape[1] + size <= w.shape[1])
    return w.name + "[" + std::to_string(b / w.shape[1]) + "][" + plus("n", b % w.shape[1]) + "]";
  return std::nullopt;
}

std::optional<Json> BuiltDocument::ArgumentJson(const std::string& type,
                                                const NamedArgument& argument,
                                                const Loops& loops) {
  const ParameterValue& value = argument.value;
  const std::string loop = loops.grid.empty() ? "n" : "";
  switch (value.variable_kind()) {
    case ParameterValue::VariableKind::kOne: {
      const bool whole = ConnectionOf(type, argument.name) == Connection::kWhole;
      std::optional<std::string> e = Expression(value.variables()[0], loops, whole);
      if (e) return Json(*e);
      return std::nullopt;
    }
    case ParameterValue::VariableKind::kList: {
      Json list = Json::array();
      for (const Variable& v : value.variables()) {
        std::optional<std::string> e = Expression(v, loops, false);
        if (!e) return std::nullopt;
        list.push_back(*e);
      }
      return list;
    }
    case ParameterValue::VariableKind::kGather: {
      const Variable& array = value.variables()[0];
      if (loop.empty() || array.id() >= by_id_.size() || !by_id_[array.id()]) return std::nullopt;
      const Written& w = *by_id_[array.id()];
      if (w.shape.size() != 1 || array.begin() != 0 || array.size() != w.shape[0])
        return std::nullopt;
      const std::string index = FreshName(w.name + "_index");
      data_.push_back({{"name", index},
                       {"shape", {value.gathered().size()}},
                       {"observed", value.gathered()}});
      return Json(w.name + "[" + index + "[n]]");
    }
    case ParameterValue::VariableKind::kNone:
      break;
  }
  const ConstantValue& c = value.constant();
  switch (c.kind) {
    case ConstantValue::Kind::kNumber:
      return Json(c.matrix(0, 0));
    case ConstantValue::Kind::kVector: {
      // A log-table's −∞ is written "-inf"; one table per factor as an array of tables.
      const NodeType* t = FindNodeType(type);
      const Parameter* p = t ? t->Find(argument.name) : nullptr;
      const bool tables = p && p->constant == ConstantKind::kTables;
      auto number = [](double x) { return x == -INFINITY ? Json("-inf") : Json(x); };
      Json v = Json::array();
      if (tables) {
        const Eigen::Index size = c.matrix.rows() / static_cast<Eigen::Index>(loops.count);
        for (size_t n = 0; n < loops.count; ++n) {
          Json table = Json::array();
          for (Eigen::Index i = 0; i < size; ++i)
            table.push_back(number(c.matrix(static_cast<Eigen::Index>(n) * size + i, 0)));
          v.push_back(std::move(table));
        }
        return v;
      }
      for (Eigen::Index i = 0; i < c.matrix.rows(); ++i) v.push_back(number(c.matrix(i, 0)));
      return v;
    }
    case ConstantValue::Kind::kMatrix: {
      Json rows = Json::array();  // a matrix of one column stays a matrix
      for (Eigen::Index i = 0; i < c.matrix.rows(); ++i) {
        Json row = Json::array();
        for (Eigen::Index j = 0; j < c.matrix.cols(); ++j) row.push_back(c.matrix(i, j));
        rows.push_back(std::move(row));
      }
      return rows;
    }
    case ConstantValue::Kind::kName:
      return Json(c.name);
    case ConstantValue::Kind::kRows: {
      if (loop.empty()) return std::nullopt;
      const std::string name = FreshName(argument.name + "_rows");
      Json rows = RowsJson(c.matrix);
      Json entry = {{"name", name}, {"shape", {static_cast<size_t>(c.matrix.rows())}}};
      if (c.matrix.cols() > 1) entry["dim"] = c.matrix.cols();
      entry["observed"] = std::move(rows);
      data_.push_back(std::move(entry));
      return Json(loops.count == 1 ? name + "[0]" : name + "[n]");
    }
  }
  return std::nullopt;
}

namespace {

/// The factors one call adds: the longest per-factor argument (one element per factor, a
/// gather, rows of data); a whole 2-D array per factor loops over both of its axes.
template <class Shape>
void CountFactors(const std::string& type, const std::vector<NamedArgument>& arguments,
                  size_t& count, std::vector<size_t>& grid, const Shape& shape_of) {
  for (const NamedArgument& a : arguments) {
    const ParameterValue& v = a.value;
    if (v.variable_kind() == ParameterValue::VariableKind::kGather) {
      count = std::max(count, v.gathered().size());
    } else if (v.variable_kind() == ParameterValue::VariableKind::kList ||
               (v.variable_kind() == ParameterValue::VariableKind::kOne &&
                ConnectionOf(type, a.name) != Connection::kWhole)) {
      for (const Variable& x : v.variables()) count = std::max(count, x.size());
    } else if (!v.is_variable() && v.constant().kind == ConstantValue::Kind::kRows) {
      count = std::max(count, static_cast<size_t>(v.constant().matrix.rows()));
    }
  }
  for (const NamedArgument& a : arguments)
    if (a.value.variable_kind() == ParameterValue::VariableKind::kOne ||
        a.value.variable_kind() == ParameterValue::VariableKind::kList)
      for (const Variable& x : a.value.variables()) {
        const std::vector<size_t>* shape = shape_of(x);
        if (count > 1 && x.size() == count && x.begin() == 0 && shape && shape->size() == 2 &&
            Elements(*shape) == count && (*shape)[0] > 1)
          grid = *shape;
      }
}

}  // namespace

void BuiltDocument::AddFactor(const std::string& type,
                              const std::string& name, const std::vector<NamedArgument>& arguments) {
  const std::string what = "factor " + std::to_string(factors_.size()) + " ('" + type + "')";
  Loops loops;
  CountFactors(type, arguments, loops.count, loops.grid, [&](const Variable& x) {
    return x.id() < by_id_.size() && by_id_[x.id()] ? &by_id_[x.id()]->shape : nullptr;
  });
  Json factor = {{"node", type}};
  if (!name.empty()) factor["name"] = name;
  if (!loops.grid.empty()) {
    factor["for"] = {{"i", {0, loops.grid[0]}}, {"j", {0, loops.grid[1]}}};
  } else if (loops.count > 1) {
    factor["for"] = {{"n", {0, loops.count}}};
  }
  for (const NamedArgument& a : arguments) {
    std::optional<Json> j = ArgumentJson(type, a, loops);
    if (!j) {
      Unwritable(what + ": argument '" + a.name + "'");
      return;
    }
    factor[a.name] = std::move(*j);
  }
  factors_.push_back(std::move(factor));
}

void BuiltDocument::AddGatedFactor(const std::string& type,
                                   const Variable& gate,
                                   const std::vector<std::vector<NamedArgument>>& components,
                                   const std::string& name) {
  const std::string what = "gated factor " + std::to_string(factors_.size()) + " ('" + type + "')";
  Loops loops;
  auto shape_of = [&](const Variable& x) {
    return x.id() < by_id_.size() && by_id_[x.id()] ? &by_id_[x.id()]->shape : nullptr;
  };
  for (const auto& component : components)
    CountFactors(type, component, loops.count, loops.grid, shape_of);
  loops.count = std::max(loops.count, gate.size());
  if (!loops.grid.empty()) {
    Unwritable(what + ": a whole 2-D array per factor");
    return;
  }
  Json factor = {{"node", type}};
  if (!name.empty()) factor["name"] = name;
  if (loops.count > 1) factor["for"] = {{"n", {0, loops.count}}};
  const std::optional<std::string> g = Expression(gate, loops, false);
  if (!g) {
    Unwritable(what + ": the gate");
    return;
  }
  factor["gate"] = *g;
  factor["components"] = {{"k", {0, components.size()}}};
  // Each argument: the same in every component (written once), or element k (+ an offset)
  // of a 1-D array in component k.
  for (const NamedArgument& first : components[0]) {
    std::vector<const NamedArgument*> by_component;
    for (const auto& component : components) {
      const auto it = std::find_if(component.begin(), component.end(),
                                   [&](const NamedArgument& a) { return a.name == first.name; });
      by_component.push_back(it == component.end() ? nullptr : &*it);
    }
    const bool same = std::all_of(by_component.begin(), by_component.end(), [&](auto* a) {
      return a && SameValue(a->value, first.value);
    });
    if (same) {
      std::optional<Json> j = ArgumentJson(type, first, loops);
      if (!j) {
        Unwritable(what + ": argument '" + first.name + "'");
        return;
      }
      factor[first.name] = std::move(*j);
      continue;
    }
    // Element k + b of one 1-D array, shared by the factors.
    bool stepping = true;
    for (size_t k = 0; k < by_component.size() && stepping; ++k) {
      const NamedArgument* a = by_component[k];
      stepping = a && a->value.variable_kind() == ParameterValue::VariableKind::kOne &&
                 a->value.variables()[0].size() == 1 &&
                 a->value.variables()[0].id() == first.value.variables()[0].id() &&
                 a->value.variables()[0].begin() == first.value.variables()[0].begin() + k;
    }
    const Variable* x = stepping ? &first.value.variables()[0] : nullptr;
    const Written* w = x && x->id() < by_id_.size() && by_id_[x->id()] ? &*by_id_[x->id()]
                                                                       : nullptr;
    if (!w || w->shape.size() != 1) {
      Unwritable(what + ": argument '" + first.name + "' differs between components other than "
                 "as element k of one array");
      return;
    }
    factor[first.name] =
        w->name + "[k" + (x->begin() ? "+" + std::to_string(x->begin()) : std::string()) + "]";
  }
  factors_.push_back(std::move(factor));
}

void BuiltDocument::AddCluster(const FactorGraph& graph, const Variable& v,
                               const std::string& solver) {
  factorisation_.push_back(
      {{"variables", {graph.variable_name(v.id())}}, {"solver", solver}});
}

std::string BuiltDocument::Text(int indent) const {
  if (!unwritable_.empty())
    throw ModelError("to_json: " + unwritable_ +
                     " cannot be written as a vfe-model/1 document (its index expressions step "
                     "one element per factor within one row of an array)");
  Json doc = {{"format", "vfe-model/1"}};
  Json variables = variables_;
  for (const Json& d : data_) variables.push_back(d);
  doc["variables"] = std::move(variables);
  doc["factors"] = factors_;
  if (!factorisation_.empty()) doc["factorisation"] = factorisation_;
  return doc.dump(indent);
}

}  // namespace python
}  // namespace vfe
