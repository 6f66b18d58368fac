// Gaussian tree-shaped clusters: the Kalman filter and RTS smoother in information form over
// a chain or tree of Gaussian elements, pair cross moments and mutual information.

#include <algorithm>
#include <cmath>

#include "graph/factor_graph_impl.h"
#include "vfe/core/format.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

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
