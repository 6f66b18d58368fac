// A hidden Markov model with learned transition and emission matrices:
//   x_0 ~ Categorical(π),  x_t ~ A[:, x_{t−1}],  y_t ~ B[:, x_t],
//   A ~ MatrixDirichlet(1),  B ~ MatrixDirichlet(prior counts favouring symbol k in state k),
// with K = 3 states and 4 symbols. The states share one joint posterior (a cluster: the
// forward–backward algorithm runs inside every sweep); A and B are learned by VMP from the
// pairs' and the states' posteriors.
#include <cmath>
#include <cstdio>
#include <random>

#include "vfe/model.h"

int main() {
  const size_t steps = 5000;
  const int states = 3, symbols = 4;
  vfe::Matrix true_a(states, states), true_b(symbols, states);
  true_a << 0.90, 0.05, 0.10,
            0.05, 0.85, 0.10,
            0.05, 0.10, 0.80;
  true_b << 0.70, 0.10, 0.05,
            0.20, 0.70, 0.05,
            0.05, 0.15, 0.30,
            0.05, 0.05, 0.60;
  const vfe::Vector pi = vfe::Vector::Constant(states, 1.0 / states);

  // Simulated path and symbols.
  std::mt19937_64 rng(5);
  auto pick = [&](const vfe::Vector& p) {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    int k = 0;
    while (k + 1 < p.size() && u >= p[k]) u -= p[k++];
    return k;
  };
  std::vector<int> path(steps), observed(steps);
  for (size_t t = 0; t < steps; ++t) {
    path[t] = pick(t == 0 ? pi : vfe::Vector(true_a.col(path[t - 1])));
    observed[t] = pick(true_b.col(path[t]));
  }

  vfe::FactorGraph graph;
  const vfe::Variable x = graph.AddVariableArray("x", vfe::Family::kCategorical, {steps}, states);
  const vfe::Variable a = graph.AddVariableArray("A", vfe::Family::kDirichlet, {size_t{states}},
                                                 states);
  const vfe::Variable b = graph.AddVariableArray("B", vfe::Family::kDirichlet, {size_t{states}},
                                                 symbols);
  graph.AddMatrixDirichlet(a, vfe::Matrix::Ones(states, states), "A prior");
  // Unequal prior counts tell the states apart (a symmetric prior leaves them exchangeable).
  vfe::Matrix b_prior = vfe::Matrix::Ones(symbols, states);
  for (int k = 0; k < states; ++k) b_prior(k, k) += 2.0;
  graph.AddMatrixDirichlet(b, b_prior, "B prior");
  graph.AddCategorical(x[0], pi, "initial");
  graph.AddTransition(x.Slice(1, steps), x.Slice(0, steps - 1), a, "dynamics");
  graph.AddTransition(graph.AddObservedCategorical("y", observed, symbols), x, b, "emissions");
  graph.AddCluster(x);
  graph.Finalize();

  vfe::SchedulerOptions options;
  options.max_iterations = 500;
  options.tolerance = 1e-10;
  options.order = {a, b, x};
  const vfe::Result result = vfe::SequentialScheduler(options).Run(graph);
  std::printf("%s; F %.9f after the first sweep, %.9f at the end (%.3f ms per sweep)\n",
              result.message.c_str(), result.free_energy.front(), result.free_energy.back(),
              result.inference_ms / result.iterations);

  auto print = [&](const char* name, const vfe::Variable& matrix, const vfe::Matrix& truth) {
    std::printf("%s: learned E[%s] (true)\n", name, name);
    for (int j = 0; j < truth.rows(); ++j) {
      for (int k = 0; k < truth.cols(); ++k)
        std::printf("  %.3f (%.2f)", graph.Posterior<vfe::Dirichlet>(matrix[k]).mean()[j],
                    truth(j, k));
      std::printf("\n");
    }
  };
  print("A", a, true_a);
  print("B", b, true_b);
  size_t correct = 0;
  for (size_t t = 0; t < steps; ++t) {
    const vfe::Vector p = graph.Posterior<vfe::Categorical>(x[t]).p();
    int best = 0;
    for (int k = 1; k < states; ++k)
      if (p[k] > p[best]) best = k;
    correct += best == path[t];
  }
  std::printf("most probable state right at %.1f%% of the steps\n", 100.0 * correct / steps);
  return result.termination == vfe::Termination::kNumericalFailure ? 3 : 0;
}
