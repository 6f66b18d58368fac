// Tree-shaped clusters: a joint posterior over the elements of one variable, solved by
// sum-product (forward–backward on a chain; the Kalman filter and RTS smoother in
// information form for Gaussian states), with VMP messages from the rest of the graph.

#include <algorithm>
#include <cmath>
#include <numeric>

#include "graph/factor_graph_impl.h"
#include "graph/large_buffer.h"
#include "vfe/core/format.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

void FactorGraph::AddCluster(const Variable& v, ClusterSolver solver) {
  Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(v, "AddCluster").id()];
  if (g.finalized)
    throw GraphError("AddCluster: variable '" + info.name + "': the graph is already finalised");
  if (g.cluster_of.size() < g.variables.size()) g.cluster_of.resize(g.variables.size(), -1);
  if (g.cluster_of[v.id()] >= 0)
    throw GraphError("AddCluster: variable '" + info.name + "' is already in a cluster");
  if (info.observed)
    throw GraphError("AddCluster: " + g.Describe(v.id()) + " is observed and has no posterior");
  if (v.begin() != 0 || v.size() != info.size)
    throw GraphError("AddCluster: pass the whole variable '" + info.name + "' (" +
                     std::to_string(info.size) + " elements), not a part of it");
  if (info.family != Family::kCategorical && info.family != Family::kGaussian &&
      info.family != Family::kMvGaussian)
    throw GraphError("AddCluster: variable '" + info.name + "' is " + FamilyName(info.family) +
                     "; a cluster holds Categorical, Gaussian or MvGaussian elements");
  g.cluster_of[v.id()] = static_cast<int>(g.clusters.size());
  g.clusters.emplace_back();
  g.clusters.back().variable = v.id();
  g.clusters.back().solver = solver;
}

bool FactorGraph::clustered(const Variable& v) const {
  const uint32_t id = impl_->Checked(v, "clustered").id();
  return id < impl_->cluster_of.size() && impl_->cluster_of[id] >= 0;
}

namespace {

/// Numbers per pair of one cluster: a K x K table or a D x D cross moment.
size_t PairStat(const VariableInfo& info) { return static_cast<size_t>(info.dim) * info.dim; }

/// Slot names for errors.
std::string SlotName(const Plate& plate, int slot) {
  return "'" + plate.node->slot_names()[static_cast<size_t>(slot)] + "'";
}

}  // namespace

void FactorGraph::Impl::FindClusterPairs() {
  cluster_of.resize(variables.size(), -1);
  for (PlateId p = 0; p < plates.size(); ++p) {
    Plate& plate = plates[p];
    for (const Cluster& cluster : clusters) {
      std::vector<int> slots;
      for (size_t s = 0; s < plate.bindings.size(); ++s)
        if (plate.bindings[s].variable == cluster.variable) slots.push_back(static_cast<int>(s));
      if (slots.size() < 2) continue;
      const std::string& name = variables[cluster.variable].name;
      if (slots.size() > 2)
        throw GraphError(PlateLabel(p) + " joins " + std::to_string(slots.size()) +
                         " elements of cluster '" + name +
                         "' in one factor; a cluster's factors join two elements at most");
      if (plate.pair_slot_a >= 0)
        throw GraphError(PlateLabel(p) + " joins elements of two clusters");
      if (!plate.node->JoinsPair(slots[0], slots[1]))
        throw GraphError(PlateLabel(p) + " joins two elements of cluster '" + name +
                         "' through slots " + SlotName(plate, slots[0]) + " and " +
                         SlotName(plate, slots[1]) + ", but a " + plate.node->type() +
                         " node cannot join a pair of a cluster there (expected a Transition, "
                         "a two-variable Potential, or a LinearGaussian/MvGaussian from "
                         "'in' to 'out')");
      plate.pair_slot_a = slots[0];
      plate.pair_slot_b = slots[1];
      plate.pair_stat = PairStat(variables[cluster.variable]);
      AssignLarge(plate.pair_moments, plate.size * plate.pair_stat, 0.0);
    }
  }
}

void FactorGraph::Impl::BuildClusterSchedules() {
  for (Cluster& cluster : clusters) {
    const VariableInfo& info = variables[cluster.variable];
    const size_t size = info.size;
    cluster.size = size;
    cluster.dim = info.dim;
    // The pairs as edges between elements; a spanning forest by breadth-first search, and a
    // cycle as soon as an edge closes one.
    struct Edge {
      size_t a, b;
      uint32_t plate;
      size_t factor;
    };
    std::vector<Edge> edges;
    for (PlateId p = 0; p < plates.size(); ++p) {
      const Plate& plate = plates[p];
      if (plate.pair_slot_a < 0 || plate.bindings[plate.pair_slot_a].variable != cluster.variable)
        continue;
      const Binding& ba = plate.bindings[plate.pair_slot_a];
      const Binding& bb = plate.bindings[plate.pair_slot_b];
      for (size_t n = 0; n < plate.size; ++n)
        edges.push_back({ba.begin + (ba.shared ? 0 : n), bb.begin + (bb.shared ? 0 : n), p, n});
    }
    std::vector<size_t> degree_offsets(size + 1, 0);
    for (const Edge& e : edges) {
      ++degree_offsets[e.a + 1];
      ++degree_offsets[e.b + 1];
    }
    std::partial_sum(degree_offsets.begin(), degree_offsets.end(), degree_offsets.begin());
    std::vector<size_t> incident(degree_offsets.back());
    std::vector<size_t> fill(degree_offsets.begin(), degree_offsets.end() - 1);
    for (size_t k = 0; k < edges.size(); ++k) {
      incident[fill[edges[k].a]++] = k;
      incident[fill[edges[k].b]++] = k;
    }
    cluster.parent.assign(size, Cluster::kNoParent);
    cluster.edge_plate.assign(size, 0);
    cluster.edge_factor.assign(size, 0);
    cluster.child_in_slot_a.assign(size, 0);
    cluster.order.clear();
    std::vector<char> seen(size, 0);
    std::vector<char> used(edges.size(), 0);
    for (size_t root = 0; root < size; ++root) {
      if (seen[root]) continue;
      seen[root] = 1;
      size_t head = cluster.order.size();
      cluster.order.push_back(root);
      while (head < cluster.order.size()) {
        const size_t i = cluster.order[head++];
        for (size_t k = degree_offsets[i]; k < degree_offsets[i + 1]; ++k) {
          const size_t e = incident[k];
          if (used[e]) continue;
          used[e] = 1;
          const Edge& edge = edges[e];
          const size_t j = edge.a == i ? edge.b : edge.a;
          if (j == i)
            throw GraphError(PlateLabel(edge.plate) + ": factor " + std::to_string(edge.factor) +
                             " joins " + ElementName(cluster.variable, i) +
                             " to itself; a cluster must be a tree");
          if (seen[j]) {
            // The cycle: the two tree paths from i and j up to their common ancestor.
            std::vector<size_t> from_i = {i}, from_j = {j};
            while (cluster.parent[from_i.back()] != Cluster::kNoParent)
              from_i.push_back(cluster.parent[from_i.back()]);
            while (cluster.parent[from_j.back()] != Cluster::kNoParent)
              from_j.push_back(cluster.parent[from_j.back()]);
            while (from_i.size() > 1 && from_j.size() > 1 &&
                   from_i[from_i.size() - 2] == from_j[from_j.size() - 2]) {
              from_i.pop_back();
              from_j.pop_back();
            }
            std::string cycle;
            for (size_t x : from_i) cycle += ElementName(cluster.variable, x) + " – ";
            for (size_t k2 = from_j.size() - 1; k2-- > 0;)
              cycle += ElementName(cluster.variable, from_j[k2]) + " – ";
            cycle += ElementName(cluster.variable, i);
            throw GraphError("cluster '" + info.name + "' has a cycle (" + cycle +
                             "); a cluster must be a tree: leave it mean-field, or use loopy "
                             "belief propagation");
          }
          seen[j] = 1;
          cluster.parent[j] = i;
          cluster.edge_plate[j] = edge.plate;
          cluster.edge_factor[j] = edge.factor;
          cluster.child_in_slot_a[j] = edge.a == j;
          cluster.order.push_back(j);
        }
      }
    }
    cluster.child_offsets.assign(size + 1, 0);
    for (size_t i = 0; i < size; ++i)
      if (cluster.parent[i] != Cluster::kNoParent) ++cluster.child_offsets[cluster.parent[i] + 1];
    std::partial_sum(cluster.child_offsets.begin(), cluster.child_offsets.end(),
                     cluster.child_offsets.begin());
    cluster.children.assign(cluster.child_offsets.back(), 0);
    std::vector<size_t> next(cluster.child_offsets.begin(), cluster.child_offsets.end() - 1);
    for (size_t i : cluster.order)
      if (cluster.parent[i] != Cluster::kNoParent) cluster.children[next[cluster.parent[i]]++] = i;
    if (cluster.solver == ClusterSolver::kParallelScan) CheckChain(cluster);
    // Buffers: messages and beliefs in the family's natural layout (K numbers, or h and Λ).
    const size_t stat = static_cast<size_t>(info.stat_size);
    const size_t pair = info.family == Family::kCategorical
                            ? static_cast<size_t>(info.dim) * info.dim
                            : static_cast<size_t>(2 * info.dim) * (2 * info.dim + 1);
    // (The parallel scan of a Gaussian chain keeps its own per-step buffers: it needs no
    // messages of the tree. That of a Categorical chain fills the tree's messages block by
    // block, and keeps only per-block sums of its own.)
    const bool scan = cluster.solver == ClusterSolver::kParallelScan &&
                      info.family != Family::kCategorical;
    for (std::vector<double>* buffer : {&cluster.unary, &cluster.belief, &cluster.belief_moments})
      AssignLarge(*buffer, size * stat, 0.0);
    for (std::vector<double>* buffer :
         {&cluster.below, &cluster.down, &cluster.up, &cluster.cavity, &cluster.unary_log})
      AssignLarge(*buffer, scan ? 0 : size * stat, 0.0);
    if (info.family == Family::kCategorical) {
      for (std::vector<double>* buffer : {&cluster.log_table, &cluster.psi})
        AssignLarge(*buffer, size * pair, 0.0);
      cluster.log_table_of.assign(size, nullptr);
      cluster.psi_of.assign(size, nullptr);
    }
    if (info.family != Family::kCategorical) {
      AssignLarge(cluster.potential, size * pair, 0.0);
      // One potential per (plate, orientation) for the plates whose factors share it.
      cluster.potential_of.assign(size, nullptr);
      cluster.potential_shared.assign(size, 0);
      cluster.shared_first.clear();
      std::vector<std::pair<uint32_t, char>> keys;
      std::vector<size_t> source(size, 0);
      for (size_t i : cluster.order) {
        if (cluster.parent[i] == Cluster::kNoParent) continue;
        cluster.potential_of[i] = cluster.potential.data() + i * pair;
        if (!plates[cluster.edge_plate[i]].node->PairPotentialShared()) continue;
        const std::pair<uint32_t, char> key(cluster.edge_plate[i], cluster.child_in_slot_a[i]);
        auto it = std::find(keys.begin(), keys.end(), key);
        if (it == keys.end()) {
          it = keys.insert(keys.end(), key);
          cluster.shared_first.push_back(i);
        }
        cluster.potential_shared[i] = 1;
        source[i] = static_cast<size_t>(it - keys.begin());
      }
      cluster.shared_potential.assign(keys.size() * pair, 0.0);
      for (size_t i = 0; i < size; ++i)
        if (cluster.potential_shared[i])
          cluster.potential_of[i] = cluster.shared_potential.data() + source[i] * pair;
      const size_t dd = static_cast<size_t>(info.dim) * info.dim;
      AssignLarge(cluster.up_gain, scan ? 0 : size * dd, 0.0);
      AssignLarge(cluster.covariance, scan ? 0 : size * dd, 0.0);
      cluster.up_log_det.assign(scan ? 0 : size, 0.0);
      cluster.belief_log_det.assign(scan ? 0 : size, 0.0);
    }
    cluster.information.assign(size, 0.0);
  }
  mutual_information.assign(num_hidden_elements, 0.0);
}

void FactorGraph::Impl::ResetClusterPairs(Cluster& cluster) {
  const VariableInfo& info = variables[cluster.variable];
  const int d = info.dim;
  const bool discrete = info.family == Family::kCategorical;
  for (size_t i = 0; i < cluster.size; ++i) {
    mutual_information[info.hidden_ordinal + i] = 0.0;
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    Plate& plate = plates[cluster.edge_plate[i]];
    const size_t n = cluster.edge_factor[i];
    const size_t ea = cluster.child_in_slot_a[i] ? i : cluster.parent[i];
    const size_t eb = cluster.child_in_slot_a[i] ? cluster.parent[i] : i;
    const double* ma = moments.data() + info.moment_offset + ea * info.stat_size;
    const double* mb = moments.data() + info.moment_offset + eb * info.stat_size;
    double* joint = plate.pair_moments.data() + n * plate.pair_stat;
    if (discrete) {
      for (int x = 0; x < d; ++x)
        for (int y = 0; y < d; ++y) joint[x * d + y] = ma[x] * mb[y];
    } else {
      MatrixMap(joint, d, d).noalias() = ConstVectorMap(ma, d) * ConstVectorMap(mb, d).transpose();
    }
  }
}

void FactorGraph::Impl::AddOutsideMessages(const Cluster& cluster, size_t element, double* eta,
                                           Scratch& scratch) const {
  const VariableInfo& info = variables[cluster.variable];
  const size_t h = info.hidden_ordinal + element;
  for (size_t k = adjacency_offsets[h]; k < adjacency_offsets[h + 1]; ++k) {
    const AdjacencyEntry& e = adjacency[k];
    const Plate& plate = plates[e.plate];
    const bool pair_slot = static_cast<int>(e.slot) == plate.pair_slot_a ||
                           static_cast<int>(e.slot) == plate.pair_slot_b;
    if (pair_slot && plate.bindings[e.slot].variable == cluster.variable) continue;
    e.node->AccumulateMessage(static_cast<int>(e.slot), e.begin, e.end, e.views, eta,
                              scratch.node);
  }
}

void FactorGraph::Impl::CheckChain(const Cluster& cluster) const {
  const std::string where = "cluster '" + variables[cluster.variable].name +
                            "' (parallel-scan solver, which needs one chain): ";
  for (size_t i = 0; i < cluster.size; ++i) {
    const size_t children = cluster.child_offsets[i + 1] - cluster.child_offsets[i];
    if (children > 1)
      throw GraphError(where + ElementName(cluster.variable, i) + " is joined to " +
                       std::to_string(children + (cluster.parent[i] != Cluster::kNoParent)) +
                       " other elements, so the cluster is a tree that is not a chain; solve "
                       "it with ClusterSolver::kSequential");
  }
  for (size_t k = 1; k < cluster.size; ++k) {
    const size_t i = cluster.order[k];
    if (cluster.parent[i] == Cluster::kNoParent)
      throw GraphError(where + "no factor joins " + ElementName(cluster.variable, i) +
                       " to the chain that starts at " +
                       ElementName(cluster.variable, cluster.order[0]) +
                       ", so the cluster is several separate chains");
  }
}

size_t FactorGraph::Impl::UpdateCluster(Cluster& cluster, Scratch& scratch) {
  const bool categorical = variables[cluster.variable].family == Family::kCategorical;
  if (cluster.solver == ClusterSolver::kParallelScan)
    return categorical ? UpdateCategoricalChainScan(cluster, scratch)
                       : UpdateGaussianChainScan(cluster, scratch);
  return categorical ? UpdateCategoricalCluster(cluster, scratch)
                     : UpdateGaussianCluster(cluster, scratch);
}

}  // namespace vfe
