#ifndef VFE_TESTS_TESTING_TEXTBOOK_H_
#define VFE_TESTS_TESTING_TEXTBOOK_H_

// Test oracles written from the textbook, sharing no code with vfe: log densities, a running
// mean with its standard error for Monte Carlo estimates, the forward–backward algorithm of
// hidden Markov chains, and the Kalman filter and RTS smoother of linear Gaussian chains.

#include <Eigen/Cholesky>
#include <Eigen/LU>
#include <cmath>
#include <functional>
#include <vector>

#include "vfe/core/types.h"

namespace vfe::testing {

constexpr double kLogTwoPi = 1.8378770664093454836;

/// log N(x | mean, 1/precision).
inline double LogGaussian(double x, double mean, double precision) {
  return 0.5 * (std::log(precision) - kLogTwoPi) - 0.5 * precision * (x - mean) * (x - mean);
}

/// log N(x | mean, precision⁻¹) for vectors.
inline double LogNormal(const Vector& x, const Vector& mean, const Matrix& precision) {
  const Vector r = x - mean;
  return 0.5 * (std::log(precision.determinant()) - x.size() * kLogTwoPi) -
         0.5 * r.dot(precision * r);
}

/// log N(x | mean, covariance), by the Cholesky factor of the covariance (NaN when it is not
/// positive definite).
inline double LogNormalWithCovariance(const Vector& x, const Vector& mean,
                                      const Matrix& covariance) {
  const Eigen::LLT<Matrix> llt(covariance);
  if (llt.info() != Eigen::Success) return NAN;
  const Vector z = llt.matrixL().solve(Vector(x - mean));
  const double log_det = 2.0 * Matrix(llt.matrixL()).diagonal().array().log().sum();
  return -0.5 * (static_cast<double>(x.size()) * kLogTwoPi + log_det + z.squaredNorm());
}

/// log Gamma(x | shape, rate).
inline double LogGammaDensity(double x, double shape, double rate) {
  return shape * std::log(rate) - std::lgamma(shape) + (shape - 1) * std::log(x) - rate * x;
}

/// log B(a, b) = log Γ(a) + log Γ(b) − log Γ(a + b).
inline double LogBetaFunction(double a, double b) {
  return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
}

/// log Beta(p | a, b).
inline double LogBetaDensity(double p, double a, double b) {
  return (a - 1) * std::log(p) + (b - 1) * std::log1p(-p) - LogBetaFunction(a, b);
}

/// log Dirichlet(p | alpha).
inline double LogDirichletDensity(const Vector& p, const Vector& alpha) {
  double out = std::lgamma(alpha.sum());
  for (Eigen::Index k = 0; k < p.size(); ++k)
    out += (alpha[k] - 1) * std::log(p[k]) - std::lgamma(alpha[k]);
  return out;
}

/// log Wishart(x | dof, scale) with E[x] = dof · scale.
inline double LogWishart(const Matrix& x, double dof, const Matrix& scale) {
  const int d = static_cast<int>(x.rows());
  double log_multigamma = 0.25 * d * (d - 1) * std::log(M_PI);
  for (int i = 0; i < d; ++i) log_multigamma += std::lgamma(0.5 * (dof - i));
  return 0.5 * (dof - d - 1) * std::log(x.determinant()) - 0.5 * (scale.inverse() * x).trace() -
         0.5 * dof * d * std::log(2.0) - 0.5 * dof * std::log(scale.determinant()) -
         log_multigamma;
}

/// ∫ f over [a, b] by composite Simpson with `intervals` (even) intervals.
inline double Integrate(const std::function<double(double)>& f, double a, double b,
                        int intervals = 20000) {
  const double h = (b - a) / intervals;
  double sum = f(a) + f(b);
  for (int i = 1; i < intervals; ++i) sum += (i % 2 ? 4 : 2) * f(a + i * h);
  return sum * h / 3;
}

/// Mean and standard error of a stream of values (Welford).
class RunningMean {
 public:
  void Add(double value) {
    ++count_;
    const double delta = value - mean_;
    mean_ += delta / count_;
    m2_ += delta * (value - mean_);
  }
  double mean() const { return mean_; }
  double standard_error() const { return std::sqrt(m2_ / (count_ - 1) / count_); }

 private:
  long count_ = 0;
  double mean_ = 0.0;
  double m2_ = 0.0;
};

// ---- Hidden Markov chains: the forward–backward algorithm ------------------------------------

/// A hidden Markov model with known matrices: x_0 ~ π, x_t ~ A[:, x_{t−1}], y_t ~ B[:, x_t].
struct Hmm {
  Vector pi;
  Matrix a, b;  ///< K x K transition and M x K emission matrices, columns summing to 1
  std::vector<int> y;
};

/// What the forward–backward algorithm gives: log Z, the marginals γ_t and the pair marginals
/// ξ_t(x_t, x_{t−1}).
struct ForwardBackwardResult {
  double log_z = 0;  ///< log p(y) for an HMM
  std::vector<Vector> gamma;
  std::vector<Matrix> xi;  ///< xi[t] for t ≥ 1, over (x_t, x_{t−1}); xi[0] is empty
};

/// The scaled forward–backward algorithm (Rabiner 1989) over a chain with evidence φ_t
/// (K-vectors), pair potentials ψ_t(x_t, x_{t−1}) (K x K, t ≥ 1; psi[0] is not read) and a
/// prior π on x_0, with one normaliser per step. The potentials need not be stochastic.
inline ForwardBackwardResult ForwardBackward(const Vector& pi, const std::vector<Vector>& phi,
                                             const std::vector<Matrix>& psi) {
  const size_t t_max = phi.size();
  std::vector<Vector> alpha(t_max), beta(t_max);
  std::vector<double> scale(t_max);
  ForwardBackwardResult out;
  for (size_t t = 0; t < t_max; ++t) {
    alpha[t] = phi[t].cwiseProduct(t == 0 ? pi : Vector(psi[t] * alpha[t - 1]));
    scale[t] = alpha[t].sum();
    alpha[t] /= scale[t];
    out.log_z += std::log(scale[t]);
  }
  beta[t_max - 1] = Vector::Ones(pi.size());
  for (size_t t = t_max - 1; t-- > 0;)
    beta[t] = psi[t + 1].transpose() * phi[t + 1].cwiseProduct(beta[t + 1]) / scale[t + 1];
  out.xi.resize(t_max);
  for (size_t t = 0; t < t_max; ++t) {
    const Vector g = alpha[t].cwiseProduct(beta[t]);
    out.gamma.push_back(g / g.sum());
    if (t == 0) continue;
    Matrix xi = psi[t];
    for (Eigen::Index i = 0; i < xi.rows(); ++i)
      for (Eigen::Index j = 0; j < xi.cols(); ++j)
        xi(i, j) *= phi[t][i] * beta[t][i] * alpha[t - 1][j] / scale[t];
    out.xi[t] = xi;
  }
  return out;
}

/// The forward–backward algorithm of an HMM: φ_t = B[y_t, :], ψ_t = A; log_z = log p(y).
inline ForwardBackwardResult ForwardBackward(const Hmm& hmm) {
  std::vector<Vector> phi;
  for (int y : hmm.y) phi.push_back(hmm.b.row(y).transpose());
  return ForwardBackward(hmm.pi, phi, std::vector<Matrix>(hmm.y.size(), hmm.a));
}

// ---- Linear Gaussian chains: the Kalman filter and RTS smoother ------------------------------

/// x_0 ~ N(m0, P0), x_t = A x_{t−1} + N(0, Q), y_t = C x_t + N(0, R) (covariances).
struct StateSpace {
  Vector m0;
  Matrix p0, a, q, c, r;
  Matrix y;  ///< T x M: y_t in row t
};

/// The smoothed posteriors p(x_t | y), the lag-one covariances and log p(y).
struct Smoothed {
  double log_likelihood = 0;
  std::vector<Vector> mean;
  std::vector<Matrix> cov;
  std::vector<Matrix> lag_one;  ///< lag_one[t] = Cov(x_{t+1}, x_t | y)
};

/// The Kalman filter (covariance form, Joseph update, which keeps the covariance symmetric and
/// positive definite over long runs) and the Rauch–Tung–Striebel smoother (Särkkä, Bayesian
/// Filtering and Smoothing, 2013). The last smoothed posterior is the filtered one.
inline Smoothed KalmanSmoother(const StateSpace& s) {
  const size_t t_max = static_cast<size_t>(s.y.rows());
  const Eigen::Index d = s.a.rows();
  std::vector<Vector> mf(t_max), mp(t_max);
  std::vector<Matrix> pf(t_max), pp(t_max);
  Smoothed out;
  for (size_t t = 0; t < t_max; ++t) {
    mp[t] = t == 0 ? s.m0 : Vector(s.a * mf[t - 1]);
    pp[t] = t == 0 ? s.p0 : Matrix(s.a * pf[t - 1] * s.a.transpose() + s.q);
    const Vector y = s.y.row(static_cast<Eigen::Index>(t)).transpose();
    const Matrix innovation = s.c * pp[t] * s.c.transpose() + s.r;
    const Vector residual = y - s.c * mp[t];
    const Eigen::LLT<Matrix> llt(innovation);
    const Matrix l = llt.matrixL();
    out.log_likelihood += -0.5 * residual.dot(llt.solve(residual)) -
                          l.diagonal().array().log().sum() -
                          0.5 * static_cast<double>(y.size()) * kLogTwoPi;
    const Matrix gain = pp[t] * s.c.transpose() * llt.solve(Matrix::Identity(y.size(), y.size()));
    mf[t] = mp[t] + gain * residual;
    const Matrix keep = Matrix::Identity(d, d) - gain * s.c;
    pf[t] = keep * pp[t] * keep.transpose() + gain * s.r * gain.transpose();
  }
  out.mean = mf;
  out.cov = pf;
  out.lag_one.resize(t_max > 0 ? t_max - 1 : 0);
  for (size_t t = t_max - 1; t-- > 0;) {
    const Matrix g = pf[t] * s.a.transpose() * pp[t + 1].inverse();
    out.mean[t] = mf[t] + g * (out.mean[t + 1] - mp[t + 1]);
    out.lag_one[t] = out.cov[t + 1] * g.transpose();
    out.cov[t] = pf[t] + g * (out.cov[t + 1] - pp[t + 1]) * g.transpose();
  }
  return out;
}

}  // namespace vfe::testing

#endif  // VFE_TESTS_TESTING_TEXTBOOK_H_
