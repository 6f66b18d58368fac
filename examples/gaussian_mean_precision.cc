// Gaussian with unknown mean and precision, by variational message passing:
//   μ ~ N(0, precision 0.01),  τ ~ Gamma(shape 1e-3, rate 1e-3),  y_n ~ N(μ, 1/τ), n < 1000,
// with q(μ)q(τ) mean-field. The data are 1,000 draws of N(3, 2²) (SplitMix64 seed 1), the
// same as BayesPy's reference case, which converges to F = 2125.409364208.

#include <cstdio>

#include "vfe/core/splitmix.h"
#include "vfe/model.h"

int main() {
  const std::vector<double> data = vfe::SplitMixNormals(/*seed=*/1, 1000, /*mean=*/3.0, /*sd=*/2.0);

  vfe::FactorGraph graph;
  const vfe::Variable mu = graph.AddVariable("mu", vfe::Family::kGaussian);
  const vfe::Variable tau = graph.AddVariable("tau", vfe::Family::kGamma);
  const vfe::Variable y = graph.AddObserved("y", data);
  graph.AddGaussian(mu, 0.0, 0.01, "mu_prior");
  graph.AddGamma(tau, 1e-3, 1e-3, "tau_prior");
  graph.AddGaussian(y, mu, tau, "likelihood");  // one factor per observation
  graph.Finalize();

  vfe::SchedulerOptions options;
  options.order = {mu, tau};
  options.callback = [](const vfe::IterationInfo& info) {
    std::printf("sweep %2d  F = %.9f\n", info.iteration, info.free_energy);
    return true;
  };
  const vfe::Result result = vfe::SequentialScheduler(options).Run(graph);

  std::printf("%s\n", result.message.c_str());
  const vfe::Gaussian q_mu = graph.Posterior<vfe::Gaussian>(mu);
  const vfe::Gamma q_tau = graph.Posterior<vfe::Gamma>(tau);
  std::printf("q(mu)  = %s\n", q_mu.ToString().c_str());
  std::printf("q(tau) = %s  (E[tau] = %.6f, so sd ~ %.4f)\n", q_tau.ToString().c_str(),
              q_tau.mean(), 1.0 / std::sqrt(q_tau.mean()));
  std::printf("log p(y) >= -F = %.9f\n", result.evidence_lower_bound());
  return result.termination == vfe::Termination::kNumericalFailure ? 3 : 0;
}
