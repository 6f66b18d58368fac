#ifndef VFE_TESTS_TESTING_MODELS_H_
#define VFE_TESTS_TESTING_MODELS_H_

// Models shared by several tests: random hidden Markov chains and tracking state spaces, which
// the oracles of textbook.h solve exactly. (The Gaussian mixture of
// examples/gaussian_mixture.cc is bench::MakeMixtureModel, in bench/models.h.)

#include <Eigen/Cholesky>
#include <random>
#include <vector>

#include "tests/testing/textbook.h"
#include "vfe/core/types.h"

namespace vfe::testing {

/// Replaces the observations of `hmm` by `length` draws from the model (a stream seeded
/// seed + 1000).
inline void SampleHmm(Hmm& hmm, size_t length, uint64_t seed) {
  std::mt19937_64 rng(seed + 1000);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto draw = [&](const Vector& p) {
    double u = unit(rng);
    int i = 0;
    while (i + 1 < p.size() && u >= p[i]) u -= p[i++];
    return i;
  };
  hmm.y.clear();
  int state = draw(hmm.pi);
  for (size_t t = 0; t < length; ++t) {
    if (t > 0) state = draw(hmm.a.col(state));
    hmm.y.push_back(draw(hmm.b.col(state)));
  }
}

/// A random HMM: the entries of π and of each column of A and B drawn from [floor, 1] and
/// normalised, and `length` observations drawn from it (SampleHmm with the same seed).
inline Hmm RandomHmm(int states, int symbols, size_t length, uint64_t seed, double floor = 0.05) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(floor, 1.0);
  auto stochastic = [&](int rows, int cols) {
    Matrix m(rows, cols);
    for (int k = 0; k < cols; ++k) {
      for (int j = 0; j < rows; ++j) m(j, k) = uniform(rng);
      m.col(k) /= m.col(k).sum();
    }
    return m;
  };
  Hmm hmm;
  hmm.pi = stochastic(states, 1).col(0);
  hmm.a = stochastic(states, states);
  hmm.b = stochastic(symbols, states);
  SampleHmm(hmm, length, seed);
  return hmm;
}

/// Tracking in `axes` dimensions (1: D = 2, 2: D = 4): (position, velocity) per axis,
/// positions observed with noise covariance 0.2·I (0.05 between two axes), positions drawn
/// back towards the origin and velocities damped, so that the state stays of order one (a
/// target drifting to positions of 10³ loses digits in E[x xᵀ] − A E[x x′ᵀ]…: the average
/// energies are sums of second moments that cancel). `length` steps drawn from the model.
inline StateSpace Tracking(int axes, size_t length, uint64_t seed) {
  const int d = 2 * axes;
  StateSpace s;
  s.a = Matrix::Identity(d, d);
  s.q = Matrix::Zero(d, d);
  s.c = Matrix::Zero(axes, d);
  for (int i = 0; i < axes; ++i) {
    s.a(i, i) = 0.99;
    s.a(axes + i, axes + i) = 0.95;
    s.a(i, axes + i) = 0.1;
    s.q(i, i) = 0.001;
    s.q(axes + i, axes + i) = 0.01;
    s.c(i, i) = 1.0;
  }
  s.r = Matrix::Identity(axes, axes) * 0.2;
  if (axes > 1) s.r(0, 1) = s.r(1, 0) = 0.05;
  s.m0 = Vector::Zero(d);
  s.p0 = Matrix::Identity(d, d);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  auto draw = [&](const Matrix& cov) {
    Vector z(cov.rows());
    for (Eigen::Index i = 0; i < z.size(); ++i) z[i] = normal(rng);
    return Vector(cov.llt().matrixL() * z);
  };
  Vector x = s.m0 + draw(s.p0);
  s.y.resize(static_cast<Eigen::Index>(length), axes);
  for (size_t t = 0; t < length; ++t) {
    if (t > 0) x = s.a * x + draw(s.q);
    s.y.row(static_cast<Eigen::Index>(t)) = (s.c * x + draw(s.r)).transpose();
  }
  return s;
}

}  // namespace vfe::testing

#endif  // VFE_TESTS_TESTING_MODELS_H_
