// The T-maze of active inference (pymdp's classic example): the agent starts in the centre,
// does not know which arm holds the reward, and can visit a cue that tells it. It goes to the
// cue first (information gain), then to the arm the cue points at (utility).
//
// Hidden factors: location (0 centre, 1 right arm, 2 left arm, 3 cue location) and reward
// condition (0 reward right, 1 reward left). Modalities: location (4), reward (0 none,
// 1 reward, 2 loss) and cue (0 "right", 1 "left"). The same model is examples/tmaze.json.

#include <cstdio>
#include <vector>

#include "vfe/model.h"

namespace {

using vfe::agents::Tensor;

/// A[m] has shape (outcomes, 4 locations, 2 conditions); set(o, location, condition, p).
struct Likelihood {
  explicit Likelihood(int outcomes) : tensor(Tensor::Filled({outcomes, 4, 2}, 0.0)) {}
  void Set(int o, int location, int condition, double p) {
    tensor.data[(o * 4 + location) * 2 + condition] = p;
  }
  Tensor tensor;
};

vfe::agents::GenerativeModel TmazeModel(double reward_probability) {
  vfe::agents::GenerativeModel model;
  Likelihood location(4), reward(3), cue(2);
  for (int l = 0; l < 4; ++l)
    for (int c = 0; c < 2; ++c) {
      location.Set(l, l, c, 1.0);
      if (l == 0 || l == 3) reward.Set(0, l, c, 1.0);  // no reward outside the arms
      if (l == 3) {
        cue.Set(c, l, c, 1.0);  // the cue reveals the condition
      } else {
        cue.Set(0, l, c, 0.5);
        cue.Set(1, l, c, 0.5);
      }
    }
  // Right arm (1) pays in condition 0, left arm (2) in condition 1.
  for (int c = 0; c < 2; ++c) {
    const double right = c == 0 ? reward_probability : 1.0 - reward_probability;
    reward.Set(1, 1, c, right);
    reward.Set(2, 1, c, 1.0 - right);
    reward.Set(1, 2, c, 1.0 - right);
    reward.Set(2, 2, c, right);
  }
  model.A = {location.tensor, reward.tensor, cue.tensor};
  // Moves: action u takes the agent to location u from anywhere. The condition never changes.
  Tensor move = Tensor::Filled({4, 4, 4}, 0.0);
  for (int from = 0; from < 4; ++from)
    for (int u = 0; u < 4; ++u) move.data[(u * 4 + from) * 4 + u] = 1.0;
  Tensor stay = Tensor::Filled({2, 2, 1}, 0.0);
  stay.data[0] = stay.data[3] = 1.0;
  model.B = {move, stay};
  vfe::Vector no_preference = vfe::Vector::Zero(4), prefer_reward(3), indifferent_cue = vfe::Vector::Zero(2);
  prefer_reward << 0.0, 3.0, -3.0;
  model.C = {no_preference, prefer_reward, indifferent_cue};
  vfe::Vector start(4), unknown(2);
  start << 1.0, 0.0, 0.0, 0.0;
  unknown << 0.5, 0.5;
  model.D = {start, unknown};
  return model;
}

}  // namespace

int main() {
  const char* locations[] = {"centre", "right arm", "left arm", "cue"};
  const char* rewards[] = {"none", "REWARD", "loss"};
  const vfe::agents::GenerativeModel model = TmazeModel(0.98);
  for (int condition = 0; condition < 2; ++condition) {
    std::printf("reward condition: %s arm\n", condition == 0 ? "right" : "left");
    vfe::agents::Agent agent(model, vfe::agents::AgentSettings());
    vfe::agents::Environment world(model.A, model.A_factor_list, model.B, model.B_factor_list,
                                   {0, condition}, /*seed=*/3 + condition);
    for (int t = 0; t < 4; ++t) {
      const std::vector<int> o = world.Observe();
      const vfe::agents::StepResult& r = agent.Step(o);
      const int chosen = r.action[0];
      std::printf("  t=%d at %-9s reward %-6s cue %s | q(condition right)=%.3f F=%.3f | "
                  "G(to %s)=%.3f (utility %.3f, info gain %.3f) q(pi)=%.3f -> go to %s\n",
                  t, locations[world.state()[0]], rewards[o[1]], o[2] == 0 ? "right" : "left",
                  r.qs[1][0], r.free_energy, locations[chosen], r.policies.neg_efe[chosen],
                  r.policies.utility[chosen], r.policies.state_info_gain[chosen],
                  r.policies.q_pi[chosen], locations[chosen]);
      world.Act(r.action);
    }
  }
  return 0;
}
