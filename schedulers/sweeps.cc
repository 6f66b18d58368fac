#include "schedulers/sweeps.h"

#include <chrono>
#include <cmath>

#include "vfe/core/format.h"

namespace vfe {

std::vector<Variable> SweepOrder(const FactorGraph& graph, const SchedulerOptions& options) {
  if (!graph.finalized()) throw GraphError("Run: finalise the graph first");
  std::vector<Variable> order = options.order.empty() ? graph.HiddenVariables() : options.order;
  for (size_t k = 0; k < order.size(); ++k) {
    const std::string where = "order[" + std::to_string(k) + "]: ";
    bool observed = false;
    try {
      observed = graph.observed(order[k]);  // checks that the elements belong to the graph
    } catch (const GraphError& e) {
      throw OptionsError(where + e.what());
    }
    if (observed)
      throw OptionsError(where + "'" + graph.variable_name(order[k].id()) +
                         "' is observed and has nothing to update (expected a hidden variable)");
    const Variable whole = graph.Find(graph.variable_name(order[k].id()));
    if (graph.clustered(order[k]) && order[k].size() != whole.size())
      throw OptionsError(where + "'" + graph.variable_name(order[k].id()) +
                         "' is a cluster with one joint posterior: its elements are updated "
                         "together (expected the whole variable, found " +
                         std::to_string(order[k].size()) + " of its " +
                         std::to_string(whole.size()) + " elements)");
  }
  return order;
}

Result RunSweeps(const FactorGraph& graph, const SchedulerOptions& options,
                 const std::vector<Variable>& order,
                 const std::function<size_t(const Variable&)>& update,
                 const std::function<double()>& free_energy_of) {
  using Clock = std::chrono::steady_clock;
  Result result;
  result.free_energy.reserve(options.max_iterations);
  const Clock::time_point start = Clock::now();
  result.initial_free_energy = free_energy_of();
  double previous = NAN;
  result.termination = Termination::kMaxIterations;
  for (int iteration = 1; iteration <= options.max_iterations; ++iteration) {
    for (const Variable& v : order) {
      const size_t end = v.begin() + v.size();
      const size_t failed = update(v);
      if (failed == end) continue;
      result.termination = Termination::kNumericalFailure;
      result.message = "sweep " + std::to_string(iteration) + ": the update of " +
                       graph.ElementName(v[failed - v.begin()]) +
                       " gave an improper posterior (its messages do not sum to a proper " +
                       FamilyName(graph.family(v)) + ")";
      break;
    }
    if (result.termination == Termination::kNumericalFailure) break;
    const double free_energy = free_energy_of();
    result.free_energy.push_back(free_energy);
    result.iterations = iteration;
    if (!std::isfinite(free_energy)) {
      result.termination = Termination::kNumericalFailure;
      result.message = "sweep " + std::to_string(iteration) + ": the free energy is " +
                       FormatNumber(free_energy);
      break;
    }
    IterationInfo info;
    info.iteration = iteration;
    info.free_energy = free_energy;
    info.change = free_energy - previous;
    // An unchanged F is a zero relative change, also when F is 0 (a model that is all prior).
    const double scale = 0.5 * (std::abs(free_energy) + std::abs(previous));
    info.relative_change = info.change == 0 ? 0.0 : std::abs(info.change) / scale;
    info.elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (info.change > 1e-9 * std::abs(free_energy)) ++result.free_energy_increases;
    previous = free_energy;
    if (options.callback && !options.callback(info)) {
      result.termination = Termination::kStopped;
      break;
    }
    if (iteration >= 2 && info.relative_change < options.tolerance) {
      result.termination = Termination::kConverged;
      break;
    }
  }
  result.inference_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (result.message.empty()) {
    switch (result.termination) {
      case Termination::kConverged:
        result.message = "converged after " + std::to_string(result.iterations) + " sweeps";
        break;
      case Termination::kMaxIterations:
        result.message = "stopped at the cap of " + std::to_string(result.iterations) +
                         " sweeps without converging";
        break;
      case Termination::kStopped:
        result.message = "stopped by the callback after " + std::to_string(result.iterations) +
                         " sweeps";
        break;
      case Termination::kNumericalFailure: break;
    }
  }
  return result;
}


}  // namespace vfe
