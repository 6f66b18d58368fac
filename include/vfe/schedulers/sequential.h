#ifndef VFE_SCHEDULERS_SEQUENTIAL_H_
#define VFE_SCHEDULERS_SEQUENTIAL_H_

#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/options.h"

namespace vfe {

/// Variational message passing by sweeps: each sweep updates every variable of the order in
/// turn (each update is a coordinate step that cannot raise F), then evaluates F once. Runs
/// on the calling thread.
class SequentialScheduler {
 public:
  /// Throws OptionsError if the options are invalid.
  explicit SequentialScheduler(SchedulerOptions options);
  /// Runs sweeps on `graph` (finalised; throws GraphError otherwise), from its current
  /// posteriors, until convergence, the iteration cap, the callback or a numerical failure.
  Result Run(FactorGraph& graph) const;

 private:
  SchedulerOptions options_;
};

}  // namespace vfe

#endif  // VFE_SCHEDULERS_SEQUENTIAL_H_
