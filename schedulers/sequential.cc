#include "vfe/schedulers/sequential.h"

#include <chrono>
#include <cmath>

#include "schedulers/sweeps.h"
#include "vfe/core/format.h"

namespace vfe {

void SchedulerOptions::Validate() const {
  if (max_iterations < 1)
    throw OptionsError("max_iterations must be >= 1, got " + std::to_string(max_iterations));
  if (!(tolerance >= 0) || !std::isfinite(tolerance))
    throw OptionsError("tolerance must be a finite number >= 0, got " + FormatNumber(tolerance));
  for (size_t k = 0; k < order.size(); ++k)
    if (!order[k].valid())
      throw OptionsError("order[" + std::to_string(k) +
                         "]: not a variable (a default-constructed Variable)");
}

const char* TerminationName(Termination termination) {
  switch (termination) {
    case Termination::kConverged: return "converged";
    case Termination::kMaxIterations: return "max_iterations";
    case Termination::kStopped: return "stopped";
    case Termination::kNumericalFailure: return "numerical_failure";
  }
  return "?";
}

SequentialScheduler::SequentialScheduler(SchedulerOptions options) : options_(std::move(options)) {
  options_.Validate();
}

Result SequentialScheduler::Run(FactorGraph& graph) const {
  std::vector<std::string> warnings;
  const std::vector<Variable> order = SweepOrder(graph, options_, warnings);
  Scratch scratch = graph.MakeScratch();
  return RunSweeps(
      graph, options_, order, std::move(warnings),
      [&](const Variable& v) {
        return graph.UpdateElements(v.id(), v.begin(), v.begin() + v.size(), scratch);
      },
      [&] { return graph.FreeEnergy(scratch); });
}

}  // namespace vfe
