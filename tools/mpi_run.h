#ifndef VFE_TOOLS_MPI_RUN_H_
#define VFE_TOOLS_MPI_RUN_H_

// `vfe run --mpi` (tools/mpi_run.cc, built with the MPI layer): the model run over the
// processes mpirun started. MPI is started by the first MpiRun and finalised by its end.

#include <memory>
#include <string>
#include <vector>

#include "vfe/io/model_json.h"

namespace vfe::cli {

/// True when vfe was built with the MPI layer (VFE_MPI).
bool MpiAvailable();

class MpiRun {
 public:
  MpiRun();  ///< MPI_Init; throws ModelError without the MPI layer
  ~MpiRun();  ///< MPI_Finalize
  int rank() const;
  int ranks() const;
  /// Every process says whether it got this far (`error` empty) and all learn whether every
  /// one did. When one failed, each prints on standard error its own message (the failing
  /// ones) or that another process failed, all wait until every message is out (so that
  /// mpirun, which ends the job at the first exit, loses none), and each throws
  /// ReportedFailure: none is left waiting.
  /// `code` is the exit code of this process's failure (kModelError, kIoError); the largest
  /// of the failing processes' is every process's.
  void Agree(const std::string& error, int code = 1) const;
  /// Runs the model's inference over the processes (MpiScheduler, `threads` each), then
  /// gathers the rows of the local variables in `gather` (names; the others stay partial).
  Result Run(Model& model, int threads, const std::vector<std::string>& gather);
  /// The names of the model's local variables (one element per row of the data).
  std::vector<std::string> LocalVariables(const Model& model) const;
  /// What the exchanges of the run cost (JSON: processes, threads, exchanges, bytes,
  /// communication_ms, compute_ms).
  std::string TrafficJson(const Result& result) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vfe::cli

#endif  // VFE_TOOLS_MPI_RUN_H_
