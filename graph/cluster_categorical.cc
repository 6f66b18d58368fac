// Categorical tree-shaped clusters: scaled forward–backward (sum-product on a chain or tree
// of Categorical elements), pair marginals and the cluster entropy.

#include <algorithm>
#include <cmath>

#include "graph/factor_graph_impl.h"
#include "vfe/core/format.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

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

}  // namespace vfe
