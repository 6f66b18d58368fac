#include "vfe/graph/factor_graph.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>

#include "graph/factor_graph_impl.h"
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
  const int most = IsMultivariate(family) ? kMaxMatrixDim : kMaxVectorDim;
  if (dim > most)
    throw GraphError("variable '" + name + "': a " + FamilyName(family) +
                     " variable's dimension must be at most " + std::to_string(most) +
                     ", got " + std::to_string(dim));
}

// Observed data are checked as they arrive, so that a NaN or an infinity is refused by the
// call that brought it, named by variable and element, rather than found at Finalize or
// carried into the moments by SetObservedValues; Finalize checks each family's support.

/// "observed variable 'y' at y[3]", or "observed variable 'y'" for a one-element variable.
std::string ObservedElement(const std::string& name, size_t size, size_t index) {
  std::string where = "observed variable '" + name + "'";
  if (size != 1) where += " at " + name + "[" + std::to_string(index) + "]";
  return where;
}

/// Throws ModelError unless the `width` numbers of each of the `size` elements (one after
/// another in `data`) are finite; `what` names the call.
void CheckFiniteData(const char* what, const std::string& name, const double* data, size_t size,
                     size_t width) {
  for (size_t k = 0; k < size * width; ++k) {
    if (std::isfinite(data[k])) continue;
    std::string where = std::string(what) + ": " + ObservedElement(name, size, k / width);
    if (width == 1)
      throw ModelError(where + ": value must be finite, got " + FormatNumber(data[k]));
    throw ModelError(where + ": entry " + std::to_string(k % width) + " must be finite, got " +
                     FormatNumber(data[k]));
  }
}

std::string CountOf(size_t count, const char* noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
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
  for (size_t extent : shape) {
    if (extent == 0) throw GraphError("variable '" + name + "' has no elements");
    if (__builtin_mul_overflow(info.size, extent, &info.size)) {
      std::string text;
      for (size_t e : shape) text += (text.empty() ? "" : ", ") + std::to_string(e);
      throw GraphError("variable '" + name + "': shape [" + text +
                       "] has more elements than can be counted (2^64)");
    }
  }
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
  CheckFiniteData("AddObserved", name, values.data(), values.size(), 1);
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
  for (Eigen::Index c = 0; c < value.cols(); ++c)
    for (Eigen::Index r = 0; r < value.rows(); ++r)
      if (!std::isfinite(value(r, c)))
        throw ModelError("AddObserved: observed variable '" + name + "': entry (" +
                         std::to_string(r) + ", " + std::to_string(c) +
                         ") must be finite, got " + FormatNumber(value(r, c)));
  const uint32_t id = impl_->Declare(std::move(info));
  return Variable(id, 0, 1);
}

Variable FactorGraph::AddObservedCategorical(const std::string& name,
                                             const std::vector<int>& outcomes,
                                             int num_categories) {
  if (num_categories < 1)
    throw GraphError("observed variable '" + name +
                     "': the number of categories must be >= 1, got " +
                     std::to_string(num_categories));
  if (outcomes.empty()) throw GraphError("observed variable '" + name + "' has no values");
  for (size_t i = 0; i < outcomes.size(); ++i)
    if (outcomes[i] < 0 || outcomes[i] >= num_categories)
      throw ModelError("AddObservedCategorical: " + ObservedElement(name, outcomes.size(), i) +
                       ": expected an outcome in 0.." + std::to_string(num_categories - 1) +
                       ", got " + std::to_string(outcomes[i]));
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
  CheckFiniteData("AddObservedRows", name, row_major.data(), info.size,
                  static_cast<size_t>(rows.cols()));
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
  impl_->CheckVariableId(id, "variable_name");
  return impl_->variables[id].name;
}
Variable FactorGraph::WholeVariable(uint32_t id) const {
  impl_->CheckVariableId(id, "WholeVariable");
  return Variable(id, 0, impl_->variables[id].size);
}
std::string FactorGraph::ElementName(const Variable& element) const {
  const Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(element, "ElementName").id()];
  if (element.size() != 1)
    throw GraphError("ElementName: elements [" + std::to_string(element.begin()) + ", " +
                     std::to_string(element.begin() + element.size()) + ") of '" + info.name +
                     "' are " + CountOf(element.size(), "element") + ": ask for one");
  return g.ElementName(element.id(), element.begin());
}
Family FactorGraph::family(const Variable& v) const {
  return impl_->variables[impl_->Checked(v, "family").id()].family;
}
int FactorGraph::dim(const Variable& v) const {
  return impl_->variables[impl_->Checked(v, "dim").id()].dim;
}
bool FactorGraph::observed(const Variable& v) const {
  return impl_->variables[impl_->Checked(v, "observed").id()].observed;
}
std::vector<Variable> FactorGraph::HiddenVariables() const {
  std::vector<Variable> result;
  for (uint32_t v = 0; v < impl_->variables.size(); ++v) {
    const VariableInfo& info = impl_->variables[v];
    if (!info.observed) result.push_back(Variable(v, 0, info.size));
  }
  return result;
}
const Node& FactorGraph::node(PlateId plate) const {
  return *impl_->CheckedPlate(plate, "node").node;
}
const std::string& FactorGraph::plate_name(PlateId plate) const {
  return impl_->CheckedPlate(plate, "plate_name").name;
}
size_t FactorGraph::plate_size(PlateId plate) const {
  return impl_->CheckedPlate(plate, "plate_size").size;
}

// ---- Checks ---------------------------------------------------------------------------------

void FactorGraph::Impl::ThrowNotAVariable(const Variable& v, const char* what) const {
  const std::string call = what ? std::string(what) + ": " : "";
  if (!v.valid())
    throw GraphError(call + "an empty Variable handle is not a variable of this graph");
  if (v.id() >= variables.size())
    throw GraphError(call + "variable id " + std::to_string(v.id()) +
                     " is not a variable of this graph (it has " +
                     CountOf(variables.size(), "variable") + ")");
  throw GraphError(call + "not a variable of this graph: " + OutOfRange(v));
}

const Plate& FactorGraph::Impl::CheckedPlate(PlateId plate, const char* what) const {
  if (plate >= plates.size())
    throw GraphError(std::string(what) + ": plate " + std::to_string(plate) +
                     " is out of range (the graph has " + CountOf(plates.size(), "plate") + ")");
  return plates[plate];
}

void FactorGraph::Impl::ThrowBadVariableId(uint32_t id, const char* what) const {
  throw GraphError(std::string(what) + ": variable id " + std::to_string(id) +
                   " is out of range (the graph has " + CountOf(variables.size(), "variable") +
                   ")");
}

void FactorGraph::Impl::ThrowNotFinalized(const char* what) const {
  throw GraphError(std::string(what) + ": finalise the graph first");
}

void FactorGraph::Impl::ThrowBadHidden(uint32_t variable, size_t begin, size_t end,
                                       bool one_element, const char* what) const {
  if (variable >= variables.size()) ThrowBadVariableId(variable, what);
  const VariableInfo& info = variables[variable];
  const std::string call = std::string(what) + ": ";
  const std::string name = "'" + info.name + "'";
  if (!finalized) throw GraphError(call + "finalise the graph first (variable " + name + ")");
  if (info.constant)
    throw GraphError(call + "variable id " + std::to_string(variable) + " is " + info.name +
                     ", which has no posterior to update");
  if (info.observed) throw GraphError(call + name + " is observed and has no posterior to update");
  const std::string has = " (it has " + CountOf(info.size, "element") + ")";
  if (one_element)
    throw GraphError(call + "element " + std::to_string(begin) + " of " + name +
                     " is out of range" + has);
  const std::string range = "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
  if (begin > end)
    throw GraphError(call + "elements " + range + " of " + name +
                     " are not a range: begin > end");
  throw GraphError(call + "elements " + range + " of " + name + " are out of range" + has);
}

void FactorGraph::Impl::ThrowBadBlock(size_t block, const char* what) const {
  CheckFinalized(what);
  throw GraphError(std::string(what) + ": block " + std::to_string(block) +
                   " is out of range (the graph has " +
                   CountOf(free_energy_blocks.size(), "free-energy block") + ")");
}

std::string FactorGraph::Impl::OutOfRange(const Variable& v) const {
  return "elements [" + std::to_string(v.begin()) + ", " + std::to_string(v.begin() + v.size()) +
         ") of " + Describe(v.id()) + ", which has " + std::to_string(variables[v.id()].size) +
         " elements";
}

int FactorGraph::CheckedDim(const Variable& element, Family family) const {
  const Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(element, "Posterior").id()];
  if (!g.finalized)
    throw GraphError("Posterior: variable '" + info.name +
                     "': posteriors exist once the graph is finalised");
  if (element.size() != 1)
    throw GraphError("Posterior: variable '" + info.name + "' has " +
                     std::to_string(element.size()) + " elements: ask for one, e.g. " +
                     g.ElementName(element.id(), 0));
  if (info.observed)
    throw GraphError("Posterior: " + g.Describe(element.id()) + " has no posterior");
  if (info.family != family)
    throw GraphError("Posterior: variable '" + info.name + "' is " + FamilyName(info.family) +
                     ", not " + FamilyName(family));
  return info.dim;
}

const double* FactorGraph::PosteriorNatural(const Variable& element) const {
  // Posterior() may evaluate this before CheckedDim: check the handle here too, and leave the
  // other errors to CheckedDim (which throws before the pointer is read).
  const VariableInfo& info = impl_->variables[impl_->Checked(element, "Posterior").id()];
  if (!impl_->finalized || info.observed) return nullptr;
  return impl_->natural.data() + info.natural_offset + element.begin() * info.stat_size;
}

void FactorGraph::SetPosteriorNatural(const Variable& v, Family family, int dim,
                                      const double* eta) {
  Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(v, "SetPosterior").id()];
  if (!g.finalized)
    throw GraphError("SetPosterior: finalise the graph first (variable '" + info.name + "')");
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
  const VariableInfo& info = impl_->variables[impl_->Checked(element, "DescribePosterior").id()];
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

void FactorGraph::Impl::RequireObserved(uint32_t id, const char* what) const {
  if (!variables[id].observed || variables[id].constant)
    throw GraphError(std::string(what) + ": " + Describe(id) + " is not an observed variable");
}

void FactorGraph::Impl::ReprepareReaders(uint32_t id) {
  for (PlateId p = 0; p < plates.size(); ++p) {
    Plate& plate = plates[p];
    const bool reads = std::any_of(plate.bindings.begin(), plate.bindings.end(),
                                   [id](const Binding& b) { return b.variable == id; });
    if (reads) Prepare(p);
  }
}

void FactorGraph::Impl::Prepare(PlateId p) {
  Plate& plate = plates[p];
  try {
    plate.node->Prepare(plate.views.data(), plate.size);
  } catch (const ModelError& e) {
    throw ModelError(PlateLabel(p) + ": " + e.what());
  }
}

void FactorGraph::SetObservedValues(const Variable& v, const std::vector<double>& values) {
  Impl& g = *impl_;
  const uint32_t id = g.Checked(v, "SetObservedValues").id();
  g.RequireObserved(id, "SetObservedValues");
  VariableInfo& info = g.variables[id];
  if (info.value_rows * info.value_cols != 1)
    throw GraphError("SetObservedValues: " + g.Describe(id) +
                     " holds vectors or matrices; use SetObservedRows");
  if (values.size() != v.size())
    throw GraphError("SetObservedValues: " + g.Describe(id) + ": expected " +
                     std::to_string(v.size()) + " values, got " + std::to_string(values.size()));
  // Before Finalize an observed variable's family is known only for categorical data; the
  // Gaussian's support is every finite number, so that the others are checked for finiteness.
  const Family family = g.finalized || info.family_known ? info.family : Family::kGaussian;
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string problem = PointMass::ScalarProblem(family, info.dim, values[i]);
    if (!problem.empty())
      throw ModelError("SetObservedValues: " + g.Describe(id) + " at " +
                       g.ElementName(id, v.begin() + i) + ": " + problem);
  }
  if (!g.finalized) {
    std::copy(values.begin(), values.end(), info.values.begin() + v.begin());
    return;
  }
  // A node may refuse data its family takes (Poisson counts that are not integers) when it
  // sees them, in Prepare: the old values then come back, so that nothing changes.
  auto write = [&](const double* from) {
    std::copy(from, from + v.size(), info.values.begin() + v.begin());
    double* out = g.moments.data() + info.moment_offset + v.begin() * info.stat_size;
    for (size_t i = 0; i < v.size(); ++i, out += info.stat_size)
      PointMass::ScalarMoments(info.family, info.dim, from[i], out);
    g.Touch(id);
    g.ReprepareReaders(id);
  };
  const std::vector<double> old(info.values.begin() + v.begin(),
                                info.values.begin() + v.begin() + v.size());
  try {
    write(values.data());
  } catch (const Error& e) {
    write(old.data());
    throw ModelError("SetObservedValues: " + g.Describe(id) + ": " + e.what());
  }
}

void FactorGraph::SetObservedRows(const Variable& v, const Matrix& rows) {
  Impl& g = *impl_;
  const uint32_t id = g.Checked(v, "SetObservedRows").id();
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
                    "SetObservedRows: " + g.Describe(id) + " at " +
                        g.ElementName(id, v.begin() + i));
  } else {
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = rows;
    for (size_t k = 0; k < static_cast<size_t>(row_major.size()); ++k)
      if (!std::isfinite(row_major.data()[k]))
        throw ModelError("SetObservedRows: " + g.Describe(id) + " at " +
                         g.ElementName(id, v.begin() + k / width) + ": entry " +
                         std::to_string(k % width) + " must be finite, got " +
                         FormatNumber(row_major.data()[k]));
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
  g.CheckedPlate(p, "SetPlateWeight");
  if (!(weight > 0.0) || !std::isfinite(weight))
    throw GraphError("SetPlateWeight: " + g.PlateLabel(p) +
                     ": the weight must be > 0 and finite, got " + FormatNumber(weight));
  if (weight != 1.0 && g.plates[p].node->KeepsMessages())
    throw GraphError("SetPlateWeight: " + g.PlateLabel(p) + " is a " + g.plates[p].node->type() +
                     " node, whose sum-product messages cannot stand for several copies; its "
                     "weight stays 1");
  g.plates[p].weight = weight;
}

double FactorGraph::plate_weight(PlateId p) const {
  return impl_->CheckedPlate(p, "plate_weight").weight;
}

}  // namespace vfe
