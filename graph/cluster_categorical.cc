// Categorical tree-shaped clusters: scaled forward–backward (sum-product on a chain or tree
// of Categorical elements), pair marginals and the cluster entropy.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "graph/factor_graph_impl.h"
#include "vfe/core/format.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

namespace {

/// The messages of the factors that are not pairs of the cluster, η_i = Σ_a m_{a→i}, of every
/// element at once (`eta`: K numbers per element, zero on entry): one call per plate and slot
/// that reads the cluster, AccumulateMessages for a plate with one factor per element. They
/// are summed in plate order, as AddOutsideMessages sums them element by element. (Every
/// message reads the moments before the update, which nothing changes meanwhile, so that the
/// elements' messages are independent of one another even though the pairs join them.)
void AddEveryOutsideMessage(const std::vector<Plate>& plates, uint32_t variable, size_t stat,
                            double* eta, Workspace& ws) {
  for (const Plate& plate : plates) {
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      const Binding& b = plate.bindings[s];
      const int slot = static_cast<int>(s);
      if (b.variable != variable || slot == plate.pair_slot_a || slot == plate.pair_slot_b)
        continue;
      double* first = eta + b.begin * stat;
      if (b.shared) {
        plate.node->AccumulateMessage(slot, 0, plate.size, plate.views.data(), first, ws);
      } else {
        plate.node->AccumulateMessages(slot, 0, plate.size, plate.views.data(), first, stat, ws);
      }
    }
  }
}

/// A power of two 2^e for a positive finite x, with x·2^−e in [1, 2) unless e is clamped to
/// [−1022, 1022] (so that 2^−e is a normal number), and its inverse 2^−e. Scaling by a power
/// of two is exact, so that ψ·(v 2^−e) and (ψ·v) 2^−e are the same numbers and a scale can be
/// applied after a product.
struct PowerOfTwo {
  explicit PowerOfTwo(double x) {
    uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    exponent = std::min(std::max(static_cast<int>((bits >> 52) & 0x7ff) - 1023, -1022), 1022);
    const uint64_t inverse_bits = static_cast<uint64_t>(1023 - exponent) << 52;
    std::memcpy(&inverse, &inverse_bits, sizeof inverse);
  }
  int exponent = 0;
  double inverse = 1.0;
};

/// The sum-product passes over one Categorical cluster with K categories, K a compile-time
/// constant (the loops unroll and the vectors stay in registers) or 0 for any K
/// (`runtime_k`). Messages are scaled by powers of two only (exact, and off the chain of
/// dependent operations from one element to the next: a scale is applied after the product
/// with ψ that it does not change).
template <int K>
class CategoricalPasses {
 public:
  CategoricalPasses(Cluster& cluster, int runtime_k) : c_(cluster), k_(runtime_k) {}

  /// Sum-product over the cluster: the local evidence, then the upward and downward passes
  /// (interleaved on a chain, whose two recursions are independent), then the beliefs. Adds
  /// log Z to `log_z`; returns the element at fault or SIZE_MAX.
  size_t Run(double& log_z) {
    double tops = 0.0, log_roots = 0.0;
    long exponent = 0;
    size_t failed = Evidence(tops);
    if (failed != SIZE_MAX) return failed;
    const size_t size = c_.size;
    if (size == 0) return SIZE_MAX;
    // A chain: one root, and at most one child per element.
    bool chain = c_.child_offsets[size] + 1 == size;
    for (size_t i = 0; chain && i < size; ++i)
      chain = c_.child_offsets[i + 1] - c_.child_offsets[i] <= 1;
    const int k = K > 0 ? K : k_;
    for (int x = 0; x < k; ++x) c_.down[c_.order[0] * k + x] = 1.0;
    if (chain) {
      // Position r's parent is position r − 1: the upward pass from the end and the downward
      // pass from the start, one step of each per iteration.
      for (size_t r = 0; r < size; ++r) {
        if (!Up(c_.order[size - 1 - r], exponent, log_roots)) return c_.order[size - 1 - r];
        failed = Down(c_.order[r]);
        if (failed != SIZE_MAX) return failed;
      }
    } else {
      for (size_t r = size; r-- > 0;)
        if (!Up(c_.order[r], exponent, log_roots)) return c_.order[r];
      for (size_t i : c_.order) {
        if (c_.parent[i] == Cluster::kNoParent)
          for (int x = 0; x < k; ++x) c_.down[i * k + x] = 1.0;
        failed = Down(i);
        if (failed != SIZE_MAX) return failed;
      }
    }
    failed = Beliefs();
    if (failed != SIZE_MAX) return failed;
    log_z += tops + log_roots + static_cast<double>(exponent) * std::log(2.0);
    return SIZE_MAX;
  }

  /// The pair's joint J(x_c, x_p) = ψ_c below_c(x_c) cavity_c(x_p) / Σ below_c down_c into
  /// `joint` ([x_a][x_b]; the denominator is the sum of the numerators, as down_c = ψ_c·cavity_c),
  /// and Σ J·T over the pairs of positive probability.
  double Joint(size_t i, double* joint) const {
    const size_t k = static_cast<size_t>(K > 0 ? K : k_);
    const double* psi = c_.psi_of[i];
    const double* table = c_.log_table_of[i];
    const double* below = c_.below.data() + i * k;
    const double* down = c_.down.data() + i * k;
    const double* cavity = c_.cavity.data() + i * k;
    double sum = 0.0;
    for (size_t x = 0; x < k; ++x) sum += below[x] * down[x];
    const double inverse = 1.0 / sum;
    return c_.child_in_slot_a[i] ? Joint<true>(psi, table, below, cavity, inverse, joint)
                                 : Joint<false>(psi, table, below, cavity, inverse, joint);
  }

 private:
  /// φ_i = exp(η_i − max η_i) of every element; adds the maxima to `tops`. An element with the
  /// outside messages of the element before it (a repeated observation) copies its φ.
  size_t Evidence(double& tops) {
    const int k = K > 0 ? K : k_;
    const double* last_eta = nullptr;
    const double* last_phi = nullptr;
    double last_top = 0.0;
    for (size_t i = 0; i < c_.size; ++i) {
      const double* eta = c_.unary_log.data() + i * k;
      double* phi = c_.unary.data() + i * k;
      bool repeated = last_eta != nullptr;
      if (repeated)
        for (int x = 0; x < k; ++x) repeated &= eta[x] == last_eta[x];
      if (repeated) {
        for (int x = 0; x < k; ++x) phi[x] = last_phi[x];
      } else {
        double top = -INFINITY;
        bool bad = false;
        for (int x = 0; x < k; ++x) {
          bad |= std::isnan(eta[x]) || eta[x] == INFINITY;
          top = std::max(top, eta[x]);
        }
        if (bad || top == -INFINITY) return i;
        for (int x = 0; x < k; ++x) phi[x] = std::exp(eta[x] - top);
        last_top = top;
      }
      last_eta = eta;
      last_phi = phi;
      tops += last_top;
    }
    return SIZE_MAX;
  }

  /// Upward step at element i (its children done): below_i = φ_i Π_children up_c ·2^−e_i
  /// (summing to [1, 2)) and up_i(x_p) = Σ_{x_i} ψ_i(x_i, x_p) below_i(x_i), so that
  /// Z = exp(Σ maxima) 2^(Σ e_i) Π_roots Σ below_root. False if below_i sums to 0 or ∞.
  bool Up(size_t i, long& exponent, double& log_roots) {
    const int k = K > 0 ? K : k_;
    const double* phi = c_.unary.data() + i * k;
    double* below = c_.below.data() + i * k;
    double local[K > 0 ? K : 1];
    double* v = K > 0 ? local : below;
    for (int x = 0; x < k; ++x) v[x] = phi[x];
    for (size_t o = c_.child_offsets[i]; o < c_.child_offsets[i + 1]; ++o) {
      const double* up = c_.up.data() + c_.children[o] * k;
      for (int x = 0; x < k; ++x) v[x] *= up[x];
    }
    double sum = 0.0;
    for (int x = 0; x < k; ++x) sum += v[x];
    if (!(sum > 0.0) || !std::isfinite(sum)) return false;
    const PowerOfTwo scale(sum);
    exponent += scale.exponent;
    if (c_.parent[i] == Cluster::kNoParent) {
      log_roots += std::log(sum * scale.inverse);
    } else if (c_.child_in_slot_a[i]) {
      Transposed<true>(c_.psi_of[i], v, scale.inverse, c_.up.data() + i * k);
    } else {
      Transposed<false>(c_.psi_of[i], v, scale.inverse, c_.up.data() + i * k);
    }
    for (int x = 0; x < k; ++x) below[x] = v[x] * scale.inverse;
    return true;
  }

  /// Downward step from element i (its down_i known) to each child c: cavity_c = φ_i down_i
  /// Π_{other children} up ·2^−e and down_c(x_c) = Σ_{x_p} ψ_c(x_c, x_p) cavity_c(x_p). Returns
  /// the child at fault or SIZE_MAX.
  size_t Down(size_t i) {
    const int k = K > 0 ? K : k_;
    const size_t first = c_.child_offsets[i], last = c_.child_offsets[i + 1];
    const double* phi = c_.unary.data() + i * k;
    const double* down = c_.down.data() + i * k;
    for (size_t o = first; o < last; ++o) {
      const size_t child = c_.children[o];
      double* cavity = c_.cavity.data() + child * k;
      double local[K > 0 ? K : 1];
      double* v = K > 0 ? local : cavity;
      for (int x = 0; x < k; ++x) v[x] = phi[x] * down[x];
      for (size_t other = first; other < last; ++other) {
        if (other == o) continue;
        const double* up = c_.up.data() + c_.children[other] * k;
        for (int x = 0; x < k; ++x) v[x] *= up[x];
      }
      double total = 0.0;
      for (int x = 0; x < k; ++x) total += v[x];
      if (!(total > 0.0) || !std::isfinite(total)) return child;
      const PowerOfTwo scale(total);
      double* child_down = c_.down.data() + child * k;
      if (c_.child_in_slot_a[child]) {
        Straight<true>(c_.psi_of[child], v, scale.inverse, child_down);
      } else {
        Straight<false>(c_.psi_of[child], v, scale.inverse, child_down);
      }
      for (int x = 0; x < k; ++x) cavity[x] = v[x] * scale.inverse;
    }
    return SIZE_MAX;
  }

  /// belief_i = below_i down_i scaled to one, for every element.
  size_t Beliefs() {
    const int k = K > 0 ? K : k_;
    for (size_t i = 0; i < c_.size; ++i) {
      const double* below = c_.below.data() + i * k;
      const double* down = c_.down.data() + i * k;
      double* belief = c_.belief.data() + i * k;
      double sum = 0.0;
      for (int x = 0; x < k; ++x) {
        belief[x] = below[x] * down[x];
        sum += belief[x];
      }
      if (!(sum > 0.0) || !std::isfinite(sum)) return i;
      const double inverse = 1.0 / sum;
      for (int x = 0; x < k; ++x) belief[x] *= inverse;
    }
    return SIZE_MAX;
  }

  /// ψ(x_c, x_p) at [x_c][x_p] when the child fills slot a, else at [x_p][x_c].
  template <bool kChildInA>
  size_t At(int xc, int xp) const {
    const int k = K > 0 ? K : k_;
    return static_cast<size_t>(kChildInA ? xc * k + xp : xp * k + xc);
  }
  /// out(x_p) = s Σ_{x_c} ψ(x_c, x_p) v(x_c), summed in the order of x_c.
  template <bool kChildInA>
  void Transposed(const double* psi, const double* v, double s, double* out) const {
    const int k = K > 0 ? K : k_;
    double local[K > 0 ? K : 1];
    double* sum = K > 0 ? local : out;
    for (int xp = 0; xp < k; ++xp) sum[xp] = 0.0;
    for (int xc = 0; xc < k; ++xc)
      for (int xp = 0; xp < k; ++xp) sum[xp] += psi[At<kChildInA>(xc, xp)] * v[xc];
    for (int xp = 0; xp < k; ++xp) out[xp] = sum[xp] * s;
  }
  /// out(x_c) = s Σ_{x_p} ψ(x_c, x_p) v(x_p).
  template <bool kChildInA>
  void Straight(const double* psi, const double* v, double s, double* out) const {
    const int k = K > 0 ? K : k_;
    for (int xc = 0; xc < k; ++xc) {
      double sum = 0.0;
      for (int xp = 0; xp < k; ++xp) sum += psi[At<kChildInA>(xc, xp)] * v[xp];
      out[xc] = sum * s;
    }
  }
  template <bool kChildInA>
  double Joint(const double* psi, const double* table, const double* below,
               const double* cavity, double inverse, double* joint) const {
    const int k = K > 0 ? K : k_;
    double expected = 0.0;
    for (int xc = 0; xc < k; ++xc) {
      const double b = below[xc] * inverse;
      for (int xp = 0; xp < k; ++xp) {
        const size_t at = At<kChildInA>(xc, xp);
        const double j = psi[at] * b * cavity[xp];
        joint[at] = j;
        if (j != 0.0) expected += j * table[at];
      }
    }
    return expected;
  }

  Cluster& c_;
  const int k_;
};

/// The update of a Categorical cluster (FactorGraph::Impl::UpdateCategoricalCluster) with K
/// categories, or any K for K = 0. Writes the elements' η and E[x] into `natural` and
/// `moments` (the graph's flat arrays) and the multi-information into `mutual_information`.
template <int K>
size_t SolveCategoricalCluster(Cluster& cluster, const VariableInfo& info,
                               std::vector<Plate>& plates, double* natural, double* moments,
                               double* mutual_information, Workspace& ws) {
  const int k = info.dim;
  const size_t kk = static_cast<size_t>(k) * k;
  // Outside messages η_i of every element.
  std::fill(cluster.unary_log.begin(), cluster.unary_log.end(), 0.0);
  AddEveryOutsideMessage(plates, cluster.variable, static_cast<size_t>(k),
                         cluster.unary_log.data(), ws);
  // Pair potentials: T from the node (once per plate when every factor has the same), and
  // ψ = exp(T − max T); their maxima go into log Z.
  double log_z = 0.0;
  uint32_t shared_plate = UINT32_MAX;
  double shared_top = 0.0;
  const double* shared_table = nullptr;
  const double* shared_psi = nullptr;
  for (size_t r = 1; r < cluster.size; ++r) {
    const size_t i = cluster.order[r];
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    const uint32_t p = cluster.edge_plate[i];
    if (p == shared_plate) {
      cluster.log_table_of[i] = shared_table;
      cluster.psi_of[i] = shared_psi;
      log_z += shared_top;
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
    log_z += top;
    shared_plate = plate.node->PairPotentialShared() ? p : UINT32_MAX;
    shared_top = top;
    shared_table = table;
    shared_psi = psi;
  }
  CategoricalPasses<K> passes(cluster, k);
  const size_t failed = passes.Run(log_z);
  if (failed != SIZE_MAX) return failed;
  // Commit (nothing can fail any more): the marginals (η = log b, E[x] = b), the pairs'
  // joints, and the multi-information Σ H[q_i] − H[q] booked on the first element, with
  // E_q[log-potentials] = Σ_i E[η_i] + Σ_pairs E[T].
  double marginal_entropy = 0.0, expected_log_potentials = 0.0;
  for (size_t i = 0; i < cluster.size; ++i) {
    double* natural_i = natural + info.natural_offset + i * k;
    double* moment_i = moments + info.moment_offset + i * k;
    const double* belief = cluster.belief.data() + i * k;
    const double* eta = cluster.unary_log.data() + i * k;
    for (int x = 0; x < (K > 0 ? K : k); ++x) {
      moment_i[x] = belief[x];
      if (belief[x] > 0.0) {
        natural_i[x] = std::log(belief[x]);
        marginal_entropy -= belief[x] * natural_i[x];
        expected_log_potentials += belief[x] * eta[x];
      } else {
        natural_i[x] = -INFINITY;
      }
    }
    mutual_information[info.hidden_ordinal + i] = 0.0;
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    Plate& plate = plates[cluster.edge_plate[i]];
    expected_log_potentials +=
        passes.Joint(i, plate.pair_moments.data() + cluster.edge_factor[i] * plate.pair_stat);
  }
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
  auto solve = [&](auto solver) {
    return solver(cluster, info, plates, natural.data(), moments.data(),
                  mutual_information.data(), scratch.node);
  };
  switch (info.dim) {
    case 2: return solve(SolveCategoricalCluster<2>);
    case 3: return solve(SolveCategoricalCluster<3>);
    case 4: return solve(SolveCategoricalCluster<4>);
    case 5: return solve(SolveCategoricalCluster<5>);
    case 6: return solve(SolveCategoricalCluster<6>);
    case 7: return solve(SolveCategoricalCluster<7>);
    case 8: return solve(SolveCategoricalCluster<8>);
    default: return solve(SolveCategoricalCluster<0>);
  }
}

}  // namespace vfe
