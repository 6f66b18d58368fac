#include "nodes/node_checks.h"
#include "vfe/nodes/nodes.h"

namespace vfe {
namespace {

/// Transition(out | in, A) = Π_jk A_jk^{out_j in_k} with a learned matrix: out and in
/// Categorical (K and L outcomes), the columns A_{·k} Dirichlet variables of dimension K
/// (a MatrixDirichlet). Slots: out, in, column 0..L−1. With L_jk = E[log A_jk]:
///   to out:       η_j = Σ_k E[in_k] L_jk
///   to in:        η_k = Σ_j E[out_j] L_jk
///   to column k:  η_j = E[out_j] E[in_k]   (expected counts)
///   U = −Σ_jk E[out_j] E[in_k] L_jk   (pairs of probability 0 count 0)
/// When out and in are a pair of a cluster (a chain), their joint E[out_j in_k] replaces
/// E[out_j] E[in_k] in the counts and in U, and the pair's potential is L.
class LearnedTransitionNode final : public Node {
 public:
  explicit LearnedTransitionNode(int num_columns) : columns_(num_columns) {}
  const char* type() const override { return "Transition"; }
  std::vector<std::string> slot_names() const override {
    std::vector<std::string> names = {"out", "in"};
    for (int k = 0; k < columns_; ++k) names.push_back("matrix column " + std::to_string(k));
    return names;
  }
  Family ObservedFamily(int slot, const PointMass&) const override {
    return slot < kColumn0 ? Family::kCategorical : Family::kDirichlet;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireFamily(slots[kOut], {Family::kCategorical}, where);
    RequireFamily(slots[kIn], {Family::kCategorical}, where);
    rows_ = slots[kOut].dim;
    if (slots[kIn].dim != columns_)
      throw GraphError(where + ": the matrix has " + std::to_string(columns_) +
                       " columns, but 'in' is " + slots[kIn].variable + " with " +
                       std::to_string(slots[kIn].dim) + " categories");
    for (int k = 0; k < columns_; ++k) {
      RequireFamily(slots[kColumn0 + k], {Family::kDirichlet}, where);
      RequireDim(slots[kColumn0 + k], rows_, where);
    }
    columns_shared_ = true;
    for (int k = 0; k < columns_; ++k) columns_shared_ &= slots[kColumn0 + k].shared;
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    const SlotView& pair = q[kColumn0 + columns_];
    for (size_t n = begin; n < end; ++n) {
      const double* out = q[kOut].At(n);
      const double* in = q[kIn].At(n);
      if (slot >= kColumn0 && pair.data) {
        const int k = slot - kColumn0;
        const double* joint = pair.At(n);
        for (int j = 0; j < rows_; ++j) eta[j] += joint[j * columns_ + k];
        continue;
      }
      if (slot >= kColumn0) {
        const double weight = in[slot - kColumn0];
        if (weight != 0.0)
          for (int j = 0; j < rows_; ++j) eta[j] += out[j] * weight;
        continue;
      }
      for (int k = 0; k < columns_; ++k) {
        const double* log_column = q[kColumn0 + k].At(n);
        if (slot == kOut) {
          if (in[k] != 0.0)
            for (int j = 0; j < rows_; ++j) eta[j] += in[k] * log_column[j];
        } else {
          double sum = 0.0;
          for (int j = 0; j < rows_; ++j)
            if (out[j] != 0.0) sum += out[j] * log_column[j];
          eta[k] += sum;
        }
      }
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    double energy = 0.0;
    const SlotView& pair = q[kColumn0 + columns_];
    for (size_t n = begin; n < end; ++n) {
      const double* out = q[kOut].At(n);
      const double* in = q[kIn].At(n);
      if (pair.data) {
        const double* joint = pair.At(n);
        for (int k = 0; k < columns_; ++k) {
          const double* log_column = q[kColumn0 + k].At(n);
          for (int j = 0; j < rows_; ++j)
            if (joint[j * columns_ + k] != 0.0) energy -= joint[j * columns_ + k] * log_column[j];
        }
        continue;
      }
      for (int k = 0; k < columns_; ++k) {
        if (in[k] == 0.0) continue;
        const double* log_column = q[kColumn0 + k].At(n);
        for (int j = 0; j < rows_; ++j)
          if (out[j] != 0.0) energy -= out[j] * in[k] * log_column[j];
      }
    }
    return energy;
  }

  bool JoinsPair(int slot_a, int slot_b) const override {
    return slot_a == kOut && slot_b == kIn;
  }
  void PairPotential(size_t n, int, int, const SlotView* q, double* out,
                     Workspace&) const override {
    for (int k = 0; k < columns_; ++k) {
      const double* log_column = q[kColumn0 + k].At(n);
      for (int j = 0; j < rows_; ++j) out[j * columns_ + k] = log_column[j];
    }
  }
  bool PairPotentialShared() const override { return columns_shared_; }

 private:
  enum { kOut = 0, kIn = 1, kColumn0 = 2 };
  int columns_;
  int rows_ = 1;
  bool columns_shared_ = false;  // every factor reads the same matrix (set by Bind)
};

}  // namespace

std::unique_ptr<Node> MakeLearnedTransitionNode(int num_columns) {
  return std::make_unique<LearnedTransitionNode>(num_columns);
}

}  // namespace vfe
