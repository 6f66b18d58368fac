#ifndef VFE_SCHEDULERS_SHARDED_H_
#define VFE_SCHEDULERS_SHARDED_H_

#include <memory>
#include <string>
#include <vector>

#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/options.h"

namespace vfe {

/// How a model splits over processes by the rows of its data (ShardedScheduler::Plan).
/// Rows are the elements of the largest observed variable (N). A plate is sharded when its
/// factor n reads row n of a variable of N elements (data, or a local hidden variable); a
/// hidden variable of N elements is local (one element per row: labels, per-datum latents);
/// every other hidden variable is global. Process q owns rows [bounds[q], bounds[q + 1]),
/// whole blocks of FactorGraph::kRowGrain rows split as evenly as blocks allow (a process
/// may own none).
struct ShardPlan {
  size_t rows = 0;
  std::vector<size_t> bounds;
  std::vector<char> sharded_plates;  ///< by plate id
  std::vector<Variable> local;       ///< whole variables
  std::vector<char> is_local;        ///< by variable id
  /// By free-energy block: the process that evaluates it, or −1 when every process does
  /// (a block of a plate that is not sharded, or a global variable's entropy).
  std::vector<int> block_owner;
};

/// Variational message passing split over processes by rows of the data: data-parallel VMP
/// for models whose plates over the rows are independent given the global variables
/// (mixtures, regressions, factor-analysis-style latents). Every process holds the same graph
/// (built from the same model and data). Each sweep, every process updates the local
/// variables of its own rows (on its threads); a global element's messages from a sharded
/// plate are summed by each process over its own rows, in the engine's blocks of
/// FactorGraph::kRowGrain factors, and the blocks are exchanged (ShardExchange: placed, not
/// added), so every process adds the same blocks in the same order and updates the global
/// identically; F is summed from the free-energy blocks, each evaluated by one process and
/// exchanged. The trace and the posteriors are therefore bitwise those of the sequential
/// scheduler on one process, for any number of processes and threads.
///
/// Refused (GraphError naming the factor): a plate that joins different rows (a chain across
/// rows, z[n − 1] → z[n]), a plate whose factor n reads a row other than n, a local variable
/// that is a cluster or a cluster joined to a sharded plate, and a sharded plate that sums
/// cached statistics of a local variable.
class ShardedScheduler {
 public:
  /// `exchange` must outlive the scheduler; `threads` 0 uses every core. Throws OptionsError
  /// for invalid options or threads < 0.
  ShardedScheduler(SchedulerOptions options, const ShardExchange& exchange, int threads = 1);
  ~ShardedScheduler();

  /// The split of `graph` (finalised) over `ranks` processes; throws GraphError as above.
  static ShardPlan Plan(const FactorGraph& graph, int ranks);

  /// Runs sweeps on this process's share; every process of the exchange calls Run at once, on
  /// the same graph. The global posteriors end the same on every process; the local ones are
  /// this process's rows only (GatherLocals fills in the others).
  Result Run(FactorGraph& graph) const;
  /// Copies every process's rows of the local variables into `graph` on every process (after
  /// Run): then every posterior is the single-process run's.
  void GatherLocals(FactorGraph& graph) const;
  int threads() const;

 private:
  struct Arena;
  SchedulerOptions options_;
  const ShardExchange& exchange_;
  std::unique_ptr<Arena> arena_;
};

}  // namespace vfe

#endif  // VFE_SCHEDULERS_SHARDED_H_
