#ifndef VFE_NODES_NODES_H_
#define VFE_NODES_NODES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vfe/core/types.h"
#include "vfe/nodes/functions.h"
#include "vfe/nodes/node.h"

namespace vfe {

/// Gaussian(out, mean, precision): N(out | mean, 1/precision), all scalar.
///   U = ½ log 2π − ½ E[log τ] + ½ E[τ] E[(out − mean)²].
std::unique_ptr<Node> MakeGaussianNode();

/// MvGaussian(out, mean, precision): N(out | mean, W⁻¹) over D-vectors, W Wishart (D x D) or
/// W = τ·I with τ Gamma.
///   U = (D/2) log 2π − ½ E[log|W|] + ½ tr(E[W] E[(out − mean)(out − mean)ᵀ]).
std::unique_ptr<Node> MakeMvGaussianNode();

/// LinearGaussian(out, in, precision) with a constant M x K matrix A shared by every factor:
/// N(out | A·in, W⁻¹), W Wishart (M x M) or τ·I.
///   U = (M/2) log 2π − ½ E[log|W|] + ½ tr(E[W] E[(out − A·in)(out − A·in)ᵀ]).
std::unique_ptr<Node> MakeLinearGaussianNode(const Matrix& matrix);

/// LinearGaussian whose factor n has the 1 x K matrix `design.row(n)` (linear regression:
/// out_n ~ N(x_nᵀ in, 1/τ)); the plate must have design.rows() factors.
std::unique_ptr<Node> MakeLinearGaussianRowsNode(const Matrix& design);

/// Gamma(out, rate) with constant shape a: out ~ Gamma(a, rate).
///   U = −a E[log b] + log Γ(a) − (a − 1) E[log x] + E[b] E[x].
std::unique_ptr<Node> MakeGammaNode(double shape);

/// Wishart(out) with constant degrees of freedom ν and scale V: U = A(η) − η·E[T(Λ)].
std::unique_ptr<Node> MakeWishartNode(double dof, const Matrix& scale);
/// Beta(out | a, b) with constants a, b > 0: U = A(η) − η·E[T(p)].
std::unique_ptr<Node> MakeBetaNode(double a, double b);
/// Dirichlet(out | α) with a constant α (K entries > 0): U = A(η) − η·E[log p].
std::unique_ptr<Node> MakeDirichletNode(const Vector& alpha);
/// MatrixDirichlet(out[0], …, out[L−1] | α): the L columns of a K x L matrix, independent
/// Dirichlet variables of dimension K, with the constant concentrations α (K x L, every entry
/// > 0): p(A) = Π_k Dir(A_·k | α_·k). Every slot is an output (Node::IsOutput).
///   U = Σ_k (A(η_k) − η_k·E[log A_·k]), η_k = α_·k − 1.
std::unique_ptr<Node> MakeMatrixDirichletNode(const Matrix& alpha);
/// Bernoulli(out, p), p a Beta variable or a constant in (0, 1):
///   U = −E[x] E[log p] − (1 − E[x]) E[log(1 − p)].
std::unique_ptr<Node> MakeBernoulliNode();
/// Categorical(out, p) over K outcomes, p a Dirichlet variable (K) or constant probabilities:
///   U = −Σ_k E[x_k] E[log p_k].
std::unique_ptr<Node> MakeCategoricalNode();
/// GaussianMixture(out, switch, mean 0..K−1, precision 0..K−1): out ~ N(μ_k, Λ_k⁻¹) with
/// k ~ switch (Categorical K); vectors with Wishart precisions or scalars with Gamma ones.
///   U = −Σ_k E[z_k] (½ E[log|Λ_k|] − (D/2) log 2π − ½ tr(E[Λ_k] E[(out − μ_k)(out − μ_k)ᵀ])).
std::unique_ptr<Node> MakeGaussianMixtureNode(int num_components);
/// Transition(out, in) with a constant K_out x K_in matrix A whose columns sum to one:
/// p(out = j | in = k) = A[j][k] (a directed potential with table log A); throws ModelError for
/// a column that is not a distribution.
///   U = −Σ_jk E[out_j] E[in_k] log A[j][k].
std::unique_ptr<Node> MakeTransitionNode(const Matrix& matrix);
/// Transition(out, in, A) with a learned K x L matrix: slots out, in (Categorical with K and L
/// outcomes) and the columns of A, L Dirichlet variables of dimension K (a MatrixDirichlet).
///   U = −Σ_jk E[out_j] E[in_k] E[log A_jk].
std::unique_ptr<Node> MakeLearnedTransitionNode(int num_columns);
/// Potential(x_1, …, x_n) = exp T[x_1, …, x_n] over Categorical variables (an undirected
/// factor: Ising/Potts couplings, libDAI factors). `log_tables` holds one table shared by the
/// plate, or one per factor (its size says which), each row-major over the variables'
/// categories (the last variable fastest), −∞ for impossible configurations.
///   U = −Σ_x T[x] Π_i q_i(x_i).
std::unique_ptr<Node> MakePotentialNode(int num_variables, std::vector<double> log_tables);

// ---- Deterministic nodes: sum-product messages -------------------------------------------
//
// Sum(out, in1, in2): out = in1 + in2, three hidden Gaussian (or MvGaussian, one dimension D)
// variables. MatrixProduct(out, in): out = A·in with a constant M x D matrix A of rank M ≤ D.
// Their messages are sum-product messages (the node keeps the last message to each slot and
// divides it out of the slot's posterior to get the message coming in: KeepsMessages); their
// share of the free energy is Σ_{slots} H[q] − H[b(inputs)], the Bethe terms of a
// deterministic factor, so that F = −log p(y) at the fixed point on a tree whose other
// factors have one hidden argument each or join pairs of a cluster. Dimensions up to 16; no
// pointwise density (the Monte Carlo free energy refuses them); no plate weights.
std::unique_ptr<Node> MakeSumNode();
std::unique_ptr<Node> MakeMatrixProductNode(const Matrix& matrix);

// ---- Delta: out = f(in) + Gaussian noise ----------------------------------------------------
//
// Delta(out, in, precision): N(out | f(in), W⁻¹) with a nonlinear f: R^D → R^E, in Gaussian
// (D = 1) or MvGaussian (D), out Gaussian (E = 1) or MvGaussian (E), W a Gamma (τ·I), a
// Wishart (E x E) or a constant. The factor is not conjugate in `in`, so its messages and
// energy come from a Gaussian approximation of f(in) under q(in) = N(m, Σ), chosen per node:
//   linearise   f(x) ≈ f(m) + J (x − m), J the Jacobian at m (first-order Taylor; extended
//               Kalman filter);
//   unscented   the 2D + 1 sigma points m, m ± √(D + λ) S_j (S Sᵀ = Σ, λ = α²(D + κ) − D)
//               give E[f] ≈ Σ w_i f(χ_i), Cov[f] ≈ Σ w_i^c (f(χ_i) − E[f])(·)ᵀ, and the
//               statistical linear regression f(x) ≈ A x + b with A = Cov[f, x] Σ⁻¹ (Julier &
//               Uhlmann 1997; Särkkä, "Bayesian Filtering and Smoothing", 2013, ch. 5 and 9).
//   cvi         E[f] and Cov[f] by a Gauss–Hermite product rule over q(in) (core/quadrature.h;
//               exact up to the rule), and the message to in is the natural-gradient (CVI)
//               message of g(x) = −½ (E[y] − f(x))ᵀ E[W] (E[y] − f(x)) (Khan & Lin 2017):
//               λ₁ = E[∇g] − E[∇²g] m, λ₂ = ½ E[∇²g], with ∇g = Jᵀ E[W] (E[y] − f) and
//               E[∇²g] = S⁻ᵀ E[z ∇g(m + S z)ᵀ] (Stein's lemma: no second derivatives of f).
//               The engine steps on F with backtracking (Node::StepsOnFreeEnergy), so a
//               sequential sweep never raises F and the fixed point is the optimal Gaussian.
// With μ = E[f], C = Cov[f] and f(x) ≈ A x + b (A = J, b = f(m) − J m when linearised) and
// R = E[yyᵀ] − E[y] μᵀ − μ E[y]ᵀ + μ μᵀ + C (y = out):
//   to out: (E[W] μ, −½ E[W])                  to in: (Aᵀ E[W] (E[y] − b), −½ Aᵀ E[W] A)
//   to W:   (−½ R, ½) (Wishart), (−½ tr R, E/2) (Gamma)
//   U = (E/2) log 2π − ½ E[log|W|] + ½ tr(E[W] R),
// with μ and C by the node's approximation, or (DeltaEnergy::kMonteCarlo) by sampling q(in)
// with a fixed seed per factor, so that F is reproducible and the same for any thread count.
// When f is affine both approximations are exact and the node is LinearGaussian.
//
// The messages to out and W are exact VMP messages of the approximate energy, so with the
// energy by the same approximation updates of out and W never raise F. Under linearise and
// unscented the message to in
// depends on q(in) itself (the expansion point m and the sigma points move with it): an
// update of `in` is a fixed-point step, not a coordinate descent, and F may rise by a small
// amount after it. No monotonicity is promised for models with hidden `in`; test fixed points
// instead. A Delta factor never joins two elements of a cluster (FactorGraph::AddCluster):
// nonlinear state-space models run mean field over their states.

/// f: R^D → R^E for a Delta node: a C++ callable (with an optional Jacobian), or the named
/// form f(x) = L·x + C·g(A·x + b) with g a ScalarFunction applied elementwise (functions.h)
/// and each of L (E x D), C (E x H), A (H x D), b (H) optional (A, C default to identities,
/// b to zero, L to no term). Callables are called concurrently from several threads when a
/// scheduler runs in parallel: they must be thread-safe (pure functions are).
struct DeltaFunction {
  /// The largest D, E and H a Delta node takes: its sigma points and Jacobians live on the
  /// stack, so messages never allocate.
  static constexpr int kMaxDim = 16;
  /// f(x) into fx (E numbers).
  using Value = std::function<void(const double* x, double* fx)>;
  /// The E x D Jacobian ∂f_i/∂x_j at x, column-major, into `jacobian`.
  using Jacobian = std::function<void(const double* x, double* jacobian)>;

  int in_dim = 0;   ///< D; 0 for an elementwise g with no matrices (D = E = dim of 'in')
  int out_dim = 0;  ///< E; 0 as in_dim
  Value value;        ///< set for a callable; empty for the named form
  Jacobian jacobian;  ///< optional: empty means central finite differences
  const ScalarFunction* elementwise = nullptr;  ///< g of the named form
  Matrix matrix;         ///< A (H x D), or empty for the identity
  Vector offset;         ///< b (H), or empty for zero
  Matrix output_matrix;  ///< C (E x H), or empty for the identity
  Matrix linear;         ///< L (E x D), or empty for no term
  std::string description;  ///< how errors name f ("sin", "a callable R^2 -> R^2")

  /// f given by `value` (and `jacobian`, or central differences when it is empty).
  static DeltaFunction Callable(int in_dim, int out_dim, Value value, Jacobian jacobian = {});
  /// g(A·x + b) elementwise; empty `matrix`/`offset` leave them out.
  static DeltaFunction Named(const ScalarFunction& g, const Matrix& matrix = Matrix(),
                             const Vector& offset = Vector());
  /// The affine map A·x + b (g the identity).
  static DeltaFunction Affine(const Matrix& matrix, const Vector& offset = Vector());
  /// Checks the dimensions and values of the form; throws ModelError naming what is wrong.
  /// Named() and Affine() set in_dim and out_dim; a caller who then sets output_matrix or
  /// linear sets out_dim to their rows (the output matrix and the linear term need the matrix
  /// or the offset, which fix H).
  void Validate() const;
};

/// How a Delta node approximates f(in) under q(in).
enum class DeltaApproximation { kLinearise, kUnscented, kCvi };
/// How a Delta node evaluates its average energy.
enum class DeltaEnergy {
  kApproximation,  ///< by the node's approximation (the same one its messages use)
  kMonteCarlo      ///< by `samples` draws from q(in), seeded by (seed, factor index)
};

/// Options of a Delta node. The unscented defaults α = 1, β = 0 and κ = max(0, 3 − D) keep
/// every sigma-point weight non-negative (so every covariance is positive semi-definite, in
/// any dimension) and, for D ≤ 3, match the fourth moment of the Gaussian (for D = 1 the three
/// points are the Gauss–Hermite rule, exact for polynomials of degree 5); with D > 3 it is the
/// cubature rule (κ = 0), exact for degree 3.
struct DeltaOptions {
  DeltaApproximation approximation = DeltaApproximation::kLinearise;
  double alpha = 1.0;           ///< sigma-point spread, > 0
  double beta = 0.0;            ///< prior-kurtosis term of the centre's covariance weight, ≥ 0
  std::optional<double> kappa;  ///< secondary spread; default max(0, 3 − D); needs D + κ > 0
  DeltaEnergy energy = DeltaEnergy::kApproximation;
  int samples = 1000;  ///< Monte Carlo draws per factor, ≥ 1
  uint64_t seed = 0;   ///< Monte Carlo seed
  /// Gauss–Hermite points per dimension of in (cvi); 0 for the default: 32 for D ≤ 2, and for
  /// larger D the most that keep the product grid to 2¹⁰ points.
  int quadrature_points = 0;
  /// Throws OptionsError naming the field, its value and the constraint.
  void Validate() const;
};

/// The Delta node (above). Throws ModelError for an invalid function and OptionsError for
/// invalid options; Bind checks the dimensions of the connected variables against f's.
std::unique_ptr<Node> MakeDeltaNode(DeltaFunction function, DeltaOptions options = {});

}  // namespace vfe

#endif  // VFE_NODES_NODES_H_
