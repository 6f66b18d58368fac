#ifndef VFE_SCHEDULERS_ASYNC_H_
#define VFE_SCHEDULERS_ASYNC_H_

#include <cstdint>
#include <memory>

#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/options.h"

namespace vfe {

/// Options of the asynchronous scheduler, beside the SchedulerOptions every scheduler takes.
struct AsyncOptions {
  int threads = 0;  ///< threads of the run; 0: every core
  /// A block of elements tells its neighbours it changed when the moments E[T(x)] of one of
  /// its elements moved, since it last told them, by more than this, measured as
  /// max_k |m_k − m_k,told| / max(1, |m_k,told|) over the statistics k (an absolute change for
  /// moments below 1 in size, a relative one above). Its neighbours then update again. The
  /// moments are what factors read of a variable, so this bounds the change of the messages
  /// they send. 0: any change at all.
  double threshold = 1e-9;
  /// Element updates at most over the whole run (a block of n elements counts n); 0: no cap
  /// but SchedulerOptions::max_iterations rounds.
  int64_t max_updates = 0;
  /// Throws OptionsError naming the field, the value found and the constraint.
  void Validate() const;
};

/// Variational message passing driven by change, on a oneTBB flow graph, as in reactive
/// message passing: the elements of the order are split into blocks (runs of one colour of a
/// variable, FactorGraph::ColourClasses), and a block updates again only when a block it
/// shares a factor with has changed by more than AsyncOptions::threshold. The run goes in
/// rounds: each round offers every block one update, in the sweep order of the parallel
/// scheduler, but without waiting for whole colours or variables: a block waits only for the
/// blocks it shares a factor with that come before it. F is evaluated after each round, when
/// no update is running, and reported in Result as a sweep's would be (Result::iterations
/// counts rounds). The run ends by the tolerance rule of SchedulerOptions, when a round
/// leaves no change pending (quiescence, reported as converged), at the update cap, at
/// max_iterations rounds, by the callback or on a numerical failure.
///
/// Contract: two updates that share a factor never run at the same time, and the result
/// does not depend on the number of threads (each update reads exactly what it would in the
/// one-thread order). With threshold 0 the rounds are the parallel scheduler's sweeps, bit
/// for bit; with a positive threshold the run skips updates whose inputs barely moved and
/// reaches the same fixed point to within the threshold's effect on the posteriors (F is
/// stationary there, so its error is second order in that), though not bitwise the sweeps'
/// F. Only a run stopped by the update cap depends on timing (which blocks got to
/// update in the last round).
class AsyncScheduler {
 public:
  /// Throws OptionsError for invalid options.
  explicit AsyncScheduler(SchedulerOptions options, AsyncOptions async = AsyncOptions());
  ~AsyncScheduler();
  /// Runs rounds on `graph` (finalised; throws GraphError otherwise), from its current
  /// posteriors, until one of the ends above.
  Result Run(FactorGraph& graph) const;
  /// The number of threads the runs use.
  int threads() const;

 private:
  struct Arena;
  SchedulerOptions options_;
  AsyncOptions async_;
  std::unique_ptr<Arena> arena_;
};

}  // namespace vfe

#endif  // VFE_SCHEDULERS_ASYNC_H_
