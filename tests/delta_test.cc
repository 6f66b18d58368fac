// The Delta node (out = f(in) + Gaussian noise): its unscented and linearised moments against
// numerical integration and a textbook sigma-point transform written here, the affine case
// against LinearGaussian, the linearised message against a hand derivation, the Monte Carlo
// energy against quadrature, LogFactor against the density, a posterior against a grid, the
// JSON form and its errors, and the pendulum example's JSON twin.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tests/testing/allocation_counter.h"
#include "tests/testing/expect.h"
#include "tests/testing/textbook.h"
#include "vfe/core/special.h"
#include "vfe/core/splitmix.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using testing::ErrorMessage;
using testing::ExpectMatrixNear;
using testing::kLogTwoPi;
using testing::LoadError;
using testing::Scale;

// ---- Moments in the engine's flat layouts (DESIGN §2) -----------------------------------------

std::vector<double> GaussianMoments(double mean, double variance) {
  return {mean, mean * mean + variance};
}
std::vector<double> MvGaussianMoments(const Vector& mean, const Matrix& covariance) {
  const int d = static_cast<int>(mean.size());
  std::vector<double> t(d + d * d);
  VectorMap(t.data(), d) = mean;
  MatrixMap(t.data() + d, d, d) = covariance + mean * mean.transpose();
  return t;
}
/// E[τ], E[log τ] of Gamma(shape, rate) (Bishop B.27, B.30).
std::vector<double> GammaMoments(double shape, double rate) {
  return {shape / rate, Digamma(shape) - std::log(rate)};
}
/// E[W] = ν V and E[log|W|] = Σ ψ((ν + 1 − i)/2) + D log 2 + log|V| (Bishop B.80, B.81).
std::vector<double> WishartMoments(double dof, const Matrix& scale) {
  const int d = static_cast<int>(scale.rows());
  std::vector<double> t(d * d + 1);
  MatrixMap(t.data(), d, d) = dof * scale;
  double log_det = d * std::log(2.0) + std::log(scale.determinant());
  for (int i = 1; i <= d; ++i) log_det += Digamma(0.5 * (dof + 1 - i));
  t[d * d] = log_det;
  return t;
}

/// One factor of a node, bound by hand on given moments (every slot shared).
class OneFactor {
 public:
  OneFactor(std::unique_ptr<Node> node, const std::vector<Family>& families,
            const std::vector<int>& dims, std::vector<std::vector<double>> moments,
            const std::vector<bool>& observed = {false, false, false})
      : node_(std::move(node)), moments_(std::move(moments)) {
    std::vector<SlotInfo> infos;
    const std::vector<std::string> names = node_->slot_names();
    int max_dim = 1;
    for (size_t s = 0; s < families.size(); ++s) {
      SlotInfo info;
      info.name = names[s];
      info.family = families[s];
      info.dim = dims[s];
      info.shared = true;
      info.observed = observed[s];
      info.variable = "variable '" + names[s] + "'";
      infos.push_back(info);
      max_dim = std::max(max_dim, dims[s]);
      families_.push_back(families[s]);
      dims_.push_back(dims[s]);
    }
    node_->Bind(infos, 1, "plate 'test'");
    for (const std::vector<double>& m : moments_) {
      SlotView view;
      view.data = m.data();
      views_.push_back(view);
    }
    views_.push_back(SlotView{});
    ws_.Resize(max_dim);
    node_->Prepare(views_.data(), 1);
  }
  /// The message to `slot`, added to an η that starts at 0.25 (so that overwriting shows).
  Vector Message(int slot) {
    Vector eta = Vector::Constant(StatSize(families_[slot], dims_[slot]), 0.25);
    node_->AccumulateMessage(slot, 0, 1, views_.data(), eta.data(), ws_);
    return (eta.array() - 0.25).matrix();
  }
  /// Adds the message to `slot` to `eta` (no allocation of its own).
  void MessageInto(int slot, double* eta) {
    node_->AccumulateMessage(slot, 0, 1, views_.data(), eta, ws_);
  }
  double Energy() { return node_->AverageEnergy(0, 1, views_.data(), ws_); }
  double LogFactor() { return node_->LogFactor(0, views_.data(), ws_); }

 private:
  std::unique_ptr<Node> node_;
  std::vector<std::vector<double>> moments_;
  std::vector<Family> families_;
  std::vector<int> dims_;
  std::vector<SlotView> views_;
  Workspace ws_;
};

Family GaussianFamily(int dim) { return dim == 1 ? Family::kGaussian : Family::kMvGaussian; }

/// (E[f], E[f fᵀ]) of a Delta node under q(in) = N(m, Σ), read from its messages: with W = I
/// (a constant), the message to out is (E[f], −I/2); with out observed at 0, the message to a
/// Wishart precision is (−½ E[f fᵀ], ½).
struct FMoments {
  Vector mean;
  Matrix second;
};
FMoments NodeMoments(const std::function<std::unique_ptr<Node>()>& make, const Vector& m,
                     const Matrix& cov, int e) {
  const int d = static_cast<int>(m.size());
  const std::vector<double> in = d == 1 ? GaussianMoments(m[0], cov(0, 0)) : MvGaussianMoments(m, cov);
  const Matrix identity = Matrix::Identity(e, e);
  FMoments result;
  // A constant W = I: its moments are I and log|I| = 0.
  std::vector<double> w(e * e + 1, 0.0);
  MatrixMap(w.data(), e, e) = identity;
  OneFactor to_out(make(), {GaussianFamily(e), GaussianFamily(d), Family::kWishart}, {e, d, e},
                   {e == 1 ? GaussianMoments(0.0, 1.0) : MvGaussianMoments(Vector::Zero(e), identity),
                    in, w},
                   {false, false, true});
  result.mean = to_out.Message(0).head(e);
  const std::vector<double> zero_out = e == 1 ? GaussianMoments(0.0, 0.0)
                                              : MvGaussianMoments(Vector::Zero(e), Matrix::Zero(e, e));
  OneFactor to_w(make(), {GaussianFamily(e), GaussianFamily(d), Family::kWishart}, {e, d, e},
                 {zero_out, in, WishartMoments(3.0, identity)}, {true, false, false});
  const Vector eta = to_w.Message(2);
  result.second = -2.0 * Eigen::Map<const Matrix>(eta.data(), e, e);
  EXPECT_NEAR(eta[e * e], 0.5, 1e-15);
  return result;
}

/// E[g(x)] for x ~ N(m, Σ) by the trapezoid rule in whitened coordinates (x = m + L z):
/// 1601 points per axis over z ∈ [−10, 10]. For the smooth functions here the error is far
/// below 1e-12 (the rule converges geometrically for analytic integrands, and the Gaussian
/// tail beyond 10 sd is below 1e-22).
template <class G>
Matrix Quadrature(const Vector& m, const Matrix& cov, int rows, int cols, G g) {
  const int d = static_cast<int>(m.size());
  const Matrix l = cov.llt().matrixL();
  const int points = 1601;
  const double h = 20.0 / (points - 1);
  std::vector<double> z(points), w(points);
  for (int i = 0; i < points; ++i) {
    z[i] = -10.0 + i * h;
    w[i] = h * std::exp(-0.5 * z[i] * z[i]) / std::sqrt(2.0 * M_PI);
  }
  Matrix sum = Matrix::Zero(rows, cols);
  if (d == 1) {
    for (int i = 0; i < points; ++i) sum += w[i] * g(Vector::Constant(1, m[0] + l(0, 0) * z[i]));
  } else {
    for (int i = 0; i < points; ++i)
      for (int j = 0; j < points; ++j)
        sum += w[i] * w[j] * g(Vector(m + l * Vector((Vector(2) << z[i], z[j]).finished())));
  }
  return sum;
}

/// The unscented transform as in Särkkä (2013), Algorithm 5.14, written independently of the
/// node: sigma points m, m ± √(D + λ) L_j (L the Cholesky factor), λ = α²(D + κ) − D,
/// W₀ᵐ = λ/(D + λ), W₀ᶜ = W₀ᵐ + 1 − α² + β, Wᵢ = 1/(2(D + λ)).
FMoments TextbookUnscented(const std::function<Vector(const Vector&)>& f, const Vector& m,
                           const Matrix& cov, double alpha, double beta, double kappa) {
  const int d = static_cast<int>(m.size());
  const double lambda = alpha * alpha * (d + kappa) - d;
  const Matrix l = cov.llt().matrixL();
  std::vector<Vector> points = {m};
  for (int j = 0; j < d; ++j) points.push_back(m + std::sqrt(d + lambda) * l.col(j));
  for (int j = 0; j < d; ++j) points.push_back(m - std::sqrt(d + lambda) * l.col(j));
  std::vector<double> wm(points.size(), 0.5 / (d + lambda)), wc = wm;
  wm[0] = lambda / (d + lambda);
  wc[0] = wm[0] + 1 - alpha * alpha + beta;
  Vector mean = Vector::Zero(f(m).size());
  for (size_t i = 0; i < points.size(); ++i) mean += wm[i] * f(points[i]);
  Matrix cov_f = Matrix::Zero(mean.size(), mean.size());
  for (size_t i = 0; i < points.size(); ++i) {
    const Vector r = f(points[i]) - mean;
    cov_f += wc[i] * r * r.transpose();
  }
  return {mean, cov_f + mean * mean.transpose()};
}

/// A function for the moment tests: the node's form, and the same f written here.
struct FunctionCase {
  std::string name;
  DeltaFunction function;
  std::function<Vector(const Vector&)> f;
  Vector mean;
  Matrix covariance;
  bool cubic = false;  // a polynomial of degree ≤ 3: the unscented E[f] is exact
};

std::vector<FunctionCase> FunctionCases() {
  std::vector<FunctionCase> cases;
  auto scalar = [](double mean, double variance) {
    return std::make_pair(Vector::Constant(1, mean), Matrix::Constant(1, 1, variance));
  };
  auto add = [&](const std::string& name, DeltaFunction function,
                 std::function<Vector(const Vector&)> f, std::pair<Vector, Matrix> q, bool cubic) {
    cases.push_back({name, std::move(function), std::move(f), q.first, q.second, cubic});
  };
  add("tanh", DeltaFunction::Named(*FindScalarFunction("tanh")),
      [](const Vector& x) { return Vector::Constant(1, std::tanh(x[0])); }, scalar(0.4, 0.09),
      false);
  add("sin", DeltaFunction::Named(*FindScalarFunction("sin")),
      [](const Vector& x) { return Vector::Constant(1, std::sin(x[0])); }, scalar(0.9, 0.04),
      false);
  add("exp", DeltaFunction::Named(*FindScalarFunction("exp")),
      [](const Vector& x) { return Vector::Constant(1, std::exp(x[0])); }, scalar(0.3, 0.04),
      false);
  add("square", DeltaFunction::Named(*FindScalarFunction("square")),
      [](const Vector& x) { return Vector::Constant(1, x[0] * x[0]); }, scalar(-0.7, 0.5), true);
  Matrix a(2, 2);
  a << 1.5, -0.4, 0.3, 0.8;
  const Vector b = (Vector(2) << 0.2, -0.1).finished();
  Matrix cov(2, 2);
  cov << 0.09, 0.03, 0.03, 0.04;
  const Vector m = (Vector(2) << 0.3, -0.5).finished();
  add("affine 2-D", DeltaFunction::Affine(a, b),
      [a, b](const Vector& x) { return Vector(a * x + b); }, {m, cov}, true);
  add("tanh after affine 2-D", DeltaFunction::Named(*FindScalarFunction("tanh"), a, b),
      [a, b](const Vector& x) { return Vector((a * x + b).array().tanh().matrix()); }, {m, cov},
      false);
  // A cubic callable R² → R² with its Jacobian.
  add("cubic callable 2-D",
      DeltaFunction::Callable(
          2, 2,
          [](const double* x, double* fx) {
            fx[0] = x[0] * x[0] * x[0] + x[0] * x[1];
            fx[1] = x[1] * x[1] - x[0];
          },
          [](const double* x, double* j) {
            j[0] = 3 * x[0] * x[0] + x[1];
            j[1] = -1.0;
            j[2] = x[0];
            j[3] = 2 * x[1];
          }),
      [](const Vector& x) {
        return Vector((Vector(2) << x[0] * x[0] * x[0] + x[0] * x[1], x[1] * x[1] - x[0]).finished());
      },
      {m, cov}, true);
  return cases;
}

DeltaOptions Unscented() {
  DeltaOptions options;
  options.approximation = DeltaApproximation::kUnscented;
  return options;
}

// ---- Moments of f ----------------------------------------------------------------------------

TEST(DeltaNode, EverySchedulerReachesTheSequentialFixedPoint) {
  // The message to in moves with q(in) (the expansion point): with no other hidden neighbour,
  // x is due again after it moved itself, under the async scheduler too. x ~ N(0, 1),
  // y = 3 observed through N(y | exp(x), 1/10).
  const std::string text = R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "family": "Gaussian"}, {"name": "y", "observed": 3.0}],
    "factors": [{"node": "Gaussian", "out": "x", "mean": 0.0, "precision": 1.0},
                {"node": "Delta", "out": "y", "in": "x", "function": "exp", "precision": 10.0}],
    "inference": {"tolerance": 1e-14, "iterations": 200}})";
  Model sequential = ParseModel(text);
  const double reference = Infer(sequential).free_energy.back();
  EXPECT_NEAR(reference, 2.6077, 1e-4);  // the fixed point the three schedulers share
  for (SchedulerKind kind : {SchedulerKind::kParallel, SchedulerKind::kAsync}) {
    Model model = ParseModel(text);
    model.inference.scheduler = kind;
    model.inference.threads = 2;
    model.inference.threshold = 1e-12;
    const Result result = Infer(model);
    EXPECT_NEAR(result.free_energy.back(), reference, 1e-8)
        << SchedulerName(kind) << ": " << result.message;
    EXPECT_TRUE(model.graph.reads_itself(model.graph.Find("x")));
  }
}

TEST(DeltaNode, UnscentedMomentsMatchATextbookSigmaPointTransform) {
  for (const FunctionCase& c : FunctionCases()) {
    SCOPED_TRACE(c.name);
    const int d = static_cast<int>(c.mean.size());
    const int e = static_cast<int>(c.f(c.mean).size());
    for (const auto& [alpha, beta, kappa] :
         std::vector<std::tuple<double, double, std::optional<double>>>{
             {1.0, 0.0, std::nullopt}, {0.5, 2.0, 0.0}, {1.0, 0.0, 0.5}}) {
      DeltaOptions options = Unscented();
      options.alpha = alpha;
      options.beta = beta;
      options.kappa = kappa;
      const FMoments node = NodeMoments([&] { return MakeDeltaNode(c.function, options); },
                                        c.mean, c.covariance, e);
      const FMoments book = TextbookUnscented(c.f, c.mean, c.covariance, alpha, beta,
                                              kappa ? *kappa : std::max(0.0, 3.0 - d));
      ExpectMatrixNear(node.mean, book.mean, 1e-12, "E[f]", Scale::kOnePlusRelative);
      ExpectMatrixNear(node.second, book.second, 1e-12, "E[f fT]", Scale::kOnePlusRelative);
    }
  }
}

TEST(DeltaNode, UnscentedMomentsMatchNumericalIntegration) {
  // The sigma points integrate polynomials of degree ≤ 3 exactly (the 1-D defaults, the
  // three-point Gauss–Hermite rule, up to degree 5), so E[f] of a cubic, E[f fᵀ] of an
  // affine map and both moments of x² in 1-D are exact. For the other functions the error of
  // a rule exact to degree 3 is at most max|∂⁴(·)|/4! · (E[|z|⁴] + Σ w |χ|⁴) σ⁴ ≤ 4 max|∂⁴| σ⁴
  // for σ the largest standard deviation; the fourth derivatives of f and f fᵀ here are
  // below 10 on the region the points and the Gaussian weight cover, so 40 σ⁴ bounds it.
  for (const FunctionCase& c : FunctionCases()) {
    SCOPED_TRACE(c.name);
    const int d = static_cast<int>(c.mean.size());
    const int e = static_cast<int>(c.f(c.mean).size());
    const FMoments node = NodeMoments([&] { return MakeDeltaNode(c.function, Unscented()); },
                                      c.mean, c.covariance, e);
    const Matrix mean = Quadrature(c.mean, c.covariance, e, 1, c.f);
    const Matrix second = Quadrature(c.mean, c.covariance, e, e, [&](const Vector& x) {
      const Vector fx = c.f(x);
      return Matrix(fx * fx.transpose());
    });
    const double sigma = std::sqrt(c.covariance.diagonal().maxCoeff());
    const double bound = 40 * std::pow(sigma, 4);
    const bool exact_second = c.name == "affine 2-D" || (c.name == "square" && d == 1);
    ExpectMatrixNear(node.mean, mean, c.cubic ? 1e-10 : bound, "E[f]", Scale::kOnePlusRelative);
    ExpectMatrixNear(node.second, second, exact_second ? 1e-10 : bound, "E[f fT]",
                     Scale::kOnePlusRelative);
  }
}

TEST(DeltaNode, LinearisedMomentsAreTheFirstOrderTaylorExpansion) {
  // E[f] ≈ f(m), E[f fᵀ] ≈ f(m) f(m)ᵀ + J Σ Jᵀ with J by hand (or central differences of
  // the test's f, accurate to ~1e-8, for the cubic): exact for the affine map.
  for (const FunctionCase& c : FunctionCases()) {
    SCOPED_TRACE(c.name);
    const int d = static_cast<int>(c.mean.size());
    const Vector fm = c.f(c.mean);
    const int e = static_cast<int>(fm.size());
    Matrix j(e, d);
    for (int k = 0; k < d; ++k) {
      const double h = 1e-5;
      Vector plus = c.mean, minus = c.mean;
      plus[k] += h;
      minus[k] -= h;
      j.col(k) = (c.f(plus) - c.f(minus)) / (2 * h);
    }
    const FMoments node =
        NodeMoments([&] { return MakeDeltaNode(c.function); }, c.mean, c.covariance, e);
    ExpectMatrixNear(node.mean, fm, 1e-14, "E[f]", Scale::kOnePlusRelative);
    ExpectMatrixNear(node.second, fm * fm.transpose() + j * c.covariance * j.transpose(), 1e-8,
                     "E[f fT]", Scale::kOnePlusRelative);
    if (c.name == "affine 2-D") {
      const Matrix exact = Quadrature(c.mean, c.covariance, e, e, [&](const Vector& x) {
        const Vector fx = c.f(x);
        return Matrix(fx * fx.transpose());
      });
      ExpectMatrixNear(node.second, exact, 1e-10, "E[f fT] of an affine map, exact",
                       Scale::kOnePlusRelative);
    }
  }
}

// ---- The affine map is LinearGaussian ---------------------------------------------------------

/// Messages to every slot and the energy of Delta(affine) and LinearGaussian on the same
/// hidden moments.
void ExpectAffineMatchesLinearGaussian(const DeltaOptions& options, bool wishart) {
  Matrix a(2, 3);
  a << 0.7, -1.2, 0.4, 0.1, 0.9, -0.5;
  const int e = 2, d = 3;
  Matrix cov_in(3, 3);
  cov_in << 0.5, 0.1, 0.0, 0.1, 0.3, -0.05, 0.0, -0.05, 0.2;
  Matrix cov_out(2, 2);
  cov_out << 0.2, 0.04, 0.04, 0.1;
  const std::vector<double> out = MvGaussianMoments((Vector(2) << 0.5, -1.0).finished(), cov_out);
  const std::vector<double> in =
      MvGaussianMoments((Vector(3) << 0.2, -0.4, 1.1).finished(), cov_in);
  Matrix scale(2, 2);
  scale << 0.6, 0.1, 0.1, 0.4;
  const std::vector<double> w = wishart ? WishartMoments(5.0, scale) : GammaMoments(3.0, 2.0);
  const Family w_family = wishart ? Family::kWishart : Family::kGamma;
  const std::vector<Family> families = {Family::kMvGaussian, Family::kMvGaussian, w_family};
  OneFactor delta(MakeDeltaNode(DeltaFunction::Affine(a), options), families, {e, d, wishart ? e : 1},
                  {out, in, w});
  OneFactor linear(MakeLinearGaussianNode(a), families, {e, d, wishart ? e : 1}, {out, in, w});
  for (int slot = 0; slot < 3; ++slot) {
    SCOPED_TRACE("slot " + std::to_string(slot));
    ExpectMatrixNear(delta.Message(slot), linear.Message(slot), 1e-12, "message",
                     Scale::kOnePlusRelative);
  }
  EXPECT_NEAR(delta.Energy(), linear.Energy(), 1e-12 * std::abs(linear.Energy()));
}

TEST(DeltaNode, LinearisedAffineMapEqualsLinearGaussian) {
  ExpectAffineMatchesLinearGaussian(DeltaOptions(), /*wishart=*/true);
  ExpectAffineMatchesLinearGaussian(DeltaOptions(), /*wishart=*/false);
}

TEST(DeltaNode, UnscentedAffineMapEqualsLinearGaussian) {
  ExpectAffineMatchesLinearGaussian(Unscented(), /*wishart=*/true);
  ExpectAffineMatchesLinearGaussian(Unscented(), /*wishart=*/false);
}

// ---- Linearised messages and energy by hand --------------------------------------------------

TEST(DeltaNode, LinearisedScalarMessagesAndEnergyMatchAHandDerivation) {
  // out ~ N(sin(in), 1/τ): J = cos m, b = sin m − m cos m;
  //   to in: (E[τ] J (E[y] − b), −½ E[τ] J²);  to out: (E[τ] sin m, −½ E[τ]);
  //   to τ: (−½ (E[y²] − 2 E[y] sin m + sin² m + J² v), ½);
  //   U = ½ log 2π − ½ E[log τ] + ½ E[τ] (E[y²] − 2 E[y] sin m + sin² m + J² v).
  const double m = 0.6, v = 0.2, ey = 0.3, vy = 0.05, shape = 4.0, rate = 2.0;
  OneFactor node(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("sin"))),
                 {Family::kGaussian, Family::kGaussian, Family::kGamma}, {1, 1, 1},
                 {GaussianMoments(ey, vy), GaussianMoments(m, v), GammaMoments(shape, rate)});
  const double tau = shape / rate, log_tau = Digamma(shape) - std::log(rate);
  const double j = std::cos(m), b = std::sin(m) - m * std::cos(m);
  const Vector to_in = node.Message(1);
  EXPECT_NEAR(to_in[0], tau * j * (ey - b), 1e-14);
  EXPECT_NEAR(to_in[1], -0.5 * tau * j * j, 1e-14);
  const Vector to_out = node.Message(0);
  EXPECT_NEAR(to_out[0], tau * std::sin(m), 1e-14);
  EXPECT_NEAR(to_out[1], -0.5 * tau, 1e-14);
  const double r = ey * ey + vy - 2 * ey * std::sin(m) + std::sin(m) * std::sin(m) + j * j * v;
  const Vector to_tau = node.Message(2);
  EXPECT_NEAR(to_tau[0], -0.5 * r, 1e-14);
  EXPECT_NEAR(to_tau[1], 0.5, 1e-15);
  EXPECT_NEAR(node.Energy(), 0.5 * kLogTwoPi - 0.5 * log_tau + 0.5 * tau * r, 1e-13);
}

TEST(DeltaNode, LinearisedVectorMessageToInMatchesAHandDerivation) {
  // f(x) = tanh(A x + b): J = diag(1 − tanh²(A m + b)) A;
  //   to in: (Jᵀ E[W] (E[y] − f(m) + J m), −½ Jᵀ E[W] J).
  Matrix a(2, 2);
  a << 1.5, -0.4, 0.3, 0.8;
  const Vector b = (Vector(2) << 0.2, -0.1).finished();
  const Vector m = (Vector(2) << 0.3, -0.5).finished(), ey = (Vector(2) << 0.4, -0.2).finished();
  Matrix cov(2, 2), scale(2, 2);
  cov << 0.09, 0.03, 0.03, 0.04;
  scale << 0.5, 0.1, 0.1, 0.3;
  const std::vector<Family> families = {Family::kMvGaussian, Family::kMvGaussian, Family::kWishart};
  const std::vector<std::vector<double>> moments = {
      MvGaussianMoments(ey, 0.1 * Matrix::Identity(2, 2)), MvGaussianMoments(m, cov),
      WishartMoments(4.0, scale)};
  const Vector fm = (a * m + b).array().tanh().matrix();
  const Matrix j = (Vector::Ones(2) - fm.cwiseAbs2()).asDiagonal() * a;
  const Matrix ew = 4.0 * scale;
  const Vector eta1 = j.transpose() * ew * (ey - fm + j * m);
  const Matrix eta2 = -0.5 * j.transpose() * ew * j;
  OneFactor named(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("tanh"), a, b)),
                  families, {2, 2, 2}, moments);
  const Vector message = named.Message(1);
  ExpectMatrixNear(message.head(2), eta1, 1e-14, "eta1", Scale::kOnePlusRelative);
  ExpectMatrixNear(Eigen::Map<const Matrix>(message.data() + 2, 2, 2), eta2, 1e-14, "eta2",
                   Scale::kOnePlusRelative);
  // The same f as a callable without a Jacobian: central differences, error O(h²) ~ 1e-10.
  OneFactor callable(MakeDeltaNode(DeltaFunction::Callable(2, 2, [a, b](const double* x, double* fx) {
                       const Vector z = a * Eigen::Map<const Vector>(x, 2) + b;
                       fx[0] = std::tanh(z[0]);
                       fx[1] = std::tanh(z[1]);
                     })),
                     families, {2, 2, 2}, moments);
  ExpectMatrixNear(callable.Message(1), message, 1e-8, "finite differences",
                   Scale::kOnePlusRelative);
}

// ---- Monte Carlo energy and LogFactor --------------------------------------------------------

TEST(DeltaNode, MonteCarloEnergyMatchesTheQuadratureEnergyWithinFourStandardErrors) {
  // U = ½ log 2π − ½ E[log τ] + ½ E[τ] (E[y²] − 2 E[y] E[f] + E[f²]) with E[f], E[f²] by
  // quadrature; the estimate averages ½ E[τ] (f(x_s)² − 2 E[y] f(x_s)) over S draws, whose
  // standard error is ½ E[τ] sd(f² − 2 E[y] f) / √S (the sd by quadrature too).
  const double m = 0.4, v = 0.6, ey = 1.5, vy = 0.1, shape = 3.0, rate = 1.5;
  const Vector mean = Vector::Constant(1, m);
  const Matrix cov = Matrix::Constant(1, 1, v);
  for (const char* name : {"sin", "tanh", "exp"}) {
    SCOPED_TRACE(name);
    const ScalarFunction& g = *FindScalarFunction(name);
    auto power = [&](int k) {
      return Quadrature(mean, cov, 1, 1, [&](const Vector& x) {
        return Matrix::Constant(1, 1, std::pow(g.value(x[0]), k));
      })(0, 0);
    };
    const double f1 = power(1), f2 = power(2), f3 = power(3), f4 = power(4);
    const double tau = shape / rate, log_tau = Digamma(shape) - std::log(rate);
    const double exact =
        0.5 * kLogTwoPi - 0.5 * log_tau + 0.5 * tau * (ey * ey + vy - 2 * ey * f1 + f2);
    // Var(f² − 2 E[y] f) = E[f⁴] − 4 E[y] E[f³] + 4 E[y]² E[f²] − (E[f²] − 2 E[y] E[f])².
    const double variance =
        f4 - 4 * ey * f3 + 4 * ey * ey * f2 - (f2 - 2 * ey * f1) * (f2 - 2 * ey * f1);
    DeltaOptions options;
    options.energy = DeltaEnergy::kMonteCarlo;
    options.samples = 100000;
    options.seed = 17;
    const std::vector<std::vector<double>> moments = {
        GaussianMoments(ey, vy), GaussianMoments(m, v), GammaMoments(shape, rate)};
    const std::vector<Family> families = {Family::kGaussian, Family::kGaussian, Family::kGamma};
    OneFactor node(MakeDeltaNode(DeltaFunction::Named(g), options), families, {1, 1, 1}, moments);
    const double estimate = node.Energy();
    const double standard_error = 0.5 * tau * std::sqrt(variance / options.samples);
    EXPECT_NEAR(estimate, exact, 4 * standard_error);
    EXPECT_EQ(estimate, node.Energy()) << "the same draws every time";
    options.seed = 18;
    OneFactor other(MakeDeltaNode(DeltaFunction::Named(g), options), families, {1, 1, 1}, moments);
    EXPECT_NE(other.Energy(), estimate) << "another seed, other draws";
  }
}

TEST(DeltaNode, MonteCarloEnergyAgreesWithTheGraphsEstimateFromLogFactor) {
  // Two estimates of the same U = −E_q[log f] of a plate: the node's (draws of q(in), the
  // other slots' moments exact) and the graph's (LogFactor at joint draws of every variable).
  // By the law of total variance the node's draws vary less than the graph's, so with as many
  // samples the difference has a standard error below √2 times the graph's.
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {30});
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddGaussian(x, 0.3, 1.0, "prior");
  graph.AddGamma(tau, 2.0, 0.05, "tau prior");
  DeltaOptions options = Unscented();
  options.energy = DeltaEnergy::kMonteCarlo;
  options.samples = 20000;
  const PlateId plate =
      graph.AddFactor(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("sin")), options),
                      {graph.AddObserved("y", SplitMixNormals(4, 30, 0.4, 0.3)), x, tau}, "obs");
  graph.Finalize();
  SchedulerOptions scheduler;
  scheduler.max_iterations = 20;
  scheduler.tolerance = 0;
  SequentialScheduler(scheduler).Run(graph);
  Scratch scratch = graph.MakeScratch();
  const FactorGraph::FreeEnergyTerms terms = graph.FreeEnergyParts(scratch);
  const FactorGraph::MonteCarloEstimate estimate = graph.MonteCarloFreeEnergy(20000, 3);
  EXPECT_NEAR(terms.plate_energy[plate], estimate.plate_energy[plate],
              4 * std::sqrt(2.0) * estimate.plate_energy_error[plate]);
}

TEST(DeltaNode, LogFactorIsTheGaussianDensityAtFOfIn) {
  // Scalar: log N(y | sin x, 1/τ) with a Gamma precision.
  {
    const double x = 0.7, y = 0.2, tau = 3.5;
    OneFactor node(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("sin"))),
                   {Family::kGaussian, Family::kGaussian, Family::kGamma}, {1, 1, 1},
                   {{y, y * y}, {x, x * x}, {tau, std::log(tau)}});
    const double r = y - std::sin(x);
    EXPECT_NEAR(node.LogFactor(), 0.5 * std::log(tau) - 0.5 * kLogTwoPi - 0.5 * tau * r * r,
                1e-14);
  }
  // 2-D out from a 3-D in, Wishart precision: log N(y | tanh(A x), W⁻¹)
  //   = ½ log|W| − log 2π − ½ (y − f)ᵀ W (y − f).
  Matrix a(2, 3);
  a << 0.7, -1.2, 0.4, 0.1, 0.9, -0.5;
  const Vector x = (Vector(3) << 0.2, -0.4, 1.1).finished(), y = (Vector(2) << 0.5, -0.3).finished();
  Matrix w(2, 2);
  w << 2.0, 0.5, 0.5, 1.0;
  std::vector<double> w_point(5);
  MatrixMap(w_point.data(), 2, 2) = w;
  w_point[4] = std::log(w.determinant());
  OneFactor node(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("tanh"), a)),
                 {Family::kMvGaussian, Family::kMvGaussian, Family::kWishart}, {2, 3, 2},
                 {MvGaussianMoments(y, Matrix::Zero(2, 2)), MvGaussianMoments(x, Matrix::Zero(3, 3)),
                  w_point},
                 {true, true, true});
  const Vector r = y - Vector((a * x).array().tanh().matrix());
  EXPECT_NEAR(node.LogFactor(),
              0.5 * std::log(w.determinant()) - kLogTwoPi - 0.5 * r.dot(w * r), 1e-13);
}

TEST(DeltaNode, ObservedInputMakesEveryApproximationExact) {
  // With in observed, q(in) is a point: E[f] = f(x) and Cov[f] = 0 for either approximation
  // (the unscented square root of the zero covariance comes from LDLᵀ).
  const Vector x = (Vector(2) << 0.3, -0.5).finished();
  Matrix a(2, 2);
  a << 1.5, -0.4, 0.3, 0.8;
  const Vector fx = (a * x).array().sin().matrix();
  for (const DeltaOptions& options : {DeltaOptions(), Unscented()}) {
    OneFactor node(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("sin"), a), options),
                   {Family::kMvGaussian, Family::kMvGaussian, Family::kGamma}, {2, 2, 1},
                   {MvGaussianMoments(Vector::Zero(2), Matrix::Zero(2, 2)),
                    MvGaussianMoments(x, Matrix::Zero(2, 2)), {2.0, std::log(2.0)}},
                   {true, true, true});
    const Vector to_tau = node.Message(2);
    EXPECT_NEAR(to_tau[0], -0.5 * fx.squaredNorm(), 1e-14);
    EXPECT_NEAR(node.Energy(), -node.LogFactor(), 1e-13);
  }
}

// ---- A posterior against a grid --------------------------------------------------------------

/// x ~ N(0.3, 1), y_k ~ N(exp(x), 1/25) for ten draws around x = 0.5.
struct ExpModel {
  std::vector<double> y;
  double prior_mean = 0.3, prior_precision = 1.0, tau = 25.0;
  ExpModel() {
    const std::vector<double> noise = SplitMixNormals(5, 10, 0.0, 0.2);
    for (double z : noise) y.push_back(std::exp(0.5) + z);
  }
  double LogPosterior(double x) const {
    double sum = -0.5 * prior_precision * (x - prior_mean) * (x - prior_mean);
    for (double yk : y) sum -= 0.5 * tau * (yk - std::exp(x)) * (yk - std::exp(x));
    return sum;
  }
};

TEST(DeltaNode, ScalarPosteriorMatchesAGridPosterior) {
  // The exact posterior by a grid of 20001 points over ±10 sd about its mode. The
  // linearised VMP fixed point is the posterior mode (at the fixed point the message to x is
  // the Gauss–Newton step of log p(x | y), which vanishes only where its gradient does); the
  // mode and the mean of a posterior with skewness γ differ by about γ σ/2, and here
  // γ ≈ 3 σ |f''/f'| = 3 σ ≈ 0.1 (σ ≈ 0.04), so both means are within 0.15 σ of the grid's;
  // the variances (Gauss–Newton curvature vs the exact one) within 10%.
  const ExpModel model;
  double mode = 0.5;
  for (int i = 0; i < 50; ++i) {  // Newton on the log posterior for the grid's centre
    const double h = 1e-5;
    const double g1 = (model.LogPosterior(mode + h) - model.LogPosterior(mode - h)) / (2 * h);
    const double g2 = (model.LogPosterior(mode + h) - 2 * model.LogPosterior(mode) +
                       model.LogPosterior(mode - h)) / (h * h);
    mode -= g1 / g2;
  }
  const double sd_guess = 0.05;
  double z = 0, first = 0, second = 0;
  const double log_peak = model.LogPosterior(mode);
  for (int i = -10000; i <= 10000; ++i) {
    const double x = mode + 10 * sd_guess * i / 10000.0;
    const double p = std::exp(model.LogPosterior(x) - log_peak);
    z += p;
    first += p * x;
    second += p * x * x;
  }
  const double mean = first / z, sd = std::sqrt(second / z - mean * mean);
  for (const DeltaOptions& options : {DeltaOptions(), Unscented()}) {
    SCOPED_TRACE(options.approximation == DeltaApproximation::kUnscented ? "unscented"
                                                                          : "linearise");
    FactorGraph graph;
    const Variable x = graph.AddVariable("x", Family::kGaussian);
    graph.AddGaussian(x, model.prior_mean, model.prior_precision, "prior");
    graph.AddFactor(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("exp")), options),
                    {graph.AddObserved("y", model.y), x, model.tau}, "likelihood");
    graph.Finalize();
    SchedulerOptions scheduler;
    scheduler.max_iterations = 200;
    scheduler.tolerance = 0;
    const Result result = SequentialScheduler(scheduler).Run(graph);
    ASSERT_NE(result.termination, Termination::kNumericalFailure) << result.message;
    const Gaussian q = graph.Posterior<Gaussian>(x);
    EXPECT_NEAR(q.mean(), mean, 0.15 * sd);
    EXPECT_NEAR(std::sqrt(q.variance()), sd, 0.1 * sd);
    // A fixed point: one more sweep leaves q(x) and F where they were.
    scheduler.max_iterations = 1;
    const Result again = SequentialScheduler(scheduler).Run(graph);
    EXPECT_NEAR(graph.Posterior<Gaussian>(x).mean(), q.mean(), 1e-12);
    EXPECT_NEAR(graph.Posterior<Gaussian>(x).variance(), q.variance(), 1e-14);
    EXPECT_NEAR(again.free_energy.back(), result.free_energy.back(),
                1e-10 * std::abs(result.free_energy.back()));
  }
}

TEST(DeltaNode, UpdatesOfOutAndPrecisionNeverRaiseTheFreeEnergy) {
  // With `in` observed the node is conjugate in out and τ: every sweep lowers F (to rounding).
  FactorGraph graph;
  const std::vector<double> inputs = SplitMixNormals(3, 40, 0.0, 1.0);
  const Variable x = graph.AddObserved("x", inputs);
  const Variable h = graph.AddVariableArray("h", Family::kGaussian, {40});
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  std::vector<double> targets;
  for (double xi : inputs) targets.push_back(std::tanh(xi) + 0.3);
  graph.AddGamma(tau, 2.0, 1.0, "tau prior");
  graph.AddFactor(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("tanh")), Unscented()),
                  {h, x, tau}, "hidden");
  graph.AddGaussian(graph.AddObserved("t", targets), h, 10.0, "targets");
  graph.Finalize();
  SchedulerOptions options;
  options.max_iterations = 30;
  options.tolerance = 0;
  const Result result = SequentialScheduler(options).Run(graph);
  for (size_t i = 1; i < result.free_energy.size(); ++i)
    EXPECT_LE(result.free_energy[i], result.free_energy[i - 1] + 1e-9 * std::abs(result.free_energy[i]))
        << "sweep " << i + 1;
  EXPECT_EQ(result.free_energy_increases, 0);
}

TEST(DeltaNode, ParallelRunsMatchSequentialBitForBit) {
  // A Monte Carlo energy seeded per factor: the same F on any number of threads.
  auto run = [](int threads) {
    FactorGraph graph;
    const Variable x = graph.AddVariableArray("x", Family::kGaussian, {64});
    graph.AddGaussian(x, 0.0, 1.0, "prior");
    DeltaOptions options = Unscented();
    options.energy = DeltaEnergy::kMonteCarlo;
    options.samples = 50;
    graph.AddFactor(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("sin")), options),
                    {graph.AddObserved("y", SplitMixNormals(2, 64, 0.3, 0.5)), x, 4.0}, "obs");
    graph.Finalize();
    SchedulerOptions scheduler;
    scheduler.max_iterations = 5;
    scheduler.tolerance = 0;
    return threads == 0 ? SequentialScheduler(scheduler).Run(graph).free_energy
                        : ParallelScheduler(scheduler, threads).Run(graph).free_energy;
  };
  const std::vector<double> sequential = run(0);
  EXPECT_EQ(run(1), sequential);
  EXPECT_EQ(run(2), sequential);
  EXPECT_EQ(run(4), sequential);
}

TEST(DeltaNode, MessagesAndEnergiesDoNotAllocate) {
  // Sigma points, Jacobians and Cholesky factors live in fixed-capacity stack matrices.
  Matrix a(2, 3);
  a << 0.7, -1.2, 0.4, 0.1, 0.9, -0.5;
  Matrix cov(3, 3), scale(2, 2);
  cov << 0.5, 0.1, 0.0, 0.1, 0.3, -0.05, 0.0, -0.05, 0.2;
  scale << 0.6, 0.1, 0.1, 0.4;
  DeltaOptions monte_carlo = Unscented();
  monte_carlo.energy = DeltaEnergy::kMonteCarlo;
  monte_carlo.samples = 20;
  for (const DeltaOptions& options : {DeltaOptions(), Unscented(), monte_carlo}) {
    for (const DeltaFunction& f :
         {DeltaFunction::Named(*FindScalarFunction("tanh"), a),
          DeltaFunction::Callable(3, 2, [](const double* x, double* fx) {
            fx[0] = std::sin(x[0]) * x[1];
            fx[1] = x[2] * x[2];
          })}) {
      OneFactor node(MakeDeltaNode(f, options),
                     {Family::kMvGaussian, Family::kMvGaussian, Family::kWishart}, {2, 3, 2},
                     {MvGaussianMoments(Vector::Ones(2), scale),
                      MvGaussianMoments((Vector(3) << 0.2, -0.4, 1.1).finished(), cov),
                      WishartMoments(4.0, scale)});
      std::vector<Vector> eta = {Vector::Zero(6), Vector::Zero(12), Vector::Zero(5)};
      const long before = testing::AllocationCount();
      const double energy = node.Energy();
      const long after_energy = testing::AllocationCount();
      EXPECT_EQ(after_energy, before) << "AverageEnergy allocated";
      EXPECT_TRUE(std::isfinite(energy));
      for (int slot = 0; slot < 3; ++slot) node.MessageInto(slot, eta[slot].data());
      EXPECT_EQ(testing::AllocationCount(), after_energy) << "AccumulateMessage allocated";
    }
  }
}

// ---- Errors ----------------------------------------------------------------------------------

TEST(DeltaNode, InvalidFunctionsAndOptionsAreRefused) {
  EXPECT_THROW(MakeDeltaNode(DeltaFunction()), ModelError);
  DeltaFunction mismatched = DeltaFunction::Named(*FindScalarFunction("sin"), Matrix::Ones(2, 3),
                                                  Vector::Ones(3));
  EXPECT_EQ(ErrorMessage<ModelError>([&] { MakeDeltaNode(mismatched); }),
            "Delta function (sin): the offset has 3 entries but the matrix is 2x3");
  DeltaOptions options;
  options.samples = 0;
  EXPECT_EQ(ErrorMessage<OptionsError>(
                [&] { MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("sin")), options); }),
            "Delta options: samples must be >= 1, got 0");
  // Dimensions against the graph.
  FactorGraph graph;
  const Variable x = graph.AddVariable("x", Family::kMvGaussian, 3);
  const Variable y = graph.AddVariable("y", Family::kGaussian);
  graph.AddFactor(MakeDeltaNode(DeltaFunction::Affine(Matrix::Ones(1, 2))), {y, x, 1.0}, "f");
  EXPECT_THAT(ErrorMessage<GraphError>([&] { graph.Finalize(); }),
              ::testing::HasSubstr("the function (affine) maps R^2 to R^1 but 'in' is variable "
                                   "'x' of dimension 3"));
}

// ---- JSON ------------------------------------------------------------------------------------

std::string DeltaDocument(const std::string& delta_keys, const std::string& in_dim = "2") {
  return R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "family": "MvGaussian", "dim": )" + in_dim + R"(},
                  {"name": "y", "shape": [3], "observed": [0.1, 0.5, -0.2]}],
    "factors": [{"node": "MvGaussian", "out": "x", "mean": [0, 0], "precision": [[1, 0], [0, 1]]},
                {"node": "Delta", "for": {"i": [0, 3]}, "out": "y[i]", "in": "x",
                 "precision": 4, )" + delta_keys + "}]}";
}

TEST(DeltaJson, ErrorsNameThePointerAndWhatWasExpected) {
  EXPECT_EQ(LoadError(DeltaDocument(R"("function": "sine", "matrix": [[1, 0]])")),
            "/factors/1/function: expected one of 'identity', 'tanh', 'sigmoid', 'exp', 'square', "
            "'sin', 'affine', found the string \"sine\" (did you mean 'sin'?)");
  EXPECT_EQ(LoadError(DeltaDocument(R"("function": "sin", "matrix": [[1, 0, 2]])")),
            "/factors/1/matrix: expected a matrix of 2 columns, found 1x3: 'in' is 'x' "
            "(MvGaussian) of dimension 2");
  EXPECT_EQ(LoadError(DeltaDocument(R"("function": "sin", "matrix": [[1, 0], [0, 1]])")),
            "/factors/1/matrix: f maps R^2 to R^2 but 'out' is 'y' (observed) of dimension 1");
  EXPECT_EQ(LoadError(DeltaDocument(R"("function": "sin")")),
            "/factors/1/in: f maps R^2 to R^2 but 'out' is 'y' (observed) of dimension 1; an "
            "elementwise function keeps the dimension (add a 'matrix')");
  EXPECT_EQ(LoadError(DeltaDocument(R"("function": "sin", "matrix": [[1, 0]], "offset": [1, 2])")),
            "/factors/1/offset: expected 1 numbers, found 2: 'matrix' has 1 rows");
  EXPECT_EQ(LoadError(DeltaDocument(R"("function": "affine")")),
            "/factors/1/function: the affine function needs 'matrix' and/or 'offset' (f(x) = "
            "matrix * x + offset)");
  EXPECT_EQ(LoadError(DeltaDocument(R"("function": "sin", "matrix": [[1, 0]], "kappa": 1)")),
            "/factors/1/kappa: only the unscented approximation takes 'kappa' (add "
            "\"approximation\": \"unscented\")");
  EXPECT_EQ(LoadError(DeltaDocument(
                R"("function": "sin", "matrix": [[1, 0]], "approximation": "unscented", "kappa": -3)")),
            "/factors/1/kappa: expected kappa > -2 (D + kappa > 0: 'in' is 'x' (MvGaussian) of "
            "dimension 2), found -3");
  EXPECT_EQ(LoadError(DeltaDocument(R"("function": "sin", "matrix": [[1, 0]], "approximation": "unscent")")),
            "/factors/1/approximation: expected one of 'linearise', 'unscented', 'cvi', found the "
            "string \"unscent\" (did you mean 'unscented'?)");
  EXPECT_EQ(LoadError(DeltaDocument(R"("function": "sin", "matrix": [[1, 0]], "samples": 10)")),
            "/factors/1/samples: only a Monte Carlo energy takes 'samples' (add \"energy\": "
            "\"monte_carlo\")");
  EXPECT_EQ(LoadError(DeltaDocument(
                R"("function": "sin", "matrix": [[1, 0]], "energy": "monte_carlo", "samples": 0)")),
            "/factors/1/samples: expected a positive integer, found 0");
  EXPECT_EQ(LoadError(DeltaDocument(R"("function": "sin", "matrix": [[1, 0]], "order": 1)"))
                .substr(0, 45),
            "/factors/1/order: unknown key 'order'; expect");
  EXPECT_EQ(LoadError(DeltaDocument(R"("matrix": [[1, 0]])")),
            "/factors/1: missing required argument 'function' (Delta takes 'out', 'in', "
            "'precision', 'function' and optionally 'matrix', 'offset', 'output_matrix', "
            "'linear', 'approximation', 'alpha', 'beta', 'kappa', 'energy', 'samples', 'seed', "
            "'quadrature_points')");
}

TEST(DeltaJson, JsonModelEqualsTheCppGraphBitForBit) {
  const std::string text = DeltaDocument(
      R"("function": "tanh", "matrix": [[1, -0.5]], "offset": [0.2], "approximation": "unscented",
         "alpha": 0.8, "beta": 2, "energy": "monte_carlo", "samples": 300, "seed": 9)");
  Model model = ParseModel(text);
  SchedulerOptions options;
  options.max_iterations = 20;
  options.tolerance = 0;
  const Result from_json = SequentialScheduler(options).Run(model.graph);

  FactorGraph graph;
  const Variable x = graph.AddVariable("x", Family::kMvGaussian, 2);
  const Variable y = graph.AddObserved("y", std::vector<double>{0.1, 0.5, -0.2});
  graph.AddMvGaussian(x, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)));
  DeltaOptions delta = Unscented();
  delta.alpha = 0.8;
  delta.beta = 2.0;
  delta.energy = DeltaEnergy::kMonteCarlo;
  delta.samples = 300;
  delta.seed = 9;
  graph.AddFactor(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("tanh"),
                                                     (Matrix(1, 2) << 1, -0.5).finished(),
                                                     Vector::Constant(1, 0.2)),
                                delta),
                  {y, x, 4.0});
  graph.Finalize();
  const Result from_cpp = SequentialScheduler(options).Run(graph);
  EXPECT_EQ(from_json.free_energy, from_cpp.free_energy);
  // And the normalised document reads back to the same run.
  Model again = ParseModel(NormalisedModelJson(model));
  EXPECT_EQ(SequentialScheduler(options).Run(again.graph).free_energy.back(),
            from_json.free_energy.back());
}

TEST(DeltaJson, PendulumExampleMatchesTheCppExample) {
  // examples/pendulum.cc, rebuilt: its simulated data (the CSV the JSON reads), its callable
  // Euler step with Jacobian, and its sensor. The JSON writes the step as L x + C sin(A x),
  // whose arithmetic differs from the callable's in the last bit (−0.4905 against
  // −0.05 · 9.81), so F agrees to rounding, not bit for bit.
  Model model = LoadModel(std::string(VFE_SOURCE_DIR) + "/examples/pendulum.json");
  const Result from_json = SequentialScheduler(model.inference.options).Run(model.graph);

  const size_t steps = 100;
  const double dt = 0.05, gravity = 9.81;
  const std::vector<double> z = SplitMixNormals(11, 3 * steps, 0.0, 1.0);
  std::vector<double> y;
  double angle = 1.0, velocity = 0.0;
  for (size_t t = 0; t < steps; ++t) {
    if (t > 0) {
      const double next_angle = angle + dt * velocity;
      velocity = velocity - dt * gravity * std::sin(angle);
      angle = next_angle + 0.05 * z[3 * t];
      velocity += 0.05 * z[3 * t + 1];
    }
    y.push_back(std::sin(angle) + 0.1 * z[3 * t + 2]);
  }
  const DeltaFunction step = DeltaFunction::Callable(
      2, 2,
      [=](const double* x, double* fx) {
        fx[0] = x[0] + dt * x[1];
        fx[1] = x[1] - dt * gravity * std::sin(x[0]);
      },
      [=](const double* x, double* j) {
        j[0] = 1.0;
        j[1] = -dt * gravity * std::cos(x[0]);
        j[2] = dt;
        j[3] = 1.0;
      });
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kMvGaussian, {steps}, 2);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  const Variable observed = graph.AddObserved("y", y);
  graph.AddGamma(tau, 1.0, 0.01);
  graph.AddMvGaussian(x[0], Vector((Vector(2) << 0.8, 0.0).finished()),
                      Matrix((Matrix(2, 2) << 4, 0, 0, 1).finished()));
  graph.AddFactor(MakeDeltaNode(step), {x.Slice(1, steps), x.Slice(0, steps - 1),
                                        Matrix((Matrix(2, 2) << 400, 0, 0, 400).finished())});
  graph.AddFactor(MakeDeltaNode(DeltaFunction::Named(*FindScalarFunction("sin"),
                                                     Matrix::Identity(1, 2))),
                  {observed, x, tau});
  graph.Finalize();
  SchedulerOptions options;
  options.max_iterations = 5000;
  options.tolerance = 1e-10;
  options.order = {x, tau};
  const Result from_cpp = SequentialScheduler(options).Run(graph);
  ASSERT_EQ(from_json.free_energy.size(), from_cpp.free_energy.size());
  for (size_t i = 0; i < from_cpp.free_energy.size(); ++i)
    EXPECT_NEAR(from_json.free_energy[i], from_cpp.free_energy[i],
                1e-9 * std::abs(from_cpp.free_energy[i]))
        << "sweep " << i + 1;
  for (size_t t = 0; t < steps; t += 9)
    EXPECT_NEAR(model.graph.Posterior<MvGaussian>(model.graph.Find("x")[t]).mean()[0],
                graph.Posterior<MvGaussian>(x[t]).mean()[0], 1e-7)
        << "t = " << t;
}

}  // namespace
}  // namespace vfe
