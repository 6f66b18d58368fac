#ifndef VFE_DISTRIBUTIONS_FAMILY_H_
#define VFE_DISTRIBUTIONS_FAMILY_H_

#include <string>

namespace vfe {

/// The exponential families a hidden variable's posterior can take.
///
/// Every family has a fixed layout of its sufficient statistics T(x), shared by the natural
/// parameters η, the moments E[T(x)] and every message (all flat arrays of doubles):
///   Gaussian    T = (x, x²)                 η = (w·m, −w/2)
///   MvGaussian  T = (x, x·xᵀ)               η = (W·m, −W/2)          D + D² numbers
///   Gamma       T = (x, log x)              η = (−b, a − 1)
///   Wishart     T = (Λ, log|Λ|)             η = (−V⁻¹/2, (ν − D − 1)/2)   D² + 1 numbers
///   Beta        T = (log p, log(1 − p))     η = (a − 1, b − 1)
///   Bernoulli   T = (x)                     η = (log(p/(1 − p)))
///   Categorical T = one-hot x               η = log p (up to a constant)  K numbers
///   Dirichlet   T = log p                   η = α − 1                     K numbers
/// Matrices are stored column-major.
enum class Family { kGaussian, kMvGaussian, kGamma, kWishart, kBeta, kBernoulli, kCategorical,
                    kDirichlet };

/// Every family, in order (for listing and dispatch).
constexpr Family kAllFamilies[] = {Family::kGaussian,  Family::kMvGaussian,  Family::kGamma,
                                   Family::kWishart,   Family::kBeta,        Family::kBernoulli,
                                   Family::kCategorical, Family::kDirichlet};

/// The family's name as written in models and results ("Gaussian", ...).
inline const char* FamilyName(Family family) {
  switch (family) {
    case Family::kGaussian: return "Gaussian";
    case Family::kMvGaussian: return "MvGaussian";
    case Family::kGamma: return "Gamma";
    case Family::kWishart: return "Wishart";
    case Family::kBeta: return "Beta";
    case Family::kBernoulli: return "Bernoulli";
    case Family::kCategorical: return "Categorical";
    case Family::kDirichlet: return "Dirichlet";
  }
  return "?";
}

/// The smallest shape-like parameter (a Gamma shape, Beta's a and b, a Dirichlet
/// concentration): the densities store a − 1, which for a below 2^-53 ≈ 1.1e-16 rounds to −1
/// in double precision, an improper density. Smaller values are refused where they are given.
constexpr double kMinShape = 0x1p-53;

/// Why a shape-like parameter `value` > 0 below kMinShape is refused, for its message.
inline std::string ShapeTooSmall(double value) {
  return value > 0 && value < kMinShape
             ? " is below 1.1e-16 (2^-53): its natural parameter a - 1 rounds to -1 in double "
               "precision, an improper density"
             : "";
}

/// The largest event dimension of a D x D matrix family (MvGaussian, Wishart): 4096, whose
/// statistic of D + D² numbers takes 134 MB per element; FactorGraph refuses larger ones.
constexpr int kMaxMatrixDim = 4096;
/// The largest number of categories or components of a vector family (Categorical,
/// Dirichlet): 2^24.
constexpr int kMaxVectorDim = 1 << 24;

/// Number of doubles in T(x) for a variable of `family` with event dimension `dim` (at most
/// kMaxMatrixDim or kMaxVectorDim, which keep it within an int).
inline int StatSize(Family family, int dim) {
  switch (family) {
    case Family::kGaussian: return 2;
    case Family::kMvGaussian: return dim + dim * dim;
    case Family::kGamma: return 2;
    case Family::kWishart: return dim * dim + 1;
    case Family::kBeta: return 2;
    case Family::kBernoulli: return 1;
    case Family::kCategorical: return dim;
    case Family::kDirichlet: return dim;
  }
  return 0;
}

/// True for the families whose event is a D-vector or D x D matrix with matrix algebra in
/// their updates (they need a Workspace of their dimension).
inline bool IsMultivariate(Family family) {
  return family == Family::kMvGaussian || family == Family::kWishart;
}

/// True for the families with an event dimension (D for the multivariate ones, the number of
/// outcomes K for Categorical and Dirichlet); the others have dimension 1.
inline bool HasDimension(Family family) {
  return IsMultivariate(family) || family == Family::kCategorical ||
         family == Family::kDirichlet;
}

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_FAMILY_H_
