#include "vfe/schedulers/stream.h"

#include <cmath>
#include <map>

#include "nodes/carried_prior.h"
#include "vfe/core/format.h"
#include "vfe/schedulers/options.h"

namespace vfe {

namespace {

/// "carry 2 (x[1] -> x[0])": how errors name a carry.
std::string CarryLabel(size_t k, const StreamCarry& carry) {
  return "carry " + std::to_string(k + 1) + " (" + carry.from + " -> " + carry.to + ")";
}

/// What a name given to a stream may name.
enum class Naming {
  kElement,   ///< one element: "x[1]", or "tau" for a one-element variable
  kVariable,  ///< a whole variable: "y"
  kEither,
};

/// The element or variable of `graph` called `name` ("x[1]", "tau", "y"); GraphError
/// starting with `where` otherwise.
Variable Resolve(const FactorGraph& graph, const std::string& name, Naming naming,
                 const std::string& where) {
  const std::string base = name.substr(0, name.find('['));
  Variable v;
  try {
    v = graph.Find(base);
  } catch (const GraphError&) {
    throw GraphError(where + ": the slice has no variable '" + base + "'");
  }
  if (base == name) {
    if (naming != Naming::kElement || v.size() == 1) return v;
    throw GraphError(where + ": '" + name + "' has " + std::to_string(v.size()) +
                     " elements; name one, as '" + graph.ElementName(v[0]) + "'");
  }
  if (naming == Naming::kVariable)
    throw GraphError(where + ": expected a variable, not the element '" + name + "'");
  for (size_t k = 0; k < v.size(); ++k)
    if (graph.ElementName(v[k]) == name) return v[k];
  throw GraphError(where + ": the slice has no element '" + name + "' ('" + base + "' has " +
                   std::to_string(v.size()) + " elements)");
}

}  // namespace

void StreamOptions::Validate() const {
  if (max_sweeps < 1)
    throw OptionsError("max_sweeps must be >= 1, got " + std::to_string(max_sweeps));
  if (!(tolerance >= 0) || !std::isfinite(tolerance))
    throw OptionsError("tolerance must be a finite number >= 0, got " + FormatNumber(tolerance));
}

/// One slice, built for one pattern of missing inputs, and its handles.
struct StreamSlice {
  FactorGraph graph;
  Scratch scratch;
  std::vector<Variable> inputs;  ///< by input; an invalid Variable where it is missing
  std::vector<Variable> from;    ///< by carry
  std::vector<Variable> hidden;  ///< the update order: hidden variables as declared
  bool one_update = false;       ///< one update reaches the fixed point
};

/// What an input is: its family, and how many numbers one step brings for it.
struct StreamInputShape {
  Family family = Family::kGaussian;
  int dim = 1;
  size_t elements = 0;
  size_t width = 1;   ///< numbers per element (the dimension of a vector input)
  size_t offset = 0;  ///< its first number among Push's values
};

struct Stream::Impl {
  SliceBuilder build;
  std::vector<std::string> input_names;
  std::vector<StreamCarry> carries;
  StreamOptions options;
  std::vector<StreamInputShape> shapes;
  size_t num_values = 0;
  /// The prior each carry gives its `to` at the next step (read by the slices' nodes).
  std::vector<std::unique_ptr<CarriedDensity>> densities;
  std::map<uint64_t, std::unique_ptr<StreamSlice>> slices;  ///< by mask of missing inputs
  StreamSlice* current = nullptr;
  StreamStep last;
  double total_free_energy = 0.0;
  // Buffers reused by every step.
  std::vector<std::vector<double>> scalar_values;  ///< by input
  std::vector<Matrix> row_values;                  ///< by input
  std::vector<std::vector<double>> next, previous;  ///< by carry

  StreamSlice& Slice(uint64_t missing);
  void RefuseSecondPriors(const FactorGraph& graph, const std::vector<Variable>& to) const;
  void SetInputs(StreamSlice& slice, const double* values);
  void Run(StreamSlice& slice, uint64_t missing);
  void Carry(StreamSlice& slice);
};

void Stream::Impl::RefuseSecondPriors(const FactorGraph& graph,
                                      const std::vector<Variable>& to) const {
  // The carried prior is `to`'s prior: a factor of the slice with `to` as its out would be
  // multiplied in again at every step.
  for (PlateId p = 0; p < graph.num_plates(); ++p) {
    const Node& node = graph.node(p);
    if (std::string(node.type()) == "CarriedPrior") continue;
    for (size_t slot = 0; slot < node.slot_names().size(); ++slot) {
      if (!node.IsOutput(static_cast<int>(slot))) continue;
      for (size_t n = 0; n < graph.plate_size(p); ++n) {
        const Variable out = graph.FactorArgument(p, n, slot);
        for (size_t k = 0; k < to.size(); ++k)
          if (out.id() == to[k].id() && out.begin() == to[k].begin())
            throw GraphError("Stream: " + CarryLabel(k, carries[k]) + ": '" + carries[k].to +
                             "' has a prior in the slice (" +
                             (graph.plate_name(p).empty() ? std::string("a factor")
                                                          : "factor '" + graph.plate_name(p) + "'") +
                             ", " + node.type() + "); the carried posterior is its prior: "
                             "leave that factor out");
      }
    }
  }
}

StreamSlice& Stream::Impl::Slice(uint64_t missing) {
  auto found = slices.find(missing);
  if (found != slices.end()) return *found->second;
  auto slice = std::make_unique<StreamSlice>();
  std::vector<bool> present(input_names.size());
  for (size_t i = 0; i < present.size(); ++i) present[i] = !(missing >> i & 1u);
  FactorGraph& graph = slice->graph;
  build(graph, present);
  const bool first = densities.empty();
  std::vector<Variable> to(carries.size());
  for (size_t k = 0; k < carries.size(); ++k) {
    const std::string where = "Stream: " + CarryLabel(k, carries[k]);
    to[k] = Resolve(graph, carries[k].to, Naming::kElement, where + ": to");
    if (graph.observed(to[k]))
      throw GraphError(where + ": to: '" + carries[k].to + "' is observed");
    for (size_t j = 0; j < k; ++j)
      if (to[j].id() == to[k].id() && to[j].begin() == to[k].begin())
        throw GraphError(where + ": '" + carries[k].to + "' already has a carried prior (" +
                         CarryLabel(j, carries[j]) + ")");
    if (first) {
      auto density = std::make_unique<CarriedDensity>(graph.family(to[k]), graph.dim(to[k]));
      const size_t size = density->natural().size();
      if (carries[k].initial.size() != size)
        throw ModelError(where + ": initial: expected " + std::to_string(size) +
                         " natural parameters (" + FamilyName(density->family()) +
                         (HasDimension(density->family())
                              ? " of dimension " + std::to_string(density->dim())
                              : std::string()) +
                         "), got " + std::to_string(carries[k].initial.size()));
      if (!density->Set(carries[k].initial.data()))
        throw ModelError(where + ": initial: not a proper " +
                         std::string(FamilyName(density->family())) + " density");
      densities.push_back(std::move(density));
    }
    graph.AddFactor(MakeCarriedPriorNode(densities[k].get()), {to[k]},
                    "carried prior of '" + carries[k].to + "'");
  }
  graph.Finalize();
  if (first) RefuseSecondPriors(graph, to);
  slice->from.resize(carries.size());
  for (size_t k = 0; k < carries.size(); ++k) {
    const std::string where = "Stream: " + CarryLabel(k, carries[k]);
    const Variable from = Resolve(graph, carries[k].from, Naming::kElement, where + ": from");
    if (graph.observed(from))
      throw GraphError(where + ": from: '" + carries[k].from + "' is observed");
    if (graph.family(from) != densities[k]->family() || graph.dim(from) != densities[k]->dim())
      throw GraphError(where + ": '" + carries[k].from + "' is " + FamilyName(graph.family(from)) +
                       " of dimension " + std::to_string(graph.dim(from)) + " and '" +
                       carries[k].to + "' " + FamilyName(densities[k]->family()) +
                       " of dimension " + std::to_string(densities[k]->dim()) +
                       ": a posterior can be carried only to an element of its kind");
    slice->from[k] = from;
  }
  slice->inputs.resize(input_names.size());
  for (size_t i = 0; i < input_names.size(); ++i) {
    if (!present[i]) continue;
    const std::string where = "Stream: input '" + input_names[i] + "'";
    const Variable v = Resolve(graph, input_names[i], Naming::kVariable, where);
    if (!graph.observed(v))
      throw GraphError(where + ": a hidden variable; the inputs are observed variables");
    StreamInputShape shape;
    shape.family = graph.family(v);
    shape.dim = graph.dim(v);
    shape.elements = v.size();
    if (shape.family == Family::kMvGaussian) {
      shape.width = static_cast<size_t>(shape.dim);
    } else if (IsMultivariate(shape.family)) {
      throw GraphError(where + ": " + FamilyName(shape.family) +
                       " data: a step brings scalars or vectors only");
    }
    if (first) {
      shape.offset = num_values;
      num_values += shape.elements * shape.width;
      shapes.push_back(shape);
      scalar_values.emplace_back(shape.width == 1 ? shape.elements : 0);
      row_values.emplace_back(shape.width == 1 ? Matrix()
                                               : Matrix(static_cast<Eigen::Index>(shape.elements),
                                                        static_cast<Eigen::Index>(shape.width)));
    } else if (shape.family != shapes[i].family || shape.dim != shapes[i].dim ||
               shape.elements != shapes[i].elements) {
      throw GraphError(where + ": the slice built with inputs missing has it of another shape "
                               "(the builder must build the same model every time)");
    }
    slice->inputs[i] = v;
  }
  slice->hidden = graph.HiddenVariables();
  slice->one_update = slice->hidden.size() == 1 && !graph.reads_itself(slice->hidden[0]);
  slice->scratch = graph.MakeScratch();
  StreamSlice& made = *slice;
  slices.emplace(missing, std::move(slice));
  return made;
}

void Stream::Impl::SetInputs(StreamSlice& slice, const double* values) {
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (!slice.inputs[i].valid()) continue;
    const StreamInputShape& shape = shapes[i];
    const double* from = values + shape.offset;
    if (shape.width == 1) {
      std::copy(from, from + shape.elements, scalar_values[i].begin());
      slice.graph.SetObservedValues(slice.inputs[i], scalar_values[i]);
    } else {
      Matrix& rows = row_values[i];
      for (Eigen::Index r = 0; r < rows.rows(); ++r)
        for (Eigen::Index c = 0; c < rows.cols(); ++c)
          rows(r, c) = from[static_cast<size_t>(r * rows.cols() + c)];
      slice.graph.SetObservedRows(slice.inputs[i], rows);
    }
  }
}

void Stream::Impl::Run(StreamSlice& slice, uint64_t missing) {
  FactorGraph& graph = slice.graph;
  const size_t step = last.step + 1;
  double previous_f = NAN, f = NAN;
  int sweep = 0;
  bool converged = false;
  while (sweep < options.max_sweeps && !converged) {
    ++sweep;
    for (const Variable& v : slice.hidden) {
      const size_t end = v.begin() + v.size();
      const size_t failed = graph.UpdateElements(v.id(), v.begin(), end, slice.scratch);
      if (failed != end)
        throw Error("Stream: step " + std::to_string(step) + ", sweep " + std::to_string(sweep) +
                    ": the update of " + graph.ElementName(v[failed - v.begin()]) +
                    " gave an improper posterior");
    }
    f = graph.FreeEnergy(slice.scratch);
    if (!std::isfinite(f))
      throw Error("Stream: step " + std::to_string(step) + ", sweep " + std::to_string(sweep) +
                  ": the free energy is " + FormatNumber(f));
    if (slice.one_update) {
      converged = true;
    } else if (sweep > 1) {
      const double change = std::abs(f - previous_f);
      converged = change == 0.0 ||
                  change / (0.5 * (std::abs(f) + std::abs(previous_f))) < options.tolerance;
    }
    previous_f = f;
  }
  last.step = step;
  last.free_energy = f;
  last.sweeps = sweep;
  last.converged = converged;
  last.missing = 0;
  for (uint64_t m = missing; m; m &= m - 1) ++last.missing;
}

void Stream::Impl::Carry(StreamSlice& slice) {
  for (size_t k = 0; k < carries.size(); ++k) {
    const std::vector<double> eta = slice.graph.NaturalParameters(slice.from[k]);
    const double keep = 1.0 - carries[k].forgetting;
    std::vector<double>& mixed = next[k];
    for (size_t j = 0; j < eta.size(); ++j) {
      mixed[j] = keep * eta[j];
      if (carries[k].forgetting != 0.0) mixed[j] += carries[k].forgetting * carries[k].initial[j];
    }
  }
  for (size_t k = 0; k < carries.size(); ++k) {
    previous[k] = densities[k]->natural();
    if (!densities[k]->Set(next[k].data())) {
      for (size_t j = 0; j < k; ++j) densities[j]->Set(previous[j].data());
      throw Error("Stream: step " + std::to_string(last.step) + ": " +
                  CarryLabel(k, carries[k]) + ": the carried prior is not a proper density");
    }
  }
}

Stream::Stream(SliceBuilder build, std::vector<std::string> inputs,
               std::vector<StreamCarry> carries, StreamOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  options.Validate();
  if (!build) throw GraphError("Stream: no slice builder (an empty function)");
  if (inputs.size() > 64)
    throw GraphError("Stream: " + std::to_string(inputs.size()) +
                     " inputs; a stream takes at most 64 (put vectors in one input)");
  for (size_t k = 0; k < carries.size(); ++k) {
    const double lambda = carries[k].forgetting;
    if (!(lambda >= 0.0 && lambda < 1.0))
      throw ModelError("Stream: " + CarryLabel(k, carries[k]) +
                       ": forgetting must be in [0, 1), got " + FormatNumber(lambda));
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (inputs[i] == inputs[j])
        throw GraphError("Stream: input '" + inputs[i] + "' is listed twice");
  s.build = std::move(build);
  s.input_names = std::move(inputs);
  s.carries = std::move(carries);
  s.options = options;
  s.current = &s.Slice(0);
  for (const StreamCarry& carry : s.carries) {
    s.next.emplace_back(carry.initial.size());
    s.previous.emplace_back(carry.initial.size());
  }
}

Stream::~Stream() = default;
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;

size_t Stream::num_values() const { return impl_->num_values; }

const StreamStep& Stream::Push(const double* values, size_t count) {
  Impl& s = *impl_;
  if (count != s.num_values)
    throw ModelError("Stream: step " + std::to_string(s.last.step + 1) + ": expected " +
                     std::to_string(s.num_values) + " values, got " + std::to_string(count));
  if (count && !values) throw ModelError("Stream: Push: no values (a null pointer)");
  uint64_t missing = 0;
  for (size_t i = 0; i < s.shapes.size(); ++i) {
    const StreamInputShape& shape = s.shapes[i];
    for (size_t j = 0; j < shape.elements * shape.width; ++j)
      if (std::isnan(values[shape.offset + j])) missing |= uint64_t{1} << i;
  }
  StreamSlice& slice = s.Slice(missing);
  try {
    s.SetInputs(slice, values);
  } catch (const Error& e) {
    throw ModelError("Stream: step " + std::to_string(s.last.step + 1) + ": " + e.what());
  }
  const StreamStep before = s.last;
  try {
    s.Run(slice, missing);
    s.Carry(slice);
  } catch (...) {
    s.last = before;
    throw;
  }
  s.current = &slice;
  s.total_free_energy += s.last.free_energy;
  return s.last;
}

const StreamStep& Stream::last() const { return impl_->last; }
double Stream::total_free_energy() const { return impl_->total_free_energy; }
const FactorGraph& Stream::slice() const { return impl_->current->graph; }

Variable Stream::Element(const std::string& name) const {
  return Resolve(impl_->current->graph, name, Naming::kEither, "Stream::Element");
}

const std::vector<std::string>& Stream::warnings() const {
  return impl_->slices.at(0)->graph.warnings();
}

const std::vector<double>& Stream::carried(size_t carry) const {
  if (carry >= impl_->densities.size())
    throw GraphError("Stream::carried: carry " + std::to_string(carry) + " out of range (" +
                     std::to_string(impl_->densities.size()) + " carries)");
  return impl_->densities[carry]->natural();
}

}  // namespace vfe
