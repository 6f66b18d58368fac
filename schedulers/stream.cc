#include "vfe/schedulers/stream.h"

#include <algorithm>
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
  if (lag > 0 && !window)
    throw OptionsError("lag is " + std::to_string(lag) + " but there is no window builder");
  if (lag == 0 && window) throw OptionsError("a window builder with lag 0: give the lag");
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
  size_t steps = 1;              ///< the steps its inputs hold (the window's lag)
  std::vector<std::vector<double>> scalar_values;  ///< by input: a scalar input's values
  std::vector<Matrix> row_values;                  ///< by input: a vector input's rows
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
  std::vector<std::vector<double>> next, previous;  ///< by carry: buffers of Carry
  // The smoothing window (options.lag > 0): its slice and carried priors, the last `lag` rows
  // of values and the priors each of those steps started from (rings indexed by step % lag).
  std::unique_ptr<StreamSlice> window;
  std::vector<std::unique_ptr<CarriedDensity>> window_densities;
  std::vector<double> row_ring, prior_ring, window_values;

  StreamSlice& Slice(uint64_t missing);
  /// A slice built by `builder` with `present` inputs, whose inputs hold `steps` steps, the
  /// carried priors reading `carried` (made here, from the carries' first priors, when empty).
  std::unique_ptr<StreamSlice> Build(const SliceBuilder& builder, const std::vector<bool>& present,
                                     std::vector<std::unique_ptr<CarriedDensity>>& carried,
                                     size_t steps);
  /// GraphError when a plate other than the carried priors (`own`) has a `to` as its out.
  void RefuseSecondPriors(const FactorGraph& graph, const std::vector<Variable>& to,
                          const std::vector<PlateId>& own) const;
  /// Sets the slice's inputs from `values`: each input's numbers for its steps, input after
  /// input (a step's row when steps = 1).
  void SetInputs(StreamSlice& slice, const double* values);
  /// Sweeps the slice until F settles; throws Error naming the step (and, for the window,
  /// its first step `window_from`) on a numerical failure.
  StreamStep Sweep(StreamSlice& slice, size_t step, size_t window_from = 0) const;
  void Carry(StreamSlice& slice);
  void RunWindow();
};

void Stream::Impl::RefuseSecondPriors(const FactorGraph& graph, const std::vector<Variable>& to,
                                      const std::vector<PlateId>& own) const {
  // The carried prior is `to`'s prior: a factor of the slice with `to` as its out would be
  // multiplied in again at every step.
  for (PlateId p = 0; p < graph.num_plates(); ++p) {
    if (std::find(own.begin(), own.end(), p) != own.end()) continue;
    const Node& node = graph.node(p);
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
  std::vector<bool> present(input_names.size());
  for (size_t i = 0; i < present.size(); ++i) present[i] = !(missing >> i & 1u);
  std::unique_ptr<StreamSlice> slice = Build(build, present, densities, 1);
  StreamSlice& made = *slice;
  slices.emplace(missing, std::move(slice));
  return made;
}

std::unique_ptr<StreamSlice> Stream::Impl::Build(
    const SliceBuilder& builder, const std::vector<bool>& present,
    std::vector<std::unique_ptr<CarriedDensity>>& carried, size_t steps) {
  auto slice = std::make_unique<StreamSlice>();
  slice->steps = steps;
  const std::string kind = steps > 1 ? "Stream (the window): " : "Stream: ";
  FactorGraph& graph = slice->graph;
  builder(graph, present);
  const bool first = carried.empty();
  std::vector<Variable> to(carries.size());
  std::vector<PlateId> carried_plates;
  for (size_t k = 0; k < carries.size(); ++k) {
    const std::string where = kind + CarryLabel(k, carries[k]);
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
      carried.push_back(std::move(density));
    } else if (graph.family(to[k]) != carried[k]->family() ||
               graph.dim(to[k]) != carried[k]->dim()) {
      throw GraphError(where + ": to: '" + carries[k].to + "' is not of the family and "
                       "dimension it has in the slice");
    }
    carried_plates.push_back(graph.AddFactor(MakeCarriedPriorNode(carried[k].get()), {to[k]},
                                             "carried prior of '" + carries[k].to + "'"));
  }
  graph.Finalize();
  if (first) RefuseSecondPriors(graph, to, carried_plates);
  slice->from.resize(carries.size());
  for (size_t k = 0; k < carries.size() && steps == 1; ++k) {
    const std::string where = kind + CarryLabel(k, carries[k]);
    const Variable from = Resolve(graph, carries[k].from, Naming::kElement, where + ": from");
    if (graph.observed(from))
      throw GraphError(where + ": from: '" + carries[k].from + "' is observed");
    if (graph.family(from) != carried[k]->family() || graph.dim(from) != carried[k]->dim())
      throw GraphError(where + ": '" + carries[k].from + "' is " + FamilyName(graph.family(from)) +
                       " of dimension " + std::to_string(graph.dim(from)) + " and '" +
                       carries[k].to + "' " + FamilyName(carried[k]->family()) +
                       " of dimension " + std::to_string(carried[k]->dim()) +
                       ": a posterior can be carried only to an element of its kind");
    slice->from[k] = from;
  }
  const bool record = shapes.empty();
  slice->inputs.resize(input_names.size());
  slice->scalar_values.resize(input_names.size());
  slice->row_values.resize(input_names.size());
  for (size_t i = 0; i < input_names.size(); ++i) {
    if (!present[i]) continue;
    const std::string where = kind + "input '" + input_names[i] + "'";
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
    if (record) {
      shape.offset = num_values;
      num_values += shape.elements * shape.width;
      shapes.push_back(shape);
    } else if (shape.family != shapes[i].family || shape.dim != shapes[i].dim ||
               shape.elements != shapes[i].elements * steps) {
      throw GraphError(where + (steps > 1 ? ": the window must hold it for " +
                                                std::to_string(steps) + " steps (" +
                                                std::to_string(shapes[i].elements * steps) +
                                                " elements of the slice's kind), found " +
                                                std::to_string(shape.elements)
                                          : ": the slice built with inputs missing has it of "
                                            "another shape (the builder must build the same "
                                            "model every time)"));
    }
    if (shape.width == 1) {
      slice->scalar_values[i].resize(shape.elements);
    } else {
      slice->row_values[i].resize(static_cast<Eigen::Index>(shape.elements),
                                  static_cast<Eigen::Index>(shape.width));
    }
    slice->inputs[i] = v;
  }
  slice->hidden = graph.HiddenVariables();
  slice->one_update = slice->hidden.size() == 1 && !graph.reads_itself(slice->hidden[0]);
  slice->scratch = graph.MakeScratch();
  return slice;
}

void Stream::Impl::SetInputs(StreamSlice& slice, const double* values) {
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (!slice.inputs[i].valid()) continue;
    const StreamInputShape& shape = shapes[i];
    const double* from = values + shape.offset * slice.steps;
    if (shape.width == 1) {
      std::vector<double>& scalars = slice.scalar_values[i];
      std::copy(from, from + scalars.size(), scalars.begin());
      slice.graph.SetObservedValues(slice.inputs[i], scalars);
    } else {
      Matrix& rows = slice.row_values[i];
      for (Eigen::Index r = 0; r < rows.rows(); ++r)
        for (Eigen::Index c = 0; c < rows.cols(); ++c)
          rows(r, c) = from[static_cast<size_t>(r * rows.cols() + c)];
      slice.graph.SetObservedRows(slice.inputs[i], rows);
    }
  }
}

StreamStep Stream::Impl::Sweep(StreamSlice& slice, size_t step, size_t window_from) const {
  FactorGraph& graph = slice.graph;
  auto what = [&] {  // only when a step fails: no string is built on the way
    return "Stream: step " + std::to_string(step) +
           (window_from ? " (the window of steps " + std::to_string(window_from) + " to " +
                              std::to_string(step) + ")"
                        : std::string());
  };
  StreamStep done;
  done.step = step;
  double previous_f = NAN, f = NAN;
  int sweep = 0;
  bool converged = false;
  while (sweep < options.max_sweeps && !converged) {
    ++sweep;
    for (const Variable& v : slice.hidden) {
      const size_t end = v.begin() + v.size();
      const size_t failed = graph.UpdateElements(v.id(), v.begin(), end, slice.scratch);
      if (failed != end)
        throw Error(what() + ", sweep " + std::to_string(sweep) + ": the update of " +
                    graph.ElementName(v[failed - v.begin()]) + " gave an improper posterior");
    }
    f = graph.FreeEnergy(slice.scratch);
    if (!std::isfinite(f))
      throw Error(what() + ", sweep " + std::to_string(sweep) + ": the free energy is " +
                  FormatNumber(f));
    if (slice.one_update) {
      converged = true;
    } else if (sweep > 1) {
      const double change = std::abs(f - previous_f);
      converged = change == 0.0 ||
                  change / (0.5 * (std::abs(f) + std::abs(previous_f))) < options.tolerance;
    }
    previous_f = f;
  }
  done.free_energy = f;
  done.sweeps = sweep;
  done.converged = converged;
  return done;
}

void Stream::Impl::RunWindow() {
  // The window covers steps s = t − lag + 1 … t: their rows, oldest first, input by input,
  // and the priors step s started from.
  const size_t lag = options.lag, t = last.step, s = t - lag + 1;
  for (size_t i = 0, at = 0; i < shapes.size(); ++i) {
    const size_t count = shapes[i].elements * shapes[i].width;
    for (size_t j = 0; j < lag; ++j, at += count) {
      const double* row = row_ring.data() + ((s + j) % lag) * num_values + shapes[i].offset;
      std::copy(row, row + count, window_values.begin() + static_cast<std::ptrdiff_t>(at));
    }
  }
  const double* prior = prior_ring.data() + (s % lag) * (prior_ring.size() / lag);
  for (const std::unique_ptr<CarriedDensity>& density : window_densities) {
    density->Set(prior);  // proper: the filter's own prior at step s
    prior += density->natural().size();
  }
  SetInputs(*window, window_values.data());
  Sweep(*window, t, s);
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
  size_t prior_size = 0;
  for (const StreamCarry& carry : s.carries) {
    s.next.emplace_back(carry.initial.size());
    s.previous.emplace_back(carry.initial.size());
    prior_size += carry.initial.size();
  }
  if (s.options.lag > 0) {
    s.window = s.Build(s.options.window, std::vector<bool>(s.input_names.size(), true),
                       s.window_densities, s.options.lag);
    s.row_ring.resize(s.options.lag * s.num_values);
    s.prior_ring.resize(s.options.lag * prior_size);
    s.window_values.resize(s.options.lag * s.num_values);
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
  const size_t step = s.last.step + 1;
  if (missing && s.options.lag > 0)
    throw ModelError("Stream: step " + std::to_string(step) +
                     ": a missing value; a stream with a smoothing window (lag " +
                     std::to_string(s.options.lag) + ") takes complete rows only");
  StreamSlice& slice = s.Slice(missing);
  try {
    s.SetInputs(slice, values);
  } catch (const Error& e) {
    throw ModelError("Stream: step " + std::to_string(step) + ": " + e.what());
  }
  const StreamStep before = s.last;
  try {
    StreamStep done = s.Sweep(slice, step);
    for (uint64_t m = missing; m; m &= m - 1) ++done.missing;
    s.last = done;
    if (s.options.lag > 0) {  // the priors this step started from, before Carry moves them
      double* prior = s.prior_ring.data() + (step % s.options.lag) *
                                                (s.prior_ring.size() / s.options.lag);
      for (const std::unique_ptr<CarriedDensity>& density : s.densities)
        prior = std::copy(density->natural().begin(), density->natural().end(), prior);
    }
    s.Carry(slice);
  } catch (...) {
    s.last = before;
    throw;
  }
  s.current = &slice;
  s.total_free_energy += s.last.free_energy;
  if (s.options.lag > 0) {
    std::copy(values, values + count,
              s.row_ring.begin() + static_cast<std::ptrdiff_t>((step % s.options.lag) * count));
    if (step >= s.options.lag) s.RunWindow();  // the step stands if the window fails
  }
  return s.last;
}

const StreamStep& Stream::last() const { return impl_->last; }
double Stream::total_free_energy() const { return impl_->total_free_energy; }
const FactorGraph& Stream::slice() const { return impl_->current->graph; }

Variable Stream::Element(const std::string& name) const {
  return Resolve(impl_->current->graph, name, Naming::kEither, "Stream::Element");
}

const FactorGraph& Stream::window() const {
  const Impl& s = *impl_;
  if (!s.window)
    throw GraphError("Stream::window: no smoothing window (StreamOptions::lag is 0)");
  if (s.last.step < s.options.lag)
    throw GraphError("Stream::window: the window of " + std::to_string(s.options.lag) +
                     " steps is full after step " + std::to_string(s.options.lag) + "; " +
                     std::to_string(s.last.step) + " so far");
  return s.window->graph;
}

Variable Stream::WindowElement(const std::string& name) const {
  return Resolve(window(), name, Naming::kEither, "Stream::WindowElement");
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
