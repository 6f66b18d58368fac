#include "vfe/schedulers/belief_propagation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "schedulers/sweeps.h"
#include "vfe/core/format.h"

namespace vfe {

void BeliefPropagationOptions::Validate() const {
  if (max_iterations < 1)
    throw OptionsError("max_iterations must be >= 1, got " + std::to_string(max_iterations));
  if (!(tolerance >= 0) || !std::isfinite(tolerance))
    throw OptionsError("tolerance must be a finite number >= 0, got " + FormatNumber(tolerance));
  if (!(free_energy_tolerance >= 0) || !std::isfinite(free_energy_tolerance))
    throw OptionsError("free_energy_tolerance must be a finite number >= 0, got " +
                       FormatNumber(free_energy_tolerance));
  if (!(damping >= 0 && damping < 1))
    throw OptionsError("damping must be in [0, 1), got " + FormatNumber(damping));
  if (threads < 0)
    throw OptionsError("threads must be >= 0 (0: every core), got " + std::to_string(threads));
}

namespace {

/// Factors and variables handed to a task at a time by the flooding schedule. The result does
/// not depend on it.
constexpr size_t kGrain = 1024;

/// log Σ_k exp(v[k]) over n values, −∞ when every value is.
inline double LogSumExp(const double* v, size_t n) {
  if (n == 2) {
    const double top = std::max(v[0], v[1]);
    if (top == -INFINITY) return -INFINITY;
    return top + std::log1p(std::exp(std::min(v[0], v[1]) - top));
  }
  double top = -INFINITY;
  for (size_t k = 0; k < n; ++k) top = std::max(top, v[k]);
  if (top == -INFINITY) return -INFINITY;
  double sum = 0.0;
  // exp(0) = 1 exactly: the largest term costs no exp.
  for (size_t k = 0; k < n; ++k) sum += v[k] == top ? 1.0 : std::exp(v[k] - top);
  return top + std::log(sum);
}

/// Subtracts the largest entry (a canonical normalisation of a log-message that costs no exp);
/// false when every entry is −∞ (the message says nothing is possible).
inline bool NormaliseMax(double* v, int n) {
  double top = -INFINITY;
  for (int k = 0; k < n; ++k) top = std::max(top, v[k]);
  if (!(top > -INFINITY) || !std::isfinite(top)) return false;
  for (int k = 0; k < n; ++k) v[k] -= top;
  return true;
}

/// Pairwise tables whose finite entries span at most this many nats, and that have no −∞,
/// are also kept as probabilities exp(T − max T) ≥ e^−300: a sum over such a row is then at
/// least e^−300 times its largest term (the cavity's most likely outcome, weight 1), so terms
/// that underflow (below e^−708) change it by less than e^−400 relative.
constexpr double kLinearRange = 300.0;

/// The most hidden variables one factor may join (as Potential's limit); the message loops keep
/// a configuration in fixed arrays of this size.
constexpr size_t kMaxArity = 16;

/// Per-thread buffers, sized once before the sweeps.
struct BpScratch {
  std::vector<double> cavity;  ///< arity x largest cardinality: the cavities of one factor
  std::vector<double> values;  ///< the largest table: the terms of one log-sum-exp
  std::vector<double> out;     ///< the largest cardinality (x2): a new message
};

/// The discrete graph as flat arrays: BP variables (hidden Categorical elements), factors
/// (their tables over their hidden variables) and edges (one per factor and hidden variable,
/// the factor's edges contiguous in its slot order), with the log-messages m_{a→i} of the
/// edges, and each variable's belief as the sum of its finite log-messages plus, per outcome,
/// the number of its messages that are −∞ there (so that a cavity Σ_{b≠a} m_{b→i} is a
/// subtraction, exact for impossible outcomes too).
class LoopyGraph {
 public:
  LoopyGraph(const FactorGraph& graph, double damping);

  size_t num_variables() const { return cardinality_.size(); }
  size_t num_factors() const { return table_.size(); }

  BpScratch MakeScratch() const {
    BpScratch s;
    s.cavity.assign(max_arity_ * max_cardinality_, 0.0);
    s.values.assign(std::max(max_table_, max_cardinality_), 0.0);
    s.out.assign(2 * max_cardinality_, 0.0);
    return s;
  }

  /// Recomputes the messages into variable i, in place (the sequential schedule); false if one
  /// of them says that nothing is possible.
  bool UpdateMessagesInto(size_t i, BpScratch& s) {
    for (uint32_t k = variable_edge_begin_[i]; k < variable_edge_begin_[i + 1]; ++k) {
      const uint32_t e = variable_edges_[k];
      if (!ComputeMessage(e, messages_.data(), messages_.data() + message_offset_[e], s))
        return false;
    }
    return true;
  }

  /// Computes the messages out of factor a from `messages_` into `next` (the flooding
  /// schedule); false if one of them says that nothing is possible.
  bool UpdateMessagesOutOf(size_t a, double* next, BpScratch& s) const {
    for (uint32_t e = factor_edge_begin_[a]; e < factor_edge_begin_[a + 1]; ++e)
      if (!ComputeMessage(e, messages_.data(), next + message_offset_[e], s)) return false;
    return true;
  }

  /// Recomputes variable i's belief from its messages; returns the largest change of a
  /// belief probability, or NaN when no outcome is possible.
  double UpdateBelief(size_t i) {
    const int k_count = cardinality_[i];
    double* log_sum = log_belief_.data() + belief_offset_[i];
    int32_t* zeros = impossible_.data() + belief_offset_[i];
    std::fill_n(log_sum, k_count, 0.0);
    std::fill_n(zeros, k_count, 0);
    for (uint32_t k = variable_edge_begin_[i]; k < variable_edge_begin_[i + 1]; ++k) {
      const double* m = messages_.data() + message_offset_[variable_edges_[k]];
      for (int x = 0; x < k_count; ++x) {
        if (m[x] == -INFINITY) {
          ++zeros[x];
        } else {
          log_sum[x] += m[x];
        }
      }
    }
    double top = -INFINITY;
    for (int x = 0; x < k_count; ++x)
      if (zeros[x] == 0) top = std::max(top, log_sum[x]);
    if (!(top > -INFINITY) || !std::isfinite(top)) return NAN;
    double* p = belief_.data() + belief_offset_[i];
    double total = 0.0;
    for (int x = 0; x < k_count; ++x) {
      const double e = zeros[x] ? 0.0 : (log_sum[x] == top ? 1.0 : std::exp(log_sum[x] - top));
      total += e;
      new_belief_scratch(i)[x] = e;
    }
    log_normaliser_[i] = top + std::log(total);
    double change = 0.0;
    for (int x = 0; x < k_count; ++x) {
      const double value = new_belief_scratch(i)[x] / total;
      change = std::max(change, std::abs(value - p[x]));
      p[x] = value;
    }
    return change;
  }

  /// F_a = Σ_x b_a log(b_a / f_a) of factor a (NaN when its belief is improper).
  double FactorTerm(size_t a, BpScratch& s) const;
  /// (d_i − 1) H[b_i], from the belief of variable i.
  double VariableTerm(size_t i) const {
    const int k_count = cardinality_[i];
    const double* log_sum = log_belief_.data() + belief_offset_[i];
    const int32_t* zeros = impossible_.data() + belief_offset_[i];
    const double* p = belief_.data() + belief_offset_[i];
    // log b(x) = log_sum(x) − log Σ_y exp(log_sum(y)) over the possible outcomes.
    const double log_normaliser = log_normaliser_[i];
    double entropy = 0.0;
    for (int x = 0; x < k_count; ++x)
      if (zeros[x] == 0 && p[x] > 0.0) entropy -= p[x] * (log_sum[x] - log_normaliser);
    const double degree = variable_edge_begin_[i + 1] - variable_edge_begin_[i];
    return (degree - 1.0) * entropy;
  }
  /// Σ of −log f_a(x_observed) over the factors whose variables are all observed.
  double constant_energy() const { return constant_energy_; }

  /// Writes every belief to the graph as the variable's posterior.
  void WriteBeliefs(FactorGraph& graph) const {
    Vector eta;
    for (size_t i = 0; i < num_variables(); ++i) {
      const int k_count = cardinality_[i];
      eta.resize(k_count);
      for (int x = 0; x < k_count; ++x) {
        const size_t j = belief_offset_[i] + x;
        eta[x] = impossible_[j] ? -INFINITY : log_belief_[j];
      }
      graph.SetPosterior(elements_[i], Categorical::FromNatural(eta));
    }
  }

  std::vector<double>& messages() { return messages_; }
  /// Describes the variable of BP index i ("s[3][4]").
  std::string VariableName(const FactorGraph& graph, size_t i) const {
    return graph.ElementName(elements_[i]);
  }
  /// Describes the factor of edge e's factor ("factor 'f' (Potential) #3").
  std::string FactorName(const FactorGraph& graph, size_t a) const;
  uint32_t factor_of_edge(uint32_t e) const { return edge_factor_[e]; }
  uint32_t variable_of_edge(uint32_t e) const { return edge_variable_[e]; }

 private:
  /// The message of edge e (factor a to variable i at position p of a) from the messages in
  /// `source`, damped against source's old message, into `out`.
  bool ComputeMessage(uint32_t e, const double* source, double* out, BpScratch& s) const;
  /// Normalises the new message of edge e, damps it against source's, and writes it to out.
  bool Finish(uint32_t e, const double* source, double* fresh, int k_out, double* out) const;
  /// The cavity Σ_{b∋i, b≠a} m_{b→i} of variable i seen from edge e = (a, i), from `source`.
  void Cavity(uint32_t e, const double* source, double* out) const {
    const uint32_t i = edge_variable_[e];
    const int k_count = cardinality_[i];
    const double* m = source + message_offset_[e];
    const double* log_sum = log_belief_.data() + belief_offset_[i];
    const int32_t* zeros = impossible_.data() + belief_offset_[i];
    for (int x = 0; x < k_count; ++x) {
      const bool own_zero = m[x] == -INFINITY;
      out[x] = zeros[x] - own_zero > 0 ? -INFINITY : log_sum[x] - (own_zero ? 0.0 : m[x]);
    }
  }
  double* new_belief_scratch(size_t i) { return belief_scratch_.data() + belief_offset_[i]; }

  double damping_;
  // Variables.
  std::vector<Variable> elements_;
  std::vector<int> cardinality_;
  std::vector<size_t> belief_offset_;
  std::vector<uint32_t> variable_edge_begin_;  // CSR into variable_edges_
  std::vector<uint32_t> variable_edges_;
  std::vector<double> log_belief_;      // Σ of the finite log-messages into each outcome
  std::vector<int32_t> impossible_;     // the number of −∞ messages into each outcome
  std::vector<double> belief_;          // normalised probabilities
  std::vector<double> log_normaliser_;  // log Σ_x exp(log_belief_) over the possible outcomes
  std::vector<double> belief_scratch_;  // unnormalised probabilities while one is updated
  // Factors.
  std::vector<const double*> table_;  // over the factor's hidden variables, row-major
  std::vector<size_t> table_size_;
  std::vector<uint32_t> factor_edge_begin_;
  std::vector<std::pair<PlateId, size_t>> factor_origin_;  // plate and factor, for messages
  std::vector<double> own_tables_;  // tables conditioned on observed arguments
  // Pairwise tables with no zero and a range of at most kLinearRange nats also as
  // exp(T − max T) (nullptr otherwise), so that their messages cost one exp per outcome of
  // the cavity and one log per outcome of the message; their largest entry max T.
  std::vector<const double*> linear_table_;
  std::vector<double> linear_shift_;
  std::vector<double> linear_tables_;
  double constant_energy_ = 0.0;
  // Edges.
  std::vector<uint32_t> edge_variable_;
  std::vector<uint32_t> edge_factor_;
  std::vector<size_t> message_offset_;
  std::vector<double> messages_;  // log m_{a→i}, normalised to max 0
  size_t max_arity_ = 1, max_cardinality_ = 1, max_table_ = 1;
};

std::string DescribeFactor(const FactorGraph& graph, PlateId plate, size_t n) {
  const std::string& name = graph.plate_name(plate);
  std::string label = name.empty() ? "factor #" + std::to_string(plate) : "factor '" + name + "'";
  label += std::string(" (") + graph.node(plate).type() + ")";
  if (graph.plate_size(plate) > 1) label += ", element " + std::to_string(n) + " of its plate,";
  return label;
}

std::string LoopyGraph::FactorName(const FactorGraph& graph, size_t a) const {
  return DescribeFactor(graph, factor_origin_[a].first, factor_origin_[a].second);
}

LoopyGraph::LoopyGraph(const FactorGraph& graph, double damping) : damping_(damping) {
  if (!graph.finalized()) throw GraphError("belief propagation: finalise the graph first");
  const std::string where = "belief propagation: ";
  // Every factor must be a fixed discrete table. Checked before the variables, and the
  // factors that touch a Categorical variable first, so that a learned transition names
  // itself rather than the prior of its matrix.
  for (int touching_categorical = 1; touching_categorical >= 0; --touching_categorical) {
    for (PlateId p = 0; p < graph.num_plates(); ++p) {
      const std::vector<std::string> slots = graph.node(p).slot_names();
      for (size_t n = 0; n < graph.plate_size(p); ++n) {
        if (graph.FactorLogTable(p, n)) continue;
        std::string detail;
        bool categorical = false;
        for (size_t s = 0; s < slots.size(); ++s) {
          const Variable v = graph.FactorArgument(p, n, s);
          if (graph.family(v) == Family::kCategorical) {
            categorical = true;
          } else if (detail.empty()) {
            detail = ": its slot '" + slots[s] + "' holds " +
                     (graph.observed(v) ? "observed " : "") + "variable '" +
                     graph.variable_name(v.id()) + "' (" + FamilyName(graph.family(v)) + ")";
          }
        }
        if (categorical != (touching_categorical == 1)) break;  // the same for the whole plate
        throw GraphError(where + DescribeFactor(graph, p, n) +
                         " is not a discrete factor with a fixed table" + detail +
                         "; BP takes Categorical variables joined by Potential, Transition with "
                         "a constant matrix and Categorical with constant p");
      }
    }
  }
  // BP variables: the hidden elements, all Categorical.
  std::vector<size_t> first_index(graph.num_variables(), SIZE_MAX);
  for (const Variable& v : graph.HiddenVariables()) {
    if (graph.family(v) != Family::kCategorical)
      throw GraphError(where + "variable '" + graph.variable_name(v.id()) + "' is " +
                       FamilyName(graph.family(v)) + "; BP takes Categorical variables only");
    first_index[v.id()] = elements_.size();
    for (size_t k = 0; k < v.size(); ++k) {
      elements_.push_back(v[k]);
      cardinality_.push_back(graph.dim(v));
    }
  }
  const size_t num_vars = elements_.size();
  belief_offset_.resize(num_vars + 1, 0);
  for (size_t i = 0; i < num_vars; ++i) {
    belief_offset_[i + 1] = belief_offset_[i] + cardinality_[i];
    max_cardinality_ = std::max(max_cardinality_, static_cast<size_t>(cardinality_[i]));
  }

  // Factors and edges. A table with observed arguments is conditioned on their values into
  // own_tables_ (its position recorded first: the vector grows).
  std::vector<size_t> own_offset;  // per factor: SIZE_MAX, or where its table starts
  factor_edge_begin_.push_back(0);
  for (PlateId p = 0; p < graph.num_plates(); ++p) {
    const std::vector<std::string> slots = graph.node(p).slot_names();
    for (size_t n = 0; n < graph.plate_size(p); ++n) {
      const double* full = graph.FactorLogTable(p, n);
      // The table's variables: the Categorical slots, in order.
      std::vector<int> cards;
      std::vector<int> fixed;  // the observed outcome, or −1 for a hidden variable
      std::vector<uint32_t> hidden;
      for (size_t s = 0; s < slots.size(); ++s) {
        const Variable v = graph.FactorArgument(p, n, s);
        if (graph.family(v) != Family::kCategorical) continue;
        const int k_count = graph.dim(v);
        cards.push_back(k_count);
        if (graph.observed(v)) {
          const double* one_hot = graph.Moments(v);
          fixed.push_back(static_cast<int>(std::max_element(one_hot, one_hot + k_count) - one_hot));
        } else {
          fixed.push_back(-1);
          hidden.push_back(static_cast<uint32_t>(first_index[v.id()] + v.begin()));
        }
      }
      size_t hidden_size = 1;
      for (size_t q = 0; q < cards.size(); ++q)
        if (fixed[q] < 0) hidden_size *= cards[q];
      // The entries of the hidden configurations, in row-major order over them.
      auto conditioned = [&](auto&& visit) {
        std::vector<int> x(cards.size(), 0);
        for (size_t q = 0; q < cards.size(); ++q)
          if (fixed[q] >= 0) x[q] = fixed[q];
        for (size_t h = 0; h < hidden_size; ++h) {
          size_t index = 0;
          for (size_t q = 0; q < cards.size(); ++q) index = index * cards[q] + x[q];
          visit(full[index]);
          for (size_t q = cards.size(); q-- > 0;) {
            if (fixed[q] >= 0) continue;
            if (++x[q] < cards[q]) break;
            x[q] = 0;
          }
        }
      };
      bool possible = false;
      conditioned([&](double t) { possible = possible || t > -INFINITY; });
      if (!possible)
        throw ModelError(where + DescribeFactor(graph, p, n) +
                         (hidden.size() == cards.size()
                              ? std::string(" gives probability 0 to every configuration")
                              : " gives probability 0 to every configuration of its hidden "
                                "variables, given the observed values"));
      if (hidden.size() > kMaxArity)
        throw GraphError(where + DescribeFactor(graph, p, n) + " joins " +
                         std::to_string(hidden.size()) + " hidden variables; at most " +
                         std::to_string(kMaxArity) + " are supported");
      if (hidden.empty()) {
        // Nothing to infer: a constant term −log f(x_observed) of F.
        conditioned([&](double t) { constant_energy_ -= t; });
        continue;
      }
      if (hidden.size() == cards.size()) {
        table_.push_back(full);
        own_offset.push_back(SIZE_MAX);
      } else {
        table_.push_back(nullptr);
        own_offset.push_back(own_tables_.size());
        conditioned([&](double t) { own_tables_.push_back(t); });
      }
      table_size_.push_back(hidden_size);
      max_table_ = std::max(max_table_, hidden_size);
      max_arity_ = std::max(max_arity_, hidden.size());
      const uint32_t a = static_cast<uint32_t>(factor_origin_.size());
      factor_origin_.push_back({p, n});
      for (uint32_t i : hidden) {
        edge_variable_.push_back(i);
        edge_factor_.push_back(a);
      }
      factor_edge_begin_.push_back(static_cast<uint32_t>(edge_variable_.size()));
    }
  }
  for (size_t a = 0; a < table_.size(); ++a)
    if (own_offset[a] != SIZE_MAX) table_[a] = own_tables_.data() + own_offset[a];
  // Linear copies of the pairwise tables that allow them, one per distinct table (the
  // factors of a plate often share one).
  std::vector<size_t> linear_offset(table_.size(), SIZE_MAX);
  std::unordered_map<const double*, size_t> linear_of;
  linear_shift_.assign(table_.size(), 0.0);
  for (size_t a = 0; a < table_.size(); ++a) {
    if (factor_edge_begin_[a + 1] - factor_edge_begin_[a] != 2) continue;
    const double* t = table_[a];
    const double top = *std::max_element(t, t + table_size_[a]);
    const double bottom = *std::min_element(t, t + table_size_[a]);
    if (!(bottom > -INFINITY) || top - bottom > kLinearRange) continue;
    linear_shift_[a] = top;
    const auto [it, inserted] = linear_of.emplace(t, linear_tables_.size());
    if (inserted)
      for (size_t j = 0; j < table_size_[a]; ++j) linear_tables_.push_back(std::exp(t[j] - top));
    linear_offset[a] = it->second;
  }
  linear_table_.assign(table_.size(), nullptr);
  for (size_t a = 0; a < table_.size(); ++a)
    if (linear_offset[a] != SIZE_MAX) linear_table_[a] = linear_tables_.data() + linear_offset[a];

  // Edges by variable (CSR), in factor order, and the messages, uniform to start.
  const size_t num_edges = edge_variable_.size();
  variable_edge_begin_.assign(num_vars + 1, 0);
  for (uint32_t i : edge_variable_) ++variable_edge_begin_[i + 1];
  for (size_t i = 0; i < num_vars; ++i) variable_edge_begin_[i + 1] += variable_edge_begin_[i];
  variable_edges_.resize(num_edges);
  std::vector<uint32_t> fill(variable_edge_begin_.begin(), variable_edge_begin_.end() - 1);
  for (uint32_t e = 0; e < num_edges; ++e) variable_edges_[fill[edge_variable_[e]]++] = e;
  message_offset_.resize(num_edges);
  size_t offset = 0;
  for (uint32_t e = 0; e < num_edges; ++e) {
    message_offset_[e] = offset;
    offset += cardinality_[edge_variable_[e]];
  }
  messages_.assign(offset, 0.0);
  log_belief_.assign(belief_offset_[num_vars], 0.0);
  impossible_.assign(belief_offset_[num_vars], 0);
  belief_.assign(belief_offset_[num_vars], 0.0);
  log_normaliser_.assign(num_vars, 0.0);
  belief_scratch_.assign(belief_offset_[num_vars], 0.0);
  for (size_t i = 0; i < num_vars; ++i) {
    if (variable_edge_begin_[i + 1] == variable_edge_begin_[i])
      throw GraphError(where + "variable " + graph.ElementName(elements_[i]) +
                       " is joined to no discrete factor");
    UpdateBelief(i);  // uniform
  }
}

bool LoopyGraph::ComputeMessage(uint32_t e, const double* source, double* out,
                                BpScratch& s) const {
  const uint32_t a = edge_factor_[e];
  const uint32_t first = factor_edge_begin_[a];
  const size_t arity = factor_edge_begin_[a + 1] - first;
  const size_t position = e - first;
  const double* table = table_[a];
  const int k_out = cardinality_[edge_variable_[e]];
  double* fresh = s.out.data();
  if (arity == 1) {
    std::copy_n(table, k_out, fresh);
  } else if (arity == 2) {
    // fresh[x] = log Σ_y exp(T[x, y] + ν(y)), the table row-major over (first, second).
    const uint32_t other = first + (1 - position);
    const int k_other = cardinality_[edge_variable_[other]];
    double* cavity = s.cavity.data();
    Cavity(other, source, cavity);
    const double* linear = linear_table_[a];
    if (linear) {
      // fresh[x] = log Σ_y E[x, y] w(y) up to a constant, w(y) = exp(ν(y) − max ν).
      double top = -INFINITY;
      for (int y = 0; y < k_other; ++y) top = std::max(top, cavity[y]);
      if (!(top > -INFINITY)) return false;
      double* weight = s.values.data();
      for (int y = 0; y < k_other; ++y)
        weight[y] = cavity[y] == top ? 1.0 : std::exp(cavity[y] - top);
      double largest = 0.0;
      for (int x = 0; x < k_out; ++x) {
        double sum = 0.0;
        if (position == 0) {
          const double* row = linear + static_cast<size_t>(x) * k_other;
          for (int y = 0; y < k_other; ++y) sum += row[y] * weight[y];
        } else {
          for (int y = 0; y < k_other; ++y) sum += linear[static_cast<size_t>(y) * k_out + x] * weight[y];
        }
        fresh[x] = sum;
        largest = std::max(largest, sum);
      }
      for (int x = 0; x < k_out; ++x)
        fresh[x] = fresh[x] == largest ? 0.0 : std::log(fresh[x] / largest);
      return Finish(e, source, fresh, k_out, out);
    }
    double* terms = s.values.data();
    for (int x = 0; x < k_out; ++x) {
      if (position == 0) {
        const double* row = table + static_cast<size_t>(x) * k_other;
        for (int y = 0; y < k_other; ++y) terms[y] = row[y] + cavity[y];
      } else {
        for (int y = 0; y < k_other; ++y) terms[y] = table[static_cast<size_t>(y) * k_out + x] + cavity[y];
      }
      fresh[x] = LogSumExp(terms, k_other);
    }
  } else {
    // Any arity: one pass over the table for the largest term of each outcome, one for the
    // sums, with the configuration counted in an odometer (the last variable fastest).
    const size_t stride = max_cardinality_;
    int cards[kMaxArity];
    for (size_t q = 0; q < arity; ++q) {
      cards[q] = cardinality_[edge_variable_[first + q]];
      if (q != position) Cavity(first + static_cast<uint32_t>(q), source, s.cavity.data() + q * stride);
    }
    double* top = s.out.data() + max_cardinality_;
    std::fill_n(top, k_out, -INFINITY);
    double* terms = s.values.data();
    int x[kMaxArity] = {0};
    const size_t size = table_size_[a];
    for (size_t index = 0; index < size; ++index) {
      double t = table[index];
      for (size_t q = 0; q < arity; ++q)
        if (q != position) t += s.cavity[q * stride + x[q]];
      terms[index] = t;
      top[x[position]] = std::max(top[x[position]], t);
      for (size_t q = arity; q-- > 0;) {
        if (++x[q] < cards[q]) break;
        x[q] = 0;
      }
    }
    std::fill_n(fresh, k_out, 0.0);
    for (size_t index = 0; index < size; ++index) {
      const int k = x[position];
      if (terms[index] > -INFINITY)
        fresh[k] += terms[index] == top[k] ? 1.0 : std::exp(terms[index] - top[k]);
      for (size_t q = arity; q-- > 0;) {
        if (++x[q] < cards[q]) break;
        x[q] = 0;
      }
    }
    for (int k = 0; k < k_out; ++k)
      fresh[k] = top[k] == -INFINITY ? -INFINITY : top[k] + std::log(fresh[k]);
  }
  return Finish(e, source, fresh, k_out, out);
}

bool LoopyGraph::Finish(uint32_t e, const double* source, double* fresh, int k_out,
                        double* out) const {
  if (!NormaliseMax(fresh, k_out)) return false;
  if (damping_ > 0.0) {
    // A convex combination of the log-messages; −∞ stays −∞ (an impossible outcome is so in
    // the old message and the new one alike).
    const double* old = source + message_offset_[e];
    for (int k = 0; k < k_out; ++k)
      fresh[k] = (1.0 - damping_) * fresh[k] + damping_ * old[k];
    if (!NormaliseMax(fresh, k_out)) return false;
  }
  std::copy_n(fresh, k_out, out);
  return true;
}

double LoopyGraph::FactorTerm(size_t a, BpScratch& s) const {
  // log b_a(x) = T(x) + Σ_q ν_q(x_q) − L with L = log Σ_x exp(T(x) + Σ_q ν_q(x_q)), so
  // Σ_x b_a log(b_a / f_a) = Σ_x b_a(x) Σ_q ν_q(x_q) − L.
  const uint32_t first = factor_edge_begin_[a];
  const size_t arity = factor_edge_begin_[a + 1] - first;
  const double* table = table_[a];
  const size_t stride = max_cardinality_;
  int cards[kMaxArity];
  for (size_t q = 0; q < arity; ++q) {
    cards[q] = cardinality_[edge_variable_[first + q]];
    Cavity(first + static_cast<uint32_t>(q), messages_.data(), s.cavity.data() + q * stride);
  }
  if (const double* linear = linear_table_[a]) {
    // b_a(x, y) ∝ E[x, y] w_0(x) w_1(y) with w_q = exp(ν_q − max ν_q), and
    // L = log Z + max T + max ν_0 + max ν_1.
    const double* nu0 = s.cavity.data();
    const double* nu1 = s.cavity.data() + stride;
    double* w0 = s.out.data();
    double* w1 = s.values.data();
    const double top0 = *std::max_element(nu0, nu0 + cards[0]);
    const double top1 = *std::max_element(nu1, nu1 + cards[1]);
    if (!(top0 > -INFINITY) || !(top1 > -INFINITY)) return NAN;
    for (int x = 0; x < cards[0]; ++x) w0[x] = nu0[x] == top0 ? 1.0 : std::exp(nu0[x] - top0);
    for (int y = 0; y < cards[1]; ++y) w1[y] = nu1[y] == top1 ? 1.0 : std::exp(nu1[y] - top1);
    double total = 0.0, weighted = 0.0;
    for (int x = 0; x < cards[0]; ++x, linear += cards[1]) {
      if (w0[x] == 0.0) continue;
      for (int y = 0; y < cards[1]; ++y) {
        const double w = linear[y] * w0[x] * w1[y];
        if (w == 0.0) continue;
        total += w;
        weighted += w * (nu0[x] + nu1[y]);
      }
    }
    return weighted / total - (std::log(total) + linear_shift_[a] + top0 + top1);
  }
  const size_t size = table_size_[a];
  double* cavity_sum = s.values.data();
  double top = -INFINITY;
  int x[kMaxArity] = {0};
  for (size_t index = 0; index < size; ++index) {
    double sum = 0.0;
    for (size_t q = 0; q < arity; ++q) sum += s.cavity[q * stride + x[q]];
    cavity_sum[index] = sum;
    top = std::max(top, table[index] + sum);
    for (size_t q = arity; q-- > 0;) {
      if (++x[q] < cards[q]) break;
      x[q] = 0;
    }
  }
  if (!(top > -INFINITY) || !std::isfinite(top)) return NAN;
  double total = 0.0, weighted = 0.0;
  for (size_t index = 0; index < size; ++index) {
    const double t = table[index] + cavity_sum[index];
    if (!(t > -INFINITY)) continue;
    const double w = t == top ? 1.0 : std::exp(t - top);
    total += w;
    weighted += w * cavity_sum[index];
  }
  return weighted / total - (top + std::log(total));
}

}  // namespace

struct BeliefPropagation::Arena {
  explicit Arena(int threads) : arena(threads) {}
  tbb::task_arena arena;
};

BeliefPropagation::BeliefPropagation(BeliefPropagationOptions options)
    : options_(std::move(options)) {
  options_.Validate();
  const int threads = options_.schedule == BpSchedule::kFlooding ? options_.threads : 1;
  arena_ = std::make_unique<Arena>(threads == 0 ? tbb::info::default_concurrency() : threads);
}

BeliefPropagation::~BeliefPropagation() = default;

int BeliefPropagation::threads() const { return arena_->arena.max_concurrency(); }

Result BeliefPropagation::Run(FactorGraph& graph) const {
  // Building the flat graph counts in the time of the run.
  const auto start = std::chrono::steady_clock::now();
  LoopyGraph bp(graph, options_.damping);
  const bool flooding = options_.schedule == BpSchedule::kFlooding;
  const size_t num_vars = bp.num_variables(), num_factors = bp.num_factors();

  // Per-thread buffers; per-factor and per-variable terms of F and the belief changes, summed
  // in a fixed order.
  tbb::enumerable_thread_specific<BpScratch> scratch([&] { return bp.MakeScratch(); });
  std::vector<double> factor_terms(num_factors), variable_terms(num_vars), changes(num_vars);
  std::vector<double> next_messages(flooding ? bp.messages().size() : 0);
  std::vector<char> factor_failed(flooding ? num_factors : 0);

  // Runs body(begin, end) over [0, count): on the arena's threads when flooding.
  auto for_range = [&](size_t count, auto&& body) {
    if (!flooding) {
      body(size_t{0}, count);
      return;
    }
    tbb::parallel_for(tbb::blocked_range<size_t>(0, count, kGrain),
                      [&](const tbb::blocked_range<size_t>& r) { body(r.begin(), r.end()); });
  };
  auto free_energy = [&] {
    for_range(num_factors, [&](size_t begin, size_t end) {
      BpScratch& s = scratch.local();
      for (size_t a = begin; a < end; ++a) factor_terms[a] = bp.FactorTerm(a, s);
    });
    for_range(num_vars, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) variable_terms[i] = bp.VariableTerm(i);
    });
    double f = bp.constant_energy();
    for (double t : factor_terms) f += t;
    for (double t : variable_terms) f += t;
    return f;
  };

  // One sweep: messages, then beliefs. Ends the run when no belief moved by the tolerance.
  auto sweep = [&](int iteration) {
    if (flooding) {
      std::fill(factor_failed.begin(), factor_failed.end(), 0);
      for_range(num_factors, [&](size_t begin, size_t end) {
        BpScratch& s = scratch.local();
        for (size_t a = begin; a < end; ++a)
          factor_failed[a] = !bp.UpdateMessagesOutOf(a, next_messages.data(), s);
      });
      const auto bad = std::find(factor_failed.begin(), factor_failed.end(), 1);
      if (bad != factor_failed.end())
        return StepOutcome::Failed(
            "the messages of " +
            bp.FactorName(graph, static_cast<size_t>(bad - factor_failed.begin())) +
            " give probability 0 to every outcome of one of its variables "
            "(contradictory factors)");
      bp.messages().swap(next_messages);
      for_range(num_vars, [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) changes[i] = bp.UpdateBelief(i);
      });
    } else {
      BpScratch& s = scratch.local();
      for (size_t i = 0; i < num_vars; ++i) {
        if (!bp.UpdateMessagesInto(i, s))
          return StepOutcome::Failed("a message into " + bp.VariableName(graph, i) +
                                     " gives probability 0 to every outcome (contradictory "
                                     "factors)");
        changes[i] = bp.UpdateBelief(i);
        if (std::isnan(changes[i])) break;  // named below
      }
    }
    double change = 0.0;
    for (size_t i = 0; i < num_vars; ++i) {
      if (std::isnan(changes[i]))
        return StepOutcome::Failed("the messages into " + bp.VariableName(graph, i) +
                                   " give probability 0 to every outcome (contradictory "
                                   "factors)");
      change = std::max(change, changes[i]);
    }
    if (change < options_.tolerance)
      return StepOutcome::Finished(Termination::kConverged,
                                   "converged after " + kSweepWords.Count(iteration) +
                                       ": the largest change of a belief was " +
                                       FormatNumber(change));
    return StepOutcome::Done();
  };

  LoopRules rules(options_.max_iterations, options_.free_energy_tolerance, options_.callback,
                  kSweepWords);
  rules.name_relative_change = true;
  rules.mean_field = false;  // the Bethe free energy may rise
  rules.warnings = graph.warnings();
  // Reserved up to a bound: a cap of 10^8 sweeps must not reserve 800 MB up front.
  rules.reserved_iterations = std::min(options_.max_iterations, 4096);
  Result result;
  arena_->arena.execute([&] { result = RunLoop(rules, start, sweep, free_energy); });
  if (result.termination == Termination::kNumericalFailure) {
    result.message += "; the posteriors are left as they were";
  } else {
    bp.WriteBeliefs(graph);
  }
  // The time of the run includes writing the beliefs.
  result.inference_ms = ElapsedMs(start);
  return result;
}

}  // namespace vfe
