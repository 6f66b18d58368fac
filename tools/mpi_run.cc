#include "tools/mpi_run.h"

#include <algorithm>
#include <iostream>

#include <nlohmann/json.hpp>

#include "tools/cli.h"
#include "vfe/mpi/mpi_scheduler.h"

namespace vfe::cli {

struct MpiRun::State {
  int rank = 0, ranks = 1, threads = 1;
  MpiExchange::Traffic traffic;
};

bool MpiAvailable() { return true; }

MpiRun::MpiRun() : state_(std::make_unique<State>()) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) MPI_Init(nullptr, nullptr);
  MPI_Comm_rank(MPI_COMM_WORLD, &state_->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &state_->ranks);
}

MpiRun::~MpiRun() { MPI_Finalize(); }

int MpiRun::rank() const { return state_->rank; }
int MpiRun::ranks() const { return state_->ranks; }

void MpiRun::Agree(const std::string& error, int code) const {
  int failed = error.empty() ? 0 : code, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (!any) return;
  const std::string process =
      "process " + std::to_string(state_->rank) + " of " + std::to_string(state_->ranks);
  if (!error.empty())
    std::cerr << "vfe: " << process << ": " << error << std::endl;
  else
    std::cerr << "vfe: " << process << " stops: another process failed" << std::endl;
  MPI_Barrier(MPI_COMM_WORLD);
  throw ReportedFailure{any};
}

std::vector<std::string> MpiRun::LocalVariables(const Model& model) const {
  std::vector<std::string> names;
  for (const Variable& v : ShardedScheduler::Plan(model.graph, state_->ranks).local)
    names.push_back(model.graph.variable_name(v.id()));
  return names;
}

Result MpiRun::Run(Model& model, int threads, const std::vector<std::string>& gather) {
  if (model.inference.algorithm != Algorithm::kVariationalMessagePassing)
    throw ModelError("--mpi: runs variational message passing only (not --algorithm bp)");
  MpiScheduler scheduler(model.inference.options, MPI_COMM_WORLD, threads);
  state_->threads = scheduler.threads();
  // A process that fails during the run would leave the others waiting in an exchange: it
  // says why and ends them all.
  Result result;
  try {
    result = scheduler.Run(model.graph);
  } catch (const std::exception& e) {
    std::cerr << "vfe: process " << state_->rank << ": " << e.what() << "\n";
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  // Only the named local variables are gathered; GatherLocals gathers all of them.
  const std::vector<std::string> local = LocalVariables(model);
  const bool any = std::any_of(gather.begin(), gather.end(), [&](const std::string& name) {
    return std::find(local.begin(), local.end(), name) != local.end();
  });
  if (any) scheduler.GatherLocals(model.graph);
  state_->traffic = scheduler.exchange().traffic();
  return result;
}

std::string MpiRun::TrafficJson(const Result& result) const {
  const MpiExchange::Traffic& t = state_->traffic;
  nlohmann::ordered_json j = {{"processes", state_->ranks},
                              {"threads_per_process", state_->threads},
                              {"exchanges", t.calls},
                              {"bytes_received", t.bytes},
                              {"communication_ms", t.ms},
                              {"compute_ms", std::max(0.0, result.inference_ms - t.ms)}};
  return j.dump();
}

}  // namespace vfe::cli
