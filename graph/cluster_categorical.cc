// Categorical tree-shaped clusters: scaled forward–backward (sum-product on a chain or tree
// of Categorical elements), pair marginals and the cluster entropy.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "graph/cluster_categorical.h"
#include "graph/factor_graph_impl.h"
#include "vfe/core/format.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

void AddOutsideMessagesOfElements(const std::vector<Plate>& plates, uint32_t variable,
                                  size_t stat, size_t begin, size_t end, double* eta,
                                  Workspace& ws) {
  for (const Plate& plate : plates) {
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      const Binding& b = plate.bindings[s];
      const int slot = static_cast<int>(s);
      if (b.variable != variable || slot == plate.pair_slot_a || slot == plate.pair_slot_b)
        continue;
      if (b.shared) {
        if (b.begin >= begin && b.begin < end)
          plate.node->AccumulateMessage(slot, 0, plate.size, plate.views.data(),
                                        eta + b.begin * stat, ws);
        continue;
      }
      // Factor n reads element b.begin + n.
      const size_t first = std::max(begin, b.begin) - b.begin;
      const size_t last = std::min(end, b.begin + plate.size);
      if (b.begin + first >= last) continue;
      plate.node->AccumulateMessages(slot, first, last - b.begin, 1, plate.views.data(),
                                     eta + (b.begin + first) * stat, stat, ws);
    }
  }
}

size_t ComputePairPotentials(Cluster& cluster, const std::vector<Plate>& plates, size_t first,
                             size_t last, Workspace& ws, double& log_z) {
  const size_t kk = static_cast<size_t>(cluster.dim) * cluster.dim;
  uint32_t shared_plate = UINT32_MAX;
  double shared_top = 0.0, tops = 0.0;  // (a local sum, kept in a register)
  const double* shared_table = nullptr;
  const double* shared_psi = nullptr;
  for (size_t r = first; r < last; ++r) {
    const size_t i = cluster.order[r];
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    const uint32_t p = cluster.edge_plate[i];
    if (p == shared_plate) {
      cluster.log_table_of[i] = shared_table;
      cluster.psi_of[i] = shared_psi;
      tops += shared_top;
      continue;
    }
    const Plate& plate = plates[p];
    double* table = cluster.log_table.data() + i * kk;
    double* psi = cluster.psi.data() + i * kk;
    plate.node->PairPotential(cluster.edge_factor[i], plate.pair_slot_a, plate.pair_slot_b,
                              plate.views.data(), table, ws);
    double top = -INFINITY;
    for (size_t x = 0; x < kk; ++x) {
      if (std::isnan(table[x]) || table[x] == INFINITY) return i;
      top = std::max(top, table[x]);
    }
    if (top == -INFINITY) return i;
    for (size_t x = 0; x < kk; ++x) psi[x] = std::exp(table[x] - top);
    cluster.log_table_of[i] = table;
    cluster.psi_of[i] = psi;
    tops += top;
    shared_plate = plate.node->PairPotentialShared() ? p : UINT32_MAX;
    shared_top = top;
    shared_table = table;
    shared_psi = psi;
  }
  log_z += tops;
  return SIZE_MAX;
}

namespace {

/// The update of a Categorical cluster (FactorGraph::Impl::UpdateCategoricalCluster) with K
/// categories, or any K for K = 0. Writes the elements' η and E[x] into `natural` and
/// `moments` (the graph's flat arrays) and the multi-information into `mutual_information`.
template <int K>
size_t SolveCategoricalCluster(Cluster& cluster, const VariableInfo& info,
                               std::vector<Plate>& plates, double* natural, double* moments,
                               double* mutual_information, Workspace& ws) {
  const int k = info.dim;
  // Outside messages η_i of every element.
  std::fill(cluster.unary_log.begin(), cluster.unary_log.end(), 0.0);
  AddOutsideMessagesOfElements(plates, cluster.variable, static_cast<size_t>(k), 0,
                               cluster.size, cluster.unary_log.data(), ws);
  // Pair potentials: T from the node (once per plate when every factor has the same), and
  // ψ = exp(T − max T); their maxima go into log Z.
  double log_z = 0.0;
  if (const size_t failed = ComputePairPotentials(cluster, plates, 1, cluster.size, ws, log_z);
      failed != SIZE_MAX)
    return failed;
  CategoricalPasses<K> passes(cluster, k);
  const size_t failed = passes.Run(log_z);
  if (failed != SIZE_MAX) return failed;
  // Commit (nothing can fail any more): the marginals (η = log b, E[x] = b), the pairs'
  // joints, and the multi-information Σ H[q_i] − H[q] booked on the first element, with
  // E_q[log-potentials] = Σ_i E[η_i] + Σ_pairs E[T].
  double marginal_entropy = 0.0, expected_log_potentials = 0.0;
  passes.Commit(info, plates, natural, moments, mutual_information, 0, cluster.size, nullptr,
                marginal_entropy, expected_log_potentials);
  mutual_information[info.hidden_ordinal] = marginal_entropy - (log_z - expected_log_potentials);
  return SIZE_MAX;
}

}  // namespace

// Categorical elements: every message scaled by a power of two to sum to [1, 2) (so that a
// chain of any length neither underflows nor overflows), beliefs to one; potentials
// exp(T − max T), read through strides so that ψ(x_c, x_p) needs no transposed copy. The
// cluster's entropy comes from its partition function Z (the maxima, the sum of the scales'
// exponents and the roots' sums): H[q] = log Z − Σ_pairs E_q[T] − Σ_i E_q[η_i], no logarithm
// per pair. The passes are compiled for K = 2..8 and for any K.
size_t FactorGraph::Impl::UpdateCategoricalCluster(Cluster& cluster, Scratch& scratch) {
  const VariableInfo& info = variables[cluster.variable];
  return WithCategoricalDim(info.dim, [&](auto dim) {
    return SolveCategoricalCluster<decltype(dim)::value>(cluster, info, plates, natural.data(),
                                                         moments.data(),
                                                         mutual_information.data(),
                                                         scratch.node);
  });
}

}  // namespace vfe
