// A Beta–Bernoulli coin: p ~ Beta(2, 2), flips_n ~ Bernoulli(p). Conjugate, so one sweep gives
// the exact posterior Beta(2 + heads, 2 + tails) and −F = log p(flips) exactly.
#include <cmath>
#include <cstdio>

#include "vfe/model.h"

int main() {
  const std::vector<double> flips = {1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1};
  vfe::FactorGraph graph;
  const vfe::Variable p = graph.AddVariable("p", vfe::Family::kBeta);
  graph.AddBeta(p, 2.0, 2.0, "prior");
  graph.AddBernoulli(graph.AddObserved("flips", flips), p, "flips");
  graph.Finalize();
  const vfe::Result result = vfe::SequentialScheduler(vfe::SchedulerOptions()).Run(graph);
  const vfe::Beta q = graph.Posterior<vfe::Beta>(p);
  std::printf("%s\n", result.message.c_str());
  std::printf("q(p) = %s, mean %.6f, sd %.6f\n", q.ToString().c_str(), q.mean(),
              std::sqrt(q.variance()));
  std::printf("log p(flips) = -F = %.9f\n", result.evidence_lower_bound());
  return result.termination == vfe::Termination::kNumericalFailure ? 3 : 0;
}
