// Active inference agents: pymdp's T-maze reference traces replayed step by step, identities
// of the expected free energy on random models, the engine path against the fixed-point path,
// learning, action selection, determinism across threads, and the errors of bad models.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testing/allocation_counter.h"
#include "tests/testing/expect.h"
#include "tests/testing/reference.h"
#include "vfe/agents/agent.h"

namespace vfe::agents {
namespace {

using Json = nlohmann::json;
using vfe::testing::ExpectMatrixNear;

// ---- Reading pymdp's reference files ---------------------------------------------------

Tensor NestedTensor(const Json& j) {
  Tensor t;
  const Json* probe = &j;
  while (probe->is_array()) {
    t.shape.push_back(static_cast<int>(probe->size()));
    probe = &(*probe)[0];
  }
  // Depth-first, in order: row-major flattening.
  std::function<void(const Json&)> flatten = [&](const Json& x) {
    if (x.is_array()) {
      for (const Json& y : x) flatten(y);
    } else {
      t.data.push_back(x.get<double>());
    }
  };
  flatten(j);
  return t;
}

Vector ToVector(const Json& j) {
  const std::vector<double> v = j;
  return Eigen::Map<const Vector>(v.data(), static_cast<Eigen::Index>(v.size()));
}

GenerativeModel ReferenceModel(const Json& m) {
  GenerativeModel model;
  for (const Json& a : m["A"]) model.A.push_back(NestedTensor(a));
  for (const Json& b : m["B"]) model.B.push_back(NestedTensor(b));
  model.A_factor_list = m["A_factor_list"].get<std::vector<std::vector<int>>>();
  model.B_factor_list = m["B_factor_list"].get<std::vector<std::vector<int>>>();
  for (const Json& c : m["C"]) model.C.push_back(ToVector(c));
  for (const Json& d : m["D"]) model.D.push_back(ToVector(d));
  model.E = ToVector(m["E"]);
  if (!m["pA"].is_null())
    for (const Json& a : m["pA"]) model.pA.push_back(NestedTensor(a));
  model.policies = m["policies"].get<std::vector<Policy>>();
  return model;
}

AgentSettings ReferenceSettings(const Json& s) {
  AgentSettings settings;
  settings.gamma = s["gamma"];
  settings.alpha = s["alpha"];
  settings.policy_len = s["policy_len"];
  settings.use_utility = s["use_utility"];
  settings.use_states_info_gain = s["use_states_info_gain"];
  settings.use_param_info_gain = s["use_param_info_gain"];
  settings.num_iter = s["inference_params"]["num_iter"];
  settings.dF_tol = s["inference_params"]["dF_tol"];
  settings.lr_pA = s["lr_pA"];
  settings.lr_pB = s["lr_pB"];
  if (s["modalities_to_learn"].is_array())
    settings.modalities_to_learn = s["modalities_to_learn"].get<std::vector<int>>();
  return settings;
}

struct Method {
  const char* name;
  StateInferenceMethod method;
  FactorUpdate update;
};

class TmazeReference : public ::testing::TestWithParam<Method> {};

/// Replays one reference file: pymdp's observations in, and after each step the same
/// posterior, G and its parts, q(π), action marginals and (up to pymdp's random tie-break)
/// action; pymdp's action is then taken, so that the next prior is pymdp's.
void Replay(const std::string& file, const Method& method) {
  const Json reference = vfe::testing::LoadReference(file);
  const bool learning = reference["settings"]["use_param_info_gain"].get<bool>();
  for (const Json& episode : reference["episodes"]) {
    AgentSettings settings = ReferenceSettings(reference["settings"]);
    settings.method = method.method;
    settings.factor_update = method.update;
    Agent agent(ReferenceModel(reference["model"]), settings);
    int t = 0;
    for (const Json& step : episode["steps"]) {
      SCOPED_TRACE(file + " seed " + episode["seed"].dump() + " step " + std::to_string(t));
      agent.InferStates(step["obs"].get<std::vector<int>>());
      const StepResult& r = agent.result();
      for (size_t f = 0; f < r.qs.size(); ++f)
        ExpectMatrixNear(r.qs[f], ToVector(step["qs"][f]), 1e-6, "qs[" + std::to_string(f) + "]");
      agent.InferPolicies();
      const PolicyEvaluation& e = r.policies;
      const Json& parts = step["G_decomposition"];
      ExpectMatrixNear(e.neg_efe, ToVector(step["G_neg_efe"]), 1e-6, "G");
      ExpectMatrixNear(e.utility, ToVector(parts["utility"]), 1e-6, "utility");
      ExpectMatrixNear(e.state_info_gain, ToVector(parts["state_info_gain"]), 1e-6,
                       "state_info_gain");
      ExpectMatrixNear(e.risk, ToVector(parts["risk"]), 1e-6, "risk");
      ExpectMatrixNear(e.ambiguity, ToVector(parts["ambiguity"]), 1e-6, "ambiguity");
      if (learning)
        ExpectMatrixNear(e.pA_info_gain, ToVector(parts["pA_info_gain"]), 1e-6, "pA_info_gain");
      ExpectMatrixNear(e.q_pi, ToVector(step["q_pi"]), 1e-6, "q_pi");
      const std::vector<int> action = agent.SelectAction();
      for (size_t f = 0; f < action.size(); ++f) {
        ExpectMatrixNear(r.action_marginals[f], ToVector(step["action_marginals"][f]), 1e-6,
                         "action_marginals");
        const std::vector<int> ties = step["argmax_action_ties"][f];
        // Among tied actions pymdp draws at random; vfe takes the lowest index.
        EXPECT_EQ(action[f], ties.front()) << "factor " << f;
      }
      agent.SetAction(step["action"].get<std::vector<int>>());
      agent.Learn();
      if (learning) {
        const Tensor& counts = agent.model().pA[1];
        const Tensor expected = NestedTensor(step["learning"]["pA_reward_modality_after_update"]);
        ASSERT_EQ(counts.shape, expected.shape);
        for (size_t i = 0; i < counts.data.size(); ++i)
          EXPECT_NEAR(counts.data[i], expected.data[i], 1e-9 * std::max(1.0, expected.data[i]))
              << "pA[1] flat index " << i;
      }
      ++t;
    }
  }
}

TEST_P(TmazeReference, ReplaysPymdpFixedPointTrace) { Replay("pymdp/tmaze_fpi.json", GetParam()); }

TEST_P(TmazeReference, ReplaysPymdpLearningTrace) {
  Replay("pymdp/tmaze_learning.json", GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Methods, TmazeReference,
    ::testing::Values(Method{"FixedPointSimultaneous", StateInferenceMethod::kFixedPoint,
                             FactorUpdate::kSimultaneous},
                      Method{"FixedPointSequential", StateInferenceMethod::kFixedPoint,
                             FactorUpdate::kSequential},
                      Method{"FactorGraph", StateInferenceMethod::kFactorGraph,
                             FactorUpdate::kSequential}),
    [](const ::testing::TestParamInfo<Method>& info) { return std::string(info.param.name); });


// ---- Random models -------------------------------------------------------------------------

/// A random column-stochastic tensor of `shape` (columns over the first axis), with some
/// exact zeros so that the floors of the logarithms matter.
Tensor RandomStochastic(const std::vector<int>& shape, std::mt19937_64& rng, double zero_rate) {
  Tensor t = Tensor::Filled(shape, 0.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const size_t rows = shape[0], columns = t.data.size() / rows;
  for (size_t c = 0; c < columns; ++c) {
    double total = 0.0;
    for (size_t r = 0; r < rows; ++r) {
      const double x = uniform(rng) < zero_rate && r > 0 ? 0.0 : uniform(rng) + 0.05;
      t.data[r * columns + c] = x;
      total += x;
    }
    for (size_t r = 0; r < rows; ++r) t.data[r * columns + c] /= total;
  }
  return t;
}

/// Three factors (3, 2, 4 states; 2, 1, 3 controls; factor 2's dynamics depend on factors 0
/// and 2), three modalities over different subsets of factors.
GenerativeModel RandomModel(uint64_t seed, bool with_counts) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(-2.0, 2.0);
  GenerativeModel model;
  model.B_factor_list = {{0}, {1}, {0, 2}};
  model.B = {RandomStochastic({3, 3, 2}, rng, 0.3), RandomStochastic({2, 2, 1}, rng, 0.0),
             RandomStochastic({4, 3, 4, 3}, rng, 0.3)};
  model.A_factor_list = {{0, 1}, {2}, {0, 1, 2}};
  model.A = {RandomStochastic({4, 3, 2}, rng, 0.3), RandomStochastic({3, 4}, rng, 0.2),
             RandomStochastic({2, 3, 2, 4}, rng, 0.1)};
  for (int o : {4, 3, 2}) {
    Vector c(o);
    for (int i = 0; i < o; ++i) c[i] = uniform(rng);
    model.C.push_back(c);
  }
  model.D = {Vector::Constant(3, 1.0 / 3), Vector::Constant(2, 0.5), Vector::Constant(4, 0.25)};
  if (with_counts) {
    for (const Tensor& a : model.A) {
      Tensor counts = a;
      for (double& x : counts.data) x *= 4.0 + 3.0 * std::abs(uniform(rng));
      model.pA.push_back(counts);
    }
    for (const Tensor& b : model.B) {
      Tensor counts = b;
      for (double& x : counts.data) x *= 2.0 + std::abs(uniform(rng));
      model.pB.push_back(counts);
    }
    model.A.clear();
    model.B.clear();
  }
  return model;
}

TEST(AgentIdentity, RiskPlusAmbiguityIsMinusUtilityAndInformationGain) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    for (Numerics numerics : {Numerics::kExact, Numerics::kPymdp}) {
      AgentSettings settings;
      settings.policy_len = 2;
      settings.numerics = numerics;
      Agent agent(RandomModel(seed, false), settings);
      for (const std::vector<int>& o : {std::vector<int>{1, 2, 0}, std::vector<int>{3, 0, 1}}) {
        agent.Step(o);
        const PolicyEvaluation& e = agent.result().policies;
        // Exact: equal to rounding. pymdp's floors (e^-16 ≈ 1.1e-7 inside the entropy of A,
        // configurations below e^-16 dropped) shift the information gain by up to ~1e-6.
        const double tolerance = numerics == Numerics::kExact ? 1e-11 : 1e-5;
        for (Eigen::Index p = 0; p < e.risk.size(); ++p)
          EXPECT_NEAR(e.risk[p] + e.ambiguity[p], -(e.utility[p] + e.state_info_gain[p]), tolerance)
              << "seed " << seed << " policy " << p;
      }
    }
  }
}

/// An independent straightforward evaluation of one policy (exact numerics): the joint
/// predicted distribution of all factors by brute force, q(o) by summing over joint states,
/// and the parts by their definitions.
struct BruteForceParts {
  double utility = 0, info_gain = 0, risk = 0, ambiguity = 0, novelty_A = 0, novelty_B = 0;
};

/// pymdp's novelty weights spm_wnorm(counts) = 1/Σ_rows(counts + ε) − 1/(counts + ε), where
/// counts > 0, for column `column` and row `row` of a tensor with `columns` columns.
double NoveltyWeight(const Tensor& counts, size_t row, size_t column) {
  const size_t rows = counts.shape[0], columns = counts.data.size() / rows;
  const double a = counts.data[row * columns + column];
  if (!(a > 0)) return 0.0;
  double total = 0.0;
  for (size_t r = 0; r < rows; ++r) total += counts.data[r * columns + column] + 1e-16;
  return 1.0 / total - 1.0 / (a + 1e-16);
}

BruteForceParts BruteForce(const GenerativeModel& model, const std::vector<Vector>& qs,
                           const Policy& policy) {
  const int F = static_cast<int>(model.B.size());
  std::vector<int> ns;
  for (const Tensor& b : model.B) ns.push_back(b.shape[0]);
  std::vector<Vector> q = qs;
  BruteForceParts parts;
  for (const std::vector<int>& action : policy) {
    std::vector<Vector> next(F);
    struct ParentWeight {
      int factor;
      size_t column;
      double weight;
    };
    std::vector<ParentWeight> weights_of_parents;
    for (int f = 0; f < F; ++f) {
      next[f] = Vector::Zero(ns[f]);
      const Tensor& b = model.B[f];
      const std::vector<int>& parents = model.B_factor_list[f];
      const int U = b.shape.back();
      // Enumerate parent states.
      std::vector<int> idx(parents.size(), 0);
      while (true) {
        double w = 1.0;
        size_t column = 0;
        for (size_t k = 0; k < parents.size(); ++k) {
          w *= q[parents[k]][idx[k]];
          column = column * ns[parents[k]] + idx[k];
        }
        const size_t columns = b.data.size() / b.shape[0];
        for (int s = 0; s < ns[f]; ++s) next[f][s] += w * b.data[s * columns + column * U + action[f]];
        weights_of_parents.push_back({f, column * U + action[f], w});
        size_t k = parents.size();
        while (k-- > 0 && ++idx[k] == ns[parents[k]]) idx[k] = 0;
        if (k == static_cast<size_t>(-1)) break;
      }
    }
    q = next;
    if (!model.pB.empty())
      for (const ParentWeight& pw : weights_of_parents)
        for (int s = 0; s < ns[pw.factor]; ++s)
          parts.novelty_B -= q[pw.factor][s] * NoveltyWeight(model.pB[pw.factor], s, pw.column) * pw.weight;
    for (size_t m = 0; m < model.A.size(); ++m) {
      const Tensor& a = model.A[m];
      const std::vector<int>& factors = model.A_factor_list[m];
      const int O = a.shape[0];
      const size_t columns = a.data.size() / O;
      Vector qo = Vector::Zero(O);
      std::vector<double> config_weights;
      double expected_entropy = 0.0;
      for (size_t column = 0; column < columns; ++column) {
        size_t rest = column;
        double w = 1.0;
        for (size_t k = factors.size(); k-- > 0;) {
          w *= q[factors[k]][rest % ns[factors[k]]];
          rest /= ns[factors[k]];
        }
        double h = 0.0;
        for (int o = 0; o < O; ++o) {
          const double p = a.data[o * columns + column];
          qo[o] += w * p;
          if (p > 0) h -= p * std::log(p);
        }
        expected_entropy += w * h;
        config_weights.push_back(w);
      }
      if (!model.pA.empty())
        for (int o = 0; o < O; ++o)
          for (size_t column = 0; column < columns; ++column)
            parts.novelty_A -= qo[o] * NoveltyWeight(model.pA[m], o, column) * config_weights[column];
      Vector preference = model.C[m].array().exp();
      preference /= preference.sum();
      double entropy = 0.0, utility = 0.0, cross = 0.0;
      for (int o = 0; o < O; ++o) {
        if (qo[o] > 0) entropy -= qo[o] * std::log(qo[o]);
        utility += qo[o] * std::log(preference[o] + 1e-16);
        cross += qo[o] * std::log(preference[o]);
      }
      parts.utility += utility;
      parts.info_gain += entropy - expected_entropy;
      parts.risk += -entropy - cross;
      parts.ambiguity += expected_entropy;
    }
  }
  return parts;
}

TEST(AgentPolicies, PartsMatchABruteForceEvaluation) {
  for (uint64_t seed = 11; seed <= 14; ++seed) {
    AgentSettings settings;
    settings.policy_len = 2;
    settings.numerics = Numerics::kExact;
    settings.use_param_info_gain = true;
    settings.learn_A = settings.learn_B = false;
    Agent agent(RandomModel(seed, /*with_counts=*/seed % 2 == 0), settings);
    agent.Step({0, 1, 1});
    agent.Step({2, 0, 0});
    const StepResult& r = agent.result();
    const PolicyEvaluation& e = r.policies;
    for (size_t p = 0; p < agent.policies().size(); ++p) {
      const BruteForceParts expected = BruteForce(agent.model(), r.qs, agent.policies()[p]);
      EXPECT_NEAR(e.utility[p], expected.utility, 1e-12) << p;
      EXPECT_NEAR(e.state_info_gain[p], expected.info_gain, 1e-12) << p;
      EXPECT_NEAR(e.risk[p], expected.risk, 1e-10) << p;
      EXPECT_NEAR(e.ambiguity[p], expected.ambiguity, 1e-12) << p;
      EXPECT_NEAR(e.pA_info_gain[p], expected.novelty_A, 1e-12) << p;
      EXPECT_NEAR(e.pB_info_gain[p], expected.novelty_B, 1e-12) << p;
      EXPECT_NEAR(e.neg_efe[p],
                  expected.utility + expected.info_gain + expected.novelty_A + expected.novelty_B,
                  1e-11) << p;
    }
    // q(π) = softmax(γ G + ln E), E uniform here.
    Vector logits = settings.gamma * e.neg_efe;
    logits.array() -= logits.maxCoeff();
    const Vector q = logits.array().exp() / logits.array().exp().sum();
    for (Eigen::Index p = 0; p < q.size(); ++p) EXPECT_NEAR(e.q_pi[p], q[p], 1e-12);
  }
}

// ---- State inference -------------------------------------------------------------------------

TEST(AgentStates, OneFactorPosteriorIsBayesRule) {
  // One factor: mean field is exact, q(s) ∝ (prior + ε) Π_m (A_m[o_m, s] + ε).
  std::mt19937_64 rng(3);
  GenerativeModel model;
  model.B = {RandomStochastic({5, 5, 2}, rng, 0.3)};
  model.A = {RandomStochastic({3, 5}, rng, 0.3), RandomStochastic({4, 5}, rng, 0.3)};
  model.D = {Vector::Constant(5, 0.2)};
  for (StateInferenceMethod method :
       {StateInferenceMethod::kFixedPoint, StateInferenceMethod::kFactorGraph}) {
    AgentSettings settings;
    settings.method = method;
    settings.factor_update = FactorUpdate::kSequential;
    Agent agent(model, settings);
    std::vector<Vector> previous;
    for (const std::vector<int>& o : {std::vector<int>{0, 1}, std::vector<int>{2, 3}}) {
      agent.InferStates(o);
      const StepResult& r = agent.result();
      Vector prior = previous.empty() ? model.D[0] : Vector::Zero(5);
      if (!previous.empty()) {
        const int u = r.action[0];
        for (int s = 0; s < 5; ++s)
          for (int x = 0; x < 5; ++x) prior[s] += model.B[0].data[(s * 5 + x) * 2 + u] * previous[0][x];
      }
      Vector q(5);
      for (int s = 0; s < 5; ++s)
        q[s] = (prior[s] + 1e-16) * (model.A[0].data[o[0] * 5 + s] + 1e-16) *
               (model.A[1].data[o[1] * 5 + s] + 1e-16);
      q /= q.sum();
      for (int s = 0; s < 5; ++s) EXPECT_NEAR(r.qs[0][s], q[s], 1e-12);
      // F = −ln p(o) (+ the floors) at the exact posterior.
      double evidence = 0.0;
      for (int s = 0; s < 5; ++s)
        evidence += (prior[s] + 1e-16) * (model.A[0].data[o[0] * 5 + s] + 1e-16) *
                    (model.A[1].data[o[1] * 5 + s] + 1e-16);
      EXPECT_NEAR(r.free_energy, -std::log(evidence), 1e-9);
      agent.InferPolicies();
      agent.SelectAction();
      previous = r.qs;
    }
  }
}

/// pymdp's run_vanilla_fpi_factorized written out by enumeration over the joint states of all
/// factors: uniform start, every factor from the previous iteration's posteriors, F as
/// calc_free_energy with the joint log-likelihood, stop when |ΔF| < tol (F_0 without accuracy).
std::vector<Vector> PymdpFixedPoint(const GenerativeModel& model, const std::vector<int>& o,
                                    const std::vector<Vector>& prior, int num_iter, double tol,
                                    int* iterations, double* free_energy) {
  const int F = static_cast<int>(model.B.size());
  std::vector<int> ns;
  for (const Tensor& b : model.B) ns.push_back(b.shape[0]);
  size_t joint = 1;
  for (int n : ns) joint *= n;
  // Joint log-likelihood Σ_m ln(A[m][o_m, s_m] + ε) for every joint state x.
  std::vector<std::vector<int>> states(joint, std::vector<int>(F));
  std::vector<double> log_likelihood(joint, 0.0);
  for (size_t x = 0; x < joint; ++x) {
    size_t rest = x;
    for (int f = F - 1; f >= 0; --f) {
      states[x][f] = rest % ns[f];
      rest /= ns[f];
    }
    for (size_t m = 0; m < model.A.size(); ++m) {
      size_t column = 0;
      for (int f : model.A_factor_list[m]) column = column * ns[f] + states[x][f];
      const size_t columns = model.A[m].data.size() / model.A[m].shape[0];
      log_likelihood[x] += std::log(model.A[m].data[o[m] * columns + column] + 1e-16);
    }
  }
  std::vector<Vector> q(F), log_prior(F);
  for (int f = 0; f < F; ++f) {
    q[f] = Vector::Constant(ns[f], 1.0 / ns[f]);
    log_prior[f] = (prior[f].array() + 1e-16).log();
  }
  auto energy = [&](bool accuracy) {
    double value = 0.0;
    for (int f = 0; f < F; ++f)
      value += q[f].dot(Vector((q[f].array() + 1e-16).log())) - q[f].dot(log_prior[f]);
    if (accuracy)
      for (size_t x = 0; x < joint; ++x) {
        double w = 1.0;
        for (int f = 0; f < F; ++f) w *= q[f][states[x][f]];
        value -= w * log_likelihood[x];
      }
    return value;
  };
  double previous = energy(false), change = 1.0;
  int it = 0;
  while (it < num_iter && change >= tol) {
    std::vector<Vector> next(F);
    for (int f = 0; f < F; ++f) {
      // E over the other factors of the modalities that involve f (the others cancel).
      Vector expected = Vector::Zero(ns[f]);
      for (size_t m = 0; m < model.A.size(); ++m) {
        const std::vector<int>& list = model.A_factor_list[m];
        if (std::find(list.begin(), list.end(), f) == list.end()) continue;
        for (size_t x = 0; x < joint; ++x) {
          double w = 1.0;
          for (int g = 0; g < F; ++g)
            if (g != f) w *= q[g][states[x][g]];
          size_t column = 0;
          for (int g : list) column = column * ns[g] + states[x][g];
          const size_t columns = model.A[m].data.size() / model.A[m].shape[0];
          expected[states[x][f]] += w * std::log(model.A[m].data[o[m] * columns + column] + 1e-16);
        }
      }
      // Factors outside modality m sum out (their marginals sum to one).
      Vector logits = expected + log_prior[f];
      logits.array() -= logits.maxCoeff();
      next[f] = logits.array().exp() / logits.array().exp().sum();
    }
    q = next;
    const double value = energy(true);
    change = std::abs(previous - value);
    previous = value;
    ++it;
  }
  *iterations = it;
  *free_energy = previous;
  return q;
}

TEST(AgentStates, FixedPointMatchesPymdpsSimultaneousSchemeOnRandomModels) {
  // Where the two schemes differ (several uncertain factors), the default is pymdp's.
  double sequential_gap = 0.0;
  for (uint64_t seed = 81; seed <= 86; ++seed) {
    GenerativeModel model = RandomModel(seed, false);
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0.1, 1.0);
    for (Vector& d : model.D) {
      for (Eigen::Index i = 0; i < d.size(); ++i) d[i] = uniform(rng);
      d /= d.sum();
    }
    const std::vector<int> o = {static_cast<int>(seed % 4), static_cast<int>(seed % 3), 1};
    AgentSettings settings;
    settings.num_iter = 20;
    settings.dF_tol = 1e-7;
    Agent agent(model, settings);
    agent.InferStates(o);
    int iterations = 0;
    double free_energy = 0.0;
    const std::vector<Vector> expected =
        PymdpFixedPoint(agent.model(), o, model.D, 20, 1e-7, &iterations, &free_energy);
    const StepResult& r = agent.result();
    EXPECT_EQ(r.fpi_iterations, iterations) << "seed " << seed;
    EXPECT_NEAR(r.free_energy, free_energy, 1e-10) << "seed " << seed;
    for (size_t f = 0; f < expected.size(); ++f)
      for (Eigen::Index s = 0; s < expected[f].size(); ++s)
        EXPECT_NEAR(r.qs[f][s], expected[f][s], 1e-12) << "seed " << seed << " factor " << f;
    AgentSettings sequential = settings;
    sequential.factor_update = FactorUpdate::kSequential;
    Agent other(model, sequential);
    other.InferStates(o);
    for (size_t f = 0; f < expected.size(); ++f)
      sequential_gap = std::max(sequential_gap, (other.result().qs[f] - expected[f]).cwiseAbs().maxCoeff());
  }
  EXPECT_GT(sequential_gap, 1e-6);  // the oracle tells the two schemes apart
}

TEST(AgentStates, FactorGraphEqualsSequentialFixedPoint) {
  // The engine's SequentialScheduler and the flat fixed-point path with sequential updates
  // are the same algorithm: same posteriors, iterations and F on random three-factor models.
  for (uint64_t seed = 21; seed <= 25; ++seed) {
    AgentSettings lean, engine;
    lean.factor_update = engine.factor_update = FactorUpdate::kSequential;
    lean.dF_tol = engine.dF_tol = 1e-9;
    lean.num_iter = engine.num_iter = 50;
    engine.method = StateInferenceMethod::kFactorGraph;
    Agent a(RandomModel(seed, false), lean), b(RandomModel(seed, false), engine);
    for (const std::vector<int>& o :
         {std::vector<int>{0, 1, 1}, std::vector<int>{3, 2, 0}, std::vector<int>{1, 0, 1}}) {
      const StepResult& ra = a.Step(o);
      const StepResult& rb = b.Step(o);
      EXPECT_EQ(ra.fpi_iterations, rb.fpi_iterations) << "seed " << seed;
      EXPECT_NEAR(ra.free_energy, rb.free_energy, 1e-9) << "seed " << seed;
      for (size_t f = 0; f < ra.qs.size(); ++f)
        for (Eigen::Index s = 0; s < ra.qs[f].size(); ++s)
          EXPECT_NEAR(ra.qs[f][s], rb.qs[f][s], 1e-12) << "seed " << seed << " factor " << f;
      EXPECT_EQ(ra.action, rb.action);
    }
  }
}

TEST(AgentStates, SequentialUpdatesNeverRaiseTheFreeEnergy) {
  // Coordinate ascent: with more iterations allowed F can only go down.
  for (uint64_t seed = 31; seed <= 35; ++seed) {
    double previous = INFINITY;
    for (int iterations = 1; iterations <= 6; ++iterations) {
      AgentSettings settings;
      settings.factor_update = FactorUpdate::kSequential;
      settings.num_iter = iterations;
      settings.dF_tol = 0.0;
      Agent agent(RandomModel(seed, false), settings);
      agent.InferStates({2, 1, 0});
      EXPECT_LE(agent.result().free_energy, previous + 1e-12) << "seed " << seed;
      previous = agent.result().free_energy;
    }
  }
}

// ---- Threads, action selection, learning ---------------------------------------------------

TEST(AgentPolicies, ResultsDoNotDependOnTheNumberOfThreads) {
  std::vector<StepResult> results;
  for (int threads : {1, 2, 0}) {
    AgentSettings settings;
    settings.policy_len = 3;  // 6^3 = 216 policies, 258 tree nodes: the levels run in parallel
    settings.use_param_info_gain = true;
    settings.num_threads = threads;
    Agent agent(RandomModel(41, true), settings);
    agent.Step({1, 1, 0});
    results.push_back(agent.Step({0, 2, 1}));
  }
  for (size_t i = 1; i < results.size(); ++i) {
    const PolicyEvaluation& a = results[0].policies;
    const PolicyEvaluation& b = results[i].policies;
    for (Eigen::Index p = 0; p < a.neg_efe.size(); ++p) {
      EXPECT_EQ(a.neg_efe[p], b.neg_efe[p]);
      EXPECT_EQ(a.q_pi[p], b.q_pi[p]);
      EXPECT_EQ(a.pB_info_gain[p], b.pB_info_gain[p]);
    }
    EXPECT_EQ(results[0].action, results[i].action);
  }
}

TEST(AgentActions, StochasticSelectionFollowsSoftmaxOfTheMarginalsAndIsSeeded) {
  // γ = 0 makes q(π) = E; with one step and one controlled factor the action marginal is E,
  // and α = 1 draws from softmax(ln E) = E.
  std::mt19937_64 rng(5);
  GenerativeModel model;
  model.B = {RandomStochastic({3, 3, 3}, rng, 0.0)};
  model.A = {RandomStochastic({2, 3}, rng, 0.0)};
  model.E = Vector(3);
  model.E << 0.2, 0.5, 0.3;
  AgentSettings settings;
  settings.gamma = 0.0;
  settings.alpha = 1.0;
  settings.action_selection = ActionSelection::kStochastic;
  settings.seed = 99;
  auto draws = [&](int count) {
    Agent agent(model, settings);
    agent.InferStates({0});
    agent.InferPolicies();
    std::vector<int> out;
    for (int i = 0; i < count; ++i) out.push_back(agent.SelectAction()[0]);
    return out;
  };
  const std::vector<int> first = draws(30000), second = draws(30000);
  EXPECT_EQ(first, second);
  std::vector<double> frequency(3, 0.0);
  for (int a : first) frequency[a] += 1.0 / first.size();
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(frequency[a], model.E[a], 0.012) << a;
}

TEST(AgentActions, DeterministicTiesTakeTheLowestIndex) {
  GenerativeModel model;
  Tensor b = Tensor::Filled({2, 2, 3}, 0.5);
  model.B = {b};
  model.A = {Tensor::Filled({2, 2}, 0.5)};
  Agent agent(model, AgentSettings());
  agent.InferStates({1});
  agent.InferPolicies();
  EXPECT_EQ(agent.SelectAction()[0], 0);  // three identical policies
}

TEST(AgentLearning, CountsGrowByTheLearningRateTimesTheBeliefs) {
  // pA[m][o, s…] += lr_A q(s…) where A > 0; pB[f][s', s…, u] += lr_B q(s') q_prev(s…) where
  // B > 0, for the action taken before the observation; pD += lr_D q(first step).
  GenerativeModel model = RandomModel(51, true);
  model.pD = {Vector::Constant(3, 2.0), Vector::Constant(2, 1.0), Vector::Constant(4, 0.5)};
  AgentSettings settings;
  settings.lr_pA = 0.5;
  settings.lr_pB = 0.25;
  settings.lr_pD = 2.0;
  Agent agent(model, settings);
  const GenerativeModel start = agent.model();
  agent.Step({1, 2, 0});
  const std::vector<Vector> q0 = agent.result().qs;
  const std::vector<int> action = agent.result().action;
  const GenerativeModel after_first = agent.model();
  agent.Step({0, 1, 1});
  const std::vector<Vector> q1 = agent.result().qs;
  // Modality 1 depends on factor 2 only: pA[1][o, s] grows by 0.5 q(s) in the observed row.
  for (int s = 0; s < 4; ++s)
    for (int o = 0; o < 3; ++o) {
      const double grow = o == 2 && start.A[1].data[o * 4 + s] > 0 ? 0.5 * q0[2][s] : 0.0;
      EXPECT_NEAR(after_first.pA[1].data[o * 4 + s], start.pA[1].data[o * 4 + s] + grow, 1e-12);
    }
  // Factor 0 (parents {0}, 2 controls): pB[0][s', s, u] grows at u = the first action.
  for (int x = 0; x < 3; ++x)
    for (int s = 0; s < 3; ++s)
      for (int u = 0; u < 2; ++u) {
        const size_t i = (x * 3 + s) * 2 + u;
        const double grow =
            u == action[0] && after_first.B[0].data[i] > 0 ? 0.25 * q1[0][x] * q0[0][s] : 0.0;
        EXPECT_NEAR(agent.model().pB[0].data[i], after_first.pB[0].data[i] + grow, 1e-12);
      }
  agent.EndEpisode();
  for (int s = 0; s < 3; ++s) EXPECT_NEAR(agent.model().pD[0][s], 2.0 + 2.0 * q0[0][s], 1e-12);
  EXPECT_NEAR(agent.model().D[0].sum(), 1.0, 1e-12);
}

TEST(AgentSteps, StepsAfterTheFirstAllocateNothing) {
  // The fixed-point path sizes every buffer at construction (and the thread's scratch at the
  // first policy evaluation): later steps, learning included, allocate nothing.
  AgentSettings settings;
  settings.policy_len = 2;
  settings.use_param_info_gain = true;
  Agent agent(RandomModel(71, true), settings);
  agent.Step({0, 1, 1});
  agent.Step({1, 0, 0});
  const std::vector<int> third = {2, 2, 1}, fourth = {3, 1, 0};  // built outside the window
  const long before = vfe::testing::AllocationCount();
  agent.Step(third);
  agent.Step(fourth);
  EXPECT_EQ(vfe::testing::AllocationCount() - before, 0);
}

TEST(AgentLearning, EpisodeScheduleAppliesTheSummedIncrementsAtTheEnd) {
  GenerativeModel model = RandomModel(52, true);
  AgentSettings settings;
  settings.learn_every = LearningSchedule::kEpisode;
  settings.lr_pA = 0.5;
  Agent agent(model, settings);
  const GenerativeModel start = agent.model();
  const std::vector<std::vector<int>> observations = {{1, 2, 0}, {0, 1, 1}, {3, 0, 1}};
  std::vector<double> expected = start.pA[1].data;  // modality 1: factor 2, shape (3, 4)
  for (const std::vector<int>& o : observations) {
    const StepResult& r = agent.Step(o);
    for (int s = 0; s < 4; ++s)
      if (start.A[1].data[o[1] * 4 + s] > 0) expected[o[1] * 4 + s] += 0.5 * r.qs[2][s];
    EXPECT_EQ(agent.model().pA[1].data, start.pA[1].data);  // unchanged during the episode
  }
  agent.EndEpisode();
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(agent.model().pA[1].data[i], expected[i], 1e-12) << i;
  for (int s = 0; s < 4; ++s) {
    double total = 0.0;
    for (int o = 0; o < 3; ++o) total += expected[o * 4 + s];
    EXPECT_NEAR(agent.model().A[1].data[s], expected[s] / total, 1e-12);
  }
}

TEST(AgentLearning, BeforePlanningEvaluatesThisStepsPoliciesWithTheNewCounts) {
  // The two-step example of docs/agent-format.md, on a random model with pA and pB: both
  // orders make the same increments (the same observations and actions, so the same
  // posteriors), but before planning the policies of each step are those of a brute-force
  // evaluation with the counts just learned, after the action those of the counts before.
  for (uint64_t seed = 61; seed <= 63; ++seed) {
    AgentSettings settings;
    settings.policy_len = 2;
    settings.numerics = Numerics::kExact;
    settings.use_param_info_gain = true;
    settings.lr_pA = 2.0;
    settings.lr_pB = 3.0;
    AgentSettings before = settings;
    before.learn_when = LearningTime::kBeforePlanning;
    Agent after_action(RandomModel(seed, true), settings);
    Agent before_planning(RandomModel(seed, true), before);
    const std::vector<std::vector<int>> observations = {{1, 2, 0}, {0, 1, 1}};
    for (const std::vector<int>& o : observations) {
      const GenerativeModel counts_before = after_action.model();
      const StepResult& a = after_action.Step(o);
      const StepResult& b = before_planning.Step(o);
      ASSERT_EQ(a.action, b.action) << "seed " << seed;  // so that the next step is the same
      for (size_t f = 0; f < a.qs.size(); ++f)
        for (Eigen::Index s = 0; s < a.qs[f].size(); ++s) EXPECT_NEAR(a.qs[f][s], b.qs[f][s], 1e-12);
      for (size_t p = 0; p < after_action.policies().size(); ++p) {
        const Policy& policy = after_action.policies()[p];
        const BruteForceParts old_counts = BruteForce(counts_before, a.qs, policy);
        const BruteForceParts new_counts = BruteForce(after_action.model(), a.qs, policy);
        auto g = [](const BruteForceParts& x) {
          return x.utility + x.info_gain + x.novelty_A + x.novelty_B;
        };
        EXPECT_NEAR(a.policies.neg_efe[p], g(old_counts), 1e-11) << "seed " << seed << " " << p;
        EXPECT_NEAR(b.policies.neg_efe[p], g(new_counts), 1e-11) << "seed " << seed << " " << p;
      }
      for (size_t f = 0; f < after_action.model().pB.size(); ++f)
        for (size_t i = 0; i < after_action.model().pB[f].data.size(); ++i)
          EXPECT_NEAR(after_action.model().pB[f].data[i], before_planning.model().pB[f].data[i],
                      1e-12);
    }
  }
}

// ---- Errors ------------------------------------------------------------------------------------

void ExpectModelError(GenerativeModel model, const std::string& message, int policy_len = 1) {
  AgentSettings settings;
  settings.policy_len = policy_len;
  vfe::testing::ExpectErrorMentioning<ModelError>(
      [&] { Agent agent(std::move(model), settings); }, {message});
}

TEST(AgentErrors, BadModelsNameThePartExpectedAndFound) {
  GenerativeModel good = RandomModel(61, false);
  {
    GenerativeModel m = good;
    m.A[1].data[5] += 0.1;  // A[1] is (3, 4): flat 5 = [1, 1], column [:, 1]
    ExpectModelError(m, "A[1][:, 1]: must sum to 1 over the first axis (p(o | s)), sums to 1.1");
  }
  {
    GenerativeModel m = good;
    m.A[0] = Tensor::Filled({4, 2, 3}, 0.25);
    ExpectModelError(m, "A[0]: expected shape (4, 3, 2) (outcomes, states of factors [0, 1]), got (4, 2, 3)");
  }
  {
    GenerativeModel m = good;
    m.B[0].data[0] = -0.1;
    ExpectModelError(m, "B[0][0, 0, 0]: entries must be finite and >= 0, got -0.1");
  }
  {
    GenerativeModel m = good;
    m.policies = {{{0, 0, 0}}, {{2, 0, 1}}};
    ExpectModelError(m, "policies[1][0][0]: factor 0 has 2 control(s) (0..1), got action 2");
  }
  {
    GenerativeModel m = good;
    m.A_factor_list[2] = {0, 3};
    ExpectModelError(m, "A_factor_list[2][1]: expected a factor in 0..2, got 3");
  }
  {
    GenerativeModel m = good;
    m.D[1] = Vector::Constant(2, 0.7);
    ExpectModelError(m, "D[1]: expected probabilities >= 0 that sum to 1, sum to 1.4");
  }
  {
    GenerativeModel m = good;
    m.C.pop_back();
    ExpectModelError(m, "C: expected one vector per modality (3), got 2");
  }
  {
    GenerativeModel m = good;
    m.E = Vector::Constant(5, 0.2);
    ExpectModelError(m, "E: expected 6 entries (one per policy), got 5");
  }
  {
    GenerativeModel m = RandomModel(61, true);
    m.pA[0].data.assign(m.pA[0].data.size(), 0.0);
    ExpectModelError(m, "pA[0][:, 0, 0]: Dirichlet counts must have a positive sum, sum to 0");
  }
  Agent agent(good, AgentSettings());
  EXPECT_EQ(vfe::testing::ErrorMessage<ModelError>([&] { agent.Step({0, 5, 0}); }),
            "observation[1]: expected an outcome in 0..2, got 5");
  AgentSettings engine;
  engine.method = StateInferenceMethod::kFactorGraph;
  EXPECT_THROW(Agent(good, engine), OptionsError);  // the engine updates factors sequentially
}

// ---- JSON ----------------------------------------------------------------------------------------

TEST(AgentJson, ErrorsNameTheJsonPointer) {
  auto expect = [](const std::string& text, const std::string& message) {
    vfe::testing::ExpectErrorMentioning<ModelError>(
        [&] { ParseAgentJson(text, "agent.json"); }, {message});
  };
  const std::string head = R"({"format": "vfe-agent/1", "model": {"B": [[[[1.0], [0.0]], [[0.0], [1.0]]]], )";
  expect(head + R"("A": [[[1.0, 0.5], [0.0, 0.5, 0.0]]]}})",
         "agent.json: /model/A/0/1: expected 2 entries (the shape set by the first entries), found 3");
  expect(head + R"("A": [[[1.0, 0.5], [0.0, 0.5]]], "Q": 1}})",
         "agent.json: /model/Q: unknown key");
  expect(head + R"("A": [[[1.0, 0.5], [0.0, 0.4]]]}})",
         "agent.json: /model: A[0][:, 1]: must sum to 1 over the first axis (p(o | s)), sums to 0.9");
  expect(head + R"("A": [[[1.0, 0.5], [0.0, 0.5]]]}, "settings": {"gamma": "high"}})",
         "agent.json: /settings/gamma: expected a finite number, found the string \"high\"");
  expect(head + R"("A": [[[1.0, 0.5], [0.0, 0.5]]]}, "settings": {"state_inference": {"method": "bp"}}})",
         "agent.json: /settings/state_inference/method: expected one of 'fixed_point', "
         "'factor_graph', found the string \"bp\"");
  expect(R"({"format": "vfe-agent/2", "model": {}})",
         "agent.json: /format: expected \"vfe-agent/1\", found the string \"vfe-agent/2\"");
  expect(head + R"("A": [[[1.0, 0.5], [0.0, 0.5]]]}, "environment": {"initial_state": [3]}})",
         "agent.json: /environment: environment initial_state[0]: expected a state in 0..1, got 3");
}

TEST(AgentJson, TmazeExampleVisitsTheCueThenTheCuedArm) {
  const AgentFile file = LoadAgentFile(std::string(VFE_SOURCE_DIR) + "/examples/tmaze.json");
  // Replay both reward conditions: the cue says where the reward is.
  for (int condition : {0, 1}) {
    Agent agent(file.model, file.settings);
    const std::vector<int> first = agent.Step({0, 0, 0}).action;
    EXPECT_EQ(first[0], 3);  // the cue location
    const std::vector<int> second = agent.Step({3, 0, condition}).action;
    EXPECT_EQ(second[0], condition == 0 ? 1 : 2);  // cue right → right arm (1)
  }
}

TEST(AgentJson, ReplayWithActionsReproducesPymdpsLearnedCounts) {
  // The learning reference through the trace writer: its observations and pymdp's actions
  // (which include random tie-breaks) replayed; the final counts are pymdp's.
  const Json reference = vfe::testing::LoadReference("pymdp/tmaze_learning.json");
  AgentFile file;
  file.model = ReferenceModel(reference["model"]);
  file.settings = ReferenceSettings(reference["settings"]);
  file.path = "tmaze_learning";
  std::vector<std::vector<int>> observations, actions;
  for (const Json& step : reference["episodes"][0]["steps"]) {
    observations.push_back(step["obs"]);
    actions.push_back(step["action"]);
  }
  std::ostringstream out;
  RunAgent(file, 0, &observations, &actions, out);
  const Json trace = Json::parse(out.str());
  ASSERT_EQ(trace["episodes"][0]["steps"].size(), observations.size());
  const Tensor expected = NestedTensor(reference["final_pA_reward_modality"]);
  const std::vector<double> learned = trace["learned"]["pA"][1]["data"];
  ASSERT_EQ(learned.size(), expected.data.size());
  for (size_t i = 0; i < learned.size(); ++i)
    EXPECT_NEAR(learned[i], expected.data[i], 1e-9 * std::max(1.0, expected.data[i])) << i;
  const Json& last = trace["episodes"][0]["steps"].back();
  ExpectMatrixNear(Vector(ToVector(last["q_pi"]).head(4)),
                   ToVector(reference["episodes"][0]["steps"].back()["q_pi"]), 1e-6, "last q_pi");
}

TEST(AgentJson, TraceOfAReplayEqualsTheAgentsOwnSteps) {
  const AgentFile file = LoadAgentFile(std::string(VFE_SOURCE_DIR) + "/examples/tmaze.json");
  const std::vector<std::vector<int>> observations = {{0, 0, 1}, {3, 0, 1}, {2, 1, 0}};
  std::ostringstream out;
  RunAgent(file, 0, &observations, nullptr, out);
  const Json trace = Json::parse(out.str());
  ASSERT_EQ(trace["format"], "vfe-agent-trace/1");
  Agent agent(file.model, file.settings);
  for (size_t t = 0; t < observations.size(); ++t) {
    const StepResult& r = agent.Step(observations[t]);
    const Json& step = trace["episodes"][0]["steps"][t];
    EXPECT_EQ(step["action"].get<std::vector<int>>(), r.action);
    for (Eigen::Index p = 0; p < r.policies.neg_efe.size(); ++p) {
      EXPECT_EQ(step["G"][p].get<double>(), r.policies.neg_efe[p]);
      EXPECT_EQ(step["efe"][p].get<double>(), -r.policies.neg_efe[p]);
    }
    EXPECT_EQ(step["qs"][1][0].get<double>(), r.qs[1][0]);
  }
}

TEST(AgentJson, ReplayedActionsKeepTheAgentsOwnChoice) {
  // Imposed actions replace the agent's choice for the environment and for learning; the
  // trace keeps both, and G, q(π) and the action marginals are those of the agent's own step.
  const AgentFile file = LoadAgentFile(std::string(VFE_SOURCE_DIR) + "/examples/tmaze.json");
  const std::vector<std::vector<int>> observations = {{0, 0, 1}, {3, 0, 1}, {2, 1, 0}};
  const std::vector<std::vector<int>> actions = {{1, 0}, {2, 0}, {1, 0}};
  std::ostringstream out;
  RunAgent(file, 0, &observations, &actions, out);
  const Json trace = Json::parse(out.str());
  Agent agent(file.model, file.settings);
  for (size_t t = 0; t < observations.size(); ++t) {
    agent.InferStates(observations[t]);
    agent.InferPolicies();
    const std::vector<int> chosen = agent.SelectAction();
    const Json& step = trace["episodes"][0]["steps"][t];
    EXPECT_EQ(step["chosen_action"].get<std::vector<int>>(), chosen) << t;
    EXPECT_EQ(step["action"].get<std::vector<int>>(), actions[t]) << t;
    for (Eigen::Index p = 0; p < agent.result().policies.q_pi.size(); ++p)
      EXPECT_EQ(step["q_pi"][p].get<double>(), agent.result().policies.q_pi[p]);
    agent.SetAction(actions[t]);
    agent.Learn();
  }
  // Some imposed action differs from the choice, or the test would not see the difference.
  bool differs = false;
  for (size_t t = 0; t < actions.size(); ++t)
    differs |= trace["episodes"][0]["steps"][t]["chosen_action"].get<std::vector<int>>() != actions[t];
  EXPECT_TRUE(differs);
  // Without imposed actions there is no "chosen_action" (it is "action").
  std::ostringstream own;
  RunAgent(file, 0, &observations, nullptr, own);
  EXPECT_FALSE(Json::parse(own.str())["episodes"][0]["steps"][0].contains("chosen_action"));
}

TEST(AgentJson, LearningWhenIsReadAndChecked) {
  const std::string text = R"({"format": "vfe-agent/1", "model": {"A": [[[1, 0], [0, 1]]], "B": [[[[1], [0]], [[0], [1]]]],
    "C": [[0, 0]], "D": [[0.5, 0.5]]}, "settings": {"learning": {"when": "before_planning"}}})";
  EXPECT_EQ(ParseAgentJson(text, "agent.json").settings.learn_when, LearningTime::kBeforePlanning);
  const std::string bad = R"({"format": "vfe-agent/1", "model": {"A": [[[1, 0], [0, 1]]], "B": [[[[1], [0]], [[0], [1]]]],
    "C": [[0, 0]], "D": [[0.5, 0.5]]}, "settings": {"learning": {"when": "before"}}})";
  EXPECT_THAT(vfe::testing::ErrorMessage<ModelError>([&] { ParseAgentJson(bad, "agent.json"); }),
              ::testing::HasSubstr("/settings/learning/when"));
}

}  // namespace
}  // namespace vfe::agents
