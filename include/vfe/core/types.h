#ifndef VFE_CORE_TYPES_H_
#define VFE_CORE_TYPES_H_

#include <Eigen/Cholesky>
#include <Eigen/Core>

namespace vfe {

using Vector = Eigen::VectorXd;
using Matrix = Eigen::MatrixXd;
using VectorMap = Eigen::Map<Eigen::VectorXd>;
using ConstVectorMap = Eigen::Map<const Eigen::VectorXd>;
using MatrixMap = Eigen::Map<Eigen::MatrixXd>;
using ConstMatrixMap = Eigen::Map<const Eigen::MatrixXd>;

/// Scratch space for the D x D linear algebra of the matrix families, sized once for one
/// dimension D (in FactorGraph::Finalize) so that no message or update allocates.
struct Workspace {
  explicit Workspace(int dim = 0) { Resize(dim); }
  /// Sizes every buffer for exactly dimension `dim` (allocates; call outside hot loops).
  void Resize(int dim) {
    this->dim = dim;
    a.resize(dim, dim);
    b.resize(dim, dim);
    c.resize(dim, dim);
    u.resize(dim);
    v.resize(dim);
    llt.compute(Matrix::Identity(dim, dim));  // sizes the factor once
  }
  int dim = 0;
  Matrix a, b, c;
  Vector u, v;
  Eigen::LLT<Matrix> llt;
};

}  // namespace vfe

#endif  // VFE_CORE_TYPES_H_
