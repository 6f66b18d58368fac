// Categorical chains by a parallel scan (ClusterSolver::kParallelScan): the forward–backward
// algorithm of a hidden Markov chain with its recursions written as products of K x K
// matrices, which associate (the discrete case of Särkkä and García-Fernández, "Temporal
// parallelization of Bayesian smoothers", IEEE TAC 66(1), 2021).
//
// The chain is x_0 – x_1 – … – x_{T−1} in the order of the cluster's schedule (position r is
// element order[r]; the parent of position r is position r − 1). Position r brings the
// evidence φ_r = exp(η_r − max η_r) (its outside messages) and, for r ≥ 1, the pair potential
// ψ_r(x_r, x_{r−1}). With M_r = diag(φ_r) Ψ_r (Ψ_r[x_r][x_{r−1}] = ψ_r):
//   forward   α_0 = φ_0,   α_r = M_r α_{r−1},          Z = Σ α_{T−1},
//   backward  β_{T−1} = 1, β_{r−1} = M_rᵀ β_r,
// so that the product P = M_{e−1} ⋯ M_s of a run of positions carries both: α_{e−1} = P α_{s−1}
// and β_{s−1} = Pᵀ β_{e−1}. Column j of P is the forward recursion started from x_{s−1} = j;
// each column is scaled to sum to [1, 2) by a power of two after every step and keeps its
// exponent (an integer, exact), so that no column underflows against another however long the
// run, and the scale of Z stays in the log domain (log Z = e log 2 + log Σ v).
//
// Blocks. Positions are cut into blocks of kScanBlock (independent of the number of threads):
//   A  (parallel) the outside messages, evidence and pair potentials of each block, and its
//      product P_b (block 0: the forward vector α itself, started from φ_0);
//   (serial) α at the end of every block, forwards (hence log Z), and β at the end of every
//      block, backwards; each is written into the messages of the tree solver at the block's
//      boundary: the cavity and down messages of the block's first position, the up message
//      of the next block's first position;
//   C  (parallel) the sequential solver's upward and downward steps over each block from
//      those boundary messages, then the beliefs;
//   commit (parallel) the marginals, the pairs' joints and the sums of the cluster's
//      information, per block, then summed in block order.
// Every number is computed by the same operations in the same order whatever the number of
// threads, so the result is the same bit for bit. The products cost K³ per step where the
// forward–backward recursions cost K² (BM_HmmScan in bench/chain_benchmark.cc).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>

#include <tbb/enumerable_thread_specific.h>

#include "graph/cluster_categorical.h"
#include "graph/factor_graph_impl.h"
#include "graph/scan_blocks.h"

namespace vfe {

struct CategoricalScanWork {
  int k = 0;
  size_t size = 0;    ///< positions
  size_t blocks = 0;  ///< ⌈size / kScanBlock⌉
  bool identity = false;  ///< order[r] = r: the elements of a block are its positions
  /// By block: its product P_b (K x K, column-major; block 0: α at its end, one column) and
  /// the exponents of its columns.
  std::vector<double> product;
  std::vector<int64_t> exponent;
  /// By block: the maxima taken out of its evidence and pair potentials (their sum is part
  /// of log Z), and its shares of Σ_i H[q_i] and of the expected log-potentials.
  std::vector<double> tops, entropy, expected;
  std::vector<size_t> failed;  ///< by block: the element at fault, or SIZE_MAX
  std::vector<double> temporary;  ///< K numbers per block, and 3K for the serial scan (any K)
  /// Per-thread scratch for the outside messages (copies of the caller's).
  std::unique_ptr<tbb::enumerable_thread_specific<Scratch>> scratch;
};

void CategoricalScanWorkDeleter::operator()(CategoricalScanWork* work) const { delete work; }

namespace {

/// The scan over one chain with K categories (K = 0: any K).
template <int K>
class CategoricalScan {
 public:
  CategoricalScan(Cluster& cluster, const VariableInfo& info, std::vector<Plate>& plates,
                  CategoricalScanWork& work)
      : c_(cluster),
        info_(info),
        plates_(plates),
        work_(work),
        passes_(cluster, info.dim),
        k_(static_cast<size_t>(info.dim)) {}

  size_t Run(double* natural, double* moments, double* mutual_information) {
    const size_t blocks = work_.blocks;
    std::fill(work_.failed.begin(), work_.failed.end(), SIZE_MAX);
    std::fill(work_.tops.begin(), work_.tops.end(), 0.0);
    // A: outside messages, evidence, pair potentials and each block's product. (When the
    // schedule is not the order of the elements, the evidence of every element first.)
    if (!work_.identity) {
      ForEachBlock(blocks, [&](size_t b) { Evidence(b); });
      if (const size_t f = FirstFailure(work_.failed); f != SIZE_MAX) return f;
    }
    ForEachBlock(blocks, [&](size_t b) {
      if (work_.identity && !Evidence(b)) return;
      Reduce(b);
    });
    if (const size_t f = FirstFailure(work_.failed); f != SIZE_MAX) return f;
    // The boundary messages, and log Z.
    double log_z = 0.0;
    if (const size_t f = Boundaries(log_z); f != SIZE_MAX) return f;
    // C: the tree solver's steps inside every block, then the beliefs.
    ForEachBlock(blocks, [&](size_t b) { Pass(b); });
    if (const size_t f = FirstFailure(work_.failed); f != SIZE_MAX) return f;
    // Commit (nothing can fail any more), and the multi-information Σ H[q_i] − H[q] on the
    // first element, as the sequential solver books it.
    const size_t* order = work_.identity ? nullptr : c_.order.data();
    ForEachBlock(blocks, [&](size_t b) {
      work_.entropy[b] = 0.0;
      work_.expected[b] = 0.0;
      passes_.Commit(info_, plates_, natural, moments, mutual_information, Begin(b), End(b),
                     order, work_.entropy[b], work_.expected[b]);
    });
    double marginal_entropy = 0.0, expected = 0.0;
    for (size_t b = 0; b < blocks; ++b) {
      marginal_entropy += work_.entropy[b];
      expected += work_.expected[b];
    }
    mutual_information[info_.hidden_ordinal] = marginal_entropy - (log_z - expected);
    return SIZE_MAX;
  }

 private:
  size_t Begin(size_t b) const { return b * kScanBlock; }
  size_t End(size_t b) const { return std::min(work_.size, (b + 1) * kScanBlock); }
  double* Product(size_t b) { return work_.product.data() + b * k_ * k_; }
  int64_t* Exponents(size_t b) { return work_.exponent.data() + b * k_; }

  /// The outside messages and evidence of elements [Begin(b), End(b)); false on failure.
  bool Evidence(size_t b) {
    const size_t begin = Begin(b), end = End(b);
    std::fill(c_.unary_log.begin() + static_cast<std::ptrdiff_t>(begin * k_),
              c_.unary_log.begin() + static_cast<std::ptrdiff_t>(end * k_), 0.0);
    AddOutsideMessagesOfElements(plates_, c_.variable, k_, begin, end, c_.unary_log.data(),
                                 work_.scratch->local().node);
    const size_t failed = passes_.Evidence(begin, end, work_.tops[b]);
    if (failed == SIZE_MAX) return true;
    work_.failed[b] = failed;
    return false;
  }

  /// The pair potentials of block b and its product (block 0: α at its end).
  void Reduce(size_t b) {
    const size_t begin = Begin(b), end = End(b);
    if (const size_t failed = ComputePairPotentials(c_, plates_, std::max<size_t>(begin, 1), end,
                                                    work_.scratch->local().node, work_.tops[b]);
        failed != SIZE_MAX) {
      work_.failed[b] = failed;
      return;
    }
    const int k = passes_.k();
    double* columns = Product(b);
    int64_t* exponents = Exponents(b);
    int count = k;
    if (b == 0) {
      const double* phi = c_.unary.data() + c_.order[0] * k_;
      std::copy_n(phi, k_, columns);
      exponents[0] = 0;
      count = 1;
    } else {
      std::fill_n(columns, k_ * k_, 0.0);
      for (int j = 0; j < k; ++j) {
        columns[j * k_ + static_cast<size_t>(j)] = 1.0;
        exponents[j] = 0;
      }
    }
    double* temporary = work_.temporary.data() + b * k_;
    for (size_t r = std::max<size_t>(begin, 1); r < end; ++r) {
      const size_t i = c_.order[r];
      if (c_.child_in_slot_a[i]) {
        Step<true>(i, columns, exponents, count, temporary);
      } else {
        Step<false>(i, columns, exponents, count, temporary);
      }
    }
    // The columns scaled to sum to [1, 2).
    for (int j = 0; j < count; ++j) {
      double* column = columns + static_cast<size_t>(j) * k_;
      double sum = 0.0;
      for (int x = 0; x < k; ++x) sum += column[x];
      if (!(sum > 0.0)) continue;
      const PowerOfTwo scale(sum);
      exponents[j] += scale.exponent;
      for (int x = 0; x < k; ++x) column[x] *= scale.inverse;
    }
  }

  /// Each of `count` columns v ← diag(φ_i) Ψ_i v 2^−e, with 2^e the power of two of Σ v, its
  /// exponent added to the column's (a column that is zero stays zero). The scale, from v,
  /// is applied after the product, which does not wait for it: a column's sum is one step's
  /// growth away from [1, 2), and the block's end scales them to [1, 2).
  template <bool kChildInA>
  void Step(size_t i, double* columns, int64_t* exponents, int count, double* temporary) const {
    const int k = passes_.k();
    const double* phi = c_.unary.data() + i * k_;
    const double* psi = c_.psi_of[i];
    for (int j = 0; j < count; ++j) {
      double* column = columns + static_cast<size_t>(j) * k_;
      double sum = 0.0;
      for (int x = 0; x < k; ++x) sum += column[x];
      double local[K > 0 ? K : 1];
      double* out = K > 0 ? local : temporary;
      passes_.template Straight<kChildInA>(psi, column, 1.0, out);
      if (!(sum > 0.0)) {
        for (int x = 0; x < k; ++x) column[x] = 0.0;
        continue;
      }
      const PowerOfTwo scale(sum);
      exponents[j] += scale.exponent;
      for (int x = 0; x < k; ++x) column[x] = out[x] * (phi[x] * scale.inverse);
    }
  }

  /// Σ_j P[:, j] 2^{E_j} v_j (or, `transposed`, the vector of 2^{E_j} P[:, j]·v) as
  /// out·2^m, with m the largest exponent of a term so that none underflows against it;
  /// out is then scaled to sum to [1, 2) and its exponent added to m. False if it is zero.
  bool Apply(size_t b, const double* v, bool transposed, double* out, int64_t& m) {
    const int k = passes_.k();
    const double* columns = Product(b);
    const int64_t* exponents = Exponents(b);
    double* weight = work_.temporary.data() + work_.blocks * k_;
    // The terms' magnitudes: v_j (forwards) or P[:, j]·v (backwards), and their exponents.
    bool any = false;
    m = 0;
    for (int j = 0; j < k; ++j) {
      const double* column = columns + static_cast<size_t>(j) * k_;
      double magnitude = 0.0;
      if (transposed) {
        for (int x = 0; x < k; ++x) magnitude += column[x] * v[x];
      } else {
        double column_sum = 0.0;
        for (int x = 0; x < k; ++x) column_sum += column[x];
        magnitude = column_sum > 0.0 ? v[j] : 0.0;
      }
      weight[j] = magnitude;
      if (!(magnitude > 0.0)) continue;
      const int64_t e = exponents[j] + PowerOfTwo(magnitude).exponent;
      if (!any || e > m) m = e;
      any = true;
    }
    if (!any) return false;
    for (int j = 0; j < k; ++j)
      weight[j] = weight[j] > 0.0 ? std::ldexp(weight[j], static_cast<int>(exponents[j] - m))
                                  : 0.0;
    if (transposed) {
      for (int j = 0; j < k; ++j) out[j] = weight[j];
    } else {
      for (int x = 0; x < k; ++x) out[x] = 0.0;
      for (int j = 0; j < k; ++j) {
        const double* column = columns + static_cast<size_t>(j) * k_;
        for (int x = 0; x < k; ++x) out[x] += column[x] * weight[j];
      }
    }
    double sum = 0.0;
    for (int x = 0; x < k; ++x) sum += out[x];
    if (!(sum > 0.0) || !std::isfinite(sum)) return false;
    const PowerOfTwo scale(sum);
    for (int x = 0; x < k; ++x) out[x] *= scale.inverse;
    m += scale.exponent;
    return true;
  }

  /// α at the end of every block, forwards: the cavity and down messages of the next block's
  /// first position, and log Z (into `log_z`); then β at the end of every block, backwards:
  /// the up message of the next block's first position. Returns the element at fault or
  /// SIZE_MAX.
  size_t Boundaries(double& log_z) {
    const int k = passes_.k();
    const size_t blocks = work_.blocks;
    double* alpha = work_.temporary.data() + (blocks + 1) * k_;
    double* next = alpha + k_;
    const double* last = Product(0);
    double sum = 0.0;
    for (int x = 0; x < k; ++x) sum += last[x];
    if (!(sum > 0.0)) return c_.order[End(0) - 1];
    const PowerOfTwo start(sum);
    for (int x = 0; x < k; ++x) alpha[x] = last[x] * start.inverse;
    int64_t exponent = Exponents(0)[0] + start.exponent;
    for (size_t b = 1; b < blocks; ++b) {
      const size_t first = c_.order[Begin(b)];
      if (!passes_.Send(first, alpha)) return first;
      int64_t m = 0;
      if (!Apply(b, alpha, /*transposed=*/false, next, m)) return c_.order[End(b) - 1];
      std::copy_n(next, k_, alpha);
      exponent += m;
    }
    double total = 0.0;
    for (int x = 0; x < k; ++x) total += alpha[x];
    double tops = 0.0;
    for (size_t b = 0; b < blocks; ++b) tops += work_.tops[b];
    log_z = tops + std::log(total) + static_cast<double>(exponent) * std::log(2.0);
    // β, backwards from β_{T−1} = 1.
    double* beta = alpha;
    for (int x = 0; x < k; ++x) beta[x] = 1.0;
    for (size_t b = blocks; b-- > 1;) {
      int64_t m = 0;
      if (!Apply(b, beta, /*transposed=*/true, next, m)) return c_.order[Begin(b)];
      std::copy_n(next, k_, beta);
      std::copy_n(beta, k_, c_.up.data() + c_.order[Begin(b)] * k_);
    }
    return SIZE_MAX;
  }

  /// The upward and downward steps over block b from its boundary messages, then its
  /// beliefs.
  void Pass(size_t b) {
    const int k = passes_.k();
    const size_t begin = Begin(b), end = End(b);
    const size_t* order = c_.order.data();
    if (begin == 0)
      for (int x = 0; x < k; ++x) c_.down[order[0] * k_ + static_cast<size_t>(x)] = 1.0;
    long exponent = 0;  // (log Z comes from the forward scan)
    double log_roots = 0.0;
    for (size_t n = 0; n < end - begin; ++n) {
      // Up from the end; the first position's up is the boundary message of block b − 1.
      const size_t r = end - 1 - n;
      if (!passes_.Up(order[r], exponent, log_roots, /*send=*/r != begin)) {
        work_.failed[b] = order[r];
        return;
      }
      // Down from the start; the last position's child is the next block's first position.
      if (begin + n + 1 < end) {
        const size_t failed = passes_.Down(order[begin + n]);
        if (failed != SIZE_MAX) {
          work_.failed[b] = failed;
          return;
        }
      }
    }
    const size_t failed = passes_.Beliefs(begin, end, work_.identity ? nullptr : order);
    if (failed != SIZE_MAX) work_.failed[b] = failed;
  }

  Cluster& c_;
  const VariableInfo& info_;
  std::vector<Plate>& plates_;
  CategoricalScanWork& work_;
  CategoricalPasses<K> passes_;
  const size_t k_;
};

}  // namespace

size_t FactorGraph::Impl::UpdateCategoricalChainScan(Cluster& cluster, Scratch& scratch) {
  const VariableInfo& info = variables[cluster.variable];
  if (cluster.size == 0) return SIZE_MAX;
  if (!cluster.categorical_scan) {
    // First use: the buffers of every later update.
    cluster.categorical_scan.reset(new CategoricalScanWork);
    CategoricalScanWork& work = *cluster.categorical_scan;
    const size_t k = static_cast<size_t>(info.dim);
    work.k = info.dim;
    work.size = cluster.size;
    work.blocks = (cluster.size + kScanBlock - 1) / kScanBlock;
    work.identity = true;
    for (size_t r = 0; r < cluster.size; ++r) work.identity &= cluster.order[r] == r;
    work.product.assign(work.blocks * k * k, 0.0);
    work.exponent.assign(work.blocks * k, 0);
    for (std::vector<double>* sums : {&work.tops, &work.entropy, &work.expected})
      sums->assign(work.blocks, 0.0);
    work.failed.assign(work.blocks, SIZE_MAX);
    work.temporary.assign((work.blocks + 3) * k, 0.0);
    work.scratch = std::make_unique<tbb::enumerable_thread_specific<Scratch>>(scratch);
  }
  CategoricalScanWork& work = *cluster.categorical_scan;
  return WithCategoricalDim(info.dim, [&](auto dim) {
    return CategoricalScan<decltype(dim)::value>(cluster, info, plates, work)
        .Run(natural.data(), moments.data(), mutual_information.data());
  });
}

}  // namespace vfe
