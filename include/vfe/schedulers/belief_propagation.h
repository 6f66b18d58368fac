#ifndef VFE_SCHEDULERS_BELIEF_PROPAGATION_H_
#define VFE_SCHEDULERS_BELIEF_PROPAGATION_H_

#include <memory>

#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/options.h"

namespace vfe {

/// The order of the message updates of loopy belief propagation.
enum class BpSchedule {
  /// Variable by variable in a fixed order (hidden elements in order of declaration): all the
  /// messages into a variable are recomputed from the current messages, then its belief. On
  /// the calling thread.
  kSequential,
  /// Every message recomputed from the messages of the previous sweep, then every belief
  /// ("parallel" updates in libDAI). Runs on `threads` threads; each message is computed by
  /// the same operations whatever the thread count, and F is summed in a fixed order, so the
  /// beliefs and the free-energy trace are bitwise the same for any number of threads.
  kFlooding,
};

/// Options of loopy belief propagation.
struct BeliefPropagationOptions {
  BpSchedule schedule = BpSchedule::kSequential;
  int max_iterations = 1000;  ///< sweeps at most (>= 1)
  /// Stop when no belief probability b_i(x) changed by more than this in a sweep (libDAI's
  /// rule). 0 runs exactly max_iterations sweeps (unless free_energy_tolerance stops it).
  double tolerance = 1e-9;
  /// Also stop when |ΔF| / (½(|F| + |F_previous|)) < this, from the second sweep on
  /// (0: never). F is not monotone under BP: a small change of F alone is a weak sign.
  double free_energy_tolerance = 0.0;
  /// In [0, 1): each new message is m_new^(1−damping) · m_old^damping (a convex combination
  /// of log-messages), which slows the updates and helps oscillating graphs converge. The
  /// fixed points are those of undamped BP.
  double damping = 0.0;
  /// Threads of the flooding schedule (0: every core); the sequential schedule uses one.
  int threads = 1;
  IterationCallback callback;  ///< optional; called after every sweep
  /// Throws OptionsError naming the field, its value and the constraint.
  void Validate() const;
};

/// Sum-product loopy belief propagation on a graph of Categorical variables joined by discrete
/// factors with fixed tables: Potential (any number of variables), Transition with a constant
/// matrix, and Categorical with constant p. Observed Categorical arguments condition the
/// tables. Messages are kept as normalised log-messages (max 0), and every sum over a table
/// is taken relative to its largest term (a log-sum-exp), so nothing underflows however
/// peaked the factors are (log-posteriors of −1000 come out right); impossible configurations
/// (−∞) stay exact zeros. Hot loops run over flat arrays and allocate nothing.
///
/// Messages start uniform. After each sweep the Bethe free energy of the current beliefs,
///
///   F = Σ_a Σ_{x_a} b_a(x_a) log(b_a(x_a) / f_a(x_a)) − Σ_i (d_i − 1) Σ_{x_i} b_i log b_i,
///
/// with b_a ∝ f_a Π_{i∈a} m_{i→a} and b_i ∝ Π_{a∋i} m_{a→i} (d_i: the factors of variable i),
/// enters Result::free_energy. At a fixed point on a tree −F = log Z (the log evidence log
/// p(y)) and the beliefs are the exact marginals; on loopy graphs −F is the Bethe
/// approximation of log Z, neither a lower nor an upper bound (Yedidia, Freeman and Weiss,
/// "Constructing free-energy approximations and generalized belief propagation algorithms",
/// IEEE Trans. Inf. Theory 51(7), 2005). The final beliefs are written back as the
/// variables' posteriors (FactorGraph::Posterior<Categorical>).
class BeliefPropagation {
 public:
  /// Throws OptionsError if the options are invalid.
  explicit BeliefPropagation(BeliefPropagationOptions options);
  ~BeliefPropagation();
  /// Runs sweeps on `graph` (finalised) from uniform messages until the beliefs settle, the
  /// iteration cap, the callback or a numerical failure. Throws GraphError naming the first
  /// factor that is not a fixed discrete table (a continuous node, a learned matrix) or the
  /// first hidden variable that is not Categorical, and ModelError for a factor that the
  /// observed values make impossible.
  Result Run(FactorGraph& graph) const;
  /// The number of threads of the flooding schedule.
  int threads() const;

 private:
  struct Arena;
  BeliefPropagationOptions options_;
  std::unique_ptr<Arena> arena_;
};

}  // namespace vfe

#endif  // VFE_SCHEDULERS_BELIEF_PROPAGATION_H_
