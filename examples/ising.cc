// Mean field on a 50 x 50 Ising grid: spins s ∈ {−1, +1} (Categorical with 2 outcomes) with
// couplings exp(J s_i s_j) between neighbours and fields exp(h s_i), J and h random. Reports
// −F, a lower bound on log Z, and the mean magnetisation.
#include <cstdio>
#include <random>

#include "vfe/model.h"

int main() {
  const int side = 50;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> coupling(0.3, 0.2), field(0.0, 0.3);
  vfe::FactorGraph graph;
  const vfe::Variable s = graph.AddVariableArray("s", vfe::Family::kCategorical, {side, side}, 2);
  for (int i = 0; i < side * side; ++i) {
    const double h = field(rng);
    graph.AddPotential({s[i]}, {-h, h});  // log-potential of s = −1, +1
  }
  for (int r = 0; r < side; ++r)
    for (int c = 0; c < side; ++c) {
      const int i = r * side + c;
      for (int j : {c + 1 < side ? i + 1 : -1, r + 1 < side ? i + side : -1}) {
        if (j < 0) continue;
        const double J = coupling(rng);
        graph.AddPotential({s[i], s[j]}, {J, -J, -J, J});
      }
    }
  graph.Finalize();
  vfe::SchedulerOptions options;
  options.max_iterations = 1000;
  options.tolerance = 1e-10;
  const vfe::Result result = vfe::SequentialScheduler(options).Run(graph);
  double magnetisation = 0.0;
  for (int i = 0; i < side * side; ++i)
    magnetisation += 2.0 * graph.Posterior<vfe::Categorical>(s[i]).p()[1] - 1.0;
  std::printf("%s\nlog Z >= -F = %.6f\nmean magnetisation %.4f\n", result.message.c_str(),
              result.evidence_lower_bound(), magnetisation / (side * side));
  return result.termination == vfe::Termination::kNumericalFailure ? 3 : 0;
}
