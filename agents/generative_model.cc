// Validation of a generative model in pymdp's layout, and its defaults.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "agents/tensor_ops.h"
#include "vfe/agents/agent.h"
#include "vfe/core/format.h"

namespace vfe {
namespace agents {

Tensor Tensor::Filled(std::vector<int> shape, double value) {
  size_t size = 1;
  for (int d : shape) size *= static_cast<size_t>(std::max(d, 0));
  return Tensor(std::move(shape), std::vector<double>(size, value));
}

std::string ColumnName(const std::vector<int>& shape, size_t column) {
  std::vector<size_t> index(shape.size() > 1 ? shape.size() - 1 : 0);
  for (size_t k = index.size(); k-- > 0;) {
    const size_t d = static_cast<size_t>(shape[k + 1]);
    index[k] = column % d;
    column /= d;
  }
  std::string name = "[:";
  for (size_t i : index) name += ", " + std::to_string(i);
  return name + "]";
}

bool NormaliseColumns(const Tensor& counts, Tensor& out, size_t* bad_column) {
  out.shape = counts.shape;
  out.data.resize(counts.data.size());
  const size_t rows = static_cast<size_t>(counts.shape[0]);
  const size_t columns = counts.data.size() / rows;
  for (size_t c = 0; c < columns; ++c) {
    double total = 0.0;
    for (size_t r = 0; r < rows; ++r) total += counts.data[r * columns + c];
    if (!(total > 0)) {
      if (bad_column) *bad_column = c;
      return false;
    }
    for (size_t r = 0; r < rows; ++r) out.data[r * columns + c] = counts.data[r * columns + c] / total;
  }
  return true;
}

std::string EntryName(const std::vector<int>& shape, size_t flat) {
  std::vector<size_t> index(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    index[k] = flat % static_cast<size_t>(shape[k]);
    flat /= static_cast<size_t>(shape[k]);
  }
  std::string name = "[";
  for (size_t k = 0; k < index.size(); ++k) name += (k ? ", " : "") + std::to_string(index[k]);
  return name + "]";
}

namespace {

std::string ShapeText(const std::vector<int>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::string ListText(const std::vector<int>& list) {
  std::string s = "[";
  for (size_t i = 0; i < list.size(); ++i) s += (i ? ", " : "") + std::to_string(list[i]);
  return s + "]";
}

void CheckTensorData(const Tensor& t, const std::string& name) {
  if (t.shape.empty()) throw ModelError(name + ": expected an array, got a scalar");
  size_t size = 1;
  for (size_t k = 0; k < t.shape.size(); ++k) {
    if (t.shape[k] < 1)
      throw ModelError(name + ": every dimension must be >= 1, got shape " + ShapeText(t.shape));
    size *= static_cast<size_t>(t.shape[k]);
  }
  if (size != t.data.size())
    throw ModelError(name + ": shape " + ShapeText(t.shape) + " needs " + std::to_string(size) +
                     " entries, got " + std::to_string(t.data.size()));
}

/// Entries finite and >= 0; with `normalised`, every column (first axis) sums to one.
void CheckProbabilities(const Tensor& t, const std::string& name, bool normalised,
                        const char* meaning) {
  const size_t rows = static_cast<size_t>(t.shape[0]);
  const size_t columns = t.data.size() / rows;
  for (size_t i = 0; i < t.data.size(); ++i)
    if (!(t.data[i] >= 0) || !std::isfinite(t.data[i]))
      throw ModelError(name + EntryName(t.shape, i) + ": entries must be finite and >= 0, got " +
                       FormatNumber(t.data[i]));
  if (!normalised) return;
  for (size_t c = 0; c < columns; ++c) {
    double total = 0.0;
    for (size_t r = 0; r < rows; ++r) total += t.data[r * columns + c];
    if (std::abs(total - 1.0) > 1e-6)
      throw ModelError(name + ColumnName(t.shape, c) + ": must sum to 1 over the first axis (" +
                       meaning + "), sums to " + FormatNumber(total));
  }
}

void CheckFactorList(const std::vector<int>& list, int num_factors, const std::string& name) {
  if (list.empty()) throw ModelError(name + ": expected at least one factor, got []");
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i] < 0 || list[i] >= num_factors)
      throw ModelError(name + "[" + std::to_string(i) + "]: expected a factor in 0.." +
                       std::to_string(num_factors - 1) + ", got " + std::to_string(list[i]));
    for (size_t j = 0; j < i; ++j)
      if (list[j] == list[i])
        throw ModelError(name + ": factor " + std::to_string(list[i]) + " appears twice in " +
                         ListText(list));
  }
}

/// Fills `probabilities` from `counts` (normalised columns) or checks that both agree.
void FromCounts(std::vector<Tensor>& probabilities, const std::vector<Tensor>& counts,
                const char* p_name, const char* count_name, const char* meaning) {
  for (size_t i = 0; i < counts.size(); ++i) {
    const std::string name = std::string(count_name) + "[" + std::to_string(i) + "]";
    CheckTensorData(counts[i], name);
    CheckProbabilities(counts[i], name, false, meaning);
    Tensor normalised;
    size_t bad = 0;
    if (!NormaliseColumns(counts[i], normalised, &bad))
      throw ModelError(name + ColumnName(counts[i].shape, bad) +
                       ": Dirichlet counts must have a positive sum, sum to 0");
    if (probabilities.size() <= i) {
      probabilities.push_back(std::move(normalised));
      continue;
    }
    const std::string p = std::string(p_name) + "[" + std::to_string(i) + "]";
    if (probabilities[i].shape != counts[i].shape)
      throw ModelError(p + ": shape " + ShapeText(probabilities[i].shape) + " differs from " +
                       name + "'s " + ShapeText(counts[i].shape));
    for (size_t k = 0; k < normalised.data.size(); ++k)
      if (std::abs(normalised.data[k] - probabilities[i].data[k]) > 1e-6)
        throw ModelError(p + ": must equal " + name + " normalised over its first axis (" +
                         "expected " + FormatNumber(normalised.data[k]) + " at flat index " +
                         std::to_string(k) + ", got " + FormatNumber(probabilities[i].data[k]) +
                         "); give only " + name + " to derive it");
    // The counts define A (B): pymdp sets A = pA normalised at reset.
    probabilities[i] = std::move(normalised);
  }
}

void CheckVector(const Vector& v, int size, const std::string& name, const char* what) {
  if (v.size() != size)
    throw ModelError(name + ": expected " + std::to_string(size) + " entries (" + what +
                     "), got " + std::to_string(v.size()));
  for (Eigen::Index i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw ModelError(name + "[" + std::to_string(i) + "]: expected a finite number, got " +
                       FormatNumber(v[i]));
}

}  // namespace

void CompleteModel(GenerativeModel& model, int policy_len) {
  // Hidden factors and controls come from B (or pB), modalities from A (or pA).
  if (model.B.empty() && model.pB.empty())
    throw ModelError("B: expected one transition tensor per hidden factor, got none");
  if (model.A.empty() && model.pA.empty())
    throw ModelError("A: expected one likelihood tensor per modality, got none");
  if (!model.pB.empty() && !model.B.empty() && model.pB.size() != model.B.size())
    throw ModelError("pB: expected one tensor per hidden factor (" +
                     std::to_string(model.B.size()) + "), got " + std::to_string(model.pB.size()));
  if (!model.pA.empty() && !model.A.empty() && model.pA.size() != model.A.size())
    throw ModelError("pA: expected one tensor per modality (" + std::to_string(model.A.size()) +
                     "), got " + std::to_string(model.pA.size()));
  FromCounts(model.B, model.pB, "B", "pB", "p(s' | s, u)");
  FromCounts(model.A, model.pA, "A", "pA", "p(o | s)");
  const int num_factors = static_cast<int>(model.B.size());
  const int num_modalities = static_cast<int>(model.A.size());

  std::vector<int> num_states(num_factors), num_controls(num_factors);
  for (int f = 0; f < num_factors; ++f) {
    const std::string name = "B[" + std::to_string(f) + "]";
    CheckTensorData(model.B[f], name);
    if (model.B[f].rank() < 3)
      throw ModelError(name + ": expected shape (states, states of its factors..., controls), " +
                       "got " + ShapeText(model.B[f].shape));
    num_states[f] = model.B[f].shape[0];
    num_controls[f] = model.B[f].shape.back();
  }

  if (model.B_factor_list.empty())
    for (int f = 0; f < num_factors; ++f) model.B_factor_list.push_back({f});
  if (static_cast<int>(model.B_factor_list.size()) != num_factors)
    throw ModelError("B_factor_list: expected one list per hidden factor (" +
                     std::to_string(num_factors) + "), got " +
                     std::to_string(model.B_factor_list.size()));
  for (int f = 0; f < num_factors; ++f) {
    const std::string name = "B[" + std::to_string(f) + "]";
    CheckFactorList(model.B_factor_list[f], num_factors,
                    "B_factor_list[" + std::to_string(f) + "]");
    std::vector<int> expected = {num_states[f]};
    for (int g : model.B_factor_list[f]) expected.push_back(num_states[g]);
    expected.push_back(num_controls[f]);
    if (model.B[f].shape != expected)
      throw ModelError(name + ": expected shape " + ShapeText(expected) +
                       " (next state, states of factors " + ListText(model.B_factor_list[f]) +
                       ", controls), got " + ShapeText(model.B[f].shape));
    CheckProbabilities(model.B[f], name, true, "p(s' | s, u)");
  }

  if (model.A_factor_list.empty()) {
    std::vector<int> all(num_factors);
    for (int f = 0; f < num_factors; ++f) all[f] = f;
    model.A_factor_list.assign(num_modalities, all);
  }
  if (static_cast<int>(model.A_factor_list.size()) != num_modalities)
    throw ModelError("A_factor_list: expected one list per modality (" +
                     std::to_string(num_modalities) + "), got " +
                     std::to_string(model.A_factor_list.size()));
  std::vector<int> num_obs(num_modalities);
  for (int m = 0; m < num_modalities; ++m) {
    const std::string name = "A[" + std::to_string(m) + "]";
    CheckTensorData(model.A[m], name);
    CheckFactorList(model.A_factor_list[m], num_factors,
                    "A_factor_list[" + std::to_string(m) + "]");
    num_obs[m] = model.A[m].shape[0];
    std::vector<int> expected = {num_obs[m]};
    for (int f : model.A_factor_list[m]) expected.push_back(num_states[f]);
    if (model.A[m].shape != expected)
      throw ModelError(name + ": expected shape " + ShapeText(expected) +
                       " (outcomes, states of factors " + ListText(model.A_factor_list[m]) +
                       "), got " + ShapeText(model.A[m].shape));
    CheckProbabilities(model.A[m], name, true, "p(o | s)");
  }

  if (model.C.empty())
    for (int m = 0; m < num_modalities; ++m) model.C.push_back(Vector::Zero(num_obs[m]));
  if (static_cast<int>(model.C.size()) != num_modalities)
    throw ModelError("C: expected one vector per modality (" + std::to_string(num_modalities) +
                     "), got " + std::to_string(model.C.size()));
  for (int m = 0; m < num_modalities; ++m)
    CheckVector(model.C[m], num_obs[m], "C[" + std::to_string(m) + "]", "one per outcome");

  if (!model.pD.empty()) {
    if (static_cast<int>(model.pD.size()) != num_factors)
      throw ModelError("pD: expected one vector per hidden factor (" +
                       std::to_string(num_factors) + "), got " + std::to_string(model.pD.size()));
    for (int f = 0; f < num_factors; ++f) {
      const std::string name = "pD[" + std::to_string(f) + "]";
      CheckVector(model.pD[f], num_states[f], name, "one per state");
      if ((model.pD[f].array() < 0).any() || !(model.pD[f].sum() > 0))
        throw ModelError(name + ": Dirichlet counts must be >= 0 with a positive sum");
    }
  }
  if (model.D.empty())
    for (int f = 0; f < num_factors; ++f)
      model.D.push_back(model.pD.empty() ? Vector(Vector::Constant(num_states[f], 1.0 / num_states[f]))
                                         : Vector(model.pD[f] / model.pD[f].sum()));
  if (static_cast<int>(model.D.size()) != num_factors)
    throw ModelError("D: expected one vector per hidden factor (" + std::to_string(num_factors) +
                     "), got " + std::to_string(model.D.size()));
  for (int f = 0; f < num_factors; ++f) {
    const std::string name = "D[" + std::to_string(f) + "]";
    CheckVector(model.D[f], num_states[f], name, "one per state");
    if ((model.D[f].array() < 0).any() || std::abs(model.D[f].sum() - 1.0) > 1e-6)
      throw ModelError(name + ": expected probabilities >= 0 that sum to 1, sum to " +
                       FormatNumber(model.D[f].sum()));
  }

  // Policies: explicit ones are checked; otherwise every combination, in itertools.product
  // order over (step 0: factor 0, factor 1, …; step 1: …), the last entry fastest.
  if (model.policies.empty()) {
    if (policy_len < 1)
      throw ModelError("policy_len: expected an integer >= 1, got " + std::to_string(policy_len));
    const size_t slots = static_cast<size_t>(policy_len) * num_factors;
    double count = 1.0;
    for (size_t i = 0; i < slots; ++i) count *= num_controls[i % num_factors];
    if (count > 1e6)
      throw ModelError("policy_len: " + std::to_string(policy_len) + " steps make " +
                       FormatNumber(count) + " policies, more than 1e6; give explicit policies");
    std::vector<int> digits(slots, 0);
    while (true) {
      Policy policy(policy_len, std::vector<int>(num_factors));
      for (size_t i = 0; i < slots; ++i) policy[i / num_factors][i % num_factors] = digits[i];
      model.policies.push_back(std::move(policy));
      size_t i = slots;
      while (i-- > 0) {
        if (++digits[i] < num_controls[i % num_factors]) break;
        digits[i] = 0;
      }
      if (i == static_cast<size_t>(-1)) break;
    }
  } else {
    const size_t length = model.policies[0].size();
    for (size_t p = 0; p < model.policies.size(); ++p) {
      const std::string name = "policies[" + std::to_string(p) + "]";
      if (model.policies[p].empty() || model.policies[p].size() != length)
        throw ModelError(name + ": expected " + std::to_string(length) +
                         " steps (as policies[0]), got " +
                         std::to_string(model.policies[p].size()));
      for (size_t t = 0; t < length; ++t) {
        const std::vector<int>& step = model.policies[p][t];
        if (static_cast<int>(step.size()) != num_factors)
          throw ModelError(name + "[" + std::to_string(t) + "]: expected one action per hidden " +
                           "factor (" + std::to_string(num_factors) + "), got " +
                           std::to_string(step.size()));
        for (int f = 0; f < num_factors; ++f)
          if (step[f] < 0 || step[f] >= num_controls[f])
            throw ModelError(name + "[" + std::to_string(t) + "][" + std::to_string(f) +
                             "]: factor " + std::to_string(f) + " has " +
                             std::to_string(num_controls[f]) + " control(s) (0.." +
                             std::to_string(num_controls[f] - 1) + "), got action " +
                             std::to_string(step[f]));
      }
    }
  }
  const int num_policies = static_cast<int>(model.policies.size());
  if (model.E.size() == 0) model.E = Vector::Constant(num_policies, 1.0 / num_policies);
  CheckVector(model.E, num_policies, "E", "one per policy");
  if ((model.E.array() < 0).any() || !(model.E.sum() > 0))
    throw ModelError("E: expected a prior over policies, entries >= 0 with a positive sum");
}

}  // namespace agents
}  // namespace vfe
