#include "schedulers/sweeps.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <utility>

#include "vfe/core/format.h"
#include "vfe/nodes/registry.h"

namespace vfe {

namespace {

/// The variable of order entry or fixed entry `k` ("order[3]: "), checked to be a hidden
/// variable of the graph.
void CheckHiddenEntry(const FactorGraph& graph, const Variable& v, const std::string& where) {
  bool observed = false;
  try {
    observed = graph.observed(v);  // checks that the elements belong to the graph
  } catch (const GraphError& e) {
    throw OptionsError(where + e.what());
  }
  if (observed)
    throw OptionsError(where + "'" + graph.variable_name(v.id()) +
                       "' is observed and has nothing to update (expected a hidden variable)");
}

}  // namespace

std::vector<Variable> SweepOrder(const FactorGraph& graph, const SchedulerOptions& options,
                                 std::vector<std::string>& warnings) {
  if (!graph.finalized()) throw GraphError("Run: finalise the graph first");
  std::vector<char> fixed(graph.num_variables(), 0);
  for (size_t k = 0; k < options.fixed.size(); ++k) {
    const Variable& v = options.fixed[k];
    const std::string where = "fixed[" + std::to_string(k) + "]: ";
    CheckHiddenEntry(graph, v, where);
    const Variable whole = graph.Find(graph.variable_name(v.id()));
    if (v.size() != whole.size())
      throw OptionsError(where + "'" + graph.variable_name(v.id()) +
                         "': a variable is fixed whole (expected all of its " +
                         std::to_string(whole.size()) + " elements, found " +
                         std::to_string(v.size()) + ")");
    fixed[v.id()] = 1;
  }
  std::vector<Variable> order;
  if (options.order.empty()) {
    for (const Variable& v : graph.HiddenVariables())
      if (!fixed[v.id()]) order.push_back(v);
  } else {
    order = options.order;
  }
  // Elements of each variable the order updates, to find what it leaves out.
  std::vector<std::vector<char>> covered(graph.num_variables());
  for (size_t k = 0; k < order.size(); ++k) {
    const std::string where = "order[" + std::to_string(k) + "]: ";
    CheckHiddenEntry(graph, order[k], where);
    const std::string& name = graph.variable_name(order[k].id());
    if (fixed[order[k].id()])
      throw OptionsError(where + "'" + name +
                         "' is fixed (SchedulerOptions::fixed) and cannot be updated as well");
    const Variable whole = graph.Find(name);
    if (graph.clustered(order[k]) && order[k].size() != whole.size())
      throw OptionsError(where + "'" + name +
                         "' is a cluster with one joint posterior: its elements are updated "
                         "together (expected the whole variable, found " +
                         std::to_string(order[k].size()) + " of its " +
                         std::to_string(whole.size()) + " elements)");
    std::vector<char>& mark = covered[order[k].id()];
    mark.resize(whole.size(), 0);
    std::fill_n(mark.begin() + static_cast<std::ptrdiff_t>(order[k].begin()), order[k].size(), 1);
  }
  warnings.insert(warnings.end(), graph.warnings().begin(), graph.warnings().end());
  for (const Variable& v : graph.HiddenVariables()) {
    if (fixed[v.id()]) continue;
    const std::vector<char>& mark = covered[v.id()];
    const auto left_out =
        static_cast<size_t>(mark.empty() ? v.size() : std::count(mark.begin(), mark.end(), 0));
    if (left_out == 0) continue;
    const std::string& name = graph.variable_name(v.id());
    warnings.push_back("the order leaves out " +
                       (left_out == v.size()
                            ? "hidden variable '" + name + "'"
                            : std::to_string(left_out) + " of the " + std::to_string(v.size()) +
                                  " elements of hidden variable '" + name + "'") +
                       ": it keeps its starting posterior; add it to the order, or list it as "
                       "fixed (SchedulerOptions::fixed; \"fixed\": true in JSON) if that is meant");
  }
  return order;
}

bool EveryUpdateLowersF(const FactorGraph& graph) {
  for (PlateId p = 0; p < graph.num_plates(); ++p) {
    const NodeType* type = FindNodeType(graph.node(p).type());
    // A node of the caller's own keeps the Node contract: variational messages.
    if (!type) continue;
    const Node& node = graph.node(p);
    const std::vector<std::string> slots = node.slot_names();
    for (size_t s = 0; s < slots.size(); ++s) {
      const Parameter* parameter = type->Find(slots[s].substr(0, slots[s].find('[')));
      // Natural-gradient steps backtrack on F: they never raise it either.
      if (parameter && !parameter->conjugate && !node.StepsOnFreeEnergy(static_cast<int>(s)))
        return false;
    }
  }
  return true;
}

void AddEndOfRunWarnings(const FactorGraph& graph, Result& result) {
  if (result.termination == Termination::kNumericalFailure) return;
  const std::vector<std::string> collapsed = graph.CollapsedComponents();
  result.warnings.insert(result.warnings.end(), collapsed.begin(), collapsed.end());
  const std::vector<std::string> refused = graph.RefusedSteps();
  result.warnings.insert(result.warnings.end(), refused.begin(), refused.end());
}

std::string LoopWords::Count(int n) const {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

double ElapsedMs(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

StepOutcome StepOutcome::Failed(std::string what) {
  StepOutcome outcome;
  outcome.kind = Kind::kFailed;
  outcome.termination = Termination::kNumericalFailure;
  outcome.message = std::move(what);
  return outcome;
}

StepOutcome StepOutcome::Finished(Termination termination, std::string message) {
  StepOutcome outcome;
  outcome.kind = Kind::kFinished;
  outcome.termination = termination;
  outcome.message = std::move(message);
  return outcome;
}

std::string ImproperPosteriorText(const std::string& element, Family family) {
  return "the update of " + element +
         " gave an improper posterior (its messages do not sum to a proper " +
         FamilyName(family) + ")";
}

Result RunLoop(const LoopRules& rules, std::chrono::steady_clock::time_point start,
               const std::function<StepOutcome(int)>& step,
               const std::function<double()>& free_energy_of) {
  const LoopWords& words = rules.words;
  Result result;
  result.warnings = rules.warnings;
  result.free_energy.reserve(rules.reserved_iterations);
  result.initial_free_energy = free_energy_of();
  double previous = NAN;
  int first_rise = 0;  // the first sweep after which F rose, and by how much
  double first_rise_by = 0.0;
  result.termination = Termination::kMaxIterations;
  for (int iteration = 1; iteration <= rules.max_iterations; ++iteration) {
    StepOutcome outcome = step(iteration);
    if (outcome.kind == StepOutcome::Kind::kFailed) {
      result.termination = Termination::kNumericalFailure;
      result.message =
          std::string(words.unit) + " " + std::to_string(iteration) + ": " + outcome.message;
      break;
    }
    const double free_energy = free_energy_of();
    result.free_energy.push_back(free_energy);
    result.iterations = iteration;
    if (!std::isfinite(free_energy)) {
      result.termination = Termination::kNumericalFailure;
      result.message = std::string(words.unit) + " " + std::to_string(iteration) +
                       ": the free energy is " + FormatNumber(free_energy);
      break;
    }
    IterationInfo info;
    info.iteration = iteration;
    info.free_energy = free_energy;
    info.change = free_energy - previous;
    // An unchanged F is a zero relative change, also when F is 0 (a model that is all prior).
    const double scale = 0.5 * (std::abs(free_energy) + std::abs(previous));
    info.relative_change = info.change == 0 ? 0.0 : std::abs(info.change) / scale;
    info.elapsed_ms = ElapsedMs(start);
    if (info.change > 1e-9 * std::abs(free_energy) && result.free_energy_increases++ == 0) {
      first_rise = iteration;
      first_rise_by = info.change;
    }
    previous = free_energy;
    if (*rules.callback && !(*rules.callback)(info)) {
      result.termination = Termination::kStopped;
      result.message = "stopped by the callback after " + words.Count(iteration);
      break;
    }
    if (outcome.kind == StepOutcome::Kind::kFinished) {
      result.termination = outcome.termination;
      result.message = std::move(outcome.message);
      break;
    }
    if (iteration >= 2 && info.relative_change < rules.tolerance) {
      result.termination = Termination::kConverged;
      result.message = "converged after " + words.Count(iteration);
      if (rules.name_relative_change)
        result.message += ": the relative change of F was " + FormatNumber(info.relative_change);
      break;
    }
  }
  if (result.termination == Termination::kMaxIterations && result.message.empty())
    result.message =
        "stopped at the cap of " + words.Count(result.iterations) + " without converging";
  if (rules.mean_field && result.free_energy_increases > 0)
    result.warnings.push_back(
        "F rose after " + words.Count(result.free_energy_increases) + ", first after " +
        words.unit + " " + std::to_string(first_rise) + " (by " + FormatNumber(first_rise_by) +
        "): a mean-field update never raises F, so a node's messages or energy are wrong");
  result.inference_ms = ElapsedMs(start);
  return result;
}

Result RunSweeps(const FactorGraph& graph, const SchedulerOptions& options,
                 const std::vector<Variable>& order, std::vector<std::string> warnings,
                 const std::function<size_t(const Variable&)>& update,
                 const std::function<double()>& free_energy) {
  LoopRules rules(options.max_iterations, options.tolerance, options.callback, kSweepWords);
  rules.warnings = std::move(warnings);
  rules.mean_field = EveryUpdateLowersF(graph);
  const auto start = std::chrono::steady_clock::now();
  // F after the last two sweeps: after the first sweep that raised F, the next evaluates F
  // after every variable's update, to name the variable whose update raises it.
  double latest = NAN, before_latest = NAN;
  bool diagnosed = false;
  std::vector<std::string> diagnosis;
  auto recorded_free_energy = [&] {
    before_latest = latest;
    latest = free_energy();
    return latest;
  };
  auto sweep = [&](int iteration) {
    const bool diagnose = !diagnosed && latest - before_latest > 1e-9 * std::abs(latest);
    double f = latest;
    for (const Variable& v : order) {
      const size_t failed = update(v);
      if (failed != v.begin() + v.size())
        return StepOutcome::Failed(
            ImproperPosteriorText(graph.ElementName(v[failed - v.begin()]), graph.family(v)));
      if (!diagnose) continue;
      const double after = free_energy();
      if (after - f > 1e-9 * std::abs(after))
        diagnosis.push_back("in sweep " + std::to_string(iteration) + " the update of '" +
                            graph.variable_name(v.id()) + "' raised F by " +
                            FormatNumber(after - f));
      f = after;
    }
    if (diagnose) diagnosed = true;
    return StepOutcome::Done();
  };
  Result result = RunLoop(rules, start, sweep, recorded_free_energy);
  result.warnings.insert(result.warnings.end(), diagnosis.begin(), diagnosis.end());
  AddEndOfRunWarnings(graph, result);
  return result;
}

}  // namespace vfe
