#include <algorithm>
#include <cmath>
#include <type_traits>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/distributions/categorical.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& TransitionNodeType();

namespace {

/// Transition(out | in, A) = Π_jk A_jk^{out_j in_k} with a learned matrix: out and in
/// Categorical (K and L outcomes), the columns A_{·k} Dirichlet variables of dimension K
/// (a MatrixDirichlet). Slots: out, in, column 0..L−1. With L_jk = E[log A_jk]:
///   to out:       η_j = Σ_k E[in_k] L_jk
///   to in:        η_k = Σ_j E[out_j] L_jk
///   to column k:  η_j = E[out_j] E[in_k]   (expected counts)
///   U = −Σ_jk E[out_j] E[in_k] L_jk   (pairs of probability 0 count 0)
/// When out and in are a pair of a cluster (a chain), their joint E[out_j in_k] replaces
/// E[out_j] E[in_k] in the counts and in U, and the pair's potential is L. When every factor
/// reads the same matrix, U sums the counts over the factors first and reads L once.
class LearnedTransitionNode final : public Node {
 public:
  explicit LearnedTransitionNode(int num_columns) : columns_(num_columns) {}
  const char* type() const override { return TransitionNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override {
    return TransitionNodeType().SlotNames({{"matrix", static_cast<size_t>(std::max(columns_, 0))}});
  }
  Family ObservedFamily(int slot, const PointMass&) const override {
    return slot < kColumn0 ? Family::kCategorical : Family::kDirichlet;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireDeclaredFamilies(TransitionNodeType(), slots, where);
    rows_ = slots[kOut].dim;
    if (slots[kIn].dim != columns_)
      throw GraphError(where + ": the matrix has " + std::to_string(columns_) +
                       " columns, but 'in' is " + slots[kIn].variable + " with " +
                       std::to_string(slots[kIn].dim) + " categories");
    for (int k = 0; k < columns_; ++k) {
      RequireDim(slots[kColumn0 + k], rows_, where,
                 "the matrix has " + std::to_string(rows_) + " rows, one per outcome of 'out'");
    }
    columns_shared_ = true;
    for (int k = 0; k < columns_; ++k) columns_shared_ &= slots[kColumn0 + k].shared;
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    if (slot >= kColumn0) {
      AddColumnMessages(slot - kColumn0, begin, end, q, eta);
      return;
    }
    for (size_t n = begin; n < end; ++n) AddMessage(slot, n, q, eta);
  }
  void AccumulateMessages(int slot, size_t begin, size_t end, size_t step, const SlotView* q,
                          double* eta, size_t stride, Workspace&) const override {
    if (slot >= kColumn0) {
      for (size_t n = begin; n < end; n += step, eta += stride)
        AddColumnMessages(slot - kColumn0, n, n + 1, q, eta);
      return;
    }
    if (slot == kIn && columns_shared_ && FiniteColumns(q)) {
      WithSmall(columns_, [&](auto c) {
        MessagesToIn<decltype(c)::value>(begin, end, step, q, eta, stride);
      });
      return;
    }
    for (size_t n = begin; n < end; n += step, eta += stride) AddMessage(slot, n, q, eta);
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    const SlotView& pair = q[kColumn0 + columns_];
    const size_t table = static_cast<size_t>(rows_) * columns_;
    // One matrix for the whole plate: U = −Σ_jk L_jk C_jk with the expected counts
    // C_jk = Σ_n E[out_j in_k] (the pairs' joints, or E[out_j] E[in_k]), summed first.
    if (columns_shared_ && !pair.data && columns_ <= 8 && FiniteColumns(q)) {
      double energy = 0.0;
      WithSmall(columns_, [&](auto c) {
        energy = EnergyOfProducts<decltype(c)::value>(begin, end, q);
      });
      return energy;
    }
    if (columns_shared_ && table <= kMaxSummedTable) {
      double counts[kMaxSummedTable] = {};
      if (pair.data && rows_ == columns_) {
        WithSmall(rows_, [&](auto r) {
          SumJoints<decltype(r)::value>(begin, end, pair, counts);
        });
      } else if (pair.data) {
        for (size_t n = begin; n < end; ++n) {
          const double* joint = pair.At(n);
          for (size_t x = 0; x < table; ++x) counts[x] += joint[x];
        }
      } else {
        for (size_t n = begin; n < end; ++n) {
          const double* out = q[kOut].At(n);
          const double* in = q[kIn].At(n);
          // Terms with E[out_j] = 0 or E[in_k] = 0 add 0 (the moments are finite).
          for (int j = 0; j < rows_; ++j) {
            double* row = counts + static_cast<size_t>(j) * columns_;
            for (int k = 0; k < columns_; ++k) row[k] += out[j] * in[k];
          }
        }
      }
      double energy = 0.0;
      for (int k = 0; k < columns_; ++k) {
        const double* log_column = q[kColumn0 + k].At(begin);
        for (int j = 0; j < rows_; ++j) {
          const double count = counts[static_cast<size_t>(j) * columns_ + k];
          if (count != 0.0) energy -= count * log_column[j];
        }
      }
      return energy;
    }
    double energy = 0.0;
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

  /// log A[j][k] at out = j, in = k: column k's density at j, the column read back from its
  /// statistics log A[·][k] (normalised again, so that a sampled column's rounding does not
  /// count).
  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    const int k = point_values::Outcome(columns_, q[kIn].At(n));
    return Categorical::FromNatural(ConstVectorMap(q[kColumn0 + k].At(n), rows_))
        .LogDensity(point_values::Outcome(rows_, q[kOut].At(n)));
  }

 private:
  enum { kOut = 0, kIn = 1, kColumn0 = 2 };
  /// The largest matrix (entries) whose expected counts AverageEnergy sums on the stack.
  static constexpr size_t kMaxSummedTable = 64;

  /// Factor n's message to out or in, added to `eta`.
  void AddMessage(int slot, size_t n, const SlotView* q, double* eta) const {
    const double* out = q[kOut].At(n);
    const double* in = q[kIn].At(n);
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
  /// Σ_{n ∈ [begin, end)} of the messages to column k (expected counts), added to `eta`.
  void AddColumnMessages(int k, size_t begin, size_t end, const SlotView* q, double* eta) const {
    WithSmall(rows_, [&](auto r) {
      ColumnMessages<decltype(r)::value>(k, begin, end, q, eta);
    });
  }
  /// AddColumnMessages for R rows (R = 0: any), the sums kept in registers. A term
  /// E[out_j]·0 adds nothing (the moments are finite), so that no test is needed.
  template <int R>
  void ColumnMessages(int k, size_t begin, size_t end, const SlotView* q, double* eta) const {
    constexpr int kSize = R > 0 ? R : kMaxRows;
    const int rows = R > 0 ? R : rows_;
    if (rows > kSize) {
      const SlotView& pair = q[kColumn0 + columns_];
      for (size_t n = begin; n < end; ++n) {
        const double* joint = pair.data ? pair.At(n) : nullptr;
        const double* out = q[kOut].At(n);
        const double weight = q[kIn].At(n)[k];
        for (int j = 0; j < rows; ++j)
          eta[j] += joint ? joint[j * columns_ + k] : out[j] * weight;
      }
      return;
    }
    double sum[kSize];
    for (int j = 0; j < rows; ++j) sum[j] = eta[j];
    const SlotView& pair = q[kColumn0 + columns_];
    if (pair.data) {
      for (size_t n = begin; n < end; ++n) {
        const double* joint = pair.At(n) + k;
        for (int j = 0; j < rows; ++j) sum[j] += joint[j * columns_];
      }
    } else {
      for (size_t n = begin; n < end; ++n) {
        const double weight = q[kIn].At(n)[k];
        const double* out = q[kOut].At(n);
        for (int j = 0; j < rows; ++j) sum[j] += out[j] * weight;
      }
    }
    for (int j = 0; j < rows; ++j) eta[j] = sum[j];
  }
  /// counts += Σ_{n ∈ [begin, end)} of the pairs' R x R joints (R = 0: rows_ x columns_),
  /// the sums kept in registers.
  template <int R>
  void SumJoints(size_t begin, size_t end, const SlotView& pair, double* counts) const {
    constexpr size_t kTable = static_cast<size_t>(R) * R;
    const size_t table = R > 0 ? kTable : static_cast<size_t>(rows_) * columns_;
    double local[R > 0 ? kTable : 1];
    double* sum = R > 0 ? local : counts;
    for (size_t x = 0; x < table; ++x) sum[x] = counts[x];
    for (size_t n = begin; n < end; ++n) {
      const double* joint = pair.At(n);
      for (size_t x = 0; x < table; ++x) sum[x] += joint[x];
    }
    for (size_t x = 0; x < table; ++x) counts[x] = sum[x];
  }
  /// U of factors [begin, end) without pairs, for C columns (C = 0: any) of one shared matrix
  /// with finite entries: −Σ_n Σ_j E[out_j] Σ_k E[in_k] L_jk (zero moments then add 0).
  template <int C>
  double EnergyOfProducts(size_t begin, size_t end, const SlotView* q) const {
    constexpr int kSize = C > 0 ? C : 8;
    const int columns = C > 0 ? C : columns_;
    const double* log_columns[kSize] = {};
    for (int k = 0; k < columns; ++k) log_columns[k] = q[kColumn0 + k].At(begin);
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const double* out = q[kOut].At(n);
      const double* in = q[kIn].At(n);
      double term = 0.0;
      for (int j = 0; j < rows_; ++j) {
        double sum = 0.0;
        for (int k = 0; k < columns; ++k) sum += in[k] * log_columns[k][j];
        term += out[j] * sum;
      }
      energy -= term;
    }
    return energy;
  }
  /// True when every entry of the (shared) matrix's E[log A] is finite.
  bool FiniteColumns(const SlotView* q) const {
    for (int k = 0; k < columns_; ++k) {
      const double* log_column = q[kColumn0 + k].At(0);
      for (int j = 0; j < rows_; ++j)
        if (!std::isfinite(log_column[j])) return false;
    }
    return true;
  }
  /// The messages to in of factors begin, begin + step, … below end, the j-th added at
  /// eta + j·stride, for C columns (C = 0: any) of one shared matrix with finite entries:
  /// AddMessage without its tests (E[out_j] = 0 then adds 0·L_jk = 0 to the same sum in the
  /// same order).
  template <int C>
  void MessagesToIn(size_t begin, size_t end, size_t step, const SlotView* q, double* eta,
                    size_t stride) const {
    constexpr int kSize = C > 0 ? C : kMaxRows;
    const int columns = C > 0 ? C : columns_;
    if (columns > kSize) {
      for (size_t n = begin; n < end; n += step, eta += stride) AddMessage(kIn, n, q, eta);
      return;
    }
    const double* log_columns[kSize];
    for (int k = 0; k < columns; ++k) log_columns[k] = q[kColumn0 + k].At(0);
    for (size_t n = begin; n < end; n += step, eta += stride) {
      const double* out = q[kOut].At(n);
      double sum[kSize];
      for (int k = 0; k < columns; ++k) sum[k] = 0.0;
      for (int j = 0; j < rows_; ++j) {
        const double o = out[j];
        for (int k = 0; k < columns; ++k) sum[k] += o * log_columns[k][j];
      }
      for (int k = 0; k < columns; ++k) eta[k] += sum[k];
    }
  }
  /// Calls f(std::integral_constant<int, N>()) with N = n for n = 2..8, else N = 0.
  template <class F>
  static void WithSmall(int n, F&& f) {
    switch (n) {
      case 2: f(std::integral_constant<int, 2>()); break;
      case 3: f(std::integral_constant<int, 3>()); break;
      case 4: f(std::integral_constant<int, 4>()); break;
      case 5: f(std::integral_constant<int, 5>()); break;
      case 6: f(std::integral_constant<int, 6>()); break;
      case 7: f(std::integral_constant<int, 7>()); break;
      case 8: f(std::integral_constant<int, 8>()); break;
      default: f(std::integral_constant<int, 0>()); break;
    }
  }
  /// Rows or columns that the generic (N = 0) kernels still keep on the stack.
  static constexpr int kMaxRows = 64;

  int columns_;
  int rows_ = 1;
  bool columns_shared_ = false;  // every factor reads the same matrix (set by Bind)
};

}  // namespace

std::unique_ptr<Node> MakeLearnedTransitionNode(int num_columns) {
  return std::make_unique<LearnedTransitionNode>(num_columns);
}


const NodeType& TransitionNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Transition";
    t.summary = "p(out = j | in = k) = A[j][k]: hidden Markov chains, A known or learned";
    t.formula = "U = −Σ_jk E[out_j] E[in_k] E[log A_jk]";
    Parameter matrix = WholeArray("matrix", "A (K x L, columns sum to 1), or a MatrixDirichlet "
                                  "variable (its L Dirichlet columns)", {Family::kDirichlet});
    matrix.constant = ConstantKind::kMatrix;
    t.parameters = {Variable("out", "the next state or the symbol, K outcomes",
                             {Family::kCategorical}),
                    Variable("in", "the state, L outcomes", {Family::kCategorical}), matrix};
    t.make = [](const NodeArguments& a) -> std::unique_ptr<Node> {
      // Rows of the matrix are out's outcomes, columns in's states.
      const bool learned = a.is_variable("matrix");
      const size_t rows = learned ? static_cast<size_t>(a.dim("matrix"))
                                  : static_cast<size_t>(a.matrix("matrix").rows());
      const size_t cols = learned ? a.count("matrix")
                                  : static_cast<size_t>(a.matrix("matrix").cols());
      const std::string matrix =
          (learned ? "the matrix " + a.describe("matrix") + ", " : std::string("the ")) +
          std::to_string(rows) + "x" + std::to_string(cols) + (learned ? "" : " matrix");
      for (const std::string slot : {"out", "in"}) {
        const bool out = slot == "out";
        const size_t expected = out ? rows : cols;
        if (a.is_variable(slot) && static_cast<size_t>(a.dim(slot)) != expected)
          a.Fail(slot, "expected a Categorical variable with " + std::to_string(expected) +
                           " outcomes (the " + (out ? "rows" : "columns") + " of " + matrix +
                           "), found " + a.describe(slot) + " with " +
                           std::to_string(a.dim(slot)));
      }
      if (learned) return MakeLearnedTransitionNode(static_cast<int>(cols));
      try {
        return MakeTransitionNode(a.matrix("matrix"));
      } catch (const ModelError& e) {
        a.Fail("matrix", e.what());
      }
    };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "A", "family": "MatrixDirichlet", "dim": [2, 2]},
    {"name": "x", "family": "Categorical", "dim": 2, "shape": [4]},
    {"name": "y", "family": "Categorical", "dim": 3, "observed": [0, 2, 2, 1]}
  ],
  "factors": [
    {"node": "MatrixDirichlet", "out": "A", "alpha": [[2.0, 1.0], [1.0, 2.0]]},
    {"node": "Categorical", "out": "x[0]", "p": [0.5, 0.5]},
    {"node": "Transition", "for": {"t": [1, 4]}, "out": "x[t]", "in": "x[t-1]", "matrix": "A"},
    {"node": "Transition", "for": {"t": [0, 4]}, "out": "y[t]", "in": "x[t]",
     "matrix": [[0.7, 0.1], [0.2, 0.2], [0.1, 0.7]]}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
