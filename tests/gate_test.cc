// Gates: mixtures of any conjugate node. Oracles: exact evidence by enumeration over the
// labels (known parameters), the GaussianMixture node (the same model from summed
// statistics), Monte Carlo F from log-densities, and the bound −F <= log p(y).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/testing/expect.h"
#include "vfe/core/special.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using testing::ErrorMessage;
using ::testing::HasSubstr;
using testing::LoadError;
using Json = nlohmann::ordered_json;

const std::vector<int> kFlips = {1, 1, 0, 1, 0, 0, 1, 1};

/// log Σ_k exp(a_k).
double LogSumExp(const std::vector<double>& a) {
  double m = a[0];
  for (double x : a) m = std::max(m, x);
  double s = 0;
  for (double x : a) s += std::exp(x - m);
  return m + std::log(s);
}

TEST(Gate, KnownParametersGiveTheExactEvidenceByEnumeration) {
  // x_n ~ Bernoulli(theta[z_n]), z_n ~ Categorical(0.3, 0.7), theta = (0.2, 0.9) known. With
  // nothing else hidden, mean field over the z_n is exact: −F = log p(x).
  const double pi[2] = {0.3, 0.7}, theta[2] = {0.2, 0.9};
  Json model = {
      {"format", "vfe-model/1"},
      {"variables",
       {{{"name", "z"}, {"family", "Categorical"}, {"dim", 2}, {"shape", {kFlips.size()}}},
        {{"name", "theta"}, {"observed", {theta[0], theta[1]}}},
        {{"name", "x"}, {"observed", kFlips}}}},
      {"factors",
       {{{"node", "Categorical"},
         {"for", {{"n", {0, kFlips.size()}}}},
         {"out", "z[n]"},
         {"p", {pi[0], pi[1]}}},
        {{"node", "Bernoulli"},
         {"name", "flips"},
         {"for", {{"n", {0, kFlips.size()}}}},
         {"gate", "z[n]"},
         {"components", {{"k", {0, 2}}}},
         {"out", "x[n]"},
         {"p", "theta[k]"}}}},
      {"inference", {{"iterations", 10}, {"tolerance", 0}}}};
  Model m = ParseModel(model.dump());
  const Result result = Infer(m);
  // log p(x) by enumeration over all 2^N labellings.
  const size_t n = kFlips.size();
  std::vector<double> terms;
  for (size_t z = 0; z < (size_t{1} << n); ++z) {
    double log_joint = 0;
    for (size_t i = 0; i < n; ++i) {
      const int k = (z >> i) & 1;
      log_joint += std::log(pi[k]) + (kFlips[i] ? std::log(theta[k]) : std::log1p(-theta[k]));
    }
    terms.push_back(log_joint);
  }
  const double log_evidence = LogSumExp(terms);
  EXPECT_RELATIVE_NEAR(result.evidence_lower_bound(), log_evidence, 1e-13);
  // And each q(z_n) is the exact posterior p(z_n | x_n).
  for (size_t i = 0; i < n; ++i) {
    const double a = pi[0] * (kFlips[i] ? theta[0] : 1 - theta[0]);
    const double b = pi[1] * (kFlips[i] ? theta[1] : 1 - theta[1]);
    EXPECT_NEAR(m.graph.Posterior<Categorical>(m.graph.Find("z")[i]).p()(0), a / (a + b), 1e-14);
  }
  EXPECT_THAT(result.warnings, ::testing::IsEmpty());
}

/// A mixture of two Bernoullis with learned Beta(1, 1) probabilities and Dirichlet(1, 1)
/// weights, labels started at random.
Json LearnedBernoulliMixture() {
  return {
      {"format", "vfe-model/1"},
      {"variables",
       {{{"name", "theta"}, {"family", "Beta"}, {"shape", {2}}},
        {{"name", "pi"}, {"family", "Dirichlet"}, {"dim", 2}},
        {{"name", "z"}, {"family", "Categorical"}, {"dim", 2}, {"shape", {kFlips.size()}}},
        {{"name", "x"}, {"observed", kFlips}}}},
      {"factors",
       {{{"node", "Beta"}, {"for", {{"k", {0, 2}}}}, {"out", "theta[k]"}, {"a", 1.0}, {"b", 1.0}},
        {{"node", "Dirichlet"}, {"out", "pi"}, {"alpha", {1.0, 1.0}}},
        {{"node", "Categorical"},
         {"for", {{"n", {0, kFlips.size()}}}},
         {"out", "z[n]"},
         {"p", "pi"}},
        {{"node", "Bernoulli"},
         {"for", {{"n", {0, kFlips.size()}}}},
         {"gate", "z[n]"},
         {"components", {{"k", {0, 2}}}},
         {"out", "x[n]"},
         {"p", "theta[k]"}}}},
      {"inference",
       {{"iterations", 1000},
        {"tolerance", 1e-13},
        {"initial", {{"z", {{"random", {{"seed", 3}}}}}}}}}};
}

TEST(Gate, LearnedMixtureBoundsTheEvidenceAndItsFreeEnergyIsTheMonteCarloOne) {
  Model m = ParseModel(LearnedBernoulliMixture().dump());
  const Result result = Infer(m);
  ASSERT_TRUE(result.converged()) << result.message;
  EXPECT_EQ(result.free_energy_increases, 0);
  // log p(x) by enumeration: for each labelling, the Dirichlet–Categorical marginal of z times
  // each component's Beta–Bernoulli marginal, B(1 + heads, 1 + tails) / B(1, 1).
  const size_t n = kFlips.size();
  auto log_beta = [](double a, double b) { return LogGamma(a) + LogGamma(b) - LogGamma(a + b); };
  std::vector<double> terms;
  for (size_t z = 0; z < (size_t{1} << n); ++z) {
    double count[2] = {0, 0}, heads[2] = {0, 0};
    for (size_t i = 0; i < n; ++i) {
      const int k = (z >> i) & 1;
      count[k] += 1;
      heads[k] += kFlips[i];
    }
    double log_joint = log_beta(1 + count[0], 1 + count[1]) - log_beta(1, 1);
    for (int k = 0; k < 2; ++k)
      log_joint += log_beta(1 + heads[k], 1 + count[k] - heads[k]) - log_beta(1, 1);
    terms.push_back(log_joint);
  }
  const double log_evidence = LogSumExp(terms);
  EXPECT_LE(result.evidence_lower_bound(), log_evidence + 1e-12);
  // The gate's energy formula against its log-density: F within 4 standard errors.
  const FactorGraph::MonteCarloEstimate mc = m.graph.MonteCarloFreeEnergy(200000, 11);
  EXPECT_NEAR(mc.free_energy, result.free_energy.back(), 4 * mc.standard_error);
}

/// The collapse example's data as a Gaussian mixture: the GaussianMixture node, or a gated
/// Gaussian.
Json GaussianMixtureModel(bool gated) {
  Json likelihood = gated ? Json{{"node", "Gaussian"},
                                 {"name", "mixture"},
                                 {"for", {{"n", {0, 8}}}},
                                 {"gate", "z[n]"},
                                 {"components", {{"k", {0, 2}}}},
                                 {"out", "y[n]"},
                                 {"mean", "mu[k]"},
                                 {"precision", "tau[k]"}}
                          : Json{{"node", "GaussianMixture"}, {"name", "mixture"},
                                 {"for", {{"n", {0, 8}}}},    {"out", "y[n]"},
                                 {"switch", "z[n]"},          {"means", "mu"},
                                 {"precisions", "tau"}};
  return {{"format", "vfe-model/1"},
          {"variables",
           {{{"name", "mu"}, {"family", "Gaussian"}, {"shape", {2}}},
            {{"name", "tau"}, {"family", "Gamma"}, {"shape", {2}}},
            {{"name", "pi"}, {"family", "Dirichlet"}, {"dim", 2}},
            {{"name", "z"}, {"family", "Categorical"}, {"dim", 2}, {"shape", {8}}},
            {{"name", "y"}, {"observed", {-2.1, -1.8, -2.4, -2.0, 1.9, 2.3, 2.0, 2.2}}}}},
          {"factors",
           {{{"node", "Gaussian"},
             {"for", {{"k", {0, 2}}}},
             {"out", "mu[k]"},
             {"mean", 0.0},
             {"precision", 0.01}},
            {{"node", "Gamma"},
             {"for", {{"k", {0, 2}}}},
             {"out", "tau[k]"},
             {"shape", 1.0},
             {"rate", 1.0}},
            {{"node", "Dirichlet"}, {"out", "pi"}, {"alpha", {1.0, 1.0}}},
            {{"node", "Categorical"}, {"for", {{"n", {0, 8}}}}, {"out", "z[n]"}, {"p", "pi"}},
            likelihood}},
          {"inference",
           {{"order", {"mu", "tau", "pi", "z"}},
            {"iterations", 200},
            {"tolerance", 0},
            {"initial", {{"z", {{"random", {{"seed", 5}}}}}}}}}};
}

/// The two runs' F after every sweep, equal to rounding: the same updates from the same start,
/// their sums formed differently.
void ExpectSameTrace(const Result& a, const Result& b) {
  ASSERT_EQ(a.free_energy.size(), b.free_energy.size());
  for (size_t i = 0; i < a.free_energy.size(); ++i)
    ASSERT_NEAR(b.free_energy[i], a.free_energy[i], 1e-10 * std::abs(a.free_energy[i]))
        << "sweep " << i + 1;
}

TEST(Gate, GatedGaussianIsTheGaussianMixtureNode) {
  Model node = ParseModel(GaussianMixtureModel(false).dump());
  Model gate = ParseModel(GaussianMixtureModel(true).dump());
  ExpectSameTrace(Infer(node), Infer(gate));
  for (size_t k = 0; k < 2; ++k)
    EXPECT_NEAR(gate.graph.Posterior<Gaussian>(gate.graph.Find("mu")[k]).mean(),
                node.graph.Posterior<Gaussian>(node.graph.Find("mu")[k]).mean(), 1e-10);
  EXPECT_THAT(gate.graph.node(4).type(), ::testing::StrEq("Gate(Gaussian)"));
}

TEST(Gate, MultivariateGatedGaussianIsTheGaussianMixtureNodeOnTheExample) {
  std::ifstream in(std::string(VFE_SOURCE_DIR) + "/examples/gaussian_mixture.json");
  Json model = Json::parse(in);
  model["inference"]["iterations"] = 30;
  model["inference"]["tolerance"] = 0;
  Json gated = model;
  gated["factors"][4] = {
      {"node", "MvGaussian"}, {"name", "likelihood"},          {"for", {{"n", {0, 2000}}}},
      {"gate", "z[n]"},       {"components", {{"k", {0, 5}}}}, {"out", "y[n]"},
      {"mean", "mu[k]"},      {"precision", "Lambda[k]"}};
  const std::string base = std::string(VFE_SOURCE_DIR) + "/examples";
  Model a = ParseModel(model.dump(), base);
  Model b = ParseModel(gated.dump(), base);
  ExpectSameTrace(Infer(a), Infer(b));
}

TEST(Gate, MixtureOfLinearRegressionsRecoversTwoLines) {
  // y = 2x + 1 for the first half of the points and y = −x + 3 for the second, with a little
  // noise (a fixed pattern, so that the test does not depend on a generator).
  const int n = 40;
  Json x_rows = Json::array(), y = Json::array();
  for (int i = 0; i < n; ++i) {
    const double x = -2.0 + 4.0 * (i % 20) / 19.0;
    const double noise = 0.05 * ((i * 7) % 5 - 2);
    x_rows.push_back({x, 1.0});
    y.push_back(i < 20 ? 2 * x + 1 + noise : -x + 3 + noise);
  }
  Json model = {{"format", "vfe-model/1"},
                {"variables",
                 {{{"name", "w"}, {"family", "MvGaussian"}, {"dim", 2}, {"shape", {2}}},
                  {{"name", "tau"}, {"family", "Gamma"}, {"shape", {2}}},
                  {{"name", "pi"}, {"family", "Dirichlet"}, {"dim", 2}},
                  {{"name", "z"}, {"family", "Categorical"}, {"dim", 2}, {"shape", {n}}},
                  {{"name", "X"}, {"dim", 2}, {"observed", x_rows}},
                  {{"name", "y"}, {"observed", y}}}},
                {"factors",
                 {{{"node", "MvGaussian"},
                   {"for", {{"k", {0, 2}}}},
                   {"out", "w[k]"},
                   {"mean", {0, 0}},
                   {"precision", {{0.01, 0}, {0, 0.01}}}},
                  {{"node", "Gamma"},
                   {"for", {{"k", {0, 2}}}},
                   {"out", "tau[k]"},
                   {"shape", 1.0},
                   {"rate", 0.01}},
                  {{"node", "Dirichlet"}, {"out", "pi"}, {"alpha", {1.0, 1.0}}},
                  {{"node", "Categorical"}, {"for", {{"n", {0, n}}}}, {"out", "z[n]"}, {"p", "pi"}},
                  {{"node", "LinearGaussian"},
                   {"name", "experts"},
                   {"for", {{"n", {0, n}}}},
                   {"gate", "z[n]"},
                   {"components", {{"k", {0, 2}}}},
                   {"out", "y[n]"},
                   {"in", "w[k]"},
                   {"matrix", "X[n]"},
                   {"precision", "tau[k]"}}}},
                {"inference",
                 {{"order", {"w", "tau", "pi", "z"}},
                  {"iterations", 2000},
                  {"tolerance", 1e-12},
                  {"initial", {{"z", {{"random", {{"seed", 2}}}}}}}}}};
  Model m = ParseModel(model.dump());
  const Result result = Infer(m);
  ASSERT_TRUE(result.converged()) << result.message;
  EXPECT_EQ(result.free_energy_increases, 0);
  std::vector<Vector> w;
  for (size_t k = 0; k < 2; ++k)
    w.push_back(m.graph.Posterior<MvGaussian>(m.graph.Find("w")[k]).mean());
  if (w[0](0) < w[1](0)) std::swap(w[0], w[1]);  // components are found in either order
  EXPECT_NEAR(w[0](0), 2.0, 0.05);
  EXPECT_NEAR(w[0](1), 1.0, 0.05);
  EXPECT_NEAR(w[1](0), -1.0, 0.05);
  EXPECT_NEAR(w[1](1), 3.0, 0.05);
  const FactorGraph::MonteCarloEstimate mc = m.graph.MonteCarloFreeEnergy(100000, 3);
  EXPECT_NEAR(mc.free_energy, result.free_energy.back(), 4 * mc.standard_error);
}

TEST(Gate, CollapsedGatedComponentsAreReported) {
  Json model = GaussianMixtureModel(true);
  model["inference"] = {{"order", {"mu", "tau", "pi", "z"}}};
  Model m = ParseModel(model.dump());
  const Result result = Infer(m);
  EXPECT_THAT(result.warnings,
              ::testing::Contains(HasSubstr("components 0 and 1 of 'mixture' (Gate(Gaussian)) "
                                            "collapsed: their posteriors are identical (mu[0] = "
                                            "mu[1], tau[0] = tau[1])")));
}

TEST(Gate, MisuseIsRefused) {
  Json model = GaussianMixtureModel(true);
  model["factors"][4].erase("components");
  EXPECT_THAT(LoadError(model.dump()),
              HasSubstr("/factors/4: a gated factor needs \"components\""));
  model = GaussianMixtureModel(true);
  model["factors"][4]["gate"] = "mu[0]";
  EXPECT_THAT(LoadError(model.dump()),
              HasSubstr("/factors/4/gate: expected a Categorical variable (the selector), found "
                        "'mu' (Gaussian)"));
  model = GaussianMixtureModel(true);
  model["factors"][4]["components"] = {{"k", {0, 3}}};
  EXPECT_THAT(LoadError(model.dump()), HasSubstr("/factors/4/mean: index 0 of \"mu[k]\" is 2"));
  model = GaussianMixtureModel(true);
  model["factors"][4]["components"] = {{"n", {0, 2}}};
  EXPECT_THAT(LoadError(model.dump()),
              HasSubstr("/factors/4/components/n: 'n' is already a loop of \"for\""));
  model = GaussianMixtureModel(false);
  model["factors"][4]["components"] = {{"k", {0, 2}}};
  EXPECT_THAT(LoadError(model.dump()), HasSubstr("components need a selector"));
  // C++: the components must share their "out".
  FactorGraph g;
  const Variable z = g.AddVariable("z", Family::kCategorical, 2);
  const Variable a = g.AddVariable("a", Family::kGaussian);
  const Variable b = g.AddVariable("b", Family::kGaussian);
  EXPECT_THAT(ErrorMessage<ParameterError>([&] {
                g.AddGatedFactor("Gaussian", z,
                                 {{{"out", a}, {"mean", 0.0}, {"precision", 1.0}},
                                  {{"out", b}, {"mean", 1.0}, {"precision", 1.0}}});
              }),
              HasSubstr("'out': expected the same 'out' in every component"));
  EXPECT_EQ(g.num_plates(), 0u);
}

}  // namespace
}  // namespace vfe
