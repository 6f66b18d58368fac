#ifndef VFE_NODES_CARRIED_PRIOR_H_
#define VFE_NODES_CARRIED_PRIOR_H_

// The prior a streaming run (vfe::Stream) carries from one step to the next: a density given
// by its natural parameters, which change between steps (private to the library).

#include <memory>
#include <vector>

#include "vfe/core/types.h"
#include "vfe/distributions/family.h"
#include "vfe/nodes/node.h"

namespace vfe {

/// A density of `family` (dimension `dim`) by its natural parameters η (family.h's flat
/// layout) and its log-partition A(η). Set() replaces η; the nodes that read it see the new
/// density at their next message.
class CarriedDensity {
 public:
  CarriedDensity(Family family, int dim);
  Family family() const { return family_; }
  int dim() const { return dim_; }
  const std::vector<double>& natural() const { return natural_; }
  double log_partition() const { return log_partition_; }
  /// Sets η from StatSize(family, dim) numbers and computes A(η) = H[q_η] + η·E_η[T] (the
  /// families' densities are exp(η·T(x) − A(η)) with no base measure). Returns false,
  /// changing nothing, when η is not a proper density.
  bool Set(const double* eta);

 private:
  Family family_;
  int dim_;
  std::vector<double> natural_;
  std::vector<double> moments_;  // E_η[T], kept to compute A without allocating
  Workspace workspace_;
  double log_partition_ = 0.0;
};

/// A factor of one variable "out" whose density is `density` (not owned: it must outlive the
/// graph): the message to out is η, and U = A(η) − η·E[T(out)] (as a prior with constant
/// parameters, PriorNode). GraphError at Bind unless out has the density's family and dimension.
std::unique_ptr<Node> MakeCarriedPriorNode(const CarriedDensity* density);

}  // namespace vfe

#endif  // VFE_NODES_CARRIED_PRIOR_H_
