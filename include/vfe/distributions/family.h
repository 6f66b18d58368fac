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
/// Matrices are stored column-major.
enum class Family { kGaussian, kMvGaussian, kGamma, kWishart };

/// The family's name as written in models and results ("Gaussian", ...).
inline const char* FamilyName(Family family) {
  switch (family) {
    case Family::kGaussian: return "Gaussian";
    case Family::kMvGaussian: return "MvGaussian";
    case Family::kGamma: return "Gamma";
    case Family::kWishart: return "Wishart";
  }
  return "?";
}

/// Number of doubles in T(x) for a variable of `family` with event dimension `dim`.
inline int StatSize(Family family, int dim) {
  switch (family) {
    case Family::kGaussian: return 2;
    case Family::kMvGaussian: return dim + dim * dim;
    case Family::kGamma: return 2;
    case Family::kWishart: return dim * dim + 1;
  }
  return 0;
}

/// True for the families whose event is a D-vector or D x D matrix (dimension is meaningful).
inline bool IsMultivariate(Family family) {
  return family == Family::kMvGaussian || family == Family::kWishart;
}

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_FAMILY_H_
