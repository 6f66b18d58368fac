// Every family against oracles that share no code with it: numerical integration of the
// density (normalisation, moments, entropy, log-partition), Monte Carlo with std::
// distributions or textbook samplers, textbook closed forms, finite differences of the
// log-partition, and pointwise products of densities.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "tests/testing/expect.h"
#include "tests/testing/textbook.h"
#include "vfe/distributions/dispatch.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;

using testing::ErrorMessage;
using testing::Integrate;

/// Mean and standard error of f over `samples` draws of `draw`.
template <class Draw, class F>
std::pair<double, double> MonteCarlo(int samples, Draw draw, F f) {
  testing::RunningMean estimate;
  for (int s = 0; s < samples; ++s) estimate.Add(f(draw()));
  return {estimate.mean(), estimate.standard_error()};
}

// ---- Gaussian ---------------------------------------------------------------------------------

TEST(Gaussian, DensityIntegratesToOneWithTheStatedMomentsAndEntropy) {
  const Gaussian q(1.3, 0.7);  // mean, precision
  const double sd = 1 / std::sqrt(0.7), a = 1.3 - 12 * sd, b = 1.3 + 12 * sd;
  auto p = [&](double x) { return std::exp(q.LogDensity(x)); };
  EXPECT_NEAR(Integrate(p, a, b), 1.0, 1e-10);
  EXPECT_NEAR(Integrate([&](double x) { return x * p(x); }, a, b), q.mean(), 1e-9);
  EXPECT_NEAR(Integrate([&](double x) { return x * x * p(x); }, a, b), q.second_moment(), 1e-9);
  EXPECT_NEAR(Integrate([&](double x) { return -q.LogDensity(x) * p(x); }, a, b), q.Entropy(),
              1e-9);
  // A(η) = log ∫ exp(η₁x + η₂x²) dx (base measure 1).
  EXPECT_NEAR(std::log(Integrate(
                  [&](double x) { return std::exp(q.eta1() * x + q.eta2() * x * x); }, a, b)),
              q.LogPartition(), 1e-9);
  EXPECT_DOUBLE_EQ(q.variance(), 1 / 0.7);
  // Textbook: log N(x | m, 1/w) = ½ log w − ½ log 2π − ½ w (x − m)².
  EXPECT_NEAR(q.LogDensity(0.2), 0.5 * std::log(0.7) - 0.5 * std::log(2 * M_PI) -
                                     0.5 * 0.7 * 1.1 * 1.1, 1e-14);
}

TEST(Gaussian, MomentsAreTheGradientOfTheLogPartition) {
  const Gaussian q(-0.4, 2.5);
  double eta[2], moments[2];
  q.WriteNatural(eta);
  Gaussian::Moments(eta, moments);
  for (int k = 0; k < 2; ++k) {
    const double h = 1e-5;
    double up[2] = {eta[0], eta[1]}, down[2] = {eta[0], eta[1]};
    up[k] += h;
    down[k] -= h;
    EXPECT_NEAR((Gaussian::LogPartition(up) - Gaussian::LogPartition(down)) / (2 * h), moments[k],
                1e-7);
  }
}

TEST(Gaussian, SamplesHaveTheStatedMeanAndVariance) {
  const Gaussian q(2.0, 4.0);
  std::mt19937_64 rng(1);
  const int n = 100000;
  auto [mean, se] = MonteCarlo(n, [&] { return q.Sample(rng); }, [](double x) { return x; });
  EXPECT_NEAR(mean, 2.0, 5 * se);
  auto [var, se2] = MonteCarlo(n, [&] { return q.Sample(rng); },
                               [](double x) { return (x - 2.0) * (x - 2.0); });
  EXPECT_NEAR(var, 0.25, 5 * se2);
}

TEST(Gaussian, ProductIsThePointwiseProductOfDensities) {
  const Gaussian p1(1.0, 2.0), p2(-3.0, 0.5);
  const Gaussian product = p1.Product(p2);
  // log p1 + log p2 − log p12 is the same at every x, and equals log ∫ p1 p2.
  const double log_normaliser = std::log(Integrate(
      [&](double x) { return std::exp(p1.LogDensity(x) + p2.LogDensity(x)); }, -30, 30));
  for (double x : {-5.0, -1.0, 0.0, 0.3, 4.0})
    EXPECT_NEAR(p1.LogDensity(x) + p2.LogDensity(x) - product.LogDensity(x), log_normaliser, 1e-9);
}

TEST(Gaussian, NaturalParametersRoundTrip) {
  const Gaussian q(0.25, 3.0);
  const Gaussian r = Gaussian::FromNatural(q.eta1(), q.eta2());
  EXPECT_DOUBLE_EQ(r.mean(), 0.25);
  EXPECT_DOUBLE_EQ(r.precision(), 3.0);
  EXPECT_THAT(q.ToString(), HasSubstr("Gaussian"));
}

// ---- Gamma ------------------------------------------------------------------------------------

TEST(Gamma, DensityIntegratesToOneWithTheStatedMomentsAndEntropy) {
  const Gamma q(3.5, 2.0);  // shape, rate
  // Integrate over u = log x, so that the mass near 0 and the tail are both resolved.
  auto over_log = [&](const std::function<double(double)>& f) {
    return Integrate([&](double u) { return f(std::exp(u)) * std::exp(u); }, -30, 6);
  };
  auto p = [&](double x) { return std::exp(q.LogDensity(x)); };
  EXPECT_NEAR(over_log(p), 1.0, 1e-10);
  EXPECT_NEAR(over_log([&](double x) { return x * p(x); }), q.mean(), 1e-9);
  EXPECT_NEAR(over_log([&](double x) { return std::log(x) * p(x); }), q.mean_log(), 1e-9);
  EXPECT_NEAR(over_log([&](double x) { return -q.LogDensity(x) * p(x); }), q.Entropy(), 1e-9);
  // A(η) = log ∫ exp(−b x + (a − 1) log x) dx = log Γ(a) − a log b.
  EXPECT_NEAR(q.LogPartition(), std::lgamma(3.5) - 3.5 * std::log(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(q.variance(), 3.5 / 4.0);
}

TEST(Gamma, MomentsAreTheGradientOfTheLogPartition) {
  const Gamma q(0.8, 1.7);
  double eta[2], moments[2];
  q.WriteNatural(eta);
  Gamma::Moments(eta, moments);
  for (int k = 0; k < 2; ++k) {
    const double h = 1e-5;
    double up[2] = {eta[0], eta[1]}, down[2] = {eta[0], eta[1]};
    up[k] += h;
    down[k] -= h;
    EXPECT_NEAR((Gamma::LogPartition(up) - Gamma::LogPartition(down)) / (2 * h), moments[k], 1e-7);
  }
}

TEST(Gamma, SamplesMatchTheStandardLibrarysGamma) {
  const Gamma q(2.5, 4.0);
  std::mt19937_64 rng(2);
  std::gamma_distribution<double> reference(2.5, 1 / 4.0);
  std::mt19937_64 reference_rng(3);
  const int n = 100000;
  auto [mean, se] = MonteCarlo(n, [&] { return q.Sample(rng); }, [](double x) { return x; });
  auto [ref_mean, ref_se] =
      MonteCarlo(n, [&] { return reference(reference_rng); }, [](double x) { return x; });
  EXPECT_NEAR(mean, 2.5 / 4.0, 5 * se);
  EXPECT_NEAR(ref_mean, mean, 5 * std::hypot(se, ref_se));
  auto [log_mean, log_se] =
      MonteCarlo(n, [&] { return q.Sample(rng); }, [](double x) { return std::log(x); });
  EXPECT_NEAR(log_mean, q.mean_log(), 5 * log_se);
}

TEST(Gamma, ProductIsThePointwiseProductOfDensities) {
  const Gamma p1(2.0, 1.0), p2(1.5, 3.0);
  const Gamma product = p1.Product(p2);
  const double log_normaliser = std::log(Integrate(
      [&](double u) {
        const double x = std::exp(u);
        return std::exp(p1.LogDensity(x) + p2.LogDensity(x)) * x;
      },
      -30, 6));
  for (double x : {0.01, 0.5, 1.0, 2.0, 7.0})
    EXPECT_NEAR(p1.LogDensity(x) + p2.LogDensity(x) - product.LogDensity(x), log_normaliser, 1e-9);
}

// ---- MvGaussian ---------------------------------------------------------------------------

Matrix Spd(int d, double diagonal, double off) {
  Matrix m = Matrix::Constant(d, d, off);
  m.diagonal().setConstant(diagonal);
  return m;
}

TEST(MvGaussian, DensityIntegratesToOneOnAGrid) {
  const Vector mean = (Vector(2) << 0.5, -1.0).finished();
  const MvGaussian q(mean, Spd(2, 2.0, 0.6));
  const int n = 400;
  const double lo = -8, hi = 8, h = (hi - lo) / n;
  double mass = 0, first = 0;
  for (int i = 0; i <= n; ++i)
    for (int j = 0; j <= n; ++j) {
      const Vector x = (Vector(2) << lo + i * h, lo + j * h).finished();
      const double p = std::exp(q.LogDensity(x));
      mass += p * h * h;
      first += x[0] * p * h * h;
    }
  EXPECT_NEAR(mass, 1.0, 1e-6);
  EXPECT_NEAR(first, 0.5, 1e-6);
}

TEST(MvGaussian, MomentsAndEntropyMatchMonteCarloAndClosedForm) {
  for (int d : {2, 3}) {
    SCOPED_TRACE("D = " + std::to_string(d));
    Vector mean = Vector::LinSpaced(d, -1.0, 2.0);
    const Matrix precision = Spd(d, 3.0, 0.8);
    const MvGaussian q(mean, precision);
    const Matrix covariance = precision.inverse();
    EXPECT_LT((q.mean() - mean).norm(), 1e-12);
    EXPECT_LT((q.second_moment() - (covariance + mean * mean.transpose())).norm(), 1e-12);
    // Entropy: ½ log |2πe Σ|.
    EXPECT_NEAR(q.Entropy(), 0.5 * std::log((2 * M_PI * M_E * covariance).determinant()), 1e-12);
    // Samples by an independent Cholesky of Σ: E[−log p] is the entropy, E[x] the mean.
    const Matrix chol = covariance.llt().matrixL();
    std::mt19937_64 rng(4);
    std::normal_distribution<double> normal;
    auto draw = [&] {
      Vector z(d);
      for (int j = 0; j < d; ++j) z[j] = normal(rng);
      return Vector(mean + chol * z);
    };
    auto [h, se] = MonteCarlo(50000, draw, [&](const Vector& x) { return -q.LogDensity(x); });
    EXPECT_NEAR(h, q.Entropy(), 5 * se);
    // The class's own sampler has the same first two moments.
    auto [m0, se0] = MonteCarlo(50000, [&] { return q.Sample(rng); },
                                [](const Vector& x) { return x[0]; });
    EXPECT_NEAR(m0, mean[0], 5 * se0);
    auto [v0, sev] = MonteCarlo(50000, [&] { return q.Sample(rng); },
                                [&](const Vector& x) { return (x[0] - mean[0]) * (x[0] - mean[0]); });
    EXPECT_NEAR(v0, covariance(0, 0), 5 * sev);
  }
}

/// Checks ∂A/∂η = E[T] by central differences on the flat natural parameters, where the
/// first `offset` entries are a vector and the next d·d a symmetric matrix (column-major):
/// matrix entries move in symmetric pairs, whose derivative is the sum of the pair's moments.
template <class D>
void ExpectMomentsAreGradient(Family family, int d, const D& q, int offset, double h) {
  std::vector<double> eta(StatSize(family, d)), moments(eta.size());
  q.WriteNatural(eta.data());
  Workspace ws(d);
  ASSERT_TRUE(MomentsFromNatural(family, d, eta.data(), moments.data(), ws));
  for (size_t k = 0; k < eta.size(); ++k) {
    std::vector<double> up = eta, down = eta;
    double expected = moments[k];
    up[k] += h;
    down[k] -= h;
    const int in_matrix = static_cast<int>(k) - offset;
    if (in_matrix >= 0 && in_matrix < d * d) {
      const int row = in_matrix % d, col = in_matrix / d;
      if (row != col) {
        const size_t mirror = offset + row * d + col;
        up[mirror] += h;
        down[mirror] -= h;
        expected += moments[mirror];
      }
    }
    const double derivative =
        (D::FromFlat(d, up.data()).LogPartition() - D::FromFlat(d, down.data()).LogPartition()) /
        (2 * h);
    EXPECT_NEAR(derivative, expected, 1e-6) << "k = " << k;
  }
}

TEST(MvGaussian, FlatMomentsAreTheGradientOfTheLogPartition) {
  const MvGaussian q((Vector(2) << 0.3, -0.2).finished(), Spd(2, 1.5, 0.4));
  ExpectMomentsAreGradient(Family::kMvGaussian, 2, q, /*offset=*/2, 1e-5);
  const MvGaussian r(Vector::LinSpaced(3, -1, 1), Spd(3, 2.0, 0.5));
  ExpectMomentsAreGradient(Family::kMvGaussian, 3, r, /*offset=*/3, 1e-5);
}

TEST(MvGaussian, ProductIsThePointwiseProductOfDensities) {
  const MvGaussian p1((Vector(2) << 1, 0).finished(), Spd(2, 1.0, 0.2));
  const MvGaussian p2((Vector(2) << -1, 2).finished(), Spd(2, 2.0, -0.5));
  const MvGaussian product = p1.Product(p2);
  std::vector<Vector> points = {(Vector(2) << 0, 0).finished(), (Vector(2) << 1, -3).finished(),
                                (Vector(2) << -2, 5).finished()};
  const double offset = p1.LogDensity(points[0]) + p2.LogDensity(points[0]) -
                        product.LogDensity(points[0]);
  for (const Vector& x : points)
    EXPECT_NEAR(p1.LogDensity(x) + p2.LogDensity(x) - product.LogDensity(x), offset, 1e-10);
  // The product's precision is the sum of precisions.
  EXPECT_LT((product.precision() - Spd(2, 3.0, -0.3)).norm(), 1e-12);
}

// ---- Wishart ------------------------------------------------------------------------------

using testing::LogWishart;

/// Λ = Σ_{k<ν} z_k z_kᵀ with z_k ~ N(0, V): the definition of the Wishart for integer ν.
Matrix SumOfOuterProducts(int dof, const Matrix& scale, std::mt19937_64& rng) {
  const Matrix chol = scale.llt().matrixL();
  std::normal_distribution<double> normal;
  const int d = static_cast<int>(scale.rows());
  Matrix sum = Matrix::Zero(d, d);
  for (int k = 0; k < dof; ++k) {
    Vector z(d);
    for (int j = 0; j < d; ++j) z[j] = normal(rng);
    const Vector x = chol * z;
    sum += x * x.transpose();
  }
  return sum;
}

TEST(Wishart, MomentsAndEntropyMatchMonteCarloOfTheDefinition) {
  for (int d : {2, 3}) {
    SCOPED_TRACE("D = " + std::to_string(d));
    const int dof = d + 3;
    const Matrix scale = Spd(d, 0.5, 0.1);
    const Wishart q(dof, scale);
    EXPECT_LT((q.mean() - dof * scale).norm(), 1e-12);
    std::mt19937_64 rng(5);
    const int n = 40000;
    auto draw = [&] { return SumOfOuterProducts(dof, scale, rng); };
    auto [log_det, se] = MonteCarlo(n, draw, [](const Matrix& x) { return std::log(x.determinant()); });
    EXPECT_NEAR(q.mean_log_det(), log_det, 5 * se);
    auto [entry, se_entry] = MonteCarlo(n, draw, [](const Matrix& x) { return x(0, 1); });
    EXPECT_NEAR(q.mean()(0, 1), entry, 5 * se_entry);
    auto [entropy, se_h] = MonteCarlo(n, draw, [&](const Matrix& x) { return -q.LogDensity(x); });
    EXPECT_NEAR(q.Entropy(), entropy, 5 * se_h);
    // The log density is the textbook one.
    const Matrix x = draw();
    EXPECT_NEAR(q.LogDensity(x), LogWishart(x, dof, scale), 1e-10);
    // The class's Bartlett sampler has the same mean.
    auto [bartlett, se_b] = MonteCarlo(n, [&] { return q.Sample(rng); },
                                       [](const Matrix& x) { return x(0, 0); });
    EXPECT_NEAR(bartlett, q.mean()(0, 0), 5 * se_b);
  }
}

TEST(Wishart, FlatMomentsAreTheGradientOfTheLogPartition) {
  ExpectMomentsAreGradient(Family::kWishart, 2, Wishart(4.5, Spd(2, 0.7, 0.2)), /*offset=*/0,
                           1e-6);
  ExpectMomentsAreGradient(Family::kWishart, 3, Wishart(6.0, Spd(3, 0.4, 0.1)), /*offset=*/0,
                           1e-6);
}

TEST(Wishart, ProductIsThePointwiseProductOfDensities) {
  const Wishart p1(4.0, Spd(2, 1.0, 0.3)), p2(3.5, Spd(2, 0.5, -0.1));
  const Wishart product = p1.Product(p2);
  std::mt19937_64 rng(6);
  const Matrix first = p1.Sample(rng);
  const double offset = p1.LogDensity(first) + p2.LogDensity(first) - product.LogDensity(first);
  for (int i = 0; i < 5; ++i) {
    const Matrix x = p2.Sample(rng);
    EXPECT_NEAR(p1.LogDensity(x) + p2.LogDensity(x) - product.LogDensity(x), offset, 1e-9);
  }
}

// ---- PointMass and validation ---------------------------------------------------------------

TEST(PointMass, MomentsAreTheStatisticsOfItsValue) {
  double moments[6];
  PointMass(2.0).Moments(Family::kGaussian, moments);
  EXPECT_EQ(moments[0], 2.0);
  EXPECT_EQ(moments[1], 4.0);
  PointMass(2.0).Moments(Family::kGamma, moments);
  EXPECT_DOUBLE_EQ(moments[1], std::log(2.0));
  PointMass((Vector(2) << 1, 3).finished()).Moments(Family::kMvGaussian, moments);
  EXPECT_EQ(moments[1], 3.0);
  EXPECT_EQ(moments[2 + 3], 9.0);  // x xᵀ, column-major: (1,1)
  EXPECT_EQ(PointMass(1.0).Entropy(), 0.0);
}

TEST(PointMass, SampleIsTheWholeValue) {
  std::mt19937_64 rng(1);
  const Vector vector = (Vector(3) << 1.5, -2.0, 4.0).finished();
  const Matrix drawn_vector = PointMass(vector).Sample(rng);
  ASSERT_EQ(drawn_vector.rows(), 3);
  ASSERT_EQ(drawn_vector.cols(), 1);
  EXPECT_EQ(drawn_vector(0, 0), 1.5);
  EXPECT_EQ(drawn_vector(1, 0), -2.0);
  EXPECT_EQ(drawn_vector(2, 0), 4.0);
  Matrix matrix(2, 2);
  matrix << 2.0, 0.5, 0.5, 3.0;
  const Matrix drawn_matrix = PointMass(matrix).Sample(rng);
  ASSERT_EQ(drawn_matrix.rows(), 2);
  ASSERT_EQ(drawn_matrix.cols(), 2);
  EXPECT_EQ(drawn_matrix(1, 0), 0.5);
  EXPECT_EQ(drawn_matrix(1, 1), 3.0);
  const Matrix drawn_scalar = PointMass(-0.25).Sample(rng);
  ASSERT_EQ(drawn_scalar.size(), 1);
  EXPECT_EQ(drawn_scalar(0, 0), -0.25);
}

TEST(Validation, InvalidParametersAreRefusedWithWhatWasWrong) {
  EXPECT_THAT(ErrorMessage<ModelError>([] { Gaussian(0.0, -1.0); }), HasSubstr("precision"));
  EXPECT_THAT(ErrorMessage<ModelError>([] { Gaussian(0.0, 0.0); }), HasSubstr("precision"));
  EXPECT_THAT(ErrorMessage<ModelError>([] { Gaussian(NAN, 1.0); }), HasSubstr("mean"));
  EXPECT_THAT(ErrorMessage<ModelError>([] { Gamma(0.0, 1.0); }), HasSubstr("shape"));
  EXPECT_THAT(ErrorMessage<ModelError>([] { Gamma(1.0, -2.0); }), HasSubstr("rate"));
  Matrix asymmetric(2, 2);
  asymmetric << 1, 0.5, 0, 1;
  EXPECT_THAT(ErrorMessage<ModelError>([&] { MvGaussian(Vector::Zero(2), asymmetric); }),
              HasSubstr("symmetric"));
  Matrix indefinite(2, 2);
  indefinite << 1, 2, 2, 1;
  EXPECT_THAT(ErrorMessage<ModelError>([&] { MvGaussian(Vector::Zero(2), indefinite); }),
              HasSubstr("positive"));
  EXPECT_THROW(MvGaussian(Vector::Zero(3), Matrix::Identity(2, 2)), ModelError);
  EXPECT_THAT(ErrorMessage<ModelError>([] { Wishart(1.0, Matrix::Identity(2, 2)); }),
              HasSubstr("1"));
  EXPECT_THAT(ErrorMessage<ModelError>([&] { Wishart(5.0, indefinite); }), HasSubstr("positive"));
  EXPECT_THAT(
      ErrorMessage<ModelError>([] { PointMass(NAN).Validate(Family::kGaussian, 1, "y[2]"); }),
      HasSubstr("y[2]"));
  EXPECT_THAT(
      ErrorMessage<ModelError>([] { PointMass(-1.0).Validate(Family::kGamma, 1, "tau value"); }),
      HasSubstr("positive"));
}

// ---- Exp ----------------------------------------------------------------------------------

/// |a − b| in units in the last place of b (the spacing of doubles at b).
double UlpDistance(double a, double b) {
  return std::abs(a - b) / (std::nextafter(std::abs(b), INFINITY) - std::abs(b));
}

TEST(Exp, MatchesTheStandardLibraryWithinTwoUlpOverTheWholeRange) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> wide(-745.0, 709.7), gaps(-40.0, 0.0),
      small(-1.0, 1.0);
  std::vector<double> x;
  for (int i = 0; i < 200000; ++i) x.push_back(wide(rng));
  for (int i = 0; i < 200000; ++i) x.push_back(gaps(rng));  // softmax gaps
  for (int i = 0; i < 20000; ++i) x.push_back(small(rng));
  for (double edge : {0.0, -0.0, 1.0, -1.0, 0.5 * kLog2, -0.5 * kLog2, 1e-300, -1e-300, 709.78,
                      -708.39, -708.4})
    x.push_back(edge);
  std::vector<double> out(x.size());
  Exp(x.data(), out.data(), x.size());
  double worst = 0.0, worst_at = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(out[i], Exp(x[i])) << "the array and scalar forms differ at " << x[i];
    const double expected = std::exp(x[i]);
    if (expected < std::numeric_limits<double>::min()) {
      // Subnormal results: at most two steps of the smallest subnormal from std::exp's.
      EXPECT_LE(std::abs(out[i] - expected), 2 * std::numeric_limits<double>::denorm_min())
          << x[i];
      continue;
    }
    const double ulps = UlpDistance(out[i], expected);
    if (ulps > worst) {
      worst = ulps;
      worst_at = x[i];
    }
  }
  EXPECT_LE(worst, 2.0) << "at x = " << worst_at;
  EXPECT_EQ(Exp(0.0), 1.0);  // the largest logit of a softmax costs no rounding
}

TEST(Exp, UnderflowsToZeroOverflowsToInfinityAndKeepsNaN) {
  for (double x : {-745.2, -746.0, -1000.0, -1e300, -double(INFINITY)}) {
    EXPECT_EQ(Exp(x), 0.0) << x;
    EXPECT_FALSE(std::signbit(Exp(x))) << x;
  }
  EXPECT_GT(Exp(-745.0), 0.0);  // e^−745 rounds to the smallest subnormal, 4.9e−324
  EXPECT_EQ(Exp(-745.0), std::exp(-745.0));
  for (double x : {709.8, 710.0, 1000.0, 1e300, double(INFINITY)}) EXPECT_EQ(Exp(x), INFINITY) << x;
  EXPECT_TRUE(std::isnan(Exp(double(NAN))));
  const std::vector<double> x = {-double(INFINITY), double(NAN), 0.0, double(INFINITY), -1000.0};
  std::vector<double> out(x.size());
  Exp(x.data(), out.data(), x.size());
  EXPECT_EQ(out[0], 0.0);
  EXPECT_TRUE(std::isnan(out[1]));
  EXPECT_EQ(out[2], 1.0);
  EXPECT_EQ(out[3], INFINITY);
  EXPECT_EQ(out[4], 0.0);
}

TEST(Categorical, MomentsOfARunAreEachElementsSoftmaxAndStopAtTheFirstImproperOne) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0.0, 20.0);
  for (int dim : {1, 2, 3, 5, 8}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    const size_t count = 37;
    std::vector<double> eta(count * dim);
    for (double& e : eta) e = normal(rng);
    if (dim > 1) eta[3 * dim] = -INFINITY;  // an impossible outcome
    std::vector<double> run(count * dim, -1.0), one(dim);
    ASSERT_EQ(Categorical::MomentsOfRun(dim, count, eta.data(), run.data()), count);
    for (size_t i = 0; i < count; ++i) {
      const double* logits = eta.data() + i * dim;
      Categorical::Moments(dim, logits, one.data());
      // Textbook softmax in long double.
      long double top = -INFINITY, total = 0.0L;
      for (int k = 0; k < dim; ++k) top = std::max<long double>(top, logits[k]);
      for (int k = 0; k < dim; ++k) total += std::exp(static_cast<long double>(logits[k]) - top);
      for (int k = 0; k < dim; ++k) {
        ASSERT_EQ(run[i * dim + k], one[k]) << "element " << i << ", outcome " << k;
        if (logits[k] == -INFINITY) {
          EXPECT_EQ(run[i * dim + k], 0.0);
          continue;
        }
        const double expected =
            static_cast<double>(std::exp(static_cast<long double>(logits[k]) - top) / total);
        // The gap η_k − max η is rounded to half an ulp of its operands, which e^gap turns
        // into a relative error of |η_k| + |max η| times 2^−53; Exp and the sums add a few ulp.
        const double gap_error = 1.2e-16 * (std::abs(logits[k]) + std::abs(double(top)));
        EXPECT_NEAR(run[i * dim + k], expected, (1e-15 + gap_error) * expected);
      }
    }
    // A NaN, a +∞ and all −∞ each stop the run before the element, which stays unwritten.
    for (double bad : {double(NAN), double(INFINITY), -double(INFINITY)}) {
      std::vector<double> broken = eta;
      if (bad == -INFINITY) {
        std::fill_n(broken.begin() + 20 * dim, dim, -INFINITY);
      } else {
        broken[20 * dim + dim - 1] = bad;
      }
      std::fill(run.begin(), run.end(), -1.0);
      EXPECT_EQ(Categorical::MomentsOfRun(dim, count, broken.data(), run.data()), 20u) << bad;
      EXPECT_EQ(run[20 * dim], -1.0);
      EXPECT_EQ(run[count * dim - 1], -1.0);
    }
  }
}

}  // namespace
}  // namespace vfe
