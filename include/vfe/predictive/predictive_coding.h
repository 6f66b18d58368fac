#ifndef VFE_PREDICTIVE_PREDICTIVE_CODING_H_
#define VFE_PREDICTIVE_PREDICTIVE_CODING_H_

// Hierarchical predictive coding networks: inference as precision-weighted prediction-error
// minimisation, learning by free-energy descent.
//
// The generative model (Rao & Ballard 1999; Friston 2005, "A theory of cortical responses";
// Bogacz 2017, "A tutorial on the free-energy framework for modelling perception and
// learning"), with levels x_0 = y (observed), x_1, …, x_L (hidden), n_l = dim x_l:
//
//   x_L     ~ N(μ_p, Π_p⁻¹)                                   the prior on the top level
//   x_{l−1} ~ N(f_l(W_l x_l + b_l), Π_l⁻¹),   l = L, …, 1       W_l is n_{l−1} × n_l
//
// with f_l an elementwise ScalarFunction (identity for a linear level). The prediction errors
// at a point x are
//
//   ε_l = x_{l−1} − f_l(a_l),  a_l = W_l x_l + b_l   (l = 1..L),      ε_{L+1} = x_L − μ_p
//
// and Π_l ε_l are the precision-weighted prediction errors. The energy is −log p(y, x):
//
//   E(x) = Σ_{l=1}^{L+1} [ ½ ε_lᵀ Π_l ε_l − ½ log|Π_l| + (n_{l−1}/2) log 2π ]
//
// (Π_{L+1} = Π_p). Inference (the Laplace approximation, Friston et al. 2007, "Variational
// free energy and the Laplace approximation"): q(x_1..x_L) = N(μ, Σ) jointly over the stacked
// hidden levels, μ a minimiser of E and Σ = H⁻¹ with H the Gauss–Newton Hessian of E at μ,
//
//   H = Σ_l J_lᵀ Π_l J_l,   J_l = ∂ε_l/∂x = [ I on x_{l−1} (if hidden),  −diag f_l'(a_l) W_l on x_l ],
//
// which is positive definite for every x and equals the full Hessian when every f_l is the
// identity. The free energy F = E_q[E(x)] − H[q], with E_q[E] replaced by its expansion to
// second order about μ (exact for linear levels), reported per level:
//
//   F = Σ_{l=1}^{L+1} U_l − H[q],
//   U_l = ½ ε_lᵀ Π_l ε_l − ½ log|Π_l| + (n_{l−1}/2) log 2π + ½ tr(Π_l J_l Σ J_lᵀ),
//   H[q] = (N/2)(1 + log 2π) + ½ log|Σ|,  N = n_1 + … + n_L,
//
// so that, at Σ = H⁻¹, F = E(μ) + ½ log|H| − (N/2) log 2π. When every f_l is the identity the
// model is jointly Gaussian, q is the exact posterior (the fixed point of VMP with one joint
// Gaussian cluster) and F = −log p(y). With nonlinear levels F is the Laplace approximation
// of −log p(y), not a guaranteed bound (the second-order expansion of E_q[E] is not exact).
//
// The minimiser μ is found either by the classic predictive coding dynamics, gradient descent
//
//   μ_l ← μ_l − κ ∂E/∂μ_l,   ∂E/∂x_l = Π_{l+1} ε_{l+1} − W_lᵀ (f_l'(a_l) ⊙ Π_l ε_l),
//
// (each level is pulled towards the prediction from above and pushed to explain the error
// below), or by Gauss–Newton on the whole stack, μ ← μ − α H⁻¹ ∇E with a backtracking line
// search on E (one step, α = 1, for a linear network).
//
// Learning (variational EM on F): each epoch infers q for every observation of a batch, then
// updates the parameters with q held fixed, where Σ_b sums over the batch:
//   - weights of a nonlinear level (or of any level with closed_form_linear off): the
//     Hebbian-like gradient step on Σ_b U_l,
//       ΔW_l = (η/B) Σ_b (f_l'(a_l) ⊙ Π_l ε_l) μ_lᵀ,   Δb_l = (η/B) Σ_b f_l'(a_l) ⊙ Π_l ε_l,
//     plus the gradient of U_l's curvature term (LearningOptions::covariance_correction);
//   - weights and bias of a linear level: the exact M-step (the conjugate case),
//       [W_l b_l] = (Σ_b E[x_{l−1} x̃_lᵀ]) (Σ_b E[x̃_l x̃_lᵀ])⁻¹,   x̃_l = (x_l, 1);
//   - precisions in closed form, the maximiser of −F over Π_l given the (new) weights,
//       Π_l⁻¹ = (1/B) Σ_b E_q[ε_l ε_lᵀ] ≈ (1/B) Σ_b ( ε_l ε_lᵀ + J_l Σ J_lᵀ )
//     (exact for a linear level), restricted to the level's PrecisionForm;
//   - optionally the prior: μ_p = (1/B) Σ_b μ_L, Π_p⁻¹ = (1/B) Σ_b (μ_L − μ_p)(μ_L − μ_p)ᵀ + Σ_LL.
// Every closed-form update minimises F over its parameters exactly (with q held fixed), and
// for a linear network the inference step is exact, so F never increases from one epoch to
// the next; with gradient steps this holds for a small enough learning rate η.

#include <cstdint>
#include <string>
#include <vector>

#include "vfe/core/error.h"
#include "vfe/core/types.h"
#include "vfe/nodes/functions.h"

namespace vfe {
namespace predictive {

/// Which precision matrices learning may produce for a level (Π given at construction must
/// already have this form).
enum class PrecisionForm {
  kFull,       ///< any symmetric positive definite matrix
  kDiagonal,   ///< a positive diagonal
  kIsotropic,  ///< π·I with π > 0
};

/// One generative level l: x_{l−1} ~ N(f(W x_l + b), Π⁻¹).
struct LevelSpec {
  Matrix weights;                  ///< W_l, n_{l−1} × n_l
  Vector bias;                     ///< b_l, n_{l−1}; empty means zero
  std::string function = "identity";  ///< f_l: a name of ScalarFunctions() (nodes/functions.h)
  Matrix precision;                ///< Π_l, n_{l−1} × n_{l−1}, symmetric positive definite
  PrecisionForm precision_form = PrecisionForm::kFull;
};

/// The whole network. levels[0] predicts y from x_1, levels[l−1] predicts x_{l−1} from x_l,
/// levels[L−1] predicts x_{L−1} from the top level x_L.
struct NetworkSpec {
  std::vector<LevelSpec> levels;
  Vector prior_mean;       ///< μ_p, n_L
  Matrix prior_precision;  ///< Π_p, n_L × n_L, symmetric positive definite
  PrecisionForm prior_precision_form = PrecisionForm::kFull;
};

/// How the mode μ is found.
enum class InferenceMethod {
  kGaussNewton,  ///< Gauss–Newton on the whole stack with a backtracking line search
  kGradient,     ///< the classic predictive coding dynamics μ ← μ − κ ∇E
};

/// Inference settings. Validate() throws OptionsError naming the field.
struct InferenceOptions {
  InferenceMethod method = InferenceMethod::kGaussNewton;
  int max_iterations = 100;  ///< Gauss–Newton steps, or gradient steps
  /// Gauss–Newton stops when the predicted decrease of E, ½ ∇Eᵀ H⁻¹ ∇E, is at most this (nats),
  /// taking that last step; below 1e-13 (1 + |E|), where E cannot judge a step, it takes full
  /// steps without a line search and also stops once the decrement no longer falls.
  double tolerance = 1e-20;
  /// Gradient dynamics stop when max |∂E/∂μ| is at most this.
  double gradient_tolerance = 1e-9;
  double step_size = 0.05;  ///< κ of the gradient dynamics; must be below 2 / λ_max(H)
  void Validate() const;
};

/// One level's share U_l of the free energy (see the file comment).
struct LevelEnergy {
  double prediction_error = 0.0;  ///< ½ ε_lᵀ Π_l ε_l at μ
  double log_normaliser = 0.0;    ///< −½ log|Π_l| + (n_{l−1}/2) log 2π
  double curvature = 0.0;         ///< ½ tr(Π_l J_l Σ J_lᵀ)
  double total() const { return prediction_error + log_normaliser + curvature; }
};

/// The posterior q(x_1..x_L) = N(μ, Σ) of one observation and its free energy.
struct Inference {
  std::vector<Vector> means;  ///< μ_1 … μ_L (means[l−1] is level l)
  /// ε_1 … ε_{L+1} at μ (errors[L] is the prior's, μ_L − μ_p).
  std::vector<Vector> errors;
  /// Σ = H⁻¹ over the stacked hidden levels (x_1 first); see PredictiveCodingNetwork::offset.
  Matrix covariance;
  std::vector<LevelEnergy> levels;  ///< U_1 … U_{L+1} (levels[L] is the prior's)
  double entropy = 0.0;             ///< H[q]
  double free_energy = 0.0;         ///< F = Σ U_l − H[q]
  int iterations = 0;
  bool converged = false;
  std::string message;  ///< why inference stopped
};

/// Learning settings. Validate() throws OptionsError naming the field.
struct LearningOptions {
  /// Inference passes over the batch; the parameters are updated after each but the last.
  int epochs = 100;
  double learning_rate = 0.1;     ///< η of the gradient steps on W and b
  bool learn_weights = true;
  bool learn_biases = true;       ///< only levels whose bias is learned or given
  bool learn_precisions = true;
  bool learn_prior = false;       ///< μ_p and Π_p
  bool closed_form_linear = true;  ///< exact M-step for the weights of identity levels
  /// Adds to the Hebbian-like rule the gradient of the curvature term ½ tr(Π_l J_l Σ J_lᵀ)
  /// with f_l' held at μ: ΔW_l −= (η/B) Σ_b D_l Π_l (D_l W_l Σ_{l,l} − Σ_{l−1,l}), D_l = diag
  /// f_l'(a_l), Σ_{l−1,l} = 0 for l = 1. The step is then the gradient of F with q held fixed
  /// (exactly for linear levels, up to f_l'' for others); off, it is the classic rule, the
  /// gradient of E at the mode, whose fixed point ignores the posterior uncertainty.
  bool covariance_correction = true;
  /// Stop when F decreases by less than tolerance·|F| from one epoch to the next (0: never).
  double tolerance = 0.0;
  int num_threads = 1;  ///< observations inferred in parallel; 0 = all cores. Same results.
  InferenceOptions inference;
  void Validate() const;
};

/// The free energy of one epoch, summed over the batch, at the start of the epoch's
/// parameter update (after inference with the epoch's starting parameters).
struct Epoch {
  double free_energy = 0.0;
  std::vector<double> level_energies;  ///< Σ_b U_l, l = 1..L+1
  double entropy = 0.0;                ///< Σ_b H[q_b]
  int unconverged = 0;                 ///< observations whose inference did not converge
};

/// What Learn() did.
struct LearningResult {
  std::vector<Epoch> epochs;
  bool converged = false;  ///< the tolerance was met
  std::string message;
};

/// A predictive coding network (see the file comment). Construction validates the spec:
/// ModelError naming the level, what was expected and what was found.
class PredictiveCodingNetwork {
 public:
  explicit PredictiveCodingNetwork(NetworkSpec spec);

  /// L, the number of hidden levels.
  int num_levels() const { return static_cast<int>(spec_.levels.size()); }
  /// n_l (l = 0 is y).
  int dim(int level) const { return dims_[level]; }
  /// N = n_1 + … + n_L.
  int hidden_dim() const { return offsets_.back(); }
  /// Where level l (1..L) starts in the stacked hidden vector and in Inference::covariance.
  int offset(int level) const { return offsets_[level - 1]; }
  /// The current parameters (learning changes them).
  const NetworkSpec& spec() const { return spec_; }

  /// E(x) = −log p(y, x) for hidden levels x = (x_1, …, x_L). Throws ModelError on a
  /// dimension mismatch.
  double Energy(const Vector& y, const std::vector<Vector>& x) const;
  /// ∇E(x) over the stacked hidden vector (x_1 first).
  Vector EnergyGradient(const Vector& y, const std::vector<Vector>& x) const;

  /// The top-down prediction: x_L = μ_p, x_{l−1} = f_l(W_l x_l + b_l) (the start of inference).
  std::vector<Vector> Predict() const;

  /// q for one observation y (n_0), starting from Predict() or from `initial` (one vector per
  /// hidden level). Throws ModelError for a wrong size or a non-finite y; numerical trouble
  /// (divergent gradient dynamics) is reported in Inference::converged and message.
  Inference Infer(const Vector& y, const InferenceOptions& options = InferenceOptions()) const;
  Inference Infer(const Vector& y, const InferenceOptions& options,
                  const std::vector<Vector>& initial) const;
  /// q for every column of `observations` (n_0 × B), in parallel over columns on
  /// `num_threads` threads (0 = all cores); the results do not depend on the thread count.
  std::vector<Inference> InferBatch(const Matrix& observations,
                                    const InferenceOptions& options = InferenceOptions(),
                                    int num_threads = 1) const;

  /// Variational EM on the columns of `observations` (see the file comment); changes the
  /// parameters. Numerical trouble (a precision update that is not positive definite) stops
  /// learning with the parameters of the last good epoch and is reported in the result.
  LearningResult Learn(const Matrix& observations,
                       const LearningOptions& options = LearningOptions());

  /// `count` draws (y, x_1, …, x_L) from the generative model, from SplitMix64(seed) normals:
  /// returns the matrices of levels 0..L, each n_l × count (column b is draw b).
  std::vector<Matrix> Sample(int count, uint64_t seed) const;

 private:
  struct Level {
    const ScalarFunction* function = nullptr;
    bool linear = false;
    bool has_bias = false;
    Eigen::LLT<Matrix> precision_llt;
    double log_det_precision = 0.0;
  };
  class Solver;
  friend class Solver;

  /// Validates spec_ and fills dims_, offsets_, levels_.
  void Build();
  /// Refreshes the factorisations of the precisions after learning.
  void RefreshPrecisions();
  void CheckObservation(const Vector& y) const;
  void CheckHidden(const std::vector<Vector>& x) const;

  NetworkSpec spec_;
  std::vector<int> dims_;     ///< n_0 … n_L
  std::vector<int> offsets_;  ///< offsets_[l−1] = n_1 + … + n_{l−1}; offsets_[L] = N
  std::vector<Level> levels_;  ///< L levels, then the prior
};

}  // namespace predictive
}  // namespace vfe

#endif  // VFE_PREDICTIVE_PREDICTIVE_CODING_H_
