// The parallel scheduler: bitwise the same posteriors and free-energy trace for any number
// of threads, equal to the one-thread sweep in colour order, and F never rises.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/models.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;

/// What a run leaves behind: the trace, the plates' energies and the entropy (functions of
/// every posterior, so a change in any posterior changes them).
struct Outcome {
  Result result;
  std::vector<double> plate_energy;
  double entropy = 0.0;
};

Outcome RunParallel(FactorGraph& graph, int threads, SchedulerOptions options) {
  Outcome outcome;
  outcome.result = ParallelScheduler(options, threads).Run(graph);
  Scratch scratch = graph.MakeScratch();
  const FactorGraph::FreeEnergyTerms terms = graph.FreeEnergyParts(scratch);
  outcome.plate_energy = terms.plate_energy;
  outcome.entropy = terms.entropy;
  return outcome;
}

void ExpectBitwiseEqual(const Outcome& a, const Outcome& b, const std::string& what) {
  ASSERT_EQ(a.result.termination, b.result.termination) << what;
  ASSERT_EQ(a.result.free_energy.size(), b.result.free_energy.size()) << what;
  for (size_t i = 0; i < a.result.free_energy.size(); ++i)
    ASSERT_EQ(a.result.free_energy[i], b.result.free_energy[i]) << what << ", sweep " << i + 1;
  ASSERT_EQ(a.plate_energy, b.plate_energy) << what;
  ASSERT_EQ(a.entropy, b.entropy) << what;
}

/// A model builder: each call builds the same model afresh, with its sweep order.
struct ModelCase {
  std::string name;
  std::function<FactorGraph(std::vector<Variable>*)> build;
};

FactorGraph FromJson(const std::string& file, std::vector<Variable>* order) {
  Model model = LoadModel(std::string(VFE_SOURCE_DIR) + "/examples/" + file);
  *order = model.inference.options.order;
  return std::move(model.graph);
}

/// A mixture of K = 3 two-dimensional components over n points (several blocks of labels).
FactorGraph Mixture(int n, std::vector<Variable>* order) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  const int k = 3, d = 2;
  Matrix points(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) points(i, j) = 4.0 * ((i + j) % k) + normal(rng);
  FactorGraph graph = bench::MakeMixtureModel(points, k, order);
  const Variable z = order->back();
  std::uniform_real_distribution<double> uniform(0.1, 1.0);
  for (int i = 0; i < n; ++i) {
    Vector p(k);
    for (int c = 0; c < k; ++c) p[c] = uniform(rng);
    graph.SetPosterior(z[i], Categorical(Vector(p / p.sum())));
  }
  return graph;
}

/// An open side x side Ising grid: a plate of fields and plates of couplings.
FactorGraph Ising(int side, std::vector<Variable>* order, double coupling_sd = 0.5) {
  std::mt19937_64 rng(9);
  std::normal_distribution<double> normal(0.0, coupling_sd);
  return bench::MakeRandomIsingGraph(side, 1.0, normal, rng, order);
}

/// A hidden Markov chain with a learned transition matrix (two colours of states).
FactorGraph LearnedChain(std::vector<Variable>* order) {
  const std::vector<int> y = {0, 1, 1, 0, 2, 2, 1, 0, 0, 1, 2, 2, 2, 0, 1, 1, 0, 0, 2, 1};
  Matrix b(3, 2);
  b << 0.6, 0.1, 0.3, 0.3, 0.1, 0.6;
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kCategorical, {y.size()}, 2);
  const Variable a = graph.AddVariableArray("A", Family::kDirichlet, {2}, 2);
  graph.AddMatrixDirichlet(a, Matrix::Constant(2, 2, 1.5));
  graph.AddCategorical(x[0], Vector(Vector::Constant(2, 0.5)));
  graph.AddTransition(x.Slice(1, y.size()), x.Slice(0, y.size() - 1), a);
  graph.AddTransition(graph.AddObservedCategorical("y", y, 3), x, b);
  graph.Finalize();
  graph.SetPosterior(x[3], Categorical((Vector(2) << 0.2, 0.8).finished()));
  *order = {a, x};
  return graph;
}

std::vector<ModelCase> Cases() {
  return {
      {"gaussian_mean_precision.json",
       [](std::vector<Variable>* o) { return FromJson("gaussian_mean_precision.json", o); }},
      {"linear_regression.json",
       [](std::vector<Variable>* o) { return FromJson("linear_regression.json", o); }},
      {"coin.json", [](std::vector<Variable>* o) { return FromJson("coin.json", o); }},
      {"mixture N = 20000", [](std::vector<Variable>* o) { return Mixture(20000, o); }},
      {"Ising 40 x 40", [](std::vector<Variable>* o) { return Ising(40, o); }},
      {"learned chain", [](std::vector<Variable>* o) { return LearnedChain(o); }},
  };
}

TEST(ParallelScheduler, EveryThreadCountGivesBitwiseTheSamePosteriorsAndTrace) {
  for (const ModelCase& c : Cases()) {
    SchedulerOptions options;
    options.max_iterations = 12;
    options.tolerance = 0.0;
    std::vector<Variable> order;
    FactorGraph one = c.build(&order);
    options.order = order;
    const Outcome reference = RunParallel(one, 1, options);
    EXPECT_EQ(reference.result.free_energy_increases, 0) << c.name;
    for (int threads = 2; threads <= 8; ++threads) {
      FactorGraph graph = c.build(&order);
      options.order = order;
      ExpectBitwiseEqual(RunParallel(graph, threads, options), reference,
                         c.name + ", " + std::to_string(threads) + " threads");
    }
  }
}

TEST(ParallelScheduler, ColoursInIndexOrderGiveTheSequentialSweepBitForBit) {
  // In these models each variable's colours, taken in turn, visit its elements in index
  // order (one colour, or the mixture's means one per colour): the parallel sweep is then the
  // sequential one.
  for (const ModelCase& c : Cases()) {
    if (c.name.find("Ising") != std::string::npos || c.name.find("chain") != std::string::npos)
      continue;
    SchedulerOptions options;
    options.max_iterations = 10;
    options.tolerance = 0.0;
    std::vector<Variable> order;
    FactorGraph parallel = c.build(&order);
    options.order = order;
    for (const Variable& v : order) {
      std::vector<size_t> visits;
      for (const std::vector<size_t>& colour : parallel.ColourClasses(v))
        visits.insert(visits.end(), colour.begin(), colour.end());
      ASSERT_TRUE(std::is_sorted(visits.begin(), visits.end())) << c.name;
      ASSERT_EQ(visits.size(), v.size()) << c.name;
    }
    const Outcome a = RunParallel(parallel, 2, options);
    FactorGraph sequential = c.build(&order);
    options.order = order;
    Outcome b;
    b.result = SequentialScheduler(options).Run(sequential);
    Scratch scratch = sequential.MakeScratch();
    const FactorGraph::FreeEnergyTerms terms = sequential.FreeEnergyParts(scratch);
    b.plate_energy = terms.plate_energy;
    b.entropy = terms.entropy;
    ExpectBitwiseEqual(a, b, c.name);
  }
}

TEST(ParallelScheduler, IsingGridIsTheRedBlackSweep) {
  std::vector<Variable> order;
  FactorGraph graph = Ising(40, &order);
  const Variable s = order[0];
  const std::vector<std::vector<size_t>> colours = graph.ColourClasses(s);
  ASSERT_EQ(colours.size(), 2u);
  for (size_t c = 0; c < 2; ++c) {
    EXPECT_EQ(colours[c].size(), 800u);
    for (size_t i : colours[c]) EXPECT_EQ((i / 40 + i % 40) % 2, c) << "spin " << i;
  }
  // One thread by hand: red spins, then black ones, then F.
  FactorGraph by_hand = Ising(40, &order);
  Scratch scratch = by_hand.MakeScratch();
  std::vector<double> trace;
  for (int sweep = 0; sweep < 6; ++sweep) {
    for (const std::vector<size_t>& colour : colours)
      for (size_t i : colour) ASSERT_TRUE(by_hand.UpdateElement(s.id(), i, scratch));
    trace.push_back(by_hand.FreeEnergy(scratch));
  }
  SchedulerOptions options;
  options.max_iterations = 6;
  options.tolerance = 0.0;
  options.order = {s};
  const Result result = ParallelScheduler(options, 2).Run(graph);
  EXPECT_EQ(result.free_energy, trace);
  EXPECT_EQ(result.free_energy_increases, 0);
}

TEST(ParallelScheduler, EveryModelIsItsColourOrderSweepDoneByHand) {
  // The contract, element by element: each variable of the order in turn, a cluster or a
  // variable updated in blocks at once, any other one colour class after another, each
  // class's elements one at a time in index order; then F. (The scheduler updates runs of a
  // class together, the Ising grid's and the chain's every other element, which must not
  // show.)
  for (const ModelCase& c : Cases()) {
    std::vector<Variable> order;
    FactorGraph by_hand = c.build(&order);
    const std::vector<Variable> sweep_order = order.empty() ? by_hand.HiddenVariables() : order;
    Scratch scratch = by_hand.MakeScratch();
    std::vector<double> trace;
    for (int sweep = 0; sweep < 5; ++sweep) {
      for (const Variable& v : sweep_order) {
        if (by_hand.clustered(v) || by_hand.updates_in_blocks(v)) {
          ASSERT_EQ(by_hand.UpdateElements(v.id(), v.begin(), v.begin() + v.size(), scratch),
                    v.begin() + v.size());
          continue;
        }
        for (const std::vector<size_t>& colour : by_hand.ColourClasses(v))
          for (size_t i : colour) ASSERT_TRUE(by_hand.UpdateElement(v.id(), i, scratch));
      }
      trace.push_back(by_hand.FreeEnergy(scratch));
    }
    SchedulerOptions options;
    options.max_iterations = 5;
    options.tolerance = 0.0;
    for (int threads : {1, 3}) {
      FactorGraph graph = c.build(&order);
      options.order = order;
      EXPECT_EQ(ParallelScheduler(options, threads).Run(graph).free_energy, trace)
          << c.name << ", " << threads << " threads";
    }
  }
}

TEST(ParallelScheduler, FreeEnergyNeverRisesAndMatchesTheSequentialFixedPoint) {
  // Red/black and raster sweeps reach the same fixed point on a weakly coupled grid (one
  // fixed point: the mean-field map is a contraction there).
  std::vector<Variable> order;
  FactorGraph parallel = Ising(30, &order, 0.1);
  SchedulerOptions options;
  options.max_iterations = 500;
  options.tolerance = 1e-12;
  options.order = order;
  const Result a = ParallelScheduler(options, 2).Run(parallel);
  FactorGraph sequential = Ising(30, &order, 0.1);
  options.order = order;
  const Result b = SequentialScheduler(options).Run(sequential);
  ASSERT_TRUE(a.converged());
  ASSERT_TRUE(b.converged());
  EXPECT_EQ(a.free_energy_increases, 0);
  for (size_t i = 1; i < a.free_energy.size(); ++i)
    EXPECT_LE(a.free_energy[i], a.free_energy[i - 1] + 1e-12 * std::abs(a.free_energy[i]));
  EXPECT_NEAR(a.free_energy.back(), b.free_energy.back(), 1e-6 * std::abs(b.free_energy.back()));
}

/// Runs the blocks last to first, each with a fresh scratch.
class ReverseRunner final : public BlockRunner {
 public:
  explicit ReverseRunner(const FactorGraph& graph) : graph_(graph) {}
  void Run(size_t count, const Body& body) const override {
    for (size_t b = count; b-- > 0;) {
      Scratch scratch = graph_.MakeScratch();
      body(b, scratch);
    }
    runs_ += count > 0;
  }
  mutable int runs_ = 0;

 private:
  const FactorGraph& graph_;
};

TEST(ParallelScheduler, LongMessageSumsAreBlockedTheSameWayWhoeverRunsTheBlocks) {
  // The means of a mixture of 50,000 points each receive one sum over 50,000 factors: four
  // blocks, whose order of evaluation must not matter.
  std::vector<Variable> order;
  FactorGraph reversed = Mixture(50000, &order);
  FactorGraph inline_blocks = Mixture(50000, &order);
  ReverseRunner runner(reversed);
  Scratch a = reversed.MakeScratch(), b = inline_blocks.MakeScratch();
  for (int sweep = 0; sweep < 2; ++sweep) {
    for (const Variable& v : order)
      for (size_t i = 0; i < v.size(); ++i) {
        ASSERT_TRUE(reversed.UpdateElement(v.id(), v.begin() + i, a, runner));
        ASSERT_TRUE(inline_blocks.UpdateElement(v.id(), v.begin() + i, b));
      }
    ASSERT_EQ(reversed.FreeEnergy(a), inline_blocks.FreeEnergy(b));
    for (size_t k = 0; k < 3; ++k)
      ASSERT_EQ(reversed.Posterior<MvGaussian>(order[0][k]).mean(),
                inline_blocks.Posterior<MvGaussian>(order[0][k]).mean());
  }
  EXPECT_GT(runner.runs_, 0);
}

TEST(ParallelScheduler, FreeEnergyBlocksSayWhichElementsTheyRead) {
  // The scheduler hands each block to the thread that updates the elements it reads: the
  // middle element of the first hidden slot not shared by the block's factors, else of a
  // data slot, else 0, over the variable's size; entropy blocks by their own elements.
  const size_t n = 20000;  // blocks of 8192: [0, 8192), [8192, 16384), [16384, 20000)
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {n});
  const Variable m = graph.AddVariable("m", Family::kGaussian);
  const Variable t = graph.AddVariable("t", Family::kGamma);
  graph.AddGaussian(x, 0.0, 1.0);
  graph.AddGaussian(m, 0.0, 1.0);
  graph.AddGamma(t, 1.0, 1.0);
  graph.AddGaussian(graph.AddObserved("y", std::vector<double>(n, 0.5)), m, t);
  graph.Finalize();
  const std::vector<double> x_blocks = {4096.0 / n, 12288.0 / n, 18192.0 / n};
  std::vector<double> expected;
  for (double p : x_blocks) expected.push_back(p);  // x's prior, by x
  expected.push_back(0.0);                        // m's prior: its one element
  expected.push_back(0.0);                        // t's prior
  expected.push_back(0.5);  // y ~ N(m, 1/t): m and t shared, so by y; one block (its F is
                            // read from the data's cached sums), middle factor 10000
  for (double p : x_blocks) expected.push_back(p);  // H[q(x)]
  expected.push_back(0.0);                        // H[q(m)]
  expected.push_back(0.0);                        // H[q(t)]
  ASSERT_EQ(graph.num_free_energy_blocks(), expected.size());
  for (size_t b = 0; b < expected.size(); ++b)
    EXPECT_DOUBLE_EQ(graph.FreeEnergyBlockPosition(b), expected[b]) << "block " << b;
}

TEST(ParallelScheduler, BadThreadCountIsRefused) {
  EXPECT_THAT([] { ParallelScheduler(SchedulerOptions(), -1); },
              ::testing::ThrowsMessage<OptionsError>(
                  HasSubstr("threads must be >= 0 (0: every core), got -1")));
  EXPECT_GE(ParallelScheduler(SchedulerOptions(), 0).threads(), 1);
  EXPECT_EQ(ParallelScheduler(SchedulerOptions(), 3).threads(), 3);
}

}  // namespace
}  // namespace vfe
