// A pendulum observed through the sine of its angle: a nonlinear state-space model with Delta
// nodes. The state x_t = (angle θ_t, angular velocity ω_t) follows the Euler step of
// θ'' = −(g/L) sin θ with Gaussian noise, and each measurement is the sine of the angle with
// unknown noise precision τ:
//   x_0 ~ N((0.8, 0), diag(4, 1)⁻¹),
//   x_t ~ N(f(x_{t−1}), Q⁻¹),  f(θ, ω) = (θ + dt·ω, ω − dt·(g/L)·sin θ),  Q = diag(400, 400),
//   y_t ~ N(sin θ_t, 1/τ),     τ ~ Gamma(1, 0.01),
// with dt = 0.05 and g/L = 9.81, T = 100 steps. The data are simulated from θ_0 = 1, ω_0 = 0
// with SplitMix64 normals (seed 11), process noise sd 0.05 and measurement noise sd 0.1 (τ = 100).
//
// Inference is mean-field VMP over the states and τ; the transition is a C++ callable with
// its Jacobian, linearised around the current mean of q(x_{t−1}); the measurements linearise
// sin. examples/pendulum.json is the same model, its transition written as the named form
// f(x) = L·x + C·sin(A·x) and its data read from data/pendulum_T100.csv, which
// `pendulum --write-csv FILE` writes.
//
// Prints F after every sweep and the posterior of the angle against the truth. Mean field
// over a chain converges slowly (each state sees its neighbours only through their current
// means: about 2,500 sweeps here, well under a second) and its variances are too small (the
// correlations between neighbouring states are left out), so fewer than 95% of the true angles
// fall within 2 sd.

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "vfe/core/splitmix.h"
#include "vfe/model.h"

namespace {

constexpr size_t kSteps = 100;
constexpr double kDt = 0.05;
constexpr double kGravity = 9.81;  // g/L

/// The simulated angles, velocities and measurements.
struct Data {
  std::vector<double> angle, velocity, y;
};

Data Simulate() {
  // Normals in a fixed order: for each step the angle noise, the velocity noise, then the
  // measurement noise.
  const std::vector<double> z = vfe::SplitMixNormals(/*seed=*/11, 3 * kSteps, 0.0, 1.0);
  Data data;
  double angle = 1.0, velocity = 0.0;
  for (size_t t = 0; t < kSteps; ++t) {
    if (t > 0) {
      const double next_angle = angle + kDt * velocity;
      velocity = velocity - kDt * kGravity * std::sin(angle);
      angle = next_angle + 0.05 * z[3 * t];
      velocity += 0.05 * z[3 * t + 1];
    }
    data.angle.push_back(angle);
    data.velocity.push_back(velocity);
    data.y.push_back(std::sin(angle) + 0.1 * z[3 * t + 2]);
  }
  return data;
}

}  // namespace

int main(int argc, char** argv) {
  const Data data = Simulate();
  if (argc == 3 && std::strcmp(argv[1], "--write-csv") == 0) {
    std::FILE* file = std::fopen(argv[2], "w");
    if (!file) {
      std::fprintf(stderr, "cannot write '%s'\n", argv[2]);
      return 1;
    }
    std::fprintf(file, "y,angle,velocity\n");
    for (size_t t = 0; t < kSteps; ++t)
      std::fprintf(file, "%.17g,%.17g,%.17g\n", data.y[t], data.angle[t], data.velocity[t]);
    std::fclose(file);
    return 0;
  }

  // f(θ, ω) = (θ + dt·ω, ω − dt·(g/L)·sin θ) and its Jacobian [[1, dt], [−dt·(g/L)·cos θ, 1]]
  // (column-major).
  const vfe::DeltaFunction euler_step = vfe::DeltaFunction::Callable(
      2, 2,
      [](const double* x, double* fx) {
        fx[0] = x[0] + kDt * x[1];
        fx[1] = x[1] - kDt * kGravity * std::sin(x[0]);
      },
      [](const double* x, double* jacobian) {
        jacobian[0] = 1.0;
        jacobian[1] = -kDt * kGravity * std::cos(x[0]);
        jacobian[2] = kDt;
        jacobian[3] = 1.0;
      });
  // y = sin(θ): sin after the 1 x 2 matrix (1, 0).
  const vfe::DeltaFunction sensor =
      vfe::DeltaFunction::Named(*vfe::FindScalarFunction("sin"), vfe::Matrix::Identity(1, 2));

  vfe::FactorGraph graph;
  const vfe::Variable x = graph.AddVariableArray("x", vfe::Family::kMvGaussian, {kSteps}, 2);
  const vfe::Variable tau = graph.AddVariable("tau", vfe::Family::kGamma);
  const vfe::Variable y = graph.AddObserved("y", data.y);
  graph.AddGamma(tau, 1.0, 0.01, "noise prior");
  graph.AddMvGaussian(x[0], vfe::Vector((vfe::Vector(2) << 0.8, 0.0).finished()),
                      vfe::Matrix(vfe::Vector((vfe::Vector(2) << 4.0, 1.0).finished()).asDiagonal()),
                      "initial");
  graph.AddFactor(vfe::MakeDeltaNode(euler_step),
                  {x.Slice(1, kSteps), x.Slice(0, kSteps - 1),
                   vfe::Matrix(vfe::Vector((vfe::Vector(2) << 400.0, 400.0).finished()).asDiagonal())},
                  "dynamics");
  graph.AddFactor(vfe::MakeDeltaNode(sensor), {y, x, tau}, "sensor");
  graph.Finalize();

  vfe::SchedulerOptions options;
  options.max_iterations = 5000;
  options.tolerance = 1e-10;
  options.order = {x, tau};
  options.callback = [](const vfe::IterationInfo& info) {
    std::printf("sweep %3d  F = %.9f\n", info.iteration, info.free_energy);
    return true;
  };
  const vfe::Result result = vfe::SequentialScheduler(options).Run(graph);
  // The message to a state depends on its own q (the linearisation point), so F is not
  // promised to fall after every sweep; the count says whether it did.
  std::printf("%s; F rose after %d sweeps\n", result.message.c_str(),
              result.free_energy_increases);

  std::printf("\n  t   true angle   posterior mean ± sd\n");
  double squared_error = 0.0, inside = 0.0;
  for (size_t t = 0; t < kSteps; ++t) {
    const vfe::MvGaussian q = graph.Posterior<vfe::MvGaussian>(x[t]);
    const double mean = q.mean()[0], sd = std::sqrt(q.covariance()(0, 0));
    squared_error += (mean - data.angle[t]) * (mean - data.angle[t]);
    inside += std::abs(mean - data.angle[t]) <= 2.0 * sd;
    if (t % 10 == 0 || t == kSteps - 1)
      std::printf("%3zu   %+.4f      %+.4f ± %.4f\n", t, data.angle[t], mean, sd);
  }
  const vfe::Gamma q_tau = graph.Posterior<vfe::Gamma>(tau);
  std::printf("\nangle RMS error %.4f; %.0f%% of the true angles within 2 sd\n",
              std::sqrt(squared_error / kSteps), 100.0 * inside / kSteps);
  std::printf("measurement noise sd: learned 1/sqrt(E[tau]) = %.4f, true 0.1\n",
              1.0 / std::sqrt(q_tau.mean()));
  return result.termination == vfe::Termination::kNumericalFailure ? 3 : 0;
}
