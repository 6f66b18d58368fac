// Bayesian linear regression by variational message passing:
//   w ~ N(0, (0.01·I)⁻¹) over D = 5 weights (full covariance),  τ ~ Gamma(1e-3, 1e-3),
//   y_n ~ N(x_nᵀ w, 1/τ),  n < 2,000,
// on synthetic data with known weights and noise sd 0.5; q(w)q(τ) mean-field.

#include <cmath>
#include <cstdio>

#include "vfe/core/splitmix.h"
#include "vfe/model.h"

int main() {
  const int num_points = 2000, dim = 5;
  const std::vector<double> true_weights = {1.5, -2.0, 0.5, 0.0, 3.0};
  const std::vector<double> x = vfe::SplitMixNormals(/*seed=*/7, num_points * dim, 0.0, 1.0);
  const std::vector<double> noise = vfe::SplitMixNormals(/*seed=*/8, num_points, 0.0, 0.5);
  vfe::Matrix design(num_points, dim);
  std::vector<double> targets(num_points);
  for (int n = 0; n < num_points; ++n) {
    targets[n] = noise[n];
    for (int d = 0; d < dim; ++d) {
      design(n, d) = x[n * dim + d];
      targets[n] += design(n, d) * true_weights[d];
    }
  }

  vfe::FactorGraph graph;
  const vfe::Variable w = graph.AddVariable("w", vfe::Family::kMvGaussian, dim);
  const vfe::Variable tau = graph.AddVariable("tau", vfe::Family::kGamma);
  const vfe::Variable y = graph.AddObserved("y", targets);
  graph.AddMvGaussian(w, vfe::Vector(vfe::Vector::Zero(dim)),
                      vfe::Matrix(0.01 * vfe::Matrix::Identity(dim, dim)), "w_prior");
  graph.AddGamma(tau, 1e-3, 1e-3, "tau_prior");
  graph.AddLinearRegression(y, w, design, tau, "likelihood");
  graph.Finalize();

  vfe::SchedulerOptions options;
  options.callback = [](const vfe::IterationInfo& info) {
    std::printf("sweep %2d  F = %.6f\n", info.iteration, info.free_energy);
    return true;
  };
  const vfe::Result result = vfe::SequentialScheduler(options).Run(graph);

  std::printf("%s\n", result.message.c_str());
  const vfe::MvGaussian q_w = graph.Posterior<vfe::MvGaussian>(w);
  const vfe::Vector mean = q_w.mean();
  const vfe::Matrix covariance = q_w.covariance();
  std::printf("weight   true    posterior mean ± sd\n");
  for (int d = 0; d < dim; ++d)
    std::printf("w[%d]  %6.3f    %8.4f ± %.4f\n", d, true_weights[d], mean[d],
                std::sqrt(covariance(d, d)));
  const vfe::Gamma q_tau = graph.Posterior<vfe::Gamma>(tau);
  std::printf("noise sd: true 0.5, posterior E[tau]^-1/2 = %.4f\n", 1.0 / std::sqrt(q_tau.mean()));
  std::printf("log p(y) >= -F = %.6f\n", result.evidence_lower_bound());
  return result.termination == vfe::Termination::kNumericalFailure ? 3 : 0;
}
