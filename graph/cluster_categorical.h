#ifndef VFE_GRAPH_CLUSTER_CATEGORICAL_H_
#define VFE_GRAPH_CLUSTER_CATEGORICAL_H_

// Pieces shared by the two solvers of Categorical clusters (graph/cluster_categorical.cc, the
// sequential forward–backward over a tree, and graph/cluster_parallel_scan_categorical.cc, the
// parallel scan over a chain): the outside messages and pair potentials of a range of
// elements, the scaled sum-product steps, the beliefs, the pairs' joints and the commit.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "graph/factor_graph_impl.h"

namespace vfe {

/// The messages of the factors that are not pairs of the cluster, η_i = Σ_a m_{a→i}, of
/// elements [begin, end) at once (`eta`: K numbers per element from element 0, those of the
/// range zero on entry): one call per plate and slot that reads the range,
/// AccumulateMessages for a plate with one factor per element. They are summed in plate
/// order, as AddOutsideMessages sums them element by element, and each element's sum is the
/// same whatever the range (AccumulateMessages gives each factor's message bit for bit).
/// (Every message reads the moments before the update, which nothing changes meanwhile, so
/// that the elements' messages are independent of one another even though the pairs join
/// them.)
void AddOutsideMessagesOfElements(const std::vector<Plate>& plates, uint32_t variable,
                                  size_t stat, size_t begin, size_t end, double* eta,
                                  Workspace& ws);

/// The pair potentials of the child elements at positions [first, last) of the cluster's
/// schedule (`order`): T from the node into log_table and ψ = exp(T − max T) into psi, once
/// per run of children of one plate whose factors share their table (the others point to
/// it); adds the maxima to `log_z`. Returns the element at fault (T NaN, +∞ or all −∞) or
/// SIZE_MAX.
size_t ComputePairPotentials(Cluster& cluster, const std::vector<Plate>& plates, size_t first,
                             size_t last, Workspace& ws, double& log_z);

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

/// Calls f(std::integral_constant<int, K>()) with K = k for k = 2..8 (the passes compiled for
/// that K) and K = 0 (any k) otherwise; returns its result.
template <class F>
auto WithCategoricalDim(int k, const F& f) {
  switch (k) {
    case 2: return f(std::integral_constant<int, 2>());
    case 3: return f(std::integral_constant<int, 3>());
    case 4: return f(std::integral_constant<int, 4>());
    case 5: return f(std::integral_constant<int, 5>());
    case 6: return f(std::integral_constant<int, 6>());
    case 7: return f(std::integral_constant<int, 7>());
    case 8: return f(std::integral_constant<int, 8>());
    default: return f(std::integral_constant<int, 0>());
  }
}

/// The sum-product steps over one Categorical cluster with K categories, K a compile-time
/// constant (the loops unroll and the vectors stay in registers) or 0 for any K
/// (`runtime_k`). Messages are scaled by powers of two only (exact, and off the chain of
/// dependent operations from one element to the next: a scale is applied after the product
/// with ψ that it does not change).
///
/// The messages of element i, in the cluster's buffers (K numbers each): φ_i (unary),
/// below_i = φ_i Π_children up_c, up_i(x_p) = Σ_{x_i} ψ_i(x_i, x_p) below_i(x_i) (to the
/// parent), cavity_i = φ_p down_p Π_{siblings} up (from the parent p) and
/// down_i(x_i) = Σ_{x_p} ψ_i(x_i, x_p) cavity_i(x_p), each up to a power of two; the belief is
/// below_i down_i.
template <int K>
class CategoricalPasses {
 public:
  CategoricalPasses(Cluster& cluster, int runtime_k) : c_(cluster), k_(runtime_k) {}

  int k() const { return K > 0 ? K : k_; }

  /// Sum-product over the cluster: the local evidence, then the upward and downward passes
  /// (interleaved on a chain, whose two recursions are independent), then the beliefs. Adds
  /// log Z to `log_z`; returns the element at fault or SIZE_MAX.
  size_t Run(double& log_z) {
    double tops = 0.0, log_roots = 0.0;
    long exponent = 0;
    size_t failed = Evidence(0, c_.size, tops);
    if (failed != SIZE_MAX) return failed;
    const size_t size = c_.size;
    if (size == 0) return SIZE_MAX;
    // A chain: one root, and at most one child per element.
    bool chain = c_.child_offsets[size] + 1 == size;
    for (size_t i = 0; chain && i < size; ++i)
      chain = c_.child_offsets[i + 1] - c_.child_offsets[i] <= 1;
    const int k = this->k();
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
    failed = Beliefs(0, size, nullptr);
    if (failed != SIZE_MAX) return failed;
    log_z += tops + log_roots + static_cast<double>(exponent) * std::log(2.0);
    return SIZE_MAX;
  }

  /// φ_i = exp(η_i − max η_i) of elements [begin, end); adds the maxima to `tops`. An element
  /// with the outside messages of the element before it (a repeated observation) copies its
  /// φ. Returns the element at fault (η NaN, +∞ or all −∞) or SIZE_MAX.
  size_t Evidence(size_t begin, size_t end, double& tops) {
    const int k = this->k();
    const double* last_eta = nullptr;
    const double* last_phi = nullptr;
    double last_top = 0.0, sum = 0.0;  // (a local sum: `tops` may alias the buffers)
    for (size_t i = begin; i < end; ++i) {
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
      sum += last_top;
    }
    tops += sum;
    return SIZE_MAX;
  }

  /// Upward step at element i (its children's up known): below_i = φ_i Π_children up_c ·2^−e_i
  /// (summing to [1, 2)) and, unless `send` is false, up_i(x_p) = Σ_{x_i} ψ_i(x_i, x_p)
  /// below_i(x_i), so that Z = exp(Σ maxima) 2^(Σ e_i) Π_roots Σ below_root. False if below_i
  /// sums to 0 or ∞.
  bool Up(size_t i, long& exponent, double& log_roots, bool send = true) {
    const int k = this->k();
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
    } else if (!send) {
    } else if (c_.child_in_slot_a[i]) {
      Transposed<true>(c_.psi_of[i], v, scale.inverse, c_.up.data() + i * k);
    } else {
      Transposed<false>(c_.psi_of[i], v, scale.inverse, c_.up.data() + i * k);
    }
    for (int x = 0; x < k; ++x) below[x] = v[x] * scale.inverse;
    return true;
  }

  /// Downward step from element i (its down_i known) to each child c: cavity_c = φ_i down_i
  /// Π_{other children} up, then Send. Returns the child at fault or SIZE_MAX.
  size_t Down(size_t i) {
    const int k = this->k();
    const size_t first = c_.child_offsets[i], last = c_.child_offsets[i + 1];
    const double* phi = c_.unary.data() + i * k;
    const double* down = c_.down.data() + i * k;
    for (size_t o = first; o < last; ++o) {
      const size_t child = c_.children[o];
      double local[K > 0 ? K : 1];
      double* v = K > 0 ? local : c_.cavity.data() + child * k;
      for (int x = 0; x < k; ++x) v[x] = phi[x] * down[x];
      for (size_t other = first; other < last; ++other) {
        if (other == o) continue;
        const double* up = c_.up.data() + c_.children[other] * k;
        for (int x = 0; x < k; ++x) v[x] *= up[x];
      }
      if (!Send(child, v)) return child;
    }
    return SIZE_MAX;
  }

  /// The messages into child element c from its parent's side v(x_p) (any positive scale;
  /// `v` may be c's cavity buffer): cavity_c = v·2^−e, summing to [1, 2), and
  /// down_c(x_c) = Σ_{x_p} ψ_c(x_c, x_p) cavity_c(x_p). False if v sums to 0 or ∞.
  bool Send(size_t child, const double* v) {
    const int k = this->k();
    double total = 0.0;
    for (int x = 0; x < k; ++x) total += v[x];
    if (!(total > 0.0) || !std::isfinite(total)) return false;
    const PowerOfTwo scale(total);
    double* child_down = c_.down.data() + child * k;
    if (c_.child_in_slot_a[child]) {
      Straight<true>(c_.psi_of[child], v, scale.inverse, child_down);
    } else {
      Straight<false>(c_.psi_of[child], v, scale.inverse, child_down);
    }
    double* cavity = c_.cavity.data() + child * k;
    for (int x = 0; x < k; ++x) cavity[x] = v[x] * scale.inverse;
    return true;
  }

  /// belief_i = below_i down_i scaled to one, for the elements at positions [first, last) of
  /// `order` (elements [first, last) when `order` is null). Returns the element at fault or
  /// SIZE_MAX.
  size_t Beliefs(size_t first, size_t last, const size_t* order) {
    const int k = this->k();
    for (size_t r = first; r < last; ++r) {
      const size_t i = order ? order[r] : r;
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

  /// The pair's joint J(x_c, x_p) = ψ_c below_c(x_c) cavity_c(x_p) / Σ below_c down_c into
  /// `joint` ([x_a][x_b]; the denominator is the sum of the numerators, as down_c = ψ_c·cavity_c),
  /// and Σ J·T over the pairs of positive probability.
  double Joint(size_t i, double* joint) const {
    const size_t k = static_cast<size_t>(this->k());
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

  /// Commits the elements at positions [first, last) of `order` (elements [first, last) when
  /// `order` is null), after their beliefs and messages: η = log b and E[x] = b into the
  /// graph's `natural` and `moments`, the pairs' joints into their plates, 0 into
  /// `mutual_information`. Adds Σ_i H[q_i] to `marginal_entropy` and Σ_i E[η_i] +
  /// Σ_pairs E[T] (the expected log-potentials) to `expected`.
  void Commit(const VariableInfo& info, std::vector<Plate>& plates, double* natural,
              double* moments, double* mutual_information, size_t first, size_t last,
              const size_t* order, double& marginal_entropy, double& expected) const {
    const int k = this->k();
    double entropy_sum = 0.0, expected_sum = 0.0;  // (local sums: no aliasing with the writes)
    for (size_t r = first; r < last; ++r) {
      const size_t i = order ? order[r] : r;
      double* natural_i = natural + info.natural_offset + i * k;
      double* moment_i = moments + info.moment_offset + i * k;
      const double* belief = c_.belief.data() + i * k;
      const double* eta = c_.unary_log.data() + i * k;
      for (int x = 0; x < k; ++x) {
        moment_i[x] = belief[x];
        if (belief[x] > 0.0) {
          natural_i[x] = std::log(belief[x]);
          entropy_sum -= belief[x] * natural_i[x];
          expected_sum += belief[x] * eta[x];
        } else {
          natural_i[x] = -INFINITY;
        }
      }
      mutual_information[info.hidden_ordinal + i] = 0.0;
      if (c_.parent[i] == Cluster::kNoParent) continue;
      Plate& plate = plates[c_.edge_plate[i]];
      expected_sum += Joint(i, plate.pair_moments.data() + c_.edge_factor[i] * plate.pair_stat);
    }
    marginal_entropy += entropy_sum;
    expected += expected_sum;
  }

  /// ψ(x_c, x_p) at [x_c][x_p] when the child fills slot a, else at [x_p][x_c].
  template <bool kChildInA>
  size_t At(int xc, int xp) const {
    const int k = this->k();
    return static_cast<size_t>(kChildInA ? xc * k + xp : xp * k + xc);
  }
  /// out(x_p) = s Σ_{x_c} ψ(x_c, x_p) v(x_c), summed in the order of x_c.
  template <bool kChildInA>
  void Transposed(const double* psi, const double* v, double s, double* out) const {
    const int k = this->k();
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
    const int k = this->k();
    for (int xc = 0; xc < k; ++xc) {
      double sum = 0.0;
      for (int xp = 0; xp < k; ++xp) sum += psi[At<kChildInA>(xc, xp)] * v[xp];
      out[xc] = sum * s;
    }
  }

 private:
  template <bool kChildInA>
  double Joint(const double* psi, const double* table, const double* below,
               const double* cavity, double inverse, double* joint) const {
    const int k = this->k();
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

}  // namespace vfe

#endif  // VFE_GRAPH_CLUSTER_CATEGORICAL_H_
