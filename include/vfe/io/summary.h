#ifndef VFE_IO_SUMMARY_H_
#define VFE_IO_SUMMARY_H_

// A run as a table a person reads (`vfe run --summary`): the outcome, F, the time, and per
// hidden variable its posterior mean, standard deviation and central 95% credible interval.

#include <cstddef>
#include <string>
#include <vector>

#include "vfe/io/model_json.h"

namespace vfe {

struct SummaryOptions {
  /// Elements shown of an array variable (the first ones; a line counts the rest).
  size_t max_elements = 3;
  /// Components shown of a vector element (MvGaussian, Categorical, Dirichlet; the diagonal
  /// of a Wishart).
  size_t max_components = 4;
  /// The variables shown, by name; empty: every hidden variable.
  std::vector<std::string> variables;
};

/// The table: the result's message; F, −F (the evidence lower bound), sweeps and times; then
/// one row per scalar quantity: "variable  family  mean  sd  2.5%  97.5%", components of a
/// vector element as "w(0)", elements of an array as "x[3]" ("x[1][2]" for [N, M]). The
/// interval is exact for each marginal: Gaussian mean ± 1.96 sd; Gamma and Beta quantiles
/// (GammaQuantile, BetaQuantile); a Dirichlet component's Beta(α_k, α₀ − α_k); a Wishart
/// diagonal entry's Gamma(ν/2, 1/(2V_kk)); none for Bernoulli and Categorical probabilities.
/// The result's warnings follow, one per line.
std::string SummaryTable(const Model& model, const Result& result,
                         const SummaryOptions& options = {});

/// The p-quantile of Gamma(shape, rate): the x with P(shape, x·rate) = p, P the regularised
/// lower incomplete gamma function (series and continued fraction, Numerical Recipes §6.2),
/// found by bisection to the last bit.
double GammaQuantile(double shape, double rate, double p);
/// The p-quantile of Beta(a, b): the x with I_x(a, b) = p (continued fraction, Numerical
/// Recipes §6.4), by bisection.
double BetaQuantile(double a, double b, double p);

}  // namespace vfe

#endif  // VFE_IO_SUMMARY_H_
