#ifndef VFE_NODES_NODES_H_
#define VFE_NODES_NODES_H_

#include <memory>
#include <vector>

#include "vfe/core/types.h"
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

}  // namespace vfe

#endif  // VFE_NODES_NODES_H_
