// The Monte Carlo free energy (FactorGraph::MonteCarloFreeEnergy) against the analytic one.
//
// The estimator uses only log-densities (Node::LogFactor and the posteriors' LogDensity), the
// engine's F only average-energy and entropy formulas: the two meet within a few standard
// errors when both are right. Checked per plate and for the entropy at arbitrary (not
// optimal) posteriors of every node, and in total on every example model after inference —
// where the model is a tree solved exactly, log q − log p(y, x) is the constant −log p(y)
// at every draw, so there the standard error is zero and the agreement is to rounding.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <tbb/task_arena.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "tests/testing/expect.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string ExamplePath(const std::string& name) {
  return std::string(VFE_SOURCE_DIR) + "/examples/" + name;
}

/// |analytic − estimate| within 4 standard errors, plus rounding (1e-9 relative) for draws
/// whose values do not vary.
void ExpectAgree(double analytic, double estimate, double error, const std::string& what) {
  EXPECT_TRUE(std::isfinite(estimate)) << what;
  EXPECT_LE(std::abs(analytic - estimate), 4.0 * error + 1e-9 * (1.0 + std::abs(analytic)))
      << what << ": analytic " << analytic << ", Monte Carlo " << estimate << " ± " << error;
}

/// Compares every plate's average energy, the entropy and F of `graph` at its current q.
void ExpectPartsAgree(const FactorGraph& graph, size_t samples, uint64_t seed = 1) {
  Scratch scratch = graph.MakeScratch();
  const FactorGraph::FreeEnergyTerms parts = graph.FreeEnergyParts(scratch);
  const FactorGraph::MonteCarloEstimate mc = graph.MonteCarloFreeEnergy(samples, seed);
  ASSERT_EQ(mc.plate_energy.size(), parts.plate_energy.size());
  for (size_t p = 0; p < parts.plate_energy.size(); ++p)
    ExpectAgree(parts.plate_energy[p], mc.plate_energy[p], mc.plate_energy_error[p],
                "plate " + std::to_string(p) + " (" + graph.node(static_cast<PlateId>(p)).type() +
                    ")");
  ExpectAgree(parts.entropy, mc.entropy, mc.entropy_error, "entropy");
  ExpectAgree(graph.FreeEnergy(scratch), mc.free_energy, mc.standard_error, "F");
}

Matrix Spd(int d, double scale, double coupling) {
  Matrix m = Matrix::Identity(d, d) * scale;
  for (int i = 0; i + 1 < d; ++i) m(i, i + 1) = m(i + 1, i) = coupling;
  return m;
}

// ---- Every node at arbitrary posteriors ---------------------------------------------------

TEST(MonteCarloFreeEnergy, GaussianAndGammaNodes) {
  FactorGraph g;
  const Variable mu = g.AddVariable("mu", Family::kGaussian);
  const Variable tau = g.AddVariable("tau", Family::kGamma);
  const Variable rate = g.AddVariable("rate", Family::kGamma);
  const Variable x = g.AddVariableArray("x", Family::kGaussian, {3});
  g.AddGaussian(mu, 0.0, 0.1);
  g.AddGamma(rate, 1.5, 2.0);
  g.AddGamma(tau, 2.0, rate);
  g.AddGaussian(x, mu, tau);
  g.AddGaussian(g.AddObserved("y", std::vector<double>{0.4, -1.2, 2.0}), x, 4.0);
  g.Finalize();
  g.SetPosterior(mu, Gaussian(0.3, 2.0));
  g.SetPosterior(tau, Gamma(3.0, 2.0));
  g.SetPosterior(rate, Gamma(2.0, 1.5));
  g.SetPosterior(x, Gaussian(-0.5, 1.5));
  ExpectPartsAgree(g, 20000);
}

TEST(MonteCarloFreeEnergy, MvGaussianWishartAndLinearGaussianNodes) {
  FactorGraph g;
  const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
  const Variable w = g.AddVariable("W", Family::kWishart, 2);
  const Variable tau = g.AddVariable("tau", Family::kGamma);
  const Variable z = g.AddVariable("z", Family::kMvGaussian, 3);
  g.AddMvGaussian(m, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2) * 0.5));
  g.AddWishart(w, 4.0, Spd(2, 0.5, 0.1));
  g.AddGamma(tau, 2.0, 1.0);
  Matrix rows(2, 2);
  rows << 0.5, -1.0, 1.5, 0.2;
  g.AddMvGaussian(g.AddObservedRows("y", rows), m, w);
  Matrix a(3, 2);
  a << 1.0, 0.5, -0.3, 2.0, 0.7, -1.1;
  g.AddLinearGaussian(z, m, a, tau);  // out hidden, precision τ·I
  g.AddMvGaussian(g.AddObserved("v", Vector(Vector::Constant(3, 0.3))), z, Spd(3, 2.0, 0.4));
  g.Finalize();
  g.SetPosterior(m, MvGaussian(Vector::Constant(2, 0.2), Spd(2, 3.0, -0.5)));
  g.SetPosterior(w, Wishart(5.0, Spd(2, 0.4, 0.05)));
  g.SetPosterior(tau, Gamma(4.0, 3.0));
  g.SetPosterior(z, MvGaussian(Vector::Constant(3, -0.1), Spd(3, 1.5, 0.3)));
  ExpectPartsAgree(g, 20000);
}

TEST(MonteCarloFreeEnergy, RegressionRows) {
  FactorGraph g;
  const Variable weights = g.AddVariable("w", Family::kMvGaussian, 3);
  const Variable tau = g.AddVariable("tau", Family::kGamma);
  g.AddMvGaussian(weights, Vector(Vector::Zero(3)), Matrix(Matrix::Identity(3, 3)));
  g.AddGamma(tau, 1.0, 1.0);
  Matrix design(4, 3);
  design << 1, 0.5, -1, 1, -0.3, 0.2, 1, 2.0, 0.1, 1, -1.0, 0.4;
  g.AddLinearRegression(g.AddObserved("y", std::vector<double>{1.0, 0.2, 2.5, -0.7}), weights,
                        design, tau);
  g.Finalize();
  g.SetPosterior(weights, MvGaussian(Vector::Constant(3, 0.4), Spd(3, 4.0, 0.5)));
  g.SetPosterior(tau, Gamma(3.0, 1.5));
  ExpectPartsAgree(g, 20000);
}

TEST(MonteCarloFreeEnergy, BetaBernoulliAndDirichletPriors) {
  FactorGraph g;
  const Variable p = g.AddVariable("p", Family::kBeta);
  const Variable x = g.AddVariableArray("x", Family::kBernoulli, {2});
  g.AddBeta(p, 2.0, 3.0);
  g.AddBernoulli(x, p);
  g.AddBernoulli(g.AddObserved("y", std::vector<double>{1, 0, 1}), p);
  g.Finalize();
  g.SetPosterior(p, Beta(4.0, 2.5));
  g.SetPosterior(x, Bernoulli::FromNatural(0.7));
  ExpectPartsAgree(g, 20000);
}

TEST(MonteCarloFreeEnergy, GaussianMixtureNodes) {
  for (const bool vector : {false, true}) {
    SCOPED_TRACE(vector ? "vector components" : "scalar components");
    FactorGraph g;
    const int d = vector ? 2 : 1;
    const Family location = vector ? Family::kMvGaussian : Family::kGaussian;
    const Family precision = vector ? Family::kWishart : Family::kGamma;
    const Variable means = g.AddVariableArray("means", location, {2}, d);
    const Variable precisions = g.AddVariableArray("precisions", precision, {2}, d);
    const Variable labels = g.AddVariableArray("z", Family::kCategorical, {3}, 2);
    const Variable out = g.AddVariableArray("x", location, {3}, d);
    for (int k = 0; k < 2; ++k) {
      if (vector) {
        g.AddMvGaussian(means[k], Vector(Vector::Zero(d)), Matrix(Matrix::Identity(d, d)));
        g.AddWishart(precisions[k], 3.0, Spd(d, 0.5, 0.1));
      } else {
        g.AddGaussian(means[k], 0.0, 1.0);
        g.AddGamma(precisions[k], 2.0, 1.0);
      }
    }
    g.AddGaussianMixture(out, labels, means, precisions);
    g.Finalize();
    if (vector) {
      g.SetPosterior(means[0], MvGaussian(Vector::Constant(d, 1.0), Spd(d, 3.0, 0.5)));
      g.SetPosterior(means[1], MvGaussian(Vector::Constant(d, -0.5), Spd(d, 2.0, -0.3)));
      g.SetPosterior(precisions, Wishart(4.0, Spd(d, 0.6, 0.1)));
      g.SetPosterior(out, MvGaussian(Vector::Constant(d, 0.2), Spd(d, 1.5, 0.2)));
    } else {
      g.SetPosterior(means[0], Gaussian(1.0, 3.0));
      g.SetPosterior(means[1], Gaussian(-0.5, 2.0));
      g.SetPosterior(precisions, Gamma(3.0, 2.0));
      g.SetPosterior(out, Gaussian(0.2, 1.5));
    }
    g.SetPosterior(labels, Categorical((Vector(2) << 0.3, 0.7).finished()));
    ExpectPartsAgree(g, 20000);
  }
}

TEST(MonteCarloFreeEnergy, DiscreteNodes) {
  FactorGraph g;
  const Variable p = g.AddVariable("p", Family::kDirichlet, 3);
  const Variable a = g.AddVariable("a", Family::kCategorical, 3);
  const Variable b = g.AddVariable("b", Family::kCategorical, 2);
  const Variable c = g.AddVariable("c", Family::kCategorical, 2);
  const Variable columns = g.AddVariableArray("A", Family::kDirichlet, {3}, 2);
  g.AddDirichlet(p, (Vector(3) << 1.0, 2.0, 3.0).finished());
  g.AddCategorical(a, p);
  g.AddCategorical(g.AddObservedCategorical("y", {0, 2, 2}, 3), p);
  Matrix transition(2, 3);
  transition << 0.2, 0.5, 0.9, 0.8, 0.5, 0.1;
  g.AddTransition(b, a, transition);
  Matrix alpha(2, 3);
  alpha << 1.0, 2.0, 0.5, 3.0, 1.0, 1.5;
  g.AddMatrixDirichlet(columns, alpha);
  g.AddTransition(c, a, columns);
  g.AddPotential({b, c}, {0.5, -0.2, -1.0, 0.8});
  g.Finalize();
  g.SetPosterior(p, Dirichlet((Vector(3) << 2.0, 1.5, 4.0).finished()));
  g.SetPosterior(a, Categorical((Vector(3) << 0.2, 0.5, 0.3).finished()));
  g.SetPosterior(b, Categorical((Vector(2) << 0.6, 0.4).finished()));
  g.SetPosterior(c, Categorical((Vector(2) << 0.25, 0.75).finished()));
  g.SetPosterior(columns, Dirichlet((Vector(2) << 1.5, 2.5).finished()));
  ExpectPartsAgree(g, 20000);
}

// ---- Every example after inference ---------------------------------------------------------

class ExampleModels : public ::testing::TestWithParam<const char*> {};

TEST_P(ExampleModels, MonteCarloMatchesAnalyticFreeEnergy) {
  Model model = LoadModel(ExamplePath(GetParam()));
  SequentialScheduler(model.inference.options).Run(model.graph);
  ExpectPartsAgree(model.graph, 400);
}

INSTANTIATE_TEST_SUITE_P(Examples, ExampleModels,
                         ::testing::Values("gaussian_mean_precision.json",
                                           "linear_regression.json", "coin.json",
                                           "gaussian_mixture.json", "ising.json", "hmm.json",
                                           "tracking.json"));

// The pendulum (examples/pendulum.json) has no closed-form F: its Delta nodes' energy is, by
// default, the linearisation's approximation. Its analytic F is therefore taken with the
// nodes' other energy, by Monte Carlo over q(in) with the expectation over q(out) in closed
// form ("energy": "monte_carlo"), at the posteriors inference reached with the default
// energy. That energy is itself an estimate, with its own error: with S draws per factor it
// is at most √(N/S) of the estimator's error from N joint draws (it averages the same
// quantity over fewer sources of variation), so the tolerance is 4·se·√(1 + N/S).
TEST(MonteCarloFreeEnergy, PendulumWithDeltaNodes) {
  Model fitted = LoadModel(ExamplePath("pendulum.json"));
  SequentialScheduler(fitted.inference.options).Run(fitted.graph);

  std::ifstream file(ExamplePath("pendulum.json"));
  nlohmann::json document = nlohmann::json::parse(file);
  const int draws_per_factor = 80000;
  size_t delta_nodes = 0;
  for (nlohmann::json& factor : document["factors"]) {
    if (factor["node"] != "Delta") continue;
    factor["energy"] = "monte_carlo";
    factor["samples"] = draws_per_factor;
    factor["seed"] = 11 + delta_nodes++;
  }
  ASSERT_EQ(delta_nodes, 2u);
  Model model = ParseModel(document.dump(), std::string(VFE_SOURCE_DIR) + "/examples");
  for (const Variable& v : fitted.graph.HiddenVariables())
    model.graph.SetNaturalParameters(model.graph.Find(fitted.graph.variable_name(v.id())),
                                     fitted.graph.NaturalParameters(v));

  const size_t samples = 8000;
  const double widen = std::sqrt(1.0 + static_cast<double>(samples) / draws_per_factor);
  Scratch scratch = model.graph.MakeScratch();
  const FactorGraph::FreeEnergyTerms parts = model.graph.FreeEnergyParts(scratch);
  const FactorGraph::MonteCarloEstimate mc = model.graph.MonteCarloFreeEnergy(samples, 5);
  for (size_t p = 0; p < parts.plate_energy.size(); ++p)
    ExpectAgree(parts.plate_energy[p], mc.plate_energy[p], widen * mc.plate_energy_error[p],
                "plate " + std::to_string(p) + " (" +
                    model.graph.node(static_cast<PlateId>(p)).type() + ")");
  ExpectAgree(parts.entropy, mc.entropy, mc.entropy_error, "entropy");
  const double f = model.graph.FreeEnergy(scratch);
  ExpectAgree(f, mc.free_energy, widen * mc.standard_error, "F");
  // The estimator is not trivially exact here: q is not the posterior, so draws vary.
  EXPECT_GT(mc.standard_error, 1e-6 * std::abs(f));
  // The linearised energy the example reports approximates the same F (within about 0.1
  // nat here, where the noise is small against the curvature of sin); shown for reference.
  Scratch fitted_scratch = fitted.graph.MakeScratch();
  std::printf("pendulum: F with the linearised energy %.6f, with the Monte Carlo energy %.6f, "
              "estimator %.6f ± %.6f\n",
              fitted.graph.FreeEnergy(fitted_scratch), f, mc.free_energy, mc.standard_error);
}

// ---- Exactness on a tree, determinism, errors ----------------------------------------------

TEST(MonteCarloFreeEnergy, ExactTreeHasNoVariance) {
  // A chain with known parameters solved by BP: q = p(x | y), so log q − log p(y, x) is
  // −log p(y) at every draw.
  FactorGraph g;
  const size_t t = 50;
  const Variable x = g.AddVariableArray("x", Family::kCategorical, {t}, 3);
  Matrix a(3, 3);
  a << 0.8, 0.1, 0.2, 0.1, 0.7, 0.3, 0.1, 0.2, 0.5;
  Matrix b(2, 3);
  b << 0.9, 0.4, 0.1, 0.1, 0.6, 0.9;
  g.AddCategorical(x[0], (Vector(3) << 0.5, 0.3, 0.2).finished());
  g.AddTransition(x.Slice(1, t), x.Slice(0, t - 1), a);
  std::vector<int> y(t);
  for (size_t i = 0; i < t; ++i) y[i] = static_cast<int>((i * 7 + i / 3) % 2);
  g.AddTransition(g.AddObservedCategorical("y", y, 2), x, b);
  g.AddCluster(x);
  g.Finalize();
  Scratch scratch = g.MakeScratch();
  g.UpdateElements(x.id(), 0, t, scratch);
  const FactorGraph::MonteCarloEstimate mc = g.MonteCarloFreeEnergy(200, 7);
  EXPECT_LT(mc.standard_error, 1e-9 * std::abs(mc.free_energy));
  EXPECT_NEAR(mc.free_energy, g.FreeEnergy(scratch), 1e-9 * std::abs(mc.free_energy));
}

TEST(MonteCarloFreeEnergy, SameForAnyNumberOfThreads) {
  Model model = LoadModel(ExamplePath("gaussian_mixture.json"));
  SequentialScheduler(model.inference.options).Run(model.graph);
  FactorGraph::MonteCarloEstimate one, two;
  tbb::task_arena(1).execute([&] { one = model.graph.MonteCarloFreeEnergy(64, 3); });
  tbb::task_arena(2).execute([&] { two = model.graph.MonteCarloFreeEnergy(64, 3); });
  EXPECT_EQ(one.free_energy, two.free_energy);
  EXPECT_EQ(one.standard_error, two.standard_error);
  EXPECT_EQ(one.plate_energy, two.plate_energy);
  const FactorGraph::MonteCarloEstimate other_seed = model.graph.MonteCarloFreeEnergy(64, 4);
  EXPECT_NE(one.free_energy, other_seed.free_energy);
}

/// A node with messages and an energy but no pointwise density.
class NoDensityNode final : public Node {
 public:
  const char* type() const override { return "NoDensity"; }
  std::vector<std::string> slot_names() const override { return {"out"}; }
  Family ObservedFamily(int, const PointMass&) const override { return Family::kGaussian; }
  void Bind(const std::vector<SlotInfo>&, size_t, const std::string&) override {}
  void AccumulateMessage(int, size_t begin, size_t end, const SlotView*, double* eta,
                         Workspace&) const override {
    eta[1] -= 0.5 * static_cast<double>(end - begin);
  }
  double AverageEnergy(size_t, size_t, const SlotView*, Workspace&) const override { return 0; }
};

TEST(MonteCarloFreeEnergy, Errors) {
  FactorGraph g;
  const Variable x = g.AddVariable("x", Family::kGaussian);
  g.AddFactor(std::make_unique<NoDensityNode>(), {x}, "flat prior");
  EXPECT_THAT(testing::ErrorMessage<GraphError>([&] { g.MonteCarloFreeEnergy(10); }),
              HasSubstr("Finalize"));
  g.Finalize();
  EXPECT_THROW(g.MonteCarloFreeEnergy(1), GraphError);
  EXPECT_THAT(testing::ErrorMessage<ModelError>([&] { g.MonteCarloFreeEnergy(10); }),
              AllOf(HasSubstr("flat prior"), HasSubstr("NoDensity")));
}

}  // namespace
}  // namespace vfe
