#ifndef VFE_SCHEDULERS_SVI_H_
#define VFE_SCHEDULERS_SVI_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vfe/graph/factor_graph.h"

namespace vfe {

/// Where minibatches come from: each call writes the next B data points into the observed
/// variable of a minibatch graph (FactorGraph::SetObservedValues / SetObservedRows).
class MinibatchSource {
 public:
  virtual ~MinibatchSource() = default;
  /// N: the data points of one pass over the data.
  virtual size_t size() const = 0;
  /// B: the data points of one minibatch (the elements of the data variable).
  virtual size_t batch_size() const = 0;
  /// The observed variable the source writes.
  virtual Variable data() const = 0;
  /// Writes the next B data points into `graph`, continuing with the next pass after the last
  /// point of one.
  virtual void Next(FactorGraph& graph) = 0;
  /// Starts again from the first data point.
  virtual void Rewind() = 0;
};

/// Minibatches from rows held in memory, in a new random order every pass (seeded).
class MatrixMinibatches final : public MinibatchSource {
 public:
  /// `rows`: one data point per row (one column for scalar data); `data`: the graph's
  /// observed variable of `batch_size` elements. Throws GraphError unless 2 ≤ batch_size ≤
  /// rows.rows().
  MatrixMinibatches(Matrix rows, const Variable& data, size_t batch_size, uint64_t seed = 0);
  size_t size() const override { return static_cast<size_t>(rows_.rows()); }
  size_t batch_size() const override { return batch_size_; }
  Variable data() const override { return data_; }
  void Next(FactorGraph& graph) override;
  void Rewind() override;

 private:
  void Shuffle();
  Matrix rows_;
  Variable data_;
  size_t batch_size_;
  uint64_t seed_;
  uint64_t pass_ = 0;
  std::vector<size_t> order_;
  size_t position_ = 0;
  Matrix batch_;
};

/// What StochasticVariationalInference reports after each minibatch step.
struct SviStep {
  size_t step = 0;            ///< 1-based
  double step_size = 0.0;     ///< ρ_t
  /// F of the whole data set estimated from this minibatch: the global terms plus N/B times
  /// the minibatch's data-plate energies and local entropies (unbiased, noisy).
  double free_energy_estimate = 0.0;
  int local_sweeps = 0;       ///< sweeps of the local variables on this minibatch
  double elapsed_ms = 0.0;
};

struct SviOptions {
  size_t steps = 1000;           ///< minibatch steps
  double forgetting_rate = 0.7;  ///< κ in (0.5, 1] of ρ_t = (t + delay)^−κ, t = 0, 1, …
  double delay = 1.0;            ///< τ ≥ 0 (with τ = 1 the first step is ρ = 1)
  int local_sweeps = 20;         ///< local sweeps per minibatch, at most (≥ 1)
  /// Local sweeps stop once the minibatch's F changes by less than this, relatively.
  double local_tolerance = 1e-9;
  std::function<bool(const SviStep&)> callback;  ///< after every step; false stops the run
  /// Over several processes (the MPI layer's MpiExchange; must outlive the run): each process
  /// runs the same minibatch graph on a source of its own rows (its shard of the data, its own
  /// order); each step, every process solves its own minibatch, and the natural-gradient step
  /// of every global uses all processes' minibatch messages (exchanged, added in process
  /// order), weighted N / (P·B) with N the rows of all processes: an effective minibatch of
  /// P·B. The globals stay identical on every process. The F estimate and FullFreeEnergy are
  /// summed over the processes. Every process must use the same B. Null: one process.
  const ShardExchange* exchange = nullptr;
  /// Throws OptionsError naming the field, its value and the constraint.
  void Validate() const;
};

struct SviResult {
  size_t steps = 0;
  std::vector<double> free_energy_estimate;  ///< one per step (SviStep)
  double inference_ms = 0.0;
};

/// Stochastic variational inference (Hoffman, Blei, Wang & Paisley 2013) on a minibatch
/// graph: a model written for B data points, whose hidden variables are local (one element
/// per data point: labels, per-point latents) or global (everything else). Each step loads a
/// minibatch, restarts the local posteriors from where they were when the call began (where
/// Finalize put them, on a fresh graph) and sweeps them to
/// convergence with the globals fixed, then moves every global posterior by a natural-gradient
/// step η ← (1 − ρ_t) η + ρ_t η̂, where η̂ is its VMP update with the data plates (those that
/// read a local variable or the data) standing for all N points (weight N/B). The graph's
/// posteriors are the result. Memory: one minibatch, whatever N is.
class StochasticVariationalInference {
 public:
  explicit StochasticVariationalInference(SviOptions options = {});
  /// Throws GraphError unless `graph` is finalised, `local` are hidden variables of it with
  /// B ≥ 2 elements each, and no variable is a cluster.
  SviResult Run(FactorGraph& graph, const std::vector<Variable>& local,
                MinibatchSource& source) const;
  /// F of the whole data set at the graph's global posteriors, with every local posterior at
  /// its optimum given them: one pass over the data (N/B minibatches, local sweeps to
  /// convergence on each), the global terms counted once. Comparable with the F of
  /// full-batch VMP. Throws GraphError unless B divides N.
  double FullFreeEnergy(FactorGraph& graph, const std::vector<Variable>& local,
                        MinibatchSource& source) const;

 private:
  SviOptions options_;
};

}  // namespace vfe

#endif  // VFE_SCHEDULERS_SVI_H_
