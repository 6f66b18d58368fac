#ifndef VFE_SCHEDULERS_SWEEPS_H_
#define VFE_SCHEDULERS_SWEEPS_H_

// The loop every scheduler shares: the free-energy trace, the iteration reports, the
// callback, the stopping rule, numerical failures, the timing and the result's words. A
// scheduler supplies one sweep (or round), how F is evaluated, and its own ends of a run.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/options.h"

namespace vfe {

/// What one sweep (or round) of a scheduler did; RunLoop decides what follows.
struct StepOutcome {
  enum class Kind {
    kDone,    ///< F is evaluated and the shared rules apply
    kFailed,  ///< a numerical failure: the run ends before F is evaluated
    /// A rule of the scheduler's own (the change of BP's beliefs, quiescence, a cap on updates)
    /// ends the run once F is recorded and the callback has had its say.
    kFinished,
  };
  /// The sweep ran; the shared rules decide.
  static StepOutcome Done() { return StepOutcome(); }
  /// `what` failed; the message is "sweep N: " + what.
  static StepOutcome Failed(std::string what);
  /// The run ends with `termination` and `message`, unless F is not finite or the callback
  /// stops it first.
  static StepOutcome Finished(Termination termination, std::string message);

  Kind kind = Kind::kDone;
  Termination termination = Termination::kConverged;  ///< of kFinished
  std::string message;  ///< kFailed: what failed; kFinished: the result's message
};

/// How the loop counts and words what a scheduler runs.
struct LoopWords {
  const char* unit;  ///< "sweep": a failure reads "sweep 3: the free energy is nan"
  /// After a count of one: "sweeps" (the sweep schedulers' wording, "after 1 sweeps") or
  /// "round"; after any other count: "sweeps" or "rounds".
  const char* one;
  const char* many;
  /// "3 sweeps", "1 round".
  std::string Count(int n) const;
};

/// Sweeps: the wording of the sequential, parallel and belief-propagation schedulers.
inline constexpr LoopWords kSweepWords{"sweep", "sweeps", "sweeps"};
/// Rounds: the wording of the asynchronous scheduler.
inline constexpr LoopWords kRoundWords{"round", "round", "rounds"};

/// What the loop takes from a scheduler's options.
struct LoopRules {
  /// `callback` (which may be empty) must outlive the run.
  LoopRules(int max_iterations, double tolerance, const IterationCallback& callback,
            LoopWords words)
      : max_iterations(max_iterations),
        tolerance(tolerance),
        callback(&callback),
        words(words),
        reserved_iterations(max_iterations) {}

  int max_iterations;
  /// Stop when the relative change of F falls below this, from the second sweep on.
  double tolerance;
  const IterationCallback* callback;
  LoopWords words;
  /// "converged after 9 sweeps: the relative change of F was 3e-10" rather than "converged
  /// after 9 sweeps" (belief propagation, where it is one of two rules).
  bool name_relative_change = false;
  int reserved_iterations;  ///< F values reserved up front (all max_iterations by default)
  /// Warnings the result starts with (Result::warnings).
  std::vector<std::string> warnings;
  /// True when every step is a mean-field coordinate update, which never raises F: a rise is
  /// then reported as a warning (belief propagation's Bethe F may rise).
  bool mean_field = true;
};

/// The hidden variables a sweep updates: options.order, or every hidden variable not in
/// options.fixed. Throws OptionsError for an order or fixed entry that is observed or not of
/// this graph, a fixed variable in the order, or part of a cluster. Appends to `warnings` the
/// graph's own (FactorGraph::warnings) and one for each hidden variable, not fixed, that the
/// order leaves out (all or some of its elements).
std::vector<Variable> SweepOrder(const FactorGraph& graph, const SchedulerOptions& options,
                                 std::vector<std::string>& warnings);

/// True unless a node of the graph is a registered type with a parameter whose messages are
/// not variational (Parameter::conjugate false: Delta's linearised messages) and whose
/// updates the engine does not check on F (Node::StepsOnFreeEnergy). Otherwise each
/// update minimises F over its variable (the Node contract, assumed of unregistered nodes
/// too), and F never rises.
bool EveryUpdateLowersF(const FactorGraph& graph);

/// Adds FactorGraph::CollapsedComponents and RefusedSteps to the result's warnings, unless
/// the run failed.
void AddEndOfRunWarnings(const FactorGraph& graph, Result& result);

/// Ends a graph's row shard (FactorGraph::SetRowShard) when a run ends, however it ends.
class RowShardGuard {
 public:
  explicit RowShardGuard(FactorGraph& graph) : graph_(graph) {}
  RowShardGuard(const RowShardGuard&) = delete;
  RowShardGuard& operator=(const RowShardGuard&) = delete;
  ~RowShardGuard() { graph_.SetRowShard(RowShard()); }

 private:
  FactorGraph& graph_;
};

/// Milliseconds since `start`.
double ElapsedMs(std::chrono::steady_clock::time_point start);

/// "the update of x[3] gave an improper posterior (its messages do not sum to a proper
/// Gaussian)": what failed when an update of `element` (a name) found no posterior.
std::string ImproperPosteriorText(const std::string& element, Family family);

/// Evaluates F, then runs `step(n)` for sweeps n = 1, 2, ... and F after each until one of:
/// a failed step or a non-finite F (kNumericalFailure; a failed step is not counted and adds no
/// F), the callback returning false (kStopped), the step's own end (kFinished), a relative
/// change of F below rules.tolerance from the second sweep on (kConverged), or
/// rules.max_iterations sweeps (kMaxIterations). The callback sees every sweep whose F is
/// finite, before any rule that ends the run. Times from `start`.
Result RunLoop(const LoopRules& rules, std::chrono::steady_clock::time_point start,
               const std::function<StepOutcome(int)>& step,
               const std::function<double()>& free_energy);

/// Runs sweeps until convergence, the cap, the callback or a numerical failure.
/// `update(v)` updates every element of v (elements v.begin() .. v.begin() + v.size() − 1 of
/// its variable) and returns the index of the first that failed, or v.begin() + v.size();
/// `free_energy()` evaluates F. The result starts with `warnings` (SweepOrder's); after the
/// first sweep that raises F, the next evaluates F after each variable's update and names the
/// variable whose update raised it; collapsed mixture components are added at the end.
Result RunSweeps(const FactorGraph& graph, const SchedulerOptions& options,
                 const std::vector<Variable>& order, std::vector<std::string> warnings,
                 const std::function<size_t(const Variable&)>& update,
                 const std::function<double()>& free_energy);

}  // namespace vfe

#endif  // VFE_SCHEDULERS_SWEEPS_H_
