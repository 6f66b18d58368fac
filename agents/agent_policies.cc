// The agent's evaluation of policies: the expected free energy of every policy over a prefix
// tree of policies, level by level on TBB threads, and q(π).

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

#include "agents/agent_impl.h"
#include "agents/tensor_ops.h"

namespace vfe {
namespace agents {

void Agent::Impl::EvaluateNode(size_t n, Scratch& s) {
  const PolicyNode& node = nodes[n];
  const double* previous =
      node.parent < 0 ? qs_flat.data() : node_qs.data() + node.parent * total_states;
  double* qs = node_qs.data() + n * total_states;
  const int num_factors = static_cast<int>(factors.size());
  for (int f = 0; f < num_factors; ++f)
    Predict(f, node.action[f], previous, qs + factors[f].offset, s.weights.data(),
            s.marginals.data());
  double utility = 0.0, info_gain = 0.0, novelty_A = 0.0, novelty_B = 0.0, risk = 0.0,
         ambiguity = 0.0;
  const bool pymdp = settings.numerics == Numerics::kPymdp;
  const double threshold = pymdp ? PymdpEntropyFloor() : -1.0;
  for (size_t m = 0; m < modalities.size(); ++m) {
    const Modality& modality = modalities[m];
    const int k = static_cast<int>(modality.factors.size());
    for (int i = 0; i < k; ++i) s.marginals[i] = qs + factors[modality.factors[i]].offset;
    ConfigWeights(k, modality.dims.data(), s.marginals.data(), s.weights.data());
    const size_t C = modality.configs;
    const int O = modality.num_obs;
    const double* A = model.A[m].data.data();
    double expected_entropy_G = 0.0, expected_entropy = 0.0;
    for (int o = 0; o < O; ++o) s.qo[o] = s.qo_floored[o] = 0.0;
    bool skipped = false;
    for (size_t c = 0; c < C; ++c) {
      const double w = s.weights[c];
      expected_entropy += w * modality.entropy[c];
      const bool counted = w > threshold;  // spm_MDP_G skips configurations ≤ e^−16
      skipped = skipped || !counted;
      if (counted) expected_entropy_G += w * modality.neg_entropy_G[c];
      for (int o = 0; o < O; ++o) {
        const double a = A[o * C + c];
        s.qo[o] += a * w;
        if (counted) s.qo_floored[o] += a * w;
      }
    }
    double entropy_qo_G = 0.0, neg_entropy_qo = 0.0, modality_utility = 0.0;
    for (int o = 0; o < O; ++o) {
      const double qo = s.qo[o];
      modality_utility += qo * modality.log_preference[o];
      if (pymdp) {
        // Both sums see the same q(o), bit for bit, unless a configuration was skipped:
        // then one logarithm serves both.
        const double term = qo * LogStable(qo);
        neg_entropy_qo += term;
        entropy_qo_G -= skipped ? s.qo_floored[o] * LogStable(s.qo_floored[o]) : term;
      } else if (qo > 0) {
        entropy_qo_G -= qo * std::log(qo);
        neg_entropy_qo += qo * std::log(qo);
      }
    }
    utility += modality_utility;
    info_gain += expected_entropy_G + entropy_qo_G;
    risk += neg_entropy_qo - modality_utility;
    ambiguity += expected_entropy;
    if (!modality.novelty.empty()) {
      double sum = 0.0;
      for (int o = 0; o < O; ++o) {
        const double* row = modality.novelty.data() + o * C;
        double inner = 0.0;
        for (size_t c = 0; c < C; ++c) inner += row[c] * s.weights[c];
        sum += s.qo[o] * inner;
      }
      novelty_A -= sum;
    }
  }
  if (!model.pB.empty()) {
    for (int f = 0; f < num_factors; ++f) {
      const Factor& factor = factors[f];
      for (size_t i = 0; i < factor.parents.size(); ++i)
        s.marginals[i] = previous + factors[factor.parents[i]].offset;
      ConfigWeights(static_cast<int>(factor.parents.size()), factor.parent_dims.data(),
                    s.marginals.data(), s.parent_weights.data());
      const size_t C = factor.parent_configs;
      const int U = factor.num_controls, u = node.action[f];
      double sum = 0.0;
      for (int x = 0; x < factor.num_states; ++x) {
        const double* row = factor.novelty.data() + static_cast<size_t>(x) * C * U;
        double inner = 0.0;
        for (size_t c = 0; c < C; ++c) inner += row[c * U + u] * s.parent_weights[c];
        sum += qs[factor.offset + x] * inner;
      }
      novelty_B -= sum;
    }
  }
  double* terms = node_terms.data() + n * kTerms;
  terms[0] = utility;
  terms[1] = info_gain;
  terms[2] = novelty_A;
  terms[3] = novelty_B;
  terms[4] = risk;
  terms[5] = ambiguity;
}

Scratch& Agent::Impl::LocalScratch() {
  bool exists = false;
  Scratch& s = scratch.local(exists);
  if (!exists) {
    s.weights.assign(max_configs, 0.0);
    s.parent_weights.assign(max_configs, 0.0);
    s.qo.assign(max_obs, 0.0);
    s.qo_floored.assign(max_obs, 0.0);
    s.marginals.assign(factors.size() + 1, nullptr);
  }
  return s;
}

void Agent::Impl::InferPolicies() {
  // Nodes of one depth depend only on the level before: each level runs in parallel, and
  // every node writes only its own slots, so the result does not depend on the threads.
  constexpr size_t kGrain = 16;
  for (int t = 0; t < horizon; ++t) {
    const size_t begin = level_begin[t], end = level_begin[t + 1];
    if (end - begin <= kGrain || settings.num_threads == 1) {
      Scratch& s = LocalScratch();
      for (size_t n = begin; n < end; ++n) EvaluateNode(n, s);
      continue;
    }
    arena->execute([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(begin, end, kGrain),
                        [&](const tbb::blocked_range<size_t>& range) {
                          Scratch& s = LocalScratch();
                          for (size_t n = range.begin(); n != range.end(); ++n) EvaluateNode(n, s);
                        });
    });
  }
  PolicyEvaluation& e = result.policies;
  const size_t count = model.policies.size();
  for (size_t p = 0; p < count; ++p) {
    double parts[kTerms] = {0, 0, 0, 0, 0, 0};
    for (int t = 0; t < horizon; ++t) {
      const double* terms = node_terms.data() + policy_path[p * horizon + t] * kTerms;
      for (int k = 0; k < kTerms; ++k) parts[k] += terms[k];
    }
    e.utility[p] = parts[0];
    e.state_info_gain[p] = parts[1];
    e.pA_info_gain[p] = parts[2];
    e.pB_info_gain[p] = parts[3];
    e.risk[p] = parts[4];
    e.ambiguity[p] = parts[5];
    // pymdp's order of accumulation: utility, state information gain, pA, pB novelty.
    double g = 0.0;
    if (settings.use_utility) g += parts[0];
    if (settings.use_states_info_gain) g += parts[1];
    if (settings.use_param_info_gain) {
      if (!model.pA.empty()) g += parts[2];
      if (!model.pB.empty()) g += parts[3];
    }
    e.neg_efe[p] = g;
    e.q_pi[p] = g * settings.gamma + LogStable(model.E[p]);
  }
  SoftmaxInPlace(e.q_pi.data(), static_cast<int>(count));
}

}  // namespace agents
}  // namespace vfe
