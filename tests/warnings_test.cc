// Warnings (legal but probably a mistake) and the cures they point to: a hidden variable with
// no prior, an order that leaves out a variable, F rising, collapsed mixture components,
// natural-gradient steps refused at every length;
// random starting posteriors and the default update order of a JSON model.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/testing/expect.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using testing::ErrorMessage;
using testing::LoadError;

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ---- A hidden variable with no prior ------------------------------------------------------

TEST(Warnings, HiddenVariableWithoutPriorIsNamedWithItsImplicitPrior) {
  FactorGraph g;
  const Variable mu = g.AddVariable("mu", Family::kGaussian);
  const Variable y = g.AddObserved("y", std::vector<double>{0.5, 1.5});
  g.AddGaussian(y, mu, 1.0, "likelihood");
  g.Finalize();
  ASSERT_EQ(g.warnings().size(), 1u);
  EXPECT_THAT(g.warnings()[0],
              AllOf(HasSubstr("hidden variable 'mu' has no prior"),
                    HasSubstr("the flat prior p(x) ∝ 1 on the real line, which is improper")));
  // The run reports it too, and with the flat prior the posterior is N(ȳ, 1/N) exactly.
  SequentialScheduler scheduler(SchedulerOptions{});
  const Result result = scheduler.Run(g);
  EXPECT_THAT(result.warnings, Contains(HasSubstr("hidden variable 'mu' has no prior")));
  EXPECT_NEAR(g.Posterior<Gaussian>(mu).mean(), 1.0, 1e-12);
  EXPECT_NEAR(g.Posterior<Gaussian>(mu).variance(), 0.5, 1e-12);
}

TEST(Warnings, SomeElementsWithoutPriorAreCounted) {
  FactorGraph g;
  const Variable x = g.AddVariableArray("x", Family::kGaussian, {3});
  const Variable y = g.AddObserved("y", std::vector<double>{0.1, 0.2, 0.3});
  g.AddGaussian(x.Slice(0, 2), 0.0, 1.0, "prior");
  g.AddGaussian(y, x, 1.0, "likelihood");
  g.Finalize();
  ASSERT_EQ(g.warnings().size(), 1u);
  EXPECT_THAT(g.warnings()[0],
              HasSubstr("1 of the 3 elements of hidden variable 'x' (the first: x[2]) has no "
                        "prior"));
}

TEST(Warnings, UndirectedPotentialsAndSimplexFamiliesNameTheirPrior) {
  // A Categorical variable joined only by an undirected potential has a prior: no warning.
  const Model pair = ParseModel(R"({
    "format": "vfe-model/1",
    "variables": [{"name": "x", "family": "Categorical", "dim": 2, "shape": [2]}],
    "factors": [{"node": "Potential", "variables": ["x[0]", "x[1]"],
                 "log_table": [[1, 0], [0, 1]]}]})");
  EXPECT_THAT(pair.graph.warnings(), IsEmpty());
  // A Beta probability read only by a Bernoulli has the uniform prior, which is proper.
  FactorGraph h;
  const Variable p = h.AddVariable("p", Family::kBeta);
  const Variable flips = h.AddObserved("flips", std::vector<double>{1, 0, 1});
  h.AddFactor("Bernoulli", {{"out", flips}, {"p", p}});
  h.Finalize();
  ASSERT_EQ(h.warnings().size(), 1u);
  EXPECT_THAT(h.warnings()[0], HasSubstr("the uniform prior on (0, 1)"));
}

// ---- The order ----------------------------------------------------------------------------

/// mu ~ N(0, 1), tau ~ Gamma(1, 1), y ~ N(mu, 1/tau) for three data points.
struct MeanPrecision {
  FactorGraph g;
  Variable mu, tau;
  MeanPrecision() {
    mu = g.AddVariable("mu", Family::kGaussian);
    tau = g.AddVariable("tau", Family::kGamma);
    const Variable y = g.AddObserved("y", std::vector<double>{0.3, -0.2, 1.1});
    g.AddGaussian(mu, 0.0, 1.0, "mu_prior");
    g.AddFactor("Gamma", {{"out", tau}, {"shape", 1.0}, {"rate", 1.0}}, "tau_prior");
    g.AddGaussian(y, mu, tau, "likelihood");
    g.Finalize();
  }
};

TEST(Warnings, AnOrderThatLeavesOutAVariableWarnsUnlessItIsFixed) {
  MeanPrecision m;
  EXPECT_THAT(m.g.warnings(), IsEmpty());
  SchedulerOptions options;
  options.order = {m.mu};
  const Gamma start = m.g.Posterior<Gamma>(m.tau);
  Result result = SequentialScheduler(options).Run(m.g);
  EXPECT_THAT(result.warnings,
              Contains(HasSubstr("the order leaves out hidden variable 'tau': it keeps its "
                                 "starting posterior")));
  EXPECT_EQ(m.g.Posterior<Gamma>(m.tau).rate(), start.rate());
  // Declared fixed: no warning, and it is still not updated.
  options.fixed = {m.tau};
  result = SequentialScheduler(options).Run(m.g);
  EXPECT_THAT(result.warnings, IsEmpty());
  EXPECT_EQ(m.g.Posterior<Gamma>(m.tau).rate(), start.rate());
  // The default order leaves out the fixed variables.
  options.order.clear();
  result = SequentialScheduler(options).Run(m.g);
  EXPECT_THAT(result.warnings, IsEmpty());
  EXPECT_EQ(m.g.Posterior<Gamma>(m.tau).rate(), start.rate());
  // A fixed variable in the order, or a fixed slice, is refused.
  options.order = {m.mu, m.tau};
  EXPECT_THAT(ErrorMessage<OptionsError>([&] { SequentialScheduler(options).Run(m.g); }),
              HasSubstr("order[1]: 'tau' is fixed"));
  // Part of a variable left out is counted.
  FactorGraph g;
  const Variable x = g.AddVariableArray("x", Family::kGaussian, {4});
  g.AddGaussian(x, 0.0, 1.0, "prior");
  g.Finalize();
  SchedulerOptions part;
  part.order = {x.Slice(0, 3)};
  EXPECT_THAT(SequentialScheduler(part).Run(g).warnings,
              Contains(HasSubstr("the order leaves out 1 of the 4 elements of hidden variable "
                                 "'x'")));
}

constexpr const char* kMeanPrecisionJson = R"({
  "format": "vfe-model/1",
  "variables": [
    {"name": "mu", "family": "Gaussian"},
    {"name": "tau", "family": "Gamma"FIXED},
    {"name": "y", "observed": [0.3, -0.2, 1.1]}
  ],
  "factors": [
    {"node": "Gaussian", "out": "mu", "mean": 0.0, "precision": 1.0},
    {"node": "Gamma", "out": "tau", "shape": 1.0, "rate": 1.0},
    {"node": "Gaussian", "out": "y", "mean": "mu", "precision": "tau"}
  ],
  "inference": {"order": ["mu"]}
})";

std::string MeanPrecisionJson(const std::string& fixed) {
  std::string text = kMeanPrecisionJson;
  text.replace(text.find("FIXED"), 5, fixed);
  return text;
}

TEST(Warnings, JsonOrderThatLeavesOutAVariableIsRefusedUnlessItIsFixed) {
  EXPECT_EQ(LoadError(MeanPrecisionJson("")),
            "/inference/order: leaves out hidden variable 'tau', which would then keep its "
            "starting posterior; add it to the order, or declare it \"fixed\": true (at "
            "/variables/1)");
  Model model = ParseModel(MeanPrecisionJson(", \"fixed\": true"));
  const double rate = model.graph.Posterior<Gamma>(model.graph.Find("tau")).rate();
  const Result result = Infer(model);
  EXPECT_TRUE(result.converged());
  EXPECT_THAT(result.warnings, IsEmpty());
  EXPECT_EQ(model.graph.Posterior<Gamma>(model.graph.Find("tau")).rate(), rate);
  EXPECT_EQ(LoadError(MeanPrecisionJson(", \"fixed\": 1")),
            "/variables/1/fixed: expected true or false, found 1");
}

// ---- F rising -----------------------------------------------------------------------------

/// out ~ N(0, 1) by its average energy, but its message pulls towards a mean that moves
/// further away on every call: a node with wrong messages, which the F-rise detector must
/// catch and name.
class DriftingPriorNode final : public Node {
 public:
  const char* type() const override { return "DriftingPrior"; }
  std::vector<std::string> slot_names() const override { return {"out"}; }
  Family ObservedFamily(int, const PointMass&) const override { return Family::kGaussian; }
  void Bind(const std::vector<SlotInfo>&, size_t, const std::string&) override {}
  void AccumulateMessage(int, size_t begin, size_t end, const SlotView*, double* eta,
                         Workspace&) const override {
    calls_ += 1;
    for (size_t n = begin; n < end; ++n) {
      eta[0] += 10.0 * calls_;  // precision 1 times the drifting mean
      eta[1] -= 0.5;
    }
  }
  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    double u = 0.0;
    for (size_t n = begin; n < end; ++n) u += 0.5 * std::log(2 * M_PI) + 0.5 * q[0].At(n)[1];
    return u;
  }

 private:
  mutable double calls_ = 0;
};

TEST(Warnings, RisingFreeEnergyNamesTheSweepAndTheVariable) {
  FactorGraph g;
  const Variable mu = g.AddVariable("mu", Family::kGaussian);
  const Variable y = g.AddObserved("y", std::vector<double>{0.0});
  g.AddFactor(std::make_unique<DriftingPriorNode>(), {mu}, "drifting");
  g.AddGaussian(y, mu, 1.0, "likelihood");
  g.Finalize();
  SchedulerOptions options;
  options.max_iterations = 5;
  options.tolerance = 0;
  const Result result = SequentialScheduler(options).Run(g);
  EXPECT_GT(result.free_energy_increases, 0);
  EXPECT_THAT(
      result.warnings,
      AllOf(Contains(HasSubstr("F rose after")),
            Contains(HasSubstr("a mean-field update never raises F")),
            Contains(AllOf(HasSubstr("the update of 'mu' raised F by"), HasSubstr("in sweep ")))));
}

// ---- Mixtures: collapse, its warning and its cures ---------------------------------------

/// The collapse example: a 2-component 1-D mixture whose means are given distinct starting
/// values; `inference` is the model's "inference" block.
std::string CollapseModel(const std::string& inference) {
  return R"({
  "format": "vfe-model/1",
  "variables": [
    {"name": "mu", "family": "Gaussian", "shape": [2]},
    {"name": "tau", "family": "Gamma", "shape": [2]},
    {"name": "pi", "family": "Dirichlet", "dim": 2},
    {"name": "z", "family": "Categorical", "dim": 2, "shape": [8]},
    {"name": "y", "observed": [-2.1, -1.8, -2.4, -2.0, 1.9, 2.3, 2.0, 2.2]}
  ],
  "factors": [
    {"node": "Gaussian", "for": {"k": [0, 2]}, "out": "mu[k]", "mean": 0.0, "precision": 0.01},
    {"node": "Gamma", "for": {"k": [0, 2]}, "out": "tau[k]", "shape": 1.0, "rate": 1.0},
    {"node": "Dirichlet", "out": "pi", "alpha": [1.0, 1.0]},
    {"node": "Categorical", "for": {"n": [0, 8]}, "out": "z[n]", "p": "pi"},
    {"node": "GaussianMixture", "name": "mixture", "for": {"n": [0, 8]}, "out": "y[n]",
     "switch": "z[n]", "means": "mu", "precisions": "tau"}
  ],
  "inference": )" +
         inference + "\n}";
}

/// |E[mu_0] − E[mu_1]| after a run.
double Separation(const Model& model) {
  const Variable mu = model.graph.Find("mu");
  return std::abs(model.graph.Posterior<Gaussian>(mu[0]).mean() -
                  model.graph.Posterior<Gaussian>(mu[1]).mean());
}

constexpr const char* kGivenMeans =
    R"("initial": {"mu": [{"mean": -1.0, "variance": 1.0}, {"mean": 1.0, "variance": 1.0}]})";

// ---- Natural-gradient steps refused at every length ----------------------------------------

/// A non-conjugate factor on a Gaussian whose natural-gradient target always has a negative
/// precision (a wrong message): no step length gives a proper q, so every step is refused.
class ImproperTargetNode final : public Node {
 public:
  const char* type() const override { return "ImproperTarget"; }
  std::vector<std::string> slot_names() const override { return {"out"}; }
  Family ObservedFamily(int, const PointMass&) const override { return Family::kGaussian; }
  void Bind(const std::vector<SlotInfo>&, size_t, const std::string&) override {}
  bool StepsOnFreeEnergy(int) const override { return true; }
  void AccumulateMessage(int, size_t begin, size_t end, const SlotView*, double* eta,
                         Workspace&) const override {
    for (size_t n = begin; n < end; ++n) eta[1] += 1e300;  // −P/2 far above 0
  }
  double AverageEnergy(size_t, size_t, const SlotView*, Workspace&) const override { return 0; }
};

TEST(Warnings, StepsRefusedAtEveryLengthNameTheVariable) {
  FactorGraph g;
  const Variable x = g.AddVariable("x", Family::kGaussian);
  const Variable y = g.AddObserved("y", std::vector<double>{0.5});
  g.AddGaussian(x, 0.0, 1.0, "prior");
  g.AddFactor(std::make_unique<ImproperTargetNode>(), {x}, "improper");
  g.AddGaussian(y, x, 1.0, "likelihood");
  g.Finalize();
  SchedulerOptions options;
  options.max_iterations = 5;
  const Result result = SequentialScheduler(options).Run(g);
  EXPECT_THAT(result.warnings,
              Contains(AllOf(HasSubstr("variable 'x'"), HasSubstr("refused at every step length"),
                             HasSubstr("narrower prior"))));
  // The posterior is the prior's: no step was taken.
  EXPECT_EQ(g.Posterior<Gaussian>(x).mean(), 0.0);
}

TEST(Warnings, StepsTakenRaiseNoRefusalWarning) {
  Model model = ParseModel(R"({"format": "vfe-model/1",
    "variables": [{"name": "x", "family": "Gaussian"}, {"name": "y", "observed": [3, 5, 4]}],
    "factors": [{"node": "Gaussian", "out": "x", "mean": 0, "precision": 1},
                {"node": "Poisson", "for": {"n": [0, 3]}, "out": "y[n]", "in": "x"}]})");
  const Result result = Infer(model);
  EXPECT_EQ(result.termination, Termination::kConverged);
  EXPECT_THAT(result.warnings, IsEmpty());
}

TEST(Mixtures, MeansUpdatedFirstCollapseAndTheRunWarns) {
  Model model = ParseModel(
      CollapseModel(std::string(R"({"order": ["mu", "tau", "pi", "z"], )") + kGivenMeans + "}"));
  const Result result = Infer(model);
  EXPECT_LT(Separation(model), 1e-9);
  EXPECT_THAT(result.warnings,
              Contains(AllOf(HasSubstr("components 0 and 1 of 'mixture' (GaussianMixture) "
                                       "collapsed"),
                             HasSubstr("mu[0] = mu[1]"), HasSubstr("tau[0] = tau[1]"),
                             HasSubstr("\"random\""))));
}

TEST(Mixtures, TheDefaultOrderReadsGivenMeansFirstAndSeparates) {
  // No order: the variables given a start (mu) are updated after the others, so q(z) is
  // computed from the given means first.
  Model model = ParseModel(CollapseModel(std::string("{") + kGivenMeans + "}"));
  const std::vector<Variable>& order = model.inference.options.order;
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(model.graph.variable_name(order[0].id()), "tau");
  EXPECT_EQ(model.graph.variable_name(order[3].id()), "mu");
  const Result result = Infer(model);
  EXPECT_TRUE(result.converged());
  EXPECT_GT(Separation(model), 3.5);  // the data's two clusters are 4.1 apart
  EXPECT_THAT(result.warnings, IsEmpty());
}

TEST(Mixtures, RandomResponsibilitiesSeparateOnEverySeed) {
  for (int seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Model model = ParseModel(CollapseModel(
        R"({"order": ["mu", "tau", "pi", "z"], "iterations": 500, "initial": {"z": {"random": {"seed": )" +
        std::to_string(seed) + "}}}}"));
    const Result result = Infer(model);
    EXPECT_TRUE(result.converged());
    EXPECT_GT(Separation(model), 3.5);
    EXPECT_THAT(result.warnings, IsEmpty());
  }
}

TEST(RandomStart, CategoricalResponsibilitiesAreDirichletDrawsAndRepeatable) {
  Model model = ParseModel(CollapseModel("{}"));
  FactorGraph& g = model.graph;
  const Variable z = g.Find("z");
  g.SetRandomPosterior(z, 7);
  std::vector<double> first;
  for (size_t n = 0; n < z.size(); ++n) {
    const Vector p = g.Posterior<Categorical>(z[n]).p();
    EXPECT_NEAR(p.sum(), 1.0, 1e-15);
    EXPECT_GT(p.minCoeff(), 0.0);
    first.push_back(p(0));
  }
  EXPECT_NE(first[0], first[1]);
  g.SetRandomPosterior(z, 7);
  for (size_t n = 0; n < z.size(); ++n) EXPECT_EQ(g.Posterior<Categorical>(z[n]).p()(0), first[n]);
  g.SetRandomPosterior(z, 8);
  EXPECT_NE(g.Posterior<Categorical>(z[0]).p()(0), first[0]);
}

TEST(RandomStart, GaussianMeansMoveAndKeepTheirSpread) {
  Model model = ParseModel(CollapseModel("{}"));
  FactorGraph& g = model.graph;
  const Variable mu = g.Find("mu");
  const Gaussian before = g.Posterior<Gaussian>(mu[0]);
  g.SetRandomPosterior(mu, 3);
  const Gaussian after = g.Posterior<Gaussian>(mu[0]);
  EXPECT_NE(after.mean(), before.mean());
  EXPECT_NEAR(after.variance(), before.variance(), 1e-12 * before.variance());
  EXPECT_NE(g.Posterior<Gaussian>(mu[1]).mean(), after.mean());
}

TEST(RandomStart, OtherFamiliesAndMisuseAreRefused) {
  Model model = ParseModel(CollapseModel("{}"));
  EXPECT_THAT(
      ErrorMessage<GraphError>([&] { model.graph.SetRandomPosterior(model.graph.Find("tau"), 1); }),
      HasSubstr("variable 'tau' is Gamma; random starts are for Categorical, Gaussian "
                "and MvGaussian variables"));
  EXPECT_THAT(
      ErrorMessage<GraphError>([&] { model.graph.SetRandomPosterior(model.graph.Find("y"), 1); }),
      HasSubstr("is observed"));
  FactorGraph unfinished;
  const Variable x = unfinished.AddVariable("x", Family::kGaussian);
  unfinished.AddGaussian(x, 0.0, 1.0);
  EXPECT_THAT(ErrorMessage<GraphError>([&] { unfinished.SetRandomPosterior(x, 1); }),
              HasSubstr("finalise the graph first"));
  EXPECT_EQ(LoadError(CollapseModel(R"({"initial": {"tau": {"random": {"seed": 1}}}})")),
            "/inference/initial/tau/random: expected a Categorical, Gaussian or MvGaussian "
            "variable, found 'tau' (Gamma) (give its starting posterior instead)");
  EXPECT_EQ(LoadError(CollapseModel(R"({"initial": {"z": {"random": {"sed": 1}}}})")),
            "/inference/initial/z/random/sed: unknown key 'sed' (did you mean 'seed'?); expected "
            "one of 'seed'");
}

// ---- A dimension mismatch in JSON ----------------------------------------------------------

TEST(ModelErrors, DimensionMismatchPointsAtTheSlotAndSaysWhereTheDimensionComesFrom) {
  const std::string error = LoadError(R"({
    "format": "vfe-model/1",
    "variables": [{"name": "w", "family": "MvGaussian", "dim": 3}],
    "factors": [{"node": "MvGaussian", "out": "w", "mean": [0, 0],
                 "precision": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}]})");
  EXPECT_THAT(error, AllOf(HasSubstr("/factors/0/mean (MvGaussian): 'mean' expects dimension 3 "
                                     "('out' is variable 'w', MvGaussian of dimension 3), got "),
                           HasSubstr("of dimension 2")));
}

}  // namespace
}  // namespace vfe
