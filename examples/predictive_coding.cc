// A two-level predictive coding network learned from synthetic data.
//
// Data: 2,000 observations y (4-D) drawn, with a fixed seed, from a known network
//   x_2 ~ N(0, I₂),  x_1 = tanh(W_2 x_2) + noise (sd 0.2),  y = tanh(W_1 x_1 + b_1) + noise (sd 0.1).
// A network of the same shape starts from small random weights and unit precisions and learns
// W, b and Π by variational EM: Laplace inference for every observation (Gauss–Newton), the
// Hebbian-like weight rule ΔW ∝ Π ε f'(a) xᵀ, and the closed-form precisions. It prints F per
// epoch and per level, then compares the learned generative model with the true one on 1,000
// held-out observations.

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "vfe/predictive/predictive_coding.h"

using vfe::Matrix;
using vfe::Vector;
using namespace vfe::predictive;

namespace {

NetworkSpec TrueNetwork() {
  NetworkSpec spec;
  LevelSpec bottom;  // y (4) from x_1 (3)
  bottom.weights = (Matrix(4, 3) << 1.0, -0.5, 0.2,  //
                    0.3, 1.1, -0.4,                    //
                    -0.7, 0.2, 0.9,                    //
                    0.5, 0.6, 0.6)
                       .finished();
  bottom.bias = (Vector(4) << 0.1, -0.1, 0.2, 0.0).finished();
  bottom.function = "tanh";
  bottom.precision = 100.0 * Matrix::Identity(4, 4);
  bottom.precision_form = PrecisionForm::kDiagonal;
  LevelSpec top;  // x_1 (3) from x_2 (2)
  top.weights = (Matrix(3, 2) << 1.2, 0.0, -0.6, 0.9, 0.4, -1.0).finished();
  top.function = "tanh";
  top.precision = 25.0 * Matrix::Identity(3, 3);
  top.precision_form = PrecisionForm::kIsotropic;
  spec.levels = {bottom, top};
  spec.prior_mean = Vector::Zero(2);
  spec.prior_precision = Matrix::Identity(2, 2);
  return spec;
}

/// Σ F over the columns of `data` (an upper bound on −log p(data)).
double HeldOutFreeEnergy(const PredictiveCodingNetwork& network, const Matrix& data) {
  double total = 0;
  for (const Inference& q : network.InferBatch(data, InferenceOptions(), 0)) total += q.free_energy;
  return total;
}

}  // namespace

int main() {
  const PredictiveCodingNetwork truth(TrueNetwork());
  const Matrix train = truth.Sample(2000, 2026)[0];
  const Matrix test = truth.Sample(1000, 7)[0];

  NetworkSpec start = TrueNetwork();
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal(0.0, 0.3);
  for (LevelSpec& level : start.levels) {
    level.weights = level.weights.unaryExpr([&](double) { return normal(rng); });
    if (level.bias.size()) level.bias.setZero();
    level.precision.setIdentity();
  }
  PredictiveCodingNetwork network(start);
  const double initial_test = HeldOutFreeEnergy(network, test);

  LearningOptions options;
  options.epochs = 200;
  options.learning_rate = 0.05;
  options.num_threads = 0;
  const LearningResult result = network.Learn(train, options);

  std::printf("epoch   F/obs      U_1(y|x1)  U_2(x1|x2) U_3(x2)    H[q]\n");
  const double n = static_cast<double>(train.cols());
  for (size_t e = 0; e < result.epochs.size(); ++e) {
    if (e % 20 != 0 && e + 1 != result.epochs.size()) continue;
    const Epoch& epoch = result.epochs[e];
    std::printf("%5zu %10.4f %10.4f %10.4f %10.4f %10.4f\n", e, epoch.free_energy / n,
                epoch.level_energies[0] / n, epoch.level_energies[1] / n,
                epoch.level_energies[2] / n, epoch.entropy / n);
  }
  std::printf("learning: %s\n\n", result.message.c_str());

  const double m = static_cast<double>(test.cols());
  std::printf("held-out F per observation (1000 observations):\n");
  std::printf("  true network     %10.4f\n", HeldOutFreeEnergy(truth, test) / m);
  std::printf("  initial network  %10.4f\n", initial_test / m);
  std::printf("  learned network  %10.4f\n\n", HeldOutFreeEnergy(network, test) / m);

  // The learned model's prediction of fresh data: mean and covariance of y, by sampling both.
  const Matrix y_true = truth.Sample(20000, 99)[0];
  const Matrix y_learned = network.Sample(20000, 99)[0];
  const Vector mean_true = y_true.rowwise().mean(), mean_learned = y_learned.rowwise().mean();
  const Matrix c_true = (y_true.colwise() - mean_true) * (y_true.colwise() - mean_true).transpose() /
                        (y_true.cols() - 1.0);
  const Matrix c_learned = (y_learned.colwise() - mean_learned) *
                           (y_learned.colwise() - mean_learned).transpose() /
                           (y_learned.cols() - 1.0);
  std::printf("error of the learned generative model (20000 draws of y from each):\n");
  std::printf("  max |mean difference|        %.4f\n",
              (mean_true - mean_learned).cwiseAbs().maxCoeff());
  std::printf("  max |covariance difference|  %.4f  (largest true entry %.4f)\n",
              (c_true - c_learned).cwiseAbs().maxCoeff(), c_true.cwiseAbs().maxCoeff());
  std::printf("  noise sd of y: true 0.1, learned");
  for (int i = 0; i < 4; ++i)
    std::printf(" %.3f", 1.0 / std::sqrt(network.spec().levels[0].precision(i, i)));
  std::printf("\n  noise sd of x_1: true 0.2, learned %.3f (identifiable only up to the scale "
              "of x_1)\n",
              1.0 / std::sqrt(network.spec().levels[1].precision(0, 0)));
  return 0;
}
