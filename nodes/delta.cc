#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/core/format.h"
#include "vfe/core/quadrature.h"
#include "vfe/core/special.h"
#include "vfe/core/splitmix.h"
#include "vfe/distributions/gaussian.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& DeltaNodeType();

namespace {

enum Slot { kOut = 0, kIn = 1, kPrecision = 2 };

constexpr int kMax = DeltaFunction::kMaxDim;
// Stack-allocated Eigen types: dynamic sizes up to kMax, never on the heap.
using SmallVector = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMax, 1>;
using SmallMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMax, kMax>;
/// f at the 2D + 1 sigma points, one column each.
using PointMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMax, 2 * kMax + 1>;

/// The Gaussian approximation of f(in) under q(in) = N(m, Σ): E[f] ≈ mean, Cov[f] ≈
/// covariance, and f(x) ≈ map·x + offset (the message to in).
struct Expansion {
  SmallVector mean;
  SmallMatrix covariance;
  SmallMatrix map;
  SmallVector offset;
};

/// N(out | f(in), W⁻¹); the maths are in nodes.h.
class DeltaNode final : public Node {
 public:
  DeltaNode(DeltaFunction function, DeltaOptions options)
      : f_(std::move(function)), options_(options) {
    f_.Validate();
    options_.Validate();
  }

  const char* type() const override { return DeltaNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override { return DeltaNodeType().SlotNames(); }
  Family ObservedFamily(int slot, const PointMass& value) const override {
    if (slot == kPrecision) return value.is_scalar() ? Family::kGamma : Family::kWishart;
    return value.is_scalar() ? Family::kGaussian : Family::kMvGaussian;
  }
  // The expansion of f is taken around q(in): the message to in moves with in.
  bool MessageReadsOwnSlot(int slot) const override { return slot == kIn; }
  bool StepsOnFreeEnergy(int slot) const override {
    return slot == kIn && options_.approximation == DeltaApproximation::kCvi;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireDeclaredFamilies(DeltaNodeType(), slots, where);
    in_dim_ = slots[kIn].dim;
    out_dim_ = slots[kOut].dim;
    const bool any_dim = f_.in_dim == 0;
    const int f_in = any_dim ? in_dim_ : f_.in_dim, f_out = any_dim ? in_dim_ : f_.out_dim;
    if (f_in != in_dim_ || f_out != out_dim_)
      throw GraphError(where + ": the function (" + f_.description + ") maps R^" +
                       std::to_string(f_in) + " to R^" + std::to_string(f_out) + " but 'in' is " +
                       slots[kIn].variable + " of dimension " + std::to_string(in_dim_) +
                       " and 'out' is " + slots[kOut].variable + " of dimension " +
                       std::to_string(out_dim_));
    if (in_dim_ > kMax || out_dim_ > kMax)
      throw GraphError(where + ": a Delta node takes dimensions up to " + std::to_string(kMax) +
                       ", got 'in' of " + std::to_string(in_dim_) + " and 'out' of " +
                       std::to_string(out_dim_));
    hidden_dim_ = f_.matrix.size() ? static_cast<int>(f_.matrix.rows())
                  : f_.offset.size() ? static_cast<int>(f_.offset.size())
                                     : in_dim_;
    scalar_precision_ = slots[kPrecision].family == Family::kGamma;
    if (!scalar_precision_)
      RequireDim(slots[kPrecision], out_dim_, where, DimensionOf(slots[kOut]));
    // Sigma-point weights (Särkkä 2013, eq. 5.75).
    const double d = in_dim_;
    const double kappa = options_.kappa ? *options_.kappa : std::max(0.0, 3.0 - d);
    if (options_.approximation == DeltaApproximation::kUnscented && !(d + kappa > 0))
      throw ModelError(where + ": the unscented transform needs D + kappa > 0, got D = " +
                       std::to_string(in_dim_) + " and kappa = " + FormatNumber(kappa));
    const double spread = options_.alpha * options_.alpha * (d + kappa);  // D + λ
    spread_ = std::sqrt(spread);
    weight_centre_ = (spread - d) / spread;
    weight_centre_covariance_ = weight_centre_ + 1.0 - options_.alpha * options_.alpha +
                                options_.beta;
    weight_ = 0.5 / spread;
    if (options_.approximation == DeltaApproximation::kCvi) {
      int points = options_.quadrature_points;
      if (points == 0) {
        // 32 points keep E[f] and F to ~1e-12 relative where f is analytic across a few
        // posterior sds; beyond D = 2 the grid is held to 2¹⁰ points.
        points = 32;
        while (std::pow(static_cast<double>(points), in_dim_) > 1024.0) --points;
      }
      try {
        grid_ = StandardNormalProductRule(points, in_dim_);
      } catch (const ModelError& e) {
        throw GraphError(where + ": " + e.what());
      }
    }
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    const int e = out_dim_, d = in_dim_;
    Expansion ex;
    SmallMatrix ew(e, e);
    for (size_t n = begin; n < end; ++n) {
      const double* y = q[kOut].At(n);
      const double* w = q[kPrecision].At(n);
      if (slot == kPrecision) {
        Expand(q[kIn].At(n), /*map=*/false, ex);
        SmallMatrix& r = ex.covariance;  // R, built in place
        AddResidual(y, ex.mean, r);
        if (scalar_precision_) {
          eta[0] -= 0.5 * r.trace();
          eta[1] += 0.5 * e;
        } else {
          MatrixMap(eta, e, e) -= 0.5 * r;
          eta[e * e] += 0.5;
        }
        continue;
      }
      ExpectedPrecision(w, ew);
      if (slot == kIn && options_.approximation == DeltaApproximation::kCvi) {
        AddCviMessage(q[kIn].At(n), y, ew, eta);
        continue;
      }
      if (slot == kOut) {
        ExpandMean(q[kIn].At(n), ex);
        VectorMap(eta, e).noalias() += ew * ex.mean;
        MatrixMap(eta + e, e, e) -= 0.5 * ew;
      } else {
        Expand(q[kIn].At(n), /*map=*/true, ex);
        const SmallMatrix& a = ex.map;
        SmallMatrix ew_a(e, d);
        ew_a.noalias() = ew * a;
        SmallVector residual = ConstVectorMap(y, e) - ex.offset;
        VectorMap(eta, d).noalias() += ew_a.transpose() * residual;
        MatrixMap(eta + d, d, d).noalias() -= 0.5 * (a.transpose() * ew_a);
      }
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    const int e = out_dim_;
    Expansion ex;
    SmallMatrix ew(e, e);
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const double* y = q[kOut].At(n);
      const double log_det = ExpectedPrecision(q[kPrecision].At(n), ew);
      double trace = 0.0;  // tr(E[W] R)
      if (options_.energy == DeltaEnergy::kMonteCarlo) {
        trace = MonteCarloTrace(n, q[kIn].At(n), y, ew);
      } else {
        Expand(q[kIn].At(n), /*map=*/false, ex);
        AddResidual(y, ex.mean, ex.covariance);
        trace = ew.cwiseProduct(ex.covariance).sum();
      }
      energy += 0.5 * (e * kLog2Pi - log_det) + 0.5 * trace;
    }
    return energy;
  }

  /// log N(y | f(x), W⁻¹) at one point: the Gaussian family's LogDensity for scalars; for
  /// vectors the same density written out (MvGaussian's constructor allocates and validates).
  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    const int e = out_dim_;
    const double* y = q[kOut].At(n);
    const double* w = q[kPrecision].At(n);
    SmallVector fx(e);
    Evaluate(q[kIn].At(n), fx.data());
    if (!fx.allFinite()) return -std::numeric_limits<double>::infinity();
    if (e == 1) return Gaussian(fx[0], w[0]).LogDensity(y[0]);
    const SmallVector r = ConstVectorMap(y, e) - fx;
    if (scalar_precision_) return 0.5 * e * (std::log(w[0]) - kLog2Pi) - 0.5 * w[0] * r.squaredNorm();
    const Eigen::LLT<SmallMatrix> llt(SmallMatrix(ConstMatrixMap(w, e, e)));
    if (llt.info() != Eigen::Success) return std::numeric_limits<double>::quiet_NaN();
    const double log_det = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
    const SmallVector lr = llt.matrixU() * r;  // rᵀ W r = |U r|², W = UᵀU
    return 0.5 * (log_det - e * kLog2Pi) - 0.5 * lr.squaredNorm();
  }

 private:
  // ---- f and its Jacobian --------------------------------------------------------------

  /// f(x) into fx (out_dim_ numbers). The matrices are small (≤ 16): coefficient-wise lazy
  /// products skip the dispatch of Eigen's blocked kernels, which dominates at these sizes.
  void Evaluate(const double* x, double* fx) const {
    if (f_.value) {
      f_.value(x, fx);
      return;
    }
    const int d = in_dim_, h = hidden_dim_, e = out_dim_;
    const ConstVectorMap in(x, d);
    SmallVector z(h);
    if (f_.matrix.size()) {
      z.noalias() = f_.matrix.lazyProduct(in);
    } else {
      z = in;
    }
    if (f_.offset.size()) z += f_.offset;
    for (int i = 0; i < h; ++i) z[i] = f_.elementwise->value(z[i]);
    VectorMap out(fx, e);
    if (f_.output_matrix.size()) {
      out.noalias() = f_.output_matrix.lazyProduct(z);
    } else {
      out = z;
    }
    if (f_.linear.size()) out.noalias() += f_.linear.lazyProduct(in);
  }

  /// The E x D Jacobian at x into `jacobian`: the callable's, central differences (step
  /// ε^(1/3)·max(1, |x_j|), error O(h²)), or L + C·diag(g'(A x + b))·A for the named form.
  void EvaluateJacobian(const double* x, SmallMatrix& jacobian) const {
    const int d = in_dim_, h = hidden_dim_, e = out_dim_;
    jacobian.resize(e, d);
    if (f_.value && f_.jacobian) {
      f_.jacobian(x, jacobian.data());
      return;
    }
    if (f_.value) {
      SmallVector point = ConstVectorMap(x, d), plus(e), minus(e);
      for (int j = 0; j < d; ++j) {
        const double step = 6.0554544523933395e-06 * std::max(1.0, std::abs(x[j]));
        point[j] = x[j] + step;
        f_.value(point.data(), plus.data());
        point[j] = x[j] - step;
        f_.value(point.data(), minus.data());
        point[j] = x[j];
        jacobian.col(j) = (plus - minus) / (2.0 * step);
      }
      return;
    }
    const ConstVectorMap in(x, d);
    SmallVector z(h);
    if (f_.matrix.size()) {
      z.noalias() = f_.matrix.lazyProduct(in);
    } else {
      z = in;
    }
    if (f_.offset.size()) z += f_.offset;
    for (int i = 0; i < h; ++i) z[i] = f_.elementwise->derivative(z[i]);
    SmallMatrix inner(h, d);  // diag(g'(z))·A
    if (f_.matrix.size()) {
      inner = z.asDiagonal() * f_.matrix;
    } else {
      inner = z.asDiagonal() * SmallMatrix::Identity(h, d);
    }
    if (f_.output_matrix.size()) {
      jacobian.noalias() = f_.output_matrix.lazyProduct(inner);
    } else {
      jacobian = inner;
    }
    if (f_.linear.size()) jacobian += f_.linear;
  }

  // ---- The approximations --------------------------------------------------------------

  /// m and Σ = E[xxᵀ] − m mᵀ of q(in) from its moments.
  void InputMoments(const double* x, SmallVector& m, SmallMatrix& sigma) const {
    const int d = in_dim_;
    m = ConstVectorMap(x, d);
    sigma = ConstMatrixMap(x + d, d, d);
    sigma.noalias() -= m * m.transpose();
  }

  /// A square root S (S Sᵀ = Σ) into `root`: the Cholesky factor (lower triangular, returns
  /// true), or for a singular Σ (an observed input) P Lᵀ√D from LDLᵀ with D clipped at 0
  /// (returns false: S is then not triangular).
  static bool SquareRoot(const SmallMatrix& sigma, SmallMatrix& root) {
    const Eigen::LLT<SmallMatrix> llt(sigma);
    if (llt.info() == Eigen::Success) {
      root = llt.matrixL();
      return true;
    }
    const Eigen::LDLT<SmallMatrix> ldlt(sigma);
    const SmallMatrix l = ldlt.matrixL();
    const SmallVector scale = ldlt.vectorD().cwiseMax(0.0).cwiseSqrt();
    root = l * scale.asDiagonal();
    root = ldlt.transpositionsP().transpose() * root;
    return false;
  }

  /// E[f] only (the message to out).
  void ExpandMean(const double* x, Expansion& ex) const {
    if (options_.approximation == DeltaApproximation::kLinearise) {
      ex.mean.resize(out_dim_);
      Evaluate(x, ex.mean.data());
      return;
    }
    Expand(x, /*map=*/false, ex);
  }

  /// The expansion of f under q(in) whose moments are at x; `map` asks for A and b too.
  void Expand(const double* x, bool map, Expansion& ex) const {
    const int d = in_dim_, e = out_dim_;
    SmallVector m;
    SmallMatrix sigma;
    InputMoments(x, m, sigma);
    ex.mean.resize(e);
    if (options_.approximation == DeltaApproximation::kLinearise) {
      Evaluate(m.data(), ex.mean.data());
      EvaluateJacobian(m.data(), ex.map);
      SmallMatrix j_sigma(e, d);
      j_sigma.noalias() = ex.map * sigma;
      ex.covariance.resize(e, e);
      ex.covariance.noalias() = j_sigma * ex.map.transpose();
      if (map) {
        ex.offset = ex.mean;
        ex.offset.noalias() -= ex.map * m;
      }
      return;
    }
    if (options_.approximation == DeltaApproximation::kCvi) {
      QuadratureMoments(m, sigma, ex);
      return;
    }
    // Unscented: f at m (column 0) and at m ± √(D + λ)·S_j (columns 1 + 2j and 2 + 2j).
    SmallMatrix root;
    const bool triangular = SquareRoot(sigma, root);
    PointMatrix values(e, 2 * d + 1);
    SmallVector point(d);
    Evaluate(m.data(), values.col(0).data());
    for (int j = 0; j < d; ++j) {
      point = m + spread_ * root.col(j);
      Evaluate(point.data(), values.col(1 + 2 * j).data());
      point = m - spread_ * root.col(j);
      Evaluate(point.data(), values.col(2 + 2 * j).data());
    }
    // Two passes: the mean, then the covariance about it.
    ex.mean = weight_centre_ * values.col(0);
    for (int i = 1; i <= 2 * d; ++i) ex.mean += weight_ * values.col(i);
    SmallVector deviation = values.col(0) - ex.mean;
    ex.covariance.resize(e, e);
    ex.covariance.noalias() = weight_centre_covariance_ * deviation * deviation.transpose();
    for (int i = 1; i <= 2 * d; ++i) {
      deviation = values.col(i) - ex.mean;
      ex.covariance.noalias() += weight_ * deviation * deviation.transpose();
    }
    if (!map) return;
    // Statistical linear regression: A = Cov[f, x] Σ⁻¹. With the divided differences
    // Δ_j = (f(χ₊ⱼ) − f(χ₋ⱼ)) / (2√(D + λ)), Cov[f, x] = Δ Sᵀ, so A = Δ S⁻¹: A S = Δ.
    ex.map.resize(e, d);
    for (int j = 0; j < d; ++j)
      ex.map.col(j) = (values.col(1 + 2 * j) - values.col(2 + 2 * j)) / (2.0 * spread_);
    if (triangular) {
      root.triangularView<Eigen::Lower>().solveInPlace<Eigen::OnTheRight>(ex.map);
    } else {
      ex.map.setConstant(std::numeric_limits<double>::quiet_NaN());  // Σ singular
    }
    ex.offset = ex.mean;
    ex.offset.noalias() -= ex.map * m;
  }

  /// E[f] and Cov[f] by the product rule, in one pass about c = f(m) (which keeps Cov[f]'s
  /// digits when it is small next to E[f]): with δᵢ = f(m + S zᵢ) − c,
  /// E[f] = c + Σ wᵢ δᵢ and Cov[f] = Σ wᵢ δᵢδᵢᵀ − (Σ wᵢ δᵢ)(Σ wᵢ δᵢ)ᵀ.
  void QuadratureMoments(const SmallVector& m, const SmallMatrix& sigma, Expansion& ex) const {
    const int d = in_dim_, e = out_dim_;
    SmallMatrix root;
    SquareRoot(sigma, root);
    SmallVector centre(e), point(d), delta(e), sum = SmallVector::Zero(e);
    SmallMatrix second = SmallMatrix::Zero(e, e);
    Evaluate(m.data(), centre.data());
    for (int i = 0; i < grid_.size(); ++i) {
      point = m;
      point.noalias() += root * ConstVectorMap(grid_.Point(i), d);
      Evaluate(point.data(), delta.data());
      delta -= centre;
      const double w = grid_.weights[i];
      sum += w * delta;
      second.noalias() += w * delta * delta.transpose();
    }
    ex.mean = centre + sum;
    ex.covariance = second;
    ex.covariance.noalias() -= sum * sum.transpose();
  }

  /// The CVI message to in (nodes.h) of factor n into eta, q(in)'s moments at x, E[y] at y.
  void AddCviMessage(const double* x, const double* y, const SmallMatrix& ew, double* eta) const {
    const int d = in_dim_, e = out_dim_;
    SmallVector m;
    SmallMatrix sigma, root, jacobian;
    InputMoments(x, m, sigma);
    const Eigen::LLT<SmallMatrix> llt(sigma);
    if (llt.info() != Eigen::Success) {
      // Only a hidden in receives this message, and its covariance is positive definite.
      VectorMap(eta, d).setConstant(std::numeric_limits<double>::quiet_NaN());
      return;
    }
    root = llt.matrixL();
    SmallVector point(d), fx(e), gradient(d), mean_gradient = SmallVector::Zero(d);
    SmallMatrix z_gradient = SmallMatrix::Zero(d, d);  // E[z ∇gᵀ]
    const ConstVectorMap ey(y, e);
    for (int i = 0; i < grid_.size(); ++i) {
      const ConstVectorMap z(grid_.Point(i), d);
      point = m;
      point.noalias() += root * z;
      Evaluate(point.data(), fx.data());
      EvaluateJacobian(point.data(), jacobian);
      fx = ey - fx;
      gradient.noalias() = jacobian.transpose() * (ew * fx);
      const double w = grid_.weights[i];
      mean_gradient += w * gradient;
      z_gradient.noalias() += w * z * gradient.transpose();
    }
    // E[∇²g] = S⁻ᵀ E[z ∇gᵀ], symmetrised (the rule's error leaves it not exactly symmetric).
    root.transpose().triangularView<Eigen::Upper>().solveInPlace(z_gradient);
    const SmallMatrix hessian = 0.5 * (z_gradient + z_gradient.transpose());
    VectorMap(eta, d).noalias() += mean_gradient - hessian * m;
    MatrixMap(eta + d, d, d) += 0.5 * hessian;
  }

  // ---- Energy pieces -------------------------------------------------------------------

  /// Turns Cov[f] in `r` into R = E[yyᵀ] − E[y] μᵀ − μ E[y]ᵀ + μ μᵀ + Cov[f].
  void AddResidual(const double* y, const SmallVector& mean, SmallMatrix& r) const {
    const int e = out_dim_;
    const ConstVectorMap ey(y, e);
    r += ConstMatrixMap(y + e, e, e);
    r.noalias() -= ey * mean.transpose();
    r.noalias() -= mean * ey.transpose();
    r.noalias() += mean * mean.transpose();
  }

  /// E[W] into ew; returns E[log|W|].
  double ExpectedPrecision(const double* w, SmallMatrix& ew) const {
    const int e = out_dim_;
    if (scalar_precision_) {
      ew = w[0] * SmallMatrix::Identity(e, e);
      return e * w[1];
    }
    ew = ConstMatrixMap(w, e, e);
    return w[e * e];
  }

  /// tr(E[W] E[(y − f(x))(y − f(x))ᵀ]) with E[f] and E[fᵀ E[W] f] averaged over `samples`
  /// draws x = m + S z, z standard normal by Box–Muller on SplitMix64, seeded by
  /// (seed, n) so that factor n sees the same draws in every sweep and on every thread.
  double MonteCarloTrace(size_t n, const double* x, const double* y, const SmallMatrix& ew) const {
    const int d = in_dim_, e = out_dim_;
    SmallVector m;
    SmallMatrix sigma, root;
    InputMoments(x, m, sigma);
    SquareRoot(sigma, root);
    SplitMix64 rng(SplitMix64(options_.seed ^ (0xD1B54A32D192ED03ULL * (n + 1))).Next());
    SmallVector z(d), point(d), fx(e), sum_f = SmallVector::Zero(e);
    double sum_quadratic = 0.0, spare = 0.0;
    bool has_spare = false;
    const double two_pi = 6.283185307179586476925;
    for (int s = 0; s < options_.samples; ++s) {
      for (int j = 0; j < d; ++j) {
        if (has_spare) {
          z[j] = spare;
          has_spare = false;
          continue;
        }
        const double radius = std::sqrt(-2.0 * std::log(rng.Uniform()));
        const double angle = two_pi * rng.Uniform();
        z[j] = radius * std::cos(angle);
        spare = radius * std::sin(angle);
        has_spare = true;
      }
      point = m;
      point.noalias() += root * z;
      Evaluate(point.data(), fx.data());
      sum_f += fx;
      sum_quadratic += fx.dot(ew * fx);
    }
    const double samples = options_.samples;
    const ConstVectorMap ey(y, e);
    return ew.cwiseProduct(ConstMatrixMap(y + e, e, e)).sum() -
           2.0 * ey.dot(ew * sum_f) / samples + sum_quadratic / samples;
  }

  DeltaFunction f_;
  DeltaOptions options_;
  int in_dim_ = 1, out_dim_ = 1, hidden_dim_ = 1;
  bool scalar_precision_ = true;
  double spread_ = 1.0;  // √(D + λ)
  double weight_centre_ = 0.0, weight_centre_covariance_ = 0.0, weight_ = 0.5;
  ProductRule grid_;  ///< cvi's rule over in
};

}  // namespace

std::unique_ptr<Node> MakeDeltaNode(DeltaFunction function, DeltaOptions options) {
  return std::make_unique<DeltaNode>(std::move(function), options);
}


namespace {

/// The function names a Delta factor takes: the scalar functions, then "affine" (the identity
/// after the affine map).
std::vector<std::string> DeltaFunctionNames() {
  std::vector<std::string> names;
  int count = 0;
  const ScalarFunction* all = ScalarFunctions(&count);
  for (int i = 0; i < count; ++i) names.push_back(all[i].name);
  names.push_back("affine");
  return names;
}

/// The Delta factory: f(x) = L·x + C·g(A·x + b) ("function" g, "matrix" A, "offset" b,
/// "output_matrix" C, "linear" L), checked against the dimensions of 'in' (D) and 'out' (E),
/// and the options of its approximation.
std::unique_ptr<Node> MakeDeltaFromArguments(const NodeArguments& a) {
  const int in_dim = a.dim("in"), out_dim = a.dim("out");
  const std::string name = a.name("function");
  const bool affine = name == "affine";
  if (affine && !a.given("matrix") && !a.given("offset"))
    a.Fail("function", "the affine function needs 'matrix' and/or 'offset' (f(x) = matrix * x "
                       "+ offset)");
  const std::string in_text =
      "'in' is " + a.describe("in") + " of dimension " + std::to_string(in_dim);
  const std::string out_text =
      "'out' is " + a.describe("out") + " of dimension " + std::to_string(out_dim);
  auto shape = [](const Matrix& m) {
    return std::to_string(m.rows()) + "x" + std::to_string(m.cols());
  };
  DeltaFunction f;
  f.elementwise = FindScalarFunction(affine ? "identity" : name);
  f.description = name;
  f.in_dim = in_dim;
  int hidden = in_dim;  // H, the dimension g works in
  if (a.given("matrix")) {
    f.matrix = a.matrix("matrix");
    if (f.matrix.cols() != in_dim)
      a.Fail("matrix", "expected a matrix of " + std::to_string(in_dim) + " columns, found " +
                           shape(f.matrix) + ": " + in_text);
    hidden = static_cast<int>(f.matrix.rows());
  }
  if (a.given("offset")) {
    f.offset = a.vector("offset");
    if (f.offset.size() != hidden)
      a.Fail("offset", "expected " + std::to_string(hidden) + " numbers, found " +
                           std::to_string(f.offset.size()) + ": " +
                           (f.matrix.size() ? "'matrix' has " + std::to_string(hidden) + " rows"
                                            : in_text));
  }
  int e = hidden;
  if (a.given("output_matrix")) {
    f.output_matrix = a.matrix("output_matrix");
    if (f.output_matrix.cols() != hidden)
      a.Fail("output_matrix", "expected a matrix of " + std::to_string(hidden) +
                                  " columns (the dimension g works in), found " +
                                  shape(f.output_matrix));
    e = static_cast<int>(f.output_matrix.rows());
  }
  if (a.given("linear")) {
    f.linear = a.matrix("linear");
    if (f.linear.rows() != out_dim || f.linear.cols() != in_dim)
      a.Fail("linear", "expected a " + std::to_string(out_dim) + "x" + std::to_string(in_dim) +
                           " matrix, found " + shape(f.linear) + ": " + out_text + " and " +
                           in_text);
  }
  if (e != out_dim) {
    const std::string key = a.given("output_matrix") ? "output_matrix"
                            : a.given("matrix")      ? "matrix"
                            : a.given("offset")      ? "offset"
                                                     : "in";
    a.Fail(key, "f maps R^" + std::to_string(in_dim) + " to R^" + std::to_string(e) + " but " +
                    out_text +
                    (key == "in" ? "; an elementwise function keeps the dimension (add a 'matrix')"
                                 : ""));
  }
  // Without a matrix or an offset the output matrix and linear term still need H: a zero
  // offset of dimension D states it.
  if (!f.matrix.size() && !f.offset.size()) f.offset = Vector::Zero(hidden);
  f.out_dim = out_dim;
  if (std::max({hidden, in_dim, out_dim}) > DeltaFunction::kMaxDim)
    a.Fail("in", "a Delta node takes dimensions up to " + std::to_string(DeltaFunction::kMaxDim) +
                     ", found 'in' of " + std::to_string(in_dim) + ", 'out' of " +
                     std::to_string(out_dim) + " and g working in " + std::to_string(hidden));

  DeltaOptions options;
  const bool unscented = a.name("approximation") == "unscented";
  const bool cvi = a.name("approximation") == "cvi";
  options.approximation = unscented ? DeltaApproximation::kUnscented
                          : cvi     ? DeltaApproximation::kCvi
                                    : DeltaApproximation::kLinearise;
  if (a.given("quadrature_points")) {
    if (!cvi)
      a.Fail("quadrature_points", "only the cvi approximation takes 'quadrature_points' (add "
                                  "\"approximation\": \"cvi\")");
    if (a.integer("quadrature_points") > kMaxQuadraturePoints)
      a.Fail("quadrature_points", "expected an integer in [1, " +
                                      std::to_string(kMaxQuadraturePoints) + "], got " +
                                      std::to_string(a.integer("quadrature_points")));
    options.quadrature_points = static_cast<int>(a.integer("quadrature_points"));
  }
  for (const char* key : {"alpha", "beta", "kappa"})
    if (a.given(key) && !unscented)
      a.Fail(key, std::string("only the unscented approximation takes '") + key +
                      "' (add \"approximation\": \"unscented\")");
  options.alpha = a.number("alpha");
  options.beta = a.number("beta");
  if (options.beta < 0)
    a.Fail("beta", "expected a number >= 0, found " + FormatNumber(options.beta));
  if (a.given("kappa")) {
    options.kappa = a.number("kappa");
    if (!(in_dim + *options.kappa > 0))
      a.Fail("kappa", "expected kappa > -" + std::to_string(in_dim) + " (D + kappa > 0: " +
                          in_text + "), found " + FormatNumber(*options.kappa));
  }
  const bool monte_carlo = a.name("energy") == "monte_carlo";
  options.energy = monte_carlo ? DeltaEnergy::kMonteCarlo : DeltaEnergy::kApproximation;
  for (const char* key : {"samples", "seed"})
    if (a.given(key) && !monte_carlo)
      a.Fail(key, std::string("only a Monte Carlo energy takes '") + key +
                      "' (add \"energy\": \"monte_carlo\")");
  if (a.number("samples") > INT_MAX)
    a.Fail("samples", "expected a positive integer (at most " + std::to_string(INT_MAX) +
                          "), found " + FormatNumber(a.number("samples")));
  options.samples = static_cast<int>(a.integer("samples"));
  options.seed = static_cast<uint64_t>(a.number("seed"));
  return MakeDeltaNode(std::move(f), options);
}

}  // namespace

const NodeType& DeltaNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Delta";
    t.summary = "out ~ N(f(in), precision⁻¹) with a nonlinear f(x) = linear·x + "
                "output_matrix·g(matrix·x + offset)";
    t.formula = "U = (E/2) log 2π − ½ E[log|W|] + ½ tr(E[W] R), R = E[(out − f(in))(out − "
                "f(in))ᵀ] by linearisation, the unscented transform or quadrature (cvi)";
    Parameter function = Constant("function", "g, applied elementwise", ConstantKind::kName);
    function.choices = DeltaFunctionNames();
    Parameter approximation = Optional(
        Constant("approximation", "how f(in) is approximated under q(in)", ConstantKind::kName),
        "linearise");
    approximation.choices = {"linearise", "unscented", "cvi"};
    Parameter energy =
        Optional(Constant("energy", "how U is evaluated", ConstantKind::kName), "approximation");
    energy.choices = {"approximation", "monte_carlo"};
    t.parameters = {
        Variable("out", "the E-vector (a scalar when E = 1)",
                 {Family::kGaussian, Family::kMvGaussian}),
        NotConjugate(VariableOrConstant("in", "the D-vector f is applied to",
                                        {Family::kGaussian, Family::kMvGaussian},
                                        ConstantKind::kValue)),
        VariableOrConstant("precision", "W: a Wishart matrix, or τ·I with τ a Gamma variable",
                           {Family::kWishart, Family::kGamma}, ConstantKind::kPrecision),
        function,
        Optional(Constant("matrix", "A (H x D) before g", ConstantKind::kMatrix)),
        Optional(Constant("offset", "b (H) before g", ConstantKind::kValue)),
        Optional(Constant("output_matrix", "C (E x H) after g", ConstantKind::kMatrix)),
        Optional(Constant("linear", "L (E x D): a term L·x added to f", ConstantKind::kMatrix)),
        approximation,
        Optional(Constant("alpha", "the sigma points' spread (unscented)",
                          ConstantKind::kPositiveNumber), "1"),
        Optional(Constant("beta", "the centre's covariance weight term, >= 0 (unscented)",
                          ConstantKind::kNumber), "0"),
        Optional(Constant("kappa", "the secondary spread (unscented; default max(0, 3 − D))",
                          ConstantKind::kNumber)),
        energy,
        Optional(Constant("samples", "draws per factor (Monte Carlo energy)",
                          ConstantKind::kPositiveInteger), "1000"),
        Optional(Constant("seed", "the draws' seed (Monte Carlo energy)", ConstantKind::kCount),
                 "0"),
        Optional(Constant("quadrature_points",
                          "Gauss–Hermite points per dimension of in (cvi); default 32 for D ≤ 2, "
                          "else at most 2¹⁰ grid points",
                          ConstantKind::kPositiveInteger))};
    t.make = &MakeDeltaFromArguments;
    t.exact_energy = false;
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "x", "family": "Gaussian"},
    {"name": "tau", "family": "Gamma"},
    {"name": "y", "observed": [0.4, 0.9, 0.6]}
  ],
  "factors": [
    {"node": "Gaussian", "out": "x", "mean": 0.0, "precision": 1.0},
    {"node": "Gamma", "out": "tau", "shape": 4.0, "rate": 1.0},
    {"node": "Delta", "for": {"i": [0, 3]}, "out": "y[i]", "in": "x", "precision": "tau",
     "function": "tanh", "matrix": [[1.5]], "offset": 0.2}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
