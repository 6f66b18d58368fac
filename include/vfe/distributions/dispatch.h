#ifndef VFE_DISTRIBUTIONS_DISPATCH_H_
#define VFE_DISTRIBUTIONS_DISPATCH_H_

#include <algorithm>
#include <cmath>

#include "vfe/distributions/distributions.h"

namespace vfe {

/// E[T(x)] of the `family` density with natural parameters `eta` (flat layout, family.h);
/// returns false, writing nothing, if `eta` is not a proper density. `ws` is sized for `dim`.
inline bool MomentsFromNatural(Family family, int dim, const double* eta, double* moments,
                               Workspace& ws) {
  switch (family) {
    case Family::kGaussian:
      if (!Gaussian::IsProper(eta)) return false;
      Gaussian::Moments(eta, moments);
      return true;
    case Family::kGamma:
      if (!Gamma::IsProper(eta)) return false;
      Gamma::Moments(eta, moments);
      return true;
    case Family::kMvGaussian: return MvGaussian::Moments(dim, eta, moments, ws);
    case Family::kWishart: return Wishart::Moments(dim, eta, moments, ws);
    case Family::kBeta:
      if (!Beta::IsProper(eta)) return false;
      Beta::Moments(eta, moments);
      return true;
    case Family::kBernoulli:
      if (!Bernoulli::IsProper(eta)) return false;
      Bernoulli::Moments(eta, moments);
      return true;
    case Family::kCategorical:
      if (!Categorical::IsProper(dim, eta)) return false;
      Categorical::Moments(dim, eta, moments);
      return true;
    case Family::kDirichlet:
      if (!Dirichlet::IsProper(dim, eta)) return false;
      Dirichlet::Moments(dim, eta, moments);
      return true;
  }
  return false;
}

/// MomentsFromNatural for `count` densities stored one after another (η and E[T] of element
/// i at i · StatSize(family, dim)): writes the moments of the leading proper elements and
/// returns their number (count when all are proper); the moments of the first improper
/// element and of those after it are not written. Categorical runs compute their exps
/// together (Categorical::MomentsOfRun), with the same values as one element at a time.
inline size_t MomentsOfRun(Family family, int dim, size_t count, const double* eta,
                           double* moments, Workspace& ws) {
  if (family == Family::kCategorical) return Categorical::MomentsOfRun(dim, count, eta, moments);
  const size_t stat = static_cast<size_t>(StatSize(family, dim));
  for (size_t i = 0; i < count; ++i)
    if (!MomentsFromNatural(family, dim, eta + i * stat, moments + i * stat, ws)) return i;
  return count;
}

/// Entropy of the proper `family` density with natural parameters `eta` and moments
/// `moments` (E[T], as MomentsFromNatural wrote them; the Categorical reads them to save its
/// exps).
inline double EntropyOf(Family family, int dim, const double* eta, const double* moments,
                        Workspace& ws) {
  switch (family) {
    case Family::kGaussian: return Gaussian::Entropy(eta);
    case Family::kGamma: return Gamma::Entropy(eta);
    case Family::kMvGaussian: return MvGaussian::Entropy(dim, eta, ws);
    case Family::kWishart: return Wishart::Entropy(dim, eta, ws);
    case Family::kBeta: return Beta::Entropy(eta);
    case Family::kBernoulli: return Bernoulli::Entropy(eta);
    case Family::kCategorical: return Categorical::Entropy(dim, eta, moments);
    case Family::kDirichlet: return Dirichlet::Entropy(dim, eta);
  }
  return NAN;
}

/// Natural parameters of the broad standard density used to start a variable no prior
/// reaches: N(0, 1), N(0, I), Gamma(1, 1), Wishart(D, I), Beta(1, 1), Bernoulli(½),
/// uniform Categorical, Dirichlet(1).
inline void WriteStandardNatural(Family family, int dim, double* eta) {
  switch (family) {
    case Family::kGaussian: Gaussian(0.0, 1.0).WriteNatural(eta); break;
    case Family::kGamma: Gamma(1.0, 1.0).WriteNatural(eta); break;
    case Family::kMvGaussian:
      MvGaussian(Vector::Zero(dim), Matrix::Identity(dim, dim)).WriteNatural(eta);
      break;
    case Family::kWishart: Wishart(dim, Matrix::Identity(dim, dim)).WriteNatural(eta); break;
    case Family::kBeta: Beta(1.0, 1.0).WriteNatural(eta); break;
    case Family::kBernoulli: eta[0] = 0.0; break;
    case Family::kCategorical: std::fill(eta, eta + dim, 0.0); break;
    case Family::kDirichlet: std::fill(eta, eta + dim, 0.0); break;
  }
}

}  // namespace vfe

#endif  // VFE_DISTRIBUTIONS_DISPATCH_H_
