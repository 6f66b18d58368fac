// Gaussian tree-shaped clusters: the Kalman filter and RTS smoother in information form over
// a chain or tree of Gaussian elements, pair cross moments and mutual information.

#include <algorithm>
#include <cmath>

#include "graph/cluster_gaussian.h"
#include "graph/factor_graph_impl.h"
#include "vfe/core/format.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

size_t FactorGraph::Impl::ComputeSharedPotentials(Cluster& cluster, Scratch& scratch) {
  const int d = variables[cluster.variable].dim;
  const size_t pair = GaussianPairSize(d);
  for (size_t s = 0; s < cluster.shared_first.size(); ++s) {
    const size_t i = cluster.shared_first[s];
    double* psi = cluster.shared_potential.data() + s * pair;
    const Plate& plate = plates[cluster.edge_plate[i]];
    plate.node->PairPotential(cluster.edge_factor[i], plate.pair_slot_a, plate.pair_slot_b,
                              plate.views.data(), psi, scratch.node);
    if (!ConstVectorMap(psi, pair).allFinite()) return i;
    if (!cluster.child_in_slot_a[i]) SwapPairBlocks(psi, d);
  }
  return SIZE_MAX;
}

bool FactorGraph::Impl::ComputeOwnPotential(Cluster& cluster, size_t i, Scratch& scratch) const {
  const int d = variables[cluster.variable].dim;
  const size_t pair = GaussianPairSize(d);
  const Plate& plate = plates[cluster.edge_plate[i]];
  double* psi = cluster.potential.data() + i * pair;
  plate.node->PairPotential(cluster.edge_factor[i], plate.pair_slot_a, plate.pair_slot_b,
                            plate.views.data(), psi, scratch.node);
  if (!ConstVectorMap(psi, pair).allFinite()) return false;
  if (!cluster.child_in_slot_a[i]) SwapPairBlocks(psi, d);
  return true;
}

// Gaussian elements: messages and beliefs in natural parameters (h, −Λ/2), the information
// form of the Kalman filter (upward) and RTS smoother (downward). The pair of a child c and
// its parent p is ψ over z = (x_c, x_p).
size_t FactorGraph::Impl::UpdateGaussianCluster(Cluster& cluster, Scratch& scratch) {
  const size_t failed = ComputeSharedPotentials(cluster, scratch);
  if (failed != SIZE_MAX) return failed;
  // Kernels of fixed size for small dimensions, chosen once per update.
  switch (variables[cluster.variable].dim) {
    case 1: return SolveGaussianTree<1, 1>(cluster, scratch);
    case 2: return SolveGaussianTree<2, 2>(cluster, scratch);
    case 3: return SolveGaussianTree<3, 3>(cluster, scratch);
    case 4: return SolveGaussianTree<4, 4>(cluster, scratch);
    default:
      return variables[cluster.variable].dim <= 16
                 ? SolveGaussianTree<Eigen::Dynamic, 16>(cluster, scratch)
                 : SolveGaussianTree<Eigen::Dynamic, Eigen::Dynamic>(cluster, scratch);
  }
}

template <int N, int MaxN>
size_t FactorGraph::Impl::SolveGaussianTree(Cluster& cluster, Scratch& scratch) {
  using Vec = Eigen::Matrix<double, N, 1, Eigen::ColMajor, MaxN, 1>;
  using Mat = Eigen::Matrix<double, N, N, Eigen::ColMajor, MaxN, MaxN>;
  using VecMap = Eigen::Map<Eigen::Matrix<double, N, 1>>;
  using MatMap = Eigen::Map<Eigen::Matrix<double, N, N>>;
  using ConstVec = Eigen::Map<const Eigen::Matrix<double, N, 1>>;
  using ConstMat = Eigen::Map<const Eigen::Matrix<double, N, N>>;
  using Block = Eigen::Map<const Eigen::Matrix<double, N, N>, 0, Eigen::OuterStride<>>;
  const VariableInfo& info = variables[cluster.variable];
  const int d = info.dim;
  const Eigen::Index d2 = 2 * d;
  const size_t dd = static_cast<size_t>(d) * d;
  const size_t stat = static_cast<size_t>(info.stat_size);
  const size_t pair = GaussianPairSize(d);
  // ψ over (x_c, x_p): h_c, h_p and the blocks of η₂ = −Λ/2.
  auto h_c = [&](const double* psi) { return ConstVec(psi, d); };
  auto h_p = [&](const double* psi) { return ConstVec(psi + d, d); };
  auto block = [&](const double* psi, int row, int col) {
    return Block(psi + d2 + row * d + col * d * d2, d, d, Eigen::OuterStride<>(d2));
  };
  Mat k, gain, sigma, product;
  Vec y;
  for (Mat* m : {&k, &gain, &sigma, &product}) m->resize(d, d);
  y.resize(d);
  Eigen::LLT<Mat> llt(Mat::Identity(d, d));
  auto log_det = [&] {
    double sum = 0.0;
    for (int x = 0; x < d; ++x) sum += std::log(llt.matrixLLT()(x, x));
    return 2.0 * sum;
  };

  for (size_t i = 0; i < cluster.size; ++i) {
    double* unary = cluster.unary.data() + i * stat;
    std::fill_n(unary, stat, 0.0);
    AddOutsideMessages(cluster, i, unary, scratch);
    if (!ConstVectorMap(unary, stat).allFinite()) return i;
    if (cluster.parent[i] == Cluster::kNoParent || cluster.potential_shared[i]) continue;
    if (!ComputeOwnPotential(cluster, i, scratch)) return i;
  }
  // Upward (filter): below_i = unary_i + Σ up_children; up_i = ∫ ψ_i below_i dx_i, i.e. with
  // K = Λ^ψ_cc + Λ_below: up = (h^ψ_p − Gᵀ(h^ψ_c + h_below), η^ψ_pp − η^ψ_pc G), G = K⁻¹Λ^ψ_cp.
  for (size_t r = cluster.size; r-- > 0;) {
    const size_t i = cluster.order[r];
    double* below = cluster.below.data() + i * stat;
    std::copy_n(cluster.unary.data() + i * stat, stat, below);
    for (size_t c = cluster.child_offsets[i]; c < cluster.child_offsets[i + 1]; ++c) {
      const double* up = cluster.up.data() + cluster.children[c] * stat;
      for (size_t x = 0; x < stat; ++x) below[x] += up[x];
    }
    if (cluster.parent[i] == Cluster::kNoParent) continue;
    const double* psi = cluster.potential_of[i];
    k = -2.0 * (block(psi, 0, 0) + ConstMat(below + d, d, d));
    llt.compute(k);
    if (llt.info() != Eigen::Success) return i;
    cluster.up_log_det[i] = log_det();
    MatMap g(cluster.up_gain.data() + i * dd, d, d);
    g = -2.0 * block(psi, 0, 1);
    CholeskySolveInPlace(llt.matrixLLT(), g);
    double* up = cluster.up.data() + i * stat;
    y = h_c(psi) + ConstVec(below, d);
    VecMap(up, d) = h_p(psi);
    VecMap(up, d).noalias() -= g.transpose() * y;
    MatMap eta2(up + d, d, d);
    eta2 = block(psi, 1, 1);
    eta2.noalias() -= block(psi, 1, 0) * g;
    if (!eta2.allFinite() || !VecMap(up, d).allFinite()) return i;
  }
  // Downward (smoother): cavity_c = unary_p + down_p + Σ other ups; down_c = ∫ ψ_c cavity_c,
  // the same elimination with the roles of c and p swapped. Then the belief below + down, and
  // for a child its pair with the parent: Cov(x_c, x_p) = −G Σ_p, so that
  // E[x_c x_pᵀ] = −G Σ_p + μ_c μ_pᵀ, and I(x_c; x_p) = ½ (log|Σ_c| + log|K|).
  for (size_t i : cluster.order) {
    double* down = cluster.down.data() + i * stat;
    const bool child = cluster.parent[i] != Cluster::kNoParent;
    if (!child) {
      std::fill_n(down, stat, 0.0);
    } else {
      const double* psi = cluster.potential_of[i];
      const double* cavity = cluster.cavity.data() + i * stat;
      k = -2.0 * (block(psi, 1, 1) + ConstMat(cavity + d, d, d));
      llt.compute(k);
      if (llt.info() != Eigen::Success) return i;
      product = -2.0 * block(psi, 1, 0);
      CholeskySolveInPlace(llt.matrixLLT(), product);
      y = h_p(psi) + ConstVec(cavity, d);
      VecMap(down, d) = h_c(psi);
      VecMap(down, d).noalias() -= product.transpose() * y;
      MatMap eta2(down + d, d, d);
      eta2 = block(psi, 0, 0);
      eta2.noalias() -= block(psi, 0, 1) * product;
      if (!eta2.allFinite() || !VecMap(down, d).allFinite()) return i;
    }
    double* belief = cluster.belief.data() + i * stat;
    const double* below = cluster.below.data() + i * stat;
    for (size_t x = 0; x < stat; ++x) belief[x] = below[x] + down[x];
    // Moments: Σ = (−2η₂)⁻¹, μ = Σ h, E[x xᵀ] = Σ + μ μᵀ.
    const ConstMat belief_eta2(belief + d, d, d);
    if (!belief_eta2.allFinite() || !ConstVec(belief, d).allFinite()) return i;
    k = -2.0 * belief_eta2;
    llt.compute(k);
    if (llt.info() != Eigen::Success) return i;
    cluster.belief_log_det[i] = log_det();
    MatMap covariance(cluster.covariance.data() + i * dd, d, d);
    covariance.setIdentity();
    CholeskySolveInPlace(llt.matrixLLT(), covariance);
    double* moment = cluster.belief_moments.data() + i * stat;
    VecMap mean(moment, d);
    mean.noalias() = covariance * ConstVec(belief, d);
    MatMap second(moment + d, d, d);
    second = covariance;
    second.noalias() += mean * mean.transpose();
    if (child) {
      const size_t p = cluster.parent[i];
      cluster.information[i] = 0.5 * (cluster.up_log_det[i] - cluster.belief_log_det[i]);
      // ψ_i is no longer needed: its buffer holds the cross moment E[x_c x_pᵀ] (D x D).
      MatMap cross(cluster.potential.data() + i * pair, d, d);
      const ConstVec parent_mean(cluster.belief_moments.data() + p * stat, d);
      cross.noalias() = -ConstMat(cluster.up_gain.data() + i * dd, d, d) *
                        ConstMat(cluster.covariance.data() + p * dd, d, d);
      cross.noalias() += mean * parent_mean.transpose();
    } else {
      cluster.information[i] = 0.0;
    }
    for (size_t c = cluster.child_offsets[i]; c < cluster.child_offsets[i + 1]; ++c) {
      const size_t child_element = cluster.children[c];
      double* cavity = cluster.cavity.data() + child_element * stat;
      const double* unary = cluster.unary.data() + i * stat;
      for (size_t x = 0; x < stat; ++x) cavity[x] = unary[x] + down[x];
      for (size_t o = cluster.child_offsets[i]; o < cluster.child_offsets[i + 1]; ++o) {
        if (o == c) continue;
        const double* up = cluster.up.data() + cluster.children[o] * stat;
        for (size_t x = 0; x < stat; ++x) cavity[x] += up[x];
      }
    }
  }
  CommitGaussianCluster(cluster, 0, cluster.size);
  return SIZE_MAX;
}

void FactorGraph::Impl::CommitGaussianCluster(Cluster& cluster, size_t begin, size_t end) {
  const VariableInfo& info = variables[cluster.variable];
  const int d = info.dim;
  const size_t stat = static_cast<size_t>(info.stat_size);
  const size_t pair = GaussianPairSize(d);
  for (size_t i = begin; i < end; ++i) {
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
}

}  // namespace vfe
