// Tree-shaped clusters: a joint posterior over the elements of one variable, solved by
// sum-product (forward–backward on a chain; the Kalman filter and RTS smoother in
// information form for Gaussian states), with VMP messages from the rest of the graph.

#include <algorithm>
#include <cmath>
#include <numeric>

#include "graph/factor_graph_impl.h"
#include "vfe/core/format.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

void FactorGraph::AddCluster(const Variable& v) {
  Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(v).id()];
  if (g.finalized) throw GraphError("AddCluster: the graph is already finalised");
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
}

bool FactorGraph::clustered(const Variable& v) const {
  const uint32_t id = impl_->Checked(v).id();
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
      plate.pair_moments.assign(plate.size * plate.pair_stat, 0.0);
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
    // Buffers: messages and beliefs in the family's natural layout (K numbers, or h and Λ).
    const size_t stat = static_cast<size_t>(info.stat_size);
    const size_t pair = info.family == Family::kCategorical
                            ? static_cast<size_t>(info.dim) * info.dim
                            : static_cast<size_t>(2 * info.dim) * (2 * info.dim + 1);
    for (std::vector<double>* buffer :
         {&cluster.unary, &cluster.below, &cluster.down, &cluster.up, &cluster.cavity,
          &cluster.belief, &cluster.belief_moments, &cluster.unary_log})
      buffer->assign(size * stat, 0.0);
    if (info.family == Family::kCategorical) {
      for (std::vector<double>* buffer : {&cluster.log_table, &cluster.psi, &cluster.joint})
        buffer->assign(size * pair, 0.0);
      cluster.log_table_of.assign(size, nullptr);
      cluster.psi_of.assign(size, nullptr);
    }
    if (info.family != Family::kCategorical) cluster.work.Resize(info.dim);
    if (info.family != Family::kCategorical) cluster.potential.assign(size * pair, 0.0);
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

size_t FactorGraph::Impl::UpdateCluster(Cluster& cluster, Scratch& scratch) {
  return variables[cluster.variable].family == Family::kCategorical
             ? UpdateCategoricalCluster(cluster, scratch)
             : UpdateGaussianCluster(cluster, scratch);
}

namespace {

/// Scales `x` (K numbers ≥ 0) to sum to one; false if the sum is 0 or not finite.
bool Normalise(double* x, int k) {
  double sum = 0.0;
  for (int i = 0; i < k; ++i) sum += x[i];
  if (!(sum > 0.0) || !std::isfinite(sum)) return false;
  const double inverse = 1.0 / sum;
  for (int i = 0; i < k; ++i) x[i] *= inverse;
  return true;
}

}  // namespace

// Categorical elements: every message and belief a probability vector scaled to sum to one
// (so that a chain of any length neither underflows nor overflows); potentials exp(T − max T),
// read through strides so that ψ(x_c, x_p) needs no transposed copy. The cluster's entropy
// comes from its partition function Z (the product of the scales, kept as mantissa and
// exponent): H[q] = log Z − Σ_pairs E_q[T] − Σ_i E_q[η_i], no logarithm per pair.
size_t FactorGraph::Impl::UpdateCategoricalCluster(Cluster& cluster, Scratch& scratch) {
  const VariableInfo& info = variables[cluster.variable];
  const int k = info.dim;
  const size_t kk = static_cast<size_t>(k) * k;
  // log Z = Σ (subtracted maxima) + log(Π scales); the product's exponent is taken out as it
  // grows, so that it never underflows.
  double log_z = 0.0, scale_mantissa = 1.0;
  long scale_exponent = 0;
  auto scaled = [&](double* x) {
    double sum = 0.0;
    for (int i = 0; i < k; ++i) sum += x[i];
    if (!(sum > 0.0) || !std::isfinite(sum)) return false;
    const double inverse = 1.0 / sum;
    for (int i = 0; i < k; ++i) x[i] *= inverse;
    int exponent = 0;
    scale_mantissa = std::frexp(scale_mantissa * sum, &exponent);
    scale_exponent += exponent;
    return true;
  };
  // Local evidence φ_i = exp(η_i − max η_i), η_i the sum of the outside messages.
  for (size_t i = 0; i < cluster.size; ++i) {
    double* eta = cluster.unary_log.data() + i * k;
    std::fill_n(eta, k, 0.0);
    AddOutsideMessages(cluster, i, eta, scratch);
    double top = -INFINITY;
    for (int x = 0; x < k; ++x) {
      if (std::isnan(eta[x]) || eta[x] == INFINITY) return i;
      top = std::max(top, eta[x]);
    }
    if (top == -INFINITY) return i;
    log_z += top;
    double* phi = cluster.unary.data() + i * k;
    for (int x = 0; x < k; ++x) phi[x] = std::exp(eta[x] - top);
  }
  // Pair potentials: T from the node (once per plate when every factor has the same), and
  // ψ = exp(T − max T).
  uint32_t shared_plate = UINT32_MAX;
  double shared_top = 0.0;
  const double* shared_table = nullptr;
  const double* shared_psi = nullptr;
  for (size_t r = 1; r < cluster.size; ++r) {
    const size_t i = cluster.order[r];
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    const uint32_t p = cluster.edge_plate[i];
    const Plate& plate = plates[p];
    const bool shared = plate.node->PairPotentialShared();
    if (shared && p == shared_plate) {
      cluster.log_table_of[i] = shared_table;
      cluster.psi_of[i] = shared_psi;
      log_z += shared_top;
      continue;
    }
    double* table = cluster.log_table.data() + i * kk;
    double* psi = cluster.psi.data() + i * kk;
    plate.node->PairPotential(cluster.edge_factor[i], plate.pair_slot_a, plate.pair_slot_b,
                              plate.views.data(), table, scratch.node);
    double top = -INFINITY;
    for (size_t x = 0; x < kk; ++x) {
      if (std::isnan(table[x]) || table[x] == INFINITY) return i;
      top = std::max(top, table[x]);
    }
    if (top == -INFINITY) return i;
    for (size_t x = 0; x < kk; ++x) psi[x] = std::exp(table[x] - top);
    cluster.log_table_of[i] = table;
    cluster.psi_of[i] = psi;
    log_z += top;
    shared_plate = shared ? p : UINT32_MAX;
    shared_top = top;
    shared_table = table;
    shared_psi = psi;
  }
  // ψ(x_c, x_p) = psi[x_c·stride_c + x_p·stride_p]: the table is [x_a][x_b].
  auto strides = [&](size_t i, int& child, int& parent) {
    child = cluster.child_in_slot_a[i] ? k : 1;
    parent = cluster.child_in_slot_a[i] ? 1 : k;
  };
  // Upward: below_i = φ_i Π_children up_c; up_i(x_p) = Σ_{x_i} ψ_i(x_i, x_p) below_i(x_i).
  for (size_t r = cluster.size; r-- > 0;) {
    const size_t i = cluster.order[r];
    double* below = cluster.below.data() + i * k;
    std::copy_n(cluster.unary.data() + i * k, k, below);
    for (size_t c = cluster.child_offsets[i]; c < cluster.child_offsets[i + 1]; ++c) {
      const double* up = cluster.up.data() + cluster.children[c] * k;
      for (int x = 0; x < k; ++x) below[x] *= up[x];
    }
    if (!scaled(below)) return i;
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    const double* psi = cluster.psi_of[i];
    int sc, sp;
    strides(i, sc, sp);
    double* up = cluster.up.data() + i * k;
    std::fill_n(up, k, 0.0);
    for (int xi = 0; xi < k; ++xi) {
      if (below[xi] == 0.0) continue;
      for (int xp = 0; xp < k; ++xp) up[xp] += psi[xi * sc + xp * sp] * below[xi];
    }
    if (!scaled(up)) return i;
  }
  log_z += std::log(scale_mantissa) + static_cast<double>(scale_exponent) * std::log(2.0);
  // Downward: cavity_c = φ_p down_p Π_{other children} up; down_c(x_c) = Σ ψ_c cavity_c.
  for (size_t i : cluster.order) {
    double* down = cluster.down.data() + i * k;
    double* belief = cluster.belief.data() + i * k;
    const double* below = cluster.below.data() + i * k;
    if (cluster.parent[i] == Cluster::kNoParent) {
      std::fill_n(down, k, 1.0);
    } else {
      const double* psi = cluster.psi_of[i];
      int sc, sp;
      strides(i, sc, sp);
      const double* cavity = cluster.cavity.data() + i * k;
      for (int xi = 0; xi < k; ++xi) {
        double sum = 0.0;
        for (int xp = 0; xp < k; ++xp) sum += psi[xi * sc + xp * sp] * cavity[xp];
        down[xi] = sum;
      }
      if (!Normalise(down, k)) return i;
    }
    for (int x = 0; x < k; ++x) belief[x] = below[x] * down[x];
    if (!Normalise(belief, k)) return i;
    for (size_t c = cluster.child_offsets[i]; c < cluster.child_offsets[i + 1]; ++c) {
      const size_t child = cluster.children[c];
      double* cavity = cluster.cavity.data() + child * k;
      const double* phi = cluster.unary.data() + i * k;
      for (int x = 0; x < k; ++x) cavity[x] = phi[x] * down[x];
      for (size_t o = cluster.child_offsets[i]; o < cluster.child_offsets[i + 1]; ++o) {
        if (o == c) continue;
        const double* up = cluster.up.data() + cluster.children[o] * k;
        for (int x = 0; x < k; ++x) cavity[x] *= up[x];
      }
      if (!Normalise(cavity, k)) return child;
    }
  }
  // Pairs: J(x_c, x_p) ∝ ψ_c below_c(x_c) cavity_c(x_p), stored [x_a][x_b]; and the
  // expectations of the log-potentials, for the entropy.
  double expected_log_potentials = 0.0;
  for (size_t i = 0; i < cluster.size; ++i) {
    const double* eta = cluster.unary_log.data() + i * k;
    const double* belief = cluster.belief.data() + i * k;
    for (int x = 0; x < k; ++x)
      if (belief[x] != 0.0) expected_log_potentials += belief[x] * eta[x];
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    const double* psi = cluster.psi_of[i];
    const double* table = cluster.log_table_of[i];
    int sc, sp;
    strides(i, sc, sp);
    const double* below = cluster.below.data() + i * k;
    const double* cavity = cluster.cavity.data() + i * k;
    double* joint = cluster.joint.data() + i * kk;
    double total = 0.0;
    for (int xi = 0; xi < k; ++xi)
      for (int xp = 0; xp < k; ++xp) {
        const size_t at = static_cast<size_t>(xi * sc + xp * sp);
        joint[at] = psi[at] * below[xi] * cavity[xp];
        total += joint[at];
      }
    if (!(total > 0.0) || !std::isfinite(total)) return i;
    const double inverse = 1.0 / total;
    for (size_t x = 0; x < kk; ++x) {
      joint[x] *= inverse;
      if (joint[x] != 0.0) expected_log_potentials += joint[x] * table[x];
    }
  }
  // Commit: the marginals (η = log b, E[x] = b), the pairs' joints, and the multi-information
  // Σ H[q_i] − H[q] booked on the first element.
  double marginal_entropy = 0.0;
  for (size_t i = 0; i < cluster.size; ++i) {
    double* natural_i = natural.data() + info.natural_offset + i * k;
    double* moment_i = moments.data() + info.moment_offset + i * k;
    const double* belief = cluster.belief.data() + i * k;
    for (int x = 0; x < k; ++x) {
      natural_i[x] = belief[x] > 0.0 ? std::log(belief[x]) : -INFINITY;
      moment_i[x] = belief[x];
      if (belief[x] > 0.0) marginal_entropy -= belief[x] * natural_i[x];
    }
    mutual_information[info.hidden_ordinal + i] = 0.0;
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    Plate& plate = plates[cluster.edge_plate[i]];
    std::copy_n(cluster.joint.data() + i * kk, kk,
                plate.pair_moments.data() + cluster.edge_factor[i] * plate.pair_stat);
  }
  mutual_information[info.hidden_ordinal] = marginal_entropy - (log_z - expected_log_potentials);
  return SIZE_MAX;
}

namespace {

/// The marginal of block `keep` (0 or 1) of a Gaussian over z = (x_0, x_1), both of
/// dimension d, given in information form (h, Λ): Λ' = Λ_kk − Λ_ke Λ_ee⁻¹ Λ_ek and
/// h' = h_k − Λ_ke Λ_ee⁻¹ h_e, written as natural parameters (h', −Λ'/2). False when Λ_ee is
/// not positive definite.
bool Marginalise(const Vector& h, const Matrix& lambda, int d, int keep, double* out,
                 GaussianClusterWork& work) {
  const int k0 = keep * d, e0 = (1 - keep) * d;
  work.llt.compute(lambda.block(e0, e0, d, d));
  if (work.llt.info() != Eigen::Success) return false;
  work.solved = lambda.block(e0, k0, d, d);  // Λ_ee⁻¹ Λ_ek
  work.llt.solveInPlace(work.solved);
  VectorMap(out, d) = h.segment(k0, d);
  VectorMap(out, d).noalias() -= work.solved.transpose() * h.segment(e0, d);
  MatrixMap eta2(out + d, d, d);
  eta2 = -0.5 * lambda.block(k0, k0, d, d);
  eta2.noalias() += 0.5 * lambda.block(k0, e0, d, d) * work.solved;
  return eta2.allFinite() && VectorMap(out, d).allFinite();
}

/// Loads the joint potential ψ (natural parameters over (x_c, x_p)) plus the natural
/// parameters `first` on x_c and `second` on x_p (either may be null) into (h, Λ).
void LoadJoint(const double* psi, const double* first, const double* second, int d,
               GaussianClusterWork& work) {
  const int d2 = 2 * d;
  work.h = ConstVectorMap(psi, d2);
  work.lambda = -2.0 * ConstMatrixMap(psi + d2, d2, d2);
  if (first) {
    work.h.head(d) += ConstVectorMap(first, d);
    work.lambda.topLeftCorner(d, d) -= 2.0 * ConstMatrixMap(first + d, d, d);
  }
  if (second) {
    work.h.tail(d) += ConstVectorMap(second, d);
    work.lambda.bottomRightCorner(d, d) -= 2.0 * ConstMatrixMap(second + d, d, d);
  }
}

}  // namespace

// Gaussian elements: messages and beliefs in natural parameters (h, −Λ/2), the information
// form of the Kalman filter (upward) and RTS smoother (downward). The pair of a child c and
// its parent p is ψ over z = (x_c, x_p).
size_t FactorGraph::Impl::UpdateGaussianCluster(Cluster& cluster, Scratch& scratch) {
  const VariableInfo& info = variables[cluster.variable];
  const int d = info.dim, d2 = 2 * d;
  const size_t stat = static_cast<size_t>(info.stat_size);
  const size_t pair = static_cast<size_t>(d2) * (d2 + 1);
  GaussianClusterWork& work = cluster.work;
  // A plate whose factors share one potential (one matrix and precision) gives it once: the
  // last one computed, and its orientation, are copied to the next pair of the plate.
  const double* shared_psi = nullptr;
  uint32_t shared_plate = UINT32_MAX;
  char shared_orientation = 0;
  for (size_t i = 0; i < cluster.size; ++i) {
    double* unary = cluster.unary.data() + i * stat;
    std::fill_n(unary, stat, 0.0);
    AddOutsideMessages(cluster, i, unary, scratch);
    if (!ConstVectorMap(unary, stat).allFinite()) return i;
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    const Plate& plate = plates[cluster.edge_plate[i]];
    double* psi = cluster.potential.data() + i * pair;
    if (shared_plate == cluster.edge_plate[i] &&
        shared_orientation == cluster.child_in_slot_a[i]) {
      std::copy_n(shared_psi, pair, psi);
      continue;
    }
    plate.node->PairPotential(cluster.edge_factor[i], plate.pair_slot_a, plate.pair_slot_b,
                              plate.views.data(), psi, scratch.node);
    if (!ConstVectorMap(psi, pair).allFinite()) return i;
    if (!cluster.child_in_slot_a[i]) {
      // ψ over (x_p, x_c): swap the blocks to (x_c, x_p).
      VectorMap h(psi, d2);
      MatrixMap eta2(psi + d2, d2, d2);
      work.v = h.head(d);
      h.head(d) = h.tail(d);
      h.tail(d) = work.v;
      work.lambda = eta2;
      eta2.topLeftCorner(d, d) = work.lambda.bottomRightCorner(d, d);
      eta2.bottomRightCorner(d, d) = work.lambda.topLeftCorner(d, d);
      eta2.topRightCorner(d, d) = work.lambda.bottomLeftCorner(d, d);
      eta2.bottomLeftCorner(d, d) = work.lambda.topRightCorner(d, d);
    }
    const bool shared = plate.node->PairPotentialShared();
    shared_plate = shared ? cluster.edge_plate[i] : UINT32_MAX;
    shared_psi = psi;
    shared_orientation = cluster.child_in_slot_a[i];
  }
  // Upward (filter): below_i = unary_i + Σ up_children; up_i = ∫ ψ_i below_i dx_i.
  for (size_t r = cluster.size; r-- > 0;) {
    const size_t i = cluster.order[r];
    double* below = cluster.below.data() + i * stat;
    std::copy_n(cluster.unary.data() + i * stat, stat, below);
    for (size_t c = cluster.child_offsets[i]; c < cluster.child_offsets[i + 1]; ++c) {
      const double* up = cluster.up.data() + cluster.children[c] * stat;
      for (size_t x = 0; x < stat; ++x) below[x] += up[x];
    }
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    LoadJoint(cluster.potential.data() + i * pair, below, nullptr, d, work);
    if (!Marginalise(work.h, work.lambda, d, 1, cluster.up.data() + i * stat, work)) return i;
  }
  // Downward (smoother): cavity_c = unary_p + down_p + Σ other ups; down_c = ∫ ψ_c cavity_c.
  Workspace& ws = WorkspaceFor(info, scratch);
  for (size_t i : cluster.order) {
    double* down = cluster.down.data() + i * stat;
    if (cluster.parent[i] == Cluster::kNoParent) {
      std::fill_n(down, stat, 0.0);
    } else {
      LoadJoint(cluster.potential.data() + i * pair, nullptr, cluster.cavity.data() + i * stat,
                d, work);
      if (!Marginalise(work.h, work.lambda, d, 0, down, work)) return i;
    }
    double* belief = cluster.belief.data() + i * stat;
    const double* below = cluster.below.data() + i * stat;
    for (size_t x = 0; x < stat; ++x) belief[x] = below[x] + down[x];
    if (!MomentsFromNatural(info.family, d, belief, cluster.belief_moments.data() + i * stat, ws))
      return i;
    for (size_t c = cluster.child_offsets[i]; c < cluster.child_offsets[i + 1]; ++c) {
      const size_t child = cluster.children[c];
      double* cavity = cluster.cavity.data() + child * stat;
      const double* unary = cluster.unary.data() + i * stat;
      for (size_t x = 0; x < stat; ++x) cavity[x] = unary[x] + down[x];
      for (size_t o = cluster.child_offsets[i]; o < cluster.child_offsets[i + 1]; ++o) {
        if (o == c) continue;
        const double* up = cluster.up.data() + cluster.children[o] * stat;
        for (size_t x = 0; x < stat; ++x) cavity[x] += up[x];
      }
    }
  }
  // Pairs: the joint over (x_c, x_p) = ψ_c + below_c + cavity_c; its cross moment
  // E[x_c x_pᵀ] = Σ_cp + μ_c μ_pᵀ and I = ½ (log|Σ_cc| + log|Σ_pp| − log|Σ|).
  for (size_t i = 0; i < cluster.size; ++i) {
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    double* psi = cluster.potential.data() + i * pair;
    LoadJoint(psi, cluster.below.data() + i * stat, cluster.cavity.data() + i * stat, d, work);
    work.joint_llt.compute(work.lambda);
    if (work.joint_llt.info() != Eigen::Success) return i;
    double log_det_lambda = 0.0;
    for (int x = 0; x < d2; ++x) log_det_lambda += 2.0 * std::log(work.joint_llt.matrixL()(x, x));
    work.sigma.setIdentity();
    work.joint_llt.solveInPlace(work.sigma);
    work.mean = work.h;
    work.joint_llt.solveInPlace(work.mean);
    work.llt.compute(work.sigma.topLeftCorner(d, d));
    if (work.llt.info() != Eigen::Success) return i;
    double information = 0.5 * log_det_lambda;
    for (int x = 0; x < d; ++x) information += std::log(work.llt.matrixL()(x, x));
    work.llt.compute(work.sigma.bottomRightCorner(d, d));
    if (work.llt.info() != Eigen::Success) return i;
    for (int x = 0; x < d; ++x) information += std::log(work.llt.matrixL()(x, x));
    cluster.information[i] = information;
    // ψ_i is no longer needed: its buffer holds the cross moment E[x_c x_pᵀ] (D x D).
    MatrixMap cross(psi, d, d);
    cross = work.sigma.topRightCorner(d, d);
    cross.noalias() += work.mean.head(d) * work.mean.tail(d).transpose();
  }
  // Commit.
  for (size_t i = 0; i < cluster.size; ++i) {
    std::copy_n(cluster.belief.data() + i * stat, stat,
                natural.data() + info.natural_offset + i * stat);
    std::copy_n(cluster.belief_moments.data() + i * stat, stat,
                moments.data() + info.moment_offset + i * stat);
    mutual_information[info.hidden_ordinal + i] = cluster.information[i];
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    Plate& plate = plates[cluster.edge_plate[i]];
    const ConstMatrixMap cross(cluster.potential.data() + i * pair, d, d);
    MatrixMap out(plate.pair_moments.data() + cluster.edge_factor[i] * plate.pair_stat, d, d);
    if (cluster.child_in_slot_a[i]) {
      out = cross;
    } else {
      out = cross.transpose();
    }
  }
  return SIZE_MAX;
}

}  // namespace vfe
