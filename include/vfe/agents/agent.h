#ifndef VFE_AGENTS_AGENT_H_
#define VFE_AGENTS_AGENT_H_

// Active inference agents on discrete POMDPs, in pymdp's layout and with pymdp's numbers.
//
// The generative model (Friston et al. 2017, "Active inference: a process theory"; pymdp,
// Heins et al. 2022, JOSS 7(73) 4098):
//   p(o_m | s) = A[m][o_m, s_{A_factor_list[m]}]          one tensor per modality m
//   p(s_f' | s, u) = B[f][s_f', s_{B_factor_list[f]}, u_f]  one tensor per hidden factor f
//   p(s_f at the first step) = D[f],   log-preferences C[m],   habits E over policies.
//
// One step of the agent: the prior over states (D at the start of an episode, else B of the
// last action applied to the last posterior), mean-field state inference from the observation
// (fixed-point iteration), the expected free energy of every policy, q(π), an action.
//
// Sign conventions (pymdp's): `neg_efe` is pymdp's G, "higher is better":
//   neg_efe = utility + state_info_gain (+ pA_info_gain + pB_info_gain when novelty is on)
//   efe     = −neg_efe = risk + ambiguity − novelty
//   q(π)    = softmax(γ · neg_efe + ln E)
// with utility = Σ_t Σ_m E_{q(o)}[ln softmax(C[m])], risk = Σ KL[q(o) ‖ softmax(C[m])],
// ambiguity = Σ E_{q(s)}[H[A[m](·|s)]] and state_info_gain = Σ (H[q(o)] − ambiguity), so that
// risk + ambiguity = −(utility + state_info_gain) (exactly with Numerics::kExact; to about
// 1e-6 with pymdp's floors, see Numerics).

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "vfe/core/error.h"
#include "vfe/core/splitmix.h"
#include "vfe/core/types.h"

namespace vfe {
namespace agents {

/// A dense array, row-major (the last index changes fastest), as it is written in nested JSON
/// lists and in NumPy.
struct Tensor {
  std::vector<int> shape;
  std::vector<double> data;
  Tensor() = default;
  Tensor(std::vector<int> shape, std::vector<double> data)
      : shape(std::move(shape)), data(std::move(data)) {}
  /// A tensor of `shape` filled with `value`.
  static Tensor Filled(std::vector<int> shape, double value);
  size_t size() const { return data.size(); }
  int rank() const { return static_cast<int>(shape.size()); }
};

/// A policy: policy[t][f] is the action of hidden factor f at future step t.
using Policy = std::vector<std::vector<int>>;

/// The generative model in pymdp's layout. Empty members take pymdp's defaults.
struct GenerativeModel {
  /// A[m]: shape (num_obs[m], num_states of each factor in A_factor_list[m]); every column
  /// A[m][:, s…] sums to one. May be left empty when pA is given (A = pA normalised).
  std::vector<Tensor> A;
  /// The factors each modality depends on; empty: every modality depends on every factor.
  std::vector<std::vector<int>> A_factor_list;
  /// B[f]: shape (num_states[f], num_states of each factor in B_factor_list[f], num_controls[f]);
  /// every column B[f][:, s…, u] sums to one. May be empty when pB is given.
  std::vector<Tensor> B;
  /// The factors each factor's dynamics depend on; empty: [[0], [1], …].
  std::vector<std::vector<int>> B_factor_list;
  /// C[m]: log-preferences over o_m (pymdp passes them through ln softmax); empty: zeros.
  std::vector<Vector> C;
  /// D[f]: prior over the first state; empty: pD normalised, or uniform.
  std::vector<Vector> D;
  /// E: prior over policies (habits), one entry per policy, ≥ 0; empty: uniform.
  Vector E;
  /// Dirichlet counts over A, B, D (same shapes); empty: not learned, no novelty.
  std::vector<Tensor> pA;
  std::vector<Tensor> pB;
  std::vector<Vector> pD;
  /// Explicit policies; empty: every combination of controls over `policy_len` steps, in
  /// itertools.product order (the last factor of the last step changes fastest).
  std::vector<Policy> policies;
};

/// How state inference is computed.
enum class StateInferenceMethod {
  kFixedPoint,   ///< flat arrays, no allocation per step (the fast path)
  kFactorGraph,  ///< a vfe FactorGraph per step, run by the SequentialScheduler (reference)
};

/// The order of the factor updates within one fixed-point iteration.
enum class FactorUpdate {
  /// Every factor from the previous iteration's posteriors (pymdp's run_vanilla_fpi_factorized).
  kSimultaneous,
  /// One factor after the other, each seeing the factors updated before it (VMP coordinate
  /// ascent: what the vfe engine's SequentialScheduler does; F never increases).
  kSequential,
};

/// Action selection from the action marginals p(u_f) = Σ_{π: π[0][f] = u} q(π).
enum class ActionSelection {
  /// argmax; actions within 1e-8 of the largest marginal are tied and the lowest index wins
  /// (pymdp draws one of them at random).
  kDeterministic,
  /// a draw from softmax(α ln p(u_f)), from SplitMix64(seed).
  kStochastic,
};

/// Floors in logarithms and entropies.
enum class Numerics {
  /// pymdp's: ln(x + 1e-16) everywhere, and in the state information gain (spm_MDP_G) the
  /// entropy of A as Σ_o A ln(A + e^−16) over the state configurations of probability > e^−16.
  /// Reproduces pymdp to rounding.
  kPymdp,
  /// 0 ln 0 = 0 and no thresholds in the information gain (risk + ambiguity equals
  /// −(utility + state_info_gain) to rounding). State inference keeps ln(x + 1e-16) so that
  /// zero likelihoods stay finite.
  kExact,
};

/// When learned Dirichlet counts of A and B change the model.
enum class LearningSchedule {
  kStep,     ///< after every step (pymdp's update_A / update_B in the loop)
  kEpisode,  ///< the increments of every step are summed and applied at EndEpisode()
};

/// When in a step pA and pB learn (both are pymdp loops in use).
enum class LearningTime {
  kAfterAction,    ///< after the action is selected: this step's policies saw the old counts
  kBeforePlanning, ///< right after state inference: this step's policies see the new counts
};

/// Settings of an agent (pymdp's Agent arguments). Validate() throws OptionsError.
struct AgentSettings {
  int policy_len = 1;  ///< steps of the enumerated policies (ignored with explicit policies)
  double gamma = 16.0;  ///< policy precision γ
  double alpha = 16.0;  ///< action precision α (stochastic selection)
  ActionSelection action_selection = ActionSelection::kDeterministic;
  uint64_t seed = 0;  ///< stochastic action selection
  bool use_utility = true;
  bool use_states_info_gain = true;
  bool use_param_info_gain = false;  ///< novelty of pA and pB, when they are given
  int num_iter = 10;                 ///< fixed-point iterations at most
  double dF_tol = 0.001;  ///< stop when |ΔF| < dF_tol (pymdp's rule, see InferStates)
  StateInferenceMethod method = StateInferenceMethod::kFixedPoint;
  FactorUpdate factor_update = FactorUpdate::kSimultaneous;
  Numerics numerics = Numerics::kPymdp;
  bool learn_A = true;  ///< update pA after every step (when pA is given)
  bool learn_B = true;  ///< update pB after every step but the first (when pB is given)
  bool learn_D = true;  ///< update pD at the end of every episode (when pD is given)
  double lr_pA = 1.0, lr_pB = 1.0, lr_pD = 1.0;  ///< learning rates (> 0)
  LearningSchedule learn_every = LearningSchedule::kStep;  ///< pA and pB (pD: every episode)
  LearningTime learn_when = LearningTime::kAfterAction;   ///< where Step learns pA and pB
  std::vector<int> modalities_to_learn;  ///< empty: all
  std::vector<int> factors_to_learn;     ///< empty: all (for pB and pD)
  int num_threads = 1;  ///< policy evaluation threads; 0 = all cores. Results do not depend on it.
  void Validate() const;
};

/// The expected free energy of every policy and its parts (see the file comment).
struct PolicyEvaluation {
  Vector neg_efe;  ///< pymdp's G
  Vector utility, state_info_gain, pA_info_gain, pB_info_gain;
  Vector risk, ambiguity;
  Vector q_pi;
};

/// What one step computed.
struct StepResult {
  std::vector<int> observation;
  std::vector<Vector> prior;  ///< the empirical prior over each factor
  std::vector<Vector> qs;     ///< the posterior over each factor
  double free_energy = 0.0;   ///< the variational free energy F of this step's posterior
  int fpi_iterations = 0;     ///< fixed-point iterations run
  PolicyEvaluation policies;
  std::vector<Vector> action_marginals;
  std::vector<int> action;  ///< the action selected (or set by SetAction)
};

/// An active inference agent. Construction validates the model (ModelError naming the part,
/// what was expected and what was found) and the settings (OptionsError).
///
/// Step order (pymdp's action–perception loop, and the order of learning):
///   1. InferStates(o): prior = D (first step of an episode) or B(last action)·q_prev;
///      q(s) by fixed-point iteration from uniform posteriors.
///   2. InferPolicies(): G of every policy from q(s), with the novelty of the current counts.
///   3. SelectAction().
///   4. Learn(): pA += lr·(o ⊗ q(s)) where A > 0; pB[…, u_prev] += lr·(q(s) ⊗ q_prev) where
///      B > 0 (the transition the last action caused; from the second step); A, B renormalised.
///   With LearningTime::kBeforePlanning, Step runs step 4 between steps 1 and 2 instead
///   (pymdp's loop that calls update_A / update_B right after infer_states): the same
///   increments (the transition the last action caused, the current observation), but this
///   step's policies are evaluated with the counts they changed.
///   With LearningSchedule::kEpisode the increments of step 4 are summed (the masks and the
///   model stay those of the episode's start) and applied by EndEpisode().
///   EndEpisode(): pD += lr·q(s at the episode's first step) where pD > 0; D renormalised.
class Agent {
 public:
  Agent(GenerativeModel model, AgentSettings settings);
  ~Agent();
  Agent(Agent&&) noexcept;
  Agent& operator=(Agent&&) noexcept;

  /// Starts an episode (beliefs reset, no last action); learned counts are kept.
  void Reset();
  /// Steps 1–4 above (step 4 where settings.learn_when puts it); returns this step's result (owned by the agent, valid until the next
  /// call). Throws ModelError for an observation out of range.
  const StepResult& Step(const std::vector<int>& observation);
  /// Step 1. pymdp's rule: at most num_iter iterations, stopping once |F_k − F_{k−1}| <
  /// dF_tol, where F_0 is F of the uniform start without its accuracy term. With one factor,
  /// one exact update. (The first iteration always runs; pymdp starts from dF = 1 and would
  /// run none for dF_tol > 1.)
  void InferStates(const std::vector<int>& observation);
  /// Step 2.
  void InferPolicies();
  /// Step 3; returns the action.
  const std::vector<int>& SelectAction();
  /// Replaces the selected action (replaying another agent's choices); it becomes the last
  /// action for the next prior and for pB learning.
  void SetAction(const std::vector<int>& action);
  /// Step 4: LearnA() then LearnB().
  void Learn();
  /// Step 4's pA update alone, from the observation of the last InferStates (pymdp's
  /// update_A); a no-op without pA or with learn_A off.
  void LearnA();
  /// Step 4's pB update alone, from the last two posteriors over states and the action
  /// between them (pymdp's update_B); a no-op on the first step, without pB or with learn_B
  /// off.
  void LearnB();
  /// LearnB() from `qs_previous` (one vector per hidden state factor) as the posterior of the
  /// step before: pymdp's update_B(qs_prev). Throws ModelError for a wrong count or size.
  void LearnB(const std::vector<Vector>& qs_previous);
  /// The episode's deferred pA and pB increments (LearningSchedule::kEpisode) and pD learning
  /// (when pD is given and learn_D), then Reset().
  void EndEpisode();

  const StepResult& result() const;
  /// The model as it is now (A, B, D follow the learned counts).
  const GenerativeModel& model() const;
  const AgentSettings& settings() const;
  const std::vector<Policy>& policies() const;
  const std::vector<int>& num_obs() const;
  const std::vector<int>& num_states() const;
  const std::vector<int>& num_controls() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Validates `model` and fills its defaults (factor lists, C, D, E, A from pA, B from pB,
/// policies enumerated over `policy_len` steps). Throws ModelError naming the part at fault
/// ("A[1]", "B[0][:, 2, 1]", "policies[3][0][1]"), what was expected and what was found.
void CompleteModel(GenerativeModel& model, int policy_len);

/// The environment an agent acts in (the generative process): its own A and B (with factor
/// lists), a true state and a seeded SplitMix64 stream for sampling.
class Environment {
 public:
  /// Throws ModelError if the tensors do not fit the agent's model dimensions.
  Environment(std::vector<Tensor> A, std::vector<std::vector<int>> A_factor_list,
              std::vector<Tensor> B, std::vector<std::vector<int>> B_factor_list,
              std::vector<int> initial_state, uint64_t seed);
  /// Back to the initial state (the random stream continues).
  void Reset();
  /// o_m ~ A[m][:, s].
  std::vector<int> Observe();
  /// s_f ~ B[f][:, s_{B_factor_list[f]}, u_f].
  void Act(const std::vector<int>& action);
  const std::vector<int>& state() const { return state_; }

 private:
  int Sample(const double* p, int count, size_t stride);
  std::vector<Tensor> A_, B_;
  std::vector<std::vector<int>> A_factor_list_, B_factor_list_;
  std::vector<int> initial_state_, state_;
  SplitMix64 rng_;
};

/// An agent file (`"format": "vfe-agent/1"`, see docs/agent-format.md).
/// Names for an agent's indices (the agent file's optional "labels"), used by the summary of
/// a run: modality and factor names, and the names of each modality's outcomes, each factor's
/// states and each control factor's actions. Empty lists mean numbers ("o0 = 2").
struct AgentLabels {
  std::vector<std::string> modalities;
  std::vector<std::vector<std::string>> observations;  ///< by modality: its outcomes
  std::vector<std::string> factors;
  std::vector<std::vector<std::string>> states;    ///< by factor: its states
  std::vector<std::vector<std::string>> controls;  ///< by factor: its actions
};

struct AgentFile {
  GenerativeModel model;
  AgentLabels labels;
  AgentSettings settings;
  bool has_environment = false;
  std::vector<Tensor> env_A, env_B;  ///< default: the model's A and B
  std::vector<int> env_initial_state;
  uint64_t env_seed = 0;
  int steps = 10;
  int episodes = 1;
  std::string path;  ///< where it was read from (for messages)
};

/// Reads an agent file; throws ModelError naming the JSON pointer at fault.
AgentFile LoadAgentFile(const std::string& path);
/// Parses agent JSON text (`where` names it in errors).
AgentFile ParseAgentJson(const std::string& text, const std::string& where);

/// Runs the agent of `file` and writes its per-step trace as JSON (`"format":
/// "vfe-agent-trace/1"`). With `observations` (one list per step, each with one outcome per
/// modality) the agent replays them, taking `actions` when given (one per step, else its own);
/// otherwise it acts for `steps` steps in each episode against the environment.
///
/// With `summary`, it writes instead one line per step (AgentSummaryLine) and no JSON.
void RunAgent(const AgentFile& file, int steps, const std::vector<std::vector<int>>* observations,
              const std::vector<std::vector<int>>* actions, std::ostream& out,
              bool summary = false);
/// One step in words, by the file's labels: "episode 0 step 2: observed location = left,
/// reward = win | most probable: location = left (1.00), context = left (0.97) | action:
/// location = left".
std::string AgentSummaryLine(const AgentLabels& labels, int episode, int t, const StepResult& step);
/// Reads a replay file: a list of observations, or {"observations": [...], "actions": [...]}.
void LoadObservations(const std::string& path, std::vector<std::vector<int>>& observations,
                      std::vector<std::vector<int>>& actions);

}  // namespace agents
}  // namespace vfe

#endif  // VFE_AGENTS_AGENT_H_
