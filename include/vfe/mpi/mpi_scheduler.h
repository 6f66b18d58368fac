#ifndef VFE_MPI_MPI_SCHEDULER_H_
#define VFE_MPI_MPI_SCHEDULER_H_

// The MPI layer (library vfe_mpi, built when CMake finds MPI: option VFE_MPI). Only this
// layer includes <mpi.h>; the engine sees MPI through ShardExchange.

#include <mpi.h>

#include <cstddef>
#include <vector>

#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/options.h"
#include "vfe/schedulers/sharded.h"

namespace vfe {

/// ShardExchange over an MPI communicator: MPI_Allgatherv (numbers placed, never reduced, so
/// no reduction order of MPI's enters a result), with the traffic counted.
class MpiExchange final : public ShardExchange {
 public:
  /// What the exchanges of a run cost: calls, bytes received by this process, and the time
  /// spent in them (waiting for the slowest process included).
  struct Traffic {
    size_t calls = 0;
    size_t bytes = 0;
    double ms = 0.0;
  };
  /// `comm` must outlive the exchange (MPI_COMM_WORLD by default; MPI initialised).
  explicit MpiExchange(MPI_Comm comm = MPI_COMM_WORLD);
  int rank() const override { return rank_; }
  int ranks() const override { return ranks_; }
  void AllGatherInPlace(double* buffer, const std::vector<size_t>& counts) const override;
  const Traffic& traffic() const { return traffic_; }
  void ResetTraffic() { traffic_ = Traffic(); }
  MPI_Comm comm() const { return comm_; }

 private:
  MPI_Comm comm_;
  int rank_ = 0, ranks_ = 1;
  mutable Traffic traffic_;
  mutable std::vector<int> counts_, displacements_;
};

/// Variational message passing over the processes of an MPI communicator: ShardedScheduler
/// (vfe/schedulers/sharded.h: which models qualify, what is refused) over MpiExchange. Every
/// process builds the same graph and calls Run at once; the trace and the global posteriors
/// are bitwise the sequential scheduler's on one process, for any number of processes and
/// threads, and after GatherLocals so are the local ones.
class MpiScheduler {
 public:
  /// `threads` per process (0: every core). Throws OptionsError as the other schedulers do.
  MpiScheduler(SchedulerOptions options, MPI_Comm comm = MPI_COMM_WORLD, int threads = 1);
  Result Run(FactorGraph& graph) const;
  /// Every process's rows of the local variables, into `graph` on every process.
  void GatherLocals(FactorGraph& graph) const;
  const MpiExchange& exchange() const { return exchange_; }
  MpiExchange& exchange() { return exchange_; }
  int threads() const { return scheduler_.threads(); }

 private:
  MpiExchange exchange_;
  ShardedScheduler scheduler_;
};

}  // namespace vfe

#endif  // VFE_MPI_MPI_SCHEDULER_H_
