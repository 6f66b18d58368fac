// Gaussian chains by the parallel-in-time smoother (ClusterSolver::kParallelScan): Särkkä and
// García-Fernández, "Temporal parallelization of Bayesian smoothers", IEEE TAC 66(1), 2021,
// in information form.
//
// The chain is x_0 – x_1 – … – x_{T−1} in the order of the cluster's schedule (position k is
// element order[k]; the parent of position k is position k − 1). Step k ≥ 1 brings
// φ_k(x_k, x_{k−1}) = ψ_k(x_k, x_{k−1}) · u_k(x_k): the pair potential and the outside messages
// of x_k; position 0 brings u_0.
//
// Filtering. The element of a run of steps s..e is their product integrated over
// x_s … x_{e−1}: a Gaussian potential over its two end states (x_{s−1}, x_e), stored as
// (h_u, h_v, Λ_uu, Λ_uv, Λ_vv). It is the paper's (A, b, C, η, J) in information form:
// C = Λ_vv⁻¹, A = −C Λ_vu, b = C h_v, J = Λ_uu − Λ_uv C Λ_vu, η = h_u − Λ_uv C h_v. Two adjacent
// elements combine by integrating out the state they share (associative, as marginalisation
// is): with K = Λ¹_vv + Λ²_uu,
//   Λ_uu = Λ¹_uu − Λ¹_uv K⁻¹ Λ¹_vu,  Λ_uv = −Λ¹_uv K⁻¹ Λ²_uv,  Λ_vv = Λ²_vv − Λ²_vu K⁻¹ Λ²_uv,
//   h_u = h¹_u − Λ¹_uv K⁻¹ (h¹_v + h²_u),  h_v = h²_v − Λ²_vu K⁻¹ (h¹_v + h²_u).
// The prefix from position 0 has no x_u: it is the filtered density of x_e in information form
// (h_f, Λ_f). One filter step (the prefix times φ_k) also gives the smoothing element of step k:
// with K_k = Λ_f,k−1 + Λ^ψ_pp, p(x_{k−1} | x_k, y_0..k−1) = N(E_k x_k + g_k, L_k),
//   L_k = K_k⁻¹,  E_k = −K_k⁻¹ Λ^ψ_pc,  g_k = K_k⁻¹ (h_f,k−1 + h^ψ_p).
//
// Smoothing. The elements (E, g, L) compose as (E₁, g₁, L₁) ∘ (E₂, g₂, L₂) =
// (E₁E₂, E₁g₂ + g₁, E₁L₂E₁ᵀ + L₁) (the paper's smoothing operator), and the smoothed
// density follows backwards: m_{k−1} = E_k m_k + g_k, P_{k−1} = E_k P_k E_kᵀ + L_k, with
// Cov(x_k, x_{k−1}) = P_k E_kᵀ and I(x_k; x_{k−1}) = ½ (log|P_{k−1}| − log|L_k|).
//
// Blocks. Positions are cut into blocks of kScanBlock, and blocks into chunks of
// kScanChunkBlocks (both independent of the number of threads). Forwards, chunk by chunk:
//   A  (parallel) outside messages and pair potentials of each block; the chunk's first block
//      runs the filter steps from the filtered density before it, every other block reduces
//      its steps to one filtering element;
//   (serial) the filtered density at the end of every block of the chunk from those elements;
//   B  (parallel) the filter steps of the chunk's other blocks from the filtered density
//      before each.
// Backwards, chunk by chunk from the last:
//   (parallel) each block's smoothing elements composed into one;
//   (serial) the smoothed density at the end of every block of the chunk;
//   C  (parallel) the smoothed densities, pairs and mutual information of each block.
// Then the commit (parallel), only when every block succeeded. Chunks keep what one pass
// writes in the cache for the next: over the whole of a long chain, every pass would stream
// its buffers from memory, and two threads would wait on it rather than compute.
// Every number is computed by the same operations in the same order whatever the number of
// threads, so the result is the same bit for bit.

#include <algorithm>
#include <cmath>
#include <memory>

#include <tbb/enumerable_thread_specific.h>

#include "graph/cluster_gaussian.h"
#include "graph/factor_graph_impl.h"
#include "graph/large_buffer.h"
#include "graph/scan_blocks.h"

namespace vfe {

struct ChainScanWork {
  int dim = 0;
  size_t size = 0;    ///< positions
  size_t blocks = 0;  ///< ⌈size / kScanBlock⌉
  size_t slot = 0;    ///< numbers per smoothing element: E, g, L, log|K|
  /// By position k ≥ 1: the smoothing element of step k.
  std::vector<double> smoothing;
  /// By block: its filtering element (blocks ≥ 1), the filtered density at its end, its
  /// smoothing elements composed, and the smoothed density at its end.
  std::vector<double> segment, filtered, composed, smoothed;
  std::vector<size_t> failed;  ///< by block: the element at fault, or SIZE_MAX
  std::vector<const double*> psi;  ///< by position k ≥ 1: ψ_k over (x_k, x_{k−1})
  /// Per-thread scratch for the outside messages (copies of the caller's).
  std::unique_ptr<tbb::enumerable_thread_specific<Scratch>> scratch;
};

void ChainScanWorkDeleter::operator()(ChainScanWork* work) const { delete work; }

namespace {

/// The kernels of one dimension: N fixed (MaxN = N) or Eigen::Dynamic, with MaxN bounding the
/// size of the temporaries (Eigen::Dynamic: any size, allocated once per block and pass).
template <int N, int MaxN>
class ChainKernel {
 public:
  using Vec = Eigen::Matrix<double, N, 1, Eigen::ColMajor, MaxN, 1>;
  using Mat = Eigen::Matrix<double, N, N, Eigen::ColMajor, MaxN, MaxN>;
  using ConstVec = Eigen::Map<const Eigen::Matrix<double, N, 1>>;
  using ConstMat = Eigen::Map<const Eigen::Matrix<double, N, N>>;
  using ConstBlock = Eigen::Map<const Eigen::Matrix<double, N, N>, 0, Eigen::OuterStride<>>;
  using OutVec = Eigen::Map<Eigen::Matrix<double, N, 1>>;
  using OutMat = Eigen::Map<Eigen::Matrix<double, N, N>>;

  /// A pair potential over (x_c, x_p): h and the blocks of η₂ = −Λ/2.
  struct Potential {
    ConstVec hc, hp;
    ConstBlock cc, cp, pc, pp;
  };
  /// The outside messages of one element: h and η₂ = −Λ/2.
  struct Unary {
    ConstVec h;
    ConstMat eta2;
  };
  /// The potential of a run of steps over (x_u, x_v).
  struct Segment {
    Vec hu, hv;
    Mat uu, uv, vv;
  };

  explicit ChainKernel(int d) : d_(d), dd_(static_cast<size_t>(d) * d) {
    for (Mat* m : {&k_, &x1_, &x2_, &t1_, &t2_}) m->resize(d, d);
    y_.resize(d);
    llt_.compute(Mat::Identity(d, d));
  }
  int d() const { return d_; }
  Mat NewMat() const { return Mat::Zero(d_, d_); }
  Vec NewVec() const { return Vec::Zero(d_); }

  Potential ViewPotential(const double* psi) const {
    const Eigen::Index d2 = 2 * d_;
    const double* eta2 = psi + d2;
    const Eigen::OuterStride<> stride(d2);
    return {ConstVec(psi, d_),
            ConstVec(psi + d_, d_),
            ConstBlock(eta2, d_, d_, stride),
            ConstBlock(eta2 + d_ * d2, d_, d_, stride),
            ConstBlock(eta2 + d_, d_, d_, stride),
            ConstBlock(eta2 + d_ * d2 + d_, d_, d_, stride)};
  }
  Unary ViewUnary(const double* u) const { return {ConstVec(u, d_), ConstMat(u + d_, d_, d_)}; }

  /// log|M| from the factor in llt_.
  double LogDet() const {
    double log_det = 0.0;
    for (int i = 0; i < d_; ++i) log_det += 2.0 * std::log(llt_.matrixLLT()(i, i));
    return log_det;
  }

  /// The filtered density of the first position: its outside messages.
  void Start(const double* unary, Vec& hf, Mat& lf) const {
    const Unary u = ViewUnary(unary);
    hf = u.h;
    lf = -2.0 * u.eta2;
  }

  /// One filter step: (h_f, Λ_f) of x_{k−1} to that of x_k, and the smoothing element of step
  /// k into `slot` (E, g, L, log|K|). False when K or the result is not usable.
  bool Step(const double* psi, const double* unary, Vec& hf, Mat& lf, double* slot) {
    const Potential p = ViewPotential(psi);
    const Unary u = ViewUnary(unary);
    k_ = lf - 2.0 * p.pp;
    llt_.compute(k_);
    if (llt_.info() != Eigen::Success) return false;
    OutMat e(slot, d_, d_);
    OutVec g(slot + dd_, d_);
    OutMat l(slot + dd_ + d_, d_, d_);
    e = 2.0 * p.pc;  // −Λ^ψ_pc
    CholeskySolveInPlace(llt_.matrixLLT(), e);
    g = hf + p.hp;
    CholeskySolveInPlace(llt_.matrixLLT(), g);
    l.setIdentity();
    CholeskySolveInPlace(llt_.matrixLLT(), l);
    slot[2 * dd_ + d_] = LogDet();
    // Λ_f,k = Λ^u + Λ^ψ_cc + Λ^ψ_cp E,  h_f,k = h^u + h^ψ_c − Λ^ψ_cp g.
    lf = -2.0 * (u.eta2 + p.cc);
    lf.noalias() -= 2.0 * p.cp * e;
    hf = u.h + p.hc;
    hf.noalias() += 2.0 * p.cp * g;
    return lf.allFinite() && hf.allFinite();
  }

  /// The filtering element of the first step of a block: φ_k over (x_{k−1}, x_k).
  void SegmentStart(const double* psi, const double* unary, Segment& s) const {
    const Potential p = ViewPotential(psi);
    const Unary u = ViewUnary(unary);
    s.hu = p.hp;
    s.hv = u.h + p.hc;
    s.uu = -2.0 * p.pp;
    s.uv = -2.0 * p.pc;
    s.vv = -2.0 * (u.eta2 + p.cc);
  }

  /// s ⊗ φ_k: integrates out x_v = x_{k−1}.
  bool SegmentStep(const double* psi, const double* unary, Segment& s) {
    const Potential p = ViewPotential(psi);
    const Unary u = ViewUnary(unary);
    k_ = s.vv - 2.0 * p.pp;
    llt_.compute(k_);
    if (llt_.info() != Eigen::Success) return false;
    x1_ = s.uv.transpose();
    CholeskySolveInPlace(llt_.matrixLLT(), x1_);  // K⁻¹ Λ_vu
    x2_ = 2.0 * p.pc;
    CholeskySolveInPlace(llt_.matrixLLT(), x2_);  // −K⁻¹ Λ^ψ_pc
    y_ = s.hv + p.hp;
    CholeskySolveInPlace(llt_.matrixLLT(), y_);
    s.uu.noalias() -= s.uv * x1_;
    s.hu.noalias() -= s.uv * y_;
    t1_.noalias() = s.uv * x2_;
    s.uv = t1_;
    s.vv = -2.0 * (u.eta2 + p.cc);
    s.vv.noalias() -= 2.0 * p.cp * x2_;
    s.hv = u.h + p.hc;
    s.hv.noalias() += 2.0 * p.cp * y_;
    return s.uu.allFinite() && s.uv.allFinite() && s.vv.allFinite() && s.hu.allFinite() &&
           s.hv.allFinite();
  }

  /// The filtered density at x_u times a block's element: the filtered density at its x_v.
  bool Carry(const Segment& s, Vec& hf, Mat& lf) {
    k_ = lf + s.uu;
    llt_.compute(k_);
    if (llt_.info() != Eigen::Success) return false;
    x1_ = s.uv;
    CholeskySolveInPlace(llt_.matrixLLT(), x1_);
    y_ = hf + s.hu;
    CholeskySolveInPlace(llt_.matrixLLT(), y_);
    lf = s.vv;
    lf.noalias() -= s.uv.transpose() * x1_;
    hf = s.hv;
    hf.noalias() -= s.uv.transpose() * y_;
    return lf.allFinite() && hf.allFinite();
  }

  /// The smoothed density of the last position from its filtered one.
  bool Finish(const Vec& hf, const Mat& lf, Vec& m, Mat& p) {
    llt_.compute(lf);
    if (llt_.info() != Eigen::Success) return false;
    p.setIdentity();
    CholeskySolveInPlace(llt_.matrixLLT(), p);
    m = hf;
    CholeskySolveInPlace(llt_.matrixLLT(), m);
    return true;
  }

  /// (E, g, L) ← slot ∘ (E, g, L).
  void Compose(const double* slot, Mat& e, Vec& g, Mat& l) {
    const ConstMat ek(slot, d_, d_);
    const ConstVec gk(slot + dd_, d_);
    const ConstMat lk(slot + dd_ + d_, d_, d_);
    t1_.noalias() = ek * l;
    l = lk;
    l.noalias() += t1_ * ek.transpose();
    y_ = gk;
    y_.noalias() += ek * g;
    g = y_;
    t1_.noalias() = ek * e;
    e = t1_;
  }

  /// (m, P) of x_k to that of x_{k−1} through the element (E, g, L) at `element`:
  /// m ← E m + g, P ← E P Eᵀ + L.
  void Back(const double* element, Vec& m, Mat& p) {
    const ConstMat e(element, d_, d_);
    const ConstVec g(element + dd_, d_);
    const ConstMat l(element + dd_ + d_, d_, d_);
    t1_.noalias() = e * p;
    p = l;
    p.noalias() += t1_ * e.transpose();
    y_ = g;
    y_.noalias() += e * m;
    m = y_;
  }

  /// log|P|; false when P is not positive definite.
  bool LogDetOf(const Mat& p, double* log_det) {
    llt_.compute(p);
    if (llt_.info() != Eigen::Success) return false;
    *log_det = LogDet();
    return true;
  }

  /// Writes the belief of a position from its smoothed (m, P): natural parameters (P⁻¹ m,
  /// −P⁻¹/2) and moments (m, P + m mᵀ); log|P| in `log_det`. False when P is not positive
  /// definite.
  bool Belief(const Vec& m, const Mat& p, double* natural, double* moments, double* log_det) {
    llt_.compute(p);
    if (llt_.info() != Eigen::Success) return false;
    *log_det = LogDet();
    t2_.setIdentity();
    CholeskySolveInPlace(llt_.matrixLLT(), t2_);  // Λ = P⁻¹
    OutVec h(natural, d_);
    h.noalias() = t2_ * m;
    OutMat(natural + d_, d_, d_) = -0.5 * t2_;
    OutVec(moments, d_) = m;
    OutMat second(moments + d_, d_, d_);
    second = p;
    second.noalias() += m * m.transpose();
    return h.allFinite() && t2_.allFinite();
  }

 private:
  int d_;
  size_t dd_;
  Mat k_, x1_, x2_, t1_, t2_;
  Vec y_;
  Eigen::LLT<Mat> llt_;
};

}  // namespace

// ---- The update ------------------------------------------------------------------------------

size_t FactorGraph::Impl::UpdateGaussianChainScan(Cluster& cluster, Scratch& scratch) {
  const VariableInfo& info = variables[cluster.variable];
  const int d = info.dim;
  if (!cluster.scan) {
    // First use: the buffers of every later update.
    cluster.scan.reset(new ChainScanWork);
    ChainScanWork& work = *cluster.scan;
    work.dim = d;
    work.size = cluster.size;
    work.blocks = (cluster.size + kScanBlock - 1) / kScanBlock;
    work.slot = 2 * static_cast<size_t>(d) * d + d + 1;
    const size_t dd = static_cast<size_t>(d) * d;
    AssignLarge(work.smoothing, work.size * work.slot, 0.0);
    work.segment.assign(work.blocks * (2 * d + 3 * dd), 0.0);
    work.filtered.assign(work.blocks * (d + dd), 0.0);
    work.composed.assign(work.blocks * (d + 2 * dd), 0.0);
    work.smoothed.assign(work.blocks * (d + dd), 0.0);
    work.failed.assign(work.blocks, SIZE_MAX);
    work.psi.assign(work.size, nullptr);
    for (size_t k = 1; k < work.size; ++k) work.psi[k] = cluster.potential_of[cluster.order[k]];
    work.scratch = std::make_unique<tbb::enumerable_thread_specific<Scratch>>(scratch);
  }
  ChainScanWork& work = *cluster.scan;
  // The shared potentials, once per update (the expectations they read may have changed).
  if (const size_t failed = ComputeSharedPotentials(cluster, scratch); failed != SIZE_MAX)
    return failed;
  switch (d) {
    case 1: return RunChainScan<1, 1>(cluster, work);
    case 2: return RunChainScan<2, 2>(cluster, work);
    case 3: return RunChainScan<3, 3>(cluster, work);
    case 4: return RunChainScan<4, 4>(cluster, work);
    default:
      return d <= 16 ? RunChainScan<Eigen::Dynamic, 16>(cluster, work)
                     : RunChainScan<Eigen::Dynamic, Eigen::Dynamic>(cluster, work);
  }
}

template <int N, int MaxN>
size_t FactorGraph::Impl::RunChainScan(Cluster& cluster, ChainScanWork& work) {
  Impl& g = *this;
  using Kernel = ChainKernel<N, MaxN>;
  using Vec = typename Kernel::Vec;
  using Mat = typename Kernel::Mat;
  const VariableInfo& info = g.variables[cluster.variable];
  const int d = info.dim;
  const size_t dd = static_cast<size_t>(d) * d;
  const size_t stat = static_cast<size_t>(info.stat_size);
  const size_t pair = GaussianPairSize(d);
  const size_t size = work.size, blocks = work.blocks;
  const size_t* order = cluster.order.data();
  auto block_begin = [](size_t b) { return b * kScanBlock; };
  auto block_end = [size](size_t b) { return std::min(size, (b + 1) * kScanBlock); };
  // Block storage.
  auto segment_of = [&](size_t b) { return work.segment.data() + b * (2 * d + 3 * dd); };
  auto filtered_of = [&](size_t b) { return work.filtered.data() + b * (d + dd); };
  auto composed_of = [&](size_t b) { return work.composed.data() + b * (d + 2 * dd); };
  auto smoothed_of = [&](size_t b) { return work.smoothed.data() + b * (d + dd); };
  auto slot_of = [&](size_t k) { return work.smoothing.data() + k * work.slot; };
  auto unary_of = [&](size_t k) { return cluster.unary.data() + order[k] * stat; };
  auto load = [d](const double* from, Vec& v, Mat& m) {
    v = Eigen::Map<const Eigen::Matrix<double, N, 1>>(from, d);
    m = Eigen::Map<const Eigen::Matrix<double, N, N>>(from + d, d, d);
  };
  auto store = [d](const Vec& v, const Mat& m, double* to) {
    Eigen::Map<Eigen::Matrix<double, N, 1>>(to, d) = v;
    Eigen::Map<Eigen::Matrix<double, N, N>>(to + d, d, d) = m;
  };
  auto load_segment = [d, dd](const double* in, typename Kernel::Segment& s) {
    s.hu = Eigen::Map<const Eigen::Matrix<double, N, 1>>(in, d);
    s.hv = Eigen::Map<const Eigen::Matrix<double, N, 1>>(in + d, d);
    s.uu = Eigen::Map<const Eigen::Matrix<double, N, N>>(in + 2 * d, d, d);
    s.uv = Eigen::Map<const Eigen::Matrix<double, N, N>>(in + 2 * d + dd, d, d);
    s.vv = Eigen::Map<const Eigen::Matrix<double, N, N>>(in + 2 * d + 2 * dd, d, d);
  };
  auto store_segment = [d, dd](const typename Kernel::Segment& s, double* out) {
    Eigen::Map<Eigen::Matrix<double, N, 1>>(out, d) = s.hu;
    Eigen::Map<Eigen::Matrix<double, N, 1>>(out + d, d) = s.hv;
    Eigen::Map<Eigen::Matrix<double, N, N>>(out + 2 * d, d, d) = s.uu;
    Eigen::Map<Eigen::Matrix<double, N, N>>(out + 2 * d + dd, d, d) = s.uv;
    Eigen::Map<Eigen::Matrix<double, N, N>>(out + 2 * d + 2 * dd, d, d) = s.vv;
  };
  auto new_segment = [](const Kernel& kernel) {
    return typename Kernel::Segment{kernel.NewVec(), kernel.NewVec(), kernel.NewMat(),
                                    kernel.NewMat(), kernel.NewMat()};
  };
  // The filter steps of block b from the filtered density before it (block 0: from its first
  // position), writing the smoothing elements; with `keep_end`, the filtered density at its
  // end into filtered_of(b) (which the next block may be reading otherwise).
  auto filter_block = [&](Kernel& kernel, size_t b, bool keep_end) {
    const size_t begin = block_begin(b), end = block_end(b);
    Vec hf = kernel.NewVec();
    Mat lf = kernel.NewMat();
    size_t k = begin;
    if (b == 0) {
      kernel.Start(unary_of(0), hf, lf);
      k = 1;
    } else {
      load(filtered_of(b - 1), hf, lf);
    }
    for (; k < end; ++k) {
      if (!kernel.Step(work.psi[k], unary_of(k), hf, lf, slot_of(k))) {
        work.failed[b] = order[k];
        return;
      }
    }
    if (keep_end) store(hf, lf, filtered_of(b));
  };
  std::fill(work.failed.begin(), work.failed.end(), SIZE_MAX);
  const size_t chunks = (blocks + kScanChunkBlocks - 1) / kScanChunkBlocks;
  auto chunk_first = [](size_t c) { return c * kScanChunkBlocks; };
  auto chunk_last = [blocks](size_t c) { return std::min(blocks, (c + 1) * kScanChunkBlocks); };

  // Forwards, chunk by chunk.
  for (size_t c = 0; c < chunks; ++c) {
    const size_t first = chunk_first(c), last = chunk_last(c);
    // A: outside messages and pair potentials; the filter over the chunk's first block (the
    // filtered density before it is known), a filtering element for every other block.
    ForEachBlock(first, last, [&](size_t b) {
      Scratch& local = work.scratch->local();
      const size_t begin = block_begin(b), end = block_end(b);
      for (size_t k = begin; k < end; ++k) {
        const size_t i = order[k];
        double* unary = cluster.unary.data() + i * stat;
        std::fill_n(unary, stat, 0.0);
        g.AddOutsideMessages(cluster, i, unary, local);
        if (!ConstVectorMap(unary, stat).allFinite()) {
          work.failed[b] = i;
          return;
        }
        if (k == 0 || cluster.potential_shared[i]) continue;
        if (!g.ComputeOwnPotential(cluster, i, local)) {
          work.failed[b] = i;
          return;
        }
      }
      Kernel kernel(d);
      if (b == first) {
        filter_block(kernel, b, true);
        return;
      }
      typename Kernel::Segment s = new_segment(kernel);
      kernel.SegmentStart(work.psi[begin], unary_of(begin), s);
      for (size_t k = begin + 1; k < end; ++k) {
        if (!kernel.SegmentStep(work.psi[k], unary_of(k), s)) {
          work.failed[b] = order[k];
          return;
        }
      }
      store_segment(s, segment_of(b));
    });
    if (size_t f = FirstFailure(work.failed, first, last); f != SIZE_MAX) return f;
    // The filtered density at the end of every other block of the chunk.
    {
      Kernel kernel(d);
      Vec hf = kernel.NewVec();
      Mat lf = kernel.NewMat();
      typename Kernel::Segment s = new_segment(kernel);
      load(filtered_of(first), hf, lf);
      for (size_t b = first + 1; b < last; ++b) {
        load_segment(segment_of(b), s);
        if (!kernel.Carry(s, hf, lf)) return order[block_begin(b)];
        store(hf, lf, filtered_of(b));
      }
    }
    // B: the filter steps of the other blocks from the filtered density before them; the last
    // block's stepped density replaces its carried one, for the next chunk and the smoother.
    ForEachBlock(first + 1, last, [&](size_t b) {
      Kernel kernel(d);
      filter_block(kernel, b, b + 1 == last);
    });
    if (size_t f = FirstFailure(work.failed, first, last); f != SIZE_MAX) return f;
  }

  // The smoothed density of the last position is its filtered one.
  {
    Kernel kernel(d);
    Vec hf = kernel.NewVec(), m = kernel.NewVec();
    Mat lf = kernel.NewMat(), p = kernel.NewMat();
    load(filtered_of(blocks - 1), hf, lf);
    if (!kernel.Finish(hf, lf, m, p)) return order[size - 1];
    store(m, p, smoothed_of(blocks - 1));
  }

  // Backwards, chunk by chunk.
  for (size_t c = chunks; c-- > 0;) {
    const size_t first = chunk_first(c), last = chunk_last(c);
    // The smoothing elements of every block after the first composed into one.
    ForEachBlock(std::max<size_t>(first, 1), last, [&](size_t b) {
      Kernel kernel(d);
      const size_t begin = block_begin(b), end = block_end(b);
      Mat e = kernel.NewMat(), l = kernel.NewMat();
      Vec gv = kernel.NewVec();
      const double* slot = slot_of(end - 1);
      e = Eigen::Map<const Eigen::Matrix<double, N, N>>(slot, d, d);
      gv = Eigen::Map<const Eigen::Matrix<double, N, 1>>(slot + dd, d);
      l = Eigen::Map<const Eigen::Matrix<double, N, N>>(slot + dd + d, d, d);
      for (size_t k = end - 1; k-- > begin;) kernel.Compose(slot_of(k), e, gv, l);
      double* out = composed_of(b);
      Eigen::Map<Eigen::Matrix<double, N, N>>(out, d, d) = e;
      Eigen::Map<Eigen::Matrix<double, N, 1>>(out + dd, d) = gv;
      Eigen::Map<Eigen::Matrix<double, N, N>>(out + dd + d, d, d) = l;
    });
    // The smoothed density at the end of the block before each of them.
    {
      Kernel kernel(d);
      Vec m = kernel.NewVec();
      Mat p = kernel.NewMat();
      load(smoothed_of(last - 1), m, p);
      for (size_t b = last - 1; b >= std::max<size_t>(first, 1); --b) {
        kernel.Back(composed_of(b), m, p);
        store(m, p, smoothed_of(b - 1));
      }
    }
    // C: the smoothed densities backwards through each block, the pairs' cross moments
    // E[x_k x_{k−1}ᵀ] = P_k E_kᵀ + m_k m_{k−1}ᵀ and I(x_k; x_{k−1}) = ½ (log|P_{k−1}| + log|K_k|).
    ForEachBlock(first, last, [&](size_t b) {
      Kernel kernel(d);
      const size_t begin = block_begin(b), end = block_end(b);
      Vec m = kernel.NewVec(), m_prev = kernel.NewVec();
      Mat p = kernel.NewMat(), p_prev = kernel.NewMat();
      load(smoothed_of(b), m, p);
      double log_det_prev = 0.0;
      {
        const size_t i = order[end - 1];
        if (!kernel.Belief(m, p, cluster.belief.data() + i * stat,
                           cluster.belief_moments.data() + i * stat, &log_det_prev)) {
          work.failed[b] = i;
          return;
        }
      }
      for (size_t k = end - 1; k > 0 && k >= begin; --k) {
        const double* slot = slot_of(k);
        const size_t i = order[k], parent = order[k - 1];
        if (k == begin) {
          // Position k − 1 ends block b − 1, which writes its belief from the same density.
          load(smoothed_of(b - 1), m_prev, p_prev);
          if (!kernel.LogDetOf(p_prev, &log_det_prev)) {
            work.failed[b] = parent;
            return;
          }
        } else {
          m_prev = m;
          p_prev = p;
          kernel.Back(slot, m_prev, p_prev);
          if (!kernel.Belief(m_prev, p_prev, cluster.belief.data() + parent * stat,
                             cluster.belief_moments.data() + parent * stat, &log_det_prev)) {
            work.failed[b] = parent;
            return;
          }
        }
        cluster.information[i] = 0.5 * (log_det_prev + slot[2 * dd + d]);
        const Eigen::Map<const Eigen::Matrix<double, N, N>> e(slot, d, d);
        Eigen::Map<Eigen::Matrix<double, N, N>> cross(cluster.potential.data() + i * pair, d, d);
        cross.noalias() = p * e.transpose();
        cross.noalias() += m * m_prev.transpose();
        m = m_prev;
        p = p_prev;
      }
      if (begin == 0) cluster.information[order[0]] = 0.0;
    });
    if (size_t f = FirstFailure(work.failed, first, last); f != SIZE_MAX) return f;
  }

  // Nothing changes unless every block succeeded.
  ForEachBlock(blocks, [&](size_t b) {
    g.CommitGaussianCluster(cluster, block_begin(b), block_end(b));
  });
  return SIZE_MAX;
}

}  // namespace vfe
