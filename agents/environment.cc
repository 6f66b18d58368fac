// The generative process an agent acts in: sampled outcomes and transitions.

#include <string>
#include <vector>

#include "agents/tensor_ops.h"
#include "vfe/agents/agent.h"
#include "vfe/core/splitmix.h"

namespace vfe {
namespace agents {

Environment::Environment(std::vector<Tensor> A, std::vector<std::vector<int>> A_factor_list,
                         std::vector<Tensor> B, std::vector<std::vector<int>> B_factor_list,
                         std::vector<int> initial_state, uint64_t seed)
    : rng_(seed) {
  // The same checks as an agent's model: shapes, normalisation, factor lists.
  GenerativeModel process;
  process.A = std::move(A);
  process.A_factor_list = std::move(A_factor_list);
  process.B = std::move(B);
  process.B_factor_list = std::move(B_factor_list);
  try {
    CompleteModel(process, 1);
  } catch (const ModelError& e) {
    throw ModelError(std::string("environment: ") + e.what());
  }
  A_ = std::move(process.A);
  B_ = std::move(process.B);
  A_factor_list_ = std::move(process.A_factor_list);
  B_factor_list_ = std::move(process.B_factor_list);
  if (initial_state.size() != B_.size())
    throw ModelError("environment initial_state: expected one state per hidden factor (" +
                     std::to_string(B_.size()) + "), got " + std::to_string(initial_state.size()));
  for (size_t f = 0; f < B_.size(); ++f)
    if (initial_state[f] < 0 || initial_state[f] >= B_[f].shape[0])
      throw ModelError("environment initial_state[" + std::to_string(f) + "]: expected a state in 0.." +
                       std::to_string(B_[f].shape[0] - 1) + ", got " +
                       std::to_string(initial_state[f]));
  initial_state_ = std::move(initial_state);
  state_ = initial_state_;
}

void Environment::Reset() { state_ = initial_state_; }

int Environment::Sample(const double* p, int count, size_t stride) {
  double u = rng_.Uniform();
  for (int k = 0; k < count; ++k) {
    const double pk = p[k * stride];
    if (u < pk) return k;
    u -= pk;
  }
  // Rounding left u just above the total: the last outcome of positive probability.
  for (int k = count - 1; k > 0; --k)
    if (p[k * stride] > 0) return k;
  return 0;
}

std::vector<int> Environment::Observe() {
  std::vector<int> observation(A_.size());
  for (size_t m = 0; m < A_.size(); ++m) {
    size_t column = 0;
    for (int f : A_factor_list_[m]) column = column * B_[f].shape[0] + state_[f];
    const size_t columns = A_[m].data.size() / A_[m].shape[0];
    observation[m] = Sample(A_[m].data.data() + column, A_[m].shape[0], columns);
  }
  return observation;
}

void Environment::Act(const std::vector<int>& action) {
  if (action.size() != B_.size())
    throw ModelError("environment: expected one action per hidden factor (" +
                     std::to_string(B_.size()) + "), got " + std::to_string(action.size()));
  std::vector<int> next(state_.size());
  for (size_t f = 0; f < B_.size(); ++f) {
    const int controls = B_[f].shape.back();
    if (action[f] < 0 || action[f] >= controls)
      throw ModelError("environment: action[" + std::to_string(f) + "] must be in 0.." +
                       std::to_string(controls - 1) + ", got " + std::to_string(action[f]));
    size_t column = 0;
    for (int g : B_factor_list_[f]) column = column * B_[g].shape[0] + state_[g];
    column = column * controls + action[f];
    const size_t columns = B_[f].data.size() / B_[f].shape[0];
    next[f] = Sample(B_[f].data.data() + column, B_[f].shape[0], columns);
  }
  state_ = next;
}

}  // namespace agents
}  // namespace vfe
