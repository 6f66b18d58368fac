#ifndef VFE_NODES_NODE_CHECKS_H_
#define VFE_NODES_NODE_CHECKS_H_

// Checks shared by the node types' Bind, and the summation loop of their per-factor paths
// (private to nodes/).

#include <string>
#include <vector>

#include "vfe/core/error.h"
#include "vfe/nodes/node.h"
#include "vfe/nodes/registry.h"

namespace vfe {

/// Throws GraphError unless `slot` is connected to one of `families`.
inline void RequireFamily(const SlotInfo& slot, const std::vector<Family>& families,
                          const std::string& where) {
  for (Family f : families)
    if (slot.family == f) return;
  std::string expected;
  for (Family f : families) expected += std::string(expected.empty() ? "" : " or ") + FamilyName(f);
  throw GraphError(where + ": '" + slot.name + "' expects a " + expected + " variable, got " +
                   slot.variable + " (" + FamilyName(slot.family) + ")");
}

/// Throws GraphError unless every slot is connected to a family that its parameter in the
/// declaration `type` accepts (slot "means[3]" is parameter "means"): the families are
/// declared once, in the node type.
inline void RequireDeclaredFamilies(const NodeType& type, const std::vector<SlotInfo>& slots,
                                    const std::string& where) {
  for (const SlotInfo& slot : slots) {
    const Parameter* parameter = type.Find(slot.name.substr(0, slot.name.find('[')));
    if (parameter && !parameter->families.empty()) RequireFamily(slot, parameter->families, where);
  }
}

/// "'out' is variable 'w', MvGaussian of dimension 3": where a dimension comes from.
inline std::string DimensionOf(const SlotInfo& slot) {
  return "'" + slot.name + "' is " + slot.variable + ", " + FamilyName(slot.family) +
         " of dimension " + std::to_string(slot.dim);
}

/// Throws GraphError unless `slot` has event dimension `dim`; `source` says where `dim`
/// comes from (DimensionOf the slot it must match, "the matrix has 3 rows").
inline void RequireDim(const SlotInfo& slot, int dim, const std::string& where,
                       const std::string& source = "") {
  if (slot.dim != dim)
    throw GraphError(where + ": '" + slot.name + "' expects dimension " + std::to_string(dim) +
                     (source.empty() ? "" : " (" + source + ")") + ", got " + slot.variable +
                     " of dimension " + std::to_string(slot.dim));
}

/// The one slot whose elements vary over the plate while every other slot is shared, if
/// that slot is observed; −1 otherwise. Messages and energies of such a plate depend on the
/// data only through sums of its sufficient statistics, which Prepare can cache.
inline int ObservedVaryingSlot(const std::vector<SlotInfo>& slots) {
  int varying = -1;
  for (size_t s = 0; s < slots.size(); ++s) {
    if (slots[s].shared) continue;
    if (varying >= 0 || !slots[s].observed) return -1;
    varying = static_cast<int>(s);
  }
  return varying;
}

/// out[k] += Σ_{n ∈ [begin, end)} t_k(n) for k < K, where term(n, acc) adds t(n) to acc[0..K).
/// Four interleaved partial sums hide the latency of floating-point addition (one running sum
/// makes the loop wait on every add); the order is fixed by the range, so results do not
/// depend on threads.
template <int K, class Term>
inline void SumFactors(size_t begin, size_t end, Term term, double* out) {
  double acc[4][K] = {};
  size_t n = begin;
  for (; n + 4 <= end; n += 4) {
    term(n, acc[0]);
    term(n + 1, acc[1]);
    term(n + 2, acc[2]);
    term(n + 3, acc[3]);
  }
  for (; n < end; ++n) term(n, acc[0]);
  for (int k = 0; k < K; ++k) out[k] += (acc[0][k] + acc[1][k]) + (acc[2][k] + acc[3][k]);
}

}  // namespace vfe

#endif  // VFE_NODES_NODE_CHECKS_H_
