// Streaming inference (vfe::Stream) against closed forms: the Kalman filter and the forward
// algorithm written here from their textbook recursions, the conjugate Gamma update with its
// exact evidence, the forgetting recursion, and missing observations as predictions.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Eigen/Eigenvalues>
#include <Eigen/LU>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <random>
#include <vector>

#include "tests/testing/expect.h"
#include "vfe/core/special.h"
#include "vfe/distributions/distributions.h"
#include "vfe/io/stream_json.h"
#include "vfe/schedulers/sequential.h"
#include "vfe/schedulers/stream.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;
using testing::ErrorMessage;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kLog2Pi = 1.8378770664093454836;

// ---- A 2-D linear-Gaussian state-space model ----------------------------------------------

struct LinearGaussianModel {
  Matrix A, Q, C, R;  // x_t = A x_{t−1} + N(0, Q), y_t = C x_t + N(0, R)
  Vector m0;          // x_0 ~ N(m0, P0)
  Matrix P0;
};

LinearGaussianModel Tracker() {
  LinearGaussianModel m;
  const double dt = 0.1;
  m.A = Matrix(2, 2);
  m.A << 1, dt, 0, 1;  // position and velocity
  m.Q = Matrix(2, 2);
  m.Q << dt * dt * dt / 3, dt * dt / 2, dt * dt / 2, dt;
  m.Q *= 0.5;
  m.C = Matrix(2, 2);
  m.C << 1, 0, 0.3, 1;
  m.R = Matrix(2, 2);
  m.R << 0.4, 0.1, 0.1, 0.3;
  m.m0 = Vector(2);
  m.m0 << 1, -0.5;
  m.P0 = Matrix(2, 2);
  m.P0 << 2, 0.3, 0.3, 1;
  return m;
}

/// The slice: x = (x_{t−1}, x_t) one cluster (solved exactly), y_t observed.
SliceBuilder TrackerSlice(const LinearGaussianModel& m) {
  return [m](FactorGraph& g, const std::vector<bool>& present) {
    const Variable x = g.AddVariableArray("x", Family::kMvGaussian, {2}, 2);
    g.AddLinearGaussian(x[1], x[0], m.A, Matrix(m.Q.inverse()));
    if (present[0]) {
      const Variable y = g.AddObserved("y", Vector(Vector::Zero(2)));
      g.AddLinearGaussian(y, x[1], m.C, Matrix(m.R.inverse()));
    }
    g.AddCluster(x);
  };
}

std::vector<Vector> Simulate(const LinearGaussianModel& m, int steps, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  auto draw = [&](const Matrix& covariance) {
    const Matrix L = covariance.llt().matrixL();
    Vector z(covariance.rows());
    for (Eigen::Index k = 0; k < z.size(); ++k) z[k] = normal(rng);
    return Vector(L * z);
  };
  std::vector<Vector> ys;
  Vector x = m.m0 + draw(m.P0);
  for (int t = 0; t < steps; ++t) {
    x = m.A * x + draw(m.Q);
    ys.push_back(m.C * x + draw(m.R));
  }
  return ys;
}

/// The Kalman filter (Kalman 1960; Särkkä, "Bayesian Filtering and Smoothing", 2013, §4.3),
/// covariance form with the Joseph update; a missing y (NaN) skips the update.
struct KalmanFilter {
  const LinearGaussianModel& m;
  Vector mean;
  Matrix cov;
  double log_evidence = 0.0;
  explicit KalmanFilter(const LinearGaussianModel& model)
      : m(model), mean(model.m0), cov(model.P0) {}
  void Step(const Vector& y) {
    mean = m.A * mean;
    cov = m.A * cov * m.A.transpose() + m.Q;
    if (std::isnan(y[0])) return;
    const Matrix S = m.C * cov * m.C.transpose() + m.R;
    const Matrix K = cov * m.C.transpose() * S.inverse();
    const Vector residual = y - m.C * mean;
    log_evidence += -0.5 * (residual.dot(S.llt().solve(residual)) + std::log(S.determinant()) +
                            2 * kLog2Pi);
    mean += K * residual;
    const Matrix I_KC = Matrix::Identity(2, 2) - K * m.C;
    cov = I_KC * cov * I_KC.transpose() + K * m.R * K.transpose();
  }
};

/// The stream works in information form (η = (Λm, −Λ/2)): each step's cluster solves with the
/// pair's precision, in which the transition's Q⁻¹ enters, and reads m and Λ⁻¹ back; backward
/// stable, that is a relative error of a few κ·ε, κ the larger condition number of Q (1.2·10³
/// here) and of the filtered covariance. The filter contracts errors, so they do not add up
/// over steps. Held to 20·κ·ε relative (5e-12 at κ = 1.2·10³).
double Condition(const Matrix& symmetric) {
  const Eigen::SelfAdjointEigenSolver<Matrix> eigen(symmetric);
  return eigen.eigenvalues().maxCoeff() / eigen.eigenvalues().minCoeff();
}

void ExpectKalmanStep(const MvGaussian& q, const KalmanFilter& kf, size_t step) {
  const double kappa = std::max(Condition(kf.m.Q), Condition(kf.cov));
  const double relative = 20 * kappa * std::numeric_limits<double>::epsilon();
  const double mean_scale = 1.0 + kf.mean.cwiseAbs().maxCoeff();
  const double cov_scale = kf.cov.cwiseAbs().maxCoeff();
  EXPECT_LT((q.mean() - kf.mean).cwiseAbs().maxCoeff(), relative * mean_scale)
      << "step " << step << ", condition number " << kappa;
  EXPECT_LT((q.covariance() - kf.cov).cwiseAbs().maxCoeff(), relative * cov_scale)
      << "step " << step << ", condition number " << kappa;
}

/// F_t of the exact slice is the Bethe free energy of the pair (x_{t−1}, x_t): its transition
/// energy ½tr(Q⁻¹E[(x_t − Ax_{t−1})(x_t − Ax_{t−1})ᵀ]) comes from second moments of O(1) that
/// cancel down to O(Q), so their rounding (10⁻¹³ relative, as above) is multiplied by ‖Q⁻¹‖
/// (2.4·10⁴ here): a few 10⁻⁹ per step. The sum over steps is held to 1e-9 relative.
double FreeEnergyTolerance(const LinearGaussianModel& m) {
  return 1e-12 * m.Q.inverse().cwiseAbs().maxCoeff();
}

TEST(Stream, LinearGaussianStepsAreTheKalmanFilterAndSumToTheLogEvidence) {
  const LinearGaussianModel m = Tracker();
  const std::vector<Vector> ys = Simulate(m, 200, 7);
  Stream stream(TrackerSlice(m), {"y"},
                {StreamCarry::Of("x[1]", "x[0]", MvGaussian(m.m0, Matrix(m.P0.inverse())))});
  ASSERT_EQ(stream.num_values(), 2u);
  KalmanFilter kf(m);
  double previous_log_evidence = 0.0;
  for (size_t t = 0; t < ys.size(); ++t) {
    const StreamStep& step = stream.Push({ys[t][0], ys[t][1]});
    kf.Step(ys[t]);
    const MvGaussian q = stream.slice().Posterior<MvGaussian>(stream.Element("x[1]"));
    ExpectKalmanStep(q, kf, t + 1);
    // F_t = −log p(y_t | y_1:t−1).
    EXPECT_NEAR(step.free_energy, -(kf.log_evidence - previous_log_evidence),
                FreeEnergyTolerance(m))
        << "step " << t + 1;
    EXPECT_EQ(step.step, t + 1);
    EXPECT_EQ(step.sweeps, 1);  // one exact cluster update
    EXPECT_TRUE(step.converged);
    previous_log_evidence = kf.log_evidence;
  }
  EXPECT_NEAR(stream.total_free_energy(), -kf.log_evidence, 1e-9 * std::abs(kf.log_evidence));
}

TEST(Stream, AMissingObservationIsPredictedWithZeroFreeEnergy) {
  const LinearGaussianModel m = Tracker();
  std::vector<Vector> ys = Simulate(m, 60, 11);
  for (int t : {3, 4, 5, 20, 59}) ys[static_cast<size_t>(t)] = Vector::Constant(2, kNaN);
  ys[30][1] = kNaN;  // one NaN makes the whole input missing
  Stream stream(TrackerSlice(m), {"y"},
                {StreamCarry::Of("x[1]", "x[0]", MvGaussian(m.m0, Matrix(m.P0.inverse())))});
  KalmanFilter kf(m);
  for (size_t t = 0; t < ys.size(); ++t) {
    Vector y = ys[t];
    if (y.hasNaN()) y = Vector::Constant(2, kNaN);
    const StreamStep& step = stream.Push({ys[t][0], ys[t][1]});
    kf.Step(y);
    ExpectKalmanStep(stream.slice().Posterior<MvGaussian>(stream.Element("x[1]")), kf, t + 1);
    if (y.hasNaN()) {
      EXPECT_EQ(step.missing, 1u);
      EXPECT_NEAR(step.free_energy, 0.0, FreeEnergyTolerance(m));  // KL(q || prediction) = 0
      EXPECT_THROW(stream.Element("y"), GraphError);  // this step's slice has no y
    } else {
      EXPECT_EQ(step.missing, 0u);
    }
  }
  EXPECT_NEAR(stream.total_free_energy(), -kf.log_evidence, 1e-9 * std::abs(kf.log_evidence));
}

// ---- Fixed-lag smoothing ------------------------------------------------------------------

/// The tracker over `lag` steps: x[0 … lag] one cluster, y[k] observing x[k + 1].
SliceBuilder TrackerWindow(const LinearGaussianModel& m, size_t lag) {
  return [m, lag](FactorGraph& g, const std::vector<bool>&) {
    const Variable x = g.AddVariableArray("x", Family::kMvGaussian, {lag + 1}, 2);
    g.AddLinearGaussian(x.Slice(1, lag + 1), x.Slice(0, lag), m.A, Matrix(m.Q.inverse()));
    const Variable y = g.AddObservedRows("y", Matrix::Zero(static_cast<Eigen::Index>(lag), 2));
    g.AddLinearGaussian(y, x.Slice(1, lag + 1), m.C, Matrix(m.R.inverse()));
    g.AddCluster(x);
  };
}

/// Two Gaussian posteriors equal to 20·κ·ε relative (κ as in ExpectKalmanStep).
void ExpectSameGaussian(const MvGaussian& q, const Vector& mean, const Matrix& cov,
                        const LinearGaussianModel& m, const std::string& what) {
  const double kappa = std::max(Condition(m.Q), Condition(cov));
  const double relative = 20 * kappa * std::numeric_limits<double>::epsilon();
  EXPECT_LT((q.mean() - mean).cwiseAbs().maxCoeff(),
            relative * (1.0 + mean.cwiseAbs().maxCoeff())) << what;
  EXPECT_LT((q.covariance() - cov).cwiseAbs().maxCoeff(), relative * cov.cwiseAbs().maxCoeff())
      << what;
}

TEST(Stream, AWindowOfFiveStepsIsTheRauchTungStriebelSmootherOfTheDataSoFar) {
  // Oracle: the Kalman filter over y_1..t, then the RTS smoother (Rauch, Tung & Striebel 1965;
  // Särkkä 2013, §8.2) back to x_{t−5}: G = P_k Aᵀ (P⁻_{k+1})⁻¹, m^s_k = m_k + G(m^s_{k+1} −
  // m⁻_{k+1}), P^s_k = P_k + G(P^s_{k+1} − P⁻_{k+1})Gᵀ.
  const LinearGaussianModel m = Tracker();
  const size_t lag = 5;
  const std::vector<Vector> ys = Simulate(m, 40, 17);
  StreamOptions options;
  options.lag = lag;
  options.window = TrackerWindow(m, lag);
  Stream stream(TrackerSlice(m), {"y"},
                {StreamCarry::Of("x[1]", "x[0]", MvGaussian(m.m0, Matrix(m.P0.inverse())))},
                options);
  std::vector<Vector> filtered_mean{m.m0};
  std::vector<Matrix> filtered_cov{m.P0};
  KalmanFilter kf(m);
  for (size_t t = 1; t <= ys.size(); ++t) {
    stream.Push({ys[t - 1][0], ys[t - 1][1]});
    kf.Step(ys[t - 1]);
    filtered_mean.push_back(kf.mean);
    filtered_cov.push_back(kf.cov);
    if (t < lag) {
      EXPECT_THAT(ErrorMessage<GraphError>([&] { stream.window(); }),
                  HasSubstr("the window of 5 steps is full after step 5"));
      continue;
    }
    Vector smoothed_mean = kf.mean;
    Matrix smoothed_cov = kf.cov;
    for (size_t k = t;; --k) {
      const std::string element = "x[" + std::to_string(k - (t - lag)) + "]";
      ExpectSameGaussian(stream.window().Posterior<MvGaussian>(stream.WindowElement(element)),
                         smoothed_mean, smoothed_cov, m,
                         "step " + std::to_string(t) + ", x_" + std::to_string(k));
      if (k == t - lag) break;
      const Vector predicted_mean = m.A * filtered_mean[k - 1];
      const Matrix predicted_cov = m.A * filtered_cov[k - 1] * m.A.transpose() + m.Q;
      const Matrix G = filtered_cov[k - 1] * m.A.transpose() * predicted_cov.inverse();
      smoothed_mean = filtered_mean[k - 1] + G * (smoothed_mean - predicted_mean);
      smoothed_cov = filtered_cov[k - 1] + G * (smoothed_cov - predicted_cov) * G.transpose();
    }
  }
  // Rows with missing values are refused with a window; the stream is as it was.
  EXPECT_EQ(ErrorMessage<ModelError>([&] { stream.Push({kNaN, 1.0}); }),
            "Stream: step 41: a missing value; a stream with a smoothing window (lag 5) takes "
            "complete rows only");
  EXPECT_EQ(stream.last().step, 40u);
}

TEST(Stream, AWindowAsLongAsTheDataIsTheBatchClustersPosterior) {
  const LinearGaussianModel m = Tracker();
  const size_t steps = 30;
  const std::vector<Vector> ys = Simulate(m, static_cast<int>(steps), 19);
  StreamOptions options;
  options.lag = steps;
  options.window = TrackerWindow(m, steps);
  Stream stream(TrackerSlice(m), {"y"},
                {StreamCarry::Of("x[1]", "x[0]", MvGaussian(m.m0, Matrix(m.P0.inverse())))},
                options);
  for (const Vector& y : ys) stream.Push({y[0], y[1]});
  // The batch model: x_0 ~ N(m0, P0), the whole chain one cluster, run by the sequential
  // scheduler.
  FactorGraph batch;
  const Variable x = batch.AddVariableArray("x", Family::kMvGaussian, {steps + 1}, 2);
  batch.AddMvGaussian(x[0], Vector(m.m0), Matrix(m.P0.inverse()));
  batch.AddLinearGaussian(x.Slice(1, steps + 1), x.Slice(0, steps), m.A, Matrix(m.Q.inverse()));
  Matrix rows(static_cast<Eigen::Index>(steps), 2);
  for (size_t t = 0; t < steps; ++t) rows.row(static_cast<Eigen::Index>(t)) = ys[t].transpose();
  batch.AddLinearGaussian(batch.AddObservedRows("y", rows), x.Slice(1, steps + 1), m.C,
                          Matrix(m.R.inverse()));
  batch.AddCluster(x);
  batch.Finalize();
  ASSERT_TRUE(SequentialScheduler(SchedulerOptions()).Run(batch).converged());
  for (size_t k = 0; k <= steps; ++k) {
    const MvGaussian expected = batch.Posterior<MvGaussian>(x[k]);
    ExpectSameGaussian(stream.window().Posterior<MvGaussian>(stream.WindowElement(
                           "x[" + std::to_string(k) + "]")),
                       expected.mean(), expected.covariance(), m, "x_" + std::to_string(k));
  }
  Scratch scratch = batch.MakeScratch();
  // The window's F is the batch F: −log p(y_1:T), which the filter's steps sum to.
  EXPECT_NEAR(stream.total_free_energy(), batch.FreeEnergy(scratch),
              1e-9 * std::abs(batch.FreeEnergy(scratch)));
}

// ---- A hidden Markov model ---------------------------------------------------------------

TEST(Stream, HiddenMarkovStepsAreTheForwardAlgorithm) {
  Matrix A(3, 3);  // A(j, k) = p(x_t = j | x_{t−1} = k)
  A << 0.8, 0.1, 0.2, 0.15, 0.7, 0.1, 0.05, 0.2, 0.7;
  Matrix B(2, 3);  // B(o, k) = p(y_t = o | x_t = k)
  B << 0.9, 0.4, 0.05, 0.1, 0.6, 0.95;
  Vector p0(3);
  p0 << 0.5, 0.3, 0.2;
  SliceBuilder slice = [&](FactorGraph& g, const std::vector<bool>& present) {
    const Variable x = g.AddVariableArray("x", Family::kCategorical, {2}, 3);
    g.AddTransition(x[1], x[0], A);
    if (present[0]) g.AddTransition(g.AddObservedCategorical("y", {0}, 2), x[1], B);
    g.AddCluster(x);
  };
  Stream stream(slice, {"y"}, {StreamCarry::Of("x[1]", "x[0]", Categorical(p0))});
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> outcome(0, 1);
  Vector alpha = p0;  // the normalised forward message p(x_t | y_1:t)
  double log_evidence = 0.0;
  for (int t = 1; t <= 300; ++t) {
    const bool missing = t % 17 == 0;
    const int y = outcome(rng);
    const StreamStep& step = stream.Push({missing ? kNaN : static_cast<double>(y)});
    alpha = A * alpha;
    if (!missing) {
      alpha = alpha.cwiseProduct(B.row(y).transpose());
      const double c = alpha.sum();
      log_evidence += std::log(c);
      alpha /= c;
    }
    const Vector q = stream.slice().Posterior<Categorical>(stream.Element("x[1]")).p();
    EXPECT_LT((q - alpha).cwiseAbs().maxCoeff(), 1e-13) << "step " << t;
    EXPECT_EQ(step.sweeps, 1);
  }
  EXPECT_NEAR(stream.total_free_energy(), -log_evidence, 1e-9 * std::abs(log_evidence));
}

// ---- Learned parameters ------------------------------------------------------------------

TEST(Stream, ALearnedPrecisionFollowsTheConjugateUpdateAndItsExactEvidence) {
  // y_t ~ N(μ, 1/τ), μ known, τ ~ Gamma(a0, b0): carried from step to step, q_t(τ) is the
  // exact posterior Gamma(a0 + t/2, b0 + Σ(y − μ)²/2), and Σ F_t the exact −log p(y_1:T).
  const double mu = 1.5, a0 = 2.0, b0 = 3.0;
  SliceBuilder slice = [&](FactorGraph& g, const std::vector<bool>&) {
    const Variable tau = g.AddVariable("tau", Family::kGamma);
    g.AddGaussian(g.AddObserved("y", 0.0), mu, tau);
  };
  Stream stream(slice, {"y"}, {StreamCarry::Of("tau", "tau", Gamma(a0, b0))});
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(mu, 0.7);
  double a = a0, b = b0;
  for (int t = 1; t <= 500; ++t) {
    const double y = normal(rng);
    stream.Push({y});
    a += 0.5;
    b += 0.5 * (y - mu) * (y - mu);
    const Gamma q = stream.slice().Posterior<Gamma>(stream.Element("tau"));
    EXPECT_NEAR(q.shape(), a, 1e-12 * a);
    EXPECT_NEAR(q.rate(), b, 1e-12 * b);
  }
  const double log_evidence = -250.0 * kLog2Pi + a0 * std::log(b0) - a * std::log(b) +
                              std::lgamma(a) - std::lgamma(a0);
  EXPECT_NEAR(stream.total_free_energy(), -log_evidence, 1e-9 * std::abs(log_evidence));
}

TEST(Stream, ForgettingDecaysTheCarriedNaturalParametersTowardsTheFirstPrior) {
  // A drifting mean μ, y_t ~ N(μ, 1/τ) with τ known: in precision form the carried prior
  // follows p_{t+1} = (1 − λ)(p_t + τ) + λ p_0 and p_{t+1}m_{t+1} = (1 − λ)(p_t m_t + τ y_t)
  // + λ p_0 m_0.
  const double tau = 4.0, m0 = 0.0, p0 = 0.01, lambda = 0.05;
  SliceBuilder slice = [&](FactorGraph& g, const std::vector<bool>&) {
    const Variable mu = g.AddVariable("mu", Family::kGaussian);
    g.AddGaussian(g.AddObserved("y", 0.0), mu, tau);
  };
  Stream stream(slice, {"y"}, {StreamCarry::Of("mu", "mu", Gaussian(m0, p0), lambda)});
  double p = p0, pm = p0 * m0;
  for (int t = 1; t <= 400; ++t) {
    const double truth = t < 200 ? 1.0 : -2.0;  // a jump the stream must follow
    const double y = truth + 0.5 * std::sin(1.7 * t);
    stream.Push({y});
    const Gaussian q = stream.slice().Posterior<Gaussian>(stream.Element("mu"));
    EXPECT_NEAR(q.mean(), (pm + tau * y) / (p + tau), 1e-12) << "step " << t;
    EXPECT_NEAR(1.0 / q.variance(), p + tau, 1e-12 * (p + tau)) << "step " << t;
    p = (1 - lambda) * (p + tau) + lambda * p0;
    pm = (1 - lambda) * (pm + tau * y) + lambda * p0 * m0;
    const std::vector<double>& carried = stream.carried(0);  // Gaussian η = (p·m, −p/2)
    EXPECT_NEAR(carried[0], pm, 1e-12 * (1 + std::abs(pm)));
    EXPECT_NEAR(carried[1], -0.5 * p, 1e-12 * p);
  }
  // The steady-state precision p* = (1 − λ)(p* + τ) + λ p0 bounds what is remembered, so the
  // mean follows the jump: after 200 steps at −2 it is within the noise's reach of −2.
  EXPECT_NEAR(stream.slice().Posterior<Gaussian>(stream.Element("mu")).mean(), -2.0, 0.2);
}

TEST(Stream, TwoHiddenVariablesIterateToTolerance) {
  // y_t ~ N(μ_t, 1/τ), μ_t a fresh N(0, 10) each step, τ learned: the slice has two hidden
  // variables, so each step runs sweeps until F settles.
  SliceBuilder slice = [&](FactorGraph& g, const std::vector<bool>&) {
    const Variable tau = g.AddVariable("tau", Family::kGamma);
    const Variable mu = g.AddVariable("mu", Family::kGaussian);
    g.AddGaussian(mu, 0.0, 0.1);
    g.AddGaussian(g.AddObserved("y", std::vector<double>{0.0, 0.0, 0.0}), mu, tau);
  };
  StreamOptions options;
  options.tolerance = 1e-10;
  Stream stream(slice, {"y"}, {StreamCarry::Of("tau", "tau", Gamma(1.0, 1.0))}, options);
  ASSERT_EQ(stream.num_values(), 3u);
  for (int t = 1; t <= 20; ++t) {
    const StreamStep& step = stream.Push({0.1 * t, 0.1 * t + 1, 0.1 * t - 1});
    EXPECT_TRUE(step.converged);
    EXPECT_GT(step.sweeps, 1);
  }
  // The carried τ has gained 3/2 of shape per step.
  EXPECT_NEAR(stream.slice().Posterior<Gamma>(stream.Element("tau")).shape(), 1.0 + 30.0, 1e-9);
}

// ---- JSON -------------------------------------------------------------------------------

/// The tracker as a JSON slice (the matrices written with 17 significant digits).
std::string TrackerJson(const LinearGaussianModel& m, const std::string& stream_block) {
  auto matrix = [](const Matrix& a) {
    std::string out = "[";
    for (Eigen::Index i = 0; i < a.rows(); ++i) {
      out += i ? ", [" : "[";
      for (Eigen::Index j = 0; j < a.cols(); ++j) {
        char number[32];
        std::snprintf(number, sizeof number, "%.17g", a(i, j));
        out += (j ? ", " : "") + std::string(number);
      }
      out += "]";
    }
    return out + "]";
  };
  return R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "family": "MvGaussian", "dim": 2, "shape": [2]},
                  {"name": "y", "dim": 2, "observed": [0, 0]}],
    "factors": [
      {"node": "LinearGaussian", "out": "x[1]", "in": "x[0]", "matrix": )" +
         matrix(m.A) + R"(, "precision": )" + matrix(m.Q.inverse()) + R"(},
      {"node": "LinearGaussian", "name": "sensor", "out": "y", "in": "x[1]", "matrix": )" +
         matrix(m.C) + R"(, "precision": )" + matrix(m.R.inverse()) + R"(}],
    "factorisation": [["x"]],
    "stream": )" + stream_block + "}";
}

TEST(StreamJson, TheTrackerFromJsonIsTheKalmanFilterAndReportsEachStepAsOneLine) {
  const LinearGaussianModel m = Tracker();
  char initial[256];
  std::snprintf(initial, sizeof initial,
                R"({"node": "MvGaussian", "mean": [%.17g, %.17g], "precision": %s})", m.m0[0],
                m.m0[1], "[[PRECISION]]");
  std::string initial_text = initial;
  const Matrix p0_inverse = m.P0.inverse();
  char precision[128];
  std::snprintf(precision, sizeof precision, "[%.17g, %.17g], [%.17g, %.17g]", p0_inverse(0, 0),
                p0_inverse(0, 1), p0_inverse(1, 0), p0_inverse(1, 1));
  initial_text.replace(initial_text.find("[PRECISION]"), 11, precision);
  StreamModel model = ParseStreamModel(TrackerJson(
      m, R"({"inputs": ["y"], "carry": [{"from": "x[1]", "to": "x[0]", "initial": )" +
             initial_text + "}]}"));
  EXPECT_EQ(model.columns, (std::vector<std::string>{"y[0]", "y[1]"}));
  EXPECT_EQ(model.report, (std::vector<std::string>{"x[1]"}));
  std::vector<Vector> ys = Simulate(m, 50, 13);
  ys[10] = Vector::Constant(2, kNaN);
  KalmanFilter kf(m);
  for (size_t t = 0; t < ys.size(); ++t) {
    model.stream.Push({ys[t][0], ys[t][1]});
    kf.Step(ys[t]);
    const nlohmann::json line = nlohmann::json::parse(StreamStepJson(model));
    EXPECT_EQ(line["step"], t + 1);
    EXPECT_EQ(line["missing"], t == 10 ? 1 : 0);
    const nlohmann::json& q = line["posteriors"]["x[1]"];
    EXPECT_EQ(q["family"], "MvGaussian");
    // The matrices went through 17 significant digits (exact for doubles).
    Vector mean(2);
    Matrix cov(2, 2);
    for (int i = 0; i < 2; ++i) {
      mean[i] = q["mean"][i].get<double>();
      for (int j = 0; j < 2; ++j) cov(i, j) = q["covariance"][i][j].get<double>();
    }
    ExpectKalmanStep(MvGaussian(mean, Matrix(cov.inverse())), kf, t + 1);
  }
  EXPECT_NEAR(model.stream.total_free_energy(), -kf.log_evidence,
              1e-9 * std::abs(kf.log_evidence));
}

TEST(StreamJson, ALearnedPrecisionLineGivesTheConjugatePosterior) {
  // The Gamma case of the C++ test above, from JSON, read back from each step's line.
  StreamModel model = ParseStreamModel(R"({"format": "vfe-model/1",
    "variables": [{"name": "tau", "family": "Gamma"}, {"name": "y", "observed": 0}],
    "factors": [{"node": "Gaussian", "out": "y", "mean": 1.5, "precision": "tau"}],
    "stream": {"inputs": ["y"],
               "carry": [{"from": "tau", "to": "tau",
                          "initial": {"node": "Gamma", "shape": 2, "rate": 3}}]}})");
  double a = 2.0, b = 3.0;
  for (int t = 1; t <= 40; ++t) {
    const double y = 1.5 + std::sin(0.7 * t);
    model.stream.Push({y});
    a += 0.5;
    b += 0.5 * (y - 1.5) * (y - 1.5);
    const nlohmann::json q = nlohmann::json::parse(StreamStepJson(model))["posteriors"]["tau"];
    EXPECT_EQ(q["family"], "Gamma");
    EXPECT_NEAR(q["shape"].get<double>(), a, 1e-12 * a);
    EXPECT_NEAR(q["rate"].get<double>(), b, 1e-12 * b);
    EXPECT_NEAR(q["mean"].get<double>(), a / b, 1e-12 * a / b);
  }
}

TEST(StreamJson, EveryStreamingExampleLoadsAndRunsThreeSteps) {
  // Each examples/*.json with a "stream" block: loaded, then three steps of zeros (a valid
  // value of every input the examples have), each with a finite F.
  int examples = 0;
  for (const std::filesystem::directory_entry& entry :
       std::filesystem::directory_iterator(std::string(VFE_SOURCE_DIR) + "/examples")) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    if (!nlohmann::json::parse(in).contains("stream")) continue;
    ++examples;
    StreamModel model = LoadStreamModel(entry.path().string());
    for (int t = 0; t < 3; ++t) {
      const StreamStep& step = model.stream.Push(std::vector<double>(model.columns.size(), 0.0));
      EXPECT_TRUE(std::isfinite(step.free_energy)) << entry.path();
      EXPECT_TRUE(step.converged) << entry.path();
    }
  }
  EXPECT_EQ(examples, 4);
}

TEST(StreamJson, ErrorsGiveThePointer) {
  const LinearGaussianModel m = Tracker();
  const std::string carry =
      R"("carry": [{"from": "x[1]", "to": "x[0]", "initial": {"node": "MvGaussian", )"
      R"("mean": [0, 0], "precision": [[1, 0], [0, 1]]}}])";
  auto error = [&](const std::string& block) {
    return ErrorMessage<ModelError>([&] { ParseStreamModel(TrackerJson(m, block)); });
  };
  EXPECT_EQ(error(R"({"inputs": ["y"], "carry": [], "max_sweep": 3})"),
            "/stream/max_sweep: unknown key 'max_sweep' (did you mean 'max_sweeps'?); expected "
            "one of 'inputs', 'carry', 'report', 'max_sweeps', 'tolerance'");
  EXPECT_EQ(error(R"({"inputs": ["z"], )" + carry + "}"),
            "/stream/inputs/0: input 'z': the slice has no variable 'z'");
  EXPECT_EQ(error(R"({"inputs": ["y"], "carry": [{"from": "x[1]", "to": "x[7]", "initial": )"
                  R"({"node": "MvGaussian", "mean": [0, 0], "precision": [[1, 0], [0, 1]]}}]})"),
            "/stream/carry/0: to: the slice has no element 'x[7]' ('x' has 2 elements)");
  EXPECT_EQ(error(R"({"inputs": ["y"], "carry": [{"from": "x[1]", "to": "x[0]", "initial": )"
                  R"({"node": "MvGaussian", "mean": [0, 0, 0], "precision": [[1, 0], [0, 1]]}}]})"),
            "/stream/carry/0/initial/mean (MvGaussian): 'mean' expects dimension 2 ('out' is "
            "variable 'x', MvGaussian of dimension 2), got factor #0 (MvGaussian): constant mean "
            "of dimension 3");
  EXPECT_EQ(error(R"({"inputs": ["y"], "carry": [{"from": "x[1]", "to": "x[0]", "initial": )"
                  R"({"node": "Gamma", "shape": 1, "rate": 1}}]})"),
            "/stream/carry/0/initial/out: expected a Gamma variable, found 'x' (MvGaussian)");
  EXPECT_EQ(error(R"({"inputs": ["y"], "carry": [{"from": "x[1]", "to": "x[0]", "forgetting": 2, )"
                  R"("initial": {"node": "MvGaussian", "mean": [0, 0], "precision": [[1, 0], [0, 1]]}}]})"),
            "/stream/carry/0: forgetting must be in [0, 1), got 2");
  EXPECT_EQ(error(R"({"inputs": ["y"], "report": ["y"], )" + carry + "}"),
            "/stream/report/0: 'y' is observed: only hidden elements have posteriors");
  EXPECT_EQ(error(R"({"inputs": ["y"], "tolerance": -1, )" + carry + "}"),
            "/stream/tolerance: expected a number >= 0, found -1");
  EXPECT_EQ(ErrorMessage<ModelError>([&] {
              ParseStreamModel(R"({"format": "vfe-model/1", "variables": [
                {"name": "w", "family": "MvGaussian", "dim": 2},
                {"name": "X", "shape": [2], "dim": 2, "observed": [[1, 0], [1, 1]]},
                {"name": "y", "shape": [2], "observed": [0, 0]}],
                "factors": [{"node": "LinearGaussian", "for": {"k": [0, 2]}, "out": "y[k]",
                             "in": "w", "matrix": "X[k]", "precision": 1}],
                "stream": {"inputs": ["y", "X"], "carry": [{"from": "w", "to": "w",
                  "initial": {"node": "MvGaussian", "mean": [0, 0],
                              "precision": [[1, 0], [0, 1]]}}]}})");
            }),
            "/stream/inputs/1: 'X' is read only as constants (a node's matrix, or indices): its "
            "values are fixed when the slice is built, so a stream cannot bring them");
}

// ---- Misuse -------------------------------------------------------------------------------

SliceBuilder MeanSlice() {
  return [](FactorGraph& g, const std::vector<bool>&) {
    const Variable mu = g.AddVariable("mu", Family::kGaussian);
    g.AddGaussian(g.AddObserved("y", std::vector<double>{0.0, 0.0}), mu, 1.0);
  };
}

TEST(Stream, RefusesBadSetupsNamingWhatIsWrong) {
  const StreamCarry carry = StreamCarry::Of("mu", "mu", Gaussian(0.0, 1.0));
  EXPECT_EQ(ErrorMessage<GraphError>([&] { Stream(MeanSlice(), {"z"}, {carry}); }),
            "Stream: input 'z': the slice has no variable 'z'");
  EXPECT_EQ(ErrorMessage<GraphError>([&] { Stream(MeanSlice(), {"mu"}, {carry}); }),
            "Stream: input 'mu': a hidden variable; the inputs are observed variables");
  EXPECT_EQ(ErrorMessage<GraphError>([&] { Stream(MeanSlice(), {"y", "y"}, {carry}); }),
            "Stream: input 'y' is listed twice");
  EXPECT_EQ(ErrorMessage<GraphError>([&] {
              Stream(MeanSlice(), {"y"}, {StreamCarry::Of("mu", "y[1]", Gaussian(0.0, 1.0))});
            }),
            "Stream: carry 1 (mu -> y[1]): to: 'y[1]' is observed");
  EXPECT_EQ(ErrorMessage<GraphError>([&] {
              Stream(MeanSlice(), {"y"}, {StreamCarry::Of("nu", "mu", Gaussian(0.0, 1.0))});
            }),
            "Stream: carry 1 (nu -> mu): from: the slice has no variable 'nu'");
  EXPECT_EQ(ErrorMessage<GraphError>([&] {
              Stream(MeanSlice(), {"y"}, {StreamCarry::Of("mu", "y", Gaussian(0.0, 1.0))});
            }),
            "Stream: carry 1 (mu -> y): to: 'y' has 2 elements; name one, as 'y[0]'");
  // Gamma(1, 1) has η = (−1, 0): two numbers, as a Gaussian's, but η₂ = 0 is no Gaussian.
  EXPECT_EQ(ErrorMessage<ModelError>([&] {
              Stream(MeanSlice(), {"y"}, {StreamCarry::Of("mu", "mu", Gamma(1.0, 1.0))});
            }),
            "Stream: carry 1 (mu -> mu): initial: not a proper Gaussian density");
  EXPECT_EQ(ErrorMessage<ModelError>([&] {
              Stream(MeanSlice(), {"y"}, {{"mu", "mu", {0.0, -0.5, 1.0}, 0.0}});
            }),
            "Stream: carry 1 (mu -> mu): initial: expected 2 natural parameters (Gaussian), "
            "got 3");
  EXPECT_EQ(ErrorMessage<ModelError>([&] {
              Stream(MeanSlice(), {"y"}, {StreamCarry::Of("mu", "mu", Gaussian(0.0, 1.0), 1.0)});
            }),
            "Stream: carry 1 (mu -> mu): forgetting must be in [0, 1), got 1");
  EXPECT_EQ(ErrorMessage<GraphError>([&] { Stream(MeanSlice(), {"y"}, {carry, carry}); }),
            "Stream: carry 2 (mu -> mu): 'mu' already has a carried prior (carry 1 (mu -> mu))");
  SliceBuilder two = [](FactorGraph& g, const std::vector<bool>&) {
    const Variable mu = g.AddVariable("mu", Family::kGaussian);
    const Variable tau = g.AddVariable("tau", Family::kGamma);
    g.AddGamma(tau, 1.0, 1.0);
    g.AddGaussian(g.AddObserved("y", 0.0), mu, tau);
  };
  EXPECT_EQ(ErrorMessage<GraphError>([&] {
              Stream(two, {"y"}, {StreamCarry::Of("tau", "mu", Gaussian(0.0, 1.0))});
            }),
            "Stream: carry 1 (tau -> mu): 'tau' is Gamma of dimension 1 and 'mu' Gaussian of "
            "dimension 1: a posterior can be carried only to an element of its kind");
  SliceBuilder with_prior = [](FactorGraph& g, const std::vector<bool>&) {
    const Variable mu = g.AddVariable("mu", Family::kGaussian);
    g.AddGaussian(mu, 0.0, 1.0, "prior");
    g.AddGaussian(g.AddObserved("y", 0.0), mu, 1.0);
  };
  EXPECT_EQ(ErrorMessage<GraphError>([&] { Stream(with_prior, {"y"}, {carry}); }),
            "Stream: carry 1 (mu -> mu): 'mu' has a prior in the slice (factor 'prior', "
            "Gaussian); the carried posterior is its prior: leave that factor out");
  StreamOptions bad;
  bad.max_sweeps = 0;
  EXPECT_EQ(ErrorMessage<OptionsError>([&] { Stream(MeanSlice(), {"y"}, {carry}, bad); }),
            "max_sweeps must be >= 1, got 0");
  EXPECT_EQ(ErrorMessage<GraphError>([&] { Stream(SliceBuilder(), {"y"}, {carry}); }),
            "Stream: no slice builder (an empty function)");
}

TEST(Stream, RefusesBadStepsAndKeepsItsState) {
  Stream stream(MeanSlice(), {"y"}, {StreamCarry::Of("mu", "mu", Gaussian(0.0, 1.0))});
  stream.Push({1.0, 2.0});
  const std::vector<double> carried = stream.carried(0);
  EXPECT_EQ(ErrorMessage<ModelError>([&] { stream.Push({1.0}); }),
            "Stream: step 2: expected 2 values, got 1");
  EXPECT_THAT(ErrorMessage<ModelError>([&] {
                stream.Push({1.0, std::numeric_limits<double>::infinity()});
              }),
              HasSubstr("Stream: step 2: SetObservedValues: observed variable 'y' at y[1]: value "
                        "must be finite, got inf"));
  EXPECT_EQ(stream.last().step, 1u);
  EXPECT_EQ(stream.carried(0), carried);
  EXPECT_EQ(stream.Push({1.0, 2.0}).step, 2u);
  EXPECT_THROW(stream.carried(1), GraphError);
  EXPECT_THAT(ErrorMessage<GraphError>([&] { stream.Element("mu[3]"); }),
              HasSubstr("the slice has no element 'mu[3]'"));
}

}  // namespace
}  // namespace vfe
