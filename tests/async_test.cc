// The asynchronous scheduler: the fixed point of the sweeps on every example model, the
// parallel sweeps bit for bit with threshold 0, the same result for any thread count, F never
// above its start on a mixture and an Ising grid, change-driven skipping, quiescence, the
// update cap, option errors, and selection from JSON.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/models.h"
#include "tests/testing/textbook.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

Model Example(const std::string& file) {
  return LoadModel(std::string(VFE_SOURCE_DIR) + "/examples/" + file);
}

AsyncOptions WithThreads(int threads, double threshold = AsyncOptions().threshold) {
  AsyncOptions async;
  async.threads = threads;
  async.threshold = threshold;
  return async;
}

/// A mixture of K = 3 two-dimensional components over n points, labels started at random.
FactorGraph Mixture(int n, std::vector<Variable>* order) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  const int k = 3, d = 2;
  Matrix points(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) points(i, j) = 3.0 * ((i * 7 + j) % k) + normal(rng);
  FactorGraph graph = bench::MakeMixtureModel(points, k, order);
  const Variable z = order->back();
  std::uniform_real_distribution<double> uniform(0.05, 1.0);
  for (int i = 0; i < n; ++i) {
    Vector p(k);
    for (int c = 0; c < k; ++c) p[c] = uniform(rng);
    graph.SetPosterior(z[i], Categorical(Vector(p / p.sum())));
  }
  return graph;
}

/// An open side x side Ising grid with random fields and couplings (many local optima of F
/// when the couplings are strong), spins started at random.
FactorGraph Ising(int side, double coupling_sd, std::vector<Variable>* order) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, coupling_sd);
  FactorGraph graph = bench::MakeRandomIsingGraph(side, 0.3, normal, rng, order);
  const Variable s = order->front();
  std::uniform_real_distribution<double> uniform(0.05, 0.95);
  for (size_t i = 0; i < s.size(); ++i) {
    const double p = uniform(rng);
    graph.SetPosterior(s[i], Categorical((Vector(2) << p, 1 - p).finished()));
  }
  return graph;
}

// ---- The fixed point of the sweeps ---------------------------------------------------------

/// The example models: every file of examples/ in the format "vfe-model/1", by name.
std::vector<std::string> ExampleModelFiles() {
  std::vector<std::string> files;
  for (const std::filesystem::directory_entry& entry :
       std::filesystem::directory_iterator(std::string(VFE_SOURCE_DIR) + "/examples")) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    const nlohmann::json document = nlohmann::json::parse(in);
    // Streaming models (a "stream" block: one time slice) run step by step (stream_test).
    if (document.value("format", "") == "vfe-model/1" && !document.contains("stream"))
      files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// True when a plate of `graph` is a Delta node: its updates of `in` may raise F.
bool HasDeltaNode(const FactorGraph& graph) {
  for (PlateId p = 0; p < graph.num_plates(); ++p)
    if (std::string(graph.node(p).type()) == "Delta") return true;
  return false;
}

TEST(AsyncScheduler, EveryExampleModelReachesTheFixedPointOfTheSweeps) {
  // The oracles: the sequential sweeps, and the parallel scheduler's (each variable colour by
  // colour, the order the async rounds follow), run until F changes by less than 1e-13.
  // The async runs end only when they fall quiet (tolerance 0): the tolerance rule stops a
  // slowly converging run before its fixed point under any scheduler (the pendulum's,
  // 2.5e-6 away with its own tolerance of 1e-10).
  const std::vector<std::string> files = ExampleModelFiles();
  ASSERT_GE(files.size(), 8u);
  std::vector<std::string> order_dependent;
  for (const std::string& file : files) {
    Model sequential = Example(file);
    SchedulerOptions fixed_point = sequential.inference.options;
    fixed_point.max_iterations = 100000;
    fixed_point.tolerance = 1e-13;
    const Result by_sweeps = SequentialScheduler(fixed_point).Run(sequential.graph);
    ASSERT_TRUE(by_sweeps.converged()) << file << ": " << by_sweeps.message;
    Model parallel = Example(file);
    const Result by_colours = ParallelScheduler(fixed_point, 1).Run(parallel.graph);
    ASSERT_TRUE(by_colours.converged()) << file << ": " << by_colours.message;
    const double f = by_sweeps.free_energy.back();
    const double f_colours = by_colours.free_energy.back();
    // A model with several optima may reach another one when its elements are updated colour
    // by colour (red/black on the Ising grid) instead of in index order.
    const bool same_optimum = std::abs(f_colours - f) <= 1e-8 * std::abs(f);
    if (!same_optimum) order_dependent.push_back(file);
    for (int threads : {1, 2, 4}) {
      Model model = Example(file);
      SchedulerOptions until_quiet = model.inference.options;
      until_quiet.max_iterations = 100000;
      until_quiet.tolerance = 0.0;
      const Result result =
          AsyncScheduler(until_quiet, WithThreads(threads)).Run(model.graph);
      const std::string what = file + ", " + std::to_string(threads) + " threads";
      EXPECT_THAT(result.message, HasSubstr("quiescent")) << what;
      EXPECT_NEAR(result.free_energy.back(), f_colours, 1e-8 * std::abs(f_colours)) << what;
      if (same_optimum) {
        EXPECT_NEAR(result.free_energy.back(), f, 1e-8 * std::abs(f)) << what;
      }
      if (!HasDeltaNode(model.graph)) {
        EXPECT_EQ(result.free_energy_increases, 0) << what;
      }
    }
  }
  EXPECT_EQ(order_dependent, std::vector<std::string>{"ising.json"});
}

TEST(AsyncScheduler, CoinGivesTheExactPosteriorAndEvidenceAndFallsQuiet) {
  // Beta(2, 2) prior, 9 heads and 3 tails: the posterior is Beta(11, 5) and F = −log p(y),
  // reached by the one update of p; with no neighbour to wake, the first round is the last.
  Model model = Example("coin.json");
  const Result result = AsyncScheduler(model.inference.options, WithThreads(2)).Run(model.graph);
  ASSERT_TRUE(result.converged()) << result.message;
  EXPECT_EQ(result.iterations, 1);
  EXPECT_THAT(result.message, HasSubstr("quiescent after 1 round:"));
  const double log_evidence =
      testing::LogBetaFunction(11.0, 5.0) - testing::LogBetaFunction(2.0, 2.0);
  EXPECT_NEAR(result.free_energy.back(), -log_evidence, 1e-12 * std::abs(log_evidence));
  const Beta q = model.graph.Posterior<Beta>(model.graph.Find("p"));
  EXPECT_NEAR(q.a(), 11.0, 1e-12);
  EXPECT_NEAR(q.b(), 5.0, 1e-12);
}

// ---- Threshold 0: the parallel sweeps ------------------------------------------------------

struct ModelCase {
  std::string name;
  std::function<FactorGraph(std::vector<Variable>*)> build;
};

std::vector<ModelCase> Cases() {
  auto from_json = [](const std::string& file) {
    return [file](std::vector<Variable>* order) {
      Model model = Example(file);
      *order = model.inference.options.order;
      return std::move(model.graph);
    };
  };
  return {
      {"gaussian_mean_precision.json", from_json("gaussian_mean_precision.json")},
      {"linear_regression.json", from_json("linear_regression.json")},
      {"mixture N = 3000", [](std::vector<Variable>* o) { return Mixture(3000, o); }},
      {"Ising 24 x 24", [](std::vector<Variable>* o) { return Ising(24, 1.0, o); }},
  };
}

TEST(AsyncScheduler, ThresholdZeroGivesTheParallelSweepsBitForBit) {
  // With threshold 0 a block skips its update only when none of its inputs changed at all,
  // which would recompute the same bits: each round is then the parallel scheduler's sweep
  // (an independent implementation of the same order).
  for (const ModelCase& c : Cases()) {
    SchedulerOptions options;
    options.max_iterations = 15;
    options.tolerance = 0.0;
    std::vector<Variable> order;
    FactorGraph reference_graph = c.build(&order);
    options.order = order;
    const Result reference = ParallelScheduler(options, 1).Run(reference_graph);
    for (int threads : {1, 2, 4}) {
      FactorGraph graph = c.build(&order);
      options.order = order;
      const Result result = AsyncScheduler(options, WithThreads(threads, 0.0)).Run(graph);
      const std::string what = c.name + ", " + std::to_string(threads) + " threads";
      ASSERT_EQ(result.initial_free_energy, reference.initial_free_energy) << what;
      // A model that reaches its fixed point bit for bit falls quiet earlier.
      ASSERT_LE(result.free_energy.size(), reference.free_energy.size()) << what;
      for (size_t i = 0; i < result.free_energy.size(); ++i)
        ASSERT_EQ(result.free_energy[i], reference.free_energy[i]) << what << ", round " << i + 1;
      if (result.free_energy.size() < reference.free_energy.size()) {
        EXPECT_THAT(result.message, HasSubstr("quiescent")) << what;
        EXPECT_EQ(reference.free_energy.back(), result.free_energy.back()) << what;
      }
    }
  }
}

TEST(AsyncScheduler, EveryThreadCountGivesTheSameResult) {
  // Each update reads exactly what it reads on one thread, also when a positive threshold
  // skips updates.
  for (const ModelCase& c : Cases()) {
    SchedulerOptions options;
    options.max_iterations = 40;
    options.tolerance = 1e-12;
    std::vector<Variable> order;
    FactorGraph one = c.build(&order);
    options.order = order;
    const Result reference = AsyncScheduler(options, WithThreads(1, 1e-4)).Run(one);
    for (int threads : {2, 3, 4}) {
      FactorGraph graph = c.build(&order);
      options.order = order;
      const Result result = AsyncScheduler(options, WithThreads(threads, 1e-4)).Run(graph);
      EXPECT_EQ(result.free_energy, reference.free_energy) << c.name << ", " << threads;
      EXPECT_EQ(result.message, reference.message) << c.name << ", " << threads;
    }
  }
}

// ---- Multimodal models: F never above its start, and the run ends --------------------------

void ExpectDescentAndTermination(const Result& result, int cap, const std::string& what) {
  ASSERT_FALSE(result.free_energy.empty()) << what;
  EXPECT_LE(result.iterations, cap) << what;
  EXPECT_TRUE(result.termination == Termination::kConverged ||
              result.termination == Termination::kMaxIterations)
      << what << ": " << result.message;
  EXPECT_LT(result.free_energy.back(), result.initial_free_energy) << what;
  // Every update is a coordinate step of F, so no round may raise it.
  double previous = result.initial_free_energy;
  for (size_t i = 0; i < result.free_energy.size(); ++i) {
    EXPECT_LE(result.free_energy[i], previous + 1e-10 * std::abs(previous))
        << what << ", round " << i + 1;
    previous = result.free_energy[i];
  }
}

TEST(AsyncScheduler, MixtureNeverEndsAboveItsStartAndTerminates) {
  for (int threads : {1, 2, 4}) {
    std::vector<Variable> order;
    FactorGraph graph = Mixture(20000, &order);
    SchedulerOptions options;
    options.max_iterations = 300;
    options.order = order;
    const Result result = AsyncScheduler(options, WithThreads(threads)).Run(graph);
    ExpectDescentAndTermination(result, 300, "mixture, " + std::to_string(threads) + " threads");
    EXPECT_TRUE(result.converged()) << result.message;
  }
}

TEST(AsyncScheduler, IsingGridNeverEndsAboveItsStartAndTerminates) {
  for (int threads : {1, 2, 4}) {
    std::vector<Variable> order;
    FactorGraph graph = Ising(60, 1.5, &order);
    SchedulerOptions options;
    options.max_iterations = 500;
    options.tolerance = 0.0;  // only quiescence or the cap end it
    options.order = order;
    const Result result = AsyncScheduler(options, WithThreads(threads, 1e-8)).Run(graph);
    ExpectDescentAndTermination(result, 500, "Ising, " + std::to_string(threads) + " threads");
  }
}

// ---- Change-driven updates, quiescence, the cap --------------------------------------------

/// Two independent models in one graph: a coin (exact after one update of p) and the mean and
/// precision of four Gaussian points (many updates of mu and tau to converge).
FactorGraph CoinBesideGaussian() {
  FactorGraph graph;
  const Variable p = graph.AddVariable("p", Family::kBeta);
  graph.AddBeta(p, 2.0, 2.0);
  graph.AddBernoulli(graph.AddObserved("flips", std::vector<double>{1, 0, 1, 1}), p);
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddGaussian(mu, 0.0, 0.01);
  graph.AddGamma(tau, 1.0, 1.0);
  graph.AddGaussian(graph.AddObserved("y", std::vector<double>{1.2, 0.7, 1.9, 1.1}), mu, tau);
  graph.Finalize();
  return graph;
}

TEST(AsyncScheduler, AnUnchangedNeighbourhoodSkipsItsUpdate) {
  // Ten rounds update p once and mu and tau ten times each: 21 element updates. Updating
  // every element every round would need 30, and the cap of 21 would stop round 8.
  FactorGraph graph = CoinBesideGaussian();
  SchedulerOptions options;
  options.max_iterations = 10;
  options.tolerance = 0.0;
  AsyncOptions async = WithThreads(2, 0.0);
  async.max_updates = 21;
  const Result result = AsyncScheduler(options, async).Run(graph);
  EXPECT_EQ(result.iterations, 10) << result.message;
  EXPECT_EQ(result.termination, Termination::kMaxIterations);
  EXPECT_THAT(result.message, HasSubstr("cap of 10 rounds"));
}

TEST(AsyncScheduler, UpdateCapStopsTheRun) {
  // mu and tau update in every round (mu before tau): a cap of 5 stops round 3 after mu.
  FactorGraph graph = CoinBesideGaussian();
  SchedulerOptions options;
  options.max_iterations = 100;
  options.tolerance = 0.0;
  options.order = {graph.Find("mu"), graph.Find("tau")};
  AsyncOptions async = WithThreads(2, 0.0);
  async.max_updates = 5;
  const Result result = AsyncScheduler(options, async).Run(graph);
  EXPECT_EQ(result.termination, Termination::kMaxIterations);
  EXPECT_EQ(result.iterations, 3);
  EXPECT_EQ(result.message, "stopped at the cap of 5 element updates, in round 3");
}

TEST(AsyncScheduler, LargeThresholdFallsQuietEarlyAndTheCallbackCanStop) {
  std::vector<Variable> order;
  FactorGraph graph = Mixture(2000, &order);
  SchedulerOptions options;
  options.max_iterations = 1000;
  options.tolerance = 0.0;
  options.order = order;
  const Result loose = AsyncScheduler(options, WithThreads(2, 1e-1)).Run(graph);
  ASSERT_TRUE(loose.converged()) << loose.message;
  EXPECT_THAT(loose.message, HasSubstr("quiescent"));
  EXPECT_THAT(loose.message, HasSubstr("threshold (0.1)"));
  int calls = 0;
  options.callback = [&](const IterationInfo& info) {
    ++calls;
    EXPECT_EQ(info.iteration, calls);
    return calls < 2;
  };
  FactorGraph again = Mixture(2000, &order);
  options.order = order;
  const Result stopped = AsyncScheduler(options, WithThreads(2, 0.0)).Run(again);
  EXPECT_EQ(stopped.termination, Termination::kStopped);
  EXPECT_EQ(stopped.iterations, 2);
  EXPECT_EQ(calls, 2);
}

TEST(AsyncScheduler, OrderRestrictsTheUpdates) {
  // Only tau is updated: mu keeps its starting posterior.
  Model model = Example("gaussian_mean_precision.json");
  const Variable mu = model.graph.Find("mu");
  const Gaussian before = model.graph.Posterior<Gaussian>(mu);
  SchedulerOptions options;
  options.order = {model.graph.Find("tau")};
  const Result result = AsyncScheduler(options, WithThreads(2)).Run(model.graph);
  EXPECT_TRUE(result.converged()) << result.message;
  EXPECT_EQ(model.graph.Posterior<Gaussian>(mu).mean(), before.mean());
  EXPECT_EQ(model.graph.Posterior<Gaussian>(mu).precision(), before.precision());
}

// ---- Options and selection -----------------------------------------------------------------

TEST(AsyncScheduler, BadOptionsAreRefusedWithTheirValue) {
  auto refuses = [](AsyncOptions async, const std::string& message) {
    EXPECT_THAT([&] { AsyncScheduler(SchedulerOptions(), async); },
                ThrowsMessage<OptionsError>(HasSubstr(message)));
  };
  AsyncOptions async;
  async.threads = -2;
  refuses(async, "threads must be >= 0 (0: every core), got -2");
  async = AsyncOptions();
  async.threshold = -1e-3;
  refuses(async, "threshold must be a finite number >= 0, got -0.001");
  async.threshold = NAN;
  refuses(async, "threshold must be a finite number >= 0, got nan");
  async = AsyncOptions();
  async.max_updates = -1;
  refuses(async, "max_updates must be >= 0 (0: no cap), got -1");
  SchedulerOptions options;
  options.max_iterations = 0;
  EXPECT_THAT([&] { AsyncScheduler(options, AsyncOptions()); },
              ThrowsMessage<OptionsError>(HasSubstr("max_iterations must be >= 1, got 0")));
  EXPECT_GE(AsyncScheduler(SchedulerOptions()).threads(), 1);
  EXPECT_EQ(AsyncScheduler(SchedulerOptions(), WithThreads(3)).threads(), 3);
}

TEST(AsyncScheduler, UnfinalisedGraphAndObservedOrderAreRefused) {
  FactorGraph graph;
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  graph.AddGaussian(mu, 0.0, 1.0);
  EXPECT_THAT([&] { AsyncScheduler(SchedulerOptions()).Run(graph); },
              ThrowsMessage<GraphError>(HasSubstr("finalise the graph first")));
  Model model = Example("coin.json");
  SchedulerOptions options;
  options.order = {model.graph.Find("flips")};
  EXPECT_THAT([&] { AsyncScheduler(options).Run(model.graph); },
              ThrowsMessage<OptionsError>(HasSubstr("'flips' is observed")));
}

std::string CoinWithInference(const std::string& inference) {
  return R"({"format": "vfe-model/1",
    "variables": [{"name": "p", "family": "Beta"}, {"name": "y", "observed": [1, 0, 1]}],
    "factors": [{"node": "Beta", "out": "p", "a": 1, "b": 1},
                {"node": "Bernoulli", "for": {"n": [0, 3]}, "out": "y[n]", "p": "p"}],
    "inference": )" + inference + "}";
}

TEST(AsyncScheduler, JsonSelectsTheAsyncScheduler) {
  const Model model = ParseModel(CoinWithInference(R"({"scheduler": "async", "threads": 2})"));
  EXPECT_EQ(model.inference.scheduler, SchedulerKind::kAsync);
  EXPECT_EQ(model.inference.threads, 2);
  EXPECT_THAT([] { ParseModel(CoinWithInference(R"({"scheduler": "asynchronous"})")); },
              ThrowsMessage<ModelError>(HasSubstr(
                  "/inference/scheduler: expected one of 'sequential', 'parallel', 'async', "
                  "found the string \"asynchronous\"")));
}

}  // namespace
}  // namespace vfe
