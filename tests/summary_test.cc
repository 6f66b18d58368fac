// The readable forms of a result: the summary table, its quantiles, and the result JSON's
// options (no trace, chosen posteriors) and warnings.

#include "vfe/io/summary.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/testing/expect.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using testing::ErrorMessage;
using testing::LoadError;

using ::testing::HasSubstr;
using ::testing::Not;

// ---- Quantiles, against closed forms ------------------------------------------------------

TEST(Quantiles, GammaOfShapeOneIsTheExponential) {
  // Gamma(1, b) is Exponential(b): the p-quantile is −log(1 − p)/b.
  for (double p : {0.025, 0.5, 0.975, 1e-6})
    for (double rate : {0.5, 1.0, 40.0})
      EXPECT_NEAR(GammaQuantile(1.0, rate, p), -std::log1p(-p) / rate,
                  1e-13 * (-std::log1p(-p) / rate));
}

TEST(Quantiles, GammaOfShapeTwoSolvesItsCdf) {
  // Gamma(2, 1): P(x) = 1 − e^−x (1 + x); the quantile must give back p.
  for (double p : {0.025, 0.3, 0.975}) {
    const double x = GammaQuantile(2.0, 1.0, p);
    EXPECT_NEAR(1 - std::exp(-x) * (1 + x), p, 1e-14);
  }
  // Large shapes (the continued fraction's side): Gamma(a, a) tends to N(1, 1/a); for
  // a = 10^4 the 97.5% quantile is 1 + 1.96/100 up to the skewness correction, O(1/a).
  EXPECT_NEAR(GammaQuantile(1e4, 1e4, 0.975), 1 + 1.959963984540054 / 100, 2e-4);
}

TEST(Quantiles, BetaClosedForms) {
  for (double p : {0.025, 0.5, 0.975}) {
    // Beta(a, 1): F(x) = x^a; Beta(1, b): F(x) = 1 − (1 − x)^b.
    EXPECT_NEAR(BetaQuantile(3.0, 1.0, p), std::pow(p, 1 / 3.0), 1e-14);
    EXPECT_NEAR(BetaQuantile(1.0, 4.0, p), 1 - std::pow(1 - p, 1 / 4.0), 1e-14);
    // Beta(2, 2): F(x) = 3x² − 2x³.
    const double x = BetaQuantile(2.0, 2.0, p);
    EXPECT_NEAR(3 * x * x - 2 * x * x * x, p, 1e-14);
  }
  EXPECT_NEAR(BetaQuantile(5.0, 5.0, 0.5), 0.5, 1e-15);  // symmetric
}

// ---- The table ----------------------------------------------------------------------------

Model GaussianMeanPrecision() {
  return LoadModel(std::string(VFE_SOURCE_DIR) + "/examples/gaussian_mean_precision.json");
}

/// The table cell the summary writes for x.
std::string Cell(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", x);
  return text;
}

TEST(Summary, ShowsEachPosteriorWithItsExactInterval) {
  Model model = GaussianMeanPrecision();
  const Result result = Infer(model);
  const std::string table = SummaryTable(model, result);
  EXPECT_THAT(table, HasSubstr(result.message));
  EXPECT_THAT(table, HasSubstr("variable  family"));
  const Gaussian mu = model.graph.Posterior<Gaussian>(model.graph.Find("mu"));
  const double sd = std::sqrt(mu.variance());
  for (double x :
       {mu.mean(), sd, mu.mean() - 1.959963984540054 * sd, mu.mean() + 1.959963984540054 * sd})
    EXPECT_THAT(table, HasSubstr(Cell(x)));
  const Gamma tau = model.graph.Posterior<Gamma>(model.graph.Find("tau"));
  for (double x :
       {tau.mean(), std::sqrt(tau.variance()), GammaQuantile(tau.shape(), tau.rate(), 0.025),
        GammaQuantile(tau.shape(), tau.rate(), 0.975)})
    EXPECT_THAT(table, HasSubstr(Cell(x)));
  EXPECT_THAT(table, Not(HasSubstr("warning")));
}

TEST(Summary, ArraysShowTheirFirstElementsAndCountTheRest) {
  Model model = LoadModel(std::string(VFE_SOURCE_DIR) + "/examples/gaussian_mixture.json");
  SchedulerOptions& options = model.inference.options;
  options.max_iterations = 3;
  const Result result = Infer(model);
  SummaryOptions table_options;
  table_options.max_elements = 2;
  table_options.variables = {"z", "mu"};
  const std::string table = SummaryTable(model, result, table_options);
  EXPECT_THAT(table, HasSubstr("z[0](0)"));
  EXPECT_THAT(table, HasSubstr("z[1](3)"));
  EXPECT_THAT(table, Not(HasSubstr("z[1](4)")));
  EXPECT_THAT(table, Not(HasSubstr("z[2]")));
  EXPECT_THAT(table, HasSubstr("z: 1998 more elements (2000 in all, shape [2000]); 2 "
                               "components not shown"));
  EXPECT_THAT(table, HasSubstr("mu[0](1)"));
  EXPECT_THAT(table, Not(HasSubstr("Lambda")));
}

// ---- The result JSON ----------------------------------------------------------------------

TEST(ResultJson, TraceAndPosteriorsCanBeLeftOut) {
  Model model = GaussianMeanPrecision();
  const Result result = Infer(model);
  const auto full = nlohmann::json::parse(ResultJson(model, result));
  EXPECT_TRUE(full.contains("free_energy"));
  EXPECT_EQ(full["final_free_energy"].get<double>(), result.free_energy.back());
  EXPECT_TRUE(full["warnings"].is_array() && full["warnings"].empty());
  ResultJsonOptions options;
  options.trace = false;
  options.posteriors = {"tau"};
  const auto small = nlohmann::json::parse(ResultJson(model, result, options));
  EXPECT_FALSE(small.contains("free_energy"));
  EXPECT_EQ(small["final_free_energy"].get<double>(), result.free_energy.back());
  EXPECT_FALSE(small["posteriors"].contains("mu"));
  EXPECT_TRUE(small["posteriors"].contains("tau"));
  options.posteriors = {"mux"};
  EXPECT_EQ(ErrorMessage<ModelError>([&] { ResultJson(model, result, options); }),
            "posteriors: 'mux' is not a hidden variable of the model (did you mean 'mu'?); "
            "expected one of 'mu', 'tau'");
}

}  // namespace
}  // namespace vfe
