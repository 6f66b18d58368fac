// Predictive coding networks: the Laplace fixed point of linear networks against the exact
// Gaussian posterior and evidence (computed here in covariance form, by stacking the joint and
// conditioning), the gradient dynamics against the same point, a tanh network against a
// long-run importance-sampling estimate, the energy against a textbook sum of log-densities,
// learning (F never increases for linear networks, the subspace of known weights is found),
// determinism across threads, no allocation per iteration, and the errors of bad input.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tests/testing/allocation_counter.h"
#include "tests/testing/expect.h"
#include "tests/testing/textbook.h"
#include "vfe/predictive/predictive_coding.h"
#include "vfe/predictive/predictive_coding_file.h"

namespace vfe::predictive {
namespace {

using testing::ExpectErrorMentioning;
using testing::kLogTwoPi;
using testing::MatrixNear;
using testing::Norm;
using testing::Scale;

Matrix RandomMatrix(int rows, int cols, std::mt19937_64& rng, double scale = 1.0) {
  std::normal_distribution<double> normal(0.0, scale);
  Matrix m(rows, cols);
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i) m(i, j) = normal(rng);
  return m;
}

Vector RandomVector(int n, std::mt19937_64& rng, double scale = 1.0) {
  return RandomMatrix(n, 1, rng, scale).col(0);
}

/// A random symmetric positive definite matrix with eigenvalues in about [low, low + spread].
Matrix RandomPrecision(int n, std::mt19937_64& rng, double low, double spread) {
  const Matrix a = RandomMatrix(n, n, rng);
  return low * Matrix::Identity(n, n) + (spread / n) * a * a.transpose();
}

/// A linear network with dimensions dims = {n_0, n_1, …, n_L}.
NetworkSpec RandomLinearSpec(const std::vector<int>& dims, uint64_t seed) {
  std::mt19937_64 rng(seed);
  NetworkSpec spec;
  const int levels = static_cast<int>(dims.size()) - 1;
  for (int i = 0; i < levels; ++i) {
    LevelSpec level;
    level.weights = RandomMatrix(dims[i], dims[i + 1], rng);
    level.bias = RandomVector(dims[i], rng);
    level.precision = RandomPrecision(dims[i], rng, 0.5, 3.0);
    spec.levels.push_back(level);
  }
  spec.prior_mean = RandomVector(dims[levels], rng);
  spec.prior_precision = RandomPrecision(dims[levels], rng, 0.5, 2.0);
  return spec;
}

/// The exact posterior of a linear network, computed in covariance form: every level is an
/// affine function x = c + A ξ of independent standard normals ξ (top level first), so the
/// joint covariance is A Aᵀ; conditioning on y gives the posterior and N(y | m_y, C_yy) the
/// evidence.
struct ExactPosterior {
  Vector mean;        // stacked x_1 … x_L
  Matrix covariance;  // over the stacked hidden levels
  double log_evidence;
};

ExactPosterior ExactLinearPosterior(const NetworkSpec& spec, const Vector& y) {
  const int levels = static_cast<int>(spec.levels.size());
  std::vector<int> dims(levels + 1);
  dims[levels] = static_cast<int>(spec.prior_mean.size());
  for (int i = 0; i < levels; ++i) dims[i] = static_cast<int>(spec.levels[i].weights.rows());
  int noise = 0;
  for (int n : dims) noise += n;
  std::vector<Vector> c(levels + 1);
  std::vector<Matrix> a(levels + 1);
  int used = 0;
  // Π⁻¹ = S Sᵀ with S the Cholesky factor of the covariance.
  auto covariance_factor = [](const Matrix& precision) {
    const Matrix cov = precision.inverse();
    return Matrix(cov.llt().matrixL());
  };
  c[levels] = spec.prior_mean;
  a[levels] = Matrix::Zero(dims[levels], noise);
  a[levels].middleCols(used, dims[levels]) = covariance_factor(spec.prior_precision);
  used += dims[levels];
  for (int l = levels; l >= 1; --l) {
    const LevelSpec& s = spec.levels[l - 1];
    c[l - 1] = s.weights * c[l] + (s.bias.size() ? s.bias : Vector::Zero(dims[l - 1]));
    a[l - 1] = s.weights * a[l];
    a[l - 1].middleCols(used, dims[l - 1]) += covariance_factor(s.precision);
    used += dims[l - 1];
  }
  int hidden = 0;
  for (int l = 1; l <= levels; ++l) hidden += dims[l];
  Matrix ah(hidden, noise);
  Vector ch(hidden);
  for (int l = 1, offset = 0; l <= levels; offset += dims[l], ++l) {
    ah.middleRows(offset, dims[l]) = a[l];
    ch.segment(offset, dims[l]) = c[l];
  }
  const Matrix chh = ah * ah.transpose();
  const Matrix chy = ah * a[0].transpose();
  const Matrix cyy = a[0] * a[0].transpose();
  const Eigen::LDLT<Matrix> ldlt(cyy);
  const Vector r = y - c[0];
  ExactPosterior exact;
  exact.mean = ch + chy * ldlt.solve(r);
  exact.covariance = chh - chy * ldlt.solve(chy.transpose());
  const double log_det = ldlt.vectorD().array().log().sum();
  exact.log_evidence = -0.5 * r.dot(ldlt.solve(r)) - 0.5 * log_det - 0.5 * dims[0] * kLogTwoPi;
  return exact;
}

Vector Stack(const std::vector<Vector>& parts) {
  int n = 0;
  for (const Vector& p : parts) n += static_cast<int>(p.size());
  Vector out(n);
  for (int i = 0, offset = 0; i < static_cast<int>(parts.size()); offset += parts[i].size(), ++i)
    out.segment(offset, parts[i].size()) = parts[i];
  return out;
}

// ---- linear networks: exact posterior and evidence ----------------------------------------

class LinearNetwork : public ::testing::TestWithParam<std::vector<int>> {};

TEST_P(LinearNetwork, GaussNewtonReachesTheExactPosteriorAndEvidenceInOneStep) {
  const NetworkSpec spec = RandomLinearSpec(GetParam(), 11);
  const PredictiveCodingNetwork network(spec);
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 3; ++trial) {
    const Vector y = RandomVector(GetParam()[0], rng, 2.0);
    const ExactPosterior exact = ExactLinearPosterior(spec, y);
    const Inference q = network.Infer(y);
    ASSERT_TRUE(q.converged) << q.message;
    EXPECT_EQ(q.iterations, 1);
    EXPECT_TRUE(MatrixNear(Stack(q.means), exact.mean, 1e-9, Scale::kRelativeAboveOne, Norm::kMax));
    EXPECT_TRUE(MatrixNear(q.covariance, exact.covariance, 1e-9, Scale::kRelativeAboveOne,
                           Norm::kMax));
    // Laplace is exact for a linear-Gaussian network: F = −log p(y).
    EXPECT_NEAR(q.free_energy, -exact.log_evidence, 1e-9 * std::abs(exact.log_evidence));
    // The per-level parts add up to F.
    double total = -q.entropy;
    for (const LevelEnergy& u : q.levels) total += u.total();
    EXPECT_NEAR(total, q.free_energy, 1e-12 * std::abs(q.free_energy));
  }
}

TEST_P(LinearNetwork, GradientDynamicsConvergeToTheExactPosteriorMean) {
  const NetworkSpec spec = RandomLinearSpec(GetParam(), 12);
  const PredictiveCodingNetwork network(spec);
  std::mt19937_64 rng(6);
  const Vector y = RandomVector(GetParam()[0], rng, 2.0);
  const ExactPosterior exact = ExactLinearPosterior(spec, y);
  // A stable step: below 2 / λ_max(H) with H = Σ⁻¹ the exact posterior precision.
  const double lambda_max =
      1.0 / Eigen::SelfAdjointEigenSolver<Matrix>(exact.covariance).eigenvalues().minCoeff();
  InferenceOptions options;
  options.method = InferenceMethod::kGradient;
  options.step_size = 1.0 / lambda_max;
  options.max_iterations = 200000;
  options.gradient_tolerance = 1e-11;
  const Inference q = network.Infer(y, options);
  ASSERT_TRUE(q.converged) << q.message;
  EXPECT_GT(q.iterations, 1);
  EXPECT_TRUE(MatrixNear(Stack(q.means), exact.mean, 1e-8, Scale::kRelativeAboveOne, Norm::kMax));
  EXPECT_TRUE(
      MatrixNear(q.covariance, exact.covariance, 1e-9, Scale::kRelativeAboveOne, Norm::kMax));
  EXPECT_NEAR(q.free_energy, -exact.log_evidence, 1e-9 * std::abs(exact.log_evidence));
}

INSTANTIATE_TEST_SUITE_P(TwoAndThreeLevels, LinearNetwork,
                         ::testing::Values(std::vector<int>{3, 2, 1}, std::vector<int>{4, 3, 2},
                                           std::vector<int>{5, 3, 2, 2},
                                           std::vector<int>{2, 4, 3, 1}));

TEST(PredictiveCoding, GradientDynamicsWithTooLargeAStepReportDivergence) {
  const NetworkSpec spec = RandomLinearSpec({3, 2, 1}, 3);
  const PredictiveCodingNetwork network(spec);
  InferenceOptions options;
  options.method = InferenceMethod::kGradient;
  options.step_size = 50.0;
  options.max_iterations = 100000;
  const Inference q = network.Infer(Vector::Ones(3), options);
  EXPECT_FALSE(q.converged);
  EXPECT_NE(q.message.find("diverged"), std::string::npos) << q.message;
}

// ---- a tanh network ---------------------------------------------------------------------

NetworkSpec TanhSpec(double observation_precision, double hidden_precision) {
  NetworkSpec spec;
  LevelSpec bottom;  // y (2) from x_1 (2)
  bottom.weights = (Matrix(2, 2) << 1.2, -0.4, 0.3, 0.9).finished();
  bottom.bias = (Vector(2) << 0.1, -0.2).finished();
  bottom.function = "tanh";
  bottom.precision = observation_precision * Matrix::Identity(2, 2);
  LevelSpec top;  // x_1 (2) from x_2 (1)
  top.weights = (Matrix(2, 1) << 1.5, -0.8).finished();
  top.function = "tanh";
  top.precision = hidden_precision * Matrix::Identity(2, 2);
  spec.levels = {bottom, top};
  spec.prior_mean = Vector::Zero(1);
  spec.prior_precision = Matrix::Identity(1, 1);
  return spec;
}

/// −log p(y, x) of the tanh network, written out from its definition.
double TextbookEnergy(const NetworkSpec& spec, const Vector& y, const Vector& x1,
                      const Vector& x2) {
  auto neg_log_normal = [](const Vector& x, const Vector& mean, const Matrix& precision) {
    const Vector r = x - mean;
    return 0.5 * r.dot(precision * r) - 0.5 * std::log(precision.determinant()) +
           0.5 * x.size() * kLogTwoPi;
  };
  const Vector p0 =
      (spec.levels[0].weights * x1 + spec.levels[0].bias).array().tanh().matrix();
  const Vector p1 = (spec.levels[1].weights * x2).array().tanh().matrix();
  return neg_log_normal(y, p0, spec.levels[0].precision) +
         neg_log_normal(x1, p1, spec.levels[1].precision) +
         neg_log_normal(x2, spec.prior_mean, spec.prior_precision);
}

TEST(PredictiveCoding, EnergyIsMinusTheLogJointAndItsGradientMatchesFiniteDifferences) {
  const NetworkSpec spec = TanhSpec(30.0, 8.0);
  const PredictiveCodingNetwork network(spec);
  std::mt19937_64 rng(2);
  for (int trial = 0; trial < 5; ++trial) {
    const Vector y = RandomVector(2, rng, 0.5);
    const std::vector<Vector> x = {RandomVector(2, rng), RandomVector(1, rng)};
    const double e = network.Energy(y, x);
    EXPECT_NEAR(e, TextbookEnergy(spec, y, x[0], x[1]), 1e-11 * std::max(1.0, std::abs(e)));
    const Vector gradient = network.EnergyGradient(y, x);
    const double h = 1e-6;
    for (int k = 0; k < 3; ++k) {
      std::vector<Vector> plus = x, minus = x;
      (k < 2 ? plus[0][k] : plus[1][0]) += h;
      (k < 2 ? minus[0][k] : minus[1][0]) -= h;
      const double numeric =
          (TextbookEnergy(spec, y, plus[0], plus[1]) - TextbookEnergy(spec, y, minus[0], minus[1])) /
          (2 * h);
      EXPECT_NEAR(gradient[k], numeric, 1e-5 * std::max(1.0, std::abs(numeric)));
    }
  }
}

/// Self-normalised importance sampling of the posterior mean and covariance of x = (x_1, x_2)
/// given y, with proposal N(centre, cov) and the textbook joint as target.
struct ImportanceEstimate {
  Vector mean;
  Matrix covariance;
  double ess;
};

ImportanceEstimate SampleTanhPosterior(const NetworkSpec& spec, const Vector& y,
                                       const Vector& centre, const Matrix& cov, int samples,
                                       uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  const Matrix factor = cov.llt().matrixL();
  std::vector<double> log_weights(samples);
  std::vector<Vector> draws(samples);
  double max_log_weight = -INFINITY;
  Vector z(3);
  for (int s = 0; s < samples; ++s) {
    for (int k = 0; k < 3; ++k) z[k] = normal(rng);
    draws[s] = centre + factor * z;
    const double log_proposal = -0.5 * z.squaredNorm();  // up to a constant
    log_weights[s] = -TextbookEnergy(spec, y, draws[s].head(2), draws[s].tail(1)) - log_proposal;
    max_log_weight = std::max(max_log_weight, log_weights[s]);
  }
  double sum_w = 0, sum_w2 = 0;
  Vector sum_wx = Vector::Zero(3);
  Matrix sum_wxx = Matrix::Zero(3, 3);
  for (int s = 0; s < samples; ++s) {
    const double w = std::exp(log_weights[s] - max_log_weight);
    sum_w += w;
    sum_w2 += w * w;
    sum_wx += w * draws[s];
    sum_wxx += w * draws[s] * draws[s].transpose();
  }
  ImportanceEstimate estimate;
  estimate.mean = sum_wx / sum_w;
  estimate.covariance = sum_wxx / sum_w - estimate.mean * estimate.mean.transpose();
  estimate.ess = sum_w * sum_w / sum_w2;
  return estimate;
}

/// The largest gap between the Laplace mode and the importance-sampled posterior mean, in
/// posterior standard deviations, and the largest relative error of the Gauss–Newton
/// variances, for the tanh network with precisions (observation, hidden).
struct LaplaceGap {
  double mean_gap = 0;       // max_k |mode_k − mean_k| / sd_k
  double variance_error = 0;  // max_k |Σ_kk − var_k| / var_k
};

LaplaceGap TanhLaplaceGap(double observation_precision, double hidden_precision) {
  const NetworkSpec spec = TanhSpec(observation_precision, hidden_precision);
  const PredictiveCodingNetwork network(spec);
  const Vector y = (Vector(2) << 0.45, -0.3).finished();
  const Inference q = network.Infer(y);
  EXPECT_TRUE(q.converged) << q.message;
  const Vector mode = Stack(q.means);
  // The mode is a stationary point of the textbook energy.
  const double h = 1e-6;
  for (int k = 0; k < 3; ++k) {
    Vector plus = mode, minus = mode;
    plus[k] += h;
    minus[k] -= h;
    const double slope = (TextbookEnergy(spec, y, plus.head(2), plus.tail(1)) -
                          TextbookEnergy(spec, y, minus.head(2), minus.tail(1))) /
                         (2 * h);
    EXPECT_NEAR(slope, 0.0, 1e-5 * observation_precision);
  }
  // Independent of the program: a first pass with a broad proposal around the prior (x_2 ~
  // N(0, 1), x_1 ~ N(0, I)) locates the posterior, a second refines it, and a long third pass
  // with the second's covariance inflated four-fold as proposal gives the reference moments.
  const ImportanceEstimate rough =
      SampleTanhPosterior(spec, y, Vector::Zero(3), Matrix::Identity(3, 3), 400000, 1);
  EXPECT_GT(rough.ess, 10.0);
  const ImportanceEstimate middle =
      SampleTanhPosterior(spec, y, rough.mean, 4.0 * rough.covariance, 200000, 3);
  EXPECT_GT(middle.ess, 10000.0);
  const ImportanceEstimate fine =
      SampleTanhPosterior(spec, y, middle.mean, 4.0 * middle.covariance, 1000000, 2);
  EXPECT_GT(fine.ess, 100000.0);
  LaplaceGap gap;
  for (int k = 0; k < 3; ++k) {
    const double sd = std::sqrt(fine.covariance(k, k));
    // The estimate's standard error, sd / sqrt(ESS) < 0.003 sd, is negligible next to the
    // gaps measured below.
    EXPECT_LT(1.0 / std::sqrt(fine.ess), 0.003);
    gap.mean_gap = std::max(gap.mean_gap, std::abs(mode[k] - fine.mean[k]) / sd);
    gap.variance_error = std::max(
        gap.variance_error, std::abs(q.covariance(k, k) - fine.covariance(k, k)) / fine.covariance(k, k));
  }
  return gap;
}

TEST(PredictiveCoding, TanhLaplacePosteriorAgreesWithImportanceSamplingAndImprovesWithLessNoise) {
  // Small noise (sd 0.05 on y, 0.1 on x_1), then half of it. The Laplace mode differs from the
  // posterior mean by O(sd²) (the skew the tanh curvature gives the posterior), i.e. by a
  // fraction of a posterior sd that itself shrinks in proportion to the sd; the variances
  // likewise. Measured: gaps of about 0.12 sd and 7 % at the larger noise.
  const LaplaceGap noisy = TanhLaplaceGap(400.0, 100.0);
  const LaplaceGap quiet = TanhLaplaceGap(1600.0, 400.0);
  EXPECT_LT(noisy.mean_gap, 0.2);
  EXPECT_LT(noisy.variance_error, 0.12);
  EXPECT_LT(quiet.mean_gap, 0.7 * noisy.mean_gap);
  EXPECT_LT(quiet.variance_error, 0.7 * noisy.variance_error);
}

TEST(PredictiveCoding, CurvatureTermsSumToHalfTheHiddenDimension) {
  // At Σ = H⁻¹: Σ_l ½ tr(Π_l J_l Σ J_lᵀ) = ½ tr(H Σ) = N/2, for nonlinear levels too.
  const PredictiveCodingNetwork network(TanhSpec(25.0, 8.0));
  const Inference q = network.Infer((Vector(2) << 0.2, 0.7).finished());
  double curvature = 0;
  for (const LevelEnergy& u : q.levels) curvature += u.curvature;
  EXPECT_NEAR(curvature, 1.5, 1e-10);
  // F = E(μ) + ½ log|H| − (N/2) log 2π with log|H| = −log|Σ|.
  const double log_det_h = -std::log(q.covariance.determinant());
  const double energy = network.Energy((Vector(2) << 0.2, 0.7).finished(), q.means);
  EXPECT_NEAR(q.free_energy, energy + 0.5 * log_det_h - 1.5 * kLogTwoPi, 1e-9);
}

TEST(PredictiveCoding, NonlinearGaussNewtonAndGradientDynamicsFindTheSameMode) {
  const PredictiveCodingNetwork network(TanhSpec(25.0, 8.0));
  const Vector y = (Vector(2) << -0.5, 0.6).finished();
  const Inference fast = network.Infer(y);
  InferenceOptions options;
  options.method = InferenceMethod::kGradient;
  options.step_size = 0.01;
  options.max_iterations = 1000000;
  options.gradient_tolerance = 1e-10;
  const Inference slow = network.Infer(y, options);
  ASSERT_TRUE(fast.converged && slow.converged) << fast.message << " / " << slow.message;
  EXPECT_TRUE(MatrixNear(Stack(fast.means), Stack(slow.means), 1e-8, Scale::kRelativeAboveOne,
                         Norm::kMax));
  EXPECT_NEAR(fast.free_energy, slow.free_energy, 1e-9 * std::abs(fast.free_energy));
}

// ---- batches, threads, allocation -----------------------------------------------------------

TEST(PredictiveCoding, BatchInferenceEqualsSingleInferenceForAnyThreadCount) {
  const PredictiveCodingNetwork network(TanhSpec(25.0, 8.0));
  const std::vector<Matrix> data = network.Sample(64, 9);
  const std::vector<Inference> one = network.InferBatch(data[0], InferenceOptions(), 1);
  const std::vector<Inference> two = network.InferBatch(data[0], InferenceOptions(), 2);
  ASSERT_EQ(one.size(), 64u);
  for (int b = 0; b < 64; ++b) {
    EXPECT_EQ(one[b].free_energy, two[b].free_energy);
    EXPECT_EQ(Stack(one[b].means), Stack(two[b].means));
    const Inference single = network.Infer(data[0].col(b));
    EXPECT_EQ(single.free_energy, one[b].free_energy);
  }
}

TEST(PredictiveCoding, InferenceDoesNotAllocatePerIteration) {
  const PredictiveCodingNetwork network(TanhSpec(25.0, 8.0));
  const Vector y = (Vector(2) << 0.3, 0.1).finished();
  for (InferenceMethod method : {InferenceMethod::kGradient, InferenceMethod::kGaussNewton}) {
    InferenceOptions options;
    options.method = method;
    options.step_size = 1e-4;  // slow: every run uses all its iterations
    options.tolerance = 0.0;
    options.gradient_tolerance = 0.0;
    const std::vector<Vector> start = {Vector::Constant(2, 3.0), Vector::Constant(1, -2.0)};
    auto allocations = [&](int iterations) {
      options.max_iterations = iterations;
      const long before = vfe::testing::AllocationCount();
      const Inference q = network.Infer(y, options, start);
      const long after = vfe::testing::AllocationCount();
      EXPECT_EQ(q.iterations, iterations);
      return after - before;
    };
    const int few = method == InferenceMethod::kGradient ? 2 : 1;
    const int many = method == InferenceMethod::kGradient ? 200 : 3;
    EXPECT_EQ(allocations(few), allocations(many));
  }
}

// ---- sampling -------------------------------------------------------------------------------

TEST(PredictiveCoding, SamplesOfALinearNetworkHaveTheExactMarginalMoments) {
  const NetworkSpec spec = RandomLinearSpec({3, 2, 2}, 21);
  const PredictiveCodingNetwork network(spec);
  const int count = 200000;
  const std::vector<Matrix> draws = network.Sample(count, 4);
  // Exact marginal of y by propagating the moments down the levels.
  Vector mean = spec.prior_mean;
  Matrix cov = spec.prior_precision.inverse();
  for (int l = 2; l >= 1; --l) {
    const LevelSpec& s = spec.levels[l - 1];
    mean = s.weights * mean + s.bias;
    cov = s.weights * cov * s.weights.transpose() + s.precision.inverse();
  }
  const Vector sample_mean = draws[0].rowwise().mean();
  const Matrix centred = draws[0].colwise() - sample_mean;
  const Matrix sample_cov = centred * centred.transpose() / (count - 1);
  for (int k = 0; k < 3; ++k) {
    const double se = std::sqrt(cov(k, k) / count);
    EXPECT_NEAR(sample_mean[k], mean[k], 5 * se);
    // The standard error of a sample variance is about var·sqrt(2/n).
    EXPECT_NEAR(sample_cov(k, k), cov(k, k), 5 * cov(k, k) * std::sqrt(2.0 / count));
  }
}

// ---- learning -------------------------------------------------------------------------------

/// The largest principal angle between the column spaces of a and b (radians).
double SubspaceAngle(const Matrix& a, const Matrix& b) {
  const Matrix qa = Eigen::HouseholderQR<Matrix>(a).householderQ() *
                    Matrix::Identity(a.rows(), a.cols());
  const Matrix qb = Eigen::HouseholderQR<Matrix>(b).householderQ() *
                    Matrix::Identity(b.rows(), b.cols());
  const Eigen::JacobiSVD<Matrix> svd(qa.transpose() * qb);
  return std::acos(std::min(1.0, svd.singularValues().minCoeff()));
}

TEST(PredictiveCoding, LinearLearningNeverIncreasesFAndRecoversTheSubspace) {
  // Factor analysis: y (6) = W x (2) + b + noise with a diagonal noise precision.
  std::mt19937_64 rng(31);
  NetworkSpec truth;
  LevelSpec level;
  level.weights = RandomMatrix(6, 2, rng);
  level.bias = RandomVector(6, rng);
  level.precision = Matrix::Zero(6, 6);
  for (int i = 0; i < 6; ++i) level.precision(i, i) = 4.0 + 8.0 * i;
  level.precision_form = PrecisionForm::kDiagonal;
  truth.levels = {level};
  truth.prior_mean = Vector::Zero(2);
  truth.prior_precision = Matrix::Identity(2, 2);
  const std::vector<Matrix> data = PredictiveCodingNetwork(truth).Sample(1500, 8);

  NetworkSpec start = truth;
  start.levels[0].weights = RandomMatrix(6, 2, rng, 0.3);
  start.levels[0].bias = Vector::Zero(6);
  start.levels[0].precision = Matrix::Identity(6, 6);
  PredictiveCodingNetwork network(start);
  LearningOptions options;
  options.epochs = 600;
  const LearningResult result = network.Learn(data[0], options);
  ASSERT_EQ(result.epochs.size(), 600u) << result.message;
  for (size_t e = 1; e < result.epochs.size(); ++e)
    EXPECT_LE(result.epochs[e].free_energy,
              result.epochs[e - 1].free_energy + 1e-10 * std::abs(result.epochs[e - 1].free_energy))
        << "epoch " << e;
  EXPECT_LT(SubspaceAngle(network.spec().levels[0].weights, truth.levels[0].weights), 0.05);
  for (int i = 0; i < 6; ++i)
    EXPECT_NEAR(network.spec().levels[0].precision(i, i), truth.levels[0].precision(i, i),
                0.25 * truth.levels[0].precision(i, i));
  // Maximum likelihood fits the sample at least as well as the true parameters: after 600
  // epochs F (= −log p(Y) here) is below the true model's, and not far below.
  const PredictiveCodingNetwork true_network(truth);
  double true_f = 0;
  for (const Inference& q : true_network.InferBatch(data[0])) true_f += q.free_energy;
  EXPECT_LT(result.epochs.back().free_energy, true_f);
  EXPECT_GT(result.epochs.back().free_energy, true_f - 0.01 * std::abs(true_f));
}

TEST(PredictiveCoding, ThreeLevelLinearLearningWithAllClosedFormsNeverIncreasesF) {
  const NetworkSpec truth = RandomLinearSpec({4, 3, 2}, 41);
  const std::vector<Matrix> data = PredictiveCodingNetwork(truth).Sample(500, 3);
  NetworkSpec start = RandomLinearSpec({4, 3, 2}, 42);
  start.levels[1].precision_form = PrecisionForm::kFull;
  start.levels[0].precision = 2.0 * Matrix::Identity(4, 4);
  start.levels[0].precision_form = PrecisionForm::kIsotropic;
  PredictiveCodingNetwork network(start);
  LearningOptions options;
  options.epochs = 60;
  options.learn_prior = true;
  options.num_threads = 2;
  const LearningResult result = network.Learn(data[0], options);
  ASSERT_EQ(result.epochs.size(), 60u) << result.message;
  for (size_t e = 1; e < result.epochs.size(); ++e)
    EXPECT_LE(result.epochs[e].free_energy,
              result.epochs[e - 1].free_energy + 1e-10 * std::abs(result.epochs[e - 1].free_energy))
        << "epoch " << e;
  EXPECT_LT(result.epochs.back().free_energy, result.epochs.front().free_energy);
  // The isotropic form is kept.
  const Matrix& p = network.spec().levels[0].precision;
  EXPECT_EQ(p, p(0, 0) * Matrix::Identity(4, 4));
}

TEST(PredictiveCoding, HebbianRuleOnLinearLevelsMatchesTheClosedFormDirection) {
  // With the closed form switched off, a small Hebbian step lowers F (it is a descent direction
  // of the convex M-step objective), and many steps approach the closed-form weights.
  const NetworkSpec truth = RandomLinearSpec({5, 2}, 51);
  const std::vector<Matrix> data = PredictiveCodingNetwork(truth).Sample(400, 5);
  NetworkSpec start = truth;
  start.levels[0].weights *= 0.5;
  PredictiveCodingNetwork hebbian(start), closed(start);
  LearningOptions options;
  options.epochs = 400;
  options.learn_precisions = false;
  options.closed_form_linear = false;
  options.learning_rate = 0.02;
  const LearningResult h = hebbian.Learn(data[0], options);
  for (size_t e = 1; e < h.epochs.size(); ++e)
    EXPECT_LE(h.epochs[e].free_energy, h.epochs[e - 1].free_energy) << "epoch " << e;
  options.closed_form_linear = true;
  const LearningResult c = closed.Learn(data[0], options);
  EXPECT_NEAR(h.epochs.back().free_energy, c.epochs.back().free_energy,
              1e-3 * std::abs(c.epochs.back().free_energy));
}

/// W of level `level` after one learning step from `spec` (weights only, by the gradient rule).
Matrix OneGradientStep(const NetworkSpec& spec, const Matrix& data, bool correction, double rate) {
  PredictiveCodingNetwork network(spec);
  LearningOptions options;
  options.epochs = 2;  // infer, update, infer
  options.learning_rate = rate;
  options.learn_biases = false;
  options.learn_precisions = false;
  options.closed_form_linear = false;
  options.covariance_correction = correction;
  network.Learn(data, options);
  return network.spec().levels[0].weights;
}

TEST(PredictiveCoding, ClassicHebbianStepIsMinusTheGradientOfTheEnergyAtTheModes) {
  // ΔW_1 / η = −∂/∂W_1 (1/B) Σ_b E(μ_b), with the modes μ_b held fixed: finite differences of
  // the energy over W_1.
  const NetworkSpec spec = TanhSpec(25.0, 8.0);
  const PredictiveCodingNetwork network(spec);
  const Matrix data = network.Sample(20, 5)[0];
  const std::vector<Inference> modes = network.InferBatch(data);
  const double rate = 0.01;
  const Matrix step = (OneGradientStep(spec, data, false, rate) - spec.levels[0].weights) / rate;
  const double h = 1e-6;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      double slope = 0;
      for (int sign : {1, -1}) {
        NetworkSpec moved = spec;
        moved.levels[0].weights(i, j) += sign * h;
        const PredictiveCodingNetwork m(moved);
        for (int b = 0; b < 20; ++b)
          slope += sign * m.Energy(data.col(b), modes[b].means) / (2 * h * 20);
      }
      EXPECT_NEAR(step(i, j), -slope, 1e-5 * std::max(1.0, std::abs(slope)));
    }
}

TEST(PredictiveCoding, CorrectedStepIsMinusTheGradientOfFWithQHeldFixedOnLinearLevels) {
  // ΔW_1 / η = −∂/∂W_1 (1/B) Σ_b [E(μ_b) + ½ tr(Π_1 J_1 Σ_b J_1ᵀ)], J_1 = [0 (y is observed),
  // −W_1 on x_1]: the curvature term written out here as ½ tr(Π_1 W_1 Σ_11 W_1ᵀ).
  const NetworkSpec spec = RandomLinearSpec({4, 3, 2}, 61);
  const PredictiveCodingNetwork network(spec);
  const Matrix data = network.Sample(20, 6)[0];
  const std::vector<Inference> q = network.InferBatch(data);
  const double rate = 0.01;
  const Matrix step = (OneGradientStep(spec, data, true, rate) - spec.levels[0].weights) / rate;
  const double h = 1e-6;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) {
      double slope = 0;
      for (int sign : {1, -1}) {
        NetworkSpec moved = spec;
        moved.levels[0].weights(i, j) += sign * h;
        const Matrix& w = moved.levels[0].weights;
        const PredictiveCodingNetwork m(moved);
        for (int b = 0; b < 20; ++b) {
          const Matrix sigma11 = q[b].covariance.topLeftCorner(3, 3);
          const double curvature =
              0.5 * (moved.levels[0].precision * w * sigma11 * w.transpose()).trace();
          slope += sign * (m.Energy(data.col(b), q[b].means) + curvature) / (2 * h * 20);
        }
      }
      EXPECT_NEAR(step(i, j), -slope, 1e-5 * std::max(1.0, std::abs(slope)));
    }
}

TEST(PredictiveCoding, NonlinearLearningLowersTheFreeEnergy) {
  const NetworkSpec truth = TanhSpec(100.0, 25.0);
  const std::vector<Matrix> data = PredictiveCodingNetwork(truth).Sample(300, 17);
  NetworkSpec start = truth;
  start.levels[0].weights = 0.5 * Matrix::Identity(2, 2);
  start.levels[1].weights *= 0.3;
  start.levels[0].precision = 4.0 * Matrix::Identity(2, 2);
  start.levels[1].precision = 4.0 * Matrix::Identity(2, 2);
  PredictiveCodingNetwork network(start);
  LearningOptions options;
  options.epochs = 80;
  options.learning_rate = 0.05;
  const LearningResult result = network.Learn(data[0], options);
  ASSERT_EQ(result.epochs.size(), 80u) << result.message;
  EXPECT_LT(result.epochs.back().free_energy, result.epochs.front().free_energy - 100.0);
}

// ---- JSON files and the command ---------------------------------------------------------------

const char* const kLinearJson = R"({
  "format": "vfe-predictive-coding/1",
  "network": {
    "levels": [
      {"weights": [[1.0, 0.5], [-0.3, 0.8], [0.2, 0.1]], "bias": [0.1, 0, -0.2],
       "precision": [2, 3, 4]},
      {"weights": [[0.7], [-1.2]], "function": "identity", "precision": 1.5}
    ],
    "prior": {"mean": [0.3], "precision": [[2.0]]}
  },
  "observations": [[0.4, -0.1, 0.9], [1.5, 0.2, -0.3]]
})";

TEST(PredictiveCodingFile, ALinearNetworkFileGivesTheExactEvidence) {
  const PredictiveCodingFile file = ParsePredictiveCodingJson(kLinearJson, "test.json");
  EXPECT_EQ(file.network.levels[0].precision_form, PrecisionForm::kDiagonal);
  EXPECT_EQ(file.network.levels[1].precision_form, PrecisionForm::kIsotropic);
  EXPECT_EQ(file.network.prior_precision_form, PrecisionForm::kFull);
  std::ostringstream out;
  RunPredictiveCodingFile(file, out);
  const nlohmann::json result = nlohmann::json::parse(out.str());
  EXPECT_EQ(result["format"], "vfe-predictive-coding-result/1");
  ASSERT_EQ(result["posteriors"].size(), 2u);
  // The spec written out by hand, in C++.
  NetworkSpec spec;
  LevelSpec bottom, top;
  bottom.weights = (Matrix(3, 2) << 1.0, 0.5, -0.3, 0.8, 0.2, 0.1).finished();
  bottom.bias = (Vector(3) << 0.1, 0, -0.2).finished();
  bottom.precision = Vector((Vector(3) << 2, 3, 4).finished()).asDiagonal();
  top.weights = (Matrix(2, 1) << 0.7, -1.2).finished();
  top.precision = 1.5 * Matrix::Identity(2, 2);
  spec.levels = {bottom, top};
  spec.prior_mean = Vector::Constant(1, 0.3);
  spec.prior_precision = Matrix::Constant(1, 1, 2.0);
  double evidence = 0;
  for (int b = 0; b < 2; ++b) {
    const Vector y = file.observations.col(b);
    const ExactPosterior exact = ExactLinearPosterior(spec, y);
    evidence += exact.log_evidence;
    EXPECT_NEAR(result["posteriors"][b]["means"][1][0].get<double>(), exact.mean[2], 1e-9);
  }
  EXPECT_NEAR(result["free_energy"].get<double>(), -evidence, 1e-9 * std::abs(evidence));
}

TEST(PredictiveCodingFile, TheExampleFileLearnsAndReportsEveryEpoch) {
  PredictiveCodingFile file =
      LoadPredictiveCodingFile(std::string(VFE_SOURCE_DIR) + "/examples/predictive_coding.json");
  file.learning.epochs = 5;
  std::ostringstream out;
  RunPredictiveCodingFile(file, out);
  const nlohmann::json result = nlohmann::json::parse(out.str());
  ASSERT_EQ(result["learning"]["free_energy"].size(), 5u);
  const double first = result["learning"]["free_energy"][0].get<double>();
  const double last = result["learning"]["free_energy"][4].get<double>();
  EXPECT_LT(last, first);
  double total = 0;
  for (const nlohmann::json& q : result["posteriors"]) total += q["free_energy"].get<double>();
  EXPECT_NEAR(result["free_energy"].get<double>(), total, 1e-9 * std::abs(total));
  // The learned network reads back in.
  nlohmann::json again = nlohmann::json::parse(kLinearJson);
  again["network"] = result["network"];
  again["observations"] = {{0.1, 0.2, 0.3, 0.4}};
  EXPECT_NO_THROW(ParsePredictiveCodingJson(again.dump(), "again.json"));
}

/// Σ_b F_b by the network's Laplace formula, and by Monte Carlo from the log-joint alone:
/// E_q[E(x)] by `draws` draws x ~ q_b = N(μ_b, Σ_b) minus the Gaussian entropy H[q_b], with
/// the estimate's standard error.
struct LaplaceCheck {
  double laplace = 0.0, monte_carlo = 0.0, error = 0.0;
};

LaplaceCheck LaplaceAgainstMonteCarlo(const PredictiveCodingNetwork& network,
                                      const Matrix& observations, const InferenceOptions& options,
                                      int draws, uint64_t seed) {
  const int n = network.hidden_dim();
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  LaplaceCheck check;
  double variance = 0.0;
  for (Eigen::Index b = 0; b < observations.cols(); ++b) {
    const Vector y = observations.col(b);
    const Inference q = network.Infer(y, options);
    EXPECT_TRUE(q.converged) << q.message;
    const Matrix root = q.covariance.llt().matrixL();
    Vector stacked(n);
    for (int l = 1; l <= network.num_levels(); ++l)
      stacked.segment(network.offset(l), network.dim(l)) = q.means[l - 1];
    double sum = 0.0, sum_sq = 0.0;
    std::vector<Vector> x(network.num_levels());
    for (int s = 0; s < draws; ++s) {
      Vector z(n);
      for (int i = 0; i < n; ++i) z[i] = normal(rng);
      const Vector draw = stacked + root * z;
      for (int l = 1; l <= network.num_levels(); ++l)
        x[l - 1] = draw.segment(network.offset(l), network.dim(l));
      const double e = network.Energy(y, x);
      sum += e;
      sum_sq += e * e;
    }
    const double mean = sum / draws;
    check.laplace += q.free_energy;
    check.monte_carlo += mean - q.entropy;
    variance += (sum_sq / draws - mean * mean) / draws;
  }
  check.error = std::sqrt(variance);
  return check;
}

TEST(PredictiveCodingFile, LaplaceFreeEnergyAgainstMonteCarloOnLinearAndTanhNetworks) {
  // F = E(μ) + ½ Σ_l tr(Π_l J_l Σ J_lᵀ) − H[q] is the second-order (Gauss–Newton) expansion of
  // E_q[E(x)] − H[q]. For a linear network it is exact, so the Monte Carlo estimate from the
  // log-joint alone must agree within 4 standard errors.
  const PredictiveCodingFile linear = ParsePredictiveCodingJson(kLinearJson, "test.json");
  const LaplaceCheck exact = LaplaceAgainstMonteCarlo(
      PredictiveCodingNetwork(linear.network), linear.observations, linear.inference, 200000, 5);
  EXPECT_LE(std::abs(exact.laplace - exact.monte_carlo), 4.0 * exact.error)
      << exact.laplace << " vs " << exact.monte_carlo << " ± " << exact.error;
  EXPECT_GT(exact.error, 1e-4);  // draws do vary: the check is not trivially exact

  // The tanh example (after its learning) is not linear: the expansion leaves a remainder, of
  // order Σ (the posterior's spread through the curvature of tanh) times the prediction
  // errors. On its data it is about 0.07 nat per observation, many standard errors. On data
  // drawn from the learned network itself, and from the same network with every precision
  // four times larger (noise sd halved, data drawn again), the remainder shrinks with the
  // noise, as an approximation of order Σ must.
  PredictiveCodingFile file =
      LoadPredictiveCodingFile(std::string(VFE_SOURCE_DIR) + "/examples/predictive_coding.json");
  PredictiveCodingNetwork network(file.network);
  network.Learn(file.observations, file.learning);
  const LaplaceCheck example =
      LaplaceAgainstMonteCarlo(network, file.observations.leftCols(20), file.inference, 20000, 17);
  const LaplaceCheck own = LaplaceAgainstMonteCarlo(network, network.Sample(20, 3)[0],
                                                    file.inference, 20000, 17);
  NetworkSpec sharper_spec = network.spec();
  for (LevelSpec& level : sharper_spec.levels) level.precision *= 4.0;
  const PredictiveCodingNetwork sharper(sharper_spec);
  const LaplaceCheck quiet = LaplaceAgainstMonteCarlo(sharper, sharper.Sample(20, 3)[0],
                                                      file.inference, 20000, 17);
  std::printf("predictive coding, 20 observations, Laplace F against Monte Carlo: example "
              "%.6f / %.6f ± %.6f; own data %.6f / %.6f ± %.6f; precisions x4 %.6f / %.6f ± "
              "%.6f\n",
              example.laplace, example.monte_carlo, example.error, own.laplace,
              own.monte_carlo, own.error, quiet.laplace, quiet.monte_carlo, quiet.error);
  const double gap = std::abs(own.laplace - own.monte_carlo);
  const double quiet_gap = std::abs(quiet.laplace - quiet.monte_carlo);
  EXPECT_GT(std::abs(example.laplace - example.monte_carlo), 4.0 * example.error);
  EXPECT_LT(quiet_gap + 4.0 * quiet.error, gap);
}

TEST(PredictiveCodingFile, BadFilesNameThePointer) {
  auto expect = [](const std::function<void(nlohmann::json&)>& edit, const std::string& fragment) {
    nlohmann::json j = nlohmann::json::parse(kLinearJson);
    edit(j);
    ExpectErrorMentioning<ModelError>(
        [&] { ParsePredictiveCodingJson(j.dump(), "bad.json"); },
        {fragment});
  };
  expect([](nlohmann::json& j) { j["format"] = "vfe-model/1"; },
         "bad.json: /format: expected \"vfe-predictive-coding/1\", found the string "
         "\"vfe-model/1\"");
  expect([](nlohmann::json& j) { j["network"]["levels"][0]["weight"] = 1; },
         "bad.json: /network/levels/0/weight: unknown key");
  expect([](nlohmann::json& j) { j["network"]["levels"][1]["function"] = "relu"; },
         "bad.json: /network: predictive coding network: level 2 (x_1 from x_2): unknown "
         "function \"relu\"");
  expect([](nlohmann::json& j) { j["network"]["levels"][0]["precision"] = {2, -3, 4}; },
         "level 1 (x_0 from x_1): precision must be positive definite");
  expect([](nlohmann::json& j) { j["observations"][1] = {1, 2}; },
         "bad.json: /observations/1: expected a row of 3 numbers, found an array of 2");
  expect([](nlohmann::json& j) { j["observations"] = {{1, 2}}; },
         "bad.json: /observations: expected rows of 3 numbers (the dimension of y), found 2");
  expect([](nlohmann::json& j) { j["inference"] = {{"method", "newton"}}; },
         "bad.json: /inference/method: expected one of 'gauss_newton', 'gradient', found the "
         "string \"newton\"");
  expect([](nlohmann::json& j) { j["learning"] = {{"epochs", 0}}; },
         "bad.json: /learning: learning options: epochs must be >= 1, got 0");
  expect([](nlohmann::json& j) { j["network"]["prior"]["precision_form"] = "spherical"; },
         "bad.json: /network/prior/precision_form: expected one of 'full', 'diagonal', "
         "'isotropic', found the string \"spherical\"");
}

// ---- errors ---------------------------------------------------------------------------------

TEST(PredictiveCodingErrors, BadSpecsNameTheLevelAndTheProblem) {
  const NetworkSpec good = RandomLinearSpec({3, 2, 1}, 1);
  {
    NetworkSpec s = good;
    s.levels[0].weights = Matrix::Ones(3, 3);
    ExpectErrorMentioning<ModelError>(
        [&] { PredictiveCodingNetwork n(s); },
        {"level 1 (x_0 from x_1): weights must have 2 columns (the dimension of "
         "x_1), got 3x3"});
  }
  {
    NetworkSpec s = good;
    s.prior_mean = Vector::Zero(2);
    ExpectErrorMentioning<ModelError>(
        [&] { PredictiveCodingNetwork n(s); },
        {"level 2 (x_1 from x_2): weights must have 2 columns"});
  }
  {
    NetworkSpec s = good;
    s.levels[1].function = "tanhh";
    ExpectErrorMentioning<ModelError>(
        [&] { PredictiveCodingNetwork n(s); },
        {"level 2 (x_1 from x_2): unknown function \"tanhh\" (expected one of "
         "identity, tanh"});
  }
  {
    NetworkSpec s = good;
    s.levels[0].precision(0, 0) = -1.0;
    ExpectErrorMentioning<ModelError>(
        [&] { PredictiveCodingNetwork n(s); },
        {"level 1 (x_0 from x_1): precision must be positive definite"});
  }
  {
    NetworkSpec s = good;
    s.levels[0].precision(0, 1) += 0.5;
    ExpectErrorMentioning<ModelError>(
        [&] { PredictiveCodingNetwork n(s); },
        {"level 1 (x_0 from x_1): precision must be symmetric"});
  }
  {
    NetworkSpec s = good;
    s.levels[1].precision = Matrix::Identity(3, 3);
    ExpectErrorMentioning<ModelError>(
        [&] { PredictiveCodingNetwork n(s); },
        {"level 2 (x_1 from x_2): precision must be 2x2, got 3x3"});
  }
  {
    NetworkSpec s = good;
    s.levels[0].bias = Vector::Zero(2);
    ExpectErrorMentioning<ModelError>(
        [&] { PredictiveCodingNetwork n(s); },
        {"level 1 (x_0 from x_1): bias must be empty or have 3 entries, got 2"});
  }
  {
    NetworkSpec s = good;
    s.levels[0].precision_form = PrecisionForm::kIsotropic;
    ExpectErrorMentioning<ModelError>([&] { PredictiveCodingNetwork n(s); }, {"must be diagonal"});
  }
  {
    NetworkSpec s = good;
    s.prior_precision = Matrix::Zero(1, 1);
    ExpectErrorMentioning<ModelError>(
        [&] { PredictiveCodingNetwork n(s); },
        {"prior precision must be positive definite"});
  }
  {
    NetworkSpec s = good;
    s.levels.clear();
    ExpectErrorMentioning<ModelError>(
        [&] { PredictiveCodingNetwork n(s); },
        {"needs at least one level"});
  }
}

TEST(PredictiveCodingErrors, BadObservationsAndOptions) {
  const PredictiveCodingNetwork network(RandomLinearSpec({3, 2, 1}, 1));
  ExpectErrorMentioning<ModelError>(
      [&] { network.Infer(Vector::Zero(2)); },
      {"observation has dimension 2, expected 3"});
  ExpectErrorMentioning<ModelError>(
      [&] { network.Infer(Vector::Constant(3, NAN)); },
      {"observation must be finite"});
  ExpectErrorMentioning<ModelError>(
      [&] { network.InferBatch(Matrix::Zero(2, 5)); },
      {"observations must have 3 rows (one column per observation), got 2x5"});
  ExpectErrorMentioning<ModelError>(
      [&] { network.Energy(Vector::Zero(3), {Vector::Zero(2)}); },
      {"expected 2 hidden levels, got 1"});
  InferenceOptions options;
  options.step_size = 0;
  EXPECT_THROW(network.Infer(Vector::Zero(3), options), OptionsError);
  LearningOptions learning;
  learning.epochs = 0;
  PredictiveCodingNetwork copy = network;
  EXPECT_THROW(copy.Learn(Matrix::Zero(3, 4), learning), OptionsError);
}

}  // namespace
}  // namespace vfe::predictive
