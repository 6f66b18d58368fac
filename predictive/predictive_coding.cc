// Predictive coding networks: Laplace inference (Gauss–Newton or gradient dynamics) and
// variational EM learning. The maths is in include/vfe/predictive/predictive_coding.h.

#include "vfe/predictive/predictive_coding.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <cmath>
#include <string>
#include <utility>

#include "vfe/core/format.h"
#include "vfe/core/special.h"
#include "vfe/core/splitmix.h"
#include "vfe/distributions/mv_gaussian.h"

namespace vfe {
namespace predictive {

namespace {

std::string Shape(const Matrix& m) {
  return std::to_string(m.rows()) + "x" + std::to_string(m.cols());
}

std::string FunctionNames() {
  int count = 0;
  const ScalarFunction* all = ScalarFunctions(&count);
  std::string names;
  for (int i = 0; i < count; ++i) names += std::string(i ? ", " : "") + all[i].name;
  return names;
}

/// Checks that a positive definite `precision` has `form`; throws ModelError naming `what`.
void CheckForm(const Matrix& precision, PrecisionForm form, const std::string& what) {
  if (form == PrecisionForm::kFull) return;
  const int n = static_cast<int>(precision.rows());
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i)
      if (i != j && precision(i, j) != 0.0)
        throw ModelError(what + " must be diagonal (its precision form), got entry (" +
                         std::to_string(i) + ", " + std::to_string(j) + ") = " +
                         FormatNumber(precision(i, j)));
  if (form == PrecisionForm::kIsotropic)
    for (int i = 1; i < n; ++i)
      if (precision(i, i) != precision(0, 0))
        throw ModelError(what + " must be a multiple of the identity (its precision form), got "
                         "diagonal entries " + FormatNumber(precision(0, 0)) + " and " +
                         FormatNumber(precision(i, i)));
}

/// The precision of `form` that maximises −½ tr(Π S) + ½ log|Π| (S = mean E[εεᵀ]); false if S
/// does not give a positive definite one.
bool PrecisionFromScatter(const Matrix& scatter, PrecisionForm form, Matrix* precision) {
  const int n = static_cast<int>(scatter.rows());
  if (!scatter.allFinite()) return false;
  switch (form) {
    case PrecisionForm::kFull: {
      const Eigen::LLT<Matrix> llt(scatter);
      if (llt.info() != Eigen::Success) return false;
      const Matrix inverse = llt.solve(Matrix::Identity(n, n));
      *precision = 0.5 * (inverse + inverse.transpose());
      break;
    }
    case PrecisionForm::kDiagonal:
      precision->setZero(n, n);
      for (int i = 0; i < n; ++i) {
        if (!(scatter(i, i) > 0.0)) return false;
        (*precision)(i, i) = 1.0 / scatter(i, i);
      }
      break;
    case PrecisionForm::kIsotropic: {
      const double trace = scatter.trace();
      if (!(trace > 0.0)) return false;
      *precision = (n / trace) * Matrix::Identity(n, n);
      break;
    }
  }
  return precision->allFinite();
}

}  // namespace

void InferenceOptions::Validate() const {
  if (max_iterations < 1)
    throw OptionsError("inference options: max_iterations must be >= 1, got " +
                       std::to_string(max_iterations));
  if (!(tolerance >= 0.0) || !std::isfinite(tolerance))
    throw OptionsError("inference options: tolerance must be finite and >= 0, got " +
                       FormatNumber(tolerance));
  if (!(gradient_tolerance >= 0.0) || !std::isfinite(gradient_tolerance))
    throw OptionsError("inference options: gradient_tolerance must be finite and >= 0, got " +
                       FormatNumber(gradient_tolerance));
  if (!(step_size > 0.0) || !std::isfinite(step_size))
    throw OptionsError("inference options: step_size must be finite and > 0, got " +
                       FormatNumber(step_size));
}

void LearningOptions::Validate() const {
  if (epochs < 1)
    throw OptionsError("learning options: epochs must be >= 1, got " + std::to_string(epochs));
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate))
    throw OptionsError("learning options: learning_rate must be finite and > 0, got " +
                       FormatNumber(learning_rate));
  if (!(tolerance >= 0.0) || !std::isfinite(tolerance))
    throw OptionsError("learning options: tolerance must be finite and >= 0, got " +
                       FormatNumber(tolerance));
  if (num_threads < 0)
    throw OptionsError("learning options: num_threads must be >= 0, got " +
                       std::to_string(num_threads));
  inference.Validate();
}

// ---- the solver: buffers sized once per network, no allocation per iteration ----

class PredictiveCodingNetwork::Solver {
 public:
  explicit Solver(const PredictiveCodingNetwork& network) : net_(network) {
    const int levels = net_.num_levels();
    const int n = net_.hidden_dim();
    x.resize(n);
    trial.resize(n);
    gradient.resize(n);
    step.resize(n);
    hessian.resize(n, n);
    llt.compute(Matrix::Identity(n, n));
    for (int i = 0; i < levels; ++i) {
      const int rows = net_.dims_[i], cols = net_.dims_[i + 1];
      activation.emplace_back(rows);
      slope.emplace_back(rows);
      scaled.emplace_back(rows);
      jacobian.emplace_back(rows, cols);
      weighted_jacobian.emplace_back(rows, cols);
      product.emplace_back(rows, cols);
    }
    for (int i = 0; i <= levels; ++i) {
      const int rows = net_.dims_[i < levels ? i : levels];
      error.emplace_back(rows);
      weighted.emplace_back(rows);
      error_covariance.emplace_back(rows, rows);
    }
  }

  /// E at the stacked point `point`; leaves a_l, f'(a_l), ε_l and Π_l ε_l in the buffers.
  double Evaluate(const Vector& y, const Vector& point) {
    const int levels = net_.num_levels();
    double energy = 0.0;
    for (int i = 0; i < levels; ++i) {
      const LevelSpec& spec = net_.spec_.levels[i];
      const Level& level = net_.levels_[i];
      const int rows = net_.dims_[i];
      activation[i].noalias() = spec.weights * point.segment(net_.offsets_[i], net_.dims_[i + 1]);
      if (level.has_bias) activation[i] += spec.bias;
      for (int k = 0; k < rows; ++k) {
        const double a = activation[i][k];
        const double target = i == 0 ? y[k] : point[net_.offsets_[i - 1] + k];
        error[i][k] = target - level.function->value(a);
        slope[i][k] = level.function->derivative(a);
      }
      weighted[i].noalias() = spec.precision * error[i];
      energy += 0.5 * error[i].dot(weighted[i]) + LogNormaliser(i);
    }
    error[levels] = point.segment(net_.offsets_[levels - 1], net_.dims_[levels]) -
                    net_.spec_.prior_mean;
    weighted[levels].noalias() = net_.spec_.prior_precision * error[levels];
    energy += 0.5 * error[levels].dot(weighted[levels]) + LogNormaliser(levels);
    return energy;
  }

  /// −½ log|Π_l| + (n_{l−1}/2) log 2π for level index i (levels() for the prior).
  double LogNormaliser(int i) const {
    const int levels = net_.num_levels();
    const int rows = net_.dims_[i < levels ? i : levels];
    return -0.5 * net_.levels_[i].log_det_precision + 0.5 * rows * kLog2Pi;
  }

  /// ∇E from the last Evaluate.
  void Gradient() {
    const int levels = net_.num_levels();
    gradient.setZero();
    for (int i = 0; i < levels; ++i) {
      if (i > 0) gradient.segment(net_.offsets_[i - 1], net_.dims_[i]) += weighted[i];
      scaled[i] = slope[i].cwiseProduct(weighted[i]);
      gradient.segment(net_.offsets_[i], net_.dims_[i + 1]).noalias() -=
          net_.spec_.levels[i].weights.transpose() * scaled[i];
    }
    gradient.segment(net_.offsets_[levels - 1], net_.dims_[levels]) += weighted[levels];
  }

  /// The Jacobians D_l W_l and Π_l D_l W_l from the last Evaluate.
  void Jacobians() {
    for (int i = 0; i < net_.num_levels(); ++i) {
      jacobian[i].noalias() = slope[i].asDiagonal() * net_.spec_.levels[i].weights;
      weighted_jacobian[i].noalias() = net_.spec_.levels[i].precision * jacobian[i];
    }
  }

  /// H = Σ J_lᵀ Π_l J_l from the last Evaluate (calls Jacobians()).
  void GaussNewtonHessian() {
    Jacobians();
    const int levels = net_.num_levels();
    hessian.setZero();
    for (int i = 0; i < levels; ++i) {
      const int z = net_.offsets_[i], nz = net_.dims_[i + 1];
      hessian.block(z, z, nz, nz).noalias() += jacobian[i].transpose() * weighted_jacobian[i];
      if (i > 0) {
        const int t = net_.offsets_[i - 1], nt = net_.dims_[i];
        hessian.block(t, t, nt, nt) += net_.spec_.levels[i].precision;
        hessian.block(t, z, nt, nz) -= weighted_jacobian[i];
        hessian.block(z, t, nz, nt) -= weighted_jacobian[i].transpose();
      }
    }
    const int top = net_.offsets_[levels - 1], n_top = net_.dims_[levels];
    hessian.block(top, top, n_top, n_top) += net_.spec_.prior_precision;
  }

  /// J_l Σ J_lᵀ of every level (and Σ_LL for the prior) from the last Jacobians().
  void ErrorCovariances(const Matrix& covariance) {
    const int levels = net_.num_levels();
    for (int i = 0; i < levels; ++i) {
      const int z = net_.offsets_[i], nz = net_.dims_[i + 1];
      product[i].noalias() = jacobian[i] * covariance.block(z, z, nz, nz);
      error_covariance[i].noalias() = product[i] * jacobian[i].transpose();
      if (i > 0) {
        const int t = net_.offsets_[i - 1], nt = net_.dims_[i];
        error_covariance[i] += covariance.block(t, t, nt, nt);
        error_covariance[i].noalias() -= covariance.block(t, z, nt, nz) * jacobian[i].transpose();
        error_covariance[i].noalias() -= jacobian[i] * covariance.block(z, t, nz, nt);
      }
    }
    const int top = net_.offsets_[levels - 1], n_top = net_.dims_[levels];
    error_covariance[levels] = covariance.block(top, top, n_top, n_top);
  }

  /// Runs inference from `x` (already set); fills `out`.
  void Run(const Vector& y, const InferenceOptions& options, Inference* out) {
    double energy = Evaluate(y, x);
    out->converged = false;
    out->iterations = 0;
    out->message = "reached max_iterations";
    if (!std::isfinite(energy)) {
      out->message = "the energy at the starting point is not finite";
    } else if (options.method == InferenceMethod::kGaussNewton) {
      double last_decrement = INFINITY;
      for (int it = 0; it <= options.max_iterations; ++it) {
        Gradient();
        GaussNewtonHessian();
        llt.compute(hessian);
        if (llt.info() != Eigen::Success) {
          out->message = "the Gauss-Newton Hessian is not positive definite";
          break;
        }
        step = llt.solve(gradient);
        const double decrement = 0.5 * gradient.dot(step);
        if (decrement <= options.tolerance) {
          x -= step;  // a last, tiny step: E changes by about the decrement
          out->converged = true;
          out->message = "converged";
          break;
        }
        if (it == options.max_iterations) break;
        if (decrement <= 1e-13 * (1.0 + std::abs(energy))) {
          // Below what E resolves, a line search cannot judge a step: take full Gauss–Newton
          // steps while the decrement keeps falling, and stop when it no longer does.
          if (decrement >= last_decrement) {
            out->converged = true;
            out->message = "converged (the decrement reached rounding level)";
            break;
          }
          last_decrement = decrement;
          x -= step;
          energy = Evaluate(y, x);
          out->iterations = it + 1;
          continue;
        }
        double alpha = 1.0;
        bool accepted = false;
        for (int halving = 0; halving < 60; ++halving, alpha *= 0.5) {
          trial = x - alpha * step;
          const double trial_energy = Evaluate(y, trial);
          if (trial_energy <= energy - 1e-4 * alpha * 2.0 * decrement) {
            x.swap(trial);
            energy = trial_energy;
            accepted = true;
            break;
          }
        }
        if (!accepted) {
          // E cannot be lowered along the Newton direction: μ is a minimum to rounding.
          energy = Evaluate(y, x);
          out->converged = decrement <= 1e-8 * (1.0 + std::abs(energy));
          out->message = out->converged ? "converged (line search at rounding level)"
                                        : "the line search failed";
          break;
        }
        out->iterations = it + 1;
      }
    } else {
      for (int it = 0; it <= options.max_iterations; ++it) {
        Gradient();
        if (gradient.cwiseAbs().maxCoeff() <= options.gradient_tolerance) {
          out->converged = true;
          out->message = "converged";
          break;
        }
        if (it == options.max_iterations) break;
        x -= options.step_size * gradient;
        energy = Evaluate(y, x);
        out->iterations = it + 1;
        if (!std::isfinite(energy)) {
          out->message = "the gradient dynamics diverged (step_size too large?)";
          break;
        }
      }
    }
    Finish(y, out);
  }

  /// Fills `out` at the current x: means, errors, Σ, the level energies, H[q] and F.
  void Finish(const Vector& y, Inference* out) {
    const int levels = net_.num_levels();
    const int n = net_.hidden_dim();
    Evaluate(y, x);
    GaussNewtonHessian();
    out->means.resize(levels);
    for (int l = 1; l <= levels; ++l) out->means[l - 1] = x.segment(net_.offsets_[l - 1], net_.dims_[l]);
    out->errors = error;
    out->levels.assign(levels + 1, LevelEnergy());
    out->entropy = NAN;
    out->free_energy = NAN;
    if (!x.allFinite() || !hessian.allFinite()) {
      out->converged = false;
      out->covariance.setConstant(n, n, NAN);
      return;
    }
    llt.compute(hessian);
    out->covariance = llt.solve(Matrix::Identity(n, n));
    ErrorCovariances(out->covariance);
    double total = 0.0;
    for (int i = 0; i <= levels; ++i) {
      const Matrix& precision =
          i < levels ? net_.spec_.levels[i].precision : net_.spec_.prior_precision;
      LevelEnergy& u = out->levels[i];
      u.prediction_error = 0.5 * error[i].dot(weighted[i]);
      u.log_normaliser = LogNormaliser(i);
      u.curvature = 0.5 * precision.cwiseProduct(error_covariance[i]).sum();
      total += u.total();
    }
    out->entropy = MvGaussian(x, hessian).Entropy();
    out->free_energy = total - out->entropy;
  }

  Vector x, trial, gradient, step;
  Matrix hessian;
  Eigen::LLT<Matrix> llt;
  std::vector<Vector> activation, slope, scaled;      // per level
  std::vector<Matrix> jacobian, weighted_jacobian, product;  // per level
  std::vector<Vector> error, weighted;               // per level and the prior
  std::vector<Matrix> error_covariance;              // per level and the prior

 private:
  const PredictiveCodingNetwork& net_;
};

// ---- construction and validation ----

PredictiveCodingNetwork::PredictiveCodingNetwork(NetworkSpec spec) : spec_(std::move(spec)) {
  Build();
}

void PredictiveCodingNetwork::Build() {
  const int levels = num_levels();
  if (levels == 0) throw ModelError("predictive coding network: needs at least one level");
  const std::string top = "predictive coding network: prior";
  if (spec_.prior_mean.size() == 0) throw ModelError(top + " mean must not be empty");
  if (!spec_.prior_mean.allFinite()) throw ModelError(top + " mean must be finite");
  dims_.assign(levels + 1, 0);
  dims_[levels] = static_cast<int>(spec_.prior_mean.size());
  for (int i = levels - 1; i >= 0; --i) {
    const LevelSpec& s = spec_.levels[i];
    const std::string what = "predictive coding network: level " + std::to_string(i + 1) +
                             " (x_" + std::to_string(i) + " from x_" + std::to_string(i + 1) + ")";
    if (s.weights.cols() != dims_[i + 1])
      throw ModelError(what + ": weights must have " + std::to_string(dims_[i + 1]) +
                       " columns (the dimension of x_" + std::to_string(i + 1) + "), got " +
                       Shape(s.weights));
    if (s.weights.rows() == 0)
      throw ModelError(what + ": weights must have at least one row, got " + Shape(s.weights));
    if (!s.weights.allFinite()) throw ModelError(what + ": weights must be finite");
    dims_[i] = static_cast<int>(s.weights.rows());
    if (s.bias.size() != 0 && s.bias.size() != dims_[i])
      throw ModelError(what + ": bias must be empty or have " + std::to_string(dims_[i]) +
                       " entries, got " + std::to_string(s.bias.size()));
    if (!s.bias.allFinite()) throw ModelError(what + ": bias must be finite");
    if (FindScalarFunction(s.function) == nullptr)
      throw ModelError(what + ": unknown function \"" + s.function + "\" (expected one of " +
                       FunctionNames() + ")");
    if (s.precision.rows() != dims_[i] || s.precision.cols() != dims_[i])
      throw ModelError(what + ": precision must be " + std::to_string(dims_[i]) + "x" +
                       std::to_string(dims_[i]) + ", got " + Shape(s.precision));
  }
  if (spec_.prior_precision.rows() != dims_[levels] ||
      spec_.prior_precision.cols() != dims_[levels])
    throw ModelError(top + " precision must be " + std::to_string(dims_[levels]) + "x" +
                     std::to_string(dims_[levels]) + " (the dimension of the prior mean), got " +
                     Shape(spec_.prior_precision));
  offsets_.assign(levels + 1, 0);
  for (int l = 1; l <= levels; ++l) offsets_[l] = offsets_[l - 1] + dims_[l];
  levels_.assign(levels + 1, Level());
  for (int i = 0; i < levels; ++i) {
    levels_[i].function = FindScalarFunction(spec_.levels[i].function);
    levels_[i].linear = spec_.levels[i].function == "identity";
    levels_[i].has_bias = spec_.levels[i].bias.size() != 0;
  }
  RefreshPrecisions();
}

void PredictiveCodingNetwork::RefreshPrecisions() {
  const int levels = num_levels();
  for (int i = 0; i <= levels; ++i) {
    const bool prior = i == levels;
    const Matrix& precision = prior ? spec_.prior_precision : spec_.levels[i].precision;
    const std::string what =
        prior ? std::string("predictive coding network: prior precision")
              : "predictive coding network: level " + std::to_string(i + 1) + " (x_" +
                    std::to_string(i) + " from x_" + std::to_string(i + 1) + "): precision";
    levels_[i].log_det_precision = ValidatePositiveDefinite(precision, what);
    CheckForm(precision, prior ? spec_.prior_precision_form : spec_.levels[i].precision_form,
              what);
    levels_[i].precision_llt.compute(precision);
  }
}

void PredictiveCodingNetwork::CheckObservation(const Vector& y) const {
  if (y.size() != dims_[0])
    throw ModelError("predictive coding network: observation has dimension " +
                     std::to_string(y.size()) + ", expected " + std::to_string(dims_[0]));
  if (!y.allFinite()) throw ModelError("predictive coding network: observation must be finite");
}

void PredictiveCodingNetwork::CheckHidden(const std::vector<Vector>& x) const {
  if (static_cast<int>(x.size()) != num_levels())
    throw ModelError("predictive coding network: expected " + std::to_string(num_levels()) +
                     " hidden levels, got " + std::to_string(x.size()));
  for (int l = 1; l <= num_levels(); ++l) {
    if (x[l - 1].size() != dims_[l])
      throw ModelError("predictive coding network: x_" + std::to_string(l) + " has dimension " +
                       std::to_string(x[l - 1].size()) + ", expected " + std::to_string(dims_[l]));
    if (!x[l - 1].allFinite())
      throw ModelError("predictive coding network: x_" + std::to_string(l) + " must be finite");
  }
}

// ---- energy, prediction, inference ----

double PredictiveCodingNetwork::Energy(const Vector& y, const std::vector<Vector>& x) const {
  CheckObservation(y);
  CheckHidden(x);
  Solver solver(*this);
  for (int l = 1; l <= num_levels(); ++l) solver.x.segment(offsets_[l - 1], dims_[l]) = x[l - 1];
  return solver.Evaluate(y, solver.x);
}

Vector PredictiveCodingNetwork::EnergyGradient(const Vector& y,
                                               const std::vector<Vector>& x) const {
  CheckObservation(y);
  CheckHidden(x);
  Solver solver(*this);
  for (int l = 1; l <= num_levels(); ++l) solver.x.segment(offsets_[l - 1], dims_[l]) = x[l - 1];
  solver.Evaluate(y, solver.x);
  solver.Gradient();
  return solver.gradient;
}

std::vector<Vector> PredictiveCodingNetwork::Predict() const {
  const int levels = num_levels();
  std::vector<Vector> x(levels);
  x[levels - 1] = spec_.prior_mean;
  for (int i = levels - 1; i >= 1; --i) {
    Vector a = spec_.levels[i].weights * x[i];
    if (levels_[i].has_bias) a += spec_.levels[i].bias;
    x[i - 1] = a.unaryExpr(levels_[i].function->value);
  }
  return x;
}

Inference PredictiveCodingNetwork::Infer(const Vector& y, const InferenceOptions& options) const {
  return Infer(y, options, Predict());
}

Inference PredictiveCodingNetwork::Infer(const Vector& y, const InferenceOptions& options,
                                         const std::vector<Vector>& initial) const {
  options.Validate();
  CheckObservation(y);
  CheckHidden(initial);
  Solver solver(*this);
  for (int l = 1; l <= num_levels(); ++l)
    solver.x.segment(offsets_[l - 1], dims_[l]) = initial[l - 1];
  Inference result;
  solver.Run(y, options, &result);
  return result;
}

namespace {

/// Runs body(begin, end) over [0, count) on `num_threads` threads (0 = all cores).
template <typename Body>
void ParallelRange(int count, int num_threads, const Body& body) {
  if (num_threads == 1 || count <= 1) {
    body(0, count);
    return;
  }
  tbb::task_arena arena(num_threads == 0 ? tbb::task_arena::automatic : num_threads);
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<int>(0, count),
                      [&](const tbb::blocked_range<int>& r) { body(r.begin(), r.end()); });
  });
}

}  // namespace

std::vector<Inference> PredictiveCodingNetwork::InferBatch(const Matrix& observations,
                                                           const InferenceOptions& options,
                                                           int num_threads) const {
  options.Validate();
  if (num_threads < 0)
    throw OptionsError("InferBatch: num_threads must be >= 0, got " + std::to_string(num_threads));
  if (observations.rows() != dims_[0])
    throw ModelError("predictive coding network: observations must have " +
                     std::to_string(dims_[0]) + " rows (one column per observation), got " +
                     Shape(observations));
  for (int b = 0; b < observations.cols(); ++b) CheckObservation(observations.col(b));
  const int count = static_cast<int>(observations.cols());
  std::vector<Inference> results(count);
  Vector start(hidden_dim());
  const std::vector<Vector> prediction = Predict();
  for (int l = 1; l <= num_levels(); ++l) start.segment(offsets_[l - 1], dims_[l]) = prediction[l - 1];
  ParallelRange(count, num_threads, [&](int begin, int end) {
    Solver solver(*this);
    Vector y(dims_[0]);
    for (int b = begin; b < end; ++b) {
      y = observations.col(b);
      solver.x = start;
      solver.Run(y, options, &results[b]);
    }
  });
  return results;
}

// ---- learning ----

LearningResult PredictiveCodingNetwork::Learn(const Matrix& observations,
                                              const LearningOptions& options) {
  options.Validate();
  if (observations.rows() != dims_[0] || observations.cols() == 0)
    throw ModelError("predictive coding network: observations must have " +
                     std::to_string(dims_[0]) +
                     " rows (one column per observation) and at least one column, got " +
                     Shape(observations));
  for (int b = 0; b < observations.cols(); ++b) CheckObservation(observations.col(b));
  const int count = static_cast<int>(observations.cols());
  const int levels = num_levels();
  const int n = hidden_dim();
  const double inverse_count = 1.0 / count;

  // Warm starts: every observation's inference starts from its last mode.
  Matrix modes(n, count);
  {
    const std::vector<Vector> prediction = Predict();
    for (int l = 1; l <= levels; ++l)
      modes.block(offsets_[l - 1], 0, dims_[l], count) = prediction[l - 1].replicate(1, count);
  }
  std::vector<Inference> results(count);
  LearningResult learning;
  Solver solver(*this);
  Vector y(dims_[0]);

  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    ParallelRange(count, options.num_threads, [&](int begin, int end) {
      Solver local(*this);
      Vector observation(dims_[0]);
      for (int b = begin; b < end; ++b) {
        observation = observations.col(b);
        local.x = modes.col(b);
        local.Run(observation, options.inference, &results[b]);
      }
    });
    Epoch record;
    record.level_energies.assign(levels + 1, 0.0);
    for (int b = 0; b < count; ++b) {
      const Inference& r = results[b];
      record.free_energy += r.free_energy;
      record.entropy += r.entropy;
      for (int i = 0; i <= levels; ++i) record.level_energies[i] += r.levels[i].total();
      if (!r.converged) ++record.unconverged;
      for (int l = 1; l <= levels; ++l)
        if (r.means[l - 1].allFinite())
          modes.block(offsets_[l - 1], b, dims_[l], 1) = r.means[l - 1];
    }
    learning.epochs.push_back(record);
    if (!std::isfinite(record.free_energy)) {
      learning.message = "the free energy is not finite at epoch " + std::to_string(epoch);
      return learning;
    }
    if (epoch > 0 && options.tolerance > 0.0) {
      const double previous = learning.epochs[epoch - 1].free_energy;
      if (std::abs(previous - record.free_energy) < options.tolerance * std::abs(record.free_energy)) {
        learning.converged = true;
        learning.message = "converged";
        return learning;
      }
    }
    if (epoch + 1 == options.epochs) break;  // the last epoch only reports F

    const NetworkSpec previous_spec = spec_;

    // Weights and biases.
    if (options.learn_weights || options.learn_biases) {
      for (int i = 0; i < levels; ++i) {
        LevelSpec& s = spec_.levels[i];
        const int rows = dims_[i], cols = dims_[i + 1];
        const int z = offsets_[i];
        const bool learn_bias = options.learn_biases && levels_[i].has_bias;
        if (!options.learn_weights && !learn_bias) continue;
        if (levels_[i].linear && options.closed_form_linear) {
          // Exact M-step: [W b] = Σ E[t x̃ᵀ] (Σ E[x̃ x̃ᵀ])⁻¹ (W only, or b only, if the other is
          // held fixed).
          const int k = (options.learn_weights ? cols : 0) + (learn_bias ? 1 : 0);
          Matrix cross = Matrix::Zero(rows, k);  // Σ_b E[(t − fixed part) x̃ᵀ]
          Matrix gram = Matrix::Zero(k, k);      // Σ_b E[x̃ x̃ᵀ]
          Vector input(k), target(rows);
          for (int b = 0; b < count; ++b) {
            const Inference& r = results[b];
            const Vector& mz = r.means[i];
            target = i == 0 ? Vector(observations.col(b)) : r.means[i - 1];
            if (!options.learn_weights) target -= s.weights * mz;
            if (levels_[i].has_bias && !learn_bias) target -= s.bias;
            if (options.learn_weights) input.head(cols) = mz;
            if (learn_bias) input[k - 1] = 1.0;
            cross.noalias() += target * input.transpose();
            gram.noalias() += input * input.transpose();
            if (options.learn_weights) {
              gram.topLeftCorner(cols, cols) += r.covariance.block(z, z, cols, cols);
              if (i > 0)
                cross.leftCols(cols) += r.covariance.block(offsets_[i - 1], z, rows, cols);
            }
          }
          const Eigen::LLT<Matrix> llt(gram);
          if (llt.info() != Eigen::Success) {
            spec_ = previous_spec;
            learning.message = "level " + std::to_string(i + 1) +
                               ": the second moments of x_" + std::to_string(i + 1) +
                               " are singular; stopped at epoch " + std::to_string(epoch);
            return learning;
          }
          const Matrix solution = llt.solve(cross.transpose()).transpose();  // rows × k
          if (options.learn_weights) s.weights = solution.leftCols(cols);
          if (learn_bias) s.bias = solution.col(k - 1);
        } else {
          // The Hebbian-like rule: ΔW = (η/B) Σ_b (f'(a) ⊙ Π ε) μᵀ, with the covariance
          // correction −(η/B) Σ_b D Π (D W Σ_zz − Σ_tz) when asked for.
          Matrix weight_step = Matrix::Zero(rows, cols);
          Matrix correction(rows, cols);
          Vector bias_step = Vector::Zero(rows);
          for (int b = 0; b < count; ++b) {
            y = observations.col(b);
            solver.Evaluate(y, modes.col(b));
            solver.scaled[i] = solver.slope[i].cwiseProduct(solver.weighted[i]);
            weight_step.noalias() += solver.scaled[i] * results[b].means[i].transpose();
            bias_step += solver.scaled[i];
            if (options.covariance_correction && options.learn_weights) {
              const Matrix& sigma = results[b].covariance;
              solver.Jacobians();
              correction.noalias() = solver.jacobian[i] * sigma.block(z, z, cols, cols);
              if (i > 0) correction -= sigma.block(offsets_[i - 1], z, rows, cols);
              solver.product[i].noalias() = s.precision * correction;
              weight_step.noalias() -= solver.slope[i].asDiagonal() * solver.product[i];
            }
          }
          if (options.learn_weights) s.weights += (options.learning_rate * inverse_count) * weight_step;
          if (learn_bias) s.bias += (options.learning_rate * inverse_count) * bias_step;
        }
      }
    }

    // Precisions, in closed form given the new weights.
    if (options.learn_precisions || options.learn_prior) {
      std::vector<Matrix> scatter(levels + 1);
      for (int i = 0; i <= levels; ++i) {
        const int rows = i < levels ? dims_[i] : dims_[levels];
        scatter[i] = Matrix::Zero(rows, rows);
      }
      Vector prior_mean = spec_.prior_mean;
      if (options.learn_prior) {
        prior_mean.setZero();
        for (int b = 0; b < count; ++b) prior_mean += results[b].means[levels - 1];
        prior_mean *= inverse_count;
        spec_.prior_mean = prior_mean;
      }
      for (int b = 0; b < count; ++b) {
        y = observations.col(b);
        solver.Evaluate(y, modes.col(b));
        solver.Jacobians();
        solver.ErrorCovariances(results[b].covariance);
        for (int i = 0; i <= levels; ++i)
          scatter[i].noalias() += solver.error[i] * solver.error[i].transpose() +
                                  solver.error_covariance[i];
      }
      bool ok = true;
      std::string failed;
      if (options.learn_precisions)
        for (int i = 0; i < levels && ok; ++i) {
          ok = PrecisionFromScatter(scatter[i] * inverse_count, spec_.levels[i].precision_form,
                                    &spec_.levels[i].precision);
          if (!ok) failed = "level " + std::to_string(i + 1);
        }
      if (options.learn_prior && ok) {
        ok = PrecisionFromScatter(scatter[levels] * inverse_count, spec_.prior_precision_form,
                                  &spec_.prior_precision);
        if (!ok) failed = "the prior";
      }
      if (!ok) {
        spec_ = previous_spec;
        learning.message = failed + ": the expected squared prediction errors do not give a "
                           "positive definite precision; stopped at epoch " + std::to_string(epoch);
        return learning;
      }
    }
    try {
      RefreshPrecisions();
    } catch (const ModelError& e) {
      spec_ = previous_spec;
      RefreshPrecisions();
      learning.message = std::string(e.what()) + "; stopped at epoch " + std::to_string(epoch);
      return learning;
    }
  }
  learning.message = "ran all epochs";
  return learning;
}

// ---- sampling ----

std::vector<Matrix> PredictiveCodingNetwork::Sample(int count, uint64_t seed) const {
  if (count < 0) throw OptionsError("Sample: count must be >= 0, got " + std::to_string(count));
  const int levels = num_levels();
  size_t total = 0;
  for (int l = 0; l <= levels; ++l) total += static_cast<size_t>(dims_[l]) * count;
  const std::vector<double> normals = SplitMixNormals(seed, total + (total % 2), 0.0, 1.0);
  size_t next = 0;
  std::vector<Matrix> draws(levels + 1);
  for (int l = 0; l <= levels; ++l) draws[l].resize(dims_[l], count);
  Vector z, a;
  for (int b = 0; b < count; ++b) {
    z = Eigen::Map<const Vector>(normals.data() + next, dims_[levels]);
    next += dims_[levels];
    draws[levels].col(b) =
        spec_.prior_mean + levels_[levels].precision_llt.matrixU().solve(z);
    for (int l = levels; l >= 1; --l) {
      const int i = l - 1;
      a = spec_.levels[i].weights * draws[l].col(b);
      if (levels_[i].has_bias) a += spec_.levels[i].bias;
      z = Eigen::Map<const Vector>(normals.data() + next, dims_[i]);
      next += dims_[i];
      draws[i].col(b) = a.unaryExpr(levels_[i].function->value) +
                        levels_[i].precision_llt.matrixU().solve(z);
    }
  }
  return draws;
}

}  // namespace predictive
}  // namespace vfe
