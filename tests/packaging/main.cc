// Fits the mean of four points with known precision through the installed vfe and checks the
// closed-form posterior: precision 1 + 4·2 = 9, mean (2·(1 + 2 + 3 + 6)) / 9.
#include <cmath>
#include <cstdio>

#include "vfe/model.h"

int main() {
  vfe::FactorGraph graph;
  const vfe::Variable mu = graph.AddVariable("mu", vfe::Family::kGaussian);
  graph.AddGaussian(mu, 0.0, 1.0);
  graph.AddGaussian(graph.AddObserved("y", std::vector<double>{1, 2, 3, 6}), mu, 2.0);
  graph.Finalize();
  vfe::SchedulerOptions options;
  options.max_iterations = 1;
  vfe::SequentialScheduler(options).Run(graph);
  const vfe::Gaussian q = graph.Posterior<vfe::Gaussian>(mu);
  const bool ok = std::abs(q.precision() - 9.0) < 1e-12 && std::abs(q.mean() - 24.0 / 9.0) < 1e-12;
  std::printf("%s: q(mu) = %s\n", ok ? "ok" : "wrong", q.ToString().c_str());
  return ok ? 0 : 1;
}
