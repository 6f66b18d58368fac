// The active inference agent: state inference (fixed-point iteration, or the vfe engine),
// expected free energy of policies (a prefix tree of policies, evaluated level by level with
// TBB), action selection and Dirichlet learning. Numbers follow pymdp's legacy NumPy agent.

#include "vfe/agents/agent.h"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "agents/agent_impl.h"
#include "agents/tensor_ops.h"
#include "vfe/core/format.h"
#include "vfe/core/splitmix.h"
#include "vfe/distributions/categorical.h"
#include "vfe/graph/factor_graph.h"
#include "vfe/schedulers/sequential.h"

namespace vfe {
namespace agents {

void AgentSettings::Validate() const {
  if (policy_len < 1)
    throw OptionsError("policy_len: expected an integer >= 1, got " + std::to_string(policy_len));
  if (!std::isfinite(gamma) || gamma < 0)
    throw OptionsError("gamma: expected a finite number >= 0, got " + FormatNumber(gamma));
  if (!std::isfinite(alpha) || alpha < 0)
    throw OptionsError("alpha: expected a finite number >= 0, got " + FormatNumber(alpha));
  if (num_iter < 1)
    throw OptionsError("num_iter: expected an integer >= 1, got " + std::to_string(num_iter));
  if (!(dF_tol >= 0) || !std::isfinite(dF_tol))
    throw OptionsError("dF_tol: expected a finite number >= 0, got " + FormatNumber(dF_tol));
  for (const auto& [name, rate] :
       {std::pair<const char*, double>{"lr_pA", lr_pA}, {"lr_pB", lr_pB}, {"lr_pD", lr_pD}})
    if (!(rate > 0) || !std::isfinite(rate))
      throw OptionsError(std::string(name) + ": expected a learning rate > 0, got " +
                         FormatNumber(rate));
  if (num_threads < 0)
    throw OptionsError("num_threads: expected an integer >= 0 (0 = all cores), got " +
                       std::to_string(num_threads));
  if (method == StateInferenceMethod::kFactorGraph && factor_update != FactorUpdate::kSequential)
    throw OptionsError(
        "factor_update: the factor-graph method updates the factors one after "
        "the other (the SequentialScheduler); expected sequential, got "
        "simultaneous");
}

Agent::Impl::Impl(GenerativeModel m, AgentSettings s)
    : model(std::move(m)), settings(std::move(s)) {
  settings.Validate();
  CompleteModel(model, settings.policy_len);
  const int num_factors = static_cast<int>(model.B.size());
  const int num_modalities = static_cast<int>(model.A.size());
  factors.resize(num_factors);
  for (int f = 0; f < num_factors; ++f) {
    Factor& factor = factors[f];
    factor.num_states = model.B[f].shape[0];
    factor.num_controls = model.B[f].shape.back();
    factor.offset = total_states;
    total_states += factor.num_states;
    num_states.push_back(factor.num_states);
    num_controls.push_back(factor.num_controls);
  }
  for (int f = 0; f < num_factors; ++f) {
    Factor& factor = factors[f];
    factor.parents = model.B_factor_list[f];
    for (int g : factor.parents) factor.parent_dims.push_back(num_states[g]);
    factor.parent_configs = Product(factor.parent_dims);
    max_configs = std::max(max_configs, factor.parent_configs);
  }
  modalities.resize(num_modalities);
  for (int m = 0; m < num_modalities; ++m) {
    Modality& modality = modalities[m];
    modality.num_obs = model.A[m].shape[0];
    num_obs.push_back(modality.num_obs);
    max_obs = std::max(max_obs, modality.num_obs);
    modality.factors = model.A_factor_list[m];
    for (int f : modality.factors) {
      modality.dims.push_back(num_states[f]);
      factors[f].modalities.push_back(m);
    }
    modality.configs = Product(modality.dims);
    max_configs = std::max(max_configs, modality.configs);
    Vector preference = model.C[m];
    SoftmaxInPlace(preference.data(), static_cast<int>(preference.size()));
    for (Eigen::Index o = 0; o < preference.size(); ++o)
      modality.log_preference.push_back(LogStable(preference[o]));
    DeriveModality(m);
  }
  for (int f = 0; f < num_factors; ++f) DeriveFactor(f);
  if (!settings.modalities_to_learn.empty())
    for (size_t i = 0; i < settings.modalities_to_learn.size(); ++i)
      if (settings.modalities_to_learn[i] < 0 || settings.modalities_to_learn[i] >= num_modalities)
        throw OptionsError("modalities_to_learn[" + std::to_string(i) +
                           "]: expected a modality in 0.." + std::to_string(num_modalities - 1) +
                           ", got " + std::to_string(settings.modalities_to_learn[i]));
  if (!settings.factors_to_learn.empty())
    for (size_t i = 0; i < settings.factors_to_learn.size(); ++i)
      if (settings.factors_to_learn[i] < 0 || settings.factors_to_learn[i] >= num_factors)
        throw OptionsError("factors_to_learn[" + std::to_string(i) + "]: expected a factor in 0.." +
                           std::to_string(num_factors - 1) + ", got " +
                           std::to_string(settings.factors_to_learn[i]));
  BuildPolicyTree();
  if (settings.learn_every == LearningSchedule::kEpisode) {
    for (const Tensor& t : model.pA) pending_pA.emplace_back(t.data.size(), 0.0);
    for (const Tensor& t : model.pB) pending_pB.emplace_back(t.data.size(), 0.0);
  }

  const int threads = settings.num_threads == 0 ? tbb::task_arena::automatic : settings.num_threads;
  arena = std::make_unique<tbb::task_arena>(threads);
  rng = SplitMix64(settings.seed);

  // Buffers of a step.
  qs_flat.assign(total_states, 0.0);
  qs_next.assign(total_states, 0.0);
  qs_previous_step.assign(total_states, 0.0);
  log_prior.assign(total_states, 0.0);
  message.assign(total_states, 0.0);
  weights.assign(max_configs, 0.0);
  marginals.assign(num_factors + 1, nullptr);
  other_dims_buffer.assign(num_factors + 1, 0);
  result.observation.assign(num_modalities, 0);
  result.prior.assign(num_factors, Vector());
  result.qs.assign(num_factors, Vector());
  for (int f = 0; f < num_factors; ++f) {
    result.prior[f] = Vector::Zero(num_states[f]);
    result.qs[f] = Vector::Zero(num_states[f]);
  }
  const Eigen::Index num_policies = static_cast<Eigen::Index>(model.policies.size());
  PolicyEvaluation& e = result.policies;
  for (Vector* v : {&e.neg_efe, &e.utility, &e.state_info_gain, &e.pA_info_gain, &e.pB_info_gain,
                    &e.risk, &e.ambiguity, &e.q_pi})
    *v = Vector::Zero(num_policies);
  result.action_marginals.assign(num_factors, Vector());
  for (int f = 0; f < num_factors; ++f) result.action_marginals[f] = Vector::Zero(num_controls[f]);
  result.action.assign(num_factors, 0);
  Reset();
}

void Agent::Impl::DeriveModality(int m) {
  Modality& modality = modalities[m];
  const std::vector<double>& A = model.A[m].data;
  const size_t C = modality.configs;
  const double floor_G = settings.numerics == Numerics::kPymdp ? PymdpEntropyFloor() : 0.0;
  modality.log_A.resize(A.size());
  for (size_t i = 0; i < A.size(); ++i) modality.log_A[i] = LogStable(A[i]);
  modality.neg_entropy_G.assign(C, 0.0);
  modality.entropy.assign(C, 0.0);
  for (int o = 0; o < modality.num_obs; ++o) {
    for (size_t c = 0; c < C; ++c) {
      const double a = A[o * C + c];
      if (a > 0) modality.entropy[c] -= a * std::log(a);
      if (floor_G > 0)
        modality.neg_entropy_G[c] += a * std::log(a + floor_G);
      else if (a > 0)
        modality.neg_entropy_G[c] += a * std::log(a);
    }
  }
  modality.novelty.clear();
  if (!model.pA.empty()) {
    // spm_wnorm: 1/Σ_o (pA + ε) − 1/(pA + ε), kept only where pA > 0.
    const std::vector<double>& counts = model.pA[m].data;
    modality.novelty.assign(counts.size(), 0.0);
    for (size_t c = 0; c < C; ++c) {
      double total = 0.0;
      for (int o = 0; o < modality.num_obs; ++o) total += counts[o * C + c] + kLogFloor;
      for (int o = 0; o < modality.num_obs; ++o) {
        const double a = counts[o * C + c];
        if (a > 0) modality.novelty[o * C + c] = 1.0 / total - 1.0 / (a + kLogFloor);
      }
    }
  }
}

void Agent::Impl::DeriveFactor(int f) {
  Factor& factor = factors[f];
  factor.novelty.clear();
  if (model.pB.empty()) return;
  const std::vector<double>& counts = model.pB[f].data;
  const size_t columns = counts.size() / factor.num_states;
  factor.novelty.assign(counts.size(), 0.0);
  for (size_t j = 0; j < columns; ++j) {
    double total = 0.0;
    for (int s = 0; s < factor.num_states; ++s) total += counts[s * columns + j] + kLogFloor;
    for (int s = 0; s < factor.num_states; ++s) {
      const double b = counts[s * columns + j];
      if (b > 0) factor.novelty[s * columns + j] = 1.0 / total - 1.0 / (b + kLogFloor);
    }
  }
}

void Agent::Impl::BuildPolicyTree() {
  const std::vector<Policy>& policies = model.policies;
  horizon = static_cast<int>(policies[0].size());
  const size_t count = policies.size();
  policy_path.assign(count * horizon, -1);
  level_begin.assign(1, 0);
  for (int t = 0; t < horizon; ++t) {
    std::map<std::pair<int, std::vector<int>>, int> index;
    for (size_t p = 0; p < count; ++p) {
      const int parent = t == 0 ? -1 : policy_path[p * horizon + t - 1];
      auto key = std::make_pair(parent, policies[p][t]);
      auto it = index.find(key);
      if (it == index.end()) {
        it = index.emplace(key, static_cast<int>(nodes.size())).first;
        nodes.push_back(PolicyNode{parent, t, policies[p][t]});
      }
      policy_path[p * horizon + t] = it->second;
    }
    level_begin.push_back(nodes.size());
  }
  node_qs.assign(nodes.size() * total_states, 0.0);
  node_terms.assign(nodes.size() * kTerms, 0.0);
}

void Agent::Impl::Reset() {
  has_last_action = false;
  has_previous_qs = false;
  first_step = true;
}

void Agent::Impl::ComputePrior() {
  const int num_factors = static_cast<int>(factors.size());
  for (int f = 0; f < num_factors; ++f) {
    double* prior = result.prior[f].data();
    if (!has_last_action) {
      for (int s = 0; s < num_states[f]; ++s) prior[s] = model.D[f][s];
      continue;
    }
    Predict(f, result.action[f], qs_flat.data(), prior, weights.data(), marginals.data());
  }
}

void Agent::Impl::Predict(int f, int u, const double* qs, double* out, double* w,
                          const double** q) const {
  const Factor& factor = factors[f];
  for (size_t k = 0; k < factor.parents.size(); ++k) q[k] = qs + factors[factor.parents[k]].offset;
  ConfigWeights(static_cast<int>(factor.parents.size()), factor.parent_dims.data(), q, w);
  const size_t C = factor.parent_configs;
  const int U = factor.num_controls;
  const double* B = model.B[f].data.data();
  for (int s = 0; s < factor.num_states; ++s) {
    double sum = 0.0;
    const double* row = B + static_cast<size_t>(s) * C * U;
    for (size_t c = 0; c < C; ++c) sum += row[c * U + u] * w[c];
    out[s] = sum;
  }
}

void Agent::Impl::CheckObservation(const std::vector<int>& observation) const {
  if (observation.size() != modalities.size())
    throw ModelError("observation: expected one outcome per modality (" +
                     std::to_string(modalities.size()) + "), got " +
                     std::to_string(observation.size()));
  for (size_t m = 0; m < modalities.size(); ++m)
    if (observation[m] < 0 || observation[m] >= modalities[m].num_obs)
      throw ModelError("observation[" + std::to_string(m) + "]: expected an outcome in 0.." +
                       std::to_string(modalities[m].num_obs - 1) + ", got " +
                       std::to_string(observation[m]));
}

void Agent::Impl::AddMessage(int m, int f, const double* qs, double* msg) {
  const Modality& modality = modalities[m];
  const double* log_row = modality.log_A.data() + observation_row[m];
  const int n = static_cast<int>(modality.factors.size());
  int j = 0;
  while (modality.factors[j] != f) ++j;
  // Weights of the other factors' configurations: (before j) x (after j), row-major.
  int count = 0;
  int* other_dims = other_dims_buffer.data();
  for (int k = 0; k < n; ++k) {
    if (k == j) continue;
    other_dims[count] = modality.dims[k];
    marginals[count++] = qs + factors[modality.factors[k]].offset;
  }
  ConfigWeights(count, other_dims, marginals.data(), weights.data());
  size_t after = 1;
  for (int k = j + 1; k < n; ++k) after *= modality.dims[k];
  const size_t before = modality.configs / (after * modality.dims[j]);
  const int d = modality.dims[j];
  for (size_t b = 0; b < before; ++b)
    for (int s = 0; s < d; ++s) {
      const double* l = log_row + (b * d + s) * after;
      const double* w = weights.data() + b * after;
      double sum = 0.0;
      for (size_t a = 0; a < after; ++a) sum += l[a] * w[a];
      msg[s] += sum;
    }
}

double Agent::Impl::FreeEnergy(const double* qs, bool with_accuracy) {
  double F = 0.0;
  for (size_t f = 0; f < factors.size(); ++f) {
    const double* q = qs + factors[f].offset;
    const double* lp = log_prior.data() + factors[f].offset;
    for (int s = 0; s < num_states[f]; ++s) F += q[s] * std::log(q[s] + kLogFloor) - q[s] * lp[s];
  }
  if (!with_accuracy) return F;
  for (size_t m = 0; m < modalities.size(); ++m) {
    const Modality& modality = modalities[m];
    const int n = static_cast<int>(modality.factors.size());
    for (int k = 0; k < n; ++k) marginals[k] = qs + factors[modality.factors[k]].offset;
    ConfigWeights(n, modality.dims.data(), marginals.data(), weights.data());
    const double* log_row = modality.log_A.data() + observation_row[m];
    double accuracy = 0.0;
    for (size_t c = 0; c < modality.configs; ++c) accuracy += log_row[c] * weights[c];
    F -= accuracy;
  }
  return F;
}

void Agent::Impl::UpdateFactor(int f, const double* from, double* to) {
  const Factor& factor = factors[f];
  double* msg = message.data() + factor.offset;
  std::fill(msg, msg + factor.num_states, 0.0);
  for (int m : factor.modalities) AddMessage(m, f, from, msg);
  double* q = to + factor.offset;
  const double* lp = log_prior.data() + factor.offset;
  for (int s = 0; s < factor.num_states; ++s) q[s] = msg[s] + lp[s];
  SoftmaxInPlace(q, factor.num_states);
}

void Agent::Impl::InferStatesFixedPoint() {
  const int num_factors = static_cast<int>(factors.size());
  for (int f = 0; f < num_factors; ++f) {
    double* q = qs_flat.data() + factors[f].offset;
    std::fill(q, q + num_states[f], 1.0 / num_states[f]);
  }
  double previous = FreeEnergy(qs_flat.data(), /*with_accuracy=*/false);
  if (num_factors == 1) {
    // One factor: the update is exact in one pass (pymdp does the same).
    UpdateFactor(0, qs_flat.data(), qs_next.data());
    std::swap(qs_flat, qs_next);
    result.fpi_iterations = 1;
    result.free_energy = FreeEnergy(qs_flat.data(), true);
    return;
  }
  int iteration = 0;
  double change = INFINITY;  // the first iteration always runs
  double F = previous;
  while (iteration < settings.num_iter && change >= settings.dF_tol) {
    if (settings.factor_update == FactorUpdate::kSimultaneous) {
      for (int f = 0; f < num_factors; ++f) UpdateFactor(f, qs_flat.data(), qs_next.data());
      std::swap(qs_flat, qs_next);
    } else {
      for (int f = 0; f < num_factors; ++f) UpdateFactor(f, qs_flat.data(), qs_flat.data());
    }
    F = FreeEnergy(qs_flat.data(), true);
    change = std::abs(previous - F);
    previous = F;
    ++iteration;
  }
  result.fpi_iterations = iteration;
  result.free_energy = F;
}

void Agent::Impl::InferStatesFactorGraph() {
  const int num_factors = static_cast<int>(factors.size());
  FactorGraph graph;
  std::vector<Variable> states;
  for (int f = 0; f < num_factors; ++f) {
    states.push_back(
        graph.AddVariable("s" + std::to_string(f), Family::kCategorical, num_states[f]));
    // The empirical prior as a Categorical factor with constant probabilities prior + ε:
    // its energy −Σ q ln(prior + ε) is pymdp's cross-entropy term.
    Vector p(num_states[f]);
    for (int s = 0; s < num_states[f]; ++s) p[s] = result.prior[f][s] + kLogFloor;
    graph.AddCategorical(states[f], p, "prior of s" + std::to_string(f));
  }
  for (size_t m = 0; m < modalities.size(); ++m) {
    const Modality& modality = modalities[m];
    std::vector<Argument> arguments;
    for (int f : modality.factors) arguments.emplace_back(states[f]);
    const double* log_row = modality.log_A.data() + observation_row[m];
    graph.AddPotential(
        arguments, std::vector<double>(log_row, log_row + modality.configs),
        "A[" + std::to_string(m) + "][o=" + std::to_string(result.observation[m]) + "]");
  }
  graph.Finalize();
  for (int f = 0; f < num_factors; ++f)
    graph.SetPosterior(states[f],
                       Categorical(Vector::Constant(num_states[f], 1.0 / num_states[f])));
  // pymdp's stopping rule on the engine's F: F_0 is F of the uniform start without the
  // accuracy term; stop once |F_k − F_{k−1}| < dF_tol.
  for (int f = 0; f < num_factors; ++f) {
    double* q = qs_flat.data() + factors[f].offset;
    std::fill(q, q + num_states[f], 1.0 / num_states[f]);
  }
  double previous = FreeEnergy(qs_flat.data(), false);
  SchedulerOptions options;
  options.max_iterations = num_factors == 1 ? 1 : settings.num_iter;
  options.tolerance = 0.0;
  options.order = states;
  const double tolerance = settings.dF_tol;
  options.callback = [&previous, tolerance](const IterationInfo& info) {
    const double change = std::abs(previous - info.free_energy);
    previous = info.free_energy;
    return change >= tolerance;
  };
  const Result run = SequentialScheduler(options).Run(graph);
  if (run.termination == Termination::kNumericalFailure)
    throw ModelError("state inference on the factor graph failed: " + run.message);
  for (int f = 0; f < num_factors; ++f) {
    const Vector q = graph.Posterior<Categorical>(states[f]).p();
    std::copy(q.data(), q.data() + q.size(), qs_flat.data() + factors[f].offset);
  }
  result.fpi_iterations = run.iterations;
  result.free_energy = run.free_energy.back();
}

void Agent::Impl::InferStates(const std::vector<int>& observation) {
  CheckObservation(observation);
  std::copy(observation.begin(), observation.end(), result.observation.begin());
  observation_row.resize(modalities.size());
  for (size_t m = 0; m < modalities.size(); ++m)
    observation_row[m] = static_cast<size_t>(observation[m]) * modalities[m].configs;
  if (!first_step) {
    qs_previous_step = qs_flat;
    has_previous_qs = true;
  }
  ComputePrior();
  const int num_factors = static_cast<int>(factors.size());
  for (int f = 0; f < num_factors; ++f)
    for (int s = 0; s < num_states[f]; ++s)
      log_prior[factors[f].offset + s] = LogStable(result.prior[f][s]);
  if (settings.method == StateInferenceMethod::kFactorGraph)
    InferStatesFactorGraph();
  else
    InferStatesFixedPoint();
  for (int f = 0; f < num_factors; ++f)
    std::copy(qs_flat.data() + factors[f].offset,
              qs_flat.data() + factors[f].offset + num_states[f], result.qs[f].data());
  if (first_step) episode_first_qs = result.qs;
  first_step = false;
}

const std::vector<int>& Agent::Impl::SelectAction() {
  const int num_factors = static_cast<int>(factors.size());
  for (int f = 0; f < num_factors; ++f) result.action_marginals[f].setZero();
  const PolicyEvaluation& e = result.policies;
  for (size_t p = 0; p < model.policies.size(); ++p)
    for (int f = 0; f < num_factors; ++f)
      result.action_marginals[f][model.policies[p][0][f]] += e.q_pi[p];
  for (int f = 0; f < num_factors; ++f) {
    Vector& marginal = result.action_marginals[f];
    marginal /= marginal.sum();
    const int U = static_cast<int>(marginal.size());
    if (settings.action_selection == ActionSelection::kDeterministic) {
      // Ties (within 1e-8 of the largest, as pymdp's select_highest): the lowest index.
      const double top = marginal.maxCoeff();
      int chosen = 0;
      while (std::abs(marginal[chosen] - top) > 1e-8) ++chosen;
      result.action[f] = chosen;
    } else {
      double p[256];
      double* probabilities = U <= 256 ? p : nullptr;
      std::vector<double> large;
      if (!probabilities) {
        large.resize(U);
        probabilities = large.data();
      }
      for (int u = 0; u < U; ++u) probabilities[u] = settings.alpha * LogStable(marginal[u]);
      SoftmaxInPlace(probabilities, U);
      double draw = rng.Uniform();
      int chosen = U - 1;
      for (int u = 0; u < U; ++u) {
        if (draw < probabilities[u]) {
          chosen = u;
          break;
        }
        draw -= probabilities[u];
      }
      result.action[f] = chosen;
    }
  }
  has_last_action = true;
  return result.action;
}

void Agent::Impl::SetAction(const std::vector<int>& action) {
  if (action.size() != factors.size())
    throw ModelError("action: expected one control per hidden factor (" +
                     std::to_string(factors.size()) + "), got " + std::to_string(action.size()));
  for (size_t f = 0; f < factors.size(); ++f)
    if (action[f] < 0 || action[f] >= num_controls[f])
      throw ModelError("action[" + std::to_string(f) + "]: factor " + std::to_string(f) +
                       " has controls 0.." + std::to_string(num_controls[f] - 1) + ", got " +
                       std::to_string(action[f]));
  result.action = action;
  has_last_action = true;
}

bool Agent::Impl::Learns(const std::vector<int>& chosen, int index) const {
  return chosen.empty() || std::find(chosen.begin(), chosen.end(), index) != chosen.end();
}

void Agent::Impl::Learn() {
  LearnA();
  LearnB();
}

void Agent::Impl::LearnA() {
  const bool defer = settings.learn_every == LearningSchedule::kEpisode;
  if (!model.pA.empty() && settings.learn_A) {
    for (size_t m = 0; m < modalities.size(); ++m) {
      if (!Learns(settings.modalities_to_learn, static_cast<int>(m))) continue;
      Modality& modality = modalities[m];
      const int k = static_cast<int>(modality.factors.size());
      for (int i = 0; i < k; ++i)
        marginals[i] = qs_flat.data() + factors[modality.factors[i]].offset;
      ConfigWeights(k, modality.dims.data(), marginals.data(), weights.data());
      const size_t C = modality.configs;
      const size_t row = static_cast<size_t>(result.observation[m]) * C;
      std::vector<double>& counts = defer ? pending_pA[m] : model.pA[m].data;
      const std::vector<double>& A = model.A[m].data;
      for (size_t c = 0; c < C; ++c)
        if (A[row + c] > 0) counts[row + c] += settings.lr_pA * weights[c];
      if (defer) continue;
      NormaliseColumns(model.pA[m], model.A[m], nullptr);
      DeriveModality(static_cast<int>(m));
    }
  }
}

void Agent::Impl::LearnB() {
  const bool defer = settings.learn_every == LearningSchedule::kEpisode;
  if (!model.pB.empty() && settings.learn_B && has_previous_qs && previous_action_known) {
    for (size_t f = 0; f < factors.size(); ++f) {
      if (!Learns(settings.factors_to_learn, static_cast<int>(f))) continue;
      Factor& factor = factors[f];
      for (size_t i = 0; i < factor.parents.size(); ++i)
        marginals[i] = qs_previous_step.data() + factors[factor.parents[i]].offset;
      ConfigWeights(static_cast<int>(factor.parents.size()), factor.parent_dims.data(),
                    marginals.data(), weights.data());
      const size_t C = factor.parent_configs;
      const int U = factor.num_controls, u = previous_action[f];
      std::vector<double>& counts = defer ? pending_pB[f] : model.pB[f].data;
      const std::vector<double>& B = model.B[f].data;
      const double* q = qs_flat.data() + factor.offset;
      for (int x = 0; x < factor.num_states; ++x)
        for (size_t c = 0; c < C; ++c) {
          const size_t i = (static_cast<size_t>(x) * C + c) * U + u;
          if (B[i] > 0) counts[i] += settings.lr_pB * q[x] * weights[c];
        }
      if (defer) continue;
      NormaliseColumns(model.pB[f], model.B[f], nullptr);
      DeriveFactor(static_cast<int>(f));
    }
  }
}

void Agent::Impl::EndEpisode() {
  for (size_t m = 0; m < pending_pA.size(); ++m) {
    std::vector<double>& increments = pending_pA[m];
    std::vector<double>& counts = model.pA[m].data;
    for (size_t i = 0; i < counts.size(); ++i) counts[i] += increments[i];
    std::fill(increments.begin(), increments.end(), 0.0);
    NormaliseColumns(model.pA[m], model.A[m], nullptr);
    DeriveModality(static_cast<int>(m));
  }
  for (size_t f = 0; f < pending_pB.size(); ++f) {
    std::vector<double>& increments = pending_pB[f];
    std::vector<double>& counts = model.pB[f].data;
    for (size_t i = 0; i < counts.size(); ++i) counts[i] += increments[i];
    std::fill(increments.begin(), increments.end(), 0.0);
    NormaliseColumns(model.pB[f], model.B[f], nullptr);
    DeriveFactor(static_cast<int>(f));
  }
  if (!model.pD.empty() && settings.learn_D && !episode_first_qs.empty()) {
    for (size_t f = 0; f < factors.size(); ++f) {
      if (!Learns(settings.factors_to_learn, static_cast<int>(f))) continue;
      Vector& counts = model.pD[f];
      for (Eigen::Index s = 0; s < counts.size(); ++s)
        if (counts[s] > 0) counts[s] += settings.lr_pD * episode_first_qs[f][s];
      model.D[f] = counts / counts.sum();
    }
  }
  episode_first_qs.clear();
  Reset();
}

Agent::Agent(GenerativeModel model, AgentSettings settings)
    : impl_(std::make_unique<Impl>(std::move(model), std::move(settings))) {}
Agent::~Agent() = default;
Agent::Agent(Agent&&) noexcept = default;
Agent& Agent::operator=(Agent&&) noexcept = default;

void Agent::Reset() { impl_->Reset(); }

void Agent::InferStates(const std::vector<int>& observation) {
  Impl& impl = *impl_;
  impl.previous_action_known = impl.has_last_action;
  if (impl.has_last_action) impl.previous_action = impl.result.action;
  impl.InferStates(observation);
}

void Agent::InferPolicies() { impl_->InferPolicies(); }
const std::vector<int>& Agent::SelectAction() { return impl_->SelectAction(); }
void Agent::SetAction(const std::vector<int>& action) { impl_->SetAction(action); }
void Agent::Learn() { impl_->Learn(); }
void Agent::LearnA() { impl_->LearnA(); }
void Agent::LearnB() { impl_->LearnB(); }

void Agent::LearnB(const std::vector<Vector>& qs_previous) {
  Impl& impl = *impl_;
  if (qs_previous.size() != impl.factors.size())
    throw ModelError("qs_prev: expected one posterior per hidden state factor (" +
                     std::to_string(impl.factors.size()) + "), found " +
                     std::to_string(qs_previous.size()));
  for (size_t f = 0; f < impl.factors.size(); ++f) {
    const auto& factor = impl.factors[f];
    if (qs_previous[f].size() != static_cast<Eigen::Index>(factor.num_states))
      throw ModelError("qs_prev[" + std::to_string(f) + "]: expected " +
                       std::to_string(factor.num_states) + " probabilities, found " +
                       std::to_string(qs_previous[f].size()));
    if (!qs_previous[f].allFinite() || (qs_previous[f].array() < 0).any())
      throw ModelError("qs_prev[" + std::to_string(f) + "]: expected probabilities (finite, >= 0)");
  }
  for (size_t f = 0; f < impl.factors.size(); ++f)
    std::copy_n(qs_previous[f].data(), impl.factors[f].num_states,
                impl.qs_previous_step.data() + impl.factors[f].offset);
  impl.has_previous_qs = true;
  impl.LearnB();
}
void Agent::EndEpisode() { impl_->EndEpisode(); }

const StepResult& Agent::Step(const std::vector<int>& observation) {
  const bool before_planning = impl_->settings.learn_when == LearningTime::kBeforePlanning;
  InferStates(observation);
  if (before_planning) Learn();
  InferPolicies();
  SelectAction();
  if (!before_planning) Learn();
  return impl_->result;
}

const StepResult& Agent::result() const { return impl_->result; }
const GenerativeModel& Agent::model() const { return impl_->model; }
const AgentSettings& Agent::settings() const { return impl_->settings; }
const std::vector<Policy>& Agent::policies() const { return impl_->model.policies; }
const std::vector<int>& Agent::num_obs() const { return impl_->num_obs; }
const std::vector<int>& Agent::num_states() const { return impl_->num_states; }
const std::vector<int>& Agent::num_controls() const { return impl_->num_controls; }

}  // namespace agents
}  // namespace vfe
