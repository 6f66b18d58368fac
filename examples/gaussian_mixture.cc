// A Gaussian mixture with K = 5 components in D = 2 dimensions, by variational message
// passing: weights ~ Dirichlet(1), z_n ~ Categorical(weights), μ_k ~ N(0, 100·I),
// Λ_k ~ Wishart(3, I), y_n ~ N(μ_{z_n}, Λ_{z_n}⁻¹). The 2,000 points are drawn from five
// known clusters; q(z) starts one-hot at the nearest of K points chosen by farthest-point
// traversal (as in BayesPy's reference case), which avoids merging two clusters at the start.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "vfe/model.h"

int main() {
  const int k = 5, d = 2, n = 2000;
  const double centers[5][2] = {{-6, -4}, {-2, 5}, {3, -3}, {6, 4}, {0, 0}};
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 0.7);
  vfe::Matrix points(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) points(i, j) = centers[i % k][j] + normal(rng);

  vfe::FactorGraph graph;
  const vfe::Variable mu = graph.AddVariableArray("mu", vfe::Family::kMvGaussian, {k}, d);
  const vfe::Variable lambda = graph.AddVariableArray("Lambda", vfe::Family::kWishart, {k}, d);
  const vfe::Variable weights = graph.AddVariable("weights", vfe::Family::kDirichlet, k);
  const vfe::Variable z = graph.AddVariableArray("z", vfe::Family::kCategorical, {n}, k);
  graph.AddMvGaussian(mu, vfe::Vector(vfe::Vector::Zero(d)),
                      vfe::Matrix(0.01 * vfe::Matrix::Identity(d, d)));
  graph.AddWishart(lambda, 3.0, vfe::Matrix(vfe::Matrix::Identity(d, d)));
  graph.AddDirichlet(weights, vfe::Vector(vfe::Vector::Ones(k)));
  graph.AddCategorical(z, weights);
  graph.AddGaussianMixture(graph.AddObservedRows("y", points), z, mu, lambda);
  graph.Finalize();
  std::vector<int> seeds = {0};  // c_0 = y_0; c_j = the point farthest from c_0..c_{j-1}
  vfe::Vector nearest = (points.rowwise() - points.row(0)).rowwise().squaredNorm();
  while (static_cast<int>(seeds.size()) < k) {
    Eigen::Index far = 0;
    nearest.maxCoeff(&far);
    seeds.push_back(static_cast<int>(far));
    nearest = nearest.cwiseMin((points.rowwise() - points.row(far)).rowwise().squaredNorm());
  }
  for (int i = 0; i < n; ++i) {
    int best = 0;
    for (int c = 1; c < k; ++c)
      if ((points.row(i) - points.row(seeds[c])).squaredNorm() <
          (points.row(i) - points.row(seeds[best])).squaredNorm())
        best = c;
    vfe::Vector one_hot = vfe::Vector::Zero(k);
    one_hot[best] = 1.0;
    graph.SetPosterior(z[i], vfe::Categorical(one_hot));
  }

  vfe::SchedulerOptions options;
  options.max_iterations = 500;
  options.order = {mu, lambda, weights, z};
  const vfe::Result result = vfe::SequentialScheduler(options).Run(graph);
  std::printf("%s; F = %.9f\n", result.message.c_str(), result.free_energy.back());
  const vfe::Vector w = graph.Posterior<vfe::Dirichlet>(weights).mean();
  for (int c = 0; c < k; ++c) {
    const vfe::Vector m = graph.Posterior<vfe::MvGaussian>(mu[c]).mean();
    std::printf("component %d: weight %.3f, mean (%6.3f, %6.3f)\n", c, w[c], m[0], m[1]);
  }
  return result.termination == vfe::Termination::kNumericalFailure ? 3 : 0;
}
