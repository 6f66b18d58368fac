#ifndef VFE_DISTRIBUTIONS_MATRIX_DIRICHLET_H_
#define VFE_DISTRIBUTIONS_MATRIX_DIRICHLET_H_

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "vfe/core/error.h"
#include "vfe/core/format.h"
#include "vfe/core/types.h"
#include "vfe/distributions/dirichlet.h"

namespace vfe {

/// MatrixDirichlet(A | α) over K × L matrices whose columns are distributions (the transition
/// matrix p(out = j | in = k) = A[j][k] of a Markov chain): independent Dirichlet(α_{·k})
/// columns, α_jk > 0. Every quantity is the sum or the column-wise stack of the columns'
/// Dirichlet quantities:
///   η = α − 1,   E[log A_jk] = ψ(α_jk) − ψ(Σ_i α_ik),   A(η) = Σ_k A_Dir(η_{·k}),
///   H = Σ_k H_Dir(η_{·k}).
/// In a factor graph it is an array of L Dirichlet variables of dimension K, one per column
/// (FactorGraph::AddMatrixDirichlet, AddTransition with a learned matrix).
class MatrixDirichlet {
 public:
  /// Throws ModelError unless every α_jk > 0 and finite, naming the entry.
  explicit MatrixDirichlet(const Matrix& alpha) {
    if (alpha.size() == 0) throw ModelError("MatrixDirichlet: alpha is empty");
    for (Eigen::Index k = 0; k < alpha.cols(); ++k) {
      for (Eigen::Index j = 0; j < alpha.rows(); ++j)
        if (!(alpha(j, k) > 0) || !std::isfinite(alpha(j, k)))
          throw ModelError("MatrixDirichlet: alpha[" + std::to_string(j) + "][" +
                           std::to_string(k) + "] must be > 0 and finite, got " +
                           FormatNumber(alpha(j, k)));
      columns_.emplace_back(Vector(alpha.col(k)));
    }
  }
  /// The columns as Dirichlet distributions of one dimension (a posterior read column by
  /// column from a graph).
  static MatrixDirichlet FromColumns(const std::vector<Dirichlet>& columns) {
    if (columns.empty()) throw ModelError("MatrixDirichlet: no columns");
    Matrix alpha(columns[0].dim(), static_cast<Eigen::Index>(columns.size()));
    for (size_t k = 0; k < columns.size(); ++k) {
      if (columns[k].dim() != columns[0].dim())
        throw ModelError("MatrixDirichlet: column " + std::to_string(k) + " has dimension " +
                         std::to_string(columns[k].dim()) + ", column 0 has " +
                         std::to_string(columns[0].dim()));
      alpha.col(static_cast<Eigen::Index>(k)) = columns[k].alpha();
    }
    return MatrixDirichlet(alpha);
  }

  int rows() const { return columns_[0].dim(); }
  int cols() const { return static_cast<int>(columns_.size()); }
  const Dirichlet& column(int k) const { return columns_.at(static_cast<size_t>(k)); }
  Matrix alpha() const { return Stack([](const Dirichlet& c) { return c.alpha(); }); }
  /// η = α − 1.
  Matrix natural() const { return alpha().array() - 1.0; }
  /// E[A]: each column α_{·k} / Σ_j α_jk.
  Matrix mean() const { return Stack([](const Dirichlet& c) { return c.mean(); }); }
  /// E[log A_jk] = ψ(α_jk) − ψ(Σ_i α_ik).
  Matrix mean_log() const { return Stack([](const Dirichlet& c) { return c.mean_log(); }); }
  double LogPartition() const {
    double total = 0.0;
    for (const Dirichlet& c : columns_) total += c.LogPartition();
    return total;
  }
  double Entropy() const {
    double total = 0.0;
    for (const Dirichlet& c : columns_) total += c.Entropy();
    return total;
  }
  /// −∞ unless `a` has this shape and every column is a distribution.
  double LogDensity(const Matrix& a) const {
    if (a.rows() != rows() || a.cols() != cols()) return -INFINITY;
    double total = 0.0;
    for (int k = 0; k < cols(); ++k) total += columns_[k].LogDensity(a.col(k));
    return total;
  }
  /// A column-stochastic matrix, each column drawn from its Dirichlet.
  Matrix Sample(std::mt19937_64& rng) const {
    Matrix a(rows(), cols());
    for (int k = 0; k < cols(); ++k) a.col(k) = columns_[k].Sample(rng);
    return a;
  }
  /// The normalised pointwise product: column by column.
  MatrixDirichlet Product(const MatrixDirichlet& other) const {
    if (other.rows() != rows() || other.cols() != cols())
      throw ModelError("MatrixDirichlet: product of a " + Shape() + " and a " + other.Shape() +
                       " matrix");
    std::vector<Dirichlet> product;
    for (int k = 0; k < cols(); ++k) product.push_back(columns_[k].Product(other.columns_[k]));
    return FromColumns(product);
  }
  std::string ToString() const {
    std::ostringstream out;
    out.precision(10);
    out << "MatrixDirichlet(alpha=[" << alpha().format(Eigen::IOFormat(
                                            Eigen::FullPrecision, 0, ", ", "; ", "", "", "", ""))
        << "])";
    return out.str();
  }

 private:
  template <class Column>
  Matrix Stack(Column column) const {
    Matrix out(rows(), cols());
    for (int k = 0; k < cols(); ++k) out.col(k) = column(columns_[k]);
    return out;
  }
  std::string Shape() const { return std::to_string(rows()) + " x " + std::to_string(cols()); }

  std::vector<Dirichlet> columns_;
};

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_MATRIX_DIRICHLET_H_
