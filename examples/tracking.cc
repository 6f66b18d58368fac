// 2-D tracking with a linear Gaussian state-space model and an unknown observation noise:
//   x_0 ~ N(0, I),  x_t = A x_{t−1} + N(0, Q),  y_t = C x_t + N(0, R⁻¹),  R ~ Wishart(4, I/4),
// with state (position, velocity) per axis and positions observed. The states share one joint
// posterior (a cluster: the Kalman filter and RTS smoother run inside every sweep); the noise
// precision R is learned by VMP from the pairs' posteriors outside the chain.
#include <cmath>
#include <cstdio>
#include <random>

#include <Eigen/LU>

#include "vfe/model.h"

int main() {
  const size_t steps = 2000;
  const double dt = 0.1;
  vfe::Matrix a = vfe::Matrix::Identity(4, 4);
  a(0, 0) = a(1, 1) = 0.99;  // positions drawn back towards the origin
  a(2, 2) = a(3, 3) = 0.95;  // velocities damped
  a(0, 2) = a(1, 3) = dt;
  vfe::Matrix q = vfe::Matrix::Identity(4, 4) * 0.01;
  q(0, 0) = q(1, 1) = 0.001;
  vfe::Matrix c = vfe::Matrix::Zero(2, 4);
  c(0, 0) = c(1, 1) = 1.0;
  vfe::Matrix true_noise(2, 2);  // the covariance R⁻¹ the data are drawn with
  true_noise << 0.09, 0.03, 0.03, 0.04;

  // Simulated target and measurements.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  auto draw = [&](const vfe::Matrix& cov) {
    vfe::Vector z(cov.rows());
    for (auto& v : z) v = normal(rng);
    return vfe::Vector(cov.llt().matrixL() * z);
  };
  vfe::Matrix truth(steps, 4), measured(steps, 2);
  vfe::Vector x = draw(vfe::Matrix::Identity(4, 4));
  for (size_t t = 0; t < steps; ++t) {
    if (t > 0) x = a * x + draw(q);
    truth.row(t) = x.transpose();
    measured.row(t) = (c * x + draw(true_noise)).transpose();
  }

  vfe::FactorGraph graph;
  const vfe::Variable states = graph.AddVariableArray("x", vfe::Family::kMvGaussian, {steps}, 4);
  const vfe::Variable noise = graph.AddVariable("R", vfe::Family::kWishart, 2);
  graph.AddWishart(noise, 4.0, vfe::Matrix::Identity(2, 2) / 4.0, "noise prior");
  graph.AddMvGaussian(states[0], vfe::Vector(vfe::Vector::Zero(4)),
                      vfe::Matrix(vfe::Matrix::Identity(4, 4)), "initial");
  graph.AddLinearGaussian(states.Slice(1, steps), states.Slice(0, steps - 1), a,
                          vfe::Matrix(q.inverse()), "dynamics");
  graph.AddLinearGaussian(graph.AddObservedRows("y", measured), states, c, noise, "sensor");
  graph.AddCluster(states);
  graph.Finalize();

  vfe::SchedulerOptions options;
  options.max_iterations = 200;
  options.tolerance = 1e-10;
  const vfe::Result result = vfe::SequentialScheduler(options).Run(graph);
  std::printf("%s; F %.9f after the first sweep, %.9f at the end\n", result.message.c_str(),
              result.free_energy.front(), result.free_energy.back());

  const vfe::Wishart q_noise = graph.Posterior<vfe::Wishart>(noise);
  const vfe::Matrix learned = q_noise.mean().inverse();
  std::printf("noise covariance: learned E[R]⁻¹ = [%.4f %.4f; %.4f %.4f], true [%.4f %.4f; %.4f %.4f]\n",
              learned(0, 0), learned(0, 1), learned(1, 0), learned(1, 1), true_noise(0, 0),
              true_noise(0, 1), true_noise(1, 0), true_noise(1, 1));
  double measured_error = 0, smoothed_error = 0;
  for (size_t t = 0; t < steps; ++t) {
    const vfe::Vector m = graph.Posterior<vfe::MvGaussian>(states[t]).mean();
    measured_error += (measured.row(t) - truth.row(t).head(2)).squaredNorm();
    smoothed_error += (m.head(2).transpose() - truth.row(t).head(2)).squaredNorm();
  }
  std::printf("position RMS error: measurements %.4f, smoothed posterior means %.4f\n",
              std::sqrt(measured_error / steps), std::sqrt(smoothed_error / steps));
  return result.termination == vfe::Termination::kNumericalFailure ? 3 : 0;
}
