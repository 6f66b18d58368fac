#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/core/format.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& PotentialNodeType();
const NodeType& TransitionNodeType();

namespace {

/// The most variables one potential may join (the table has Π K_i entries).
constexpr int kMaxVariables = 16;

/// Potential(x_1, …, x_n) = exp T[x_1, …, x_n] over Categorical variables: an undirected
/// factor (Ising and Potts couplings, libDAI factors). T is row-major (the last variable
/// changes fastest); −∞ marks impossible configurations. One table for the whole plate, or
/// one per factor.
///   message to x_i:  η_i[k] = Σ_{x: x_i = k} T[x] Π_{j≠i} q_j(x_j)
///   U = −Σ_x T[x] Π_j q_j(x_j)   (configurations of probability 0 count 0)
class PotentialNode final : public Node {
 public:
  /// `declaration`: Potential, or Transition for a known matrix (directed, out and in).
  PotentialNode(int num_variables, std::vector<double> log_tables, const NodeType& declaration,
                bool directed)
      : num_variables_(num_variables),
        tables_(std::move(log_tables)),
        declaration_(declaration),
        directed_(directed) {}
  const char* type() const override { return declaration_.name.c_str(); }
  std::vector<std::string> slot_names() const override {
    return declaration_.SlotNames(
        {{"variables", static_cast<size_t>(std::max(num_variables_, 0))}, {"matrix", 0}});
  }
  Family ObservedFamily(int, const PointMass&) const override { return Family::kCategorical; }
  bool IsDirected() const override { return directed_; }

  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    if (num_variables_ < 1 || num_variables_ > kMaxVariables)
      throw GraphError(where + ": a potential joins 1 to " + std::to_string(kMaxVariables) +
                       " variables, got " + std::to_string(num_variables_));
    table_size_ = 1;
    for (int i = 0; i < num_variables_; ++i) {
      RequireFamily(slots[i], {Family::kCategorical}, where);
      cardinality_[i] = slots[i].dim;
      if (__builtin_mul_overflow(table_size_, static_cast<size_t>(slots[i].dim), &table_size_))
        throw ModelError(where + ": the variables' categories make more table entries than "
                         "can be counted (2^64)");
    }
    size_t per_factor_tables = 0;
    const bool counted = !__builtin_mul_overflow(table_size_, num_factors, &per_factor_tables);
    // One table for the plate, or one per factor.
    if (tables_.size() == table_size_) {
      num_tables_ = 1;
    } else if (num_factors > 1 && counted && tables_.size() == per_factor_tables) {
      num_tables_ = num_factors;
    } else if (num_factors == 1) {
      throw ModelError(where + ": the log-table has " + std::to_string(tables_.size()) +
                       " entries, but the variables' categories make " +
                       std::to_string(table_size_));
    } else {
      throw ModelError(where + ": the log-tables have " + std::to_string(tables_.size()) +
                       " entries, but the variables' categories make " +
                       std::to_string(table_size_) + " per table: expected one table (" +
                       std::to_string(table_size_) + ") or one per factor (" +
                       (counted ? std::to_string(per_factor_tables) : std::string("over 2^64")) +
                       ")");
    }
    for (size_t i = 0; i < tables_.size(); ++i)
      if (std::isnan(tables_[i]) || tables_[i] == INFINITY)
        throw ModelError(where + ": log-table entry " + std::to_string(i % table_size_) +
                         " must be a number or -inf, got " + FormatNumber(tables_[i]));
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    if (num_variables_ > 2) return AccumulateAnyMessage(slot, begin, end, q, eta);
    AddSmallMessages(slot, begin, end, 1, q, eta, 0);
  }

  /// One message per factor (every other square of a grid's row, updated together): the
  /// direct loops of AccumulateMessage without a call per factor.
  void AccumulateMessages(int slot, size_t begin, size_t end, size_t step, const SlotView* q,
                          double* eta, size_t stride, Workspace& ws) const override {
    if (num_variables_ > 2)
      return Node::AccumulateMessages(slot, begin, end, step, q, eta, stride, ws);
    AddSmallMessages(slot, begin, end, step, q, eta, stride);
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    double energy = 0.0;
    if (num_variables_ == 2 && q[2].data) {
      // A pair of a cluster: U = −Σ_ab E[x_a x_b] T[a][b], from the joint moments.
      const size_t size = table_size_;
      for (size_t n = begin; n < end; ++n) {
        const double* table = Table(n);
        const double* joint = q[2].At(n);
        for (size_t i = 0; i < size; ++i)
          if (joint[i] != 0.0) energy -= joint[i] * table[i];
      }
      return energy;
    }
    if (num_variables_ == 2) {
      const int rows = cardinality_[0], cols = cardinality_[1];
      for (size_t n = begin; n < end; ++n) {
        const double* table = Table(n);
        const double* first = q[0].At(n);
        const double* second = q[1].At(n);
        for (int a = 0; a < rows; ++a, table += cols) {
          for (int b = 0; b < cols; ++b) {
            const double weight = 1.0 * first[a] * second[b];
            if (weight != 0.0) energy -= weight * table[b];
          }
        }
      }
      return energy;
    }
    for (size_t n = begin; n < end; ++n) {
      ForEachEntry(n, q, -1, [&](size_t, const int*, double weight, double log_value) {
        if (weight != 0.0) energy -= weight * log_value;
      });
    }
    return energy;
  }

  const double* LogTable(size_t n, const SlotView*) const override { return Table(n); }

  bool JoinsPair(int slot_a, int slot_b) const override {
    return num_variables_ == 2 && slot_a == 0 && slot_b == 1;
  }
  void PairPotential(size_t n, int, int, const SlotView*, double* out,
                     Workspace&) const override {
    std::copy_n(Table(n), table_size_, out);
  }
  bool PairPotentialShared() const override { return num_tables_ == 1; }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    size_t index = 0;
    for (int i = 0; i < num_variables_; ++i)
      index = index * cardinality_[i] + point_values::Outcome(cardinality_[i], q[i].At(n));
    return Table(n)[index];
  }

 private:
  /// The kinds of message with direct loops: a potential of one variable (a field), and one
  /// of two variables (a coupling, a transition) to its slot 0 or to its slot 1.
  enum SmallMessage { kField, kToFirst, kToSecond };

  /// Adds the messages to `slot` of factors n = begin + j·step below end, the j-th at
  /// eta + j·stride (stride 0: all into eta), for one or two variables, the kind of message
  /// fixed at compile time outside the loop.
  void AddSmallMessages(int slot, size_t begin, size_t end, size_t step, const SlotView* q,
                        double* eta, size_t stride) const {
    auto loop = [&](auto kind) {
      for (size_t n = begin; n < end; n += step, eta += stride)
        AddSmallMessage<decltype(kind)::value>(n, q, eta);
    };
    if (num_variables_ == 1) {
      loop(std::integral_constant<SmallMessage, kField>());
    } else if (slot == 0) {
      loop(std::integral_constant<SmallMessage, kToFirst>());
    } else {
      loop(std::integral_constant<SmallMessage, kToSecond>());
    }
  }

  /// Adds factor n's message of the given kind to eta: the field's table, or, with sums in
  /// registers and one store per category, eta[a] += Σ_b q(b) T[a][b] (to slot 0) or
  /// eta[b] += Σ_a q(a) T[a][b] (to slot 1), configurations of probability 0 skipped.
  template <SmallMessage kKind>
  void AddSmallMessage(size_t n, const SlotView* q, double* eta) const {
    const double* table = Table(n);
    if constexpr (kKind == kField) {
      for (int a = 0; a < cardinality_[0]; ++a) eta[a] += table[a];
    } else {
      // The table read along the receiving slot (outer) and the other one (inner).
      constexpr bool kToRows = kKind == kToFirst;
      const int rows = cardinality_[0], cols = cardinality_[1];
      const int outer = kToRows ? rows : cols, inner = kToRows ? cols : rows;
      const int outer_step = kToRows ? cols : 1, inner_step = kToRows ? 1 : cols;
      const double* other = q[kToRows ? 1 : 0].At(n);
      for (int i = 0; i < outer; ++i) {
        double sum = 0.0;
        for (int j = 0; j < inner; ++j)
          if (other[j] != 0.0) sum += other[j] * table[i * outer_step + j * inner_step];
        eta[i] += sum;
      }
    }
  }

  /// The message of a potential over any number of variables. Out of line, so that the
  /// direct loops above do not pay for its stack frame.
  [[gnu::noinline]] void AccumulateAnyMessage(int slot, size_t begin, size_t end,
                                              const SlotView* q, double* eta) const {
    for (size_t n = begin; n < end; ++n) {
      ForEachEntry(n, q, slot, [&](size_t, const int* x, double weight, double log_value) {
        if (weight != 0.0) eta[x[slot]] += weight * log_value;
      });
    }
  }

  /// Calls visit(index, x, Π_{j≠skip} q_j(x_j), T[x]) for every configuration x of factor n.
  template <class Visit>
  void ForEachEntry(size_t n, const SlotView* q, int skip, Visit visit) const {
    const double* table = Table(n);
    std::array<const double*, kMaxVariables> marginal;
    for (int i = 0; i < num_variables_; ++i) marginal[i] = q[i].At(n);
    std::array<int, kMaxVariables> x{};
    for (size_t index = 0; index < table_size_; ++index) {
      double weight = 1.0;
      for (int i = 0; i < num_variables_; ++i)
        if (i != skip) weight *= marginal[i][x[i]];
      visit(index, x.data(), weight, table[index]);
      // Next configuration, the last variable fastest.
      for (int i = num_variables_ - 1; i >= 0; --i) {
        if (++x[i] < cardinality_[i]) break;
        x[i] = 0;
      }
    }
  }

  const double* Table(size_t n) const {
    return tables_.data() + (num_tables_ == 1 ? 0 : n * table_size_);
  }

  int num_variables_;
  std::vector<double> tables_;
  size_t num_tables_ = 1;  // set by Bind
  const NodeType& declaration_;
  bool directed_;
  std::array<int, kMaxVariables> cardinality_{};
  size_t table_size_ = 0;
};

}  // namespace

std::unique_ptr<Node> MakeTransitionNode(const Matrix& matrix) {
  // p(out = j | in = k) = A[j][k]: the potential log A over (out, in), directed.
  for (Eigen::Index k = 0; k < matrix.cols(); ++k) {
    for (Eigen::Index j = 0; j < matrix.rows(); ++j)
      if (!(matrix(j, k) >= 0) || !std::isfinite(matrix(j, k)))
        throw ModelError("Transition: A[" + std::to_string(j) + "][" + std::to_string(k) +
                         "] must be a probability, got " + FormatNumber(matrix(j, k)));
    const double total = matrix.col(k).sum();
    if (std::abs(total - 1.0) > 1e-9 * matrix.rows())
      throw ModelError("Transition: column " + std::to_string(k) +
                       " of A must sum to 1 (p(out | in = k)), sums to " + FormatNumber(total));
  }
  std::vector<double> log_table(static_cast<size_t>(matrix.size()));
  for (Eigen::Index j = 0; j < matrix.rows(); ++j)
    for (Eigen::Index k = 0; k < matrix.cols(); ++k)
      log_table[static_cast<size_t>(j * matrix.cols() + k)] = std::log(matrix(j, k));
  return std::make_unique<PotentialNode>(2, std::move(log_table), TransitionNodeType(), true);
}

std::unique_ptr<Node> MakePotentialNode(int num_variables, std::vector<double> log_tables) {
  return std::make_unique<PotentialNode>(num_variables, std::move(log_tables),
                                         PotentialNodeType(), false);
}


const NodeType& PotentialNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Potential";
    t.summary = "exp T[x₁, …, xₙ] over Categorical variables: an undirected factor (Ising, "
                "Potts, libDAI factors)";
    t.formula = "U = −Σ_x T[x] Π_i q_i(x_i)";
    Parameter variables = Variable("variables", "the n Categorical variables it joins",
                                   {Family::kCategorical});
    variables.connection = Connection::kList;
    t.parameters = {
        variables,
        Optional(Constant("log_table", "one table for every factor", ConstantKind::kTable)),
        Optional(Constant("log_tables", "one table per factor", ConstantKind::kTables))};
    t.exactly_one_of = {{"log_table", "log_tables"}};
    t.make = [](const NodeArguments& a) {
      const Vector table = a.vector(a.has("log_table") ? "log_table" : "log_tables");
      return MakePotentialNode(static_cast<int>(a.count("variables")),
                               std::vector<double>(table.data(), table.data() + table.size()));
    };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [{"name": "s", "family": "Categorical", "dim": 2, "shape": [2, 2]}],
  "factors": [
    {"node": "Potential", "variables": ["s[0][0]", "s[0][1]"], "log_table": [[0.5, -0.5], [-0.5, 0.5]]},
    {"node": "Potential", "variables": ["s[1][0]", "s[1][1]"], "log_table": [[0.5, -0.5], [-0.5, 0.5]]},
    {"node": "Potential", "for": {"j": [0, 2]}, "variables": ["s[0][j]", "s[1][j]"],
     "log_tables": [[[0.8, -0.8], [-0.8, 0.8]], [[-0.3, 0.3], [0.3, -0.3]]]},
    {"node": "Potential", "for": {"i": [0, 2], "j": [0, 2]}, "variables": ["s[i][j]"],
     "log_table": [0.2, -0.2]}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
