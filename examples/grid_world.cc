// A 3 x 3 grid world: the agent starts in a corner, sees its cell through a noisy sensor
// (right 85% of the time), prefers to see the opposite corner, and plans 4 moves ahead
// (5^4 = 625 policies, evaluated on every core with the same result as on one).
//
// Cells are numbered row by row (0 top left, 8 bottom right); actions 0 stay, 1 up, 2 down,
// 3 left, 4 right (a move into a wall stays). The same model is examples/grid_world.json.

#include <cstdio>
#include <vector>

#include "vfe/model.h"

namespace {

constexpr int kSide = 3, kCells = kSide * kSide, kActions = 5;

vfe::agents::GenerativeModel GridWorld(double sensor_accuracy, int goal) {
  using vfe::agents::Tensor;
  vfe::agents::GenerativeModel model;
  // A[o, s]: the right cell with sensor_accuracy, any other one uniformly otherwise.
  Tensor sensor = Tensor::Filled({kCells, kCells}, (1.0 - sensor_accuracy) / (kCells - 1));
  for (int s = 0; s < kCells; ++s) sensor.data[s * kCells + s] = sensor_accuracy;
  model.A = {sensor};
  // B[s', s, u]: deterministic moves.
  Tensor moves = Tensor::Filled({kCells, kCells, kActions}, 0.0);
  const int dr[] = {0, -1, 1, 0, 0}, dc[] = {0, 0, 0, -1, 1};
  for (int s = 0; s < kCells; ++s)
    for (int u = 0; u < kActions; ++u) {
      const int r = s / kSide + dr[u], c = s % kSide + dc[u];
      const bool inside = r >= 0 && r < kSide && c >= 0 && c < kSide;
      const int next = inside ? r * kSide + c : s;
      moves.data[(next * kCells + s) * kActions + u] = 1.0;
    }
  model.B = {moves};
  vfe::Vector preference = vfe::Vector::Zero(kCells);
  preference[goal] = 4.0;
  model.C = {preference};
  vfe::Vector start = vfe::Vector::Zero(kCells);
  start[0] = 1.0;
  model.D = {start};
  return model;
}

}  // namespace

int main() {
  const char* moves[] = {"stay", "up", "down", "left", "right"};
  const vfe::agents::GenerativeModel model = GridWorld(0.85, /*goal=*/8);
  vfe::agents::AgentSettings settings;
  settings.policy_len = 4;
  settings.num_threads = 0;  // every core
  vfe::agents::Agent agent(model, settings);
  std::printf("%zu policies of %d steps\n", agent.policies().size(), settings.policy_len);
  vfe::agents::Environment world(model.A, model.A_factor_list, model.B, model.B_factor_list,
                                 {0}, /*seed=*/11);
  for (int t = 0; t < 7; ++t) {
    const int cell = world.state()[0];
    const std::vector<int> o = world.Observe();
    const vfe::agents::StepResult& r = agent.Step(o);
    int best = 0;
    r.policies.q_pi.maxCoeff(&best);
    std::printf("t=%d in cell %d, sees %d, q(cell %d)=%.3f | best policy %d (q=%.3f, G=%.3f) -> %s\n",
                t, cell, o[0], cell, r.qs[0][cell], best, r.policies.q_pi[best],
                r.policies.neg_efe[best], moves[r.action[0]]);
    world.Act(r.action);
  }
  return 0;
}
