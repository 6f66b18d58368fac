#include "vfe/graph/factor_graph.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "graph/factor_graph_impl.h"
#include "graph/large_buffer.h"
#include "vfe/core/format.h"
#include "vfe/distributions/dispatch.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

// ---- Variable -------------------------------------------------------------------------------

Variable Variable::operator[](size_t i) const {
  if (i >= size_)
    throw GraphError("element " + std::to_string(i) + " is out of range: the variable has " +
                     std::to_string(size_) + " elements");
  return Variable(id_, begin_ + i, 1);
}

Variable Variable::Slice(size_t begin, size_t end) const {
  if (begin > end || end > size_)
    throw GraphError("slice [" + std::to_string(begin) + ", " + std::to_string(end) +
                     ") is out of range: the variable has " + std::to_string(size_) +
                     " elements");
  return Variable(id_, begin_ + begin, end - begin);
}

// ---- Building ------------------------------------------------------------------------------

FactorGraph::FactorGraph() : impl_(std::make_unique<Impl>()) {}
FactorGraph::~FactorGraph() = default;
FactorGraph::FactorGraph(FactorGraph&&) noexcept = default;
FactorGraph& FactorGraph::operator=(FactorGraph&&) noexcept = default;

namespace {

void CheckDim(Family family, int dim, const std::string& name) {
  if (dim < 1)
    throw GraphError("variable '" + name + "': dimension must be >= 1, got " +
                     std::to_string(dim));
  if (!HasDimension(family) && dim != 1)
    throw GraphError("variable '" + name + "': a " + FamilyName(family) +
                     " variable is scalar, got dimension " + std::to_string(dim));
}

}  // namespace

uint32_t FactorGraph::Impl::Declare(VariableInfo info) {
  if (finalized) throw GraphError("variable '" + info.name + "': the graph is already finalised");
  if (info.name.empty()) throw GraphError("a variable needs a non-empty name");
  if (!info.constant && by_name.count(info.name))
    throw GraphError("variable '" + info.name + "' is declared twice");
  const uint32_t id = static_cast<uint32_t>(variables.size());
  if (!info.constant) by_name.emplace(info.name, id);
  variables.push_back(std::move(info));
  return id;
}

Variable FactorGraph::AddVariable(const std::string& name, Family family, int dim) {
  return AddVariableArray(name, family, {}, dim);
}

Variable FactorGraph::AddVariableArray(const std::string& name, Family family,
                                       const std::vector<size_t>& shape, int dim) {
  CheckDim(family, dim, name);
  VariableInfo info;
  info.name = name;
  info.family = family;
  info.family_known = true;
  info.dim = dim;
  info.shape = shape;
  info.size = 1;
  for (size_t extent : shape) info.size *= extent;
  if (info.size == 0) throw GraphError("variable '" + name + "' has no elements");
  const uint32_t id = impl_->Declare(std::move(info));
  return Variable(id, 0, impl_->variables[id].size);
}

Variable FactorGraph::AddObserved(const std::string& name, double value) {
  return AddObserved(name, std::vector<double>{value}).Slice(0, 1);
}

Variable FactorGraph::AddObserved(const std::string& name, const std::vector<double>& values) {
  VariableInfo info;
  info.name = name;
  info.observed = true;
  info.size = values.size();
  info.values = values;
  info.scalar_values = true;
  if (values.size() != 1) info.shape = {values.size()};
  if (info.size == 0) throw GraphError("observed variable '" + name + "' has no values");
  const uint32_t id = impl_->Declare(std::move(info));
  return Variable(id, 0, impl_->variables[id].size);
}

Variable FactorGraph::AddObserved(const std::string& name, const Matrix& value) {
  VariableInfo info;
  info.name = name;
  info.observed = true;
  info.size = 1;
  info.value_rows = static_cast<int>(value.rows());
  info.value_cols = static_cast<int>(value.cols());
  info.values.assign(value.data(), value.data() + value.size());
  if (value.size() == 0) throw GraphError("observed variable '" + name + "' is empty");
  const uint32_t id = impl_->Declare(std::move(info));
  return Variable(id, 0, 1);
}

Variable FactorGraph::AddObservedCategorical(const std::string& name,
                                             const std::vector<int>& outcomes,
                                             int num_categories) {
  if (num_categories < 1)
    throw GraphError("observed variable '" + name + "': the number of categories must be >= 1, got " +
                     std::to_string(num_categories));
  if (outcomes.empty()) throw GraphError("observed variable '" + name + "' has no values");
  VariableInfo info;
  info.name = name;
  info.observed = true;
  info.family = Family::kCategorical;
  info.family_known = true;
  info.dim = num_categories;
  info.size = outcomes.size();
  info.values.assign(outcomes.begin(), outcomes.end());
  info.scalar_values = true;
  if (outcomes.size() != 1) info.shape = {outcomes.size()};
  const uint32_t id = impl_->Declare(std::move(info));
  return Variable(id, 0, impl_->variables[id].size);
}

Variable FactorGraph::AddObservedRows(const std::string& name, const Matrix& rows) {
  VariableInfo info;
  info.name = name;
  info.observed = true;
  info.size = rows.rows();
  info.shape = {static_cast<size_t>(rows.rows())};
  info.value_rows = static_cast<int>(rows.cols());
  info.value_cols = 1;
  if (rows.size() == 0) throw GraphError("observed variable '" + name + "' is empty");
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = rows;
  info.values.assign(row_major.data(), row_major.data() + row_major.size());
  const uint32_t id = impl_->Declare(std::move(info));
  return Variable(id, 0, impl_->variables[id].size);
}

std::string FactorGraph::Impl::PlateLabel(PlateId p) const {
  const Plate& plate = plates[p];
  if (!plate.name.empty()) return "factor '" + plate.name + "' (" + plate.node->type() + ")";
  return "factor #" + std::to_string(p) + " (" + plate.node->type() + ")";
}

PlateId FactorGraph::AddFactor(std::unique_ptr<Node> node, const std::vector<Argument>& args,
                               const std::string& name) {
  Impl& g = *impl_;
  if (!node) throw GraphError("AddFactor: no node given");
  const PlateId id = static_cast<PlateId>(g.plates.size());
  Plate plate;
  plate.name = name;
  plate.node = std::move(node);
  g.plates.push_back(std::move(plate));
  // Drop the half-built plate if anything below throws, so the graph stays consistent.
  struct Rollback {
    Impl& g;
    size_t plates, variables;
    bool done = false;
    ~Rollback() {
      if (done) return;
      g.plates.resize(plates);
      g.variables.resize(variables);
    }
  } rollback{g, id, g.variables.size()};

  if (g.finalized) throw GraphError(g.PlateLabel(id) + ": the graph is already finalised");
  const std::vector<std::string> slots = g.plates[id].node->slot_names();
  if (args.size() != slots.size())
    throw GraphError(g.PlateLabel(id) + ": expected " + std::to_string(slots.size()) +
                     " arguments, got " + std::to_string(args.size()));
  size_t size = 1;
  for (const Argument& arg : args) {
    if (!arg.is_constant()) size = std::max(size, arg.variable().size());
  }
  std::vector<Binding> bindings;
  for (size_t s = 0; s < args.size(); ++s) {
    const Argument& arg = args[s];
    Binding binding;
    if (arg.is_constant()) {
      VariableInfo info;
      info.name = g.PlateLabel(id) + ": constant " + slots[s];
      info.observed = true;
      info.constant = true;
      info.size = 1;
      const Matrix& value = arg.constant().value();
      info.scalar_values = arg.constant().is_scalar();
      info.value_rows = static_cast<int>(value.rows());
      info.value_cols = static_cast<int>(value.cols());
      info.values.assign(value.data(), value.data() + value.size());
      binding.variable = g.Declare(std::move(info));
      binding.begin = 0;
      binding.shared = true;
    } else {
      const Variable& v = arg.variable();
      if (!v.valid() || v.id() >= rollback.variables)
        throw GraphError(g.PlateLabel(id) + ": argument '" + slots[s] +
                         "' is not a variable of this graph");
      if (v.begin() + v.size() > g.variables[v.id()].size)
        throw GraphError(g.PlateLabel(id) + ": argument '" + slots[s] +
                         "' is not a variable of this graph: " + g.OutOfRange(v));
      if (v.size() != 1 && v.size() != size)
        throw GraphError(g.PlateLabel(id) + ": argument '" + slots[s] + "' ('" +
                         g.variables[v.id()].name + "') has " + std::to_string(v.size()) +
                         " elements, but the plate has " + std::to_string(size) +
                         " factors (arguments must have 1 element or one per factor)");
      binding.variable = v.id();
      binding.begin = v.begin();
      binding.shared = v.size() == 1;
    }
    bindings.push_back(binding);
  }
  g.plates[id].size = size;
  g.plates[id].bindings = std::move(bindings);
  rollback.done = true;
  return id;
}

PlateId FactorGraph::AddGaussian(Argument out, Argument mean, Argument precision,
                                 const std::string& name) {
  return AddFactor(MakeGaussianNode(), {out, mean, precision}, name);
}

PlateId FactorGraph::AddMvGaussian(Argument out, Argument mean, Argument precision,
                                   const std::string& name) {
  return AddFactor(MakeMvGaussianNode(), {out, mean, precision}, name);
}

PlateId FactorGraph::AddLinearGaussian(Argument out, Argument in, const Matrix& matrix,
                                       Argument precision, const std::string& name) {
  return AddFactor(MakeLinearGaussianNode(matrix), {out, in, precision}, name);
}

PlateId FactorGraph::AddSum(Argument out, Argument in1, Argument in2, const std::string& name) {
  return AddFactor(MakeSumNode(), {out, in1, in2}, name);
}

PlateId FactorGraph::AddMatrixProduct(Argument out, const Matrix& matrix, Argument in,
                                      const std::string& name) {
  return AddFactor(MakeMatrixProductNode(matrix), {out, in}, name);
}

PlateId FactorGraph::AddLinearRegression(Argument out, Argument weights, const Matrix& design,
                                         Argument precision, const std::string& name) {
  return AddFactor(MakeLinearGaussianRowsNode(design), {out, weights, precision}, name);
}

PlateId FactorGraph::AddGamma(Argument out, double shape, Argument rate,
                              const std::string& name) {
  return AddFactor(MakeGammaNode(shape), {out, rate}, name);
}

PlateId FactorGraph::AddWishart(Argument out, double dof, const Matrix& scale,
                                const std::string& name) {
  return AddFactor(MakeWishartNode(dof, scale), {out}, name);
}

PlateId FactorGraph::AddBeta(Argument out, double a, double b, const std::string& name) {
  return AddFactor(MakeBetaNode(a, b), {out}, name);
}

PlateId FactorGraph::AddDirichlet(Argument out, const Vector& alpha, const std::string& name) {
  return AddFactor(MakeDirichletNode(alpha), {out}, name);
}

PlateId FactorGraph::AddBernoulli(Argument out, Argument p, const std::string& name) {
  return AddFactor(MakeBernoulliNode(), {out, p}, name);
}

PlateId FactorGraph::AddCategorical(Argument out, Argument p, const std::string& name) {
  return AddFactor(MakeCategoricalNode(), {out, p}, name);
}

PlateId FactorGraph::AddGaussianMixture(Argument out, Argument component, const Variable& means,
                                        const Variable& precisions, const std::string& name) {
  if (means.size() != precisions.size())
    throw GraphError("factor '" + name + "' (GaussianMixture): " + std::to_string(means.size()) +
                     " means but " + std::to_string(precisions.size()) + " precisions");
  std::vector<Argument> args = {out, component};
  for (size_t k = 0; k < means.size(); ++k) args.push_back(means[k]);
  for (size_t k = 0; k < precisions.size(); ++k) args.push_back(precisions[k]);
  return AddFactor(MakeGaussianMixtureNode(static_cast<int>(means.size())), args, name);
}

PlateId FactorGraph::AddTransition(Argument out, Argument in, const Matrix& matrix,
                                   const std::string& name) {
  std::unique_ptr<Node> node;
  try {
    node = MakeTransitionNode(matrix);
  } catch (const ModelError& e) {
    throw ModelError("factor '" + name + "' (Transition): " + e.what());
  }
  return AddFactor(std::move(node), {out, in}, name);
}

PlateId FactorGraph::AddTransition(Argument out, Argument in, const Variable& matrix,
                                   const std::string& name) {
  std::vector<Argument> args = {out, in};
  for (size_t k = 0; k < matrix.size(); ++k) args.push_back(matrix[k]);
  return AddFactor(MakeLearnedTransitionNode(static_cast<int>(matrix.size())), args, name);
}

PlateId FactorGraph::AddMatrixDirichlet(const Variable& matrix, const Matrix& alpha,
                                        const std::string& name) {
  const std::string label = "MatrixDirichlet prior of '" +
                            variable_name(impl_->Checked(matrix).id()) + "'";
  if (static_cast<size_t>(alpha.cols()) != matrix.size())
    throw GraphError(label + ": alpha has " + std::to_string(alpha.cols()) +
                     " columns, but the matrix variable has " + std::to_string(matrix.size()) +
                     " (one Dirichlet element per column)");
  try {
    MatrixDirichlet check(alpha);  // every entry > 0, named
  } catch (const ModelError& e) {
    throw ModelError(label + ": " + e.what());
  }
  std::vector<Argument> columns;
  for (size_t k = 0; k < matrix.size(); ++k) columns.push_back(matrix[k]);
  return AddFactor(MakeMatrixDirichletNode(alpha), columns, name);
}

PlateId FactorGraph::AddPotential(const std::vector<Argument>& variables,
                                  const std::vector<double>& log_table, const std::string& name) {
  return AddFactor(MakePotentialNode(static_cast<int>(variables.size()), log_table), variables,
                   name);
}

// ---- Finalize -------------------------------------------------------------------------------

PointMass FactorGraph::Impl::ObservedValue(const VariableInfo& info, size_t index) const {
  const size_t len = static_cast<size_t>(info.value_rows) * info.value_cols;
  const double* data = info.values.data() + index * len;
  if (info.scalar_values) return PointMass(data[0]);
  return PointMass(Matrix(ConstMatrixMap(data, info.value_rows, info.value_cols)));
}

std::string FactorGraph::Impl::ElementName(uint32_t id, size_t index) const {
  const VariableInfo& info = variables[id];
  if (info.shape.empty()) return info.name;
  std::string suffix;
  size_t rest = index;
  for (size_t d = info.shape.size(); d-- > 0;) {
    suffix = "[" + std::to_string(rest % info.shape[d]) + "]" + suffix;
    rest /= info.shape[d];
  }
  return info.name + suffix;
}

std::string FactorGraph::Impl::Describe(uint32_t id) const {
  const VariableInfo& info = variables[id];
  if (info.constant) return info.name;  // "factor 'f' (Gaussian): constant precision"
  return std::string(info.observed ? "observed variable '" : "variable '") + info.name + "'";
}

void FactorGraph::Impl::InferObservedFamilies() {
  for (PlateId p = 0; p < plates.size(); ++p) {
    const Plate& plate = plates[p];
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      VariableInfo& info = variables[plate.bindings[s].variable];
      if (!info.observed) continue;
      const PointMass sample = ObservedValue(info, plate.bindings[s].begin);
      const Family family = plate.node->ObservedFamily(static_cast<int>(s), sample);
      // An outcome does not tell how many outcomes there are: categorical data are declared
      // with their number of categories (AddObservedCategorical).
      if (family == Family::kCategorical &&
          !(info.family_known && info.family == Family::kCategorical))
        throw GraphError(PlateLabel(p) + ": " + Describe(plate.bindings[s].variable) +
                         " is read as Categorical here; declare categorical data with "
                         "AddObservedCategorical (values and number of categories)");
      const int dim = family == Family::kCategorical ? info.dim
                      : HasDimension(family)         ? static_cast<int>(sample.value().rows())
                                                     : 1;
      if (info.family_known && (info.family != family || info.dim != dim))
        throw GraphError(PlateLabel(p) + ": " + Describe(plate.bindings[s].variable) +
                         " is read as " + FamilyName(family) + " (dimension " +
                         std::to_string(dim) + ") here but as " + FamilyName(info.family) +
                         " (dimension " + std::to_string(info.dim) + ") elsewhere");
      info.family = family;
      info.dim = dim;
      info.family_known = true;
    }
  }
}

void FactorGraph::Impl::CheckEveryElementConnected() const {
  std::vector<std::vector<char>> used(variables.size());
  for (size_t v = 0; v < variables.size(); ++v) used[v].assign(variables[v].size, 0);
  for (const Plate& plate : plates) {
    for (const Binding& b : plate.bindings) {
      const size_t count = b.shared ? 1 : plate.size;
      std::fill_n(used[b.variable].begin() + b.begin, count, 1);
    }
  }
  for (uint32_t v = 0; v < variables.size(); ++v) {
    const auto it = std::find(used[v].begin(), used[v].end(), 0);
    if (it == used[v].end()) continue;
    const size_t index = it - used[v].begin();
    if (variables[v].shape.empty())
      throw GraphError(Describe(v) + " is not connected to any factor");
    throw GraphError(Describe(v) + ": element " + ElementName(v, index) +
                     " is not connected to any factor");
  }
}

void FactorGraph::Impl::CheckNoDoubleConnection() const {
  for (PlateId p = 0; p < plates.size(); ++p) {
    const Plate& plate = plates[p];
    const std::vector<std::string> slots = plate.node->slot_names();
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      for (size_t t = s + 1; t < plate.bindings.size(); ++t) {
        const Binding& a = plate.bindings[s];
        const Binding& b = plate.bindings[t];
        if (a.variable != b.variable || variables[a.variable].observed) continue;
        // Some factor n sees the same element at both slots.
        bool clash;
        if (a.shared && b.shared) clash = a.begin == b.begin;
        else if (a.shared) clash = a.begin >= b.begin && a.begin < b.begin + plate.size;
        else if (b.shared) clash = b.begin >= a.begin && b.begin < a.begin + plate.size;
        else clash = a.begin == b.begin;
        if (clash)
          throw GraphError(PlateLabel(p) + ": " + Describe(a.variable) + " is connected to both '" +
                           slots[s] + "' and '" + slots[t] +
                           "' of one factor (a factor must see distinct variables)");
      }
    }
  }
}

void FactorGraph::Impl::BindNodes() {
  for (PlateId p = 0; p < plates.size(); ++p) {
    Plate& plate = plates[p];
    const std::vector<std::string> names = plate.node->slot_names();
    std::vector<SlotInfo> infos;
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      const VariableInfo& info = variables[plate.bindings[s].variable];
      SlotInfo slot;
      slot.name = names[s];
      slot.family = info.family;
      slot.dim = info.dim;
      slot.shared = plate.bindings[s].shared;
      slot.observed = info.observed;
      slot.variable = Describe(plate.bindings[s].variable);
      infos.push_back(slot);
    }
    plate.node->Bind(infos, plate.size, PlateLabel(p));
  }
}

void FactorGraph::Impl::LayOut() {
  size_t moment_offset = 0, natural_offset = 0, hidden_ordinal = 0;
  max_dim = 1;
  max_stat = 1;
  for (VariableInfo& info : variables) {
    info.stat_size = StatSize(info.family, info.dim);
    info.moment_offset = moment_offset;
    moment_offset += info.size * info.stat_size;
    max_stat = std::max(max_stat, info.stat_size);
    // Only the matrix families need workspaces of their dimension (a Categorical of K = 1000
    // must not allocate 1000 x 1000 matrices).
    if (IsMultivariate(info.family)) {
      max_dim = std::max(max_dim, info.dim);
      dims_in_use.push_back(info.dim);
    }
    if (info.observed) continue;
    info.natural_offset = natural_offset;
    natural_offset += info.size * info.stat_size;
    info.hidden_ordinal = hidden_ordinal;
    hidden_ordinal += info.size;
  }
  num_hidden_elements = hidden_ordinal;
  AssignLarge(moments, moment_offset, 0.0);
  AssignLarge(natural, natural_offset, 0.0);
}

void FactorGraph::Impl::WriteObservedMoments() {
  for (uint32_t v = 0; v < variables.size(); ++v) {
    const VariableInfo& info = variables[v];
    if (!info.observed) continue;
    double* out = moments.data() + info.moment_offset;
    // Built only for an error: with millions of data points, a string per element costs more
    // than the checks.
    auto where = [&](size_t i) {
      return Describe(v) + (info.shape.empty() ? "" : " at " + ElementName(v, i));
    };
    const bool scalar = info.scalar_values && PointMass::IsScalarFamily(info.family);
    for (size_t i = 0; i < info.size; ++i, out += info.stat_size) {
      if (scalar) {
        // The common case avoids building a PointMass per value.
        const double x = info.values[i];
        const std::string problem = PointMass::ScalarProblem(info.family, info.dim, x);
        if (!problem.empty()) throw ModelError(where(i) + ": " + problem);
        PointMass::ScalarMoments(info.family, info.dim, x, out);
        continue;
      }
      const PointMass value = ObservedValue(info, i);
      value.Validate(info.family, info.dim, where(i));
      value.Moments(info.family, out, info.dim);
    }
  }
}

void FactorGraph::Impl::BuildViews() {
  versions = std::make_unique<std::atomic<uint64_t>[]>(variables.size());
  for (size_t v = 0; v < variables.size(); ++v) versions[v].store(0);
  tracked.assign(variables.size(), 0);
  for (Plate& plate : plates) {
    plate.views.clear();
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      const Binding& b = plate.bindings[s];
      const VariableInfo& info = variables[b.variable];
      SlotView view;
      view.data = moments.data() + info.moment_offset + b.begin * info.stat_size;
      view.stride = b.shared ? 0 : info.stat_size;
      if (!info.observed)
        view.natural = natural.data() + info.natural_offset + b.begin * info.stat_size;
      if (plate.node->TracksChanges(static_cast<int>(s))) {
        tracked[b.variable] = 1;
        view.version = &versions[b.variable];
      }
      plate.views.push_back(view);
    }
    SlotView pair;  // the joint moments of the pairs of a cluster (empty for other plates)
    if (plate.pair_slot_a >= 0) {
      pair.data = plate.pair_moments.data();
      pair.stride = plate.pair_stat;
    }
    plate.views.push_back(pair);
  }
}

void FactorGraph::Impl::BuildAdjacency() {
  // Two passes over the bindings: count the entries of each hidden element, then fill them,
  // so that each element's entries are in plate order (the order messages are summed in).
  adjacency_offsets.assign(num_hidden_elements + 1, 0);
  auto for_each_entry = [&](auto&& emit) {
    for (PlateId p = 0; p < plates.size(); ++p) {
      const Plate& plate = plates[p];
      for (uint32_t s = 0; s < plate.bindings.size(); ++s) {
        const Binding& b = plate.bindings[s];
        const VariableInfo& info = variables[b.variable];
        if (info.observed) continue;
        if (b.shared) {
          emit(info.hidden_ordinal + b.begin,
               AdjacencyEntry{p, s, 0, plate.size, plate.node.get(), plate.views.data()});
        } else {
          for (size_t n = 0; n < plate.size; ++n)
            emit(info.hidden_ordinal + b.begin + n,
                 AdjacencyEntry{p, s, n, n + 1, plate.node.get(), plate.views.data()});
        }
      }
    }
  };
  for_each_entry([&](size_t h, const AdjacencyEntry&) { ++adjacency_offsets[h + 1]; });
  for (size_t h = 0; h < num_hidden_elements; ++h)
    adjacency_offsets[h + 1] += adjacency_offsets[h];
  adjacency.resize(adjacency_offsets.back());
  std::vector<size_t> fill(adjacency_offsets.begin(), adjacency_offsets.end() - 1);
  for_each_entry([&](size_t h, const AdjacencyEntry& e) { adjacency[fill[h]++] = e; });
}


void FactorGraph::Impl::BuildStructure() {
  structure.clear();
  std::vector<StructureGraph::vertex_descriptor> vertex_of(variables.size());
  for (uint32_t v = 0; v < variables.size(); ++v)
    if (!variables[v].constant) vertex_of[v] = boost::add_vertex(StructureVertex{false, v}, structure);
  for (PlateId p = 0; p < plates.size(); ++p) {
    const auto factor = boost::add_vertex(StructureVertex{true, p}, structure);
    for (uint32_t s = 0; s < plates[p].bindings.size(); ++s) {
      const uint32_t v = plates[p].bindings[s].variable;
      if (!variables[v].constant) boost::add_edge(factor, vertex_of[v], StructureEdge{s}, structure);
    }
  }
}

uint32_t FactorGraph::Impl::HiddenVariableOf(size_t ordinal) const {
  // Hidden ordinals increase with the variable id, so a binary search finds the owner.
  auto it = std::upper_bound(hidden_ids.begin(), hidden_ids.end(), ordinal,
                             [&](size_t h, uint32_t id) { return h < variables[id].hidden_ordinal; });
  return *(it - 1);
}

namespace {

/// Messages of a plate range longer than this are summed in blocks of this many factors,
/// each block into its own partial sum, the partial sums then added in order (unless the
/// node reads cached sums): the same arithmetic on one thread or many.
constexpr size_t kMessageBlockSize = 16384;

/// The blocks of one long plate range: block b of [begin, end) into partial + b·stat.
class MessageBlocks final : public BlockRunner::Body {
 public:
  MessageBlocks(const AdjacencyEntry& entry, double* partial, int stat)
      : entry_(entry), partial_(partial), stat_(stat) {}
  void operator()(size_t b, Scratch& scratch) const override {
    const size_t begin = entry_.begin + b * kMessageBlockSize;
    const size_t end = std::min(entry_.end, begin + kMessageBlockSize);
    double* sum = partial_ + b * stat_;
    std::fill_n(sum, stat_, 0.0);
    entry_.node->AccumulateMessage(static_cast<int>(entry_.slot), begin, end, entry_.views, sum,
                                   scratch.node);
  }

 private:
  const AdjacencyEntry& entry_;
  double* partial_;
  int stat_;
};

/// Runs the blocks one after another on the caller's thread.
class InlineRunner final : public BlockRunner {
 public:
  explicit InlineRunner(Scratch& scratch) : scratch_(scratch) {}
  void Run(size_t count, const Body& body) const override {
    for (size_t b = 0; b < count; ++b) body(b, scratch_);
  }

 private:
  Scratch& scratch_;
};

/// True when the entry's factors are summed in blocks.
bool SumsInBlocks(const AdjacencyEntry& e) {
  return e.end - e.begin > kMessageBlockSize && !e.node->SumsCached();
}

/// The number of blocks the entry's factors are summed in.
size_t MessageBlockCount(const AdjacencyEntry& e) {
  return (e.end - e.begin + kMessageBlockSize - 1) / kMessageBlockSize;
}

}  // namespace

bool FactorGraph::Impl::SetFromMessages(uint32_t v, size_t index, bool out_only,
                                        Scratch& scratch, const BlockRunner* runner) {
  const VariableInfo& info = variables[v];
  const size_t h = info.hidden_ordinal + index;
  double* eta = scratch.eta.data();
  std::fill_n(eta, info.stat_size, 0.0);
  bool any = false;
  for (size_t k = adjacency_offsets[h]; k < adjacency_offsets[h + 1]; ++k) {
    const AdjacencyEntry& e = adjacency[k];
    if (out_only && !e.node->IsOutput(static_cast<int>(e.slot))) continue;
    any = true;
    // A weighted plate's messages to a shared element are summed apart, then scaled.
    const Plate& plate = plates[e.plate];
    const bool weighted = plate.weight != 1.0 && plate.bindings[e.slot].shared;
    double* sum = weighted ? scratch.weighted.data() : eta;
    if (weighted) std::fill_n(sum, info.stat_size, 0.0);
    if (!SumsInBlocks(e)) {
      e.node->AccumulateMessage(static_cast<int>(e.slot), e.begin, e.end, e.views, sum,
                                scratch.node);
    } else {
      const size_t blocks = MessageBlockCount(e);
      double* partial = scratch.partial.data();
      const MessageBlocks body(e, partial, info.stat_size);
      if (runner) {
        runner->Run(blocks, body);
      } else {
        InlineRunner(scratch).Run(blocks, body);
      }
      for (size_t b = 0; b < blocks; ++b)
        for (int i = 0; i < info.stat_size; ++i) sum[i] += partial[b * info.stat_size + i];
    }
    if (weighted)
      for (int i = 0; i < info.stat_size; ++i) eta[i] += plate.weight * sum[i];
  }
  if (!any) return false;
  double* moment = moments.data() + info.moment_offset + index * info.stat_size;
  if (!MomentsFromNatural(info.family, info.dim, eta, moment, WorkspaceFor(info, scratch)))
    return false;
  std::copy_n(eta, info.stat_size, natural.data() + info.natural_offset + index * info.stat_size);
  Touch(v);
  return true;
}

void FactorGraph::Impl::SizePartialSums() {
  max_partial = 0;
  for (uint32_t v : hidden_ids) {
    const VariableInfo& info = variables[v];
    for (size_t h = info.hidden_ordinal; h < info.hidden_ordinal + info.size; ++h)
      for (size_t k = adjacency_offsets[h]; k < adjacency_offsets[h + 1]; ++k)
        if (SumsInBlocks(adjacency[k]))
          max_partial = std::max(max_partial, MessageBlockCount(adjacency[k]) *
                                                  static_cast<size_t>(info.stat_size));
  }
}

void FactorGraph::Impl::FindBlockUpdates() {
  // A variable updates in blocks when every element has the same list of messages, each from
  // a plate that binds the variable in one slot only, one factor per element (factor
  // first + i for element i): then no factor joins two of its elements.
  updates_in_blocks.assign(variables.size(), 0);
  for (uint32_t v : hidden_ids) {
    const VariableInfo& info = variables[v];
    if (info.size < 2) continue;
    const size_t h0 = info.hidden_ordinal;
    const size_t count = adjacency_offsets[h0 + 1] - adjacency_offsets[h0];
    bool alike = count > 0;
    for (size_t k = adjacency_offsets[h0]; alike && k < adjacency_offsets[h0 + 1]; ++k) {
      const AdjacencyEntry& e = adjacency[k];
      int bound = 0;
      for (const Binding& b : plates[e.plate].bindings) bound += b.variable == v;
      alike = bound == 1 && e.end == e.begin + 1;
    }
    for (size_t i = 1; alike && i < info.size; ++i) {
      const size_t h = h0 + i;
      if (adjacency_offsets[h + 1] - adjacency_offsets[h] != count) {
        alike = false;
        break;
      }
      for (size_t j = 0; alike && j < count; ++j) {
        const AdjacencyEntry& first = adjacency[adjacency_offsets[h0] + j];
        const AdjacencyEntry& e = adjacency[adjacency_offsets[h] + j];
        alike = e.plate == first.plate && e.slot == first.slot && e.begin == first.begin + i;
      }
    }
    updates_in_blocks[v] = alike;
  }
}

size_t FactorGraph::Impl::UpdateRun(uint32_t v, size_t first, size_t step, size_t count,
                                    bool stop_at_failure, Scratch& scratch) {
  const VariableInfo& info = variables[v];
  const size_t stat = info.stat_size;
  const size_t h0 = info.hidden_ordinal;
  Workspace& ws = WorkspaceFor(info, scratch);
  double* const moment_of = moments.data() + info.moment_offset;
  double* const natural_of = natural.data() + info.natural_offset;
  size_t failed = SIZE_MAX;
  for (size_t done = 0; done < count && !(stop_at_failure && failed != SIZE_MAX);) {
    const size_t size = std::min(kBlockSize, count - done);
    const size_t head = first + done * step;  // the block's first element
    double* eta = scratch.block_eta.data();
    std::fill_n(eta, size * stat, 0.0);
    // The messages of `head` name the factors; the block's j-th element reads factor + j·step.
    for (size_t k = adjacency_offsets[h0 + head]; k < adjacency_offsets[h0 + head + 1]; ++k) {
      const AdjacencyEntry& e = adjacency[k];
      e.node->AccumulateMessages(static_cast<int>(e.slot), e.begin,
                                 e.begin + (size - 1) * step + 1, step, e.views, eta, stat,
                                 scratch.node);
    }
    // The moments of the proper elements, in stretches (an improper one stays as it was).
    // Consecutive elements take theirs in place; the others through block_moments.
    for (size_t j = 0; j < size;) {
      const size_t at = head + j * step;
      double* out = step == 1 ? moment_of + at * stat : scratch.block_moments.data();
      const size_t proper = MomentsOfRun(info.family, info.dim, size - j, eta + j * stat, out, ws);
      if (step == 1) {
        std::copy_n(eta + j * stat, proper * stat, natural_of + at * stat);
      } else {
        for (size_t i = 0; i < proper; ++i) {
          std::copy_n(out + i * stat, stat, moment_of + (at + i * step) * stat);
          std::copy_n(eta + (j + i) * stat, stat, natural_of + (at + i * step) * stat);
        }
      }
      j += proper;
      if (j == size) break;
      failed = std::min(failed, head + j * step);
      if (stop_at_failure) break;
      ++j;
    }
    done += size;
  }
  Touch(v);
  return failed;
}

void FactorGraph::Impl::Initialise(Scratch& scratch) {
  // Everything starts at the standard density, so that a parent on a cycle of "out" links
  // (or with no prior) is read at a proper value.
  for (uint32_t v : hidden_ids) {
    const VariableInfo& info = variables[v];
    double* eta = natural.data() + info.natural_offset;
    WriteStandardNatural(info.family, info.dim, eta);
    double* moment = moments.data() + info.moment_offset;
    MomentsFromNatural(info.family, info.dim, eta, moment, WorkspaceFor(info, scratch));
    for (size_t i = 1; i < info.size; ++i) {
      std::copy_n(eta, info.stat_size, eta + i * info.stat_size);
      std::copy_n(moment, info.stat_size, moment + i * info.stat_size);
    }
  }
  // Then each element from its priors, parents first (iterative depth-first search).
  std::vector<char> state(num_hidden_elements, 0);  // 0 new, 1 open, 2 done
  std::vector<size_t> stack;
  for (size_t root = 0; root < num_hidden_elements; ++root) {
    if (state[root]) continue;
    stack.push_back(root);
    while (!stack.empty()) {
      const size_t h = stack.back();
      if (state[h] == 0) {
        state[h] = 1;
        for (size_t k = adjacency_offsets[h]; k < adjacency_offsets[h + 1]; ++k) {
          const AdjacencyEntry& e = adjacency[k];
          const Plate& plate = plates[e.plate];
          if (!plate.node->IsOutput(static_cast<int>(e.slot))) continue;
          for (size_t s = 0; s < plate.bindings.size(); ++s) {
            if (plate.node->IsOutput(static_cast<int>(s))) continue;
            const Binding& b = plate.bindings[s];
            const VariableInfo& parent = variables[b.variable];
            if (parent.observed) continue;
            const size_t first = parent.hidden_ordinal + b.begin;
            const size_t last = b.shared ? first + 1 : first + e.end;
            for (size_t p = b.shared ? first : first + e.begin; p < last; ++p)
              if (state[p] == 0) stack.push_back(p);
          }
        }
        continue;
      }
      stack.pop_back();
      if (state[h] == 2) continue;
      state[h] = 2;
      const uint32_t v = HiddenVariableOf(h);
      SetFromMessages(v, h - variables[v].hidden_ordinal, /*out_only=*/true, scratch);
    }
  }
  for (uint32_t v : hidden_ids) Touch(v);
}

void FactorGraph::Finalize() {
  Impl& g = *impl_;
  if (g.finalized) throw GraphError("Finalize: the graph is already finalised");
  if (g.plates.empty()) throw GraphError("the graph has no factors");
  g.InferObservedFamilies();
  g.CheckEveryElementConnected();
  g.CheckNoDoubleConnection();
  g.BindNodes();
  g.FindClusterPairs();
  g.LayOut();
  g.WriteObservedMoments();
  g.BuildViews();
  g.BuildAdjacency();
  g.hidden_ids.clear();
  for (uint32_t v = 0; v < g.variables.size(); ++v)
    if (!g.variables[v].observed) g.hidden_ids.push_back(v);
  std::sort(g.dims_in_use.begin(), g.dims_in_use.end());
  g.dims_in_use.erase(std::unique(g.dims_in_use.begin(), g.dims_in_use.end()),
                      g.dims_in_use.end());
  g.BuildStructure();
  g.FindBlockUpdates();
  g.SizePartialSums();
  g.ColourElements();
  g.FindColourRuns();
  g.SplitFreeEnergyBlocks();
  g.BuildClusterSchedules();
  g.finalized = true;
  for (Plate& plate : g.plates) plate.node->Prepare(plate.views.data(), plate.size);
  Scratch scratch = MakeScratch();
  g.Initialise(scratch);
  for (Cluster& cluster : g.clusters) g.ResetClusterPairs(cluster);
}

bool FactorGraph::finalized() const { return impl_->finalized; }

// ---- Queries --------------------------------------------------------------------------------

Variable FactorGraph::Find(const std::string& name) const {
  const auto it = impl_->by_name.find(name);
  if (it == impl_->by_name.end()) throw GraphError("no variable named '" + name + "'");
  return Variable(it->second, 0, impl_->variables[it->second].size);
}

size_t FactorGraph::num_variables() const { return impl_->variables.size(); }
size_t FactorGraph::num_plates() const { return impl_->plates.size(); }
size_t FactorGraph::num_factors() const {
  size_t total = 0;
  for (const Plate& plate : impl_->plates) total += plate.size;
  return total;
}
const std::string& FactorGraph::variable_name(uint32_t id) const {
  return impl_->variables.at(id).name;
}
std::string FactorGraph::ElementName(const Variable& element) const {
  return impl_->ElementName(impl_->Checked(element).id(), element.begin());
}
Family FactorGraph::family(const Variable& v) const {
  return impl_->variables[impl_->Checked(v).id()].family;
}
int FactorGraph::dim(const Variable& v) const {
  return impl_->variables[impl_->Checked(v).id()].dim;
}
bool FactorGraph::observed(const Variable& v) const {
  return impl_->variables[impl_->Checked(v).id()].observed;
}
std::vector<Variable> FactorGraph::HiddenVariables() const {
  std::vector<Variable> result;
  for (uint32_t v = 0; v < impl_->variables.size(); ++v) {
    const VariableInfo& info = impl_->variables[v];
    if (!info.observed) result.push_back(Variable(v, 0, info.size));
  }
  return result;
}
const Node& FactorGraph::node(PlateId plate) const { return *impl_->plates.at(plate).node; }
const std::string& FactorGraph::plate_name(PlateId plate) const {
  return impl_->plates.at(plate).name;
}
size_t FactorGraph::plate_size(PlateId plate) const { return impl_->plates.at(plate).size; }

const Variable& FactorGraph::Impl::Checked(const Variable& v) const {
  if (!v.valid() || v.id() >= variables.size())
    throw GraphError("not a variable of this graph");
  if (v.begin() + v.size() > variables[v.id()].size)
    throw GraphError("not a variable of this graph: " + OutOfRange(v));
  return v;
}

std::string FactorGraph::Impl::OutOfRange(const Variable& v) const {
  return "elements [" + std::to_string(v.begin()) + ", " + std::to_string(v.begin() + v.size()) +
         ") of " + Describe(v.id()) + ", which has " + std::to_string(variables[v.id()].size) +
         " elements";
}

int FactorGraph::CheckedDim(const Variable& element, Family family) const {
  const Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(element).id()];
  if (!g.finalized) throw GraphError("posteriors exist once the graph is finalised");
  if (element.size() != 1)
    throw GraphError("variable '" + info.name + "' has " + std::to_string(element.size()) +
                     " elements: ask for one, e.g. " + g.ElementName(element.id(), 0));
  if (info.observed) throw GraphError(g.Describe(element.id()) + " has no posterior");
  if (info.family != family)
    throw GraphError("variable '" + info.name + "' is " + FamilyName(info.family) + ", not " +
                     FamilyName(family));
  return info.dim;
}

const double* FactorGraph::PosteriorNatural(const Variable& element) const {
  // Posterior() may evaluate this before CheckedDim: check the handle here too, and leave the
  // other errors to CheckedDim (which throws before the pointer is read).
  const VariableInfo& info = impl_->variables[impl_->Checked(element).id()];
  if (!impl_->finalized || info.observed) return nullptr;
  return impl_->natural.data() + info.natural_offset + element.begin() * info.stat_size;
}

void FactorGraph::SetPosteriorNatural(const Variable& v, Family family, int dim,
                                      const double* eta) {
  Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(v).id()];
  if (!g.finalized) throw GraphError("SetPosterior: finalise the graph first");
  if (info.observed) throw GraphError("SetPosterior: " + g.Describe(v.id()) + " is observed");
  if (info.family != family || info.dim != dim)
    throw GraphError("SetPosterior: variable '" + info.name + "' is " + FamilyName(info.family) +
                     " of dimension " + std::to_string(info.dim) + ", got " +
                     FamilyName(family) + " of dimension " + std::to_string(dim));
  Workspace ws(IsMultivariate(family) ? dim : 0);
  for (size_t i = v.begin(); i < v.begin() + v.size(); ++i) {
    std::copy_n(eta, info.stat_size, g.natural.data() + info.natural_offset + i * info.stat_size);
    MomentsFromNatural(family, dim, eta, g.moments.data() + info.moment_offset + i * info.stat_size,
                       ws);
  }
  g.Touch(v.id());
  // A cluster's pairs start independent again.
  if (g.cluster_of[v.id()] >= 0) g.ResetClusterPairs(g.clusters[g.cluster_of[v.id()]]);
  g.ForgetKeptMessages(v.id());
}

std::string FactorGraph::DescribePosterior(const Variable& element) const {
  const VariableInfo& info = impl_->variables[impl_->Checked(element).id()];
  switch (info.family) {
    case Family::kGaussian: return Posterior<Gaussian>(element).ToString();
    case Family::kMvGaussian: return Posterior<MvGaussian>(element).ToString();
    case Family::kGamma: return Posterior<Gamma>(element).ToString();
    case Family::kWishart: return Posterior<Wishart>(element).ToString();
    case Family::kBeta: return Posterior<Beta>(element).ToString();
    case Family::kBernoulli: return Posterior<Bernoulli>(element).ToString();
    case Family::kCategorical: return Posterior<Categorical>(element).ToString();
    case Family::kDirichlet: return Posterior<Dirichlet>(element).ToString();
  }
  return "?";
}

// ---- Engine ---------------------------------------------------------------------------------


Scratch FactorGraph::MakeScratch() const {
  const Impl& g = *impl_;
  Scratch scratch;
  scratch.by_dim.resize(g.max_dim + 1);
  for (int d : g.dims_in_use) scratch.by_dim[d].Resize(d);
  scratch.node.Resize(g.max_dim);
  scratch.eta.assign(g.max_stat, 0.0);
  scratch.block_eta.assign(Impl::kBlockSize * g.run_stat, 0.0);
  scratch.block_moments.assign(Impl::kBlockSize * g.run_stat, 0.0);
  scratch.partial.assign(g.max_partial, 0.0);
  scratch.weighted.assign(g.max_stat, 0.0);
  scratch.previous.assign(g.max_stat, 0.0);
  return scratch;
}

namespace {

[[noreturn]] void ThrowClusterElement(const FactorGraph& graph, uint32_t variable) {
  throw GraphError("UpdateElement: variable '" + graph.variable_name(variable) +
                   "' is a cluster with one joint posterior: update all of its elements "
                   "with UpdateElements");
}

}  // namespace

bool FactorGraph::UpdateElement(uint32_t variable, size_t index, Scratch& scratch) {
  if (impl_->cluster_of[variable] >= 0) ThrowClusterElement(*this, variable);
  return impl_->SetFromMessages(variable, index, /*out_only=*/false, scratch);
}

bool FactorGraph::UpdateElement(uint32_t variable, size_t index, Scratch& scratch,
                                const BlockRunner& runner) {
  if (impl_->cluster_of[variable] >= 0) ThrowClusterElement(*this, variable);
  return impl_->SetFromMessages(variable, index, /*out_only=*/false, scratch, &runner);
}

size_t FactorGraph::UpdateListedElements(uint32_t variable, const size_t* elements,
                                         size_t count, Scratch& scratch,
                                         const BlockRunner* runner) {
  Impl& g = *impl_;
  if (g.cluster_of[variable] >= 0) ThrowClusterElement(*this, variable);
  const size_t h0 = g.variables[variable].hidden_ordinal;
  size_t failed = SIZE_MAX;
  for (size_t i = 0; i < count;) {
    // The longest stretch of the list from elements[i] that follows its colour run.
    const size_t first = elements[i];
    const Impl::ColourRunPlace place = g.colour_run[h0 + first];
    const size_t most = std::min<size_t>(place.left, count - i);
    size_t run = 1;
    while (run < most && elements[i + run] == first + run * place.step) ++run;
    if (run > 1) {
      failed = std::min(failed, g.UpdateRun(variable, first, place.step, run,
                                            /*stop_at_failure=*/false, scratch));
    } else if (!g.SetFromMessages(variable, first, /*out_only=*/false, scratch, runner)) {
      failed = std::min(failed, first);
    }
    i += run;
  }
  return failed;
}

bool FactorGraph::updates_in_blocks(const Variable& v) const {
  if (!impl_->finalized) throw GraphError("updates_in_blocks: finalise the graph first");
  return impl_->updates_in_blocks[impl_->Checked(v).id()] != 0;
}

size_t FactorGraph::UpdateElements(uint32_t variable, size_t begin, size_t end,
                                   Scratch& scratch) {
  Impl& g = *impl_;
  if (g.cluster_of[variable] >= 0) {
    Cluster& cluster = g.clusters[g.cluster_of[variable]];
    if (begin != 0 || end != cluster.size)
      throw GraphError("UpdateElements: variable '" + g.variables[variable].name +
                       "' is a cluster with one joint posterior: update all of its " +
                       std::to_string(cluster.size) + " elements together, not [" +
                       std::to_string(begin) + ", " + std::to_string(end) + ")");
    const size_t failed = g.UpdateCluster(cluster, scratch);
    g.Touch(variable);
    return failed == SIZE_MAX ? end : failed;
  }
  if (g.updates_in_blocks[variable] && end - begin > 1) {
    const size_t failed =
        g.UpdateRun(variable, begin, 1, end - begin, /*stop_at_failure=*/true, scratch);
    return failed == SIZE_MAX ? end : failed;
  }
  for (size_t i = begin; i < end; ++i)
    if (!g.SetFromMessages(variable, i, /*out_only=*/false, scratch)) return i;
  return end;
}

size_t FactorGraph::UpdateElementsNaturalGradient(uint32_t variable, size_t begin, size_t end,
                                                   double step, Scratch& scratch) {
  Impl& g = *impl_;
  if (!(step > 0.0 && step <= 1.0))
    throw GraphError("UpdateElementsNaturalGradient: the step must be in (0, 1], got " +
                     FormatNumber(step));
  if (g.cluster_of[variable] >= 0)
    throw GraphError("UpdateElementsNaturalGradient: variable '" + g.variables[variable].name +
                     "' is a cluster; natural-gradient steps apply to mean-field variables");
  std::string plate;
  if (step != 1.0 && g.KeptMessagesReach(variable, &plate))
    throw GraphError("UpdateElementsNaturalGradient: variable '" + g.variables[variable].name +
                     "' is joined to " + plate + ", whose sum-product messages must enter the "
                     "posterior whole; only a step of 1 applies");
  const VariableInfo& info = g.variables[variable];
  const size_t stat = static_cast<size_t>(info.stat_size);
  Workspace& ws = Impl::WorkspaceFor(info, scratch);
  for (size_t i = begin; i < end; ++i) {
    double* eta = g.natural.data() + info.natural_offset + i * stat;
    double* moments = g.moments.data() + info.moment_offset + i * stat;
    std::copy_n(eta, stat, scratch.previous.data());
    if (!g.SetFromMessages(variable, i, /*out_only=*/false, scratch)) return i;
    if (step == 1.0) continue;
    for (size_t k = 0; k < stat; ++k)
      eta[k] = (1.0 - step) * scratch.previous[k] + step * eta[k];
    const bool proper = MomentsFromNatural(info.family, info.dim, eta, moments, ws);
    if (!proper) {
      std::copy_n(scratch.previous.data(), stat, eta);
      MomentsFromNatural(info.family, info.dim, eta, moments, ws);
    }
    g.Touch(variable);
    if (!proper) return i;
  }
  return end;
}

std::vector<double> FactorGraph::NaturalParameters(const Variable& v) const {
  const Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(v).id()];
  if (!g.finalized) throw GraphError("NaturalParameters: finalise the graph first");
  if (info.observed) throw GraphError("NaturalParameters: " + g.Describe(v.id()) + " is observed");
  const double* eta = g.natural.data() + info.natural_offset + v.begin() * info.stat_size;
  return std::vector<double>(eta, eta + v.size() * info.stat_size);
}

void FactorGraph::SetNaturalParameters(const Variable& v, const std::vector<double>& eta) {
  Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(v).id()];
  if (!g.finalized) throw GraphError("SetNaturalParameters: finalise the graph first");
  if (info.observed)
    throw GraphError("SetNaturalParameters: " + g.Describe(v.id()) + " is observed");
  const size_t stat = static_cast<size_t>(info.stat_size);
  if (eta.size() != v.size() * stat)
    throw GraphError("SetNaturalParameters: " + g.Describe(v.id()) + ": expected " +
                     std::to_string(v.size() * stat) + " numbers (" + std::to_string(v.size()) +
                     " elements of " + std::to_string(stat) + "), got " +
                     std::to_string(eta.size()));
  Workspace ws(IsMultivariate(info.family) ? info.dim : 0);
  std::vector<double> moments(eta.size());
  for (size_t i = 0; i < v.size(); ++i)
    if (!MomentsFromNatural(info.family, info.dim, eta.data() + i * stat,
                            moments.data() + i * stat, ws))
      throw ModelError("SetNaturalParameters: " + g.ElementName(v.id(), v.begin() + i) +
                       ": the natural parameters are not a proper " + FamilyName(info.family) +
                       " density");
  std::copy(eta.begin(), eta.end(), g.natural.begin() + info.natural_offset + v.begin() * stat);
  std::copy(moments.begin(), moments.end(),
            g.moments.begin() + info.moment_offset + v.begin() * stat);
  g.Touch(v.id());
  if (g.cluster_of[v.id()] >= 0) g.ResetClusterPairs(g.clusters[g.cluster_of[v.id()]]);
  g.ForgetKeptMessages(v.id());
}

void FactorGraph::Impl::ForgetKeptMessages(uint32_t variable) {
  for (Plate& plate : plates) {
    if (!plate.node->KeepsMessages()) continue;
    for (const Binding& b : plate.bindings)
      if (b.variable == variable) {
        plate.node->ForgetMessages();
        break;
      }
  }
}

bool FactorGraph::Impl::KeptMessagesReach(uint32_t variable, std::string* plate_label) const {
  for (PlateId p = 0; p < plates.size(); ++p) {
    if (!plates[p].node->KeepsMessages()) continue;
    for (const Binding& b : plates[p].bindings)
      if (b.variable == variable) {
        if (plate_label) *plate_label = PlateLabel(p);
        return true;
      }
  }
  return false;
}

void FactorGraph::Impl::RequireObserved(uint32_t id, const char* what) const {
  if (!variables[id].observed || variables[id].constant)
    throw GraphError(std::string(what) + ": " + Describe(id) + " is not an observed variable");
}

void FactorGraph::Impl::ReprepareReaders(uint32_t id) {
  for (Plate& plate : plates) {
    const bool reads = std::any_of(plate.bindings.begin(), plate.bindings.end(),
                                   [id](const Binding& b) { return b.variable == id; });
    if (reads) plate.node->Prepare(plate.views.data(), plate.size);
  }
}

void FactorGraph::SetObservedValues(const Variable& v, const std::vector<double>& values) {
  Impl& g = *impl_;
  const uint32_t id = g.Checked(v).id();
  g.RequireObserved(id, "SetObservedValues");
  VariableInfo& info = g.variables[id];
  if (info.value_rows * info.value_cols != 1)
    throw GraphError("SetObservedValues: " + g.Describe(id) +
                     " holds vectors or matrices; use SetObservedRows");
  if (values.size() != v.size())
    throw GraphError("SetObservedValues: " + g.Describe(id) + ": expected " +
                     std::to_string(v.size()) + " values, got " + std::to_string(values.size()));
  if (g.finalized) {
    for (size_t i = 0; i < values.size(); ++i) {
      const std::string problem = PointMass::ScalarProblem(info.family, info.dim, values[i]);
      if (!problem.empty())
        throw ModelError(g.Describe(id) + " at " + g.ElementName(id, v.begin() + i) + ": " +
                         problem);
    }
  }
  std::copy(values.begin(), values.end(), info.values.begin() + v.begin());
  if (!g.finalized) return;
  double* out = g.moments.data() + info.moment_offset + v.begin() * info.stat_size;
  for (size_t i = 0; i < values.size(); ++i, out += info.stat_size)
    PointMass::ScalarMoments(info.family, info.dim, values[i], out);
  g.Touch(id);
  g.ReprepareReaders(id);
}

void FactorGraph::SetObservedRows(const Variable& v, const Matrix& rows) {
  Impl& g = *impl_;
  const uint32_t id = g.Checked(v).id();
  g.RequireObserved(id, "SetObservedRows");
  VariableInfo& info = g.variables[id];
  if (info.value_cols != 1 || rows.cols() != info.value_rows ||
      static_cast<size_t>(rows.rows()) != v.size())
    throw GraphError("SetObservedRows: " + g.Describe(id) + ": expected " +
                     std::to_string(v.size()) + " rows of " + std::to_string(info.value_rows) +
                     " numbers, got " + std::to_string(rows.rows()) + " x " +
                     std::to_string(rows.cols()));
  const size_t width = static_cast<size_t>(info.value_rows);
  if (g.finalized) {
    for (Eigen::Index i = 0; i < rows.rows(); ++i)
      PointMass(Vector(rows.row(i).transpose()))
          .Validate(info.family, info.dim,
                    g.Describe(id) + " at " + g.ElementName(id, v.begin() + i));
  }
  for (Eigen::Index i = 0; i < rows.rows(); ++i)
    for (size_t c = 0; c < width; ++c)
      info.values[(v.begin() + i) * width + c] = rows(i, static_cast<Eigen::Index>(c));
  if (!g.finalized) return;
  double* out = g.moments.data() + info.moment_offset + v.begin() * info.stat_size;
  for (Eigen::Index i = 0; i < rows.rows(); ++i, out += info.stat_size)
    PointMass(Vector(rows.row(i).transpose())).Moments(info.family, out, info.dim);
  g.Touch(id);
  g.ReprepareReaders(id);
}

void FactorGraph::SetPlateWeight(PlateId p, double weight) {
  Impl& g = *impl_;
  if (p >= g.plates.size())
    throw GraphError("SetPlateWeight: no plate " + std::to_string(p) + " (the graph has " +
                     std::to_string(g.plates.size()) + ")");
  if (!(weight > 0.0) || !std::isfinite(weight))
    throw GraphError("SetPlateWeight: " + g.PlateLabel(p) + ": the weight must be > 0 and finite, got " +
                     FormatNumber(weight));
  if (weight != 1.0 && g.plates[p].node->KeepsMessages())
    throw GraphError("SetPlateWeight: " + g.PlateLabel(p) + " is a " + g.plates[p].node->type() +
                     " node, whose sum-product messages cannot stand for several copies; its "
                     "weight stays 1");
  g.plates[p].weight = weight;
}

double FactorGraph::plate_weight(PlateId p) const {
  if (p >= impl_->plates.size()) throw GraphError("plate_weight: no plate " + std::to_string(p));
  return impl_->plates[p].weight;
}

void FactorGraph::Impl::SplitFreeEnergyBlocks() {
  free_energy_blocks.clear();
  for (PlateId p = 0; p < plates.size(); ++p) {
    const Plate& plate = plates[p];
    const size_t step = plate.node->SumsCached() ? plate.size : kFreeEnergyBlockSize;
    for (size_t begin = 0; begin < plate.size; begin += step)
      free_energy_blocks.push_back({false, p, begin, std::min(plate.size, begin + step)});
  }
  for (uint32_t v : hidden_ids)
    for (size_t begin = 0; begin < variables[v].size; begin += kFreeEnergyBlockSize)
      free_energy_blocks.push_back(
          {true, v, begin, std::min(variables[v].size, begin + kFreeEnergyBlockSize)});
}

double FactorGraph::Impl::EvaluateBlock(const EnergyBlock& block, Scratch& scratch) const {
  if (!block.entropy) {
    const Plate& plate = plates[block.index];
    return plate.node->AverageEnergy(block.begin, block.end, plate.views.data(), scratch.node);
  }
  const VariableInfo& info = variables[block.index];
  const double* eta = natural.data() + info.natural_offset + block.begin * info.stat_size;
  const double* moment = moments.data() + info.moment_offset + block.begin * info.stat_size;
  Workspace& ws = WorkspaceFor(info, scratch);
  double entropy = 0.0;
  for (size_t i = block.begin; i < block.end; ++i, eta += info.stat_size, moment += info.stat_size)
    entropy += EntropyOf(info.family, info.dim, eta, moment, ws);
  if (cluster_of[block.index] >= 0) {
    // The Bethe entropy of a tree: Σ H[q_i] − Σ I(x_c; x_parent).
    for (size_t i = block.begin; i < block.end; ++i)
      entropy -= mutual_information[info.hidden_ordinal + i];
  }
  return entropy;
}

template <class Value>
double FactorGraph::Impl::CombineBlocks(Value value, std::vector<double>* plate_energy,
                                        double* entropy_out) const {
  double energy = 0.0, entropy = 0.0, plate_sum = 0.0;
  for (size_t b = 0; b < free_energy_blocks.size(); ++b) {
    const EnergyBlock& block = free_energy_blocks[b];
    if (block.entropy) {
      entropy += value(b);
      continue;
    }
    plate_sum += value(b);
    const bool last_of_plate = b + 1 == free_energy_blocks.size() ||
                               free_energy_blocks[b + 1].entropy ||
                               free_energy_blocks[b + 1].index != block.index;
    if (!last_of_plate) continue;
    energy += plate_sum;
    if (plate_energy) plate_energy->push_back(plate_sum);
    plate_sum = 0.0;
  }
  if (entropy_out) *entropy_out = entropy;
  return energy - entropy;
}

size_t FactorGraph::num_free_energy_blocks() const {
  return impl_->free_energy_blocks.size();
}

double FactorGraph::FreeEnergyBlock(size_t block, Scratch& scratch) const {
  return impl_->EvaluateBlock(impl_->free_energy_blocks[block], scratch);
}

double FactorGraph::FreeEnergyBlockPosition(size_t block) const {
  const Impl& g = *impl_;
  const EnergyBlock& b = g.free_energy_blocks.at(block);
  const size_t middle = b.begin + (b.end - b.begin) / 2;
  if (b.entropy)
    return static_cast<double>(middle) / static_cast<double>(g.variables[b.index].size);
  const Plate& plate = g.plates[b.index];
  const Binding* chosen = nullptr;
  for (const Binding& binding : plate.bindings) {
    if (binding.shared || g.variables[binding.variable].constant) continue;
    if (!g.variables[binding.variable].observed) {
      chosen = &binding;
      break;
    }
    if (!chosen) chosen = &binding;
  }
  if (!chosen) return 0.0;
  return static_cast<double>(chosen->begin + middle) /
         static_cast<double>(g.variables[chosen->variable].size);
}

double FactorGraph::FreeEnergyFromBlocks(const std::vector<double>& values) const {
  if (values.size() != impl_->free_energy_blocks.size())
    throw GraphError("FreeEnergyFromBlocks: " + std::to_string(values.size()) +
                     " values for " + std::to_string(impl_->free_energy_blocks.size()) +
                     " blocks");
  return impl_->CombineBlocks([&](size_t b) { return values[b]; }, nullptr, nullptr);
}

FactorGraph::FreeEnergyTerms FactorGraph::FreeEnergyParts(Scratch& scratch) const {
  const Impl& g = *impl_;
  FreeEnergyTerms terms;
  terms.variable_entropy.assign(g.variables.size(), 0.0);
  g.CombineBlocks(
      [&](size_t b) {
        const EnergyBlock& block = g.free_energy_blocks[b];
        const double value = g.EvaluateBlock(block, scratch);
        if (block.entropy) terms.variable_entropy[block.index] += value;
        return value;
      },
      &terms.plate_energy, &terms.entropy);
  return terms;
}

double FactorGraph::FreeEnergy(Scratch& scratch) const {
  const Impl& g = *impl_;
  return g.CombineBlocks(
      [&](size_t b) { return g.EvaluateBlock(g.free_energy_blocks[b], scratch); }, nullptr,
      nullptr);
}

size_t FactorGraph::num_colours(const Variable& v) const {
  if (!impl_->finalized) throw GraphError("num_colours: finalise the graph first");
  return impl_->num_colours[impl_->Checked(v).id()];
}

std::vector<std::vector<size_t>> FactorGraph::ColourClasses(const Variable& v) const {
  const Impl& g = *impl_;
  if (!g.finalized) throw GraphError("ColourClasses: finalise the graph first");
  if (g.variables[g.Checked(v).id()].observed) return {};
  return g.ColourClassesOf(v.id(), v.begin(), v.begin() + v.size());
}

std::vector<std::vector<size_t>> FactorGraph::Impl::ColourClassesOf(uint32_t v, size_t begin,
                                                                    size_t end) const {
  std::vector<std::vector<size_t>> classes(num_colours[v]);
  for (size_t i = begin; i < end; ++i)
    classes[element_colour[variables[v].hidden_ordinal + i]].push_back(i);
  classes.erase(std::remove_if(classes.begin(), classes.end(),
                               [](const std::vector<size_t>& c) { return c.empty(); }),
                classes.end());
  return classes;
}

// ---- Structure queries ----------------------------------------------------------------------

namespace {

// A template, so that it may take the private FactorGraph::Impl without naming it.
template <class GraphImpl>
const Plate& CheckedPlate(const GraphImpl& g, PlateId plate, size_t n, const char* what) {
  if (!g.finalized) throw GraphError(std::string(what) + ": finalise the graph first");
  if (plate >= g.plates.size())
    throw GraphError(std::string(what) + ": plate " + std::to_string(plate) +
                     " is out of range: the graph has " + std::to_string(g.plates.size()));
  const Plate& p = g.plates[plate];
  if (n >= p.size)
    throw GraphError(std::string(what) + ": factor " + std::to_string(n) + " is out of range: " +
                     g.PlateLabel(plate) + " has " + std::to_string(p.size));
  return p;
}

}  // namespace

Variable FactorGraph::FactorArgument(PlateId plate, size_t n, size_t slot) const {
  const Plate& p = CheckedPlate(*impl_, plate, n, "FactorArgument");
  if (slot >= p.bindings.size())
    throw GraphError("FactorArgument: slot " + std::to_string(slot) + " is out of range: " +
                     impl_->PlateLabel(plate) + " has " + std::to_string(p.bindings.size()));
  const Binding& b = p.bindings[slot];
  return Variable(b.variable, b.shared ? b.begin : b.begin + n, 1);
}

const double* FactorGraph::Moments(const Variable& element) const {
  const Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(element).id()];
  if (!g.finalized) throw GraphError("Moments: finalise the graph first");
  if (element.size() != 1)
    throw GraphError("Moments: variable '" + info.name + "' has " +
                     std::to_string(element.size()) + " elements: ask for one, e.g. " +
                     g.ElementName(element.id(), element.begin()));
  return g.moments.data() + info.moment_offset + element.begin() * info.stat_size;
}

const double* FactorGraph::FactorLogTable(PlateId plate, size_t n) const {
  const Plate& p = CheckedPlate(*impl_, plate, n, "FactorLogTable");
  return p.node->LogTable(n, p.views.data());
}

std::vector<FactorGraph::ElementRange> FactorGraph::HiddenNeighbours(const Variable& v) const {
  const Impl& g = *impl_;
  if (!g.finalized) throw GraphError("HiddenNeighbours: finalise the graph first");
  const VariableInfo& info = g.variables[g.Checked(v).id()];
  std::vector<ElementRange> ranges;
  if (info.observed) return ranges;
  auto by_position = [](const ElementRange& a, const ElementRange& b) {
    if (a.variable != b.variable) return a.variable < b.variable;
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  };
  auto same = [](const ElementRange& a, const ElementRange& b) {
    return a.variable == b.variable && a.begin == b.begin && a.end == b.end;
  };
  auto compact = [&] {
    std::sort(ranges.begin(), ranges.end(), by_position);
    ranges.erase(std::unique(ranges.begin(), ranges.end(), same), ranges.end());
  };
  size_t compacted = 0;  // the size after the last compaction: a long run repeats its ranges
  for (size_t i = v.begin(); i < v.begin() + v.size(); ++i) {
    const size_t h = info.hidden_ordinal + i;
    for (size_t k = g.adjacency_offsets[h]; k < g.adjacency_offsets[h + 1]; ++k) {
      const AdjacencyEntry& e = g.adjacency[k];
      const Plate& plate = g.plates[e.plate];
      // Factors [e.begin, e.end) of the plate read element i through slot e.slot; every other
      // slot of theirs binds one shared element or one element per factor.
      for (uint32_t s = 0; s < plate.bindings.size(); ++s) {
        const Binding& b = plate.bindings[s];
        if (s == e.slot || g.variables[b.variable].observed) continue;
        ElementRange range{b.variable, b.begin, b.begin + 1};
        if (!b.shared) range = {b.variable, b.begin + e.begin, b.begin + e.end};
        ranges.push_back(range);
      }
    }
    if (ranges.size() > 2 * compacted + 64) {
      compact();
      compacted = ranges.size();
    }
  }
  compact();
  return ranges;
}

}  // namespace vfe
