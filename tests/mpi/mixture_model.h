#ifndef VFE_TESTS_MPI_MIXTURE_MODEL_H_
#define VFE_TESTS_MPI_MIXTURE_MODEL_H_

// The mixture the MPI tests and bench/mpi_mixture.cc run (built in C++, no files).

#include <cmath>
#include <random>

#include "vfe/graph/factor_graph.h"

namespace vfe {

/// A K = 5, D = 2 Gaussian mixture of n points (five clusters, seed 7), q(z) started from
/// the nearest of five points (softly), as examples/gaussian_mixture.json is.
inline void BuildMixture(FactorGraph& g, size_t n) {
  const int k = 5;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  const double centres[5][2] = {{0, 0}, {6, 0}, {0, 6}, {-6, 0}, {0, -6}};
  Matrix y(static_cast<Eigen::Index>(n), 2);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = i % k;
    y(static_cast<Eigen::Index>(i), 0) = centres[c][0] + normal(rng);
    y(static_cast<Eigen::Index>(i), 1) = centres[c][1] + normal(rng);
  }
  const Variable mu = g.AddVariableArray("mu", Family::kMvGaussian, {5}, 2);
  const Variable lambda = g.AddVariableArray("Lambda", Family::kWishart, {5}, 2);
  const Variable weights = g.AddVariable("weights", Family::kDirichlet, k);
  const Variable z = g.AddVariableArray("z", Family::kCategorical, {n}, k);
  const Variable data = g.AddObservedRows("y", y);
  g.AddFactor("MvGaussian", {{"out", mu}, {"mean", Vector(Vector::Zero(2))},
                             {"precision", Matrix(0.01 * Matrix::Identity(2, 2))}}, "mean_prior");
  g.AddFactor("Wishart", {{"out", lambda}, {"dof", 3.0}, {"scale", Matrix(Matrix::Identity(2, 2))}},
              "precision_prior");
  g.AddFactor("Dirichlet", {{"out", weights}, {"alpha", Vector(Vector::Ones(k))}}, "weight_prior");
  g.AddFactor("Categorical", {{"out", z}, {"p", weights}}, "labels");
  g.AddFactor("GaussianMixture",
              {{"out", data}, {"switch", z}, {"means", mu}, {"precisions", lambda}}, "likelihood");
  g.Finalize();
  const double starts[5][2] = {{1, 1}, {5, -1}, {-1, 5}, {-5, 1}, {1, -5}};
  for (size_t i = 0; i < n; ++i) {
    Vector p(k);
    for (int c = 0; c < k; ++c) {
      const double dx = y(static_cast<Eigen::Index>(i), 0) - starts[c][0];
      const double dy = y(static_cast<Eigen::Index>(i), 1) - starts[c][1];
      p(c) = std::exp(-0.1 * (dx * dx + dy * dy));
    }
    g.SetPosterior(z[i], Categorical(p / p.sum()));
  }
}

}  // namespace vfe

#endif  // VFE_TESTS_MPI_MIXTURE_MODEL_H_
