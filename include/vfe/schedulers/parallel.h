#ifndef VFE_SCHEDULERS_PARALLEL_H_
#define VFE_SCHEDULERS_PARALLEL_H_

#include <memory>

#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/options.h"

namespace vfe {

/// Variational message passing by sweeps on several threads (oneTBB). Each sweep takes the
/// variables of the order in turn and updates each variable's elements colour by colour
/// (FactorGraph::ColourClasses: elements that share a factor never share a colour), the
/// elements of one colour concurrently, and the long message sums of an element (a global
/// parameter fed by N factors) in fixed blocks on all threads; F is summed from fixed blocks
/// (FactorGraph::FreeEnergyBlock) evaluated concurrently and combined in a fixed order.
///
/// Contract: for any number of threads, the posteriors and the free-energy trace are bitwise
/// those of the same sweep on one thread, which updates each variable's colours in turn and
/// each colour's elements in index order. Where every variable has one colour (mixtures,
/// regressions, every model whose array elements share no factor) that is exactly the
/// sequential scheduler's sweep; on an Ising grid it is the red/black sweep.
class ParallelScheduler {
 public:
  /// `threads` 0 uses every core. Throws OptionsError for invalid options or threads < 0.
  ParallelScheduler(SchedulerOptions options, int threads = 0);
  ~ParallelScheduler();
  /// Runs sweeps on `graph` (finalised; throws GraphError otherwise), from its current
  /// posteriors, until convergence, the iteration cap, the callback or a numerical failure.
  Result Run(FactorGraph& graph) const;
  /// The number of threads the runs use.
  int threads() const;

 private:
  struct Arena;
  SchedulerOptions options_;
  std::unique_ptr<Arena> arena_;
};

}  // namespace vfe

#endif  // VFE_SCHEDULERS_PARALLEL_H_
