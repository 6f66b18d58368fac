#ifndef VFE_SCHEDULERS_OPTIONS_H_
#define VFE_SCHEDULERS_OPTIONS_H_

#include <functional>
#include <string>
#include <vector>

#include "vfe/graph/factor_graph.h"

namespace vfe {

/// What a scheduler reports after each sweep.
struct IterationInfo {
  int iteration = 0;           ///< 1-based sweep number
  double free_energy = 0.0;    ///< F after the sweep
  double change = 0.0;         ///< F − F_previous (NaN after the first sweep)
  double relative_change = 0.0;  ///< |ΔF| / (½(|F| + |F_previous|)) (NaN after the first)
  double elapsed_ms = 0.0;     ///< since the run started
};

/// Called after every sweep; return false to stop the run early.
using IterationCallback = std::function<bool(const IterationInfo&)>;

/// Options of every scheduler.
struct SchedulerOptions {
  int max_iterations = 100;  ///< sweeps at most (>= 1)
  /// Stop when |ΔF| / (½(|F| + |F_prev|)) < tolerance, checked from the second sweep on (the
  /// rule BayesPy uses). 0 runs exactly max_iterations sweeps.
  double tolerance = 1e-8;
  /// Variables updated in each sweep, in this order (every element of an array, in index
  /// order). Empty: every hidden variable in order of declaration.
  std::vector<Variable> order;
  /// Hidden variables kept at their starting posteriors on purpose: never updated, and left
  /// out of the default order without a warning. An order that leaves out a hidden variable
  /// (or some of its elements) not listed here runs, with a warning that names it; an order
  /// that lists a fixed variable is refused.
  std::vector<Variable> fixed;
  IterationCallback callback;  ///< optional
  /// Throws OptionsError naming the field, its value and the constraint.
  void Validate() const;
};

/// How a run ended.
enum class Termination {
  kConverged,         ///< the relative change of F fell below the tolerance
  kMaxIterations,     ///< max_iterations sweeps without converging
  kStopped,           ///< the callback asked to stop
  kNumericalFailure,  ///< an update gave an improper posterior or F is not finite
};

/// The outcome of a run; the posteriors stay in the graph (FactorGraph::Posterior).
struct Result {
  Termination termination = Termination::kMaxIterations;
  std::string message;               ///< what happened, in words
  int iterations = 0;                ///< sweeps run
  std::vector<double> free_energy;   ///< F after each sweep
  double initial_free_energy = 0.0;  ///< F before the first sweep
  /// Sweeps after which F rose by more than rounding (1e-9 relative): under VMP with
  /// conjugate nodes this should never happen, and it is reported rather than hidden.
  int free_energy_increases = 0;
  double inference_ms = 0.0;
  /// What is legal but probably a mistake, each naming its variable: the graph's own
  /// (FactorGraph::warnings: a hidden variable with no prior), an order that leaves out a
  /// hidden variable not declared fixed, F rising under a mean-field schedule (with the sweep,
  /// and the variable whose update raised it), collapsed mixture components at the end.
  std::vector<std::string> warnings;
  bool converged() const { return termination == Termination::kConverged; }
  /// −F at the end: a lower bound on log p(y).
  double evidence_lower_bound() const {
    return free_energy.empty() ? -initial_free_energy : -free_energy.back();
  }
};

/// "converged", "max_iterations", "stopped" or "numerical_failure".
const char* TerminationName(Termination termination);

}  // namespace vfe

#endif  // VFE_SCHEDULERS_OPTIONS_H_
