// `vfe run --mpi` in a build without the MPI layer (VFE_MPI off): refused with the reason.

#include "tools/mpi_run.h"

namespace vfe::cli {

struct MpiRun::State {};

bool MpiAvailable() { return false; }

MpiRun::MpiRun() {
  throw ModelError("--mpi: this vfe was built without MPI (VFE_MPI off: install "
                   "libopenmpi-dev and openmpi-bin, then configure again)");
}
MpiRun::~MpiRun() = default;
int MpiRun::rank() const { return 0; }
int MpiRun::ranks() const { return 1; }
void MpiRun::Agree(const std::string&, int) const {}
Result MpiRun::Run(Model&, int, const std::vector<std::string>&) { return Result(); }
std::vector<std::string> MpiRun::LocalVariables(const Model&) const { return {}; }
std::string MpiRun::TrafficJson(const Result&) const { return "{}"; }

}  // namespace vfe::cli
