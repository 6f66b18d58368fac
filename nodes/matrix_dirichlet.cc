// MatrixDirichlet(out | alpha): the prior of a learned transition matrix, one Dirichlet per
// column.

#include <cmath>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/distributions/dirichlet.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& MatrixDirichletNodeType();
const NodeType& TransitionNodeType();

namespace {

/// The prior of a K x L matrix A whose columns are independent Dirichlet variables (the
/// slots out[0..L−1]): p(A) = Π_k Dir(A_·k | α_·k). Every slot is an output of the density,
/// with constant parameters: the message to column k is its prior's natural parameters
/// η_k = α_·k − 1, and U = Σ_k (A(η_k) − η_k·E[log A_·k]).
class MatrixDirichletNode final : public Node {
 public:
  explicit MatrixDirichletNode(const Matrix& alpha) : alpha_(alpha) {}
  const char* type() const override { return MatrixDirichletNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override {
    return MatrixDirichletNodeType().SlotNames({{"out", static_cast<size_t>(alpha_.cols())}});
  }
  Family ObservedFamily(int, const PointMass&) const override { return Family::kDirichlet; }
  bool IsOutput(int) const override { return true; }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    if (static_cast<Eigen::Index>(slots.size()) != alpha_.cols())
      throw GraphError(where + ": alpha has " + std::to_string(alpha_.cols()) +
                       " columns, but the matrix has " + std::to_string(slots.size()));
    RequireDeclaredFamilies(MatrixDirichletNodeType(), slots, where);
    columns_.clear();
    log_partitions_.clear();
    for (size_t k = 0; k < slots.size(); ++k) {
      RequireDim(slots[k], static_cast<int>(alpha_.rows()), where,
                 "alpha has " + std::to_string(alpha_.rows()) + " rows");
      try {
        columns_.emplace_back(alpha_.col(static_cast<Eigen::Index>(k)));
      } catch (const ModelError& e) {
        throw ModelError(where + ": column " + std::to_string(k) + ": " + e.what());
      }
      log_partitions_.push_back(columns_.back().LogPartition());
    }
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView*, double* eta,
                         Workspace&) const override {
    const double count = static_cast<double>(end - begin);
    for (Eigen::Index i = 0; i < alpha_.rows(); ++i) eta[i] += count * (alpha_(i, slot) - 1.0);
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n)
      for (size_t k = 0; k < columns_.size(); ++k) {
        const double* log_p = q[k].At(n);
        double dot = 0.0;
        for (Eigen::Index i = 0; i < alpha_.rows(); ++i)
          dot += (alpha_(i, static_cast<Eigen::Index>(k)) - 1.0) * log_p[i];
        energy += log_partitions_[k] - dot;
      }
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    double log_f = 0.0;
    for (size_t k = 0; k < columns_.size(); ++k)
      log_f += columns_[k].LogDensity(point_values::Probabilities(columns_[k].dim(), q[k].At(n)));
    return log_f;
  }

 private:
  Matrix alpha_;
  std::vector<Dirichlet> columns_;      // for LogFactor
  std::vector<double> log_partitions_;  // A(η_k) of each column
};

}  // namespace

std::unique_ptr<Node> MakeMatrixDirichletNode(const Matrix& alpha) {
  return std::make_unique<MatrixDirichletNode>(alpha);
}

const NodeType& MatrixDirichletNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "MatrixDirichlet";
    t.summary =
        "out ~ MatrixDirichlet(alpha): a K x L matrix of L independent Dirichlet "
        "columns, the prior of a learned transition matrix";
    t.formula = "U = Σ_k (A(η_k) − η_k·E[log A_·k]), η_k = α_·k − 1";
    t.parameters = {WholeArray("out", "the matrix: a MatrixDirichlet variable (its L columns)",
                               {Family::kDirichlet}),
                    Constant("alpha", "K rows of L concentrations, column k for column k",
                             ConstantKind::kPositiveMatrix)};
    t.make = [](const NodeArguments& a) {
      if (static_cast<size_t>(a.matrix("alpha").cols()) != a.count("out") ||
          a.matrix("alpha").rows() != a.dim("out"))
        a.Fail("alpha", "expected " + std::to_string(a.dim("out")) + " rows of " +
                            std::to_string(a.count("out")) +
                            " (an outcome per row, a column per column of the matrix " +
                            a.describe("out") + "), found " +
                            std::to_string(a.matrix("alpha").rows()) + " rows of " +
                            std::to_string(a.matrix("alpha").cols()));
      return MakeMatrixDirichletNode(a.matrix("alpha"));
    };
    t.example = TransitionNodeType().example;
    return t;
  }();
  return type;
}

}  // namespace vfe
