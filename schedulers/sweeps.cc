#include "schedulers/sweeps.h"

#include <chrono>
#include <cmath>
#include <string>
#include <utility>

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
  result.free_energy.reserve(rules.reserved_iterations);
  result.initial_free_energy = free_energy_of();
  double previous = NAN;
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
    if (info.change > 1e-9 * std::abs(free_energy)) ++result.free_energy_increases;
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
  result.inference_ms = ElapsedMs(start);
  return result;
}

Result RunSweeps(const FactorGraph& graph, const SchedulerOptions& options,
                 const std::vector<Variable>& order,
                 const std::function<size_t(const Variable&)>& update,
                 const std::function<double()>& free_energy) {
  const LoopRules rules(options.max_iterations, options.tolerance, options.callback,
                        kSweepWords);
  const auto start = std::chrono::steady_clock::now();
  auto sweep = [&](int) {
    for (const Variable& v : order) {
      const size_t failed = update(v);
      if (failed != v.begin() + v.size())
        return StepOutcome::Failed(
            ImproperPosteriorText(graph.ElementName(v[failed - v.begin()]), graph.family(v)));
    }
    return StepOutcome::Done();
  };
  return RunLoop(rules, start, sweep, free_energy);
}

}  // namespace vfe
