#ifndef VFE_SCHEDULERS_STREAM_H_
#define VFE_SCHEDULERS_STREAM_H_

// Streaming inference: data arrive one step at a time, and the posteriors of a step become
// the priors of the next (assumed-density filtering; RxInfer's @autoupdates).
//
// A model is one time slice: the variables and factors of one step. Its inputs are observed
// variables whose values each step brings; its carries say which posterior q_t(from) becomes
// the prior of which element `to` at step t + 1 (a state's filtered posterior: from x[1] to
// x[0]; a learned parameter's posterior: from tau to tau). Each Push sets the inputs, runs VMP
// on the slice to tolerance, records the step's free energy F_t, and carries the posteriors:
//
//   p_{t+1}(to) = exp(η_{t+1}·T − A(η_{t+1})),  η_{t+1} = (1 − λ)·η[q_t(from)] + λ·η_initial,
//
// λ the carry's forgetting (0: none; a decay of the natural parameters towards the first
// prior, so that a drifting parameter can be tracked). When the slice's posterior is exact (a
// cluster over (x_{t−1}, x_t) with known parameters: the Kalman filter, the forward
// algorithm), q_t(x_t) is the filtered posterior p(x_t | y_1:t), F_t = −log p(y_t | y_1:t−1)
// and Σ_t F_t = −log p(y_1:T). Memory does not grow with the number of steps.
//
// An input with a NaN among its values is missing at that step: the slice is built without
// it and the factors that read it (SliceBuilder), so the step predicts it; its F is that of
// the prediction (0 for an exact slice, where nothing was observed).

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vfe/graph/factor_graph.h"

namespace vfe {

/// A posterior carried from each step to the next (elements by name, as
/// FactorGraph::ElementName writes them: "x[1]", "tau").
struct StreamCarry {
  std::string from;  ///< the element whose posterior q_t(from) is carried
  std::string to;    ///< the element whose prior at step t + 1 it becomes (may be `from`)
  /// The prior of `to` at the first step, by its natural parameters (family.h's flat layout;
  /// StreamCarry::Of writes them from a distribution).
  std::vector<double> initial;
  /// λ in [0, 1): the weight of the first prior in each carried prior.
  double forgetting = 0.0;

  /// A carry whose first prior is the distribution `initial` (Gaussian, MvGaussian, Gamma,
  /// Wishart, Beta, Dirichlet, Categorical, Bernoulli).
  template <class D>
  static StreamCarry Of(std::string from, std::string to, const D& initial,
                        double forgetting = 0.0) {
    StreamCarry carry{std::move(from), std::move(to), {}, forgetting};
    carry.initial.resize(static_cast<size_t>(StatSize(D::kFamily, initial.dim())));
    initial.WriteNatural(carry.initial.data());
    return carry;
  }
};

/// Builds one slice into `slice` (a new graph): its variables, factors and clusters, the
/// inputs as observed variables with any values of the right shape (each step sets them),
/// and no factor with a carried `to` as its "out" (the carried prior is added to it).
/// present[i] is false when input i is missing at a step: the builder then leaves out that
/// variable and every factor that reads it. It is called once per pattern of missing inputs
/// met in the stream (the slices are kept), so it must build the same model each time.
using SliceBuilder =
    std::function<void(FactorGraph& slice, const std::vector<bool>& present)>;

/// How each step runs.
struct StreamOptions {
  int max_sweeps = 100;     ///< sweeps at most per step (>= 1)
  /// A step stops when |ΔF| / (½(|F| + |F_prev|)) < tolerance (from its second sweep), or
  /// after one sweep when the slice has one hidden variable that no message to itself reads
  /// (one update reaches its fixed point: the exact filters).
  double tolerance = 1e-12;
  /// Fixed-lag smoothing over the last `lag` steps (0: none). `window` builds the slice's
  /// model over `lag` steps: each input as a variable holding `lag` steps' values (the
  /// slice's elements for the oldest step first), the carries' `to` elements named as in the
  /// slice (the window's first state, the parameters it shares). From step `lag` on, each
  /// Push also runs the window on the last `lag` rows, its carried priors those the filter
  /// started step t − lag + 1 from, so that window() holds q(x_{t−lag} … x_t | y_1:t): the
  /// fixed-lag smoothed posteriors (exact for a cluster with known parameters; with lag = T
  /// at step T, the batch posteriors). Rows with missing values are refused then.
  size_t lag = 0;
  SliceBuilder window;
  /// Throws OptionsError naming the field.
  void Validate() const;
};

/// What one step did.
struct StreamStep {
  size_t step = 0;           ///< 1-based
  double free_energy = 0.0;  ///< F_t of the step's slice after its last sweep
  int sweeps = 0;
  bool converged = false;    ///< false: max_sweeps ran out first
  size_t missing = 0;        ///< the inputs missing at this step (predicted)
};

/// A streaming run. Throws at construction GraphError or ModelError naming what is wrong: an
/// input that is not an observed variable of the slice, or of a family whose values a step
/// cannot bring (Wishart); a carry's element that the slice does not have, is observed, or
/// whose from and to differ in family or dimension; an initial prior of the wrong size or not
/// a proper density; a forgetting outside [0, 1); two carries to one element.
class Stream {
 public:
  /// `inputs`: the observed variables each step brings, by name, in the order of Push's
  /// values.
  Stream(SliceBuilder build, std::vector<std::string> inputs, std::vector<StreamCarry> carries,
         StreamOptions options = {});
  ~Stream();
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;

  /// The numbers one step brings: every input's values one after another (a scalar array of
  /// N elements: N numbers; an array of N vectors of dimension D: N·D, row by row; a
  /// Categorical input: its outcomes 0 … K − 1).
  size_t num_values() const;
  /// One step: `values` holds num_values() numbers. An input with a NaN among its values is
  /// missing (predicted). Throws ModelError, changing nothing, for a wrong count, an infinity
  /// or a value outside the input's support (naming the input and the value), and vfe::Error
  /// for a numerical failure of the step (an improper posterior or a non-finite F), the stream
  /// then as it was before the step.
  const StreamStep& Push(const double* values, size_t count);
  const StreamStep& Push(const std::vector<double>& values) {
    return Push(values.data(), values.size());
  }

  /// The last step (step 0 before the first Push).
  const StreamStep& last() const;
  /// Σ_t F_t over the steps so far.
  double total_free_energy() const;
  /// The slice of the last step, holding its posteriors (the first slice before any Push):
  ///   stream.slice().Posterior<MvGaussian>(stream.Element("x[1]"))
  const FactorGraph& slice() const;
  /// The element called `name` in slice(); GraphError when it has none.
  Variable Element(const std::string& name) const;
  /// The smoothing window of the last step (StreamOptions::lag), holding its posteriors;
  /// GraphError without a window or before step `lag`.
  const FactorGraph& window() const;
  /// The element called `name` in window(); GraphError when it has none.
  Variable WindowElement(const std::string& name) const;
  /// What the slice's Finalize found legal but probably a mistake (FactorGraph::warnings),
  /// each naming its variable.
  const std::vector<std::string>& warnings() const;
  /// The prior a carry will give its `to` at the next step, by natural parameters.
  const std::vector<double>& carried(size_t carry) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vfe

#endif  // VFE_SCHEDULERS_STREAM_H_
