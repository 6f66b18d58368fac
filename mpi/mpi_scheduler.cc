#include "vfe/mpi/mpi_scheduler.h"

#include <chrono>
#include <climits>
#include <string>

namespace vfe {

MpiExchange::MpiExchange(MPI_Comm comm) : comm_(comm) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) throw GraphError("MpiExchange: MPI is not initialised (call MPI_Init first)");
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &ranks_);
}

void MpiExchange::AllGatherInPlace(double* buffer, const std::vector<size_t>& counts) const {
  if (counts.size() != static_cast<size_t>(ranks_))
    throw GraphError("MpiExchange: " + std::to_string(counts.size()) + " counts for " +
                     std::to_string(ranks_) + " processes");
  counts_.resize(counts.size());
  displacements_.resize(counts.size());
  size_t offset = 0;
  for (size_t q = 0; q < counts.size(); ++q) {
    if (offset + counts[q] > static_cast<size_t>(INT_MAX))
      throw GraphError("MpiExchange: more than INT_MAX numbers in one exchange");
    counts_[q] = static_cast<int>(counts[q]);
    displacements_[q] = static_cast<int>(offset);
    offset += counts[q];
  }
  const auto start = std::chrono::steady_clock::now();
  const int status = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buffer, counts_.data(),
                                    displacements_.data(), MPI_DOUBLE, comm_);
  traffic_.ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (status != MPI_SUCCESS) throw GraphError("MpiExchange: MPI_Allgatherv failed");
  ++traffic_.calls;
  traffic_.bytes += (offset - counts[static_cast<size_t>(rank_)]) * sizeof(double);
}

MpiScheduler::MpiScheduler(SchedulerOptions options, MPI_Comm comm, int threads)
    : exchange_(comm), scheduler_(std::move(options), exchange_, threads) {}

Result MpiScheduler::Run(FactorGraph& graph) const { return scheduler_.Run(graph); }

void MpiScheduler::GatherLocals(FactorGraph& graph) const { scheduler_.GatherLocals(graph); }

}  // namespace vfe
