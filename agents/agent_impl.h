#ifndef VFE_AGENTS_AGENT_IMPL_H_
#define VFE_AGENTS_AGENT_IMPL_H_

// The agent's state and its steps (vfe/agents/agent.h): agent.cc holds its set-up, state
// inference, action and learning; agent_policies.cc the evaluation of policies. Private to
// agents/.

#include <tbb/enumerable_thread_specific.h>
#include <tbb/task_arena.h>

#include <memory>
#include <vector>

#include "vfe/agents/agent.h"
#include "vfe/core/splitmix.h"

namespace vfe {
namespace agents {

/// What the agent derives from one modality's A (recomputed when pA learns).
struct Modality {
  int num_obs = 0;
  std::vector<int> factors;            ///< A_factor_list[m]
  std::vector<int> dims;               ///< their numbers of states
  size_t configs = 0;                  ///< Π dims
  std::vector<double> log_A;           ///< ln(A + 1e-16), (o, c)
  std::vector<double> neg_entropy_G;   ///< per c: Σ_o A ln(A + floor) as the info gain uses it
  std::vector<double> entropy;         ///< per c: H[A(·|c)] with 0 ln 0 = 0 (ambiguity)
  std::vector<double> novelty;         ///< pymdp's spm_wnorm(pA)·(pA > 0), (o, c)
  std::vector<double> log_preference;  ///< ln(softmax(C) + 1e-16)
};

/// What the agent derives from one factor's B.
struct Factor {
  int num_states = 0, num_controls = 0;
  std::vector<int> parents;  ///< B_factor_list[f]
  std::vector<int> parent_dims;
  size_t parent_configs = 0;
  std::vector<int> modalities;  ///< modalities whose A involves this factor
  size_t offset = 0;            ///< of its marginal in flat state vectors
  std::vector<double> novelty;  ///< spm_wnorm(pB)·(pB > 0), (s', c, u)
};

/// Per-thread buffers of policy evaluation.
struct Scratch {
  std::vector<double> weights, parent_weights, qo, qo_floored;
  std::vector<const double*> marginals;
};

/// A node of the policy prefix tree: the first depth+1 steps of one or more policies.
struct PolicyNode {
  int parent = -1;  ///< -1: the current posterior
  int depth = 0;
  std::vector<int> action;  ///< one per factor, at step `depth`
};

struct Agent::Impl {
  GenerativeModel model;
  AgentSettings settings;
  std::vector<int> num_obs, num_states, num_controls;
  std::vector<Modality> modalities;
  std::vector<Factor> factors;
  size_t total_states = 0;
  size_t max_configs = 1;
  int max_obs = 1;

  // Policy tree, level by level; a policy's path is policy_path[p * T + t].
  std::vector<PolicyNode> nodes;
  std::vector<size_t> level_begin;  ///< nodes of depth t: [level_begin[t], level_begin[t+1])
  std::vector<int> policy_path;
  int horizon = 1;
  std::vector<double> node_qs;      ///< total_states per node
  std::vector<double> node_terms;   ///< kTerms per node
  static constexpr int kTerms = 6;  // utility, info gain, pA, pB, risk, ambiguity

  // Step state.
  StepResult result;
  std::vector<double> qs_flat, qs_next, qs_previous_step, log_prior;
  std::vector<double> message;
  std::vector<double> weights;
  std::vector<const double*> marginals;
  bool has_last_action = false;
  bool has_previous_qs = false;
  bool first_step = true;
  std::vector<Vector> episode_first_qs;
  /// Summed increments of pA and pB during an episode (LearningSchedule::kEpisode).
  std::vector<std::vector<double>> pending_pA, pending_pB;
  SplitMix64 rng{0};  ///< stochastic action selection
  std::vector<int> other_dims_buffer;
  std::vector<size_t> observation_row;  ///< offset of row o_m in each modality's log_A
  /// The action taken before the current observation: pB learns the transition it caused.
  std::vector<int> previous_action;
  bool previous_action_known = false;

  std::unique_ptr<tbb::task_arena> arena;
  tbb::enumerable_thread_specific<Scratch> scratch;

  Impl(GenerativeModel m, AgentSettings s);
  /// Tables that depend on A[m] (and pA[m]).
  void DeriveModality(int m);
  void DeriveFactor(int f);
  void BuildPolicyTree();
  // ---- State inference -------------------------------------------------------------------
  void Reset();
  /// prior_f = D_f, or B_f(u_f) applied to the last posterior of f's parents.
  void ComputePrior();
  /// out[s'] = Σ_c B_f[s', c, u] Π_k q_{parent k}(c_k), with q read from the flat `qs`.
  void Predict(int f, int u, const double* qs, double* out, double* w, const double** q) const;
  void CheckObservation(const std::vector<int>& observation) const;
  /// Adds to msg[s] the expected log-likelihood of modality m for factor `f`'s state s,
  /// Σ_{c: c_f = s} ln(A[o, c] + ε) Π_{k ≠ f} q_k(c_k), reading the other factors from `qs`.
  void AddMessage(int m, int f, const double* qs, double* msg);
  /// pymdp's calc_free_energy: Σ_f q·ln(q + 1e-16) − q·ln prior − Σ_m E_q[ln(A[o_m] + ε)].
  double FreeEnergy(const double* qs, bool with_accuracy);
  /// One fixed-point update of factor f from the posteriors `from`, into `to`.
  void UpdateFactor(int f, const double* from, double* to);
  void InferStatesFixedPoint();
  void InferStatesFactorGraph();
  void InferStates(const std::vector<int>& observation);
  // ---- Policy inference ------------------------------------------------------------------
  /// Predicted states of node n and its share of G (kTerms values), from its parent.
  void EvaluateNode(size_t n, Scratch& s);
  Scratch& LocalScratch();
  void InferPolicies();
  // ---- Action ------------------------------------------------------------------------------
  const std::vector<int>& SelectAction();
  void SetAction(const std::vector<int>& action);
  // ---- Learning ----------------------------------------------------------------------------
  bool Learns(const std::vector<int>& chosen, int index) const;
  void Learn();
  void LearnA();  ///< Learn()'s pA part
  void LearnB();  ///< Learn()'s pB part
  void EndEpisode();
};

}  // namespace agents
}  // namespace vfe

#endif  // VFE_AGENTS_AGENT_IMPL_H_
