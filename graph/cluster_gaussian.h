#ifndef VFE_GRAPH_CLUSTER_GAUSSIAN_H_
#define VFE_GRAPH_CLUSTER_GAUSSIAN_H_

// Helpers shared by the two solvers of Gaussian clusters (graph/cluster_gaussian.cc, the
// sequential tree solver, and graph/cluster_parallel_scan.cc, the parallel scan over a chain).

#include <cstddef>
#include <utility>

#include <Eigen/Core>

namespace vfe {

/// Numbers of a pair potential over (x_c, x_p), both of dimension d: natural parameters of a
/// 2d-vector, h then the 2d x 2d matrix η₂ = −Λ/2 (column-major).
inline size_t GaussianPairSize(int d) { return static_cast<size_t>(2 * d) * (2 * d + 1); }

/// Turns a pair potential over (x_p, x_c) into one over (x_c, x_p) in place: swaps the halves
/// of h and the blocks of η₂ (a pure permutation, no arithmetic).
inline void SwapPairBlocks(double* psi, int d) {
  const int d2 = 2 * d;
  for (int i = 0; i < d; ++i) std::swap(psi[i], psi[i + d]);
  double* eta2 = psi + d2;
  // New η₂(i, j) = old η₂(σi, σj) with σ swapping the halves: each pair of entries once, from
  // the rows of the top half.
  for (int j = 0; j < d2; ++j) {
    const int sigma_j = j < d ? j + d : j - d;
    for (int i = 0; i < d; ++i) std::swap(eta2[i + j * d2], eta2[i + d + sigma_j * d2]);
  }
}

/// Solves (L Lᵀ) X = B in place, with the Cholesky factor L in the lower triangle of `factor`
/// (as Eigen::LLT::matrixLLT() holds it): forward then back substitution, column by column.
/// The arithmetic of LLT::solveInPlace, written out so that small fixed sizes unroll instead
/// of going through Eigen's blocked triangular solver.
template <class Factor, class Rhs>
void CholeskySolveInPlace(const Factor& factor, Rhs&& b) {
  const Eigen::Index n = factor.rows();
  for (Eigen::Index c = 0; c < b.cols(); ++c) {
    for (Eigen::Index i = 0; i < n; ++i) {
      double sum = b(i, c);
      for (Eigen::Index j = 0; j < i; ++j) sum -= factor(i, j) * b(j, c);
      b(i, c) = sum / factor(i, i);
    }
    for (Eigen::Index i = n; i-- > 0;) {
      double sum = b(i, c);
      for (Eigen::Index j = i + 1; j < n; ++j) sum -= factor(j, i) * b(j, c);
      b(i, c) = sum / factor(i, i);
    }
  }
}

}  // namespace vfe

#endif  // VFE_GRAPH_CLUSTER_GAUSSIAN_H_
